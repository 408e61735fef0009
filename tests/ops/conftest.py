"""tests/ops: `certfleet status` against moto_server (17 regions, one process) and `certfleet probe` against a
TLS server on 127.0.0.1. Everything is generated at test time; nothing secret is committed."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _folder in (str(_HERE), str(_HERE.parent / "material")):  # material_support: the CLI runner and its no-leak checks
    if _folder not in sys.path:
        sys.path.insert(0, _folder)
