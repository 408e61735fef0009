"""The CLI battery shares material_support (keys and certificates made at test time) with tests/material."""

from __future__ import annotations

import sys
from pathlib import Path

_KIT = str(Path(__file__).resolve().parent.parent / "material")
if _KIT not in sys.path:
    sys.path.insert(0, _KIT)
