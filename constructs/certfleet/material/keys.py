"""Private keys and certificate signing requests, written so that a key is never world-readable."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PrivateKeyTypes
from cryptography.x509.oid import NameOID

from certfleet.material.findings import MaterialError, error
from certfleet.material.names import name_problem, printable, to_a_label, to_u_label
from certfleet.rules import ACM_KEY_ALGORITHMS

CSR_CONFIG_LIMIT = 1024 * 1024
"""A CSR config is a few hundred bytes of TOML; a larger file is the wrong file (or a device)."""

KEY_TYPES = ("rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384")


def generate_key(key_type: str) -> CertificateIssuerPrivateKeyTypes:
    """A new private key of one of ``KEY_TYPES``, every one of them importable into ACM."""
    if key_type.startswith("rsa-") and key_type in KEY_TYPES:
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    raise ValueError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")


def private_pem(key: PrivateKeyTypes) -> bytes:
    """Unencrypted PKCS#8 PEM: the form ACM ImportCertificate takes."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    )


def write_secret_file(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to a file created 0400 from the first byte (O_EXCL; never briefly world-readable)."""
    target = Path(path)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp") if overwrite else target
    if not overwrite and target.exists():
        raise MaterialError(error(
            "file-exists", "the file already exists and certfleet never overwrites a key",
            "choose another --out, or move the old file away first", str(target),
        ))
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o400)  # exactly 0400, whatever the umask took away
            handle.write(data)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if overwrite:
        os.replace(temp, target)


@dataclass
class CsrConfig:
    """What goes into a CSR: the seed's csr.conf, as TOML."""

    common_name: str
    sans: list[str] = field(default_factory=list)
    country: str | None = None
    state: str | None = None
    locality: str | None = None
    organization: str | None = None
    organizational_unit: str | None = None
    email: str | None = None

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> CsrConfig:
        """Read a TOML config; unknown keys are refused by name so that a typo is not silently dropped."""
        from certfleet.material.loader import read_regular_file

        raw = read_regular_file(path, limit=CSR_CONFIG_LIMIT, what="CSR config")
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise MaterialError(error("csr-config-invalid", "not UTF-8 text", "save the config as UTF-8",
                                      str(path))) from None
        except tomllib.TOMLDecodeError as exc:
            raise MaterialError(error("csr-config-invalid", f"not valid TOML: {exc}", "fix the syntax",
                                      str(path))) from None
        subject = data.pop("subject", {})
        if not isinstance(subject, dict):
            raise MaterialError(error("csr-config-invalid", "[subject] must be a table", "", str(path)))
        twice = sorted(set(subject) & set(data))
        if twice:
            raise MaterialError(error(
                "csr-config-invalid", f"{', '.join(twice)} is given both at the top level and under [subject]",
                "keep one of the two", str(path),
            ))
        merged = {**subject, **data}
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(merged) - allowed)
        if unknown:
            raise MaterialError(error(
                "csr-config-invalid", f"unknown key(s): {', '.join(unknown)}",
                f"allowed keys: {', '.join(sorted(allowed))}", str(path),
            ))
        if not merged.get("common_name"):
            raise MaterialError(error("csr-config-invalid", "common_name is missing",
                                      'add common_name = "www.example.com"', str(path)))
        wrong = sorted(k for k, v in merged.items() if k != "sans" and not isinstance(v, str))
        if wrong:
            raise MaterialError(error(
                "csr-config-invalid", f"{', '.join(wrong)} must be text", 'quote the value: country = "US"',
                str(path),
            ))
        sans = merged.get("sans", [])
        if not isinstance(sans, list) or not all(isinstance(s, str) for s in sans):
            raise MaterialError(error("csr-config-invalid", "sans must be a list of names",
                                      'sans = ["www.example.com", "example.com"]', str(path)))
        config = cls(**merged)
        config.checked_names(str(path))
        return config

    def names(self) -> list[str]:
        """SANs with the common name first and no duplicates: browsers read only the SANs."""
        out: list[str] = []
        for name in [self.common_name, *self.sans]:
            if name.lower() not in (n.lower() for n in out):
                out.append(name)
        return out


    def checked_names(self, where: str = "") -> list[str]:
        """``names()`` as they go into a CSR: international names as A-labels, each a valid host name or IP.

        Raises ``MaterialError`` (``name-invalid``) naming the first name a CA would refuse: an email address,
        a space, an underscore, a second wildcard, a trailing dot...
        """
        out: list[str] = []
        for name in self.names():
            try:
                ipaddress.ip_address(name)
            except ValueError:
                pass
            else:
                out.append(name)
                continue
            try:
                encoded = to_a_label(name)
            except ValueError as exc:
                raise MaterialError(error("name-invalid", str(exc), "", where)) from None
            problem = name_problem(encoded)
            if problem:
                fix = ('put it in the subject: email = "..." ([subject] in the TOML)' if "@" in name
                       else "give a host name: letters, digits, hyphens and dots, * only as the whole first label")
                raise MaterialError(error(
                    "name-invalid", f"{printable(name)} cannot go in a certificate: {problem}", fix, where,
                ))
            if encoded.lower() not in (n.lower() for n in out):
                out.append(encoded)
        return out

    def display_names(self) -> list[str]:
        """The names as the CSR holds them, A-labels with their U-label (``xn--bcher-kva.example (bücher.example)``)."""
        return [n if to_u_label(n) == n else f"{n} ({to_u_label(n)})" for n in self.checked_names()]


def check_csr_key(key: PrivateKeyTypes) -> None:
    """Refuse a key ACM cannot import (Ed25519, DSA, RSA above 4096, other curves): its certificate would be useless."""
    from certfleet.material.checks import key_algorithm

    algorithm = key_algorithm(key.public_key())
    if algorithm not in ACM_KEY_ALGORITHMS:
        raise MaterialError(error(
            "key-algorithm-unsupported",
            f"ACM cannot import a certificate for a {algorithm} key; it takes RSA 1024-4096 and EC P-256/P-384/P-521",
            "generate an importable key: certfleet keygen --type ec-p256 (or rsa-2048)", "",
        ))


def build_csr(key: PrivateKeyTypes, config: CsrConfig) -> x509.CertificateSigningRequest:
    """A SHA-256 CSR with the subject and SANs of ``config``, for a key ACM can import.

    Raises ``MaterialError`` for a key ACM cannot import and for any name a CA would refuse; international
    names go in as A-labels (the Common Name too).
    """
    check_csr_key(key)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):  # what check_csr_key lets through
        raise MaterialError(error("key-algorithm-unsupported", "this key cannot sign a CSR", "", ""))
    names = config.checked_names()
    common_name = names[0]
    attrs = [
        (NameOID.COUNTRY_NAME, config.country),
        (NameOID.STATE_OR_PROVINCE_NAME, config.state),
        (NameOID.LOCALITY_NAME, config.locality),
        (NameOID.ORGANIZATION_NAME, config.organization),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, config.organizational_unit),
        (NameOID.COMMON_NAME, common_name),
        (NameOID.EMAIL_ADDRESS, config.email),
    ]
    try:
        subject = x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs if value])
    except ValueError as exc:
        raise MaterialError(error("csr-config-invalid", str(exc), "fix the subject field", "")) from None
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(x509.SubjectAlternativeName(general), critical=False)
        .sign(key, hashes.SHA256())
    )
