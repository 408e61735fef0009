"""Read any certificate or key file a CA or a colleague hands over: PEM, DER, PKCS#7, PKCS#12, bundles.

Every reader is tolerant of what real files look like (CRLF, a BOM, text around the armor, old headers)
and strict about what it returns: parsed ``cryptography`` objects, never raw key text.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certfleet.material.findings import Finding, MaterialError, error

_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 #]+?)-----(.*?)-----END \1-----", re.DOTALL
)
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
MAX_VALIDATED_RSA_BITS = 4096


@dataclass
class KeyItem:
    """A private key found in a file. ``key`` is None while it is encrypted and no password opened it."""

    key: PrivateKeyTypes | None
    container: str
    encrypted: bool
    source: str


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
        return Path(path).read_bytes().splitlines()[0] if Path(path).stat().st_size else b""
    except OSError as exc:
        raise MaterialError(error(
            "password-file-unreadable", f"cannot read the password file {path}: {exc.strerror}",
            "check the path and its permissions", str(path),
        )) from None


def read_regular_file(path: str | os.PathLike[str], *, limit: int, what: str = "file") -> bytes:
    """Read a regular file of at most ``limit`` bytes; refuse devices, FIFOs, sockets and folders without blocking.

    The file is opened non-blocking (a FIFO nobody writes returns at once) and judged by ``fstat`` of the
    opened descriptor, so nothing can swap it between the check and the read. Symbolic links are followed.
    Raises ``MaterialError`` naming the path, the problem and the fix.
    """
    return _read_regular(path, limit, what)[0]


def _read_regular(path: str | os.PathLike[str], limit: int, what: str) -> tuple[bytes, int]:
    name = str(path)
    try:
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
    loaded = _load_pem(text, name, password) if text is not None and "-----BEGIN " in text else _load_der(
        data, name, password)
    for cert in loaded.certificates:
        _parse_fully(cert, name)
    return loaded


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


def _load_pem(text: str, name: str, password: bytes | None) -> LoadedFile:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    loaded = LoadedFile(name, "PEM")
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks:
        raise MaterialError(error(
            "unreadable", "the file has a BEGIN line but no matching END line",
            "the copy was cut short: copy the whole block, from -----BEGIN to -----END", name,
        ))
    outside = _PEM_BLOCK.sub("", text).strip()
    cut = re.search(r"-----BEGIN ([A-Z0-9 #]+?)-----", outside)
    if cut:
        raise MaterialError(error(
            "unreadable",
            f"a {_describe_label(cut.group(1))} block has a BEGIN line but no matching END line",
            "the copy was cut short: copy the whole block, from -----BEGIN to -----END", name,
        ))
    if outside:
        loaded.notes.append("ignored text outside the PEM blocks")
    pkcs7_only = True
    for block in blocks:
        label = block.group(1).strip()
        headers, body = _split_pem_body(block.group(2))
        if label not in _PKCS7_LABELS:
            pkcs7_only = False
        try:
            der = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MaterialError(error(
                "unreadable", f"the {_describe_label(label)} block is not valid base64",
                "the block was edited or cut; get a fresh copy from the CA", name,
            )) from None
        if label in _CERT_LABELS:
            if label != "CERTIFICATE":
                loaded.notes.append(f"read an old '{label}' header as CERTIFICATE")
            loaded.certificates.append(_der_certificate(_first_der_element(der), name))
        elif label in _KEY_LABELS:
            loaded.keys.append(_pem_key(label, headers, body, name, password))
        elif label in _PKCS7_LABELS:
            loaded.certificates.extend(_pkcs7(der, name))
        elif label in _CSR_LABELS:
            loaded.notes.append("skipped a certificate signing request (CSR)")
        elif label in _IGNORED_LABELS:
            loaded.notes.append(f"skipped a '{label}' block")
        elif "PRIVATE" in label:
            kind = label.split()[0]
            loaded.notes.append(f"skipped a private key in a format certfleet does not read ({kind})")
        else:
            loaded.notes.append(f"skipped an unknown '{label}' block")
    if pkcs7_only:
        loaded.format = "PKCS#7 (PEM)"
    if not loaded.certificates and not loaded.keys:
        if any(b.group(1).strip() in _CSR_LABELS for b in blocks):
            raise MaterialError(_csr_not_certificate(name))
        raise MaterialError(error(
            "unreadable", "the file holds no certificate and no private key",
            "check that this is the file the CA sent", name,
        ))
    return loaded


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


def _pkcs7(der: bytes, name: str) -> list[x509.Certificate]:
    try:
        return list(pkcs7.load_der_pkcs7_certificates(der))
    except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm):  # Unsupported: not signedData
        raise MaterialError(error(
            "unreadable", "the PKCS#7 block holds no readable certificates",
            "get a fresh copy of the .p7b from the CA", name,
        )) from None


def _pem_key(label: str, headers: dict[str, str], body: str, name: str, password: bytes | None) -> KeyItem:
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
    """Load a private key; validate RSA keys only up to the largest size ACM takes.

    OpenSSL's RSA validation tests p and q for primality: 0.1 s at 2048 bits, 6 s at 7680, minutes beyond.
    A key above 4096 bits is refused by ACM anyway (key-algorithm-unsupported), so it is not validated.
    Raises ``ValueError`` for a damaged key, ``TypeError`` for a missing or needless password.
    """
    load = serialization.load_der_private_key if der else serialization.load_pem_private_key
    key = load(data, password, unsafe_skip_rsa_key_validation=True)
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size <= MAX_VALIDATED_RSA_BITS:
        key = key.private_numbers().private_key()  # the full check: ValueError when p, q, d do not fit
    return key


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
    try:
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
