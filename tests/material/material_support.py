"""Test kit for the material and CLI batteries: cached keys, a tiny DER editor, CLI runner, leak checks.

Every key is generated at test time and cached for the whole session (RSA generation is the slow part).
Nothing here is written to the repository.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import json
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PrivateKeyTypes

from certfleet.cli.main import main
from certfleet.material import assemble, check_files, check_material, load_file
from certfleet.material.demo import DemoPKI, Issued, issue
from certfleet.material.findings import Finding
from certfleet.rules import service_named

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


# ---------------------------------------------------------------- keys, cached for the session

class _Background:
    """A slow RSA key generated on a daemon thread from the moment the kit is imported.

    OpenSSL releases the GIL while it looks for primes, so on a machine with two or more CPUs the big key
    (1 to 6 s at 6,656 bits, 1 to 20 s at 7,680) is ready by the time a test needs it, instead of stalling one.
    """

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.key: rsa.RSAPrivateKey | None = None
        self.thread = threading.Thread(target=self._run, name=f"rsa-{bits}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=self.bits)

    def get(self) -> rsa.RSAPrivateKey:
        self.thread.join()
        if self.key is None:  # the thread failed: make it here, where an error shows
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=self.bits)
        return self.key


#: The smallest RSA size (in 128-bit steps) whose PKCS#8 PEM is over ACM's 5,120 bytes: about 5,220 bytes.
#: (PEM bytes ~ 4.5 * bits / 8 * 4 / 3 + headers; the threshold is near 6,500 bits.)
OVERSIZED_RSA_BITS = 6656

_BACKGROUND = {bits: _Background(bits) for bits in (OVERSIZED_RSA_BITS,)}


def quiesce() -> None:
    """Wait for the background key generation (before timing anything)."""
    for job in _BACKGROUND.values():
        job.thread.join()


@functools.cache
def rsa_key(bits: int = 2048, n: int = 0) -> rsa.RSAPrivateKey:
    """The ``n``-th cached RSA key of ``bits`` bits."""
    if n == 0 and bits in _BACKGROUND:
        return _BACKGROUND[bits].get()
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def ec_key(curve: str = "p256", n: int = 0) -> ec.EllipticCurvePrivateKey:
    curves: dict[str, ec.EllipticCurve] = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}
    return ec.generate_private_key(curves[curve])


@functools.cache
def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@functools.cache
def dsa_key() -> dsa.DSAPrivateKey:
    return dsa.generate_private_key(key_size=2048)


@functools.cache
def rsa_pki() -> DemoPKI:
    root = issue("test Root CA", key=rsa_key(2048, 100), ca=True, days=3650)
    inter = issue("test Intermediate CA", issuer=root, key=rsa_key(2048, 101), ca=True, path_length=0, days=1825)
    return DemoPKI(root, inter)


@functools.cache
def other_pki() -> DemoPKI:
    """A second RSA PKI, unrelated to ``rsa_pki``."""
    root = issue("other Root CA", key=rsa_key(2048, 110), ca=True, days=3650)
    inter = issue("other Intermediate CA", issuer=root, key=rsa_key(2048, 111), ca=True, path_length=0, days=1825)
    return DemoPKI(root, inter)


@functools.cache
def ec_pki() -> DemoPKI:
    root = issue("test EC Root CA", key=ec_key("p384", 100), ca=True, days=3650)
    inter = issue("test EC Intermediate CA", issuer=root, key=ec_key("p256", 101), ca=True, path_length=0,
                  days=1825)
    return DemoPKI(root, inter)


@functools.cache
def seed_leaf() -> Issued:
    """The seed's case: RSA 2048, SANs www.example.com and example.com, issued by the test intermediate."""
    return rsa_pki().leaf(("www.example.com", "example.com"), key=rsa_key(2048, 0))


def leaf(names: tuple[str, ...] = ("www.example.com", "example.com"), *,
         key: CertificateIssuerPrivateKeyTypes | None = None, pki: DemoPKI | None = None, **kwargs: Any) -> Issued:
    """A leaf from ``pki`` (default: the RSA test PKI) with a cached key (default: RSA 2048 #1)."""
    return (pki or rsa_pki()).leaf(names, key=key or rsa_key(2048, 1), **kwargs)


# ---------------------------------------------------------------- encodings

def pem(*certs: x509.Certificate | Issued) -> bytes:
    out = b""
    for c in certs:
        cert = c.certificate if isinstance(c, Issued) else c
        out += cert.public_bytes(PEM)
    return out


def key_pem(key: PrivateKeyTypes, fmt: str = "pkcs8", password: bytes | None = None) -> bytes:
    formats = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
    }
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(PEM, formats[fmt], enc)


def key_der(key: PrivateKeyTypes, fmt: str = "pkcs8", password: bytes | None = None) -> bytes:
    formats = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
    }
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(DER, formats[fmt], enc)


def write(path: Path, data: bytes, mode: int = 0o600) -> str:
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


# ---------------------------------------------------------------- a tiny DER editor

def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the element at ``pos``."""
    tag, length, header = data[pos], data[pos + 1], 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos + 2 : pos + 2 + count], "big")
        header = 2 + count
    return tag, pos + header, pos + header + length


def der_element(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def der_children(data: bytes) -> list[bytes]:
    """The elements of a constructed value (``data`` is the value, without its own header)."""
    out, pos = [], 0
    while pos < len(data):
        _, _, end = _tlv(data, pos)
        out.append(data[pos:end])
        pos = end
    return out


def der_value(element: bytes) -> bytes:
    _, start, end = _tlv(element, 0)
    return element[start:end]


_SHA1_RSA = bytes.fromhex("300d06092a864886f70d0101050500")
_SHA1_ECDSA = bytes.fromhex("300906072a8648ce3d0401")


def resign(cert: x509.Certificate, issuer_key: CertificateIssuerPrivateKeyTypes, *,
           v1: bool = False, sha1: bool = False, duplicate_extension: bool = False) -> x509.Certificate:
    """Re-encode ``cert``: as X.509 v1 (no version, no extensions), signed with SHA-1, or with its first
    extension twice. cryptography can build none of these, so the TBSCertificate is edited and signed again.
    """
    tbs, alg, _sig = der_children(der_value(cert.public_bytes(DER)))
    fields = der_children(der_value(tbs))
    if v1:
        fields = [f for f in fields if f[0] not in (0xA0, 0xA3)]
    if duplicate_extension:
        index = next(i for i, f in enumerate(fields) if f[0] == 0xA3)
        extensions = der_children(der_value(der_value(fields[index])))
        fields[index] = der_element(0xA3, der_element(0x30, b"".join([extensions[0], *extensions])))
    digest: hashes.HashAlgorithm = hashes.SHA256()
    if sha1:
        digest = hashes.SHA1()  # noqa: S303 - the point of the test
        alg = _SHA1_RSA if isinstance(issuer_key, rsa.RSAPrivateKey) else _SHA1_ECDSA
        index = next(i for i, f in enumerate(fields) if f[0] == 0x30)  # the signature AlgorithmIdentifier
        fields[index] = alg
    new_tbs = der_element(0x30, b"".join(fields))
    if isinstance(issuer_key, rsa.RSAPrivateKey):
        signature = issuer_key.sign(new_tbs, padding.PKCS1v15(), digest)
    elif isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        signature = issuer_key.sign(new_tbs, ec.ECDSA(digest))
    else:
        raise TypeError("resign handles RSA and EC issuers")
    return x509.load_der_x509_certificate(der_element(0x30, new_tbs + alg + der_element(0x03, b"\0" + signature)))


# ---------------------------------------------------------------- the CLI and what it must never print

@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return json.loads(self.out)

    def codes(self) -> list[str]:
        """Every finding code in --json output (verify and inspect shapes)."""
        data = self.json()
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if "code" in node and "severity" in node:
                    found.append(node["code"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(data)
        return found


def cli(capsys: pytest.CaptureFixture[str], *argv: str, keys: Iterable[PrivateKeyTypes] = ()) -> Run:
    """Run `certfleet ARGV` in-process; assert the output holds no traceback and no key material."""
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    run = Run(code, captured.out, captured.err)
    assert_clean(run.text, keys)
    return run


_KEY_FORMATS = (
    (PEM, serialization.PrivateFormat.PKCS8),
    (PEM, serialization.PrivateFormat.TraditionalOpenSSL),
    (DER, serialization.PrivateFormat.PKCS8),
    (DER, serialization.PrivateFormat.TraditionalOpenSSL),
)


def key_bodies(key: PrivateKeyTypes) -> list[str]:
    """The base64 text of ``key`` in every unencrypted encoding a file could hold."""
    bodies = []
    for encoding, fmt in _KEY_FORMATS:
        try:
            data = key.private_bytes(encoding, fmt, serialization.NoEncryption())
        except ValueError:  # e.g. Ed25519 has no traditional format
            continue
        if encoding is PEM:
            text = data.decode()
            bodies.append("".join(line for line in text.splitlines() if not line.startswith("-----")))
        else:
            bodies.append(base64.b64encode(data).decode())
    return bodies


def assert_clean(text: str, keys: Iterable[PrivateKeyTypes] = ()) -> None:
    """No traceback, no 'PRIVATE KEY' label, no bug report and no 40-character slice of any key body."""
    assert "Traceback" not in text, text
    assert "PRIVATE KEY" not in text, text
    assert "This is a bug" not in text, text
    flat = re.sub(r"\s+", "", text)
    for key in keys:
        for body in key_bodies(key):
            for i in range(0, len(body) - 40 + 1):
                assert body[i : i + 40] not in flat, "key material on screen"


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    import os

    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def sans(cert: x509.Certificate) -> list[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(n) for n in ext.get_values_for_type(x509.DNSName)]


def subjects(certs: Sequence[x509.Certificate]) -> list[str]:
    return [c.subject.rfc4514_string() for c in certs]


# ---------------------------------------------------------------- one finding, through the library and the CLI

def seed_chain() -> bytes:
    return pem(rsa_pki().intermediate, rsa_pki().root)


def check(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    cert: bytes,
    chain: bytes | None = b"seed",
    key: PrivateKeyTypes | None = None,
    key_data: bytes | None = None,
    key_mode: int = 0o400,
    domains: Sequence[str] = (),
    services: Sequence[str] = (),
    extra: Sequence[str] = (),
    code: str,
    severity: str,
    exit: int,
) -> tuple[list[Finding], Run]:
    """Assert ``code`` (with ``severity``) is found by the library and reported by the CLI with ``exit``."""
    cert_path = write(tmp_path / "certificate.pem", cert)
    paths = [cert_path]
    args = ["verify", "--certificate", cert_path]
    if chain == b"seed":
        chain = seed_chain()
    if chain is not None:
        paths.append(write(tmp_path / "chain.pem", chain))
        args += ["--chain", paths[-1]]
    if key is not None or key_data is not None:
        assert key is not None
        paths.append(write(tmp_path / "private.key", key_data or key_pem(key), key_mode))
        args += ["--key", paths[-1]]
    for domain in domains:
        args += ["--domain", domain]
    for service in services:
        args += ["--service", service]
    args += list(extra)
    files = [load_file(p) for p in paths]
    findings = check_material(
        assemble(files), domains=domains, services=[service_named(s) for s in services],
    ) + check_files(files)
    matching = [f for f in findings if f.code == code]
    assert matching, f"{code} not in {[f.code for f in findings]}"
    assert {f.severity.value for f in matching} == {severity}
    assert all(f.message and f.fix for f in matching if f.code != "service-refuses-imported")
    keys = [key] if key is not None else []
    run = cli(capsys, *args, "--json", keys=keys)
    assert code in run.codes(), run.text
    assert run.code == exit, run.text
    assert run.json()["ok"] is (exit == 0)
    text = cli(capsys, *args, keys=keys)
    assert f"{severity} [{code}]" in text.out, text.text
    assert text.code == exit
    assert text.out.rstrip().splitlines()[-1].startswith("result: " + ("ok" if exit == 0 else "FAILED"))
    return findings, text
