"""Custom::CertfleetCertificate on moto_server behind StrictAWS: create, adopt, renew, replace, roll back, delete."""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import threading
from typing import Any

import pytest
from handler_support import (
    REGION,
    LambdaContext,
    Resource,
    Secret,
    all_certificates,
    boto,
    certificate_props,
    fingerprint,
    key_body,
    leaf_in_acm,
)

from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import StrictAWS


def not_after(issued: Issued) -> str:
    return issued.certificate.not_valid_after_utc.isoformat()


def test_create_imports_with_identity_tags(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """GIVEN a key secret and a certificate WHEN CloudFormation creates the resource
    THEN the certificate is imported once with its identity tags, the ARN is the physical id, Data is small
    and the key appears in no log line."""
    version = secret.put(leaf.key_pem())
    caplog.set_level(logging.INFO)
    response = certificate.create(certificate_props(leaf, pki, secret.arn, version))
    arn = response["PhysicalResourceId"]
    assert response["Data"] == {
        "CertificateArn": arn, "NotAfter": not_after(leaf), "KeyAlgorithm": "RSA_2048", "KeyVersionId": version,
        "Fingerprint": fingerprint(leaf),
    }
    assert len(json.dumps(response["Data"])) < 1024
    assert leaf_in_acm(arn) == fingerprint(leaf)
    tags = {t["Key"]: t["Value"] for t in boto("acm").list_tags_for_certificate(CertificateArn=arn)["Tags"]}
    assert tags == {"certfleet:managed-by": "certfleet", "certfleet:fleet": "Certs", "certfleet:id": "Certs/Www"}
    assert aws.calls("acm", "ImportCertificate") == 1
    assert any(arn in r.getMessage() and version in r.getMessage() for r in caplog.records)
    assert "PRIVATE KEY" not in caplog.text and key_body(leaf) not in caplog.text


def test_retried_create_adopts_instead_of_importing_twice(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a Create that imported but whose answer was lost WHEN CloudFormation retries the Create
    THEN the handler adopts the tagged certificate with the same fingerprint: one certificate, one import."""
    props = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()))
    first = certificate.create(props)
    second = certificate.create(props)
    assert second["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert len(all_certificates()) == 1
    assert aws.calls("acm", "ImportCertificate") == 1


def test_adoption_finds_ec_certificates_across_pages(
    certificate: Resource, secret: Secret, ec_pki: DemoPKI, aws: StrictAWS,
) -> None:
    """GIVEN an EC certificate already imported among others, and ACM paging one certificate at a time
    (ListCertificates lists only RSA_1024/RSA_2048 unless asked) WHEN the Create is retried
    THEN the handler asks for every key type, follows the pages and adopts it."""
    leaf = ec_pki.leaf(("ec.example.com",), key_type="ec-p256")
    props = certificate_props(leaf, ec_pki, secret.arn, secret.put(leaf.key_pem()))
    arn = certificate.create(props)["PhysicalResourceId"]
    aws.import_rate = None
    for name in ("a.example.com", "b.example.com"):
        other = ec_pki.leaf((name,), key_type="ec-p256")
        boto("acm").import_certificate(Certificate=other.pem(), PrivateKey=other.key_pem())
    aws.list_page_size = 1
    assert certificate.create(props)["PhysicalResourceId"] == arn
    assert len(all_certificates()) == 3
    assert aws.calls("acm", "ImportCertificate") == 3


def test_renewal_with_same_key_type_reimports_into_the_same_arn(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN an imported RSA-2048 certificate WHEN it is renewed with another RSA-2048 certificate and key
    THEN the same ARN holds the new certificate (NotAfter moved), reading the pinned new key version."""
    first = certificate.create(certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem())))
    renewed = pki.leaf(("www.example.com", "example.com"), days=180)
    version = secret.put(renewed.key_pem())
    second = certificate.update(certificate_props(renewed, pki, secret.arn, version))
    assert second["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert second["Data"]["NotAfter"] == not_after(renewed) != first["Data"]["NotAfter"]
    assert second["Data"]["KeyVersionId"] == version
    assert leaf_in_acm(second["PhysicalResourceId"]) == fingerprint(renewed)
    assert len(all_certificates()) == 1


def test_key_type_change_imports_a_new_certificate_and_the_old_is_deleted(
    certificate: Resource, secret: Secret, pki: DemoPKI, ec_pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN an RSA-2048 certificate WHEN it is replaced by an EC P-256 one (ACM cannot re-import across key types)
    THEN a new ARN comes back, and the Delete CloudFormation sends for the old ARN leaves exactly one."""
    old_arn = certificate.create(certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem())))[
        "PhysicalResourceId"]
    old_props = certificate.props
    ec_leaf = ec_pki.leaf(("www.example.com", "example.com"), key_type="ec-p256")
    response = certificate.update(certificate_props(ec_leaf, ec_pki, secret.arn, secret.put(ec_leaf.key_pem())))
    new_arn = response["PhysicalResourceId"]
    assert new_arn != old_arn
    assert response["Data"]["KeyAlgorithm"] == "EC_prime256v1"
    certificate.delete(old_arn, old_props)
    assert [c["CertificateArn"] for c in all_certificates()] == [new_arn]


def test_rollback_puts_the_previous_certificate_back(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN a renewal that re-imported a new certificate WHEN the stack update fails and CloudFormation sends
    the Update back with the old properties THEN the old certificate is re-imported with its pinned key version."""
    v1 = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()))
    first = certificate.create(v1)
    renewed = pki.leaf(("www.example.com", "example.com"), days=200)
    v2 = certificate_props(renewed, pki, secret.arn, secret.put(renewed.key_pem()))
    certificate.update(v2)
    rolled_back = certificate.update(v1, old=v2)
    assert rolled_back["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert rolled_back["Data"]["NotAfter"] == first["Data"]["NotAfter"] == not_after(leaf)
    assert rolled_back["Data"]["KeyVersionId"] == v1["KeySecretVersionId"]
    assert leaf_in_acm(first["PhysicalResourceId"]) == fingerprint(leaf)


def test_rollback_of_a_replacement_adopts_the_old_certificate(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, ec_pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN an RSA certificate replaced by an EC one (old ARN not yet deleted) WHEN the update rolls back
    THEN the handler adopts the old certificate by tags and fingerprint instead of importing a third."""
    v1 = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()))
    old_arn = certificate.create(v1)["PhysicalResourceId"]
    ec_leaf = ec_pki.leaf(("www.example.com",), key_type="ec-p256")
    v2 = certificate_props(ec_leaf, ec_pki, secret.arn, secret.put(ec_leaf.key_pem()))
    certificate.update(v2)
    imports = aws.calls("acm", "ImportCertificate")
    assert certificate.update(v1, old=v2)["PhysicalResourceId"] == old_arn
    assert aws.calls("acm", "ImportCertificate") == imports


def test_noop_update_imports_nothing(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN an imported certificate WHEN an Update changes nothing that ACM holds (same material, only the
    removal policy) THEN no ImportCertificate is spent and the same Data comes back."""
    props = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()))
    first = certificate.create(props)
    aws.reset()
    again = certificate.update({**props, "RemovalPolicy": "retain"})
    assert aws.calls("acm", "ImportCertificate") == 0
    assert aws.calls("secretsmanager", "GetSecretValue") == 0
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert again["Data"] == first["Data"]


def test_delete_while_in_use_waits_then_succeeds(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a certificate a CloudFront distribution still uses WHEN CloudFormation deletes it
    THEN isComplete answers False (no Data) while in use, and True once the distribution lets go."""
    arn = certificate.create(certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem())))[
        "PhysicalResourceId"]
    aws.mark_in_use(arn, by="arn:aws:cloudfront::123456789012:distribution/E2EXAMPLE")
    merged = certificate.on_event(certificate.event("Delete", certificate.props or {}))
    assert certificate.module.is_complete(merged, None) == {"IsComplete": False}
    assert certificate.module.is_complete(merged, None) == {"IsComplete": False}
    aws.release(arn)
    assert certificate.module.is_complete(merged, None) == {"IsComplete": True}
    assert all_certificates() == []


def test_delete_budget_exhausted_names_the_certificate_and_the_fix(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a certificate in use and a 0-second delete budget WHEN the delete is retried past its deadline
    THEN a clear error names the ARN, the user, and the fixes; the certificate is still there."""
    props = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()), DeleteTimeoutSeconds="0")
    arn = certificate.create(props)["PhysicalResourceId"]
    aws.mark_in_use(arn, by="arn:aws:cloudfront::123456789012:distribution/E2EXAMPLE")
    merged = certificate.on_event(certificate.event("Delete", props))
    with pytest.raises(RuntimeError) as failure:
        certificate.module.is_complete(merged, None)
    message = str(failure.value)
    assert arn in message and "E2EXAMPLE" in message and "RETAIN" in message
    assert len(all_certificates()) == 1


def test_retain_leaves_the_certificate(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN removal policy retain WHEN the resource is deleted THEN ACM is not touched."""
    props = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()), RemovalPolicy="retain")
    certificate.create(props)
    aws.reset()
    certificate.delete()
    assert aws.calls("acm") == 0
    assert len(all_certificates()) == 1


def test_delete_of_a_failed_create_or_a_vanished_certificate_succeeds(certificate: Resource, aws: StrictAWS) -> None:
    """GIVEN a physical id that is not an ACM ARN (the Create failed), or an ARN already gone
    WHEN CloudFormation deletes THEN the delete succeeds."""
    props = {"RemovalPolicy": "destroy", "DeleteTimeoutSeconds": "1500"}
    certificate.delete("c0ffee-request-id", props)
    assert aws.calls("acm") == 0
    gone = f"arn:aws:acm:{REGION}:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    certificate.delete(gone, props)
    assert aws.calls("acm", "DeleteCertificate") == 1


def test_throttled_imports_succeed_after_retries(secret: Secret, pki: DemoPKI, aws: StrictAWS) -> None:
    """GIVEN ACM's real 1 ImportCertificate/s in a region WHEN three certificates are created at once there
    THEN some imports are throttled, and all three succeed after backoff."""
    import certfleet_import

    leaves = [pki.leaf((f"host{i}.example.com",)) for i in range(3)]
    versions = [secret.put(leaf.key_pem()) for leaf in leaves]
    results: list[str] = []
    errors: list[BaseException] = []

    def create(i: int) -> None:
        resource = Resource(certfleet_import, "Custom::CertfleetCertificate", f"Host{i}")
        try:
            results.append(resource.create(certificate_props(leaves[i], pki, secret.arn, versions[i],
                                                             cert_id=f"Certs/Host{i}"))["PhysicalResourceId"])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 3 == len(all_certificates())
    assert aws.calls("acm", "ImportCertificate", REGION) > 3  # throttled attempts were retried


def test_replica_lag_is_waited_out(pki: DemoPKI, leaf: Issued, aws: StrictAWS) -> None:
    """GIVEN a key written in us-east-1 a moment ago and replicated to eu-west-1 with lag (two reads refused) WHEN
    the eu-west-1 importer reads that exact version THEN it retries until the replica has it, then imports."""
    import certfleet_import

    aws.replica_lag_reads = 2
    primary = Secret("us-east-1", replicas=(REGION,))
    version = primary.put(leaf.key_pem())
    resource = Resource(certfleet_import, "Custom::CertfleetCertificate")
    response = resource.create(certificate_props(leaf, pki, primary.arn_in(REGION), version))
    assert response["Data"]["KeyVersionId"] == version
    assert aws.calls("secretsmanager", "GetSecretValue", REGION) == 3


def test_replica_that_never_catches_up_fails_clearly(
    certificate: Resource, pki: DemoPKI, leaf: Issued, aws: StrictAWS, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN a replica lagging longer than the read budget WHEN the importer runs THEN a clear error names the
    secret, the version and the region, and nothing is imported."""
    monkeypatch.setenv("CERTFLEET_SECRET_WAIT_SECONDS", "0.5")
    aws.replica_lag = 30
    primary = Secret("us-east-1", replicas=(REGION,))
    version = primary.put(leaf.key_pem())
    with pytest.raises(RuntimeError) as failure:
        certificate.create(certificate_props(leaf, pki, primary.arn_in(REGION), version))
    assert version in str(failure.value) and REGION in str(failure.value) and "replica" in str(failure.value)
    assert aws.calls("acm", "ImportCertificate") == 0


def test_json_secret_with_private_key_field(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN a secret holding JSON {"private_key": PEM} read as AWSCURRENT WHEN the certificate is created
    THEN the import succeeds with the key from the JSON field."""
    version = secret.put(json.dumps({"private_key": leaf.key_pem().decode(), "note": "seed format"}))
    response = certificate.create(certificate_props(leaf, pki, secret.arn))
    assert response["Data"]["KeyVersionId"] == version
    assert leaf_in_acm(response["PhysicalResourceId"]) == fingerprint(leaf)


def test_secret_without_a_key_fails_clearly(certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued) -> None:
    """GIVEN a JSON secret without "private_key" WHEN the certificate is created THEN the error says so."""
    secret.put(json.dumps({"password": "not-a-key"}))
    with pytest.raises(ValueError, match="private_key") as failure:
        certificate.create(certificate_props(leaf, pki, secret.arn))
    assert "not-a-key" not in str(failure.value)


def test_key_that_does_not_match_fails_clearly_without_key_material(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    """GIVEN a secret holding another certificate's key WHEN the certificate is created THEN ACM's refusal is
    quoted with the secret to check, and neither the message nor the logs carry key material."""
    stranger = pki.leaf(("other.example.com",))
    version = secret.put(stranger.key_pem())
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RuntimeError) as failure:
        certificate.create(certificate_props(leaf, pki, secret.arn, version))
    message = str(failure.value)
    assert "ValidationException" in message and "does not match" in message and secret.arn in message
    out = capsys.readouterr()
    for text in (message, caplog.text, out.out, out.err):
        assert "PRIVATE KEY" not in text and key_body(stranger) not in text
    assert all_certificates() == []


def test_not_after_is_iso_8601(certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued) -> None:
    """GIVEN an import WHEN Data is returned THEN NotAfter parses as an aware ISO 8601 time."""
    data = certificate.create(certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem())))["Data"]
    assert dt.datetime.fromisoformat(data["NotAfter"]).tzinfo is not None


def test_throttling_past_the_budget_fails_clearly(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN a region whose import rate is used up for longer than the retry budget WHEN the handler imports
    THEN it gives up with a message that says ACM kept throttling, in which region."""
    monkeypatch.setenv("CERTFLEET_IMPORT_RETRY_SECONDS", "0.3")
    aws.import_rate = 0.01  # one import per 100 s
    stranger = pki.leaf(("first.example.com",))
    boto("acm").import_certificate(Certificate=stranger.pem(), PrivateKey=stranger.key_pem())
    with pytest.raises(RuntimeError, match=f"kept throttling ImportCertificate in {REGION}"):
        certificate.create(certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem())))


def test_update_of_a_certificate_deleted_out_of_band_imports_a_new_one(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN a certificate someone deleted by hand WHEN a renewal arrives THEN a new certificate is imported
    (a new physical id) instead of failing on the missing ARN."""
    props = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()))
    old_arn = certificate.create(props)["PhysicalResourceId"]
    boto("acm").delete_certificate(CertificateArn=old_arn)
    renewed = pki.leaf(("www.example.com", "example.com"), days=120)
    response = certificate.update(certificate_props(renewed, pki, secret.arn, secret.put(renewed.key_pem())))
    assert response["PhysicalResourceId"] != old_arn
    assert leaf_in_acm(response["PhysicalResourceId"]) == fingerprint(renewed)


def _renamed(props: dict[str, Any], fleet: str) -> dict[str, Any]:
    """``props`` as they synthesize after the fleet is renamed to ``fleet`` (fleet and id tags change)."""
    tags = [dict(t) for t in props["Tags"]]
    tags[1]["Value"], tags[2]["Value"] = fleet, tags[2]["Value"].replace("Certs", fleet, 1)
    return {**props, "Tags": tags}


def test_renaming_the_fleet_fails_the_update_before_touching_anything(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN an imported certificate WHEN an Update renames its fleet (new fleet and id tags), even with a renewal
    THEN it fails with a message that says the fleet name is the certificate's identity and how to rename, and
    ACM is not touched (no import, no tag change)."""
    props = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()))
    arn = certificate.create(props)["PhysicalResourceId"]
    renewed = pki.leaf(("www.example.com", "example.com"), days=180)
    aws.reset()
    for new in (_renamed(props, "Renamed"),
                _renamed(certificate_props(renewed, pki, secret.arn, secret.put(renewed.key_pem())), "Renamed")):
        with pytest.raises(RuntimeError) as failure:
            certificate.update(new)
        message = str(failure.value)
        assert "'Certs'" in message and "'Renamed'" in message and "identity" in message
        assert "add a fleet with the new name" in message and "remove the old fleet" in message
    assert aws.calls("acm") == aws.calls("acm", "ListTagsForCertificate") == 2
    assert aws.calls("secretsmanager", "GetSecretValue") == 0
    tags = {t["Key"]: t["Value"] for t in boto("acm").list_tags_for_certificate(CertificateArn=arn)["Tags"]}
    assert tags["certfleet:fleet"] == "Certs" and leaf_in_acm(arn) == fingerprint(leaf)


def test_the_rollback_of_a_refused_rename_succeeds_and_imports_nothing(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a refused rename WHEN CloudFormation rolls back (an Update back to the old properties, the refused ones as
    OldResourceProperties) THEN it succeeds with the same ARN and Data, and nothing is imported."""
    props = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()))
    first = certificate.create(props)
    renamed = _renamed(props, "Renamed")
    with pytest.raises(RuntimeError):
        certificate.update(renamed)
    aws.reset()
    back = certificate.update(props, old=renamed)
    assert back["PhysicalResourceId"] == first["PhysicalResourceId"] and back["Data"] == first["Data"]
    assert aws.calls("acm", "ImportCertificate") == 0


def test_throttled_import_waits_as_long_as_the_lambda_has_time(
    *, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN ACM's import slot taken for about 2 s, a fixed retry budget of 0.3 s and 8 s left to the Lambda
    WHEN the handler imports THEN it keeps retrying within the Lambda's remaining time and succeeds."""
    import certfleet_import

    monkeypatch.setenv("CERTFLEET_IMPORT_RETRY_SECONDS", "0.3")
    monkeypatch.setenv("CERTFLEET_LAMBDA_MARGIN_SECONDS", "1")
    aws.import_rate = 0.5  # one import per 2 s
    stranger = pki.leaf(("first.example.com",))
    boto("acm").import_certificate(Certificate=stranger.pem(), PrivateKey=stranger.key_pem())
    resource = Resource(certfleet_import, "Custom::CertfleetCertificate")
    event = resource.event("Create", certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem())))
    result = certfleet_import.on_event(event, LambdaContext(8))
    assert leaf_in_acm(result["PhysicalResourceId"]) == fingerprint(leaf)
    assert aws.calls("acm", "ImportCertificate") > 2


def test_throttled_import_gives_up_before_the_lambda_times_out(
    *, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN ACM's import slot taken for 100 s and 3 s left to the Lambda (1 s margin) WHEN the handler imports
    THEN it gives up with its own clear message before the Lambda's timeout would kill it silently."""
    import certfleet_import

    monkeypatch.delenv("CERTFLEET_IMPORT_RETRY_SECONDS")
    monkeypatch.setenv("CERTFLEET_LAMBDA_MARGIN_SECONDS", "1")
    aws.import_rate = 0.01
    stranger = pki.leaf(("first.example.com",))
    boto("acm").import_certificate(Certificate=stranger.pem(), PrivateKey=stranger.key_pem())
    resource = Resource(certfleet_import, "Custom::CertfleetCertificate")
    event = resource.event("Create", certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem())))

    def timed_out(signum: int, frame: object) -> None:
        raise TimeoutError("the handler was still retrying 20 s later: a Lambda would have timed out")

    previous = signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(20)
    try:
        with pytest.raises(RuntimeError, match=f"kept throttling ImportCertificate in {REGION}"):
            certfleet_import.on_event(event, LambdaContext(3))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_the_same_certificate_with_its_key_in_another_secret_imports_nothing(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN an imported certificate WHEN an Update names another secret (or version) holding the same key, as a
    FleetGroup fleet that moves shards does THEN nothing is imported and Data names the new key version."""
    first = certificate.create(certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem())))
    other = Secret()
    version = other.put(leaf.key_pem())
    aws.reset()
    again = certificate.update(certificate_props(leaf, pki, other.arn, version))
    assert aws.calls("acm", "ImportCertificate") == 0
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert again["Data"]["KeyVersionId"] == version
