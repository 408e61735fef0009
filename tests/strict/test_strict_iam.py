"""StrictAWS's IAM gate: what it asks the authorizer for each request of a registered role (action, resource,
context keys, resource policy), and what it answers when refused; real moto_server, a recording authorizer."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import StrictAWS
from certfleet.testing.authorize import ALLOWED, Check, Principal, new_access_key_id

ACCOUNT, REGION = "123456789012", "eu-west-1"


class Recorder:
    """Answers Allowed except for the actions in ``deny``; keeps every check it was asked."""

    def __init__(self, deny: frozenset[str] = frozenset()) -> None:
        self.deny = deny
        self.checks: list[Check] = []

    def decide(self, check: Check) -> str:
        self.checks.append(check)
        return "ImplicitlyDenied" if check.action in self.deny else ALLOWED


@pytest.fixture
def recorder(aws: StrictAWS, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recording = Recorder()
    monkeypatch.setattr(aws.iam, "authorizer", recording)
    return recording


def _as_role(aws: StrictAWS, service: str, region: str = REGION) -> Any:
    principal = Principal(new_access_key_id(), f"arn:aws:iam::{ACCOUNT}:role/probe", ACCOUNT, (), "probe")
    aws.register(principal)
    make: Callable[..., Any] = boto3.client
    return make(service, region_name=region, endpoint_url=aws.url, aws_access_key_id=principal.access_key_id,
                aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}))


def test_an_import_with_tags_is_also_add_tags_and_a_reimport_carries_the_resource_tags(
    aws: StrictAWS, recorder: Recorder, client: Callable[..., Any], pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN a registered role WHEN it imports with tags, then re-imports THEN the gate asks for acm:ImportCertificate
    and acm:AddTagsToCertificate with aws:RequestTag/aws:TagKeys, then acm:ImportCertificate on the ARN with the
    certificate's current tags as aws:ResourceTag."""
    material = {"Certificate": leaf.pem(), "PrivateKey": leaf.key_pem(), "CertificateChain": pki.chain_pem()}
    acm = _as_role(aws, "acm")
    arn = acm.import_certificate(**material, Tags=[{"Key": "team", "Value": "a"}])["CertificateArn"]
    first, tagging = recorder.checks
    assert (first.action, tagging.action) == ("acm:ImportCertificate", "acm:AddTagsToCertificate")
    for check in (first, tagging):
        assert check.context == {"aws:TagKeys": ["team"], "aws:RequestTag/team": "a"}
    recorder.checks.clear()
    acm.import_certificate(**material, CertificateArn=arn)
    (again,) = recorder.checks
    assert (again.action, again.resource) == ("acm:ImportCertificate", arn)
    assert again.context == {"aws:ResourceTag/team": "a"}


def test_a_refused_check_answers_access_denied_and_nothing_reaches_moto(
    aws: StrictAWS, recorder: Recorder, client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN the authorizer refuses secretsmanager:CreateSecret WHEN a registered role creates one THEN
    AccessDeniedException naming the role and action, and moto holds no such secret; a key in the rehearsal's
    range that nobody registered is refused as an invalid token."""
    monkeypatch.setattr(recorder, "deny", frozenset({"secretsmanager:CreateSecret"}))
    with pytest.raises(ClientError) as caught:
        _as_role(aws, "secretsmanager").create_secret(Name="probe/refused", SecretString="x")
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "arn:aws:iam::123456789012:role/probe is not authorized to perform: secretsmanager:CreateSecret" in \
        caught.value.response["Error"]["Message"]
    assert client("secretsmanager").list_secrets()["SecretList"] == []
    stranger = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws.url,
                            aws_access_key_id=new_access_key_id(), aws_secret_access_key="x",
                            config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError, match="UnrecognizedClientException"):
        stranger.list_secrets()


def test_a_secret_under_a_customer_key_is_also_kms_decrypt_through_secrets_manager(
    aws: StrictAWS, recorder: Recorder, client: Callable[..., Any],
) -> None:
    """GIVEN a secret encrypted with a customer managed key, with a resource policy WHEN a registered role reads it
    THEN the gate asks for secretsmanager:GetSecretValue with the resource policy, then kms:Decrypt on the key with
    kms:ViaService and the SecretARN/SecretVersionId encryption context and the key policy."""
    key = client("kms").create_key(Description="probe")["KeyMetadata"]["Arn"]
    secrets = client("secretsmanager")
    created = secrets.create_secret(Name="probe/key", SecretString="x", KmsKeyId=key)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*",
                                                      "Resource": "*"}]}
    secrets.put_resource_policy(SecretId=created["ARN"], ResourcePolicy=json.dumps(policy))
    _as_role(aws, "secretsmanager").get_secret_value(SecretId="probe/key")
    read, decrypt = recorder.checks
    assert (read.action, read.resource, read.resource_policy) == ("secretsmanager:GetSecretValue", created["ARN"],
                                                                  policy)
    assert read.context["secretsmanager:SecretId"] == created["ARN"]
    assert (decrypt.action, decrypt.resource) == ("kms:Decrypt", key)
    assert decrypt.context == {
        "kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com",
        "kms:EncryptionContext:SecretARN": created["ARN"],
        "kms:EncryptionContext:SecretVersionId": created["VersionId"],
        "kms:EncryptionContextKeys": ["SecretARN", "SecretVersionId"],
    }
    assert decrypt.resource_policy is not None and decrypt.resource_policy["Statement"]


def test_a_replica_is_named_as_aws_names_it_and_encrypted_with_its_regions_key(
    aws: StrictAWS, recorder: Recorder, client: Callable[..., Any],
) -> None:
    """GIVEN a secret whose name holds its primary region, replicated to eu-west-1, under a us-east-1 customer key
    WHEN a registered role reads the replica THEN the resource is the replica's ARN with the secret's own name (moto
    reports the region replaced inside the name too), and no kms:Decrypt is asked: the replica is under
    aws/secretsmanager, as AWS encrypts a replica that names no key."""
    key = client("kms", "us-east-1").create_key(Description="probe")["KeyMetadata"]["Arn"]
    name = "certfleet/fleet/Certificates-us-east-1/www.example.com/key"
    primary = client("secretsmanager", "us-east-1").create_secret(
        Name=name, SecretString="x", KmsKeyId=key, AddReplicaRegions=[{"Region": REGION}])["ARN"]
    _as_role(aws, "secretsmanager").get_secret_value(SecretId=name)
    (read,) = recorder.checks
    assert read.resource == primary.replace(":us-east-1:", f":{REGION}:", 1)


def test_the_control_endpoint_refuses_what_is_not_a_principal(aws: StrictAWS) -> None:
    request = urllib.request.Request(f"{aws.url}/_strict/principals", data=b'{"Arn": "x"}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    assert b"not a principal" in caught.value.read()
