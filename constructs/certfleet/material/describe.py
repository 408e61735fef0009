"""Plain-data descriptions of certificates and keys for `certfleet inspect` (public facts only)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from certfleet.material.bundle import fingerprint, is_ca, is_self_signed, name_of, spki_sha256
from certfleet.material.checks import key_algorithm
from certfleet.material.loader import KeyItem
from certfleet.material.names import dns_names, has_san, ip_addresses


def describe_certificate(cert: x509.Certificate, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.UTC)
    return {
        "subject": name_of(cert),
        "issuer": cert.issuer.rfc4514_string(),
        "names": (dns_names(cert) if has_san(cert) or not is_ca(cert) else []) + ip_addresses(cert),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "days_left": (cert.not_valid_after_utc - now).days,
        "key_algorithm": key_algorithm(cert.public_key()),
        "signature_algorithm": cert.signature_algorithm_oid._name,
        "version": cert.version.name,
        "serial": format(cert.serial_number, "x"),
        "ca": is_ca(cert),
        "self_signed": is_self_signed(cert),
        "sha256": fingerprint(cert),
        "sha1": cert.fingerprint(hashes.SHA1()).hex(),  # noqa: S303 - a fingerprint people compare, not a signature
        "spki_sha256": spki_sha256(cert.public_key()),
    }


def describe_key(item: KeyItem, certs: list[x509.Certificate]) -> dict[str, Any]:
    out: dict[str, Any] = {"container": item.container, "encrypted": item.encrypted}
    if item.key is None:
        out["algorithm"] = None
        out["note"] = "encrypted; give --password-env or --password-file to look inside"
        return out
    spki = spki_sha256(item.key.public_key())
    out["algorithm"] = key_algorithm(item.key.public_key())
    out["spki_sha256"] = spki
    out["matches"] = [name_of(c) for c in certs if _certificate_spki(c) == spki]
    return out


_SPKI_BY_ID: dict[int, tuple[x509.Certificate, str]] = {}


def _certificate_spki(cert: x509.Certificate) -> str:
    """Each certificate's SPKI hash once, not once per key (500 keys x 500 certificates took 3 s).

    Keyed by identity, which is cheap (hashing a Certificate hashes its DER); the entry holds the certificate,
    so its id cannot be reused while the entry lives.
    """
    entry = _SPKI_BY_ID.get(id(cert))
    if entry is None or entry[0] is not cert:
        if len(_SPKI_BY_ID) >= 4096:
            _SPKI_BY_ID.clear()
        entry = _SPKI_BY_ID[id(cert)] = (cert, spki_sha256(cert.public_key()))
    return entry[1]
