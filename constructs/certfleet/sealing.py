"""SealingKey: the customer-managed KMS key that `certfleet seal` encrypts private keys with."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnOutput, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from certfleet.material.sealed import CONTEXT_KEY

DEFAULT_ALIAS = "alias/certfleet-sealing"


class SealingKey(Construct):
    """A KMS key (rotation on, retained on stack deletion) with an alias, for sealing private keys.

    Deploy it once per account and region before the first `certfleet seal`; the key writer of every
    fleet may decrypt only with the encryption context of its own certificate.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        alias: str = DEFAULT_ALIAS,
        sealers: Sequence[iam.IGrantable] = (),
    ) -> None:
        super().__init__(scope, id)
        if not alias.startswith("alias/"):
            raise ValueError(f"{self.node.path}: alias {alias!r} must start with 'alias/' (e.g. {DEFAULT_ALIAS})")
        self.key = kms.Key(
            self, "Key",
            alias=alias,
            description="certfleet: seals TLS private keys (certfleet seal); decrypted only by certfleet key writers",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.alias = alias
        for grantee in sealers:
            self.grant_seal(grantee)
        CfnOutput(self, "KeyArn", value=self.key.key_arn,
                  description="pass to `certfleet seal --kms-key` (or use the alias)")

    @property
    def key_arn(self) -> str:
        return self.key.key_arn

    def grant_seal(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` run `certfleet seal` with this key: Encrypt, only with a certfleet encryption context.

        ``ForAllValues`` alone also holds for an empty context (no keys at all): the ``Null`` condition requires
        ``certfleet:certificate`` to be present, so every ciphertext names the certificate it is for."""
        iam.Grant.add_to_principal(grantee=grantee, actions=["kms:DescribeKey"], resource_arns=[self.key.key_arn])
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["kms:Encrypt"],
            resource_arns=[self.key.key_arn],
            conditions={
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": [CONTEXT_KEY]},
                "Null": {f"kms:EncryptionContext:{CONTEXT_KEY}": "false"},
            },
        )
