"""KeySource: where the importer reads the private key from. Never the plaintext key in the template."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from aws_cdk import CustomResource, RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from certfleet.certificate_bundle import CertificateBundle
from certfleet.material.findings import MaterialError
from certfleet.material.sealed import SealedKey
from certfleet.providers import KeyWriterProvider
from certfleet.references import weak_reference

PLACEHOLDER = "certfleet: the key writer replaces this value with the private key at deploy time"


@dataclass(frozen=True)
class KeyBinding:
    """The key as one stack sees it: a secret, and the version to read (empty: AWSCURRENT)."""

    secret: secretsmanager.ISecret
    version_id: str
    secret_name: str = ""
    store: Construct | None = None
    secret_id: str = ""

    @property
    def id_for_handler(self) -> str:
        """What the importer passes to GetSecretValue: an ARN, or the name (the same in every replica region)."""
        return self.secret_id or self.secret.secret_arn


class KeySource:
    """Where a certificate's private key comes from. Use ``KeySource.sealed`` or ``KeySource.secret``."""

    @staticmethod
    def sealed(path: str | os.PathLike[str]) -> SealedKeySource:
        """A key sealed with `certfleet seal` (KMS ciphertext, safe to commit); checked against the bundle."""
        try:
            return SealedKeySource(SealedKey.from_file(path), str(path))
        except MaterialError as exc:
            raise ValueError(f"KeySource.sealed: {exc.finding}") from None

    @staticmethod
    def secret(name_or_arn: str, *, version_id: str = "") -> SecretKeySource:
        """A key that already lives in Secrets Manager, as PEM or JSON ``{"private_key": ...}``."""
        if not name_or_arn:
            raise ValueError("KeySource.secret: give the secret's name or ARN, e.g. 'production/ssl/private-key'")
        return SecretKeySource(name_or_arn, version_id)

    def check(self, bundle: CertificateBundle, where: str) -> None:
        """Fail synth when the key is known not to belong to ``bundle``."""

    def bind(
        self, scope: Construct, bundle: CertificateBundle, *, secret_name: str = "",
        replica_regions: Sequence[str] = (),
    ) -> KeyBinding:
        """Make the key available to importers in ``scope``'s stack (and replicated to ``replica_regions``)."""
        raise NotImplementedError

    def bind_replica(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        """The same key as read from the local replica in ``scope``'s region."""
        raise NotImplementedError


class SecretKeySource(KeySource):
    """A private key in an existing secret. Its version is AWSCURRENT unless pinned."""

    def __init__(self, name_or_arn: str, version_id: str = "") -> None:
        self.name_or_arn = name_or_arn
        self.version_id = version_id

    def bind(
        self, scope: Construct, bundle: CertificateBundle, *, secret_name: str = "",
        replica_regions: Sequence[str] = (),
    ) -> KeyBinding:
        return KeyBinding(_import_secret(Stack.of(scope), self.name_or_arn), self.version_id, self.name_or_arn,
                          secret_id=self.name_or_arn)

    def bind_replica(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        stack = Stack.of(scope)
        name = self.name_or_arn
        if name.startswith("arn:"):
            parts = name.split(":")
            parts[3] = stack.region
            name = ":".join(parts)
        return KeyBinding(_import_secret(stack, name), self.version_id, name, secret_id=name)


def _import_secret(stack: Stack, name_or_arn: str) -> secretsmanager.ISecret:
    """The secret as ``stack`` references it (one construct per stack and secret)."""
    id = "CertfleetKeySecret" + hashlib.sha256(name_or_arn.encode()).hexdigest()[:8]
    existing = stack.node.try_find_child(id)
    if existing is not None:
        return cast(secretsmanager.ISecret, existing)
    if not name_or_arn.startswith("arn:"):
        return secretsmanager.Secret.from_secret_name_v2(stack, id, name_or_arn)
    if _is_complete_arn(name_or_arn):
        return secretsmanager.Secret.from_secret_complete_arn(stack, id, name_or_arn)
    return secretsmanager.Secret.from_secret_partial_arn(stack, id, name_or_arn)


def _is_complete_arn(arn: str) -> bool:
    name = arn.split(":secret:", 1)[-1]
    suffix = name.rsplit("-", 1)[-1] if "-" in name else ""
    return len(suffix) == 6 and suffix.isalnum()


class SealedKeySource(KeySource):
    """A sealed key: decrypted at deploy time by the stack's key writer into a secret it owns."""

    def __init__(self, sealed: SealedKey, path: str) -> None:
        self.sealed_key = sealed
        self.path = path

    def check(self, bundle: CertificateBundle, where: str) -> None:
        try:
            bundle.check_sealed_key(self.sealed_key, self.path)
        except MaterialError as exc:
            raise ValueError(f"{where}: {exc.finding}") from None

    def bind(
        self, scope: Construct, bundle: CertificateBundle, *, secret_name: str = "",
        replica_regions: Sequence[str] = (),
    ) -> KeyBinding:
        stack = Stack.of(scope)
        store_id = "CertfleetKey" + hashlib.sha256(self.sealed_key.name.encode()).hexdigest()[:8]
        store = stack.node.try_find_child(store_id)
        if not isinstance(store, SealedKeyStore):
            name = secret_name or f"certfleet/{_plain(stack.stack_name)}/{self.sealed_key.name}"
            store = SealedKeyStore(stack, store_id, sealed=self.sealed_key, secret_name=name,
                                   replica_regions=tuple(replica_regions))
        return KeyBinding(store.secret, store.version_id, store.secret_name, store)

    def bind_replica(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        if primary.store is None:
            raise ValueError(f"{scope.node.path}: bind the sealed key in its primary stack first")
        stack = Stack.of(scope)
        version = weak_reference(primary.store, "KeyVersion", primary.version_id, scope)
        return KeyBinding(_import_secret(stack, primary.secret_name), version, primary.secret_name, primary.store,
                          secret_id=primary.secret_name)


def _plain(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name)


class SealedKeyStore(Construct):
    """A customer-managed KMS key, a retained secret and the custom resource that fills it from the sealed key."""

    def __init__(
        self, scope: Construct, id: str, *, sealed: SealedKey, secret_name: str, replica_regions: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, id)
        name = sealed.name
        self.secret_name = secret_name
        self.encryption_key = kms.Key(
            self, "SecretKey",
            description=f"certfleet: encrypts the private key of {name} in Secrets Manager",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.secret = secretsmanager.Secret(
            self, "Secret",
            secret_name=secret_name,
            description=f"certfleet: private key of {name} (written by the key writer from the sealed file)",
            encryption_key=self.encryption_key,
            secret_string_value=SecretValue.unsafe_plain_text(PLACEHOLDER),
            removal_policy=RemovalPolicy.RETAIN,
            replica_regions=[secretsmanager.ReplicaRegion(region=r) for r in replica_regions],
        )
        writer = KeyWriterProvider.of(self)
        writer.role.add_to_principal_policy(iam.PolicyStatement(
            sid="DecryptOnlyThisSealedKey" + "".join(ch for ch in name.title() if ch.isalnum())[:40],
            actions=["kms:Decrypt"],
            resources=[sealed.kms_key_arn],
            conditions={"StringEquals": {
                f"kms:EncryptionContext:{k}": v for k, v in sealed.encryption_context.items()
            }},
        ))
        self.secret.grant_read(writer.role)
        self.secret.grant_write(writer.role)
        self.resource = CustomResource(
            self, "Resource",
            service_token=writer.service_token,
            resource_type="Custom::CertfleetSealedKey",
            properties={
                "Ciphertext": _b64(sealed.ciphertext),
                "KmsKeyId": sealed.kms_key_arn,
                "EncryptionContext": dict(sealed.encryption_context),
                "SecretId": self.secret.secret_arn,
                "SpkiSha256": sealed.spki_sha256,
            },
        )

    @property
    def version_id(self) -> str:
        return self.resource.get_att_string("VersionId")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
