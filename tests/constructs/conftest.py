"""Fixtures for construct tests: demo material on disk and a sealed key that needs no KMS."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from construct_support import Files, write_sealed

from certfleet.certificate_bundle import CertificateBundle
from certfleet.material.demo import DemoPKI, Issued


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory, pki: DemoPKI, leaf: Issued) -> Files:
    folder = tmp_path_factory.mktemp("material")
    paths = Files(folder / "cert.pem", folder / "chain.pem", folder / "private.key", folder / "combined.pem", leaf)
    paths.certificate.write_bytes(leaf.pem())
    paths.chain.write_bytes(pki.chain_pem())
    fd = os.open(paths.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "wb") as handle:
        handle.write(leaf.key_pem())
    paths.combined.write_bytes(leaf.pem() + leaf.key_pem() + pki.chain_pem())
    return paths


@pytest.fixture(scope="session")
def bundle(files: Files) -> CertificateBundle:
    return CertificateBundle.from_files(files.certificate, chain=files.chain)


@pytest.fixture(scope="session")
def sealed_path(tmp_path_factory: pytest.TempPathFactory, leaf: Issued) -> Path:
    return write_sealed(tmp_path_factory.mktemp("sealed") / "www.example.com.key.sealed", leaf)
