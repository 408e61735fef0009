"""Shared fixtures: a demo PKI generated at test time (no key is ever committed); IAM enforced by every StrictAWS."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import MotoServer, StrictAWS
from certfleet.testing.leaks import find_leaks

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
for _folder in (str(Path(__file__).with_name("iam")), str(Path(__file__).with_name("acme"))):
    if _folder not in sys.path:  # iam_support; acme_support (the pebble fixtures below serve every test folder)
        sys.path.insert(0, _folder)

from acme_support import ChallTestSrv, Pebble, missing_tools, new_eab_key  # noqa: E402 - needs tests/acme on sys.path
from iam_support import SessionAuthorizer  # noqa: E402 - needs tests/iam on sys.path

SESSION_IAM = SessionAuthorizer()
"""Every StrictAWS of the session authorizes the rehearsal's roles through this one evaluator (started lazily), which
keeps what each role's handler was allowed to call (tests/e2e/test_iam_enforced.py compares it with the grants)."""
StrictAWS.default_authorizer = SESSION_IAM
E2E = Path(__file__).with_name("e2e")
SESSION_END = "session_end"
_COLLECTED = pytest.StashKey[set[str]]()
SESSION_FAILURES: set[str] = set()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{SESSION_END}: runs after every other test of the session")
    config.stash[_COLLECTED] = set[str]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Session-end checks go last; remember which e2e files the session runs."""
    items.sort(key=lambda item: item.get_closest_marker(SESSION_END) is not None)
    config.stash[_COLLECTED] = {str(item.path) for item in items if item.get_closest_marker(SESSION_END) is None}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        SESSION_FAILURES.add(report.nodeid)


def _e2e_suite_ran(config: pytest.Config) -> str:
    """'' when this session ran every e2e test file and nothing failed; else why a session-end check cannot judge."""
    wanted = {str(p) for p in E2E.glob("test_*.py")} - {str(E2E / "test_iam_enforced.py")}
    collected: set[str] = config.stash[_COLLECTED]
    missing = sorted(Path(p).name for p in wanted - collected)
    if missing:
        return f"the session did not run {', '.join(missing)}: run tests/e2e as a whole"
    if SESSION_FAILURES:
        return f"{len(SESSION_FAILURES)} tests failed: the calls observed are incomplete"
    return ""


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the evaluator; with CERTFLEET_IAM_RECORD=<file>, keep what the session's roles were granted and called."""
    SESSION_IAM.close()
    record = os.environ.get("CERTFLEET_IAM_RECORD")
    if record and SESSION_IAM.roles:
        Path(record).write_text(json.dumps(SESSION_IAM.record(), indent=1), encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How much IAM the session evaluated, what it refused, and which grants no handler of this session called."""
    iam = SESSION_IAM
    if not iam.roles:
        return
    terminalreporter.section("IAM enforced by StrictAWS")
    terminalreporter.write_line(f"{len(iam.roles)} roles, {iam.checks} checks in {iam.seconds:.2f} s of evaluation, "
                                f"{len(iam.denied)} refused")
    for denied in iam.denied[:20]:
        terminalreporter.write_line(f"refused: {' '.join(denied)}")
    terminalreporter.write_line("granted, never called by this session's handlers: "
                                + json.dumps(iam.unused_grants(), indent=1))


@pytest.fixture
def session_iam() -> SessionAuthorizer:
    """The session's authorizer: what every rehearsal's roles were granted, allowed and refused so far."""
    return SESSION_IAM


@pytest.fixture
def e2e_suite_ran(request: pytest.FixtureRequest) -> str:
    """'' when this session ran every e2e test file and none failed; else why a session-end check cannot judge."""
    return _e2e_suite_ran(request.config)


@pytest.fixture(scope="session")
def moto_server() -> MotoServer:
    """The session's one moto_server process (MotoServer.shared: every test folder uses the same)."""
    return MotoServer.shared()


@pytest.fixture(scope="session")
def strict_aws(moto_server: MotoServer) -> Iterator[StrictAWS]:
    """The strict layer in front of it; tests reset both (and its knobs) before use."""
    with StrictAWS(moto_server.url) as strict:
        yield strict


@pytest.fixture(scope="session")
def pki() -> DemoPKI:
    """An RSA root + intermediate, made once per session."""
    return DemoPKI.create("rsa-2048", label="test")


@pytest.fixture(scope="session")
def ec_pki() -> DemoPKI:
    return DemoPKI.create("ec-p256", label="test ec")


@pytest.fixture(scope="session")
def leaf(pki: DemoPKI) -> Issued:
    """The seed's case: RSA 2048, SANs www.example.com and example.com."""
    return pki.leaf(("www.example.com", "example.com"))


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
    """The session's test DNS (pebble-challtestsrv, DNS-01 only), shared by every pebble below."""
    with ChallTestSrv() as server:
        yield server


@pytest.fixture(scope="session")
def pebble(challtestsrv: ChallTestSrv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """A pebble CA without External Account Binding, validating DNS-01 against `challtestsrv`."""
    with Pebble(tmp_path_factory.mktemp("pebble"), challtestsrv.dns_address) as ca:
        yield ca


@pytest.fixture(scope="session")
def eab_pebble(challtestsrv: ChallTestSrv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """A pebble CA requiring External Account Binding: its one key id is "kid-1" (key in `eab_pebble.eab_keys`)."""
    keys = {"kid-1": new_eab_key()}
    with Pebble(tmp_path_factory.mktemp("pebble-eab"), challtestsrv.dns_address, eab_keys=keys) as ca:
        yield ca


@pytest.fixture
def trust_pebble(pebble: Pebble, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point requests (the acme library's HTTP) at the test CA bundle, as the Lambda would use the system store."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pebble.ca_bundle))
    return pebble.ca_bundle


class _LeakWatch(logging.Handler):
    """Keeps every record of the handlers' logger (and anything at WARNING or above) for the leak scan."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append(record.getMessage())
        except Exception:  # a record whose arguments do not format is still not a leak
            self.records.append(str(record.msg))


@pytest.fixture(autouse=True)
def no_key_material_in_logs() -> Iterator[None]:
    """Leak scan over every test: no log line of certfleet's handlers may hold a PEM private key block."""
    watch = _LeakWatch()
    logger = logging.getLogger("certfleet")
    logging.getLogger().addHandler(watch)
    logger.addHandler(watch)
    try:
        yield
    finally:
        logger.removeHandler(watch)
        logging.getLogger().removeHandler(watch)
    leaked = [line[:60] for line in watch.records if find_leaks(line)]
    assert leaked == [], f"key material in log lines: {leaked}"
