"""What a loaded file holds (``LoadedFile``, ``KeyItem``) and the readers every format shares: certificates parsed
fully, private keys checked, PKCS#7 bundles, and the findings more than one format reports."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7

from certfleet.material.der import OID_SIGNED_DATA, DerReader, TooComplex
from certfleet.material.findings import Finding, MaterialError, error

MAX_CERTIFICATES = 1000  # six times Mozilla's whole root store; a real chain holds fewer than ten


@dataclass
class KeyItem:
    """A private key found in a file. ``key`` is None while it is encrypted and no password opened it."""

    key: PrivateKeyTypes | None
    container: str
    encrypted: bool
    source: str


class DamagedBlockError(MaterialError):
    """A file where some blocks were read and at least one is damaged: ``loaded`` holds what was read."""

    def __init__(self, finding: Finding, loaded: LoadedFile) -> None:
        super().__init__(finding)
        self.loaded = loaded


@dataclass
class LoadedFile:
    """What one file holds, in the order it holds it."""

    path: str
    format: str
    certificates: list[x509.Certificate] = field(default_factory=list)
    keys: list[KeyItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mode: int | None = None


def check_count(certificates: int, name: str) -> None:
    if certificates > MAX_CERTIFICATES:
        raise MaterialError(error(
            "unreadable", f"the file holds {certificates:,} certificates; certfleet reads at most "
            f"{MAX_CERTIFICATES:,} from one file",
            "give only the certificate and its chain, not a whole certificate store", name,
        ))


def parse_fully(cert: x509.Certificate, name: str) -> None:
    """cryptography parses names, extensions and keys on first use: parse them now, where an error is a sentence."""
    part = "subject"
    try:
        cert.subject.rfc4514_string()
        part = "issuer"
        cert.issuer.rfc4514_string()
        part = "validity"
        _ = cert.not_valid_before_utc, cert.not_valid_after_utc
        part = "extensions"
        list(cert.extensions)
        part = "public key"
        cert.public_key()
    except UnsupportedAlgorithm:
        raise MaterialError(error(
            "unreadable", "a certificate has a public key of a type certfleet cannot read (nor ACM import)",
            "ask the CA for an RSA or EC certificate", name,
        )) from None
    except (ValueError, x509.InvalidVersion, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        raise MaterialError(error(
            "unreadable", f"a certificate is malformed: its {part} cannot be parsed",
            "the file is damaged or was produced by broken software; get a fresh copy from the CA", name,
        )) from None


def der_certificate(der: bytes, name: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion):
        raise MaterialError(error(
            "unreadable", "a CERTIFICATE block does not hold a valid X.509 certificate",
            "the block is damaged; get a fresh copy from the CA", name,
        )) from None


_BER_NOTE = (
    "the PKCS#7 data is BER, not strict DER (for example certificates out of DER order, as `openssl crl2pkcs7` "
    "writes a chain); read anyway"
)


def pkcs7_certificates(der: bytes, name: str) -> tuple[list[x509.Certificate], list[str]]:
    """The certificates of a PKCS#7 signedData and the notes to print; a BER fallback is a note, not a warning.

    cryptography warns (and may one day refuse) when the certificates are not in DER SET order: the
    certificates are then taken out of the structure directly. ``UnsupportedAlgorithm``: not signedData.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            certs = list(pkcs7.load_der_pkcs7_certificates(der))
    except UnsupportedAlgorithm:
        raise MaterialError(error(
            "unreadable", "the PKCS#7 data is not a certificate bundle (it holds no signed-data certificates)",
            "export the certificates as a .p7b (PKCS#7 certificates only) or as PEM", name,
        )) from None
    except (ValueError, x509.InvalidVersion):
        certs = _pkcs7_certificates_lenient(der, name)
        if not certs:
            raise MaterialError(error(
                "unreadable", "the PKCS#7 data holds no readable certificates",
                "get a fresh copy of the .p7b from the CA", name,
            )) from None
        return certs, [_BER_NOTE]
    return certs, [_BER_NOTE] if any("BER" in str(w.message) for w in caught) else []


def _pkcs7_certificates_lenient(der: bytes, name: str) -> list[x509.Certificate]:
    """The certificates of ContentInfo{signedData, [0] SignedData{..., [0] certificates}}, in any order."""
    reader = DerReader()
    try:
        outer = reader.element(der, 0, len(der))
        top = reader.children(outer) if outer is not None and outer.tag == 0x30 else None
        if not top or len(top) < 2 or top[0].value != OID_SIGNED_DATA or top[1].tag != 0xA0:
            return []
        inner = reader.children(top[1])
        fields = reader.children(inner[0]) if inner and inner[0].tag == 0x30 else None
        sets = [reader.children(f) for f in fields or [] if f.tag == 0xA0]  # [0] IMPLICIT SET OF Certificate
    except TooComplex:
        return []
    certs: list[x509.Certificate] = []
    for element in (e for found in sets for e in found or []):
        check_count(len(certs) + 1, name)
        try:
            certs.append(x509.load_der_x509_certificate(element.data[element.start : element.end]))
        except (ValueError, x509.InvalidVersion):
            return []
    return certs


def private_key(data: bytes, password: bytes | None, *, der: bool) -> PrivateKeyTypes:
    """Load a private key; an RSA key must be self-consistent (``_rsa_consistent``).

    Raises ``ValueError`` for a damaged key, ``TypeError`` for a missing or needless password.
    """
    load = serialization.load_der_private_key if der else serialization.load_pem_private_key
    key = load(data, password, unsafe_skip_rsa_key_validation=True)
    if isinstance(key, rsa.RSAPrivateKey) and not _rsa_consistent(key):
        raise ValueError("the RSA key's numbers do not fit together")
    return key


def _rsa_consistent(key: rsa.RSAPrivateKey) -> bool:
    """p, q, d and the CRT values fit n and e, which any damage breaks.

    OpenSSL's own validation also tests p and q for primality: 0.3 s at 2048 bits and 1.5 s at 4096 on a busy
    machine, so a file of a thousand keys took minutes. These checks are big-integer arithmetic: microseconds.
    """
    numbers = key.private_numbers()
    p, q, d = numbers.p, numbers.q, numbers.d
    n, e = numbers.public_numbers.n, numbers.public_numbers.e
    if min(p, q) < 3 or p * q != n:
        return False
    lam = (p - 1) * (q - 1) // math.gcd(p - 1, q - 1)
    return (
        (e * d) % lam == 1 and numbers.dmp1 == d % (p - 1) and numbers.dmq1 == d % (q - 1)
        and (numbers.iqmp * q) % p == 1
    )


def csr_not_certificate(name: str) -> Finding:
    return error(
        "csr-not-certificate",
        "this is a certificate signing request (CSR), not a certificate",
        "send the CSR to your CA and use the certificate it returns", name,
    )


def empty_password(name: str) -> Finding:
    # cryptography takes an empty password for none at all; say what happened instead of a cipher error
    return error(
        "password-wrong", "the password given is empty, and this key is encrypted",
        "check that the variable given with --password-env is set to the passphrase, or that the file given "
        "with --password-file holds it on its first line", name,
    )


def wrong_password(name: str) -> Finding:
    return error(
        "password-wrong", "the password does not open this file",
        "check the value of the variable or file given with --password-env / --password-file", name,
    )
