"""A throw-away PKI for demos and tests: a root, an intermediate and leaves, generated offline.

Nothing here is secret or trusted; every key is made fresh in memory and written 0400 when written.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certfleet.material.keys import generate_key, private_pem, write_secret_file

DEMO_NAMES = ("www.example.com", "example.com")

#: The hashes ``CertificateBuilder.sign`` takes (SHA-1 is refused by cryptography; see tests for a v1/SHA-1 helper).
SigningHash = (
    hashes.SHA224 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512
    | hashes.SHA3_224 | hashes.SHA3_256 | hashes.SHA3_384 | hashes.SHA3_512
)


def _name(common_name: str, org: str = "certfleet demo") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


@dataclass
class Issued:
    """A certificate with the key that belongs to it."""

    certificate: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes = field(repr=False)

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return private_pem(self.key)


def issue(
    subject: str,
    *,
    issuer: Issued | None = None,
    key: CertificateIssuerPrivateKeyTypes | None = None,
    key_type: str = "rsa-2048",
    names: tuple[str, ...] = (),
    ca: bool = False,
    path_length: int | None = None,
    not_before: dt.datetime | None = None,
    days: int = 90,
    not_after: dt.datetime | None = None,
    hash_algorithm: SigningHash | None = None,
    extensions: tuple[tuple[x509.ExtensionType, bool], ...] = (),
    san: bool = True,
) -> Issued:
    """Issue one certificate (self-signed when ``issuer`` is None)."""
    key = key or generate_key(key_type)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = not_before or now - dt.timedelta(hours=1)
    end = not_after or start + dt.timedelta(days=days)
    signer = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.certificate.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False,
        )
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
        ), critical=True)
    elif san:
        general: list[x509.GeneralName] = []
        for name in names or (subject,):
            try:
                general.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                general.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False,
        )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    algorithm = hash_algorithm if hash_algorithm is not None else _default_hash(signer)
    return Issued(builder.sign(signer, algorithm), key)


def _default_hash(signer: CertificateIssuerPrivateKeyTypes) -> SigningHash | None:
    from cryptography.hazmat.primitives.asymmetric import ed448, ed25519

    return None if isinstance(signer, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()


@dataclass
class DemoPKI:
    """A demo root CA and intermediate CA of one key family."""

    root: Issued
    intermediate: Issued

    @classmethod
    def create(cls, key_type: str = "rsa-2048", label: str = "certfleet demo") -> DemoPKI:
        root = issue(f"{label} Root CA", key_type=key_type, ca=True, days=3650)
        intermediate = issue(f"{label} Intermediate CA", issuer=root, key_type=key_type, ca=True,
                             path_length=0, days=1825)
        return cls(root, intermediate)

    def leaf(
        self, names: tuple[str, ...] = DEMO_NAMES, *, key_type: str = "rsa-2048", **kwargs: Any,
    ) -> Issued:
        return issue(
            names[0], issuer=self.intermediate, key_type=key_type, names=names, **kwargs,
        )

    def chain_pem(self) -> bytes:
        return self.intermediate.pem() + self.root.pem()


def write_demo(
    out: str | Path, *, key_type: str = "rsa-2048", days: int = 365, names: tuple[str, ...] = DEMO_NAMES,
) -> dict[str, Path]:
    """Write the seed's case to ``out``: leaf for www.example.com + example.com, chain, root, key (0400)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    pki = DemoPKI.create(key_type)
    leaf = pki.leaf(names, key_type=key_type, days=days)
    paths = {
        "certificate": folder / "certificate.pem",
        "intermediate": folder / "intermediate.pem",
        "root": folder / "root.pem",
        "chain": folder / "chain.pem",
        "key": folder / "private.key",
    }
    paths["certificate"].write_bytes(leaf.pem())
    paths["intermediate"].write_bytes(pki.intermediate.pem())
    paths["root"].write_bytes(pki.root.pem())
    paths["chain"].write_bytes(pki.chain_pem())
    write_secret_file(paths["key"], leaf.key_pem(), overwrite=True)
    return paths
