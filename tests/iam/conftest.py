"""Fixtures for IAM tests: one evaluator process per session, demo material that needs no KMS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from iam_support import SEALING_KEY, IamEvaluator

from certfleet.certificate_bundle import CertificateBundle
from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing.synth import write_synth_only_sealed_key


@pytest.fixture(scope="session")
def iam() -> Iterator[IamEvaluator]:
    with IamEvaluator() as evaluator:
        yield evaluator


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory, pki: DemoPKI, leaf: Issued) -> tuple[CertificateBundle, Path]:
    folder = tmp_path_factory.mktemp("iam-material")
    (folder / "cert.pem").write_bytes(leaf.pem())
    (folder / "chain.pem").write_bytes(pki.chain_pem())
    sealed = write_synth_only_sealed_key(folder / "www.example.com.key.sealed", leaf.key, "www.example.com",
                                         SEALING_KEY)
    return CertificateBundle.from_files(folder / "cert.pem", chain=folder / "chain.pem"), sealed
