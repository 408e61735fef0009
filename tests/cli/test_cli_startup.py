"""The command starts fast, never imports aws_cdk, and keeps its exit-code contract for usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from material_support import cli

CERTFLEET = Path(sys.executable).parent / "certfleet"
COMMANDS = ["inspect", "convert", "verify", "keygen", "csr"]


def _env() -> dict[str, str]:
    return dict(os.environ)


def test_console_script_is_installed() -> None:
    assert CERTFLEET.exists(), "pip install -e . installs the certfleet console script"


def test_help_exits_0_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "--help")
    assert run.code == 0
    for command in COMMANDS:
        assert command in run.out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, command, "--help")
    assert run.code == 0
    assert f"certfleet {command}" in run.out


def test_help_subprocess_exits_0() -> None:
    result = subprocess.run([str(CERTFLEET), "--help"], capture_output=True, text=True, env=_env(), check=False,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert "usage: certfleet" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "--version")
    assert run.code == 0
    assert run.out.startswith("certfleet ")


@pytest.mark.parametrize("argv", [
    [],
    ["frobnicate"],
    ["verify"],  # --certificate is required
    ["inspect"],
    ["keygen", "--type", "rsa-1024", "--out", "k.key"],  # not a type certfleet makes
    ["keygen", "--out", "k.key"],
    ["csr", "--key", "k.key", "--out", "r.csr"],  # neither --config nor --common-name
    ["csr", "--key", "k.key", "--config", "c.toml", "--common-name", "x", "--out", "r.csr"],
    ["verify", "--certificate", "c.pem", "--password-env", "A", "--password-file", "B"],
    ["verify", "--certificate", "c.pem", "--warn-days", "soon"],
    ["convert", "c.pem"],  # --out is required
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, *argv)
    assert run.code == 2, run.text
    assert "usage: certfleet" in run.text


_PROBE = """
import sys
from certfleet.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
loaded = sorted({m.split('.')[0] for m in sys.modules} & {'aws_cdk', 'jsii', 'constructs', 'boto3', 'botocore'})
print('\\nPROBE ' + __import__('json').dumps({'code': code, 'loaded': loaded}))
"""


def _probe(*argv: str) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, env=_env(),
                            check=False, timeout=60)
    line = [x for x in result.stdout.splitlines() if x.startswith("PROBE ")][-1]
    return json.loads(line[len("PROBE "):])  # type: ignore[no-any-return]


def test_help_does_not_import_aws_cdk() -> None:
    probe = _probe("--help")
    assert probe["code"] == 0
    assert probe["loaded"] == [], "the CLI must not import aws_cdk / jsii (nor boto3 for offline commands)"


def test_verify_does_not_import_aws_cdk(tmp_path: Path) -> None:
    from material_support import pem, seed_chain, seed_leaf, write

    cert = write(tmp_path / "c.pem", pem(seed_leaf()) + seed_chain())
    probe = _probe("verify", "--certificate", cert, "--service", "cloudfront", "--domain", "www.example.com")
    assert probe["code"] == 0
    assert probe["loaded"] == []


def test_importtime_has_no_aws_cdk() -> None:
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import certfleet.cli.main"],
                            capture_output=True, text=True, env=_env(), check=True, timeout=60)
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "certfleet" in imported
    assert not imported & {"aws_cdk", "jsii", "constructs", "boto3", "cryptography"}
