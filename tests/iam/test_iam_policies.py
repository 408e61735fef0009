"""certfleet's synthesized IAM, evaluated as AWS would: what each handler role may and may not do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from iam_support import ALLOWED, SEALING_KEY, IamEvaluator, Request, Resolved

from certfleet import CertificateBundle, CertificateFleet, KeySource

ACCOUNT = "123456789012"
CERT = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/11111111-2222-3333-4444-555555555555"
IMPORTER = "certfleet: runs certfleet_import.on_event"
KEY_WRITER = "certfleet: runs certfleet_keywriter.on_event"
DEFAULT_KEY_POLICY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}]}
"""KMS's default key policy: the account's IAM policies decide (KMS needs a key policy that says so)."""


@pytest.fixture(scope="module")
def primary(material: tuple[CertificateBundle, Path]) -> Resolved:
    bundle, sealed = material
    fleet = CertificateFleet(App(), "Certificates", bundle=bundle, key=KeySource.sealed(sealed), account=ACCOUNT,
                             regions=["eu-west-1"])
    return Resolved(Template.from_stack(fleet.stack_for("us-east-1")).to_json(), account=ACCOUNT,
                    region="us-east-1")


def _tags(resolved: Resolved) -> dict[str, str]:
    """The tags the importer puts on this fleet's certificate (from the custom resource's properties)."""
    (certificate,) = [v for v in resolved.resources.values() if v["Type"] == "Custom::CertfleetCertificate"]
    return {t["Key"]: t["Value"] for t in certificate["Properties"]["Tags"]}


def _request_tags(tags: dict[str, str]) -> dict[str, Any]:
    return {**{f"aws:RequestTag/{k}": v for k, v in tags.items()}, "aws:TagKeys": list(tags)}


def _resource_tags(tags: dict[str, str]) -> dict[str, Any]:
    return {f"aws:ResourceTag/{k}": v for k, v in tags.items()}


def test_the_evaluator_allows_what_a_policy_allows_and_denies_the_rest(iam: IamEvaluator) -> None:
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "acm:DescribeCertificate", "Resource": CERT}]}
    assert iam.decide(Request("acm:DescribeCertificate", CERT), [policy]) == ALLOWED
    assert iam.decide(Request("acm:DeleteCertificate", CERT), [policy]) == "ImplicitlyDenied"
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "acm:*", "Resource": "*"}]}
    assert iam.decide(Request("acm:DescribeCertificate", CERT), [policy, deny]) == "ExplicitlyDenied"


def test_the_evaluator_refuses_a_context_key_it_would_ignore(iam: IamEvaluator) -> None:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "acm:DescribeCertificate",
                                                      "Resource": "*"}]}
    with pytest.raises(AssertionError, match="ignored context keys"):
        iam.decide(Request("acm:DescribeCertificate", CERT, context={"acm:NoSuchKey/x": "y"}), [policy])


def test_importer_imports_only_with_its_own_fleet_tags(iam: IamEvaluator, primary: Resolved) -> None:
    policies = primary.role_policies(primary.role(IMPORTER))
    own = _tags(primary)
    assert iam.decide(Request("acm:ImportCertificate", CERT, context=_request_tags(own)), policies) == ALLOWED
    other = {**own, "certfleet:fleet": "SomeoneElse"}
    assert iam.decide(Request("acm:ImportCertificate", CERT, context=_request_tags(other)), policies) != ALLOWED
    assert iam.decide(Request("acm:ImportCertificate", CERT), policies) != ALLOWED, "no tags: no first import"
    extra = {**own, "team": "payments"}
    assert iam.decide(Request("acm:ImportCertificate", CERT, context=_request_tags(extra)), policies) != ALLOWED


@pytest.mark.parametrize("action", ["acm:ImportCertificate", "acm:DeleteCertificate", "acm:GetCertificate"])
def test_importer_touches_only_its_own_fleets_certificates(iam: IamEvaluator, primary: Resolved,
                                                           action: str) -> None:
    policies = primary.role_policies(primary.role(IMPORTER))
    own = _tags(primary)
    assert iam.decide(Request(action, CERT, context=_resource_tags(own)), policies) == ALLOWED
    other = _resource_tags({**own, "certfleet:fleet": "SomeoneElse"})
    assert iam.decide(Request(action, CERT, context=other), policies) != ALLOWED
    assert iam.decide(Request(action, CERT), policies) != ALLOWED, "an untagged (someone's) certificate"


def test_importer_cannot_tag_another_fleets_certificate_into_its_own(iam: IamEvaluator, primary: Resolved) -> None:
    policies = primary.role_policies(primary.role(IMPORTER))
    own = _tags(primary)
    claim = {**_request_tags(own), **_resource_tags({**own, "certfleet:fleet": "SomeoneElse"})}
    assert iam.decide(Request("acm:AddTagsToCertificate", CERT, context=claim), policies) != ALLOWED


def test_importer_reads_only_its_own_key(iam: IamEvaluator, primary: Resolved) -> None:
    policies = primary.role_policies(primary.role(IMPORTER))
    secret_id, _ = primary.only("AWS::SecretsManager::Secret")
    own = primary.arn(secret_id)
    assert iam.decide(Request("secretsmanager:GetSecretValue", own), policies) == ALLOWED
    for other in (own.replace("-AbCdEf", "x-AbCdEf"), own.replace("www.example.com", "api.example.com"),
                  f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:production/ssl/private-key-AbCdEf"):
        assert iam.decide(Request("secretsmanager:GetSecretValue", other), policies) != ALLOWED, other
    assert iam.decide(Request("secretsmanager:PutSecretValue", own), policies) != ALLOWED


def test_key_writer_decrypts_only_this_keys_sealed_file(iam: IamEvaluator, primary: Resolved) -> None:
    policies = primary.role_policies(primary.role(KEY_WRITER))
    right = {"kms:EncryptionContext:certfleet:certificate": "www.example.com",
             "kms:EncryptionContextKeys": ["certfleet:certificate"]}
    assert iam.decide(Request("kms:Decrypt", SEALING_KEY, context=right), policies, DEFAULT_KEY_POLICY) == ALLOWED
    wrong = {"kms:EncryptionContext:certfleet:certificate": "api.example.com",
             "kms:EncryptionContextKeys": ["certfleet:certificate"]}
    assert iam.decide(Request("kms:Decrypt", SEALING_KEY, context=wrong), policies, DEFAULT_KEY_POLICY) != ALLOWED
    empty = Request("kms:Decrypt", SEALING_KEY)
    assert iam.decide(empty, policies, DEFAULT_KEY_POLICY) != ALLOWED, "an empty encryption context"
    other_key = SEALING_KEY.replace("1234abcd", "99999999")
    assert iam.decide(Request("kms:Decrypt", other_key, context=right), policies, DEFAULT_KEY_POLICY) != ALLOWED
    assert iam.decide(Request("kms:Decrypt", SEALING_KEY, context=right), policies) != ALLOWED, (
        "KMS: without a key policy that trusts the account, the identity policy alone allows nothing")
