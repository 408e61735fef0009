"""IAM enforced by StrictAWS: a registered role's call that its policies do not allow is refused as AWS refuses it
(plain boto3, and a handler the rehearsal runs as its role), what they allow passes; across the e2e suite, no handler
call was refused and every action a handler's role is granted was called by that handler."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from aws_cdk import App, Environment, Stack
from botocore.config import Config
from botocore.exceptions import ClientError
from iam_support import SessionAuthorizer
from sealing_support import OFFLINE_AWS_ENV, seal_with_kms

from certfleet import CertificateBundle, ImportedCertificate, KeySource
from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import MotoServer, StrictAWS
from certfleet.testing.authorize import Principal, new_access_key_id
from certfleet.testing.rehearsal import Rehearsal, RehearsalError

ACCOUNT, OTHER, REGION = "123456789012", "210987654321", "eu-west-1"
SECRET = "prod/ssl/private-key"
ENV = {**OFFLINE_AWS_ENV, "AWS_DEFAULT_REGION": REGION, "CERTFLEET_SECRET_WAIT_SECONDS": "5"}
Client = Callable[..., Any]


@pytest.fixture(scope="module")
def judge() -> Iterator[SessionAuthorizer]:
    """An evaluator of this module's own: its probe roles stay out of the session's granted-versus-called report."""
    authorizer = SessionAuthorizer()
    yield authorizer
    authorizer.close()


@pytest.fixture
def aws(judge: SessionAuthorizer) -> Iterator[StrictAWS]:
    moto = MotoServer.shared()
    moto.reset()
    with mock.patch.dict(os.environ, ENV), StrictAWS(moto.url, authorizer=judge, import_rate=None) as strict:
        yield strict


def _client(aws: StrictAWS, service: str, principal: Principal | None = None, account: str = ACCOUNT) -> Any:
    """A boto3 client signed with ``principal``'s access key (None: the test's own, unchecked)."""
    make: Callable[..., Any] = boto3.client
    keys = {"aws_access_key_id": principal.access_key_id, "aws_secret_access_key": "x"} if principal else {}
    return make(service, endpoint_url=aws.url_for(account), region_name=REGION,
                config=Config(retries={"total_max_attempts": 1}), **keys)


def _role(aws: StrictAWS, *statements: dict[str, Any], account: str = ACCOUNT) -> Principal:
    principal = Principal(new_access_key_id(), f"arn:aws:iam::{account}:role/probe-{len(statements)}", account,
                          ({"Version": "2012-10-17", "Statement": list(statements)},), "probe")
    aws.register(principal)
    return principal


def _denied(call: Callable[[], Any], action: str) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] == "AccessDeniedException", error
    assert f"not authorized to perform: {action}" in error["Message"], error["Message"]
    return str(error["Message"])


def _pem(leaf: Issued, pki: DemoPKI) -> dict[str, bytes]:
    return {"Certificate": leaf.pem(), "PrivateKey": leaf.key_pem(), "CertificateChain": pki.chain_pem()}


def test_a_registered_roles_call_its_policy_does_not_allow_is_refused(aws: StrictAWS) -> None:
    """GIVEN a role allowed acm:ListCertificates only WHEN it lists, then describes THEN the list passes and the
    describe is refused with AccessDeniedException naming the role and action; a key in the rehearsal's range that
    nobody registered is refused outright; the test's own key is not checked."""
    role = _role(aws, {"Effect": "Allow", "Action": "acm:ListCertificates", "Resource": "*"})
    acm = _client(aws, "acm", role)
    assert acm.list_certificates()["CertificateSummaryList"] == []
    arn = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/11111111-2222-3333-4444-555555555555"
    message = _denied(lambda: acm.describe_certificate(CertificateArn=arn), "acm:DescribeCertificate")
    assert role.arn in message and arn in message
    stranger = boto3.client("acm", endpoint_url=aws.url, region_name=REGION, aws_access_key_id=new_access_key_id(),
                            aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError, match="UnrecognizedClientException"):
        stranger.list_certificates()
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        _client(aws, "acm").describe_certificate(CertificateArn=arn)


def test_an_import_with_tags_also_needs_add_tags_and_a_reimport_the_resource_tags(
    aws: StrictAWS, pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN a role allowed acm:ImportCertificate with request tag team=a WHEN it imports with that tag THEN refused
    (AWS also authorizes acm:AddTagsToCertificate); allowed both, it imports. A re-import needs the certificate's
    current tags to match (aws:ResourceTag): another team's certificate is refused."""
    tagged = {"StringEquals": {"aws:RequestTag/team": "a"}}
    import_only = _role(aws, {"Effect": "Allow", "Action": "acm:ImportCertificate", "Resource": "*",
                              "Condition": tagged})
    _denied(lambda: _client(aws, "acm", import_only).import_certificate(**_pem(leaf, pki),
                                                                         Tags=[{"Key": "team", "Value": "a"}]),
            "acm:AddTagsToCertificate")
    both = _role(aws, {"Effect": "Allow", "Action": ["acm:ImportCertificate", "acm:AddTagsToCertificate"],
                       "Resource": "*", "Condition": tagged},
                 {"Effect": "Allow", "Action": "acm:ImportCertificate", "Resource": "*",
                  "Condition": {"StringEquals": {"aws:ResourceTag/team": "a"}}})
    acm = _client(aws, "acm", both)
    own = acm.import_certificate(**_pem(leaf, pki), Tags=[{"Key": "team", "Value": "a"}])["CertificateArn"]
    acm.import_certificate(**_pem(leaf, pki), CertificateArn=own)
    theirs = _client(aws, "acm").import_certificate(**_pem(leaf, pki), Tags=[{"Key": "team", "Value": "b"}])
    _denied(lambda: acm.import_certificate(**_pem(leaf, pki), CertificateArn=theirs["CertificateArn"]),
            "acm:ImportCertificate")


def test_reading_a_secret_under_a_customer_key_needs_kms_decrypt_through_secrets_manager(aws: StrictAWS) -> None:
    """GIVEN a secret encrypted with a customer managed key WHEN a role allowed only GetSecretValue reads it THEN
    refused for kms:Decrypt; allowed kms:Decrypt with kms:ViaService secretsmanager and this secret's SecretARN
    encryption context, it reads; the same for another secret's ARN is refused."""
    key = _client(aws, "kms").create_key(Description="probe")["KeyMetadata"]["Arn"]
    secret = _client(aws, "secretsmanager").create_secret(Name="probe/key", SecretString="x", KmsKeyId=key)["ARN"]
    read = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret}

    def decrypt(secret_arn: str) -> dict[str, Any]:
        return {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key, "Condition": {"StringEquals": {
            "kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com", "kms:EncryptionContext:SecretARN": secret_arn}}}

    _denied(lambda: _client(aws, "secretsmanager", _role(aws, read)).get_secret_value(SecretId=secret), "kms:Decrypt")
    wrong = _role(aws, read, decrypt(secret.replace("probe/key", "other/key")))
    _denied(lambda: _client(aws, "secretsmanager", wrong).get_secret_value(SecretId=secret), "kms:Decrypt")
    right = _role(aws, read, decrypt(secret))
    assert _client(aws, "secretsmanager", right).get_secret_value(SecretId=secret)["SecretString"] == "x"


def test_a_cross_account_read_needs_the_secrets_resource_policy_too(aws: StrictAWS) -> None:
    """GIVEN a role of another account whose own policy allows reading a secret WHEN it reads THEN refused until the
    secret's resource policy allows that account too (both sides must allow)."""
    secrets = _client(aws, "secretsmanager")
    secret = secrets.create_secret(Name="shared/key", SecretString="x")["ARN"]
    role = _role(aws, {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret},
                 account=OTHER)
    reader = _client(aws, "secretsmanager", role)
    _denied(lambda: reader.get_secret_value(SecretId=secret), "secretsmanager:GetSecretValue")
    share = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
             "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
    secrets.put_resource_policy(SecretId=secret,
                                ResourcePolicy=json.dumps({"Version": "2012-10-17", "Statement": [share]}))
    assert reader.get_secret_value(SecretId=secret)["SecretString"] == "x"


def _synth(out: Path, pki: DemoPKI, leaf: Issued) -> Path:
    app = App(outdir=str(out))
    stack = Stack(app, "Web", stack_name="Web", env=Environment(account=ACCOUNT, region=REGION))
    ImportedCertificate(stack, "Cert", bundle=CertificateBundle.from_pem(leaf.pem().decode(), pki.chain_pem().decode()),
                        key=KeySource.secret(SECRET))
    app.synth()
    return out


def test_a_rehearsed_handler_runs_as_its_role_and_is_refused_what_the_role_lacks(
    aws: StrictAWS, judge: SessionAuthorizer, pki: DemoPKI, leaf: Issued, tmp_path: Path,
) -> None:
    """GIVEN a certificate whose key is in Secrets Manager WHEN rehearsed THEN the importer's calls are made as the
    role of the importer's function (registered with its template policies); with the statement that lets the role
    read the key removed from the template, the deploy fails with the AccessDeniedException AWS would give."""
    _client(aws, "secretsmanager").create_secret(Name=SECRET, SecretString=leaf.key_pem().decode())
    out = _synth(tmp_path / "out", pki, leaf)
    rehearsal = Rehearsal(aws.url)
    rehearsal.deploy(out)
    assert rehearsal.identities is not None
    (importer,) = [p for p in rehearsal.identities.principals if p.runs == "certfleet_import.on_event"]
    assert importer.arn.startswith(f"arn:aws:iam::{ACCOUNT}:role/Web-CertfleetImporterOnEv")
    assert judge.allowed[("certfleet_import.on_event", "acm:ImportCertificate")] >= 1
    assert judge.allowed[("certfleet_import.on_event", "secretsmanager:GetSecretValue")] >= 1
    rehearsal.destroy()

    template_file = out / "Web.template.json"
    template = json.loads(template_file.read_text())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            document = resource["Properties"]["PolicyDocument"]
            document["Statement"] = [s for s in document["Statement"]
                                     if "secretsmanager:GetSecretValue" not in json.dumps(s.get("Action"))]
    template_file.write_text(json.dumps(template))
    with pytest.raises(RehearsalError, match=r"AccessDeniedException.*secretsmanager:GetSecretValue"):
        Rehearsal(aws.url).deploy(out)


def test_the_rehearsal_creates_keys_with_the_templates_key_policy(
    aws: StrictAWS, judge: SessionAuthorizer, pki: DemoPKI, leaf: Issued, tmp_path: Path,
) -> None:
    """GIVEN a sealed key, whose secret is encrypted with a key of the stack WHEN rehearsed THEN that KMS key carries
    the template's KeyPolicy with the importer's role ARN (as the rehearsal registered it: the importer reads the
    secret through that key policy), and the key writer's write through Secrets Manager (kms:GenerateDataKey) is
    allowed."""
    sealed = seal_with_kms(_client(aws, "kms"), leaf, tmp_path / "www.sealed", why="iam")
    app = App(outdir=str(tmp_path / "out"))
    stack = Stack(app, "Web", stack_name="Web", env=Environment(account=ACCOUNT, region=REGION))
    ImportedCertificate(stack, "Cert", bundle=CertificateBundle.from_pem(leaf.pem().decode(), pki.chain_pem().decode()),
                        key=KeySource.sealed(sealed))
    app.synth()
    rehearsal = Rehearsal(aws.url)
    rehearsal.deploy(tmp_path / "out")
    assert rehearsal.identities is not None
    (importer,) = [p for p in rehearsal.identities.principals if p.runs == "certfleet_import.on_event"]
    (key,) = [d for d in rehearsal.resources.values() if d.type == "AWS::KMS::Key"]
    policy = _client(aws, "kms").get_key_policy(KeyId=key.physical_id, PolicyName="default")["Policy"]
    assert importer.arn in json.dumps(json.loads(policy)["Statement"])
    assert judge.allowed[("certfleet_keywriter.on_event", "kms:GenerateDataKey")] >= 1
    rehearsal.destroy()


@pytest.mark.session_end
def test_no_rehearsed_handler_call_was_refused(session_iam: SessionAuthorizer, e2e_suite_ran: str) -> None:
    """GIVEN the whole e2e suite played with IAM enforced WHEN the session ends THEN roles were registered (IAM was
    enforced) and not one call of a rehearsed handler was refused (a handler that swallowed a refusal included)."""
    if e2e_suite_ran:
        pytest.skip(e2e_suite_ran)
    assert session_iam.roles, "no rehearsal registered a role: IAM was not enforced"
    assert session_iam.denied == []


@pytest.mark.session_end
def test_every_grant_is_used(session_iam: SessionAuthorizer, e2e_suite_ran: str) -> None:
    """GIVEN the whole e2e suite played with IAM enforced WHEN the session ends THEN every action granted to a
    handler's role (the runtime's log grants aside) was called by that handler somewhere in the suite."""
    if e2e_suite_ran:
        pytest.skip(e2e_suite_ran)
    unused = session_iam.unused_grants()
    assert unused == {}, "granted but never called:\n" + json.dumps(unused, indent=1)
