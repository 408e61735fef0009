"""Helpers for construct tests: constants, the material files, a sealed key that needs no KMS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from certfleet.material.demo import Issued
from certfleet.testing.synth import write_synth_only_sealed_key

ACCOUNT = "123456789012"
SEALING_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@dataclass
class Files:
    certificate: Path
    chain: Path
    key: Path
    combined: Path
    leaf: Issued


def write_sealed(path: Path, issued: Issued, name: str = "www.example.com") -> Path:
    """A sealed file whose ciphertext is random bytes: synth never decrypts, so no KMS is needed."""
    return write_synth_only_sealed_key(path, issued.key, name, SEALING_KEY_ARN)
