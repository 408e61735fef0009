"""inspect shows what a file's good blocks hold before the damaged block's error; verify says when a region is
assumed."""

from __future__ import annotations

from pathlib import Path

import pytest
from material_support import cli, leaf, pem, write


def _damaged(tmp_path: Path) -> str:
    garbage = b"-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZSwgbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
    return write(tmp_path / "bundle.pem", pem(leaf(("www.example.com",))) + garbage)


def test_inspect_shows_the_good_certificate_then_the_damaged_block(capsys: pytest.CaptureFixture[str],
                                                                    tmp_path: Path) -> None:
    path = _damaged(tmp_path)
    run = cli(capsys, "inspect", path)
    assert run.code == 1
    assert "1 certificate(s)" in run.out and "www.example.com" in run.out
    assert "block 2 of 2" in run.err and "not a valid private key" in run.err


def test_inspect_json_carries_both_the_certificate_and_the_error(capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path) -> None:
    run = cli(capsys, "inspect", "--json", _damaged(tmp_path))
    assert run.code == 1
    (report,) = run.json()
    assert [c["names"] for c in report["certificates"]] == [["www.example.com"]]
    assert report["error"]["severity"] == "error"


def test_verify_says_a_region_rule_aws_does_not_document_is_assumed(capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path) -> None:
    cert = write(tmp_path / "cert.pem", pem(leaf(("www.example.com",))))
    run = cli(capsys, "verify", "--certificate", cert, "--service", "transfer", "--service", "alb")
    transfer = next(line for line in run.out.splitlines() if line.strip().startswith("transfer"))
    alb = next(line for line in run.out.splitlines() if line.strip().startswith("alb"))
    assert "assumed" in transfer
    assert "assumed" not in alb


def test_names_with_control_characters_are_printed_escaped(capsys: pytest.CaptureFixture[str],
                                                           tmp_path: Path) -> None:
    cert = write(tmp_path / "cert.pem", pem(leaf(("www.example.com\ntouch /tmp/x #'\x1b[2J",))))
    for command in (("inspect", cert), ("verify", "--certificate", cert)):
        run = cli(capsys, *command)
        assert "\x1b" not in run.text
        assert not any(line.startswith("touch /tmp/x") for line in run.text.splitlines())
        assert "\\ntouch /tmp/x" in run.out
