"""The schema tests reuse the CLI runner (tests/material/material_support.py) and the TLS server of tests/ops."""

from __future__ import annotations

import sys
from pathlib import Path

for _folder in ("material", "ops"):
    _path = str(Path(__file__).resolve().parent.parent / _folder)
    if _path not in sys.path:
        sys.path.insert(0, _path)
