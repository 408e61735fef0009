"""Shared fixtures: a demo PKI generated at test time (no key is ever committed)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import MotoServer, StrictAWS
from certfleet.testing.leaks import find_leaks

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


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
