"""PEM text: armor blocks found in one linear pass, each read by its label (certificates, keys, PKCS#7), damaged
blocks reported with their number while the rest of the file is still read."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, replace

from cryptography.exceptions import UnsupportedAlgorithm

from certfleet.material.der import KdfBudget, check_kdf_cost, first_der_element
from certfleet.material.findings import Finding, MaterialError, error
from certfleet.material.loaded import (
    DamagedBlockError,
    KeyItem,
    LoadedFile,
    check_count,
    csr_not_certificate,
    der_certificate,
    empty_password,
    parse_fully,
    pkcs7_certificates,
    private_key,
    wrong_password,
)

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
MAX_PEM_BLOCKS = 1000


def as_text(data: bytes) -> str | None:
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


def load_pem(text: str, name: str, password: bytes | None) -> LoadedFile:
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
    budget = KdfBudget()
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
            raise MaterialError(csr_not_certificate(name))
        raise MaterialError(error(
            "unreadable", "the file holds no certificate and no private key",
            "check that this is the file the CA sent", name,
        ))
    return loaded


def _read_pem_block(
    block: _PemBlock, loaded: LoadedFile, name: str, password: bytes | None, budget: KdfBudget,
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
        check_count(len(loaded.certificates) + 1, name)
        if label != "CERTIFICATE":
            loaded.notes.append(f"read an old '{label}' header as CERTIFICATE")
        cert = der_certificate(first_der_element(der), name)
        parse_fully(cert, name)
        loaded.certificates.append(cert)
    elif label in _KEY_LABELS:
        loaded.keys.append(_pem_key(label, headers, body, name, password, budget=budget))
    elif label in _PKCS7_LABELS:
        certs, notes = pkcs7_certificates(der, name)
        check_count(len(loaded.certificates) + len(certs), name)
        for cert in certs:
            parse_fully(cert, name)
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


def _pem_key(
    label: str, headers: dict[str, str], body: str, name: str, password: bytes | None, *, budget: KdfBudget,
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
        raise MaterialError(empty_password(name))
    if encrypted:
        check_kdf_cost(base64.b64decode(body), name, budget=budget)
    try:
        key = private_key(pem, password if encrypted else None, der=False)
    except ValueError:
        if encrypted:
            raise MaterialError(wrong_password(name)) from None
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
