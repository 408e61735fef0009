"""Every handler's response stays under CloudFormation's 4,096 bytes, however many certificates a region holds."""

from __future__ import annotations

from typing import Any

import pytest
from handler_support import (
    REGION,
    RESPONSE_LIMIT,
    STACK_ID,
    Resource,
    Secret,
    all_certificates,
    boto,
    certificate_props,
    framework_response,
)

from certfleet.material.demo import DemoPKI
from certfleet.testing import StrictAWS

RETIRED = 100


def _sweeper_event() -> dict[str, Any]:
    return {
        "RequestType": "Create", "ResourceType": "Custom::CertfleetSweeper", "LogicalResourceId": "Sweeper",
        "StackId": STACK_ID, "RequestId": "5f5b1a40-1111-2222-3333-444444444444",
        "ResourceProperties": {"Fleet": "Certs", "Regions": [REGION], "Generation": "g", "WaitSeconds": "600"},
    }


@pytest.mark.slow
def test_responses_stay_small_with_hundreds_of_retired_certificates_in_use(
    *, certificate: Resource, secret: Secret, ec_pki: DemoPKI, aws: StrictAWS,
) -> None:
    """GIVEN a hundred retired certificates of the fleet still in use (a group-wide key-type upgrade; 45 were enough
    to break the sweeper) WHEN the importer creates and retires one more, and the sweeper starts and polls
    THEN every response body, built as the Provider framework builds it, is under 4,096 bytes; the sweeper's Data
    counts what waits, and its polls find the certificates again by their retired tag, deleting them once released."""
    aws.import_rate = None  # the test's own imports
    old = ec_pki.leaf(("old.example.com",), key_type="ec-p256")  # EC: quicker for moto to import a hundred times
    acm = boto("acm")
    retired = []
    for i in range(RETIRED):
        tags = [{"Key": "certfleet:managed-by", "Value": "certfleet"}, {"Key": "certfleet:fleet", "Value": "Certs"},
                {"Key": "certfleet:id", "Value": f"Certs/Old{i}"},
                {"Key": "certfleet:retired", "Value": "2026-01-01T00:00:00Z"}]
        arn = acm.import_certificate(Certificate=old.pem(), PrivateKey=old.key_pem(), Tags=tags)["CertificateArn"]
        aws.mark_in_use(arn)
        retired.append(arn)
    leaf = ec_pki.leaf(("new.example.com",), key_type="ec-p256")
    props = {**certificate_props(leaf, ec_pki, secret.arn, secret.put(leaf.key_pem()), cert_id="Certs/New",
                                 Group="Certs"), "Names": ["new.example.com"]}
    arn = certificate.create(props)["PhysicalResourceId"]  # Resource.on_event and .run check every response's size
    aws.mark_in_use(arn)
    assert certificate.delete()["Data"]["Retired"] == "true"
    retired.append(arn)

    module = certificate.module
    event = _sweeper_event()
    started = module.on_event(event, None)
    assert len(framework_response(event, started)) < RESPONSE_LIMIT
    assert started["Data"]["Waiting"] == str(RETIRED + 1)
    assert module.is_complete({**event, **started}, None) == {"IsComplete": False}
    for arn in retired:
        aws.release(arn)
    assert module.is_complete({**event, **started}, None) == {"IsComplete": True}
    assert all_certificates() == []
