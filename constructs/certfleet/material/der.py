"""Bounded BER/DER reading: what a file's structure is, and what opening it with a password would cost.

A hostile file can nest deeply, hold huge element counts or ask for minutes of key derivation: every walk here is
bounded, and a key file's KDF work is counted and refused before any parser derives anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from certfleet.material.findings import MaterialError, error

MAX_KDF_ITERATIONS = 1_000_000  # OpenSSL writes 2,048; OWASP's PBKDF2-SHA256 advice is 600,000
MAX_KDF_WORK = 1_000_000  # per file, all KDFs and password tries: 0.4-1.4 s measured on a busy 2-core machine
MAX_SCRYPT_WORK = 1 << 20  # N * r * p; the usual N=2**14, r=8, p=1 is 2**17
_MAX_DER_DEPTH = 64  # a PKCS#12 nests its KDF parameters about 16 deep
_MAX_DER_NODES = 50_000  # elements read; a PKCS#12 of 1,000 certificates needs about 20,000


class TooComplex(Exception):
    """A structure nested deeper, or holding more elements, than any certificate or key file."""


class _Der(NamedTuple):
    """One BER/DER element of ``data``: its tag, where it starts, where its content starts and stops, its end."""

    data: bytes
    tag: int
    start: int
    content: int
    stop: int
    end: int

    @property
    def value(self) -> bytes:
        return self.data[self.content : self.stop]


class DerReader:
    """A bounded BER/DER reader: definite and indefinite lengths, constructed OCTET STRINGs (as Windows and Java
    write PKCS#12), at most ``_MAX_DER_NODES`` elements read and ``_MAX_DER_DEPTH`` levels, else ``TooComplex``.
    """

    def __init__(self) -> None:
        self.budget = _MAX_DER_NODES
        self._stops: dict[tuple[bytes, int], int] = {}  # indefinite-length elements: each is scanned once

    def element(self, data: bytes, pos: int, end: int, depth: int = 0) -> _Der | None:
        """The element at ``pos`` if it fits before ``end``; None when it is not BER."""
        self.budget -= 1
        if self.budget < 0 or depth > _MAX_DER_DEPTH:
            raise TooComplex
        if end - pos < 2 or data[pos] & 0x1F == 0x1F:
            return None
        tag, first, content = data[pos], data[pos + 1], pos + 2
        if first == 0x80:  # indefinite length: the content runs to an end-of-contents 00 00
            stop = self._stops.get((data, pos))
            if stop is None:
                stop = content
                while tag & 0x20 and end - stop >= 2 and data[stop] | data[stop + 1]:
                    child = self.element(data, stop, end, depth + 1)
                    if child is None:
                        return None
                    stop = child.end
                if not tag & 0x20 or end - stop < 2:
                    return None
                self._stops[(data, pos)] = stop
            return _Der(data, tag, pos, content, stop, stop + 2)
        length = first
        if first > 0x80:
            count = first & 0x7F
            if count > 4 or end - content < count:
                return None
            length = int.from_bytes(data[content : content + count], "big")
            content += count
        if length > end - content:
            return None
        return _Der(data, tag, pos, content, content + length, content + length)

    def children(self, parent: _Der, depth: int = 0) -> list[_Der] | None:
        """The elements inside ``parent`` (for an OCTET STRING: inside its value), or None when they do not fill it."""
        data, pos, stop = parent.data, parent.content, parent.stop
        if parent.tag == 0x24:
            joined = self.octets(parent, depth)
            if joined is None:
                return None
            data, pos, stop = joined, 0, len(joined)
        found: list[_Der] = []
        while pos < stop:
            child = self.element(data, pos, stop, depth + 1)
            if child is None:
                return None
            found.append(child)
            pos = child.end
        return found

    def octets(self, element: _Der, depth: int, nesting: int = 0) -> bytes | None:
        """The value of a primitive or constructed (segmented) OCTET STRING."""
        if element.tag == 0x04:
            return element.value
        if element.tag != 0x24 or nesting > 4:
            return None
        parts: list[bytes] = []
        pos = element.content
        while pos < element.stop:
            child = self.element(element.data, pos, element.stop, depth + 1)
            part = self.octets(child, depth + 1, nesting + 1) if child is not None else None
            if child is None or part is None:
                return None
            parts.append(part)
            pos = child.end
        return b"".join(parts)


OID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")
_OID_PBKDF2 = bytes.fromhex("2a864886f70d01050c")
_OID_SCRYPT = bytes.fromhex("2b06010401da47040b")
_OPAQUE_BAG_OIDS = {bytes.fromhex("2a864886f70d010916") + bytes([n]) for n in (1, 2)} | {
    bytes.fromhex("2a864886f70d010917") + bytes([1])}  # x509Certificate, sdsiCertificate, x509CRL
_PBE_PARAM_OIDS = (
    {bytes.fromhex("2a864886f70d0105") + bytes([n]) for n in (1, 3, 4, 6, 10, 11)}  # PKCS#5 v1.5 PBES1
    | {bytes.fromhex("2a864886f70d010c01") + bytes([n]) for n in range(1, 7)}  # PKCS#12 PBE
    | {_OID_PBKDF2}
)


def _der_int(element: _Der) -> int:
    """An INTEGER's value (0 for anything else); one longer than 8 bytes counts as absurdly large."""
    raw = element.value if element.tag == 0x02 else b""
    return 1 << 64 if len(raw) > 8 else int.from_bytes(raw, "big", signed=True)


@dataclass
class _Costs:
    """What a structure asks of a password: iteration counts, scrypt work, and the encrypted contents it holds
    (PKCS#12 EncryptedContentInfo: algorithm and ciphertext), inside which more key bags may hide."""

    counts: list[int] = field(default_factory=list)
    scrypt: int = 0
    encrypted: list[tuple[_Der, _Der]] = field(default_factory=list)


def _kdf_costs(reader: DerReader, root: _Der) -> _Costs:
    """Every PBES1 / PKCS#12 PBE / PBKDF2 iteration count under ``root``, the largest scrypt N*r*p, and every
    encrypted content."""
    costs = _Costs()
    stack: list[tuple[_Der, int]] = [(root, 0)]
    while stack:
        element, depth = stack.pop()
        children = reader.children(element, depth) if element.tag & 0x20 or element.tag == 0x04 else None
        if not children or (children[0].tag == 0x06 and children[0].value in _OPAQUE_BAG_OIDS):
            continue  # a certificate or CRL bag holds no KDF: do not walk thousands of certificate nodes
        if len(children) >= 2 and children[0].tag == 0x06 and children[1].tag == 0x30:
            oid = children[0].value
            params = reader.children(children[1], depth + 1) or []
            if oid in _PBE_PARAM_OIDS and len(params) >= 2:
                costs.counts.append(_der_int(params[1]))
            elif oid == _OID_SCRYPT and len(params) >= 4:
                n, r, p = (_der_int(param) for param in params[1:4])
                costs.scrypt = max(costs.scrypt, n * r * p)
            elif oid == _OID_DATA and len(children) >= 3 and children[2].tag in (0x80, 0xA0):
                costs.encrypted.append((children[1], children[2]))
        stack.extend((child, depth + 1) for child in children)
    return costs


_OID_DATA = bytes.fromhex("2a864886f70d010701")
_OID_PBES2 = bytes.fromhex("2a864886f70d01050d")
_OID_PBE_SHA1_3DES = bytes.fromhex("2a864886f70d010c0103")
_PRF_DIGESTS = {bytes.fromhex("2a864886f70d02") + bytes([n]): name for n, name in (
    (7, "sha1"), (8, "sha224"), (9, "sha256"), (10, "sha384"), (11, "sha512"))}
_AES_CBC_KEY_BYTES = {bytes.fromhex("6086480165030401") + bytes([n]): size for n, size in ((2, 16), (22, 24), (42, 32))}


@dataclass(frozen=True)
class _Scheme:
    """How a PKCS#12 content is encrypted: PBES2 (PBKDF2 + AES-CBC, OpenSSL 3's default) or the legacy
    pbeWithSHAAnd3-KeyTripleDES-CBC (PKCS#12 KDF, as older Windows exports)."""

    legacy: bool
    digest: str
    salt: bytes
    iterations: int
    key_size: int
    iv: bytes

    @property
    def cost(self) -> int:
        """Iterations spent to open it with one password (the legacy KDF runs 3 times: 2 key blocks, the IV)."""
        return 3 * self.iterations if self.legacy else self.iterations


def _scheme(reader: DerReader, algorithm: _Der) -> _Scheme | None:
    """The encryption of an EncryptedContentInfo, or None for a scheme certfleet does not open (RC2, ...)."""
    parts = reader.children(algorithm) or []
    if len(parts) == 2 and parts[0].value == _OID_PBE_SHA1_3DES:
        legacy = reader.children(parts[1]) or []
        return _Scheme(True, "sha1", legacy[0].value, _der_int(legacy[1]), 24, b"") if len(legacy) == 2 else None
    pbes2 = reader.children(parts[1]) if len(parts) >= 2 and parts[0].value == _OID_PBES2 else None
    kdf = reader.children(pbes2[0]) if pbes2 and len(pbes2) == 2 else None
    cipher = reader.children(pbes2[1]) if pbes2 and len(pbes2) == 2 else None
    params = reader.children(kdf[1]) if kdf and len(kdf) == 2 and kdf[0].value == _OID_PBKDF2 else None
    if not params or len(params) < 2 or not cipher or len(cipher) != 2:
        return None
    prf = reader.children(params[-1]) if len(params) > 2 and params[-1].tag == 0x30 else None
    digest = _PRF_DIGESTS.get(prf[0].value) if prf else "sha1"
    size = _AES_CBC_KEY_BYTES.get(cipher[0].value)
    if digest is None or size is None or len(cipher[1].value) != 16:
        return None
    return _Scheme(False, digest, params[0].value, _der_int(params[1]), size, cipher[1].value)


def _decrypt(reader: DerReader, scheme: _Scheme, content: _Der, password: bytes | None) -> bytes | None:
    """The plaintext of an encrypted content, or None when the password does not open it."""
    if content.tag == 0x80:
        ciphertext: bytes | None = content.value
    else:  # BER: [0] holding OCTET STRING segments
        pieces = [reader.octets(segment, 1) for segment in reader.children(content) or []]
        ciphertext = b"".join(p for p in pieces if p is not None) if None not in pieces else None
    block = 8 if scheme.legacy else 16
    if not ciphertext or len(ciphertext) % block or not 0 < scheme.iterations <= MAX_KDF_ITERATIONS:
        return None
    if scheme.legacy:
        try:  # OpenSSL: the password as a NUL-terminated BMPString; no password at all is empty
            secret = password.decode().encode("utf-16-be") + b"\0\0" if password is not None else b""
        except UnicodeDecodeError:
            return None
        key = _pkcs12_kdf(secret, scheme.salt, 1, scheme.iterations, 24)
        iv = _pkcs12_kdf(secret, scheme.salt, 2, scheme.iterations, 8)
        decryptor = Cipher(TripleDES(key), modes.CBC(iv)).decryptor()
    else:
        key = hashlib.pbkdf2_hmac(scheme.digest, password or b"", scheme.salt, scheme.iterations, scheme.key_size)
        decryptor = Cipher(algorithms.AES(key), modes.CBC(scheme.iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    pad = padded[-1]
    return padded[:-pad] if 1 <= pad <= block and padded[-pad:] == bytes([pad]) * pad else None


def _pkcs12_kdf(secret: bytes, salt: bytes, purpose: int, iterations: int, size: int) -> bytes:
    """RFC 7292 appendix B.2 with SHA-1: ``purpose`` 1 derives a key, 2 an IV."""
    u, v = 20, 64

    def fill(data: bytes) -> bytes:
        length = v * -(-len(data) // v)
        return (data * (length // len(data) + 1))[:length] if data else b""

    block = bytearray(fill(salt) + fill(secret))
    out = b""
    while len(out) < size:
        digest = bytes([purpose]) * v + bytes(block)
        for _ in range(iterations):
            digest = hashlib.sha1(digest).digest()  # noqa: S324 - the legacy PKCS#12 KDF is defined on SHA-1
        out += digest
        addend = int.from_bytes((digest * (v // u + 1))[:v], "big") + 1
        for j in range(0, len(block), v):
            value = (int.from_bytes(block[j : j + v], "big") + addend) % (1 << (8 * v))
            block[j : j + v] = value.to_bytes(v, "big")
    return out[:size]


@dataclass
class KdfBudget:
    """The password-derivation iterations one file may still spend, over all its keys and password tries."""

    left: int = MAX_KDF_WORK


def check_kdf_cost(
    data: bytes, name: str, *, passwords: Sequence[bytes | None] = (b"",), pkcs12_mac: bool = False,
    budget: KdfBudget | None = None,
) -> None:
    """Refuse a key file whose password derivations would take minutes, before the parser derives anything.

    Reads every KDF's cost out of the BER/DER (bounded), and for PKCS#12 the MAC iterations, spent once per
    password tried; the work is taken from ``budget`` (the file's). A PKCS#12's PBES2-encrypted contents are
    opened with each password, as the parser will, and the key bags they hide are counted too. A PKCS#12 that
    cannot be walked is refused: its parser would have to guess too.
    """
    budget = budget or KdfBudget()
    reader = DerReader()
    try:
        root = reader.element(data, 0, len(data))
        if root is None:
            if pkcs12_mac:
                raise MaterialError(error(
                    "unreadable", "the PKCS#12 file is damaged: its structure cannot be read",
                    "export it again from the program that made it", name,
                ))
            return  # not BER: the key parser refuses it without deriving anything
        costs = _kdf_costs(reader, root)
        top = (reader.children(root) or []) if pkcs12_mac else []
        mac_data = reader.children(top[2]) if len(top) >= 3 and top[2].tag == 0x30 else None
        mac = _der_int(mac_data[2]) if mac_data and len(mac_data) >= 3 else 0
        schemes = [(_scheme(reader, alg), content) for alg, content in costs.encrypted] if pkcs12_mac else []
        peek = sum(scheme.cost for scheme, _ in schemes if scheme is not None) * len(passwords)
        _spend(budget, name, costs, more=mac * len(passwords) + peek, tries=len(passwords), extra=[mac])
        for scheme, content in schemes:
            for password in passwords if scheme is not None else ():
                plain = _decrypt(reader, scheme, content, password) if scheme is not None else None
                inner = reader.element(plain, 0, len(plain)) if plain else None
                if inner is not None and plain is not None and inner.end == len(plain):
                    _spend(budget, name, _kdf_costs(reader, inner))
    except TooComplex:
        raise MaterialError(error(
            "unreadable", "the file's structure is nested deeper or is larger than any key file",
            "this is not a real certificate or key file; get a fresh copy", name,
        )) from None


def _spend(
    budget: KdfBudget, name: str, costs: _Costs, *, more: int = 0, tries: int = 1, extra: Sequence[int] = (),
) -> None:
    """Take ``costs`` (and ``more`` iterations) from ``budget``, or refuse the file with a sentence."""
    most, work = max([*extra, *costs.counts, 0]), sum(costs.counts) + more
    if most <= MAX_KDF_ITERATIONS and work <= budget.left and costs.scrypt <= MAX_SCRYPT_WORK:
        budget.left -= work
        return
    asks = (
        f"scrypt work N*r*p = {costs.scrypt:,} (certfleet allows {MAX_SCRYPT_WORK:,})"
        if costs.scrypt > MAX_SCRYPT_WORK
        else f"{most:,} password-derivation iterations (certfleet allows {MAX_KDF_ITERATIONS:,})"
        if most > MAX_KDF_ITERATIONS
        else f"{work:,} more password-derivation iterations ({tries} password tries), past the "
        f"{MAX_KDF_WORK:,} certfleet allows per file"
    )
    raise MaterialError(error(
        "unreadable", f"opening the file would take {asks}: far too slow, so it was not tried",
        "re-export it with ordinary settings (openssl pkcs12 -export -iter 2048 ..., or "
        "openssl pkcs8 -topk8 -iter 100000 ...)", name,
    ))


def first_der_element(der: bytes) -> bytes:
    """Trim trailing data (OpenSSL's TRUSTED CERTIFICATE aux block) after the first DER element."""
    if len(der) < 2 or der[0] != 0x30:
        return der
    first = der[1]
    if first < 0x80:
        return der[: 2 + first]
    count = first & 0x7F
    if count == 0 or count > 4 or len(der) < 2 + count:
        return der
    length = int.from_bytes(der[2 : 2 + count], "big")
    return der[: 2 + count + length]



def der_truncated(data: bytes) -> bool:
    """True when the outer DER SEQUENCE announces more bytes than the file holds."""
    if len(data) < 2:
        return True
    first = data[1]
    if first < 0x80:
        return 2 + first > len(data)
    count = first & 0x7F
    if count == 0 or count > 4:
        return False  # indefinite length (BER) or absurd: let the parsers decide
    if len(data) < 2 + count:
        return True
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big") > len(data)



def is_pkcs7_signed_data(data: bytes) -> bool:
    """True when ``data`` starts like ContentInfo {signedData, ...}, DER or BER."""
    if len(data) < 2 or data[0] != 0x30:
        return False
    offset = 2 + (data[1] & 0x7F if data[1] > 0x80 else 0)
    try:
        oid = DerReader().element(data, offset, len(data))
    except TooComplex:
        return False
    return oid is not None and oid.tag == 0x06 and oid.value == OID_SIGNED_DATA


def looks_like_pkcs12(data: bytes) -> bool:
    # PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData OPTIONAL }
    body = first_der_element(data)
    if len(body) < 5:
        return False
    offset = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
    return data[offset : offset + 3] == b"\x02\x01\x03"


def der_key_container(data: bytes) -> str:
    offset = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
    # version INTEGER, then: SEQUENCE (PKCS#8 AlgorithmIdentifier), OCTET STRING (SEC1), INTEGER (PKCS#1)
    version_end = offset + 2 + data[offset + 1] if len(data) > offset + 1 else offset
    tag = data[version_end] if len(data) > version_end else 0
    return {0x30: "PKCS#8", 0x04: "SEC1", 0x02: "PKCS#1"}.get(tag, "DER")
