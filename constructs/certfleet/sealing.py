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
    """A KMS key for ``certfleet seal``: key rotation on, retained when its stack is deleted, reached by an alias.

    Deploy it once per account and region before the first ``certfleet seal``; see docs/design/sealing.md.

    Args:
        scope: The construct (usually a stack) to add the key to.
        id: The construct id.
        alias: The key's alias; must start with ``alias/``. Default: ``alias/certfleet-sealing``.
        sealers: Principals that may seal keys with it, each granted by `grant_seal`. Default: none.

    Attributes:
        key: The KMS key.
        alias: The key's alias, as given.
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
        """The key's ARN (a token until deploy): what ``certfleet seal --kms-key`` takes."""
        return self.key.key_arn

    def grant_seal(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` run ``certfleet seal`` with this key: ``kms:Encrypt`` only under a certfleet context.

        Args:
            grantee: The principal (a role or user) that seals keys.

        Returns:
            The grant of ``kms:Encrypt`` (``kms:DescribeKey`` is granted too, unconditionally).
        """
        iam.Grant.add_to_principal(grantee=grantee, actions=["kms:DescribeKey"], resource_arns=[self.key.key_arn])
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["kms:Encrypt"],
            resource_arns=[self.key.key_arn],
            conditions={  # ForAllValues alone holds for an empty context: Null requires the certificate's key
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": [CONTEXT_KEY]},
                "Null": {f"kms:EncryptionContext:{CONTEXT_KEY}": "false"},
            },
        )
