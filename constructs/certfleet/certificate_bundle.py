"""CertificateBundle: the public half of the material (certificate + chain), validated when it is read.

A bundle never holds a private key, even when the file it was read from also held one: the key reaches
AWS only through a ``KeySource``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509

from certfleet.material import Finding, Material, MaterialError, assemble, check_material, load_file, normalize
from certfleet.material.bundle import fingerprint, spki_sha256
from certfleet.material.checks import key_algorithm
from certfleet.material.findings import error
from certfleet.material.names import covers, dns_names, escaped, has_san, ip_addresses, name_problem
from certfleet.material.sealed import SealedKey

ALLOW_EXPIRED_CONTEXT = "certfleet:allowExpiredCertificate"
"""CDK context key for a break-glass deploy of an expired certificate: its SHA-256 fingerprint (comma-separated
for several). Read by the certificate constructs, never by the bundle: set it per deploy, never in cdk.json."""


def valid_names(leaf: x509.Certificate) -> tuple[str, ...]:
    """The names the certificate serves, each a valid host name or IP address by construction.

    ``check_material`` already made any invalid DNS name an error; this filter is what lets code that writes
    names into shell scripts and server configs rely on them (a Common Name like "My Company Inc" is dropped).
    """
    dns = [n for n in dns_names(leaf) if name_problem(n, allow_ip=not has_san(leaf)) is None]
    return (*dns, *ip_addresses(leaf))


class CertificateBundleError(ValueError):
    """The certificate files cannot be imported into ACM; the message lists every error with its fix."""


@dataclass(frozen=True)
class CertificateBundle:
    """A leaf certificate and its chain, normalized to exactly what ACM ImportCertificate takes.

    Made by ``from_files`` or ``from_pem``, which check everything; holds public material only.

    Attributes:
        certificate_pem: the leaf certificate, PEM.
        chain_pem: its chain, issuer first, PEM (empty without a chain).
        fingerprint: the leaf's SHA-256 fingerprint, lowercase hex.
        spki_sha256: the SHA-256 of the leaf's public key (SPKI), which a sealed key must match.
        key_algorithm: the key type as ACM names it (``RSA_2048``, ``EC_prime256v1``...).
        names: every DNS name and IP address the certificate covers, the primary first.
        not_after: when the certificate expires (UTC).
        subject: the leaf's subject, RFC 4514.
        source: where it was read from (a file name, or ``PEM text``).
        warnings: findings that do not stop an import. Default: none.
        expired: the ``expired`` finding of a bundle read with ``allow_expired=True``. Default: None.
    """

    certificate_pem: str
    chain_pem: str
    fingerprint: str
    spki_sha256: str
    key_algorithm: str
    names: tuple[str, ...]
    not_after: dt.datetime
    subject: str
    source: str
    warnings: tuple[Finding, ...] = field(default=())
    expired: Finding | None = None
    """The ``expired`` finding of a bundle read with ``allow_expired=True`` (None: the certificate was valid)."""

    @classmethod
    def from_files(
        cls,
        certificate: str | os.PathLike[str],
        *,
        chain: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        password_env: str | None = None,
        now: dt.datetime | None = None,
        allow_expired: bool = False,
    ) -> CertificateBundle:
        """Read a certificate (and chain) in any format, check it, and keep only the public parts.

        Raises ``CertificateBundleError`` listing every error with its fix.

        Args:
            certificate: the file holding the leaf (PEM, DER, PKCS#7, PKCS#12 or a mixed bundle).
            chain: the file(s) holding the chain. Default: None, the chain found in ``certificate`` if any.
            password_env: the environment variable holding a PKCS#12 password. Default: None, no password.
            now: the time validity is checked at. Default: None, the current time.
            allow_expired: keep an expired leaf (``bundle.expired``) for a break-glass deploy (the README's
                "Expiry monitoring"). Default: False.
        """
        from certfleet.material.loader import password_from_env

        paths: list[str | os.PathLike[str]] = [certificate]
        if isinstance(chain, str | os.PathLike):
            paths.append(chain)
        elif chain is not None:
            paths.extend(chain)
        password = password_from_env(password_env) if password_env else None
        try:
            files = [load_file(p, password) for p in paths]
            material = assemble(files, now=now)
        except MaterialError as exc:
            raise CertificateBundleError(f"certificate {certificate}: {exc.finding}") from None
        material.key = None  # the bundle is public material only; keys travel through a KeySource
        material.key_item = None
        findings = check_material(material, now=now)
        return cls._build(material, findings, str(certificate), allow_expired)

    @classmethod
    def from_pem(
        cls, certificate: str, chain: str = "", *, now: dt.datetime | None = None, allow_expired: bool = False,
    ) -> CertificateBundle:
        """Build a bundle from PEM text (the certificate may be followed by its chain).

        Args:
            certificate: the leaf certificate, PEM, possibly followed by its chain.
            chain: the chain, PEM. Default: empty, the chain found after the leaf if any.
            now: the time validity is checked at. Default: None, the current time.
            allow_expired: keep an expired leaf, as ``from_files``. Default: False.
        """
        from certfleet.material.loader import load_bytes

        try:
            files = [load_bytes(certificate.encode(), "certificate")]
            if chain.strip():
                files.append(load_bytes(chain.encode(), "chain"))
            material = assemble(files, now=now)
        except MaterialError as exc:
            raise CertificateBundleError(f"certificate: {exc.finding}") from None
        material.key = None
        material.key_item = None
        return cls._build(material, check_material(material, now=now), "PEM text", allow_expired)

    @classmethod
    def _build(
        cls, material: Material, findings: list[Finding], source: str, allow_expired: bool = False,
    ) -> CertificateBundle:
        expired = next((f for f in findings if f.code == "expired"), None)
        errors = [f for f in findings if f.is_error and not (allow_expired and f is expired)]
        if errors:
            listing = "\n".join(f"  - {f}" for f in errors)
            hint = ""
            if expired is not None and errors == [expired]:
                hint = (
                    "\nbreak-glass (keep deploying the certificate already imported, e.g. to ship another change "
                    "while the renewal is on its way): CertificateBundle.from_files(..., allow_expired=True) and "
                    f"`cdk deploy -c {ALLOW_EXPIRED_CONTEXT}={fingerprint(material.leaf)}`"
                )
            raise CertificateBundleError(
                f"certificate {source} cannot be imported into ACM:\n{listing}\n"
                f"(run `certfleet verify --certificate {source}` for the whole report){hint}"
            )
        normalized = normalize(material)
        leaf = material.leaf
        return cls(
            certificate_pem=normalized.certificate,
            chain_pem=normalized.chain,
            fingerprint=fingerprint(leaf),
            spki_sha256=spki_sha256(leaf.public_key()),
            key_algorithm=key_algorithm(leaf.public_key()),
            names=valid_names(leaf),
            not_after=leaf.not_valid_after_utc,
            subject=escaped(leaf.subject.rfc4514_string()),
            source=source,
            warnings=tuple(f for f in findings if not f.is_error),
            expired=expired,
        )

    @property
    def primary_name(self) -> str:
        """The first name the certificate covers (its subject when it covers none)."""
        return self.names[0] if self.names else self.subject

    def covers(self, name: str) -> bool:
        """True when the certificate is valid for ``name`` (RFC 6125 wildcards)."""
        from certfleet.material.loader import load_bytes

        return covers(load_bytes(self.certificate_pem.encode()).certificates[0], name)

    def check_sealed_key(self, sealed: SealedKey, where: str) -> None:
        """Refuse, before anything deploys, a sealed key that does not belong to this certificate."""
        if sealed.spki_sha256 != self.spki_sha256:
            raise MaterialError(error(
                "key-mismatch",
                f"the sealed key {where} (for {sealed.name!r}, public key sha256 {sealed.spki_sha256[:16]}...) does "
                f"not belong to the certificate {self.subject} (public key sha256 {self.spki_sha256[:16]}...)",
                "seal the key this certificate was issued for: certfleet seal --key <its key> --certificate "
                f"{self.source} ...",
                where,
            ))
