"""Release hygiene: the changelog's shape and version, the pre-commit hooks CI's quick checks run through."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?$", re.MULTILINE)
SECTIONS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security", "Upgrade actions"}


def _version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def test_changelog_follows_keep_a_changelog_and_names_the_package_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = list(HEADING.finditer(text))
    assert headings and headings[0]["version"] == "Unreleased", "the first section is [Unreleased]"
    released = [(h["version"], h["date"]) for h in headings[1:]]
    assert all(date for _, date in released), "every released version has a date"
    keys = [tuple(int(p) for p in v.split(".")) for v, _ in released]
    assert keys == sorted(keys, reverse=True), "versions are listed newest first"
    assert _version() in [v for v, _ in released] or _version() not in text, (
        "pyproject's version is a released heading (or not yet mentioned at all)")
    for sub in re.findall(r"^### (.+)$", text, flags=re.MULTILINE):
        assert sub in SECTIONS, f"CHANGELOG.md: '### {sub}' is not a Keep a Changelog section"


def test_pre_commit_config_is_valid_and_its_hooks_exist() -> None:
    config = ROOT / ".pre-commit-config.yaml"
    run = subprocess.run([sys.executable, "-m", "pre_commit", "validate-config", str(config)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    entries = re.findall(r"^\s+entry: (\S+)", config.read_text(), flags=re.MULTILINE)
    assert entries
    for entry in entries:
        tool = ROOT / entry
        assert tool.is_file(), f"{entry}: a pre-commit hook runs a tool scripts/setup.sh does not install"
