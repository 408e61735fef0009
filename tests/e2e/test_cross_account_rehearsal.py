"""A fleet spanning two accounts, on the user's own secret (KeySource.secret), rehearsed against moto_server +
StrictAWS: create, key rotation under replica lag, a rollback, then a key-type upgrade whose old certificate is retired
in the second account and swept there.

The key account (moto's default, 123456789012) holds the secret (us-east-1, replicated to us-west-2) and the us-east-1
and us-west-2 stacks; eu-west-1 and ap-northeast-1 live in 222222222222 and read the primary secret by ARN. moto reads
no secret of another account by ARN (a GetSecretValue from 222222222222 for a 123456789012 ARN is
ResourceNotFoundException), so the rehearsal plays every account in moto's default one (``isolate_accounts=False``);
the stacks, their events and their sweepers keep their own accounts."""

from __future__ import annotations

import copy
import importlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from aws_cdk import App
from cryptography.hazmat.primitives import hashes

from certfleet import CertificateBundle, CertificateFleet, KeySource
from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import MotoServer, StrictAWS, assembly
from certfleet.testing import rehearsal as rehearsal_module
from certfleet.testing.rehearsal import CERTIFICATE, KEY_VERSION, Deployed, Rehearsal, ResourceKey, StackArtifact

ACCOUNT, OTHER = "123456789012", "222222222222"
PRIMARY, REPLICA = "us-east-1", "us-west-2"
REMOTE = ("eu-west-1", "ap-northeast-1")
REGIONS = (PRIMARY, REPLICA, *REMOTE)
NAMES = ("www.example.com", "example.com")
LAG_READS = 2  # reads of a new key version us-west-2 refuses before its replica has it
"""Seconds a new secret version takes to reach us-west-2: longer than the primary stack's deploy takes here (it is
put right before the deploy, after the synth)."""
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": PRIMARY,
       "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}


@dataclass
class Story:
    """The deployment the phases share, and what each phase left for the next."""

    aws: StrictAWS
    rehearsal: Rehearsal
    pki: DemoPKI
    folder: Path
    secret_arn: str
    cmk_arn: str
    passed: list[str] = field(default_factory=list)
    leaves: list[Issued] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    arns: dict[str, str] = field(default_factory=dict)
    before: dict[ResourceKey, Deployed] = field(default_factory=dict)
    outputs_before: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    on_stack: Callable[[StackArtifact], None] | None = None

    def after(self, phase: str) -> None:
        """Skip the calling phase unless ``phase`` passed: it builds on that phase's deployment."""
        if phase not in self.passed:
            pytest.skip(f"needs phase {phase!r}, which did not pass (passed: {self.passed or 'none'}); run the module")

    def secrets(self) -> Any:
        return boto3.client("secretsmanager", endpoint_url=self.aws.url, region_name=PRIMARY)

    def put_key(self, issued: Issued) -> str:
        """A new key in the user's secret, as ``aws secretsmanager put-secret-value`` writes it: AWSCURRENT moves."""
        version = str(self.secrets().put_secret_value(SecretId=self.secret_arn,
                                                      SecretString=issued.key_pem().decode())["VersionId"])
        self.versions.append(version)
        return version

    def synth(self, issued: Issued, name: str) -> Path:
        """The fleet's assembly for ``issued``."""
        out = self.folder / name
        app = App(outdir=str(out))
        bundle = CertificateBundle.from_pem(issued.pem().decode(), self.pki.chain_pem().decode())
        CertificateFleet(app, "Certificates", bundle=bundle, account=ACCOUNT,
                         key=KeySource.secret(self.secret_arn, encryption_key_arn=self.cmk_arn),
                         regions=[REPLICA, *REMOTE], accounts=dict.fromkeys(REMOTE, OTHER))
        app.synth()
        return out

    def certificates(self) -> dict[str, tuple[str, Deployed]]:
        """region -> (account, the importer as deployed) of every fleet stack."""
        found = {k[1]: (k[0], d) for k, d in self.rehearsal.resources.items() if d.type == CERTIFICATE}
        assert sorted(found) == sorted(REGIONS)
        return found

    def leaf_at(self, arn: str) -> str:
        acm = boto3.client("acm", endpoint_url=self.aws.url, region_name=arn.split(":")[3])
        pem = acm.get_certificate(CertificateArn=arn)["Certificate"]
        from cryptography import x509

        return x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()


def fingerprint(issued: Issued) -> str:
    return issued.certificate.fingerprint(hashes.SHA256()).hex()


def key_policy() -> dict[str, Any]:
    """The user's KMS key: its account administers it; the other account may decrypt through Secrets Manager only."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "Owner", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*",
         "Resource": "*"},
        {"Sid": "ReadersInTheOtherAccount", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
         "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{PRIMARY}.amazonaws.com"}}},
    ]}


def secret_policy() -> dict[str, Any]:
    """The secret's resource policy the README asks for with KeySource.secret across accounts."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadersInTheOtherAccount", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
         "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], "Resource": "*"},
    ]}


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """One StrictAWS and one rehearsal for every phase; moto emptied afterwards."""
    moto = MotoServer.shared()
    moto.reset()
    with mock.patch.dict(os.environ, ENV), StrictAWS(moto.url) as aws:
        pki = DemoPKI.create("rsa-2048", label="cross-account e2e")
        first = pki.leaf(NAMES, days=200)
        kms = boto3.client("kms", endpoint_url=aws.url, region_name=PRIMARY)
        cmk = kms.create_key(Description="the user's key for the secret", Policy=json.dumps(key_policy()))
        secrets = boto3.client("secretsmanager", endpoint_url=aws.url, region_name=PRIMARY)
        created = secrets.create_secret(Name="production/ssl/www-key", SecretString=first.key_pem().decode(),
                                        KmsKeyId=cmk["KeyMetadata"]["Arn"], AddReplicaRegions=[{"Region": REPLICA}])
        secrets.put_resource_policy(SecretId=created["ARN"], ResourcePolicy=json.dumps(secret_policy()))
        holder: list[Story] = []

        def after_stack(artifact: StackArtifact) -> None:
            hook = holder[0].on_stack if holder else None
            if hook is not None:
                hook(artifact)

        rehearsal = Rehearsal(aws.url, isolate_accounts=False, after_stack=after_stack,
                              environment={"CERTFLEET_SECRET_WAIT_SECONDS": "30"})
        story = Story(aws, rehearsal, pki, tmp_path_factory.mktemp("cross-account"), str(created["ARN"]),
                      str(cmk["KeyMetadata"]["Arn"]), leaves=[first], versions=[str(created["VersionId"])])
        holder.append(story)
        yield story
    moto.reset()


def test_create(story: Story) -> None:
    """GIVEN the user's secret and a fleet over two accounts WHEN deployed THEN each of the four regions holds the
    certificate, every importer read the version the primary pinned, and the other account's stacks are its own."""
    story.rehearsal.deploy(story.synth(story.leaves[0], "v1"))
    for region, (account, importer) in story.certificates().items():
        assert account == (OTHER if region in REMOTE else ACCOUNT), region
        assert story.leaf_at(importer.physical_id) == fingerprint(story.leaves[0]), region
        assert importer.data["KeyVersionId"] == story.versions[0], region
        story.arns[region] = importer.physical_id
    (pin,) = [d for d in story.rehearsal.resources.values() if d.type == KEY_VERSION]
    assert (pin.account, pin.region, pin.data) == (ACCOUNT, PRIMARY, {"VersionId": story.versions[0]})
    story.passed.append("create")


def test_key_rotation_under_replica_lag(story: Story) -> None:
    """GIVEN the deployed fleet WHEN a new key is put into the secret (us-west-2 refusing the first reads of it:
    replica lag) and the new certificate deployed THEN every region re-imports it into the same ARN with the new
    key's version; us-west-2 waited for its replica (before: it read its replica's AWSCURRENT, the old key, and ACM
    refused the import)."""
    story.after("create")
    story.before = copy.deepcopy(story.rehearsal.resources)
    story.outputs_before = copy.deepcopy(story.rehearsal.outputs)
    story.leaves.append(story.pki.leaf(NAMES, days=300))
    assembly = story.synth(story.leaves[1], "v2")
    story.aws.replica_lag_reads = LAG_READS
    version = story.put_key(story.leaves[1])
    reads = story.aws.calls("secretsmanager", "GetSecretValue", REPLICA)
    story.rehearsal.deploy(assembly)
    assert story.aws.calls("secretsmanager", "GetSecretValue", REPLICA) > reads + 1, "us-west-2 waited for its replica"
    for region, (_, importer) in story.certificates().items():
        assert importer.physical_id == story.arns[region], region
        assert story.leaf_at(importer.physical_id) == fingerprint(story.leaves[1]), region
        assert importer.data["KeyVersionId"] == version, region
    story.passed.append("rotation")


def roll_back(story: Story, stack: tuple[str, str, str]) -> None:
    """What CloudFormation does to certfleet's resources when a later resource of ``stack``'s update fails: a resource
    updated in place gets an Update back to its old properties (as deployed before, with their resolved values); a
    replaced one is restored as it was, with no call, and the new one gets a Delete. The rehearsal has no rollback of
    its own (see the report): this plays it with the handlers the rehearsal runs."""
    rehearsal = story.rehearsal
    changed = [(k, d) for k, d in rehearsal.resources.items() if k[:3] == stack and story.before.get(k) != d]
    account, region, name = stack
    stack_id = assembly._stack_id(account, region, name)  # the StackId the rehearsal sent for this stack
    env = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region, "AWS_ENDPOINT_URL": story.aws.url,
           "CERTFLEET_SECRET_WAIT_SECONDS": "30"}
    deletes = []
    for key, now in reversed(changed):
        old = story.before[key]
        module = importlib.import_module(rehearsal_module._HANDLERS[now.type])
        event: dict[str, Any] = {
            "RequestType": "Update", "StackId": stack_id, "RequestId": str(uuid.uuid4()), "ResponseURL": "",
            "LogicalResourceId": key[3], "ResourceType": now.type, "ServiceToken": "",
            "PhysicalResourceId": now.physical_id, "ResourceProperties": old.properties,
            "OldResourceProperties": now.properties,
        }
        if old.physical_id != now.physical_id:
            deletes.append({**event, "RequestType": "Delete", "ResourceProperties": now.properties})
        else:
            with mock.patch.dict(os.environ, env):
                result = module.on_event(event, None)
            assert result["PhysicalResourceId"] == old.physical_id
        rehearsal.resources[key] = old
    for event in deletes:  # UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS
        with mock.patch.dict(os.environ, env):
            importlib.import_module(rehearsal_module._HANDLERS[event["ResourceType"]]).on_event(event, None)
    rehearsal.outputs[stack] = story.outputs_before[stack]


def test_rollback_reimports_the_old_certificate_with_the_old_key(story: Story) -> None:
    """GIVEN the rotated fleet (AWSCURRENT: the new key) WHEN each fleet stack rolls back its update (dependents first)
    THEN the old pin comes back with no call to Secrets Manager and every region re-imports the old certificate with
    the old key version pinned in its old properties (before: the old properties named no version, the importer read
    AWSCURRENT, the new key, and ACM refused: the rollback failed)."""
    story.after("rotation")
    fleet_stacks = {k[:3] for k, d in story.rehearsal.resources.items() if d.type == CERTIFICATE}
    primary = next(s for s in fleet_stacks if s[1] == PRIMARY)
    describes = story.aws.calls("secretsmanager", "DescribeSecret")
    for stack in [*sorted(fleet_stacks - {primary}), primary]:
        roll_back(story, stack)
    assert story.aws.calls("secretsmanager", "DescribeSecret") == describes, "the old pin was restored, not resolved"
    for region, (_, importer) in story.certificates().items():
        assert importer.physical_id == story.arns[region], region
        assert story.leaf_at(importer.physical_id) == fingerprint(story.leaves[0]), region
    current = story.secrets().describe_secret(SecretId=story.secret_arn)["VersionIdsToStages"]
    assert "AWSCURRENT" in current[story.versions[1]], "the rollback read the old version; AWSCURRENT did not move"
    story.passed.append("rollback")


def test_key_type_upgrade_retires_and_sweeps_in_the_second_account(story: Story) -> None:
    """GIVEN the rolled-back fleet, its eu-west-1 certificate (account 222222222222) in use WHEN an EC key is put and
    its certificate deployed THEN every region imports a new EC certificate; eu-west-1's old one is retired by its
    stack's cleanup, and once released, the sweeper of 222222222222 deletes it; ap-northeast-1's is deleted at once."""
    story.after("rollback")
    ec = DemoPKI.create("ec-p256", label="cross-account e2e ec")
    story.pki = ec
    story.leaves.append(ec.leaf(NAMES, key_type="ec-p256", days=200))
    assembly = story.synth(story.leaves[2], "v3")
    story.aws.replica_lag_reads = 0
    version = story.put_key(story.leaves[2])
    in_use = story.arns["eu-west-1"]
    story.aws.mark_in_use(in_use)

    def release(artifact: StackArtifact) -> None:
        if artifact.key[:2] == (OTHER, "eu-west-1"):
            story.aws.release(in_use)  # the consumer moved to the new ARN once this stack was deployed

    story.on_stack = release
    events = story.rehearsal.deploy(assembly)
    for region, (_, importer) in story.certificates().items():
        assert importer.physical_id != story.arns[region], region
        assert story.leaf_at(importer.physical_id) == fingerprint(story.leaves[2]), region
        assert importer.data["KeyVersionId"] == version, region
    retired = [e for e in events if e.action == "retire"]
    assert [(e.account, e.region, e.physical_id) for e in retired] == [(OTHER, "eu-west-1", in_use)]
    sweeps = [e for e in events if e.account == OTHER and e.logical_id.startswith("Sweeper")]
    assert sweeps and all(e.action in ("create", "update") for e in sweeps)
    held = {a for region in REGIONS for a in _arns(story, region)}
    assert held == {importer.physical_id for _, importer in story.certificates().values()}, "nothing retired is left"
    story.passed.append("upgrade")


def _arns(story: Story, region: str) -> list[str]:
    acm = boto3.client("acm", endpoint_url=story.aws.url, region_name=region)
    listed = acm.list_certificates(Includes={"keyTypes": ["RSA_2048", "EC_prime256v1"]})["CertificateSummaryList"]
    return [str(c["CertificateArn"]) for c in listed]
