"""Read any certificate or key file a CA or a colleague hands over: PEM, DER, PKCS#7, PKCS#12, bundles.

Every reader is tolerant of what real files look like (CRLF, a BOM, text around the armor, old headers)
and strict about what it returns: parsed ``cryptography`` objects, never raw key text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import os
import re
import stat
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certfleet.material.findings import Finding, MaterialError, error

_PEM_MARKER = re.compile(r"-----(BEGIN|END) ([A-Z0-9 #]{1,64})-----")
_CERT_LABELS = {"CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"}
_KEY_LABELS = {
    "PRIVATE KEY": "PKCS#8",
    "ENCRYPTED PRIVATE KEY": "PKCS#8",
    "RSA PRIVATE KEY": "PKCS#1",
    "EC PRIVATE KEY": "SEC1",
    "DSA PRIVATE KEY": "DSA (traditional)",
}
_IGNORED_LABELS = {"EC PARAMETERS", "PUBLIC KEY", "RSA PUBLIC KEY", "X509 CRL", "DH PARAMETERS"}
_CSR_LABELS = {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"}
_PKCS7_LABELS = {"PKCS7", "PKCS #7 SIGNED DATA", "CERTIFICATE CHAIN"}
MAX_INPUT_BYTES = 4 * 1024 * 1024  # 2x ACM's largest import: 32 KiB certificate + 2 MiB chain + 5 KiB key
MAX_CERTIFICATES = 1000  # six times Mozilla's whole root store; a real chain holds fewer than ten
MAX_PEM_BLOCKS = 1000
MAX_KDF_ITERATIONS = 1_000_000  # OpenSSL writes 2,048; OWASP's PBKDF2-SHA256 advice is 600,000
MAX_KDF_WORK = 1_000_000  # per file, all KDFs and password tries: 0.4-1.4 s measured on a busy 2-core machine
MAX_SCRYPT_WORK = 1 << 20  # N * r * p; the usual N=2**14, r=8, p=1 is 2**17
_MAX_DER_DEPTH = 64  # a PKCS#12 nests its KDF parameters about 16 deep
_MAX_DER_NODES = 50_000  # elements read; a PKCS#12 of 1,000 certificates needs about 20,000


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


def password_from_env(variable: str) -> bytes:
    """Read a passphrase from an environment variable (never from argv, where `ps` would show it)."""
    value = os.environ.get(variable)
    if value is None:
        raise MaterialError(error(
            "password-env-unset", f"the environment variable {variable} is not set",
            f"export {variable}=... before running, or use --password-file",
        ))
    return value.encode()


def password_from_file(path: str | os.PathLike[str]) -> bytes:
    """Read a passphrase from the first line of a file."""
    try:
        data = read_regular_file(path, limit=64 * 1024, what="password file")
    except MaterialError as exc:
        raise MaterialError(replace(exc.finding, code="password-file-unreadable")) from None
    return data.splitlines()[0] if data else b""


def read_regular_file(path: str | os.PathLike[str], *, limit: int, what: str = "file") -> bytes:
    """Read a regular file of at most ``limit`` bytes; refuse devices, FIFOs, sockets and folders without blocking.

    A special file is refused before it is opened; the file is then opened non-blocking (a FIFO swapped in
    meanwhile returns at once) and judged again by ``fstat`` of the opened descriptor, which is what is read.
    Symbolic links are followed.
    Raises ``MaterialError`` naming the path, the problem and the fix.
    """
    return _read_regular(path, limit, what)[0]


def _read_regular(path: str | os.PathLike[str], limit: int, what: str) -> tuple[bytes, int]:
    name = str(path)
    try:
        before = os.stat(path)  # opening some devices acts (a watchdog, a tape): refuse them unopened
        if not stat.S_ISREG(before.st_mode):
            raise MaterialError(_not_regular(what, _file_kind(before.st_mode), name))
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise MaterialError(error("file-not-found", f"no such {what}", "check the path", name)) from None
    except IsADirectoryError:
        raise MaterialError(_not_regular(what, "a folder", name)) from None
    except PermissionError:
        raise MaterialError(error(
            "unreadable", f"permission denied reading this {what}", "run as a user who may read it", name,
        )) from None
    except OSError as exc:
        raise MaterialError(error(
            "unreadable", f"cannot open this {what}: {exc.strerror or exc}", "check the path", name,
        )) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise MaterialError(_not_regular(what, _file_kind(st.st_mode), name))
        if st.st_size > limit:
            raise MaterialError(_too_large(what, f"{st.st_size:,} bytes", limit, name))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # the file grew after fstat, or the size lied (procfs-like files)
            raise MaterialError(_too_large(what, f"more than {limit:,} bytes", limit, name))
        return b"".join(chunks), stat.S_IMODE(st.st_mode)
    except OSError as exc:
        raise MaterialError(error(
            "unreadable", f"cannot read this {what}: {exc.strerror or exc}", "check the file", name,
        )) from None
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def _not_regular(what: str, kind: str, name: str) -> Finding:
    return error(
        "unreadable", f"this is {kind}, not a regular {what}",
        f"name the {what} itself (certfleet reads only regular files)", name,
    )


def _too_large(what: str, size: str, limit: int, name: str) -> Finding:
    return error(
        "unreadable",
        f"the {what} is {size}; certfleet reads at most {limit:,} bytes here",
        f"check that this is the right {what}", name,
    )


def load_file(path: str | os.PathLike[str], password: bytes | None = None) -> LoadedFile:
    """Load every certificate and key in ``path``; raise ``MaterialError`` when nothing usable is there."""
    name = str(path)
    data, mode = _read_regular(path, MAX_INPUT_BYTES, "file")
    loaded = load_bytes(data, name, password)
    loaded.mode = mode
    return loaded


def load_bytes(data: bytes, name: str = "<input>", password: bytes | None = None) -> LoadedFile:
    """Load every certificate and key in ``data`` (see ``load_file``)."""
    if not data.strip():
        raise MaterialError(error(
            "empty-file", "the file is empty", "check that the download finished", name,
        ))
    text = _as_text(data)
    if text is not None and "-----BEGIN " in text:
        return _load_pem(text, name, password)
    loaded = _load_der(data, name, password)
    _check_count(len(loaded.certificates), name)
    for cert in loaded.certificates:
        _parse_fully(cert, name)
    return loaded


def _check_count(certificates: int, name: str) -> None:
    if certificates > MAX_CERTIFICATES:
        raise MaterialError(error(
            "unreadable", f"the file holds {certificates:,} certificates; certfleet reads at most "
            f"{MAX_CERTIFICATES:,} from one file",
            "give only the certificate and its chain, not a whole certificate store", name,
        ))


def _parse_fully(cert: x509.Certificate, name: str) -> None:
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


def _as_text(data: bytes) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"-----BEGIN " not in data:
        return None
    return data.decode("latin-1")


@dataclass(frozen=True)
class _PemBlock:
    label: str
    body: str
    complete: bool


def _pem_blocks(text: str, name: str) -> tuple[list[_PemBlock], str]:
    """Split PEM text into blocks and the text outside them, in one linear pass over the armor lines.

    A BEGIN line followed by anything but its own END line is a block cut short: it runs to the next marker.
    """
    markers = list(_PEM_MARKER.finditer(text))
    begins = sum(1 for m in markers if m.group(1) == "BEGIN")
    if begins > MAX_PEM_BLOCKS:
        raise MaterialError(error(
            "unreadable", f"the file has {begins:,} BEGIN lines; certfleet reads at most {MAX_PEM_BLOCKS:,} "
            "PEM blocks from one file",
            "give only the certificate, its chain and its key, not a whole certificate store", name,
        ))
    blocks: list[_PemBlock] = []
    outside: list[str] = []
    pos = i = 0
    while i < len(markers):
        marker = markers[i]
        if marker.group(1) == "END":  # an END line with no BEGIN: text outside the blocks
            i += 1
            continue
        outside.append(text[pos : marker.start()])
        label = marker.group(2).strip()
        after = markers[i + 1] if i + 1 < len(markers) else None
        if after is not None and after.group(1) == "END" and after.group(2).strip() == label:
            blocks.append(_PemBlock(label, text[marker.end() : after.start()], True))
            pos, i = after.end(), i + 2
        else:
            stop = after.start() if after is not None else len(text)
            blocks.append(_PemBlock(label, text[marker.end() : stop], False))
            pos, i = stop, i + 1
    outside.append(text[pos:])
    return blocks, "".join(outside)


def _load_pem(text: str, name: str, password: bytes | None) -> LoadedFile:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    loaded = LoadedFile(name, "PEM")
    blocks, outside = _pem_blocks(text, name)
    if not blocks:
        raise MaterialError(error(
            "unreadable", "the file has a BEGIN line but no PEM block (-----BEGIN LABEL----- ... -----END LABEL-----)",
            "the copy was cut short or edited: copy the whole block, from -----BEGIN to -----END", name,
        ))
    if outside.strip():
        loaded.notes.append("ignored text outside the PEM blocks")
    damaged: list[Finding] = []
    budget = _KdfBudget()
    for index, block in enumerate(blocks, 1):
        try:
            _read_pem_block(block, loaded, name, password, budget)
        except MaterialError as exc:
            where = f" (block {index} of {len(blocks)})" if len(blocks) > 1 else ""
            damaged.append(replace(exc.finding, message=exc.finding.message + where))
    if all(b.label in _PKCS7_LABELS for b in blocks):
        loaded.format = "PKCS#7 (PEM)"
    if damaged:
        first = damaged[0]
        if len(damaged) > 1:
            first = replace(first, message=f"{first.message}; {len(damaged) - 1:,} more damaged block(s)")
        if loaded.certificates or loaded.keys:
            raise DamagedBlockError(first, loaded)
        raise MaterialError(first)
    if not loaded.certificates and not loaded.keys:
        if any(b.label in _CSR_LABELS for b in blocks):
            raise MaterialError(_csr_not_certificate(name))
        raise MaterialError(error(
            "unreadable", "the file holds no certificate and no private key",
            "check that this is the file the CA sent", name,
        ))
    return loaded


def _read_pem_block(
    block: _PemBlock, loaded: LoadedFile, name: str, password: bytes | None, budget: _KdfBudget,
) -> None:
    """Add what one PEM block holds to ``loaded``; raise ``MaterialError`` when the block is damaged."""
    label = block.label
    if not block.complete:
        raise MaterialError(error(
            "unreadable", f"a {_describe_label(label)} block has a BEGIN line but no matching END line",
            "the copy was cut short: copy the whole block, from -----BEGIN to -----END", name,
        ))
    headers, body = _split_pem_body(block.body)
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise MaterialError(error(
            "unreadable", f"the {_describe_label(label)} block is not valid base64",
            "the block was edited or cut; get a fresh copy from the CA", name,
        )) from None
    if label in _CERT_LABELS:
        _check_count(len(loaded.certificates) + 1, name)
        if label != "CERTIFICATE":
            loaded.notes.append(f"read an old '{label}' header as CERTIFICATE")
        cert = _der_certificate(_first_der_element(der), name)
        _parse_fully(cert, name)
        loaded.certificates.append(cert)
    elif label in _KEY_LABELS:
        loaded.keys.append(_pem_key(label, headers, body, name, password, budget=budget))
    elif label in _PKCS7_LABELS:
        certs, notes = _pkcs7(der, name)
        _check_count(len(loaded.certificates) + len(certs), name)
        for cert in certs:
            _parse_fully(cert, name)
        loaded.certificates.extend(certs)
        loaded.notes.extend(notes)
    elif label in _CSR_LABELS:
        loaded.notes.append("skipped a certificate signing request (CSR)")
    elif label in _IGNORED_LABELS:
        loaded.notes.append(f"skipped a '{label}' block")
    elif "PRIVATE" in label:
        kind = label.split()[0]
        loaded.notes.append(f"skipped a private key in a format certfleet does not read ({kind})")
    else:
        loaded.notes.append(f"skipped an unknown '{label}' block")


def _describe_label(label: str) -> str:
    """A label safe to print: key labels are named by their container, never as 'PRIVATE KEY' text."""
    label = label.strip()
    if label in _KEY_LABELS:
        return f"{_KEY_LABELS[label]} private key"
    if "PRIVATE" in label:
        return "private key"
    return label


def _split_pem_body(raw: str) -> tuple[dict[str, str], str]:
    headers: dict[str, str] = {}
    lines = []
    for line in raw.split("\n"):
        stripped = line.strip()
        if ":" in stripped:
            key, _, value = stripped.partition(":")
            headers[key.strip()] = value.strip()
        elif stripped:
            lines.append(stripped)
    return headers, "".join(lines).replace(" ", "").replace("\t", "")


def _first_der_element(der: bytes) -> bytes:
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


def _der_certificate(der: bytes, name: str) -> x509.Certificate:
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


def _pkcs7(der: bytes, name: str) -> tuple[list[x509.Certificate], list[str]]:
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
    reader = _Reader()
    try:
        outer = reader.element(der, 0, len(der))
        top = reader.children(outer) if outer is not None and outer.tag == 0x30 else None
        if not top or len(top) < 2 or top[0].value != _OID_SIGNED_DATA or top[1].tag != 0xA0:
            return []
        inner = reader.children(top[1])
        fields = reader.children(inner[0]) if inner and inner[0].tag == 0x30 else None
        sets = [reader.children(f) for f in fields or [] if f.tag == 0xA0]  # [0] IMPLICIT SET OF Certificate
    except _TooComplex:
        return []
    certs: list[x509.Certificate] = []
    for element in (e for found in sets for e in found or []):
        _check_count(len(certs) + 1, name)
        try:
            certs.append(x509.load_der_x509_certificate(element.data[element.start : element.end]))
        except (ValueError, x509.InvalidVersion):
            return []
    return certs


class _TooComplex(Exception):
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


class _Reader:
    """A bounded BER/DER reader: definite and indefinite lengths, constructed OCTET STRINGs (as Windows and Java
    write PKCS#12), at most ``_MAX_DER_NODES`` elements read and ``_MAX_DER_DEPTH`` levels, else ``_TooComplex``.
    """

    def __init__(self) -> None:
        self.budget = _MAX_DER_NODES
        self._stops: dict[tuple[bytes, int], int] = {}  # indefinite-length elements: each is scanned once

    def element(self, data: bytes, pos: int, end: int, depth: int = 0) -> _Der | None:
        """The element at ``pos`` if it fits before ``end``; None when it is not BER."""
        self.budget -= 1
        if self.budget < 0 or depth > _MAX_DER_DEPTH:
            raise _TooComplex
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


_OID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")
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


def _kdf_costs(reader: _Reader, root: _Der) -> _Costs:
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


def _scheme(reader: _Reader, algorithm: _Der) -> _Scheme | None:
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


def _decrypt(reader: _Reader, scheme: _Scheme, content: _Der, password: bytes | None) -> bytes | None:
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
class _KdfBudget:
    """The password-derivation iterations one file may still spend, over all its keys and password tries."""

    left: int = MAX_KDF_WORK


def _check_kdf_cost(
    data: bytes, name: str, *, passwords: Sequence[bytes | None] = (b"",), pkcs12_mac: bool = False,
    budget: _KdfBudget | None = None,
) -> None:
    """Refuse a key file whose password derivations would take minutes, before the parser derives anything.

    Reads every KDF's cost out of the BER/DER (bounded), and for PKCS#12 the MAC iterations, spent once per
    password tried; the work is taken from ``budget`` (the file's). A PKCS#12's PBES2-encrypted contents are
    opened with each password, as the parser will, and the key bags they hide are counted too. A PKCS#12 that
    cannot be walked is refused: its parser would have to guess too.
    """
    budget = budget or _KdfBudget()
    reader = _Reader()
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
    except _TooComplex:
        raise MaterialError(error(
            "unreadable", "the file's structure is nested deeper or is larger than any key file",
            "this is not a real certificate or key file; get a fresh copy", name,
        )) from None


def _spend(
    budget: _KdfBudget, name: str, costs: _Costs, *, more: int = 0, tries: int = 1, extra: Sequence[int] = (),
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


def _pem_key(
    label: str, headers: dict[str, str], body: str, name: str, password: bytes | None, *, budget: _KdfBudget,
) -> KeyItem:
    container = _KEY_LABELS[label]
    encrypted = label == "ENCRYPTED PRIVATE KEY" or "ENCRYPTED" in headers.get("Proc-Type", "")
    lines = [f"-----BEGIN {label}-----"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if headers:
        lines.append("")
    lines += [body[i : i + 64] for i in range(0, len(body), 64)]
    lines.append(f"-----END {label}-----")
    pem = ("\n".join(lines) + "\n").encode()
    if encrypted and password is None:
        return KeyItem(None, container, True, name)
    if encrypted and not password:
        raise MaterialError(_empty_password(name))
    if encrypted:
        _check_kdf_cost(base64.b64decode(body), name, budget=budget)
    try:
        key = _private_key(pem, password if encrypted else None, der=False)
    except ValueError:
        if encrypted:
            raise MaterialError(_wrong_password(name)) from None
        raise MaterialError(error(
            "unreadable", f"the {_describe_label(label)} block is not a valid private key",
            "the key is damaged; find the original or generate a new key and certificate", name,
        )) from None
    except (TypeError, UnsupportedAlgorithm):
        raise MaterialError(error(
            "unreadable",
            f"the {_describe_label(label)} block uses an algorithm or cipher certfleet cannot read",
            "convert it with openssl pkcs8 -topk8 first", name,
        )) from None
    return KeyItem(key, container, encrypted, name)


def _private_key(data: bytes, password: bytes | None, *, der: bool) -> PrivateKeyTypes:
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


def _csr_not_certificate(name: str) -> Finding:
    return error(
        "csr-not-certificate",
        "this is a certificate signing request (CSR), not a certificate",
        "send the CSR to your CA and use the certificate it returns", name,
    )


def _der_truncated(data: bytes) -> bool:
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


def _empty_password(name: str) -> Finding:
    # cryptography takes an empty password for none at all; say what happened instead of a cipher error
    return error(
        "password-wrong", "the password given is empty, and this key is encrypted",
        "check that the variable given with --password-env is set to the passphrase, or that the file given "
        "with --password-file holds it on its first line", name,
    )


def _wrong_password(name: str) -> Finding:
    return error(
        "password-wrong", "the password does not open this file",
        "check the value of the variable or file given with --password-env / --password-file", name,
    )


def _load_der(data: bytes, name: str, password: bytes | None) -> LoadedFile:
    if not data.startswith(b"\x30"):
        raise MaterialError(error(
            "unreadable",
            "not a certificate or key in any format certfleet knows (PEM, DER, PKCS#7, PKCS#12)",
            "run `certfleet inspect` on the files the CA sent and pick the certificate", name,
        ))
    if _der_truncated(data):
        raise MaterialError(error(
            "unreadable", "the file ends before its content does: it was cut short",
            "download or copy the file again, in binary mode", name,
        ))
    try:
        return LoadedFile(name, "DER", [x509.load_der_x509_certificate(data)])
    except (ValueError, x509.InvalidVersion):
        pass
    if _is_pkcs7_signed_data(data):
        certs, notes = _pkcs7(data, name)
        return LoadedFile(name, "PKCS#7 (DER)", certs, notes=notes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the BER fallback warning: signedData was handled above
            return LoadedFile(name, "PKCS#7 (DER)", list(pkcs7.load_der_pkcs7_certificates(data)))
    except (ValueError, x509.InvalidVersion):
        pass
    except UnsupportedAlgorithm:  # a PKCS#7 structure, but not the signedData that carries certificates
        raise MaterialError(error(
            "unreadable", "this PKCS#7 file is not a certificate bundle (it holds no signed-data certificates)",
            "export the certificates as a .p7b (PKCS#7 certificates only) or as PEM", name,
        )) from None
    if _looks_like_pkcs12(data):
        return _load_pkcs12(data, name, password)
    container = _der_key_container(data)
    try:
        key = _private_key(data, None, der=True)
        return LoadedFile(name, "DER", keys=[KeyItem(key, container, False, name)])
    except TypeError:
        if password is None:
            return LoadedFile(name, "DER", keys=[KeyItem(None, "PKCS#8", True, name)])
        if not password:
            raise MaterialError(_empty_password(name)) from None
        _check_kdf_cost(data, name)
        try:
            key = _private_key(data, password, der=True)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise MaterialError(error(
                "password-wrong", "the password does not open this key",
                "check the value given with --password-env / --password-file", name,
            )) from None
        return LoadedFile(name, "DER", keys=[KeyItem(key, "PKCS#8", True, name)])
    except (ValueError, UnsupportedAlgorithm):
        pass
    try:
        x509.load_der_x509_csr(data)
    except ValueError:
        pass
    else:
        raise MaterialError(_csr_not_certificate(name))
    raise MaterialError(error(
        "unreadable",
        "binary data that is neither a certificate, a PKCS#7 or PKCS#12 store nor a private key",
        "run `certfleet inspect` on the files the CA sent and pick the certificate", name,
    ))


def _is_pkcs7_signed_data(data: bytes) -> bool:
    """True when ``data`` starts like ContentInfo {signedData, ...}, DER or BER."""
    if len(data) < 2 or data[0] != 0x30:
        return False
    offset = 2 + (data[1] & 0x7F if data[1] > 0x80 else 0)
    try:
        oid = _Reader().element(data, offset, len(data))
    except _TooComplex:
        return False
    return oid is not None and oid.tag == 0x06 and oid.value == _OID_SIGNED_DATA


def _looks_like_pkcs12(data: bytes) -> bool:
    # PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData OPTIONAL }
    body = _first_der_element(data)
    if len(body) < 5:
        return False
    offset = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
    return data[offset : offset + 3] == b"\x02\x01\x03"


def _der_key_container(data: bytes) -> str:
    offset = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
    # version INTEGER, then: SEQUENCE (PKCS#8 AlgorithmIdentifier), OCTET STRING (SEC1), INTEGER (PKCS#1)
    version_end = offset + 2 + data[offset + 1] if len(data) > offset + 1 else offset
    tag = data[version_end] if len(data) > version_end else 0
    return {0x30: "PKCS#8", 0x04: "SEC1", 0x02: "PKCS#1"}.get(tag, "DER")


def _load_pkcs12(data: bytes, name: str, password: bytes | None) -> LoadedFile:
    attempts: list[bytes | None] = [None, b""] if password is None else [password, None, b""]
    _check_kdf_cost(data, name, passwords=attempts, pkcs12_mac=True)
    for attempt in attempts:
        try:
            with warnings.catch_warnings(record=True) as caught:  # BER fallback: a note, not a stderr line
                warnings.simplefilter("always")
                store = pkcs12.load_pkcs12(data, attempt)
        except (ValueError, x509.InvalidVersion):
            continue
        except UnsupportedAlgorithm:
            raise MaterialError(error(
                "unreadable", "the PKCS#12 file uses a cipher certfleet cannot read (legacy RC2?)",
                "re-export it with AES (openssl pkcs12 -export ... -keypbe AES-256-CBC)", name,
            )) from None
        loaded = LoadedFile(name, "PKCS#12")
        if any("BER" in str(w.message) for w in caught):
            loaded.notes.append("the PKCS#12 file is BER-encoded, not DER (as Windows and Java export it); read anyway")
        if store.cert is not None:
            loaded.certificates.append(store.cert.certificate)
        loaded.certificates.extend(c.certificate for c in store.additional_certs)
        if store.key is not None:
            loaded.keys.append(KeyItem(store.key, "PKCS#12", attempt not in (None, b""), name))
        if not loaded.certificates and not loaded.keys:
            raise MaterialError(error("unreadable", "the PKCS#12 file is empty", "re-export it", name))
        return loaded
    if password is None:
        raise MaterialError(error(
            "password-required", "the PKCS#12 file is protected by a password",
            "give it with --password-env VAR or --password-file FILE (never on the command line)", name,
        ))
    raise MaterialError(error(
        "password-wrong", "the password does not open this PKCS#12 file",
        "check the value given with --password-env / --password-file", name,
    ))
