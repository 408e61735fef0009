"""Custom::CertfleetSealedKey on moto_server behind StrictAWS: decrypt with KMS, write the secret once, fail clearly."""

from __future__ import annotations

import logging

import pytest
from handler_support import (
    CONTEXT,
    REGION,
    Resource,
    Sealed,
    Secret,
    certificate_props,
    fingerprint,
    key_body,
)

from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import StrictAWS


def versions(secret: Secret) -> list[str]:
    listed = secret.client.list_secret_version_ids(SecretId=secret.arn, IncludeDeprecated=True)["Versions"]
    return sorted(v["VersionId"] for v in listed)


def test_writes_the_key_once_and_an_identical_run_writes_nothing(
    sealed_key: Resource, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a sealed key and the stack's placeholder secret WHEN the key writer runs, then runs again with the same
    ciphertext and with a fresh ciphertext of the same key THEN the key is written once as PEM PKCS#8,
    every run returns the same VersionId and the secret gains one version only."""
    secret, sealed = Secret(), Sealed(leaf)
    props = sealed.props(secret.arn)
    first = sealed_key.create(props)
    version = first["Data"]["VersionId"]
    assert first["PhysicalResourceId"] == f"{secret.arn}#sealed-key"
    stored = secret.client.get_secret_value(SecretId=secret.arn)
    assert stored["VersionId"] == version and stored["SecretString"] == leaf.key_pem().decode()
    before = versions(secret)
    again = sealed_key.update(props)
    resealed = sealed_key.update(sealed.props(secret.arn))
    assert again["Data"]["VersionId"] == resealed["Data"]["VersionId"] == version
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert versions(secret) == before
    assert aws.calls("secretsmanager", "PutSecretValue") == 1


def test_retried_write_is_idempotent(sealed_key: Resource, leaf: Issued, aws: StrictAWS) -> None:
    """GIVEN a write whose answer was lost (the secret was changed meanwhile by hand) WHEN the same ciphertext is
    written again THEN Secrets Manager sees the same ClientRequestToken: the same version, not a new one."""
    secret, sealed = Secret(), Sealed(leaf)
    props = sealed.props(secret.arn)
    version = sealed_key.create(props)["Data"]["VersionId"]
    secret.put("changed by hand")
    assert sealed_key.update(props)["Data"]["VersionId"] == version


def test_wrong_encryption_context_fails_clearly_without_key_material(
    *, sealed_key: Resource, leaf: Issued, aws: StrictAWS,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    """GIVEN a file sealed for another certificate name WHEN the key writer decrypts with this certificate's context
    THEN the error names the context and `certfleet seal`, and no message, log or output carries key material."""
    secret, sealed = Secret(), Sealed(leaf, context={"certfleet:certificate": "api.example.com"})
    ciphertext = sealed.ciphertext()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RuntimeError) as failure:
        sealed_key.create(sealed.props(secret.arn, ciphertext, EncryptionContext=CONTEXT))
    message = str(failure.value)
    assert "certfleet:certificate=www.example.com" in message and "certfleet seal" in message
    assert sealed.key_arn in message
    out = capsys.readouterr()
    for text in (message, caplog.text, out.out, out.err):
        assert "PRIVATE KEY" not in text and key_body(leaf) not in text and ciphertext not in text
    assert secret.client.get_secret_value(SecretId=secret.arn)["SecretString"] == "placeholder"
    assert aws.calls("secretsmanager", "PutSecretValue") == 0


def test_another_kms_key_fails_clearly(sealed_key: Resource, leaf: Issued) -> None:
    """GIVEN a sealed file whose KmsKeyId names a different key than the one that sealed it WHEN it runs
    THEN the error says the file was made for another KMS key or context."""
    secret, sealed, other = Secret(), Sealed(leaf), Sealed(leaf)
    with pytest.raises(RuntimeError, match="another encryption context or KMS key"):
        sealed_key.create(sealed.props(secret.arn, KmsKeyId=other.key_arn))


def test_delete_is_a_no_op(sealed_key: Resource, leaf: Issued, aws: StrictAWS) -> None:
    """GIVEN a written key WHEN the resource is deleted THEN nothing is called and the secret keeps the key."""
    secret, sealed = Secret(), Sealed(leaf)
    physical = sealed_key.create(sealed.props(secret.arn))["PhysicalResourceId"]
    aws.reset()
    assert sealed_key.delete()["PhysicalResourceId"] == physical
    assert aws.calls() == 0
    assert secret.client.get_secret_value(SecretId=secret.arn)["SecretString"] == leaf.key_pem().decode()


def test_importer_reads_the_version_the_key_writer_wrote_from_a_replica(
    sealed_key: Resource, certificate: Resource, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN the primary stack's key writer in us-east-1 writing to a secret replicated to eu-west-1 (with lag)
    WHEN the eu-west-1 importer gets the writer's VersionId THEN it imports the certificate with that key."""
    aws.replica_lag = 1.0
    secret, sealed = Secret("us-east-1", replicas=(REGION,)), Sealed(leaf)
    version = sealed_key.create(sealed.props(secret.arn))["Data"]["VersionId"]
    response = certificate.create(certificate_props(leaf, pki, secret.arn_in(REGION), version))
    assert response["Data"]["KeyVersionId"] == version
    assert response["Data"]["Fingerprint"] == fingerprint(leaf)


def test_a_key_deployed_again_is_awscurrent_again(
    sealed_key: Resource, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN key A deployed, then key B WHEN A's sealed file is deployed again (a rollback, a git revert)
    THEN the writer returns A's version and AWSCURRENT is on it again: what EC2 reads matches the certificate."""
    secret, sealed_a = Secret(), Sealed(leaf)
    other = pki.leaf(("www.example.com", "example.com"), days=120)
    props_a = sealed_a.props(secret.arn)
    version_a = sealed_key.create(props_a)["Data"]["VersionId"]
    version_b = sealed_key.update(Sealed(other).props(secret.arn))["Data"]["VersionId"]
    assert sealed_key.update(props_a)["Data"]["VersionId"] == version_a != version_b
    stages = secret.client.describe_secret(SecretId=secret.arn)["VersionIdsToStages"]
    assert "AWSCURRENT" in stages[version_a] and "AWSCURRENT" not in stages[version_b]
    current = secret.client.get_secret_value(SecretId=secret.arn, VersionStage="AWSCURRENT")
    assert current["VersionId"] == version_a and current["SecretString"] == leaf.key_pem().decode()
    assert aws.calls("secretsmanager", "PutSecretValue") == 3
