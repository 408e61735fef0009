"""The old name of material_support, kept only while tests/material/test_material_findings.py (owned elsewhere
this session) still imports it: change that import to ``from material_support import ...`` and delete this file."""

from material_support import *  # noqa: F403
