"""SealingKey: the KMS key `certfleet seal` encrypts with."""

from __future__ import annotations

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from certfleet import SealingKey


def _stack() -> Stack:
    return Stack(App(), "CertfleetSealing", env=Environment(account="123456789012", region="us-east-1"))


def test_key_is_rotated_retained_aliased_and_output() -> None:
    stack = _stack()
    SealingKey(stack, "Sealing")
    template = Template.from_stack(stack)
    template.has_resource("AWS::KMS::Key", {
        "Properties": Match.object_like({"EnableKeyRotation": True}),
        "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
    })
    template.has_resource_properties("AWS::KMS::Alias", {"AliasName": "alias/certfleet-sealing"})
    outputs = template.find_outputs("*")
    assert any("certfleet seal --kms-key" in o.get("Description", "") for o in outputs.values())


def test_grant_seal_allows_encrypt_only_with_a_certfleet_context() -> None:
    stack = _stack()
    role = iam.Role(stack, "Operator", assumed_by=iam.AccountRootPrincipal())
    SealingKey(stack, "Sealing", sealers=[role])
    statements = [s for p in Template.from_stack(stack).find_resources("AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    encrypt = [s for s in statements if s["Action"] == "kms:Encrypt"]
    assert len(encrypt) == 1
    assert encrypt[0]["Condition"] == {
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["certfleet:certificate"]},
        "Null": {"kms:EncryptionContext:certfleet:certificate": "false"},
    }, "ForAllValues alone also holds for an empty encryption context: the certificate's key must be present"
    assert not any("kms:Decrypt" in str(s["Action"]) for s in statements), "sealing never needs Decrypt"


def test_alias_must_be_an_alias() -> None:
    with pytest.raises(ValueError, match="CertfleetSealing/Sealing: alias 'certfleet' must start with 'alias/'"):
        SealingKey(_stack(), "Sealing", alias="certfleet")
