"""Custom::CertfleetCertificate behaviours that a one-token change would break unseen (issue 15, bench/mutation.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError
from handler_support import (
    REGION,
    STACK_ID,
    Resource,
    Secret,
    all_certificates,
    boto,
    certificate_props,
    fingerprint,
    leaf_in_acm,
)

from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import StrictAWS


def _tags(arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in boto("acm").list_tags_for_certificate(CertificateArn=arn)["Tags"]}


def _chain_in_acm(arn: str) -> list[str]:
    """The chain's PEM blocks that ACM serves for ``arn`` (moto appends one of its own to every chain)."""
    return _blocks(str(boto("acm").get_certificate(CertificateArn=arn).get("CertificateChain") or ""))


def _has_chain(arn: str, pki: DemoPKI) -> bool:
    """Whether ACM serves ``pki``'s intermediate and root with ``arn``; a leaf-only import serves neither."""
    served, ours = _chain_in_acm(arn), _blocks(pki.chain_pem())
    assert served[:len(ours)] == ours or not set(ours) & set(served), "a part of the chain"
    return served[:len(ours)] == ours


def _blocks(pem: str | bytes) -> list[str]:
    """The PEM blocks of ``pem``, whitespace-normalized, to compare chains as ACM returns them."""
    text = pem.decode() if isinstance(pem, bytes) else pem
    return ["".join(b.split()) for b in text.split("-----END CERTIFICATE-----") if "BEGIN" in b]


def test_the_chain_is_imported_when_given_and_left_out_when_empty(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN a certificate with its chain, and another whose chain is empty (a CA's leaf imported alone)
    WHEN each is created THEN ACM holds the chain of the first and none for the second, and both imports succeed."""
    arn = certificate.create(certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem())))["PhysicalResourceId"]
    assert _has_chain(arn, pki)
    alone = pki.leaf(("alone.example.com",))
    other = Resource(certificate.module, certificate.resource_type, "Alone")
    props = certificate_props(alone, pki, secret.arn, secret.put(alone.key_pem()), cert_id="Certs/Alone",
                              CertificateChain="")
    arn = other.create(props)["PhysicalResourceId"]
    assert leaf_in_acm(arn) == fingerprint(alone)
    assert not _has_chain(arn, pki)


def test_an_update_that_only_adds_the_chain_reimports(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a certificate imported without its chain WHEN an Update brings the same leaf with its chain
    THEN it is re-imported into the same ARN (the leaf alone is not all ACM holds), and ACM now serves the chain."""
    version = secret.put(leaf.key_pem())
    first = certificate.create(certificate_props(leaf, pki, secret.arn, version, CertificateChain=""))
    aws.reset()
    again = certificate.update(certificate_props(leaf, pki, secret.arn, version))
    assert aws.calls("acm", "ImportCertificate") == 1
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert _has_chain(first["PhysicalResourceId"], pki)


def test_a_retried_adoption_by_its_owner_writes_no_tag_again(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a certificate this resource already adopted (its owner tag names it) WHEN the Create is retried again
    THEN the adoption makes no AddTagsToCertificate call: the owner tag is written only when it changes."""
    props = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()))
    arn = certificate.create(props)["PhysicalResourceId"]
    certificate.create(props)
    assert _tags(arn)["certfleet:stack"] == f"{STACK_ID}/{certificate.logical_id}"
    aws.reset()
    assert certificate.create(props)["PhysicalResourceId"] == arn
    assert aws.calls("acm", "AddTagsToCertificate") == 0


def test_an_adoption_without_a_stack_id_writes_no_owner_tag(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN an imported certificate WHEN a Create whose event carries no StackId adopts it
    THEN no owner tag is written (an empty owner would claim the certificate for nobody)."""
    props = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()))
    arn = certificate.create(props)["PhysicalResourceId"]
    event = certificate.event("Create", props)
    del event["StackId"]
    aws.reset()
    assert certificate.module.on_event(event, None)["PhysicalResourceId"] == arn
    assert aws.calls("acm", "AddTagsToCertificate") == 0
    assert "certfleet:stack" not in _tags(arn)


@pytest.mark.parametrize("length", [256, 257, 400])
def test_an_owner_longer_than_a_tag_value_is_hashed(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, length: int,
) -> None:
    """GIVEN a stack and logical id whose ``<StackId>/<LogicalResourceId>`` is ``length`` characters
    WHEN that resource adopts a certificate THEN its owner tag is that text up to ACM's 256-character tag value,
    else a sha256 of it (which ACM accepts)."""
    props = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()))
    arn = certificate.create(props)["PhysicalResourceId"]
    long_stack = STACK_ID.replace("stack/Certs/", f"stack/{'Certs' * 25}/")
    mover = Resource(certificate.module, certificate.resource_type, "M" * (length - len(long_stack) - 1))
    event = {**mover.event("Create", props), "StackId": long_stack}
    owner = f"{long_stack}/{mover.logical_id}"
    assert len(owner) == length
    assert certificate.module.on_event(event, None)["PhysicalResourceId"] == arn
    tagged = _tags(arn)["certfleet:stack"]
    if length <= 256:
        assert tagged == owner
    else:
        assert tagged.startswith("sha256:") and len(tagged) == len("sha256:") + 64


def test_a_live_certificate_is_adopted_before_a_retired_one(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN two certificates with this resource's tags and fingerprint, the older one retired
    WHEN the Create is retried THEN the live one is adopted and the retired one stays retired (the sweeper's)."""
    props = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()))
    retired = certificate.create(props)["PhysicalResourceId"]
    boto("acm").add_tags_to_certificate(CertificateArn=retired,
                                        Tags=[{"Key": "certfleet:retired", "Value": "2026-01-01T00:00:00Z"}])
    aws.import_rate = None  # the test's own import
    live = boto("acm").import_certificate(Certificate=leaf.pem(), PrivateKey=leaf.key_pem(),
                                          CertificateChain=pki.chain_pem(), Tags=props["Tags"])["CertificateArn"]
    assert [c["CertificateArn"] for c in all_certificates()] == [retired, live]
    assert certificate.create(props)["PhysicalResourceId"] == live
    assert "certfleet:retired" in _tags(retired)


@pytest.mark.slow
def test_a_certificate_deleted_while_its_key_is_read_is_imported_anew(
    *, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a renewal whose key version is still replicating WHEN someone deletes the certificate after the importer
    read it and before the re-import THEN the re-import's ResourceNotFoundException makes a new certificate."""
    import certfleet_import

    primary = Secret("us-east-1", replicas=(REGION,))
    resource = Resource(certfleet_import, "Custom::CertfleetCertificate")
    old_arn = resource.create(certificate_props(leaf, pki, primary.arn_in(REGION), primary.put(leaf.key_pem())))[
        "PhysicalResourceId"]
    renewed = pki.leaf(("www.example.com", "example.com"), days=150)
    aws.replica_lag_reads = 3  # a count: the deleter acts while the importer waits, however busy
    props = certificate_props(renewed, pki, primary.arn_in(REGION), primary.put(renewed.key_pem()))
    reads, deletes = aws.calls("secretsmanager", "GetSecretValue", REGION), aws.calls("acm", "DeleteCertificate")

    def delete_once_the_key_is_being_read() -> None:
        for _ in range(400):
            if aws.calls("secretsmanager", "GetSecretValue", REGION) > reads:
                boto("acm").delete_certificate(CertificateArn=old_arn)
                return
            threading.Event().wait(0.01)

    deleter = threading.Thread(target=delete_once_the_key_is_being_read)
    deleter.start()
    try:
        response = resource.update(props)
    finally:
        deleter.join()
    assert aws.calls("acm", "DeleteCertificate") == deletes + 1
    assert response["PhysicalResourceId"] != old_arn
    assert leaf_in_acm(response["PhysicalResourceId"]) == fingerprint(renewed)


def test_a_quota_limit_is_not_retried_as_throttling(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN a region at ACM's import quota (LimitExceededException that is not about the rate) WHEN the handler
    imports THEN it fails at once with ACM's words, after one request, instead of retrying until its deadline."""
    monkeypatch.setattr(aws, "import_quota", 0)
    with pytest.raises(RuntimeError) as failure:
        certificate.create(certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem())))
    message = str(failure.value)
    assert "LimitExceededException" in message and "limit of 0 certificate imports" in message
    assert "throttling" not in message
    assert aws.calls("acm", "ImportCertificate") == 1


def _error(code: str, message: str) -> ClientError:
    """A ClientError as botocore raises it for an ACM error answer."""
    return ClientError({"Error": {"Code": code, "Message": message}}, "ImportCertificate")


@pytest.mark.parametrize(("code", "message", "throttled"), [
    ("ThrottlingException", "Rate exceeded", True),
    ("TooManyRequestsException", "Too many requests", True),
    ("LimitExceededException", "Rate exceeded", True),
    ("LimitExceededException", "You have reached the limit of 2500 certificate imports", False),
    ("ValidationException", "Rate of something", False),
])
def test_which_errors_count_as_throttling(certificate: Resource, code: str, message: str, throttled: bool) -> None:
    """GIVEN ACM's error answers WHEN the importer classifies them THEN throttling codes, and LimitExceededException
    about the rate, are retried; a quota LimitExceededException and other errors are not. (StrictAWS answers
    ThrottlingException and the quota's LimitExceededException, tested above; not ACM's rate LimitExceededException.)"""
    classify: Any = certificate.module._throttled
    assert classify(_error(code, message)) is throttled


def test_a_key_stored_as_secret_binary_is_read(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN a key secret written as SecretBinary (`aws secretsmanager put-secret-value --secret-binary`)
    WHEN the certificate is created THEN the PEM is read from the binary value and imported."""
    version = str(secret.client.put_secret_value(SecretId=secret.arn, SecretBinary=leaf.key_pem())["VersionId"])
    response = certificate.create(certificate_props(leaf, pki, secret.arn, version))
    assert response["Data"]["KeyVersionId"] == version
    assert leaf_in_acm(response["PhysicalResourceId"]) == fingerprint(leaf)


def _sweeper(kind: str) -> dict[str, Any]:
    return {
        "RequestType": kind, "ResourceType": "Custom::CertfleetSweeper", "LogicalResourceId": "Sweeper",
        "StackId": STACK_ID, "RequestId": "r", "PhysicalResourceId": "certfleet-sweeper-Certs",
        "ResourceProperties": {"Fleet": "Certs", "Regions": [REGION], "Generation": "g", "WaitSeconds": "600"},
    }


def test_a_sweep_with_nothing_waiting_completes_without_listing(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a retired certificate in use (which a new listing would find) WHEN the sweeper's isComplete follows an
    onEvent that counted nothing waiting, or a sweeper Delete THEN it completes without calling ACM."""
    arn = certificate.create(certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem())))[
        "PhysicalResourceId"]
    boto("acm").add_tags_to_certificate(CertificateArn=arn,
                                        Tags=[{"Key": "certfleet:retired", "Value": "2026-01-01T00:00:00Z"}])
    aws.mark_in_use(arn)
    aws.reset()
    module = certificate.module
    for event, data in ((_sweeper("Create"), {"Waiting": "0", "SweepDeadline": "9e99"}),
                        (_sweeper("Delete"), {"Waiting": "1", "SweepDeadline": "9e99"})):
        assert module.is_complete({**event, "Data": data}, None) == {"IsComplete": True}
    assert aws.calls("acm") == 0
    assert [c["CertificateArn"] for c in all_certificates()] == [arn]


def test_a_secret_that_starts_like_json_but_is_not_fails_clearly(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a key secret whose text starts with "{" but is not JSON WHEN the certificate is created
    THEN the error names the secret and says so, quoting none of it, and nothing is imported."""
    secret.put("{ private_key: not-quite-json")
    with pytest.raises(ValueError, match="starts like JSON but is not valid JSON") as failure:
        certificate.create(certificate_props(leaf, pki, secret.arn))
    assert secret.arn in str(failure.value) and "not-quite-json" not in str(failure.value)
    assert aws.calls("acm", "ImportCertificate") == 0


def test_renaming_a_certificate_deleted_out_of_band_is_still_refused(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN an imported certificate someone deleted by hand WHEN an Update renames its fleet
    THEN the rename is refused with the identity message (its tags cannot be read: the old identity stands)."""
    props = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()))
    arn = certificate.create(props)["PhysicalResourceId"]
    boto("acm").delete_certificate(CertificateArn=arn)
    renamed = {**props, "Tags": [dict(t) for t in props["Tags"]]}
    renamed["Tags"][1]["Value"], renamed["Tags"][2]["Value"] = "Renamed", "Renamed/Www"
    with pytest.raises(RuntimeError, match="cannot change its certfleet identity from fleet 'Certs'"):
        certificate.update(renamed)
    assert all_certificates() == []
