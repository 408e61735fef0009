"""Helpers for the e2e tests: plain functions shared by more than one test module (fixtures stay in each module)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def cfn_lint_errors(templates: list[Path]) -> list[dict[str, Any]]:
    """cfn-lint's errors over ``templates`` with the repository's .cfnlintrc.yaml."""
    result = subprocess.run([str(BIN / "cfn-lint"), "--format", "json", *map(str, templates)],
                            capture_output=True, text=True, check=False, cwd=ROOT)  # ROOT/.cfnlintrc.yaml
    assert result.returncode in (0, 2, 4, 6, 8, 10, 12, 14), result.stderr  # bit 1 set would mean a crash
    findings = json.loads(result.stdout or "[]")
    return [f for f in findings if f["Level"] == "Error"]
