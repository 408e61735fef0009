"""Shared fixtures: a demo PKI generated at test time (no key is ever committed)."""

from __future__ import annotations

import os

import pytest

from certfleet.material.demo import DemoPKI, Issued

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


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
