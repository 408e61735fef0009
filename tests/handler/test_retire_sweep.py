"""A replaced certificate still in use is retired, not a failed deploy; the fleet's sweeper deletes it later."""

from __future__ import annotations

from typing import Any

from handler_support import REGION, STACK_ID, Resource, Secret, all_certificates, boto, certificate_props

from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import StrictAWS


def _tags(arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in boto("acm").list_tags_for_certificate(CertificateArn=arn)["Tags"]}


def _upgrade(certificate: Resource, secret: Secret, pki: DemoPKI, ec_pki: DemoPKI, leaf: Issued,
             ) -> tuple[str, str, dict[str, Any]]:
    old_arn = certificate.create(certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem())))[
        "PhysicalResourceId"]
    old_props = dict(certificate.props or {})
    ec_leaf = ec_pki.leaf(("www.example.com", "example.com"), key_type="ec-p256")
    new_arn = certificate.update(certificate_props(ec_leaf, ec_pki, secret.arn, secret.put(ec_leaf.key_pem())))[
        "PhysicalResourceId"]
    return old_arn, new_arn, old_props


def _delete_old(certificate: Resource, arn: str, props: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """CloudFormation's cleanup Delete for the replaced ARN (the resource itself now holds the new one)."""
    event = {**certificate.event("Delete", props), "PhysicalResourceId": arn}
    return event, certificate.module.on_event(event, None)


def _sweeper(module: Any, kind: str = "Create", wait: str = "600") -> dict[str, Any]:
    return {
        "RequestType": kind, "ResourceType": "Custom::CertfleetSweeper", "LogicalResourceId": "Sweeper",
        "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/Certs-sweeper/x", "RequestId": "r",
        "ResourceProperties": {"Fleet": "Certs", "Regions": [REGION], "Generation": "g", "WaitSeconds": wait},
    }


def test_replaced_certificate_in_use_is_retired_then_swept(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, ec_pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN an RSA certificate replaced by an EC one while CloudFront still serves the RSA one
    WHEN CloudFormation's cleanup deletes the old ARN THEN the delete succeeds at once and tags it retired;
    WHEN the sweeper runs while it is still in use THEN it waits; once released, it deletes it."""
    old_arn, new_arn, old_props = _upgrade(certificate, secret, pki, ec_pki, leaf)
    aws.mark_in_use(old_arn)
    event, merged = _delete_old(certificate, old_arn, old_props)
    assert merged["Data"] == {"Retired": "true", "Successor": new_arn}
    assert certificate.module.is_complete({**event, **merged}, None) == {"IsComplete": True}
    assert "certfleet:retired" in _tags(old_arn) and "certfleet:retired" not in _tags(new_arn)

    module = certificate.module
    event = _sweeper(module)
    started = module.on_event(event, None)
    assert started["Data"]["Waiting"] == "1"
    assert module.is_complete({**event, **started}, None) == {"IsComplete": False}
    aws.release(old_arn)
    assert module.is_complete({**event, **started}, None) == {"IsComplete": True}
    assert [c["CertificateArn"] for c in all_certificates()] == [new_arn]


def test_sweeper_never_fails_a_deploy_and_touches_only_retired_certificates_of_its_fleet(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, ec_pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a retired certificate still in use past the sweeper's budget, and live ones
    THEN the sweeper completes (the next deploy sweeps again), deletes nothing live, and a Delete is a no-op."""
    old_arn, new_arn, old_props = _upgrade(certificate, secret, pki, ec_pki, leaf)
    aws.mark_in_use(old_arn)
    _delete_old(certificate, old_arn, old_props)
    module = certificate.module
    event = _sweeper(module, wait="0")
    started = module.on_event(event, None)
    assert module.is_complete({**event, **started}, None) == {"IsComplete": True}
    assert sorted(c["CertificateArn"] for c in all_certificates()) == sorted([old_arn, new_arn])
    aws.release(old_arn)
    deleted = module.on_event(_sweeper(module, "Delete"), None)
    assert deleted == {"PhysicalResourceId": "certfleet-sweeper-Certs"}
    assert len(all_certificates()) == 2, "deleting the sweeper deletes no certificate"


def test_stack_deletion_of_a_certificate_in_use_still_waits(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN the only certificate of a resource (no successor) in use WHEN it is deleted THEN it is not
    retired: the delete waits for the service to let go, as before."""
    arn = certificate.create(certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem())))[
        "PhysicalResourceId"]
    aws.mark_in_use(arn)
    merged = certificate.on_event(certificate.event("Delete", certificate.props or {}))
    assert merged["Data"]["DeletePending"] == "true"
    assert "certfleet:retired" not in _tags(arn)


def test_a_retired_certificate_gone_back_to_is_adopted_and_no_longer_retired(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, ec_pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN the RSA certificate retired after an upgrade WHEN the next deploy (or a rollback) goes back to that very
    certificate THEN it is adopted, same ARN, no duplicate import; it sheds its retired tag, so the sweeper leaves
    it alone."""
    old_arn, _, old_props = _upgrade(certificate, secret, pki, ec_pki, leaf)
    aws.mark_in_use(old_arn)
    _delete_old(certificate, old_arn, old_props)
    back = certificate.update(dict(old_props))
    assert back["PhysicalResourceId"] == old_arn
    assert "certfleet:retired" not in _tags(old_arn)
    module = certificate.module
    aws.release(old_arn)
    module.on_event(_sweeper(module), None)
    assert old_arn in [c["CertificateArn"] for c in all_certificates()]


def _stack(name: str) -> str:
    return f"arn:aws:cloudformation:{REGION}:123456789012:stack/{name}/0f1e2d3c"


def _group_props(leaf: Issued, pki: DemoPKI, secret: Secret, version: str) -> dict[str, Any]:
    props = certificate_props(leaf, pki, secret.arn, version, cert_id="Group/Www", Group="Group")
    props["Tags"][1]["Value"] = "Group/Www"
    return props


def _in(stack: str, certificate: Resource, kind: str, props: dict[str, Any], physical: str | None = None,
        ) -> dict[str, Any]:
    event = {**certificate.event(kind, props), "StackId": _stack(stack)}
    if physical:
        event["PhysicalResourceId"] = physical
    return dict(certificate.module.on_event(event, None))


def test_a_certificate_moved_to_another_stack_is_adopted_there_and_left_in_place_by_the_first(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a FleetGroup certificate in stack Shard-2 WHEN a reshard moves it to Shard-1, which deploys first
    THEN Shard-1 adopts the same ARN (no import), and Shard-2's cleanup Delete leaves it in ACM."""
    props = _group_props(leaf, pki, secret, secret.put(leaf.key_pem()))
    arn = _in("Shard-2", certificate, "Create", props)["PhysicalResourceId"]
    imports = aws.calls("acm", "ImportCertificate")
    aws.mark_in_use(arn)
    assert _in("Shard-1", certificate, "Create", props)["PhysicalResourceId"] == arn
    assert aws.calls("acm", "ImportCertificate") == imports
    owner = f"{_stack('Shard-1')}/{certificate.logical_id}"
    assert _tags(arn)["certfleet:stack"] == owner
    assert _in("Shard-2", certificate, "Delete", props, arn)["Data"] == {"MovedTo": owner}
    aws.release(arn)
    assert [c["CertificateArn"] for c in all_certificates()] == [arn]
    deleted = _in("Shard-1", certificate, "Delete", props, arn)
    assert "Data" not in deleted and all_certificates() == [], "its new owner deletes it for real"


def test_a_moved_certificate_whose_old_stack_deploys_first_is_retired_then_adopted(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a FleetGroup certificate in use in Shard-1 WHEN a reshard moves it to Shard-2 and Shard-1's cleanup runs
    first THEN the Delete retires it at once (no wait); Shard-2 then adopts it, same ARN, no longer retired."""
    props = _group_props(leaf, pki, secret, secret.put(leaf.key_pem()))
    arn = _in("Shard-1", certificate, "Create", props)["PhysicalResourceId"]
    aws.mark_in_use(arn)
    assert _in("Shard-1", certificate, "Delete", props, arn)["Data"] == {"Retired": "true", "Successor": ""}
    assert "certfleet:retired" in _tags(arn)
    assert _in("Shard-2", certificate, "Create", props)["PhysicalResourceId"] == arn
    assert "certfleet:retired" not in _tags(arn)
    assert _tags(arn)["certfleet:stack"] == f"{_stack('Shard-2')}/{certificate.logical_id}"


def test_group_sweeper_deletes_retired_certificates_of_its_group_only(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN retired certificates of fleets Group/Www and Other/Www, released WHEN the group's sweeper runs with
    FleetPrefix "Group/" THEN only Group's is deleted."""
    mine = _group_props(leaf, pki, secret, secret.put(leaf.key_pem()))
    other = _group_props(leaf, pki, secret, mine["KeySecretVersionId"])
    other["Tags"] = [dict(t) for t in other["Tags"]]
    other["Tags"][1]["Value"], other["Tags"][2]["Value"], other["Group"] = "Other/Www", "Other/Www", "Other"
    arns = [_in("Shard-1", certificate, "Create", p)["PhysicalResourceId"] for p in (mine, other)]
    for arn, props in zip(arns, (mine, other), strict=True):
        aws.mark_in_use(arn)
        _in("Shard-1", certificate, "Delete", props, arn)
        aws.release(arn)
    event = _sweeper(certificate.module)
    event["ResourceProperties"] = {"FleetPrefix": "Group/", "Regions": [REGION], "Generation": "g",
                                   "WaitSeconds": "0"}
    assert certificate.module.on_event(event, None)["PhysicalResourceId"] == "certfleet-sweeper-Group/"
    assert [c["CertificateArn"] for c in all_certificates()] == [arns[1]]


def test_a_group_create_reads_the_tags_only_of_certificates_with_its_names(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN six certificates of other names in the region WHEN a FleetGroup certificate (Names in its properties)
    is created, then created again in another stack THEN only certificates listing one of its names have their tags
    read; the second create still adopts the first's certificate."""
    version = secret.put(leaf.key_pem())
    aws.import_rate = None  # the test's own imports, not the handler's, would be throttled
    for i in range(6):
        other = pki.leaf((f"other{i}.example.org",))
        boto("acm").import_certificate(Certificate=other.pem(), PrivateKey=other.key_pem(),
                                       CertificateChain=pki.chain_pem())
    props = {**_group_props(leaf, pki, secret, version), "Names": ["www.example.com", "example.com"]}
    before = aws.calls("acm", "ListTagsForCertificate")
    arn = _in("Shard-1", certificate, "Create", props)["PhysicalResourceId"]
    assert aws.calls("acm", "ListTagsForCertificate") == before, "no certificate of its names existed"
    assert _in("Shard-2", certificate, "Create", props)["PhysicalResourceId"] == arn
    assert aws.calls("acm", "ListTagsForCertificate") == before + 1


def test_a_certificate_moved_to_a_new_logical_id_in_the_same_stack_survives_the_old_ids_delete(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a certificate whose construct moves to a new logical id in the same stack (same certfleet:id)
    WHEN the new resource is created (it adopts the ARN) and CloudFormation's cleanup deletes the old one
    THEN the certificate stays in ACM for the new resource, which deletes it for real when its turn comes."""
    props = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()))
    arn = certificate.create(props)["PhysicalResourceId"]
    moved = Resource(certificate.module, certificate.resource_type, f"{certificate.logical_id}Moved")
    assert moved.create(props)["PhysicalResourceId"] == arn
    assert aws.calls("acm", "ImportCertificate") == 1
    assert certificate.delete()["Data"] == {"MovedTo": f"{STACK_ID}/{moved.logical_id}"}
    assert [c["CertificateArn"] for c in all_certificates()] == [arn]
    moved.delete()
    assert all_certificates() == []


def test_an_owner_tag_of_older_certfleet_still_lets_its_stack_delete(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN a certificate adopted by a stack under an older certfleet (owner tag: the bare StackId) WHEN that stack
    deletes its resource THEN the certificate is deleted, as before."""
    arn = certificate.create(certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem())))[
        "PhysicalResourceId"]
    boto("acm").add_tags_to_certificate(CertificateArn=arn, Tags=[{"Key": "certfleet:stack", "Value": STACK_ID}])
    certificate.delete()
    assert all_certificates() == []
