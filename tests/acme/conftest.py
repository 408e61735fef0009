"""Session fixtures: one challtestsrv, a pebble without EAB and a pebble requiring EAB (none are skipped in CI)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from acme_support import ChallTestSrv, Pebble, missing_tools, new_eab_key


@pytest.fixture(scope="session")
def pebble_tools() -> None:
    """Fail in CI, skip elsewhere, when Debian's pebble is not installed (scripts/setup.sh installs it)."""
    missing = missing_tools()
    if not missing:
        return
    message = f"{', '.join(missing)} not on PATH: apt-get install pebble (scripts/setup.sh does it as root)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def challtestsrv(pebble_tools: None) -> Iterator[ChallTestSrv]:
    with ChallTestSrv() as server:
        yield server


@pytest.fixture(scope="session")
def pebble(challtestsrv: ChallTestSrv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    with Pebble(tmp_path_factory.mktemp("pebble"), challtestsrv.dns_address) as ca:
        yield ca


@pytest.fixture(scope="session")
def eab_pebble(challtestsrv: ChallTestSrv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    keys = {"kid-1": new_eab_key()}
    with Pebble(tmp_path_factory.mktemp("pebble-eab"), challtestsrv.dns_address, eab_keys=keys) as ca:
        yield ca


@pytest.fixture
def trust_pebble(pebble: Pebble, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point requests (the acme library's HTTP) at the test CA bundle, as the Lambda would use the system store."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pebble.ca_bundle))
    return pebble.ca_bundle
