"""The pebble fixtures fail, never skip, in CI when Debian's pebble is missing (scripts/setup.sh installs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_without_pebble(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(Path(sys.executable).parent)  # the venv only: no /usr/bin/pebble
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/acme/test_acme_client.py", "-q", "-p", "no:cacheprovider", "-rfEs",
         "-k", "every_order_has_a_fresh_key"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("ci", [True, False])
def test_missing_pebble_fails_in_ci_and_skips_elsewhere(ci: bool) -> None:
    result = _run_without_pebble(ci)
    assert "pebble, pebble-challtestsrv not on PATH: apt-get install pebble" in result.stdout, result.stdout[-1500:]
    if ci:
        assert result.returncode == 1 and "1 error" in result.stdout, result.stdout[-800:]
    else:
        assert result.returncode == 0 and "1 skipped" in result.stdout, result.stdout[-800:]


def test_pebble_still_answers_after_more_log_lines_than_a_pipe_holds(
    pebble_tools: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN a pebble of its own WHEN 400 accounts register (each a few log lines: more than a 64 KiB pipe holds)
    THEN it still answers: its output is read as it comes (unread, pebble blocked after ~250 and clients timed out)."""
    from acme_support import ChallTestSrv, Pebble

    import certfleet_acme as ca

    with ChallTestSrv() as dns, Pebble(tmp_path / "pebble", dns.dns_address) as server:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_bundle))
        for _ in range(400):
            ca.register(ca.open_client(server.directory_url, ca.new_account_key(), timeout=10))
