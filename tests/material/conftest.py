"""The material battery: keys and certificates come from material_support, generated and cached at test time."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # material_support is shared with tests/cli, whatever pytest's import mode
    sys.path.insert(0, _HERE)
