"""KeySource: where the importer reads the private key from. Never the plaintext key in the template."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import jsii
from aws_cdk import (
    ArnFormat,
    CustomResource,
    IListProducer,
    IResolveContext,
    Lazy,
    RemovalPolicy,
    SecretValue,
    Stack,
    Token,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from certfleet._lambda.certfleet_contract import (
    KEY_VERSION_TYPE,
    SEALED_KEY_TYPE,
    KeyVersionProperties,
    SealedKeyProperties,
)
from certfleet.certificate_bundle import CertificateBundle
from certfleet.gates import acknowledge, wildcard_finding
from certfleet.material.findings import MaterialError
from certfleet.material.sealed import SealedKey
from certfleet.providers import KeyWriterProvider
from certfleet.references import weak_reference

PLACEHOLDER = "certfleet: the key writer replaces this value with the private key at deploy time"
"""The resource that pins a user's secret's AWSCURRENT version (certfleet/_lambda/certfleet_keyversion.py)."""
SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
"""What Secrets Manager accepts as a secret name (CreateSecret)."""
_KEEP = frozenset(string.ascii_letters + string.digits + "_.@-")
_NAME_LIMIT, _OWNER_LIMIT, _PART_LIMIT = 256, 128, 48
"""certfleet's names stay within 256 characters (SecretNameType of the other Secrets Manager calls): an owner is a
stack name (at most 128) and each further part is cut to 48 with a digest."""


def secret_part(text: str, limit: int = _PART_LIMIT) -> str:
    """``text`` as one component of a secret name: letters, digits and ``_.@-`` kept, any other byte as ``+XX``
    (``*.example.com`` is ``+2A.example.com``). Injective, never a ``/`` nor an IAM wildcard; longer than
    ``limit``, it is cut and ends in ``=`` and a digest of ``text``."""
    encoded = "".join(ch if ch in _KEEP else "".join(f"+{b:02X}" for b in ch.encode()) for ch in text)
    if encoded and len(encoded) <= limit:
        return encoded
    return f"{encoded[: max(limit - 17, 0)]}={hashlib.sha256(text.encode()).hexdigest()[:16]}"


def key_namespace(kind: Literal["fleet", "group", "cert"], owner: str) -> str:
    """The prefix of every key secret of one owner, ``certfleet/<kind>/<owner>/``.

    The owner is a stack name (a FleetGroup's stack name prefix), which CloudFormation keeps unique per account and
    region, and each kind has its own subtree: no owner's namespace is a prefix of another's, so the IAM pattern
    ``<namespace>*`` covers that owner's secrets alone, whatever ids users choose, in one app or several."""
    return f"certfleet/{kind}/{secret_part(owner, _OWNER_LIMIT)}/"


def key_secret_name(namespace: str, *parts: str) -> str:
    """A key secret's name in ``namespace``: each part encoded, then ``/key`` (a fixed end, so that a name never
    ends with a hyphen and six characters, which Secrets Manager would read as an ARN suffix)."""
    name = namespace + "".join(f"{secret_part(p)}/" for p in parts) + "key"
    if not SECRET_NAME.fullmatch(name) or len(name) > _NAME_LIMIT:  # pragma: no cover - guaranteed by construction
        raise ValueError(f"certfleet built an invalid secret name {name!r}")
    return name


@dataclass(frozen=True)
class KeyBinding:
    """The key as one stack sees it: a secret, and the version to read (empty: AWSCURRENT)."""

    secret: secretsmanager.ISecret
    version_id: str
    secret_name: str = ""
    store: Construct | None = None
    """What the primary stack keeps for the key: a SealedKeyStore (sealed), a KeyVersionPin (a secret of the user's,
    version pinned at deploy time), None (an explicit ``version_id``)."""
    secret_id: str = ""
    encryption_key_arn: str = ""
    """The customer-managed KMS key of the secret read (empty: aws/secretsmanager, or not known)."""
    region: str = ""
    """The region of the secret read (empty: the reading stack's own)."""
    key_namespace: str = ""
    """The key namespace whose readers are granted all of it at once, a FleetGroup's (empty: this secret alone)."""

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
    def secret(name_or_arn: str, *, version_id: str = "", encryption_key_arn: str = "") -> SecretKeySource:
        """A key that already lives in Secrets Manager, as PEM or JSON ``{"private_key": ...}``.

        Version pinning and cross-account reading: the README's "Rotating a key kept in your own secret" and
        "Cross-account".

        Args:
            name_or_arn: The secret's name, or its ARN (the full ARN for a secret of another account).
            version_id: The version every importer reads. Default: none (AWSCURRENT's, pinned when the certificate
                is deployed).
            encryption_key_arn: The ARN of the customer-managed KMS key that encrypts the secret (readers may use it
                through Secrets Manager only). Default: none (aws/secretsmanager).
        """
        if not name_or_arn:
            raise ValueError("KeySource.secret: give the secret's name or ARN, e.g. 'production/ssl/private-key'")
        name = name_or_arn.split(":secret:", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
        if not Token.is_unresolved(name_or_arn) and not SECRET_NAME.fullmatch(name):
            raise ValueError(
                f"KeySource.secret: {name!r} is not a Secrets Manager secret name (1-512 characters of letters, "
                "digits and /_+=.@-); give the secret's exact name or ARN, without wildcards",
            )
        if encryption_key_arn and not (encryption_key_arn.startswith("arn:") and ":kms:" in encryption_key_arn):
            raise ValueError(
                f"KeySource.secret: encryption_key_arn {encryption_key_arn!r} must be a KMS key ARN "
                "(arn:aws:kms:<region>:<account>:key/<id>); an alias or key id does not work across accounts",
            )
        return SecretKeySource(name_or_arn, version_id, encryption_key_arn)

    def check(self, bundle: CertificateBundle, where: str) -> None:
        """Fail synth when the key is known not to belong to ``bundle``."""

    def bind(
        self, scope: Construct, bundle: CertificateBundle, *, secret_name: str = "",
        replica_regions: Sequence[str] = (), key_namespace: str = "",
    ) -> KeyBinding:
        """Make the key available to importers in ``scope``'s stack (and replicated to ``replica_regions``).

        Args:
            scope: A construct of the primary stack.
            bundle: The certificate the key belongs to.
            secret_name: Where a sealed key is written. Default: the stack's ``certfleet/cert/<stack>/...``.
            replica_regions: Where a sealed key's secret is replicated. Default: nowhere.
            key_namespace: The key namespace granted at once to the stack's readers (a FleetGroup's). Default: none
                (this key alone).
        """
        raise NotImplementedError

    def bind_replica(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        """The same key as read from the local replica in ``scope``'s region."""
        raise NotImplementedError

    def bind_remote(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        """The primary secret as a stack of another account reads it: by full ARN, in the primary's region.

        Replicas are encrypted with aws/secretsmanager, which no other account may use: cross-account readers
        always read the primary, whose customer-managed key can be shared.
        """
        raise NotImplementedError


class SecretKeySource(KeySource):
    """A private key in an existing secret: the given ``version_id``, else AWSCURRENT's, pinned at deploy time."""

    def __init__(self, name_or_arn: str, version_id: str = "", encryption_key_arn: str = "") -> None:
        self.name_or_arn = name_or_arn
        self.version_id = version_id
        self.encryption_key_arn = encryption_key_arn

    @property
    def arn_region(self) -> str:
        """The region named by the ARN (empty for a name)."""
        return self.name_or_arn.split(":")[3] if self.name_or_arn.startswith("arn:") else ""

    @property
    def arn_account(self) -> str:
        """The account named by the ARN (empty for a name)."""
        return self.name_or_arn.split(":")[4] if self.name_or_arn.startswith("arn:") else ""

    def bind(
        self, scope: Construct, bundle: CertificateBundle, *, secret_name: str = "",
        replica_regions: Sequence[str] = (), key_namespace: str = "",
    ) -> KeyBinding:
        """The secret in ``scope``'s stack; without an explicit ``version_id``, AWSCURRENT's version is pinned there
        by a :class:`KeyVersionPin` (once per stack and secret), so that every region reads the same version."""
        stack = Stack.of(scope)
        secret = import_secret(stack, self.name_or_arn)
        pin = None
        version = self.version_id
        if not version:
            pin = KeyVersionPin.of(stack, self)
            pin.add_certificate(bundle.fingerprint)
            version = pin.version_id
        return KeyBinding(secret, version, self.name_or_arn, pin, secret_id=self.name_or_arn,
                          encryption_key_arn=self.encryption_key_arn, region=self.arn_region)

    def bind_replica(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        stack = Stack.of(scope)
        name = self.name_or_arn
        account = self.arn_account
        if account and not Token.is_unresolved(stack.account) and account != stack.account:
            return self.bind_remote(scope, primary)  # another account's replicas are not readable: the primary
        if name.startswith("arn:"):
            parts = name.split(":")
            parts[3] = stack.region
            name = ":".join(parts)
        return KeyBinding(import_secret(stack, name), self._version_for(scope, primary), name, primary.store,
                          secret_id=name)

    def bind_remote(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        if not self.name_or_arn.startswith("arn:"):
            raise ValueError(
                f"{scope.node.path}: KeySource.secret({self.name_or_arn!r}) is read from another account: give the "
                "secret's full ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>-AbCdEf)",
            )
        return KeyBinding(import_secret(Stack.of(scope), self.name_or_arn), self._version_for(scope, primary),
                          self.name_or_arn, primary.store, secret_id=self.name_or_arn,
                          encryption_key_arn=self.encryption_key_arn, region=self.arn_region)

    def _version_for(self, scope: Construct, primary: KeyBinding) -> str:
        """The version ``scope``'s stack reads: the primary's pinned one, weakly referenced (resolved when that stack
        deploys, as a sealed key's version is), or the explicit ``version_id``."""
        if isinstance(primary.store, KeyVersionPin):
            return weak_reference(primary.store, "KeyVersion", primary.version_id, scope)
        return self.version_id


class KeyVersionPin(Construct):
    """The AWSCURRENT version of a user's key secret, resolved once at deploy time in the primary stack.

    A ``Custom::CertfleetKeyVersion`` of the stack's key writer reads it with ``DescribeSecret`` (no value) when the
    secret or the certificates that use it change, and keeps it otherwise: a replacement then, so that a rollback
    restores the old version with no call. Its role may ``DescribeSecret`` on that secret only."""

    def __init__(self, scope: Construct, id: str, *, source: SecretKeySource) -> None:
        super().__init__(scope, id)
        self.secret_id = source.name_or_arn
        self._fingerprints: list[str] = []
        writer = KeyWriterProvider.of(self)
        resource = secret_resource_arn(Stack.of(self), source.name_or_arn, source.arn_region)
        # a statement per secret: CDK moves statements that outgrow the role's inline policy into managed policies
        # (one statement listing every secret of a large FleetGroup shard could not be split and would outgrow one)
        writer.role.add_to_principal_policy(iam.PolicyStatement(actions=["secretsmanager:DescribeSecret"],
                                                                resources=[resource]))
        if resource.endswith("-??????"):
            acknowledge(writer.role, wildcard_finding(writer.role, resource),
                        "-?????? is the random suffix Secrets Manager adds to a secret's ARN: that one secret")
        self.resource = CustomResource(
            self, "Resource",
            service_token=writer.service_token,
            resource_type=KEY_VERSION_TYPE,
            properties=KeyVersionProperties(SecretId=source.name_or_arn,
                                            Fingerprints=Lazy.uncached_list(_Fingerprints(self._fingerprints))),
        )

    @classmethod
    def of(cls, stack: Stack, source: SecretKeySource) -> KeyVersionPin:
        """The pin of ``source``'s secret in ``stack``, created on first use."""
        id = "CertfleetKeyVersion" + hashlib.sha256(source.name_or_arn.encode()).hexdigest()[:8]
        existing = stack.node.try_find_child(id)
        return existing if isinstance(existing, KeyVersionPin) else cls(stack, id, source=source)

    def add_certificate(self, fingerprint: str) -> None:
        """Count a certificate that uses this key: a change of any of them resolves the version again."""
        if fingerprint not in self._fingerprints:
            self._fingerprints.append(fingerprint)

    @property
    def version_id(self) -> str:
        """The pinned VersionId (a deploy-time value of this stack)."""
        return self.resource.get_att_string("VersionId")


@jsii.implements(IListProducer)
class _Fingerprints:
    """A key version pin's certificates, sorted, as they stand at synth."""

    def __init__(self, fingerprints: list[str]) -> None:
        self._fingerprints = fingerprints

    def produce(self, context: IResolveContext) -> list[str]:
        return sorted(self._fingerprints)


def _own_secret_name(stack: Stack, key_name: str) -> str:
    """The default secret of a sealed key named ``key_name`` in ``stack``: ``certfleet/cert/<stack>/<name>/key``."""
    return key_secret_name(key_namespace("cert", stack.stack_name), key_name)


def import_secret(stack: Stack, name_or_arn: str) -> secretsmanager.ISecret:
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
        replica_regions: Sequence[str] = (), key_namespace: str = "",
    ) -> KeyBinding:
        stack = Stack.of(scope)
        name = secret_name or _own_secret_name(stack, self.sealed_key.name)
        store_id = "CertfleetKey" + hashlib.sha256(self.sealed_key.name.encode()).hexdigest()[:8]
        store = stack.node.try_find_child(store_id)
        if isinstance(store, SealedKeyStore) and store.secret_name != name:  # another fleet's key of that name
            store_id = "CertfleetKey" + hashlib.sha256(name.encode()).hexdigest()[:8]
            store = stack.node.try_find_child(store_id)
        if isinstance(store, SealedKeyStore) and store.sealed != self.sealed_key:
            raise ValueError(
                f"{scope.node.path}: two different sealed keys named {self.sealed_key.name!r} in stack "
                f"{stack.stack_name} would share the secret {name}: seal them with different --name values",
            )
        if not isinstance(store, SealedKeyStore):
            store = SealedKeyStore(stack, store_id, sealed=self.sealed_key, secret_name=name,
                                   replica_regions=tuple(replica_regions), key_namespace=key_namespace)
        return KeyBinding(store.secret, store.version_id, store.secret_name, store, key_namespace=key_namespace)

    def bind_replica(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        return replica_binding(scope, primary, "the sealed key")

    def bind_remote(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        store = primary.store
        if not isinstance(store, SealedKeyStore):
            raise ValueError(f"{scope.node.path}: bind the sealed key in its primary stack first")
        stack = Stack.of(scope)
        arn = weak_reference(store, "KeySecretArn", store.secret.secret_arn, scope)
        version = weak_reference(store, "KeyVersion", primary.version_id, scope)
        key_arn = weak_reference(store, "KeyEncryptionKeyArn", store.encryption_key.key_arn, scope)
        id = "CertfleetKeySecret" + hashlib.sha256(store.node.path.encode()).hexdigest()[:8]
        existing = stack.node.try_find_child(id)
        secret = (cast(secretsmanager.ISecret, existing) if existing is not None
                  else secretsmanager.Secret.from_secret_complete_arn(stack, id, arn))
        return KeyBinding(secret, version, primary.secret_name, store, secret_id=arn, encryption_key_arn=key_arn,
                          region=Stack.of(store).region)


class SealedKeyStore(Construct):
    """A customer-managed KMS key, a retained secret and the custom resource that fills it from the sealed key."""

    def __init__(
        self, scope: Construct, id: str, *, sealed: SealedKey, secret_name: str, replica_regions: tuple[str, ...] = (),
        key_namespace: str = "",
    ) -> None:
        super().__init__(scope, id)
        name = sealed.name
        self.sealed = sealed
        self.secret_name = secret_name
        self.encryption_key = kms.Key(
            self, "SecretKey",
            description=f"certfleet: encrypts the private key of {name} in Secrets Manager",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.secret = retained_secret(
            self, "Secret", self.encryption_key, secret_name=secret_name, placeholder=PLACEHOLDER,
            description=f"certfleet: private key of {name} (written by the key writer from the sealed file)",
            replica_regions=replica_regions,
            no_rotation="a TLS private key rotates with its certificate (a new sealed key, deployed), never on a "
                        "schedule",
        )
        writer = KeyWriterProvider.of(self)
        if key_namespace:
            writer.allow_group_key(key_namespace, sealed.kms_key_arn, dict(sealed.encryption_context))
        else:
            writer.role.add_to_principal_policy(iam.PolicyStatement(
                sid="DecryptOnlyThisSealedKey" + "".join(ch for ch in name.title() if ch.isalnum())[:40],
                actions=["kms:Decrypt"],
                resources=[sealed.kms_key_arn],
                conditions={"StringEquals": {
                    f"kms:EncryptionContext:{k}": v for k, v in sealed.encryption_context.items()
                }},
            ))
            writer.role.add_to_principal_policy(iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret",
                         "secretsmanager:PutSecretValue",
                         "secretsmanager:UpdateSecretVersionStage"],  # a reverted key is made AWSCURRENT again
                resources=[self.secret.secret_arn],
            ))
            through_secrets_manager = f"secretsmanager.{Stack.of(self).region}.amazonaws.com"
            writer.role.add_to_principal_policy(iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[self.encryption_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": through_secrets_manager}},
            ))
        self.resource = CustomResource(
            self, "Resource",
            service_token=writer.service_token,
            resource_type=SEALED_KEY_TYPE,
            properties=SealedKeyProperties(
                Ciphertext=_b64(sealed.ciphertext),
                KmsKeyId=sealed.kms_key_arn,
                EncryptionContext=dict(sealed.encryption_context),
                SecretId=self.secret.secret_arn,
                SpkiSha256=sealed.spki_sha256,
            ),
        )

    @property
    def version_id(self) -> str:
        return self.resource.get_att_string("VersionId")


def retained_secret(
    scope: Construct, id: str, key: kms.IKey, *, description: str, placeholder: str, no_rotation: str,
    secret_name: str | None = None, replica_regions: Sequence[str] = (),
) -> secretsmanager.Secret:
    """A retained secret certfleet fills at deploy time (``placeholder`` until then), encrypted with ``key``, replicated
    to ``replica_regions`` (aws/secretsmanager there); ``no_rotation``: why cdk-nag's rotation rule does not apply."""
    secret = secretsmanager.Secret(
        scope, id,
        secret_name=secret_name, description=description, encryption_key=key,
        secret_string_value=SecretValue.unsafe_plain_text(placeholder),
        removal_policy=RemovalPolicy.RETAIN,
        replica_regions=[secretsmanager.ReplicaRegion(region=r) for r in replica_regions] or None,
    )
    acknowledge(secret, "AwsSolutions-SMG4", no_rotation)
    return secret


def replica_binding(scope: Construct, primary: KeyBinding, what: str) -> KeyBinding:
    """A secret certfleet stores in the primary stack (``primary.store``), as ``scope``'s stack reads it: from the
    replica of its region, by name, at the version the primary pinned (weakly referenced)."""
    if primary.store is None:
        raise ValueError(f"{scope.node.path}: bind {what} in its primary stack first")
    stack = Stack.of(scope)
    version = weak_reference(primary.store, "KeyVersion", primary.version_id, scope)
    return KeyBinding(import_secret(stack, primary.secret_name), version, primary.secret_name, primary.store,
                      secret_id=primary.secret_name, key_namespace=primary.key_namespace)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def secret_resource_arn(stack: Stack, secret_id: str, region: str = "") -> str:
    """The IAM resource of exactly one secret, given by name (in ``region``, default the stack's) or ARN: a name or a
    partial ARN ends in ``-??????``, the six random characters Secrets Manager appends."""
    if secret_id.startswith("arn:") or Token.is_unresolved(secret_id):
        return secret_id if Token.is_unresolved(secret_id) or _is_complete_arn(secret_id) else f"{secret_id}-??????"
    return stack.format_arn(service="secretsmanager", resource="secret", resource_name=f"{secret_id}-??????",
                            region=region or None, arn_format=ArnFormat.COLON_RESOURCE_NAME)


def grant_key_read(grantee: iam.IGrantable, binding: KeyBinding, reader: Construct) -> None:
    """Let ``grantee`` read exactly the key secret of ``binding``, and decrypt it through Secrets Manager only.

    ``reader`` is a construct of the stack that holds the grantee's policy (for the region and partition).
    """
    stack = Stack.of(reader)
    region = binding.region or stack.region
    iam.Grant.add_to_principal(
        grantee=grantee, actions=["secretsmanager:GetSecretValue"],  # what a reader calls; DescribeSecret is not read
        resource_arns=[secret_resource_arn(stack, binding.id_for_handler, region)],
    )
    if binding.encryption_key_arn:
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["kms:Decrypt"], resource_arns=[binding.encryption_key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
        )
