"""Fixtures for placement tests: bundles generated at test time (RSA 2048, P-384, RSA 4096, a wildcard)."""

from __future__ import annotations

import pytest

from certfleet import CertificateBundle
from certfleet.material.demo import DemoPKI, Issued


def _bundle(pki: DemoPKI, issued: Issued) -> CertificateBundle:
    return CertificateBundle.from_pem(issued.pem().decode(), pki.chain_pem().decode())


@pytest.fixture(scope="session")
def rsa_bundle(tmp_path_factory: pytest.TempPathFactory, pki: DemoPKI, leaf: Issued) -> CertificateBundle:
    """The seed's certificate (www.example.com, example.com; RSA 2048), read from files."""
    folder = tmp_path_factory.mktemp("placement-material")
    (folder / "cert.pem").write_bytes(leaf.pem())
    (folder / "chain.pem").write_bytes(pki.chain_pem())
    return CertificateBundle.from_files(folder / "cert.pem", chain=folder / "chain.pem")


@pytest.fixture(scope="session")
def p384_bundle(ec_pki: DemoPKI) -> CertificateBundle:
    return _bundle(ec_pki, ec_pki.leaf(("www.example.com", "example.com"), key_type="ec-p384"))


@pytest.fixture(scope="session")
def p256_bundle(ec_pki: DemoPKI) -> CertificateBundle:
    return _bundle(ec_pki, ec_pki.leaf(("www.example.com", "example.com"), key_type="ec-p256"))


@pytest.fixture(scope="session")
def rsa4096_bundle(pki: DemoPKI) -> CertificateBundle:
    return _bundle(pki, pki.leaf(("www.example.com", "example.com"), key_type="rsa-4096"))


@pytest.fixture(scope="session")
def rsa3072_bundle(pki: DemoPKI) -> CertificateBundle:
    return _bundle(pki, pki.leaf(("www.example.com", "example.com"), key_type="rsa-3072"))


@pytest.fixture(scope="session")
def wildcard_bundle(pki: DemoPKI) -> CertificateBundle:
    return _bundle(pki, pki.leaf(("*.example.com", "example.com")))
