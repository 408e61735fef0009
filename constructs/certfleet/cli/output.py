"""Printing for the CLI: plain text or JSON, and a last line of defence against key material."""

from __future__ import annotations

import json
import re
import sys
from typing import Any, TextIO

_PRIVATE_BLOCK = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL,
)
_LONG_BASE64 = re.compile(r"[A-Za-z0-9+/]{100,}={0,2}")


def scrub(text: str) -> str:
    """Remove anything shaped like key material (a PEM key block, a long base64 run)."""
    return _LONG_BASE64.sub("<redacted>", _PRIVATE_BLOCK.sub("<redacted private key>", text))


def _write(stream: TextIO, text: str) -> None:
    """Write ``text``; on a console that cannot show a character (ASCII, cp1252), show a stand-in instead."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = stream.encoding or "ascii"
        stream.write(text.replace("→", "->").encode(encoding, "replace").decode(encoding))


def out(text: str = "") -> None:
    _write(sys.stdout, scrub(text) + "\n")


def err(text: str) -> None:
    _write(sys.stderr, scrub(text) + "\n")


def emit_json(data: Any) -> None:
    out(json.dumps(data, indent=2, sort_keys=False, default=str))


def table(rows: list[list[str]], indent: str = "  ") -> str:
    """Left-aligned columns, as `aws ... --output table` users expect to read them."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )
