"""Custom::CertfleetKeyVersion (served by the key writer's provider) on moto_server behind StrictAWS: the AWSCURRENT
version of a user's key secret pinned once per certificate change, read by every region's importer under replica lag,
and restored with no call when CloudFormation rolls back."""

from __future__ import annotations

from typing import Any

import pytest
from handler_support import REGION, Resource, Secret, boto, certificate_props, fingerprint, leaf_in_acm

from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import StrictAWS

PRIMARY = "us-east-1"
KEY_VERSION = "Custom::CertfleetKeyVersion"


@pytest.fixture
def pin(aws: StrictAWS) -> Resource:
    """The resource as the provider runs it: through the key writer's entry point, which dispatches on its type."""
    import certfleet_keywriter

    return Resource(certfleet_keywriter, KEY_VERSION, "KeyVersion")


def pin_props(secret_id: str, *issued: Issued) -> dict[str, Any]:
    """ResourceProperties as KeyVersionPin synthesizes them."""
    return {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:Certs-KeyWriter",
        "SecretId": secret_id,
        "Fingerprints": sorted(fingerprint(i) for i in issued),
    }


def test_pins_awscurrent_and_keeps_it_while_nothing_changes(
    pin: Resource, secret: Secret, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a user's secret holding the key WHEN the pin is created THEN it returns AWSCURRENT's VersionId (read with
    DescribeSecret, no value read); WHEN a new key is put and the stack is updated with the same certificate (a
    ServiceToken change) THEN the same version and physical id come back with no call to Secrets Manager."""
    version = secret.put(leaf.key_pem())
    created = pin.create(pin_props(secret.arn, leaf))
    assert created["Data"] == {"VersionId": version}
    assert created["PhysicalResourceId"].endswith(f"/{version}")
    assert aws.calls("secretsmanager", "GetSecretValue") == 0
    secret.put("a key the certificate does not use yet")
    calls = aws.calls("secretsmanager")
    moved = {**pin_props(secret.arn, leaf), "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:Other"}
    updated = pin.update(moved)
    assert updated["Data"] == {"VersionId": version}
    assert updated["PhysicalResourceId"] == created["PhysicalResourceId"]
    assert aws.calls("secretsmanager") == calls


def test_a_new_certificate_pins_the_new_version_as_a_replacement(
    pin: Resource, secret: Secret, pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN a pinned version WHEN the key is rotated and a new certificate deployed THEN the new AWSCURRENT is pinned
    under a new physical id (a replacement: a rollback brings the old resource and its version back), and the
    Delete CloudFormation then sends for the old one changes nothing."""
    first = secret.put(leaf.key_pem())
    old_id = pin.create(pin_props(secret.arn, leaf))["PhysicalResourceId"]
    renewed = pki.leaf(("www.example.com", "example.com"), days=120)
    second = secret.put(renewed.key_pem())
    updated = pin.update(pin_props(secret.arn, renewed))
    assert updated["Data"] == {"VersionId": second} and second != first
    assert updated["PhysicalResourceId"] != old_id
    assert pin.delete(old_id, pin_props(secret.arn, leaf))["PhysicalResourceId"] == old_id
    stages = secret.client.describe_secret(SecretId=secret.arn)["VersionIdsToStages"]
    assert "AWSCURRENT" in stages[second] and "AWSPREVIOUS" in stages[first]


def test_a_missing_secret_fails_clearly(pin: Resource, aws: StrictAWS) -> None:
    """GIVEN no such secret WHEN the pin is created THEN the error names the secret and the region and says what to
    do; no secret value is read."""
    with pytest.raises(RuntimeError, match=r"production/ssl/nothing does not exist in eu-west-1.*create it"):
        pin.create(pin_props("production/ssl/nothing"))
    assert aws.calls("secretsmanager", "GetSecretValue") == 0


def test_a_secret_scheduled_for_deletion_says_restore_it(pin: Resource, secret: Secret, leaf: Issued) -> None:
    """GIVEN the user's secret scheduled for deletion WHEN the pin is created THEN the error says to restore it."""
    secret.put(leaf.key_pem())
    secret.client.delete_secret(SecretId=secret.arn, RecoveryWindowInDays=7)
    with pytest.raises(RuntimeError, match="scheduled for deletion: restore it"):
        pin.create(pin_props(secret.arn, leaf))


def test_a_secret_without_awscurrent_says_put_the_key(pin: Resource) -> None:
    """GIVEN a secret created without a value (no version, no AWSCURRENT) WHEN the pin is created THEN the error says
    to put the key into it."""
    arn = boto("secretsmanager").create_secret(Name="certfleet/test/empty")["ARN"]
    with pytest.raises(RuntimeError, match="has no AWSCURRENT version: put the certificate's private key"):
        pin.create(pin_props(arn))


def test_rotation_under_replica_lag_then_rollback(
    pin: Resource, pki: DemoPKI, leaf: Issued, aws: StrictAWS, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN a fleet in us-east-1 (primary) and eu-west-1 (a replica lagging: it refuses the first two reads of a
    new version) on the user's secret, deployed WHEN a new key is put, the pin resolves it once and both importers
    update with that version THEN eu-west-1 waits for the replica and imports the new certificate with the new key
    (it read AWSCURRENT before: the old key, refused); WHEN the stacks then roll back (CloudFormation restores the
    old pin and sends the importers their old properties) THEN both re-import the old certificate with the old key
    version, though AWSCURRENT holds the new key."""
    import certfleet_import

    monkeypatch.setenv("AWS_REGION", PRIMARY)
    secret = Secret(PRIMARY, replicas=(REGION,))
    first_version = secret.put(leaf.key_pem())
    importers = {r: Resource(certfleet_import, "Custom::CertfleetCertificate", f"Cert{r}") for r in (PRIMARY, REGION)}

    def deploy(issued: Issued) -> dict[str, dict[str, Any]]:
        version = pin.run(pin.event("Create" if pin.physical_id is None else "Update", pin_props(secret.arn, issued)))[
            "Data"]["VersionId"]
        props: dict[str, dict[str, Any]] = {}
        for region, importer in importers.items():
            monkeypatch.setenv("AWS_REGION", region)
            props[region] = certificate_props(issued, pki, secret.arn_in(region), version)
            importer.run(importer.event("Create" if importer.physical_id is None else "Update", props[region]))
        monkeypatch.setenv("AWS_REGION", PRIMARY)
        return props

    before = deploy(leaf)
    assert {r: i.data["KeyVersionId"] for r, i in importers.items()} == dict.fromkeys(importers, first_version)
    arns = {r: i.physical_id for r, i in importers.items()}
    renewed = pki.leaf(("www.example.com", "example.com"), days=150)
    aws.replica_lag_reads = 2
    second_version = secret.put(renewed.key_pem())
    reads = aws.calls("secretsmanager", "GetSecretValue", REGION)
    after = deploy(renewed)
    assert aws.calls("secretsmanager", "GetSecretValue", REGION) > reads + 1, "eu-west-1 waited for its replica"
    for region, importer in importers.items():
        assert importer.physical_id == arns[region]
        assert importer.data["KeyVersionId"] == second_version
        assert leaf_in_acm(str(importer.physical_id)) == fingerprint(renewed)

    for region, importer in importers.items():  # the rollback: old properties, the old pin's version in them
        monkeypatch.setenv("AWS_REGION", region)
        importer.update(before[region], old=after[region])
        assert leaf_in_acm(str(importer.physical_id)) == fingerprint(leaf)
        assert importer.data["KeyVersionId"] == first_version
