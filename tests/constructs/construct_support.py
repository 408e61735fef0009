"""Helpers for construct tests: constants, the material files, a sealed key that needs no KMS."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from certfleet.material.bundle import spki_sha256
from certfleet.material.checks import key_algorithm
from certfleet.material.demo import Issued
from certfleet.material.sealed import SealedKey, encryption_context

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
    sealed = SealedKey(
        kms_key_arn=SEALING_KEY_ARN,
        region="us-east-1",
        encryption_context=encryption_context(name),
        spki_sha256=spki_sha256(issued.key.public_key()),
        key_algorithm=key_algorithm(issued.key.public_key()),
        ciphertext=os.urandom(256),
    )
    path.write_text(sealed.to_json())
    return path


