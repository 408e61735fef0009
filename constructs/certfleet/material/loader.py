"""Read any certificate or key file a CA or a colleague hands over: PEM, DER, PKCS#7, PKCS#12, bundles.

Every reader is tolerant of what real files look like (CRLF, a BOM, text around the armor, old headers)
and strict about what it returns: parsed ``cryptography`` objects, never raw key text.
"""

from __future__ import annotations

import os
import warnings

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certfleet.material.der import (
    MAX_KDF_ITERATIONS,
    MAX_KDF_WORK,
    MAX_SCRYPT_WORK,
    check_kdf_cost,
    der_key_container,
    der_truncated,
    is_pkcs7_signed_data,
    looks_like_pkcs12,
)
from certfleet.material.files import password_from_env, password_from_file, read_regular, read_regular_file
from certfleet.material.findings import MaterialError, error
from certfleet.material.loaded import (
    MAX_CERTIFICATES,
    DamagedBlockError,
    KeyItem,
    LoadedFile,
    check_count,
    csr_not_certificate,
    empty_password,
    parse_fully,
    pkcs7_certificates,
    private_key,
)
from certfleet.material.pem import MAX_PEM_BLOCKS, as_text, load_pem

__all__ = [
    "MAX_CERTIFICATES", "MAX_INPUT_BYTES", "MAX_KDF_ITERATIONS", "MAX_KDF_WORK", "MAX_PEM_BLOCKS", "MAX_SCRYPT_WORK",
    "DamagedBlockError", "KeyItem", "LoadedFile", "load_bytes", "load_file", "password_from_env", "password_from_file",
    "read_regular_file",
]

MAX_INPUT_BYTES = 4 * 1024 * 1024  # 2x ACM's largest import: 32 KiB certificate + 2 MiB chain + 5 KiB key


def load_file(path: str | os.PathLike[str], password: bytes | None = None) -> LoadedFile:
    """Load every certificate and key in ``path``; raise ``MaterialError`` when nothing usable is there."""
    name = str(path)
    data, mode = read_regular(path, MAX_INPUT_BYTES, "file")
    loaded = load_bytes(data, name, password)
    loaded.mode = mode
    return loaded


def load_bytes(data: bytes, name: str = "<input>", password: bytes | None = None) -> LoadedFile:
    """Load every certificate and key in ``data`` (see ``load_file``)."""
    if not data.strip():
        raise MaterialError(error(
            "empty-file", "the file is empty", "check that the download finished", name,
        ))
    text = as_text(data)
    if text is not None and "-----BEGIN " in text:
        return load_pem(text, name, password)
    loaded = _load_der(data, name, password)
    check_count(len(loaded.certificates), name)
    for cert in loaded.certificates:
        parse_fully(cert, name)
    return loaded


def _load_der(data: bytes, name: str, password: bytes | None) -> LoadedFile:
    if not data.startswith(b"\x30"):
        raise MaterialError(error(
            "unreadable",
            "not a certificate or key in any format certfleet knows (PEM, DER, PKCS#7, PKCS#12)",
            "run `certfleet inspect` on the files the CA sent and pick the certificate", name,
        ))
    if der_truncated(data):
        raise MaterialError(error(
            "unreadable", "the file ends before its content does: it was cut short",
            "download or copy the file again, in binary mode", name,
        ))
    try:
        return LoadedFile(name, "DER", [x509.load_der_x509_certificate(data)])
    except (ValueError, x509.InvalidVersion):
        pass
    if is_pkcs7_signed_data(data):
        certs, notes = pkcs7_certificates(data, name)
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
    if looks_like_pkcs12(data):
        return _load_pkcs12(data, name, password)
    container = der_key_container(data)
    try:
        key = private_key(data, None, der=True)
        return LoadedFile(name, "DER", keys=[KeyItem(key, container, False, name)])
    except TypeError:
        if password is None:
            return LoadedFile(name, "DER", keys=[KeyItem(None, "PKCS#8", True, name)])
        if not password:
            raise MaterialError(empty_password(name)) from None
        check_kdf_cost(data, name)
        try:
            key = private_key(data, password, der=True)
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
        raise MaterialError(csr_not_certificate(name))
    raise MaterialError(error(
        "unreadable",
        "binary data that is neither a certificate, a PKCS#7 or PKCS#12 store nor a private key",
        "run `certfleet inspect` on the files the CA sent and pick the certificate", name,
    ))


def _load_pkcs12(data: bytes, name: str, password: bytes | None) -> LoadedFile:
    attempts: list[bytes | None] = [None, b""] if password is None else [password, None, b""]
    check_kdf_cost(data, name, passwords=attempts, pkcs12_mac=True)
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
