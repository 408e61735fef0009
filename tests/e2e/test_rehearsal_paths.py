"""Rarer deploy paths, played end to end through the rehearsal (IAM enforced, the real Provider framework): a destroy
that waits for its certificate to be released, a key-type upgrade rolled back onto its retired certificate, and a
sealed key reverted to the previous sealed file. Each asserts what AWS would then hold, and each plays a grant that no
other e2e test exercises (tests/e2e/test_iam_enforced.py::test_every_grant_is_used)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from aws_cdk import App, Duration, Environment, Stack
from cryptography.hazmat.primitives import serialization
from iam_support import SessionAuthorizer
from sealing_support import seal_with_kms

from certfleet import CertificateBundle, CertificateFleet, ImportedCertificate, KeySource
from certfleet.material.bundle import spki_sha256
from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import MotoServer, StrictAWS
from certfleet.testing.rehearsal import Rehearsal, RehearsalError

ACCOUNT, REGION = "123456789012", "eu-west-1"
NAMES = ("www.example.com", "example.com")
RETIRED_TAG = "certfleet:retired"
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
       "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
       "CERTFLEET_SECRET_WAIT_SECONDS": "5"}

pytestmark = pytest.mark.slow  # each test deploys a stack through the Provider framework two or three times


@pytest.fixture
def aws() -> Iterator[StrictAWS]:
    """StrictAWS with the session's IAM evaluator (the default): the calls played here count for the session."""
    moto = MotoServer.shared()
    moto.reset()
    with mock.patch.dict(os.environ, ENV), StrictAWS(moto.url, import_rate=None) as strict:
        yield strict
    moto.reset()


def _client(aws: StrictAWS, service: str) -> Any:
    """The test's own client (unchecked by IAM): what an operator would see in the account."""
    make: Callable[..., Any] = boto3.client
    return make(service, endpoint_url=aws.url_for(ACCOUNT), region_name=REGION)


def _synth(out: Path, leaf: Issued, pki: DemoPKI, key: KeySource, delete_timeout: Duration | None = None) -> Path:
    """One stack in ACCOUNT/REGION holding one ImportedCertificate."""
    app = App(outdir=str(out))
    stack = Stack(app, "Web", stack_name="Web", env=Environment(account=ACCOUNT, region=REGION))
    ImportedCertificate(stack, "Cert", bundle=CertificateBundle.from_pem(leaf.pem().decode(), pki.chain_pem().decode()),
                        key=key, delete_timeout=delete_timeout)
    app.synth()
    return out


def _only_certificate(rehearsal: Rehearsal) -> str:
    (arn,) = rehearsal.certificate_arns().values()
    return arn


def _tags(aws: StrictAWS, arn: str) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in
            _client(aws, "acm").list_tags_for_certificate(CertificateArn=arn)["Tags"]}


def _listed(aws: StrictAWS) -> set[str]:
    listed = _client(aws, "acm").list_certificates(Includes={"keyTypes": ["RSA_2048", "EC_prime256v1"]})
    return {c["CertificateArn"] for c in listed["CertificateSummaryList"]}


def test_destroying_a_certificate_in_use_waits_until_it_is_released_then_deletes_it(
    aws: StrictAWS, session_iam: SessionAuthorizer, pki: DemoPKI, leaf: Issued, tmp_path: Path,
) -> None:
    """GIVEN a deployed certificate that a service uses, with no successor WHEN its stack is destroyed and the service
    lets go of it while the Provider's waiter polls THEN the waiter (isComplete) deletes it: ACM no longer holds it."""
    _client(aws, "secretsmanager").create_secret(Name="web/key", SecretString=leaf.key_pem().decode())
    rehearsal = Rehearsal(aws.url, poll_seconds=0.2)
    rehearsal.deploy(_synth(tmp_path / "out", leaf, pki, KeySource.secret("web/key")))
    arn = _only_certificate(rehearsal)
    aws.mark_in_use(arn)
    stop = threading.Event()
    deletes_before = aws.calls("acm", "DeleteCertificate")
    waiter = ("certfleet_import.is_complete", "acm:DeleteCertificate")
    waiter_deletes_before = session_iam.allowed[waiter]

    def release_while_the_waiter_polls() -> None:
        """Let go once the waiter's first poll reached ACM (onEvent's delete, the first call, was refused)."""
        while aws.calls("acm", "DeleteCertificate") - deletes_before < 2:
            if stop.wait(0.05):
                return
        aws.release(arn)

    releaser = threading.Thread(target=release_while_the_waiter_polls, daemon=True)
    releaser.start()
    try:
        events = rehearsal.destroy()
    finally:
        stop.set()
        releaser.join(timeout=10)
    assert [e.action for e in events if e.physical_id == arn] == ["delete"], "deleted, not retired"
    assert session_iam.allowed[waiter] > waiter_deletes_before, "the waiter (isComplete) made the delete"
    assert arn not in _listed(aws)


def test_destroying_a_certificate_still_in_use_at_the_delete_timeout_fails_naming_its_user(
    aws: StrictAWS, pki: DemoPKI, leaf: Issued, tmp_path: Path,
) -> None:
    """GIVEN a deployed certificate (delete_timeout 1 s) that a service keeps using WHEN its stack is destroyed THEN
    the waiter gives up at the deadline: the delete fails naming the service that uses it, and ACM still holds it."""
    _client(aws, "secretsmanager").create_secret(Name="web/key", SecretString=leaf.key_pem().decode())
    rehearsal = Rehearsal(aws.url, poll_seconds=0.2)
    rehearsal.deploy(_synth(tmp_path / "out", leaf, pki, KeySource.secret("web/key"), Duration.seconds(1)))
    arn = _only_certificate(rehearsal)
    user = f"arn:aws:cloudfront::{ACCOUNT}:distribution/EDFDVBD6EXAMPLE"
    aws.mark_in_use(arn, by=user)
    with pytest.raises(RehearsalError, match=rf"{arn} is still in use by {user}.*removal_policy=RemovalPolicy.RETAIN"):
        rehearsal.destroy()
    assert arn in _listed(aws)
    aws.release(arn)


def test_a_key_type_upgrade_rolled_back_adopts_its_retired_certificate_again(
    aws: StrictAWS, pki: DemoPKI, ec_pki: DemoPKI, leaf: Issued, tmp_path: Path,
) -> None:
    """GIVEN an RSA certificate in use, retired by an upgrade to EC WHEN the RSA material is deployed again (the
    upgrade rolled back) THEN the importer adopts the retired RSA certificate (same ARN), removes its retired tag,
    and the EC certificate is deleted."""
    secrets = _client(aws, "secretsmanager")
    ec_leaf = ec_pki.leaf(NAMES, key_type="ec-p256")
    secrets.create_secret(Name="web/rsa-key", SecretString=leaf.key_pem().decode())
    secrets.create_secret(Name="web/ec-key", SecretString=ec_leaf.key_pem().decode())
    rsa = _synth(tmp_path / "rsa", leaf, pki, KeySource.secret("web/rsa-key"))
    rehearsal = Rehearsal(aws.url)
    rehearsal.deploy(rsa)
    rsa_arn = _only_certificate(rehearsal)
    aws.mark_in_use(rsa_arn)

    upgrade = rehearsal.deploy(_synth(tmp_path / "ec", ec_leaf, ec_pki, KeySource.secret("web/ec-key")))
    ec_arn = _only_certificate(rehearsal)
    assert ec_arn != rsa_arn
    assert ("retire", rsa_arn) in [(e.action, e.physical_id) for e in upgrade]
    assert RETIRED_TAG in _tags(aws, rsa_arn)

    rollback = rehearsal.deploy(_synth(tmp_path / "rsa-again", leaf, pki, KeySource.secret("web/rsa-key")))
    assert _only_certificate(rehearsal) == rsa_arn, "the retired RSA certificate is adopted, not imported again"
    assert RETIRED_TAG not in _tags(aws, rsa_arn)
    assert ("delete", ec_arn) in [(e.action, e.physical_id) for e in rollback]
    assert _listed(aws) == {rsa_arn}
    aws.release(rsa_arn)
    rehearsal.destroy()


def _fleet(out: Path, leaf: Issued, pki: DemoPKI, secret: str) -> Path:
    """A one-region fleet (its stack, then its sweeper stack) whose key is ``secret``."""
    app = App(outdir=str(out))
    CertificateFleet(app, "Certificates", bundle=CertificateBundle.from_pem(leaf.pem().decode(),
                                                                            pki.chain_pem().decode()),
                     key=KeySource.secret(secret), account=ACCOUNT, regions=[REGION], edge=False)
    app.synth()
    return out


def test_the_sweeper_waits_for_a_retired_certificate_still_in_use_then_deletes_it(
    aws: StrictAWS, session_iam: SessionAuthorizer, pki: DemoPKI, ec_pki: DemoPKI, tmp_path: Path,
) -> None:
    """GIVEN a fleet's RSA certificate in use by a service outside the app WHEN an EC upgrade is deployed and the
    service lets go only while the sweeper's waiter polls THEN the waiter (isComplete) deletes the retired certificate:
    the deploy ends with only the EC certificate in ACM."""
    secrets = _client(aws, "secretsmanager")
    leaf, ec_leaf = pki.leaf(NAMES), ec_pki.leaf(NAMES, key_type="ec-p256")
    secrets.create_secret(Name="web/rsa-key", SecretString=leaf.key_pem().decode())
    secrets.create_secret(Name="web/ec-key", SecretString=ec_leaf.key_pem().decode())
    rehearsal = Rehearsal(aws.url, poll_seconds=0.2)
    rehearsal.deploy(_fleet(tmp_path / "rsa", leaf, pki, "web/rsa-key"))
    rsa_arn = _only_certificate(rehearsal)
    aws.mark_in_use(rsa_arn)
    stop = threading.Event()
    relist = ("certfleet_import.is_complete", "acm:ListCertificates")
    relists_before = session_iam.allowed[relist]

    def release_while_the_sweeper_waits() -> None:
        while session_iam.allowed[relist] == relists_before:
            if stop.wait(0.05):
                return
        aws.release(rsa_arn)

    releaser = threading.Thread(target=release_while_the_sweeper_waits, daemon=True)
    releaser.start()
    try:
        events = rehearsal.deploy(_fleet(tmp_path / "ec", ec_leaf, ec_pki, "web/ec-key"))
    finally:
        stop.set()
        releaser.join(timeout=10)
    assert ("retire", rsa_arn) in [(e.action, e.physical_id) for e in events]
    ec_arn = _only_certificate(rehearsal)
    assert _listed(aws) == {ec_arn}, "the retired RSA certificate was deleted by the sweeper's waiter"
    assert session_iam.allowed[relist] > relists_before
    rehearsal.destroy()


def _sealed(aws: StrictAWS, kms_key: str, leaf: Issued, path: Path) -> KeySource:
    """``leaf``'s key sealed with moto's KMS for www.example.com, as ``certfleet seal`` writes it."""
    return KeySource.sealed(seal_with_kms(_client(aws, "kms"), leaf, path, kms_key=kms_key))


def _current(aws: StrictAWS, secret: str) -> str:
    stages = _client(aws, "secretsmanager").describe_secret(SecretId=secret)["VersionIdsToStages"]
    (version,) = [v for v, labels in stages.items() if "AWSCURRENT" in labels]
    return str(version)


def test_a_sealed_key_reverted_to_the_previous_file_makes_its_old_version_current_again(
    aws: StrictAWS, pki: DemoPKI, leaf: Issued, tmp_path: Path,
) -> None:
    """GIVEN a sealed key deployed, then a rotated key (new sealed file) deployed WHEN the previous sealed file is
    deployed again THEN the key writer moves AWSCURRENT back to the first version (Secrets Manager ignores the
    repeated write) and the secret's current key is the first key again."""
    kms_key = _client(aws, "kms").create_key(Description="certfleet sealing (paths)")["KeyMetadata"]["Arn"]
    rotated = pki.leaf(NAMES)
    first_file = _sealed(aws, kms_key, leaf, tmp_path / "first.sealed")
    rehearsal = Rehearsal(aws.url)
    rehearsal.deploy(_synth(tmp_path / "first", leaf, pki, first_file))
    (secret,) = [d.physical_id for d in rehearsal.resources.values() if d.type == "AWS::SecretsManager::Secret"]
    first_version = _current(aws, secret)
    arn = _only_certificate(rehearsal)

    rehearsal.deploy(_synth(tmp_path / "rotated", rotated, pki,
                            _sealed(aws, kms_key, rotated, tmp_path / "rotated.sealed")))
    assert _current(aws, secret) != first_version

    rehearsal.deploy(_synth(tmp_path / "reverted", leaf, pki, first_file))
    assert _current(aws, secret) == first_version
    # VersionStage named: moto (not AWS) answers a bare GetSecretValue from the version last written, not AWSCURRENT
    value = _client(aws, "secretsmanager").get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")["SecretString"]
    held = serialization.load_pem_private_key(value.encode(), password=None).public_key()
    assert spki_sha256(held) == spki_sha256(leaf.key.public_key()), "AWSCURRENT holds the first key again"
    assert _only_certificate(rehearsal) == arn, "same key type: re-imported into the same ARN"
    rehearsal.destroy()
