"""A sealed key made with moto's KMS, as ``certfleet seal`` writes it: shared by the e2e tests and bench/iam_cost.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from certfleet.material.bundle import spki_sha256
from certfleet.material.checks import key_algorithm
from certfleet.material.demo import Issued
from certfleet.material.sealed import SealedKey, encryption_context

OFFLINE_AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
"""Credentials that reach nothing real and no profile: what a client of moto_server or StrictAWS runs with."""


def seal_with_kms(kms: Any, leaf: Issued, path: Path, *, name: str = "www.example.com", why: str = "test",
                  kms_key: str | None = None) -> Path:
    """``leaf``'s key encrypted with ``kms`` (a boto3 KMS client) under ``kms_key`` (default: a new key described
    with ``why``) for certificate ``name``, written to ``path`` as a sealed-key file of the client's region."""
    kms_key = kms_key or kms.create_key(Description=f"certfleet sealing ({why})")["KeyMetadata"]["Arn"]
    der = leaf.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    context = encryption_context(name)
    blob = kms.encrypt(KeyId=kms_key, Plaintext=der, EncryptionContext=context)["CiphertextBlob"]
    public = leaf.key.public_key()
    path.write_text(SealedKey(kms_key_arn=kms_key, region=str(kms.meta.region_name), encryption_context=context,
                              spki_sha256=spki_sha256(public), key_algorithm=key_algorithm(public),
                              ciphertext=bytes(blob)).to_json(), encoding="utf-8")
    return path
