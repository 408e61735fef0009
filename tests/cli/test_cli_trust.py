"""The CLI and hostile paths: outputs never go through a symbolic link or stay half-written; inputs that are not
regular files (a FIFO nobody writes, a device) end every command at once with exit 1 and a sentence."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from material_support import cli, key_pem, pem, rsa_key, rsa_pki, seed_leaf, write

KEY = rsa_key(2048, 0)
CERTFLEET = str(Path(sys.executable).with_name("certfleet"))


def _material(folder: Path) -> list[str]:
    return [write(folder / "cert.pem", pem(seed_leaf())), write(folder / "chain.pem", pem(rsa_pki().intermediate)),
            write(folder / "key.pem", key_pem(KEY), 0o400)]


# ------------------------------------------------------------------------------------------------ outputs
def test_convert_refuses_a_dangling_link_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "private.key").symlink_to(elsewhere / "stolen.key")  # dangling: exists() says False
    run = cli(capsys, "convert", *_material(tmp_path), "--out", str(out), keys=[KEY])
    assert run.code == 1
    assert "[output-is-link]" in run.err and "private.key" in run.err
    assert not (elsewhere / "stolen.key").exists()
    assert sorted(p.name for p in out.iterdir()) == ["private.key"]  # no cert.pem, no chain.pem: nothing half-done
    assert (out / "private.key").is_symlink()


def test_convert_force_never_writes_through_a_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.pem"
    victim.write_text("precious\n")
    (out / "chain.pem").symlink_to(victim)
    run = cli(capsys, "convert", *_material(tmp_path), "--out", str(out), "--force", keys=[KEY])
    assert run.code == 1 and "[output-is-link]" in run.err
    assert victim.read_text() == "precious\n"
    assert not (out / "cert.pem").exists() and not (out / "private.key").exists()


def test_convert_force_replaces_regular_files_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name in ("cert.pem", "chain.pem", "private.key"):
        write(out / name, b"old\n", 0o400)
    run = cli(capsys, "convert", *_material(tmp_path), "--out", str(out), "--force", keys=[KEY])
    assert run.code == 0, run.text
    assert (out / "cert.pem").read_bytes() == pem(seed_leaf())
    assert (out / "private.key").read_bytes() == key_pem(KEY)
    assert oct((out / "private.key").stat().st_mode & 0o777) == "0o400"
    assert sorted(p.name for p in out.iterdir()) == ["cert.pem", "chain.pem", "private.key"]  # no temporaries


@pytest.mark.parametrize("command", ["keygen", "csr"])
def test_key_and_csr_outputs_refuse_a_dangling_link(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "target"
    link = tmp_path / "out.pem"
    link.symlink_to(target)
    if command == "keygen":
        run = cli(capsys, "keygen", "--type", "ec-p256", "--out", str(link))
    else:
        key = write(tmp_path / "k.pem", key_pem(KEY), 0o400)
        run = cli(capsys, "csr", "--key", key, "--common-name", "www.example.com", "--out", str(link), keys=[KEY])
    assert run.code == 1
    assert "[output-is-link]" in run.err
    assert not target.exists()


def test_csr_is_written_0644_without_temporaries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = write(tmp_path / "k.pem", key_pem(KEY), 0o400)
    run = cli(capsys, "csr", "--key", key, "--common-name", "www.example.com", "--out", str(tmp_path / "r.csr"),
              keys=[KEY])
    assert run.code == 0, run.text
    assert (tmp_path / "r.csr").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem", "r.csr"]


def test_convert_exits_1_when_a_finding_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = dt.datetime.now(dt.UTC)
    expired = rsa_pki().leaf(("www.example.com",), key=KEY, not_before=now - dt.timedelta(days=100), days=90)
    cert = write(tmp_path / "cert.pem", pem(expired))
    key = write(tmp_path / "key.pem", key_pem(KEY), 0o400)
    run = cli(capsys, "convert", cert, key, "--out", str(tmp_path / "out"), keys=[KEY])
    assert run.code == 1, run.text
    assert "error [" in run.out and "result: FAILED" in run.out
    assert (tmp_path / "out" / "cert.pem").exists()  # converted all the same: the finding says what to fix


# ------------------------------------------------------------------------------------------------ inputs
def _hostile(tmp_path: Path) -> dict[str, str]:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    return {"fifo": str(fifo), "device": "/dev/zero"}


def _commands(tmp_path: Path, bad: str) -> dict[str, list[str]]:
    cert, _chain, key = _material(tmp_path)
    out = str(tmp_path / "out")
    return {
        "inspect": ["inspect", bad],
        "inspect --password-file": ["inspect", key, "--password-file", bad],
        "convert": ["convert", bad, "--out", out],
        "convert --password-file": ["convert", cert, key, "--out", out, "--password-file", bad],
        "verify --chain": ["verify", "--certificate", cert, "--chain", bad],
        "csr --key": ["csr", "--key", bad, "--common-name", "www.example.com", "--out", str(tmp_path / "r.csr")],
        "csr --config": ["csr", "--key", key, "--config", bad, "--out", str(tmp_path / "r.csr")],
        "seal --key": ["seal", "--key", bad, "--kms-key", "alias/x", "--name", "www", "--out", out + ".sealed",
                       "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"],
        "upload --key": ["upload", "--secret-name", "x", "--key", bad, "--endpoint-url", "http://127.0.0.1:9",
                         "--region", "us-east-1"],
        "probe --ca-file": ["probe", "127.0.0.1:9", "--ca-file", bad, "--timeout", "1"],
        "probe --certificate": ["probe", "127.0.0.1:9", "--certificate", bad, "--timeout", "1"],
    }


COMMANDS = ["inspect", "inspect --password-file", "convert", "convert --password-file", "verify --chain", "csr --key",
            "csr --config", "seal --key", "upload --key", "probe --ca-file", "probe --certificate"]


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_ends_at_once_on_a_file_that_is_not_regular(command: str, kind: str, tmp_path: Path) -> None:
    bad = _hostile(tmp_path)[kind]
    argv = _commands(tmp_path, bad)[command]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_MAX_ATTEMPTS": "1"}
    # A hard limit that fails the test (a FIFO nobody writes blocked a plain read forever): not a timing assert.
    result = subprocess.run([CERTFLEET, *argv], capture_output=True, text=True, env=env, timeout=20, check=False)
    text = result.stdout + result.stderr
    assert result.returncode == 1, text
    assert "Traceback" not in text and "This is a bug" not in text
    assert "not a regular" in text, text
