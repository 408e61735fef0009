"""CertificateSource: where a fleet's certificate and key come from, and what each region's importer is given."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from aws_cdk import Annotations, Stack
from constructs import Construct

from certfleet._lambda.certfleet_contract import ACME_SOURCE, SOURCE_TAG, CertificateProperties, Tag
from certfleet.acme import AcmeIssuer
from certfleet.acme_order import AcmeAccount, AcmeOrder, FleetTarget
from certfleet.certificate_bundle import ALLOW_EXPIRED_CONTEXT, CertificateBundle
from certfleet.key_source import (
    KeyBinding,
    KeySource,
    SealedKeySource,
    key_namespace,
    key_secret_name,
    replica_binding,
)

if TYPE_CHECKING:  # pragma: no cover
    from aws_cdk import aws_route53 as route53

__all__ = ["AcmeSource", "CertificateSource", "FleetTarget", "ImportedSource", "check_expiry", "text_bytes"]

LIST_ITEM_BYTES = 12
"""Indentation, quotes, comma and newline around one string of a list (``Names``) in the CDK's template."""
NAME_USES = 6
"""Descriptions that repeat a certificate's primary name: the alarm, the event rule and their two relays."""
ACME_ISSUER_BYTES = 6_000
"""An ACME issuer's resources besides its texts: key, secrets, custom resource, schedule (measured about 4 KB)."""


def text_bytes(value: str) -> int:
    """Bytes of ``value`` as a JSON string in a template."""
    return len(json.dumps(value))


class CertificateSource:
    """Where a certificate comes from: ``CertificateSource.imported(bundle, key)`` or ``.acme(...)``."""

    @staticmethod
    def imported(bundle: CertificateBundle, key: KeySource) -> ImportedSource:
        """A certificate from files (``CertificateBundle``) with its private key from ``KeySource``; what
        ``bundle=``/``key=`` mean on ``CertificateFleet`` and ``ImportedCertificate``."""
        return ImportedSource(bundle, key)

    @staticmethod
    def acme(
        *, directory_url: str, domains: Sequence[str],
        hosted_zone: route53.IHostedZone | Mapping[str, route53.IHostedZone], key_type: str = "ec-p256",
        account: AcmeAccount | None = None,
    ) -> AcmeSource:
        """A certificate ordered over ACME (RFC 8555, dns-01 through Route 53) at the first deploy and renewed every
        day it is due, with no deploy: re-imported into the same ARN in every fleet region.

        Args:
            directory_url: the CA's ACME directory (https), e.g. ``https://acme-v02.api.letsencrypt.org/directory``.
            domains: the certificate's names, the first its primary name; wildcards (``*.example.com``) allowed.
            hosted_zone: the Route 53 zone of every domain, or ``{domain: zone}`` when they are in several zones.
            key_type: ``ec-p256``, ``ec-p384``, ``rsa-2048``, ``rsa-3072`` or ``rsa-4096``; fixed for the
                certificate's life (ACM re-imports only the same key type). Default: ``ec-p256``.
            account: the ACME account's contact and External Account Binding. Default: ``AcmeAccount()``, no
                contact, no EAB.
        """
        return AcmeSource(directory_url=directory_url, domains=domains, hosted_zone=hosted_zone, key_type=key_type,
                          account=account)

    @property
    def fleet_wide_id(self) -> bool:
        """Whether the certificate's ``certfleet:id`` tag must be the same in every region (a source that
        re-imports by itself finds the certificates by it). Default: False, each region's construct path."""
        return False

    @property
    def tags(self) -> tuple[Tag, ...]:
        """Tags the source adds to each certificate on import, besides managed-by, fleet and id. Default: none."""
        return ()

    @property
    def policy_bytes(self) -> int:
        """What the source adds to the primary stack's shared ACME roles' policies, at most. Default: 0."""
        return 0

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
        key_namespace: str = "", target: FleetTarget | None = None,
    ) -> KeyBinding:
        """The key in ``scope``'s stack, the primary.

        Args:
            scope: a construct of the primary stack.
            secret_name: where a key certfleet stores is written. Default: ``certfleet/cert/<stack>/<name>/key``.
            replica_regions: where that secret is replicated. Default: nowhere.
            key_namespace: the key namespace granted at once to the stack's readers (a FleetGroup's).
                Default: none, the secret alone.
            target: the fleet the key is bound for (a source that renews by itself needs it). Default: None.
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
        key_namespace: str = "", target: FleetTarget | None = None,
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


class AcmeSource(CertificateSource):
    """A certificate ordered over ACME (dns-01 through Route 53) at the first deploy and renewed with no deploy.

    Use ``CertificateSource.acme(...)``.

    Args:
        directory_url: the CA's ACME directory (https).
        domains: the certificate's names, the first its primary name; wildcards allowed.
        hosted_zone: the Route 53 zone of every domain, or ``{domain: zone}``.
        key_type: the key type ordered, fixed for the certificate's life. Default: ``ec-p256``.
        account: the ACME account's contact and External Account Binding. Default: None, ``AcmeAccount()``.
    """

    def __init__(
        self, *, directory_url: str, domains: Sequence[str],
        hosted_zone: route53.IHostedZone | Mapping[str, route53.IHostedZone], key_type: str = "ec-p256",
        account: AcmeAccount | None = None,
    ) -> None:
        self.order = AcmeOrder.checked(directory_url=directory_url, domains=domains, hosted_zone=hosted_zone,
                                       key_type=key_type, account=account)

    @property
    def directory_url(self) -> str:
        """The CA's ACME directory."""
        return self.order.directory_url

    @property
    def domains(self) -> tuple[str, ...]:
        """The certificate's names, lower case, the primary first."""
        return self.order.domains

    @property
    def key_type(self) -> str:
        """``ec-p256``, ``ec-p384``, ``rsa-2048``, ``rsa-3072`` or ``rsa-4096``."""
        return self.order.key_type

    @property
    def account(self) -> AcmeAccount:
        """The ACME account's contact and External Account Binding."""
        return self.order.account

    @property
    def key_algorithm(self) -> str:
        """ACM's key type of the certificate (``EC_prime256v1``...)."""
        return self.order.key_algorithm

    @property
    def primary_name(self) -> str:
        """The first domain."""
        return self.domains[0]

    @property
    def names(self) -> tuple[str, ...]:
        """The domains, lower case."""
        return self.domains

    @property
    def generation(self) -> tuple[str, ...]:
        """The source, ACM key type and names: a new key type is a new certificate (retired, then swept)."""
        return ACME_SOURCE, self.key_algorithm, ",".join(self.domains)

    @property
    def chain_bytes(self) -> int:
        """0: the chain is ordered at deploy time, never written into a template."""
        return 0

    @property
    def fleet_wide_id(self) -> bool:
        """True: the renewer finds each region's certificate by one ``certfleet:id``."""
        return True

    @property
    def tags(self) -> tuple[Tag, ...]:
        """``certfleet:source=acme``."""
        return (Tag(Key=SOURCE_TAG, Value=ACME_SOURCE),)

    @property
    def policy_bytes(self) -> int:
        """What the order adds to each of the stack's ACME roles' policies, at most."""
        return self.order.policy_bytes

    def check(self, owner: Construct) -> None:
        """Nothing to check at synth beyond the arguments (checked when the source was made)."""

    def bind_key(
        self, scope: Construct, *, secret_name: str = "", replica_regions: Sequence[str] = (),
        key_namespace: str = "", target: FleetTarget | None = None,
    ) -> KeyBinding:
        """The material secret of the fleet's ``AcmeIssuer`` in ``scope``'s stack (made on first use).

        Args:
            scope: a construct of the primary stack.
            secret_name: the material secret's name. Default: ``certfleet/cert/<stack>/<name>/key``.
            replica_regions: where it is replicated. Default: nowhere.
            key_namespace: the key namespace granted at once to the stack's readers. Default: none.
            target: the fleet (its tag, regions and certificate id). Default: None, refused: an ACME source is bound
                by its fleet or certificate.
        """
        stack = Stack.of(scope)
        if target is None:
            raise ValueError(f"{scope.node.path}: an ACME source is bound by its fleet or certificate (no target)")
        name = secret_name or _own_secret_name(stack, self.primary_name)
        issuer = AcmeIssuer.of(stack, self.order, secret_name=name, replica_regions=tuple(replica_regions),
                               target=target)
        return KeyBinding(issuer.secret, issuer.version_id, issuer.secret_name, issuer, key_namespace=key_namespace)

    def bind_key_replica(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        """The material as read from the replica of ``scope``'s region, at the primary's pinned version."""
        return replica_binding(scope, primary, "the ACME source")

    def bind_key_remote(self, scope: Construct, primary: KeyBinding) -> KeyBinding:
        """Refused: an ACME certificate is renewed and re-imported from the primary account only."""
        raise ValueError(
            f"{scope.node.path} is in another account than the ACME source's primary stack: an ACME certificate is "
            "renewed and re-imported from the primary account only. Put every region of this fleet in one account "
            "(a fleet per account, each with its own ACME source).",
        )

    def resource_properties(self, binding: KeyBinding) -> CertificateProperties:
        """Material mode: no ``Certificate``; the material secret and its pinned version, key type and names."""
        return CertificateProperties(
            KeyAlgorithm=self.key_algorithm,
            KeySecretId=binding.id_for_handler,
            KeySecretVersionId=binding.version_id,
            Names=list(self.domains),
        )

    def template_bytes(self, primary: bool) -> int:
        """The names (and, in the primary, the issuer's properties and schedule input), at most."""
        names = list(self.domains)
        size = len(json.dumps(names)) + LIST_ITEM_BYTES * len(names) + NAME_USES * text_bytes(self.primary_name)
        if primary:  # the issuer's properties and the schedule's input (escaped JSON) spell them again
            issuer = len(json.dumps(names)) + text_bytes(self.directory_url) + 120 * len(self.order.zones)
            size += 4 * issuer + ACME_ISSUER_BYTES
        return size


def _own_secret_name(stack: Stack, name: str) -> str:
    return key_secret_name(key_namespace("cert", stack.stack_name), name)


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
