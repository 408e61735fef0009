"""Helpers for synth-only tests: material that synthesizes like the real thing and opens nowhere."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from certfleet.material.bundle import spki_sha256
from certfleet.material.checks import key_algorithm
from certfleet.material.sealed import SealedKey, encryption_context

SYNTH_ONLY_KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def write_synth_only_sealed_key(
    path: str | os.PathLike[str], key: PrivateKeyTypes, name: str = "www.example.com",
    kms_key_arn: str = SYNTH_ONLY_KMS_KEY,
) -> Path:
    """A sealed-key file for ``key`` whose ciphertext is random bytes: synth never decrypts, so no KMS is needed.

    Its public-key hash is the real one, so ``KeySource.sealed`` checks it against the bundle as usual.
    """
    sealed = SealedKey(
        kms_key_arn=kms_key_arn,
        region=kms_key_arn.split(":")[3],
        encryption_context=encryption_context(name),
        spki_sha256=spki_sha256(key.public_key()),
        key_algorithm=key_algorithm(key.public_key()),
        ciphertext=os.urandom(256),
    )
    target = Path(path)
    target.write_text(sealed.to_json())
    return target
