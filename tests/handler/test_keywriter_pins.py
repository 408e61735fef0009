"""Custom::CertfleetSealedKey behaviours that a one-token change would break unseen (issue 15, bench/mutation.py)."""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest
from handler_support import Resource, Sealed, Secret

from certfleet.material.demo import Issued
from certfleet.testing import StrictAWS


def test_a_delete_answers_with_the_physical_id_it_was_given(sealed_key: Resource, leaf: Issued, aws: StrictAWS) -> None:
    """GIVEN a key writer resource whose physical id is not today's ``<secret>#sealed-key`` (written by an earlier
    release) WHEN it is deleted THEN the answer keeps that id: the Provider refuses a Delete that changes it."""
    secret, sealed = Secret(), Sealed(leaf)
    event = {**sealed_key.event("Delete", sealed.props(secret.arn)), "PhysicalResourceId": "an-older-physical-id"}
    aws.reset()
    assert sealed_key.module.on_event(event, None) == {"PhysicalResourceId": "an-older-physical-id"}
    assert aws.calls("secretsmanager") == 0


def test_a_secret_named_by_name_is_written_in_the_functions_region(
    sealed_key: Resource, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN SecretId as a name, not an ARN WHEN the key writer runs THEN it writes the key to that secret in its
    own region."""
    secret, sealed = Secret(), Sealed(leaf)
    name = secret.client.describe_secret(SecretId=secret.arn)["Name"]
    version = sealed_key.create(sealed.props(name))["Data"]["VersionId"]
    stored = secret.client.get_secret_value(SecretId=secret.arn)
    assert stored["VersionId"] == version and stored["SecretString"] == leaf.key_pem().decode()


def test_the_version_id_is_named_after_the_ciphertext(sealed_key: Resource, leaf: Issued, aws: StrictAWS) -> None:
    """GIVEN a sealed key WHEN the key writer writes it THEN the VersionId is the UUID (version 4 layout) of the
    ciphertext's SHA-256, as every release names it, so a revert to a key written by an older release finds its
    version again instead of writing a new one."""
    secret, sealed = Secret(), Sealed(leaf)
    ciphertext = sealed.ciphertext()
    version = sealed_key.create(sealed.props(secret.arn, ciphertext))["Data"]["VersionId"]
    digest = hashlib.sha256(base64.b64decode(ciphertext)).digest()
    assert version == str(uuid.UUID(bytes=digest[:16], version=4))


def test_a_secret_that_does_not_exist_fails_clearly(sealed_key: Resource, leaf: Issued, aws: StrictAWS) -> None:
    """GIVEN a SecretId that names no secret WHEN the key writer runs THEN it fails with a message that names the
    secret and quotes Secrets Manager, and writes nothing."""
    missing = Secret().arn.replace("certfleet/test/", "certfleet/missing/")
    with pytest.raises(RuntimeError) as failure:
        sealed_key.create(Sealed(leaf).props(missing))
    assert f"cannot write the key to secret {missing}" in str(failure.value)
    assert "ResourceNotFoundException" in str(failure.value)
    assert aws.calls("secretsmanager", "PutSecretValue") == 1


def test_a_key_sealed_without_encryption_context_is_written(
    sealed_key: Resource, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a key sealed with an empty encryption context WHEN the key writer runs with EncryptionContext {}
    THEN it decrypts and writes the key."""
    secret, sealed = Secret(), Sealed(leaf)
    sealed.context = {}  # Sealed(context={}) would fall back to its default context
    version = sealed_key.create(sealed.props(secret.arn, EncryptionContext={}))["Data"]["VersionId"]
    assert secret.client.get_secret_value(SecretId=secret.arn, VersionId=version)["SecretString"] == \
        leaf.key_pem().decode()


def test_a_new_key_needs_no_explicit_stage_move(sealed_key: Resource, leaf: Issued, aws: StrictAWS) -> None:
    """GIVEN a secret WHEN a new key is written (PutSecretValue makes it AWSCURRENT itself)
    THEN the key writer does not move AWSCURRENT again: UpdateSecretVersionStage is for a revert only."""
    secret, sealed = Secret(), Sealed(leaf)
    sealed_key.create(sealed.props(secret.arn))
    assert aws.calls("secretsmanager", "PutSecretValue") == 1
    assert aws.calls("secretsmanager", "UpdateSecretVersionStage") == 0
