"""CertificateSource: where a fleet's certificate and key come from, and what each region's importer is given."""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import Annotations
from constructs import Construct

from certfleet._lambda.certfleet_contract import CertificateProperties
from certfleet.certificate_bundle import ALLOW_EXPIRED_CONTEXT, CertificateBundle
from certfleet.key_source import KeyBinding, KeySource, SealedKeySource

LIST_ITEM_BYTES = 12
"""Indentation, quotes, comma and newline around one string of a list (``Names``) in the CDK's template."""
NAME_USES = 6
"""Descriptions that repeat a certificate's primary name: the alarm, the event rule and their two relays."""


def text_bytes(value: str) -> int:
    """Bytes of ``value`` as a JSON string in a template."""
    return len(json.dumps(value))


class CertificateSource:
    """Where a certificate comes from. Use ``CertificateSource.imported(bundle, key)``."""

    @staticmethod
    def imported(bundle: CertificateBundle, key: KeySource) -> ImportedSource:
        """A certificate from files (``CertificateBundle``) with its private key from ``KeySource``; what
        ``bundle=``/``key=`` mean on ``CertificateFleet`` and ``ImportedCertificate``."""
        return ImportedSource(bundle, key)

    @property
    def primary_name(self) -> str:
        """The name the certificate is known by (descriptions, secret names)."""
        raise NotImplementedError

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the certificate covers."""
        raise NotImplementedError

    @property
    def generation(self) -> tuple[str, ...]:
        """What changes when the certificate is replaced (a fleet's sweeper runs again when it does)."""
        raise NotImplementedError

    @property
    def chain_bytes(self) -> int:
        """Bytes of the chain written into every stack (0 without a chain)."""
        raise NotImplementedError

    def check(self, owner: Construct) -> None:
        """Fail synth, naming ``owner``, when the material cannot be deployed; warn about what merely may hurt."""
        raise NotImplementedError

    def bind_key(
        self, scope: Construct, *, secret_name: str = "", replica_regions: Sequence[str] = (),
        key_namespace: str = "",
    ) -> KeyBinding:
        """The key in ``scope``'s stack, the primary.

        Args:
            scope: a construct of the primary stack.
            secret_name: where a key certfleet stores is written. Default: ``certfleet/cert/<stack>/<name>/key``.
            replica_regions: where that secret is replicated. Default: nowhere.
            key_namespace: the key namespace granted at once to the stack's readers (a FleetGroup's).
                Default: none, the secret alone.
        """
        raise NotImplementedError

    def bind_key_replica(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        """The key as read from the replica of ``scope``'s region."""
        raise NotImplementedError

    def bind_key_remote(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        """The key as a stack of another account reads it (the primary, by full ARN)."""
        raise NotImplementedError

    def resource_properties(self, binding: KeyBinding) -> CertificateProperties:
        """The importer's properties for one region: the certificate and where to read its key (ImportedCertificate
        adds the tags and policies)."""
        raise NotImplementedError

    def template_bytes(self, primary: bool) -> int:
        """What this source's texts add to one stack's template, at most (``primary``: with the key's secret)."""
        raise NotImplementedError

    def warn(self, owner: Construct) -> None:
        """Put the material's warnings on ``owner`` (one per construct that imports it)."""


class ImportedSource(CertificateSource):
    """A certificate from files and a key from ``KeySource``: imported into ACM, re-imported on renewal."""

    def __init__(self, bundle: CertificateBundle, key: KeySource) -> None:
        if not isinstance(bundle, CertificateBundle):
            raise TypeError("bundle must be a CertificateBundle (CertificateBundle.from_files(...))")
        if not isinstance(key, KeySource):
            raise TypeError("key must be a KeySource (KeySource.sealed(...) or KeySource.secret(...))")
        self.bundle = bundle
        self.key = key
        self._key_checked = False

    @property
    def primary_name(self) -> str:
        return self.bundle.primary_name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.bundle.names)

    @property
    def generation(self) -> tuple[str, ...]:
        return self.bundle.fingerprint, self.bundle.key_algorithm

    @property
    def chain_bytes(self) -> int:
        return len(self.bundle.chain_pem)

    def check(self, owner: Construct) -> None:
        if not self._key_checked:  # the same key and bundle for every region: a failure stops the first
            self.key.check(self.bundle, owner.node.path)
            self._key_checked = True
        check_expiry(owner, self.bundle)

    def bind_key(
        self, scope: Construct, *, secret_name: str = "", replica_regions: Sequence[str] = (),
        key_namespace: str = "",
    ) -> KeyBinding:
        return self.key.bind(scope, self.bundle, secret_name=secret_name, replica_regions=replica_regions,
                             key_namespace=key_namespace)

    def bind_key_replica(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        return self.key.bind_replica(scope, primary)

    def bind_key_remote(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        return self.key.bind_remote(scope, primary)

    def resource_properties(self, binding: KeyBinding) -> CertificateProperties:
        bundle = self.bundle
        return CertificateProperties(
            Certificate=bundle.certificate_pem,
            CertificateChain=bundle.chain_pem,
            Fingerprint=bundle.fingerprint,
            KeyAlgorithm=bundle.key_algorithm,
            KeySecretId=binding.id_for_handler,
            KeySecretVersionId=binding.version_id,
        )

    def template_bytes(self, primary: bool) -> int:
        bundle = self.bundle
        names = list(bundle.names)
        size = text_bytes(bundle.certificate_pem) + text_bytes(bundle.chain_pem) + len(json.dumps(names)) \
            + LIST_ITEM_BYTES * len(names) + NAME_USES * text_bytes(bundle.primary_name)
        if primary and isinstance(self.key, SealedKeySource):
            sealed = self.key.sealed_key
            size += 4 * len(sealed.ciphertext) // 3 + 8 + 2 * text_bytes(sealed.name)
        return size

    def warn(self, owner: Construct) -> None:
        for finding in self.bundle.warnings:
            Annotations.of(owner).add_warning_v2(f"certfleet:{finding.code}", str(finding))


def check_expiry(construct: Construct, bundle: CertificateBundle) -> None:
    """Refuse an expired certificate at synth, unless this deploy names its fingerprint (break-glass).

    A certificate expiring within 30 days is a warning on the construct (``certfleet:expires-soon``); one that
    has expired (read with ``allow_expired=True``) fails the synth unless the context key
    ``certfleet:allowExpiredCertificate`` holds its SHA-256 fingerprint, which makes it a warning.
    """
    if bundle.expired is None:
        return
    allowed = construct.node.try_get_context(ALLOW_EXPIRED_CONTEXT)
    fingerprints = {
        part.strip().replace(":", "").lower() for part in str(allowed or "").split(",") if part.strip()
    }
    when = f"{bundle.not_after:%Y-%m-%d %H:%M} UTC"
    if bundle.fingerprint in fingerprints:
        Annotations.of(construct).add_warning_v2(
            "certfleet:expired-allowed",
            f"the certificate {bundle.primary_name} ({bundle.source}) expired on {when}; deployed anyway because "
            f"{ALLOW_EXPIRED_CONTEXT} names it. ACM refuses to import an expired certificate, so this deploy works "
            "only while the certificate is unchanged (already imported). Renew it now.",
        )
        return
    raise ValueError(
        f"{construct.node.path}: the certificate {bundle.primary_name} ({bundle.source}, sha256 "
        f"{bundle.fingerprint}) expired on {when}; ACM refuses expired certificates and every client will too. "
        "Fix: renew it with the CA and point CertificateBundle.from_files at the new files. Break-glass (ship "
        f"another change while the renewal is on its way): cdk deploy -c {ALLOW_EXPIRED_CONTEXT}={bundle.fingerprint}",
    )
