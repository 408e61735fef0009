"""Helpers for synth-only tests: material that synthesizes like the real thing and opens nowhere."""

from __future__ import annotations

import os
import shutil
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


DEMO_NAMES = ("www.example.com", "example.com", "*.example.com")
"""The names of the reference app's demo certificate."""


def write_reference_app(folder: str | os.PathLike[str], root: str | os.PathLike[str], *, label: str = "test") -> Path:
    """Lay ``folder`` out like the repository at ``root`` for a synth of the reference app: its cdk.json, the
    committed reference/ material, and demo material (a fresh leaf for ``DEMO_NAMES``, its key sealed synth-only)."""
    from certfleet.material.demo import DemoPKI

    target, source = Path(folder), Path(root)
    shutil.copy(source / "cdk.json", target / "cdk.json")
    shutil.copytree(source / "reference", target / "reference")
    pki = DemoPKI.create(label=label)
    leaf = pki.leaf(DEMO_NAMES, days=200)
    (target / "demo").mkdir()
    (target / "demo" / "certificate.pem").write_bytes(leaf.pem())
    (target / "demo" / "chain.pem").write_bytes(pki.chain_pem())
    write_synth_only_sealed_key(target / "demo" / "private.key.sealed", leaf.key)
    return target
