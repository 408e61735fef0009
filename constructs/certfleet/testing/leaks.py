"""Leak scanning: find private-key material in text, files and folders (cdk.out, logs, CLI output).

How fragments are chosen, and the odds of a false match: docs/design/leaks.md.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

PEM_KEY_BLOCK = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----[A-Za-z0-9+/=\s\\]{64,}")  # JSON: \\n too
_WINDOW = 15  # bytes of a secret number (20 base64 characters): 2**-120 odds of a chance match


def _secret_numbers(key: PrivateKeyTypes) -> list[bytes]:
    """The private components only (never the public modulus or point, which certificates carry too)."""
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.private_numbers()
        values = [numbers.d, numbers.p, numbers.q]
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        values = [key.private_numbers().private_value]
    else:
        return [key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                  serialization.NoEncryption())]
    return [v.to_bytes((v.bit_length() + 7) // 8, "big") for v in values]


def key_fragments(key: PrivateKeyTypes) -> list[bytes]:
    """Pieces of the key's secret numbers as they could appear anywhere: raw bytes, or base64 at any alignment.

    Args:
        key: The private key whose secret numbers (never its public half) to look for.
    """
    fragments: list[bytes] = []
    for secret in _secret_numbers(key):
        for start in range(0, max(len(secret) - _WINDOW - 1, 1), 3):  # small steps: a window fits between line breaks
            window = secret[start : start + _WINDOW + 2]
            fragments.append(window[:_WINDOW])
            for shift in range(3):  # one of the three lines up with the 3-byte groups of any base64 stream
                fragments.append(base64.b64encode(window[shift : shift + _WINDOW]))
    return fragments


def find_leaks(data: bytes | str, key: PrivateKeyTypes | None = None, *, label_only_ok: bool = True) -> list[str]:
    """Why ``data`` leaks a key: a PEM private-key block, or a fragment of ``key``. Empty when clean.

    Args:
        data: The text or bytes to scan.
        key: A key whose fragments to look for too. Default: None (PEM blocks only).
        label_only_ok: Allow the bare words "PRIVATE KEY" (code that builds a PEM header). Default: True.
    """
    raw = data.encode() if isinstance(data, str) else data
    reasons = []
    if PEM_KEY_BLOCK.search(raw):
        reasons.append("a PEM private key block")
    elif not label_only_ok and b"PRIVATE KEY" in raw:
        reasons.append("the words PRIVATE KEY")
    if key is not None and any(f in raw for f in key_fragments(key)):
        reasons.append("a fragment of the private key")
    return reasons


def scan_tree(folder: str | os.PathLike[str], key: PrivateKeyTypes | None = None) -> dict[str, list[str]]:
    """Every file under ``folder`` that leaks, with the reasons. JSON files may not even name a private key.

    Args:
        folder: The folder to scan, recursively.
        key: A key whose fragments to look for too. Default: None (PEM blocks only).
    """
    found: dict[str, list[str]] = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            reasons = find_leaks(path.read_bytes(), key, label_only_ok=path.suffix != ".json")
            if reasons:
                found[str(path)] = reasons
    return found
