"""ACME sources as FleetGroup members: one set of ACME functions per shard, each fleet's own issuer, secrets, schedule
and grants, material-mode importers with the group's tags; and the renewer's alarm relayed to a topic elsewhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from certfleet import CertificateFleet, CertificateSource, FleetGroup
from certfleet._lambda.certfleet_contract import (
    ACME_CERTIFICATE_TYPE,
    ACME_KEY_TYPES,
    ACME_RENEWER,
    ACME_SOURCE,
    CERTIFICATE_TYPE,
    FLEET_TAG,
    ID_TAG,
    IMPORTER_ON_EVENT,
    SOURCE_TAG,
)
from certfleet.acme import ACME_HANDLERS_ID
from certfleet.acme_order import ACME_POLICY_BYTES

ACCOUNT = "123456789012"
DIRECTORY = "https://acme.example.net/directory"


def _statements(template: Template, handler: str) -> list[dict[str, Any]]:
    resources = template.to_json()["Resources"]
    role = next(r["Properties"]["Role"]["Fn::GetAtt"][0] for r in resources.values()
                if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == handler)
    return [s for r in resources.values() if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in
            r["Properties"].get("Roles", []) for s in r["Properties"]["PolicyDocument"]["Statement"]]


@pytest.fixture(scope="module")
def group() -> tuple[FleetGroup, dict[str, Template]]:
    """Two ACME fleets (ec-p256 and rsa-2048) in one group, monitored to a topic in eu-west-1."""
    app = App(context={"@aws-cdk/core:validateAgainstDefaultRules": False})
    dns = Stack(app, "Dns", env=Environment(account=ACCOUNT, region="eu-west-1"))
    zone = route53.HostedZone.from_hosted_zone_attributes(dns, "Zone", hosted_zone_id="Z0EXAMPLE",
                                                          zone_name="example.com")
    topic = sns.Topic(dns, "Alerts")
    made = FleetGroup(app, "Group", account=ACCOUNT, regions=["eu-west-1"], expiry_topic=topic)
    made.add_fleet("site", source=CertificateSource.acme(directory_url=DIRECTORY, domains=["www.example.com"],
                                                         hosted_zone=zone))
    made.add_fleet("api", source=CertificateSource.acme(directory_url=DIRECTORY, domains=["api.example.com"],
                                                        hosted_zone=zone, key_type="rsa-2048"))
    assembly = app.synth()
    return made, {s.stack_name: Template.from_json(s.template) for s in assembly.stacks}


def test_each_member_gets_its_issuer_and_schedule_sharing_the_shards_functions(
        group: tuple[FleetGroup, dict[str, Template]]) -> None:
    _, templates = group
    primary = templates["Group-us-east-1"]
    issuers = primary.find_resources(ACME_CERTIFICATE_TYPE)
    assert sorted(i["Properties"]["Fleet"] for i in issuers.values()) == ["Group/api", "Group/site"]
    assert len(primary.find_resources("AWS::Scheduler::Schedule")) == 2
    renewers = primary.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": ACME_RENEWER}})
    assert len(renewers) == 1  # one renewer per stack, whatever the number of ACME fleets
    assert not templates["Group-eu-west-1"].find_resources(ACME_CERTIFICATE_TYPE)  # the primary only


def test_member_material_secrets_live_in_the_groups_key_namespace(
        group: tuple[FleetGroup, dict[str, Template]]) -> None:
    made, templates = group
    primary = templates["Group-us-east-1"]
    names = sorted(s["Properties"]["Name"] for s in primary.find_resources("AWS::SecretsManager::Secret").values()
                   if "ReplicaRegions" in s["Properties"])
    assert names == [f"{made.key_namespace}api/us-east-1/api.example.com/key",
                     f"{made.key_namespace}site/us-east-1/www.example.com/key"]


@pytest.mark.parametrize("stack_name", ["Group-us-east-1", "Group-eu-west-1"])
def test_member_importers_are_in_material_mode_with_the_groups_tags(
        group: tuple[FleetGroup, dict[str, Template]], stack_name: str) -> None:
    made, templates = group
    certificates = templates[stack_name].find_resources(CERTIFICATE_TYPE)
    assert len(certificates) == 2
    for certificate in certificates.values():
        props = certificate["Properties"]
        assert "Certificate" not in props
        assert props["Group"] == made.group_name
        tags = {t["Key"]: t["Value"] for t in props["Tags"]}
        fleet = tags[FLEET_TAG].split("/", 1)[1]
        expected = {"site": (["www.example.com"], "ec-p256"), "api": (["api.example.com"], "rsa-2048")}[fleet]
        assert (props["Names"], props["KeyAlgorithm"]) == (expected[0], ACME_KEY_TYPES[expected[1]])
        assert tags[SOURCE_TAG] == ACME_SOURCE
        assert tags[ID_TAG] == f"{made.node.path}/{fleet}"


def test_member_renewals_are_scoped_to_each_fleet(group: tuple[FleetGroup, dict[str, Template]]) -> None:
    made, templates = group
    statements = _statements(templates["Group-us-east-1"], ACME_RENEWER)
    imports = [s for s in statements if s["Action"] == "acm:ImportCertificate"]
    assert sorted(s["Condition"]["StringEquals"][f"aws:ResourceTag/{ID_TAG}"] for s in imports) == [
        f"{made.node.path}/api", f"{made.node.path}/site"]
    names = [s["Condition"]["ForAllValues:StringLike"] for s in statements
             if s["Action"] == "route53:ChangeResourceRecordSets"]
    assert len(names) == 2 and all(len(n["route53:ChangeResourceRecordSetsNormalizedRecordNames"]) == 1 for n in names)


def test_member_importers_read_the_namespace_they_are_granted(group: tuple[FleetGroup, dict[str, Template]]) -> None:
    made, templates = group
    reads = [s for s in _statements(templates["Group-eu-west-1"], IMPORTER_ON_EVENT)
             if s["Action"] == "secretsmanager:GetSecretValue"]
    assert f"{made.key_namespace}*" in json.dumps(reads)


def test_the_renewer_alarm_reaches_a_topic_of_another_region_through_the_relay(
        group: tuple[FleetGroup, dict[str, Template]]) -> None:
    _, templates = group
    primary = templates["Group-us-east-1"]
    alarms = primary.find_resources("AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "Errors"}})
    assert len(alarms) == 1  # one per renewer, however many fleets it renews
    (alarm_id,) = alarms
    rules = primary.find_resources("AWS::Events::Rule")
    forwarding = [r for r in rules.values() if alarm_id in json.dumps(r["Properties"].get("EventPattern"))]
    assert len(forwarding) == 1
    (target,) = forwarding[0]["Properties"]["Targets"]
    assert ":events:eu-west-1:" in json.dumps(target["Arn"])


def test_the_shard_estimate_bounds_acme_members(tmp_path: Path) -> None:
    """GIVEN ACME members with many long names in a group with a small byte limit WHEN the group shards them THEN
    each shard's real template is at most its counted estimate, and its resources are counted exactly (the shard's
    ACME functions included)."""
    app = App(outdir=str(tmp_path / "cdk.out"), context={"@aws-cdk/core:validateAgainstDefaultRules": False})
    dns = Stack(app, "Dns", env=Environment(account=ACCOUNT, region="eu-west-1"))
    zone = route53.HostedZone.from_hosted_zone_attributes(dns, "Zone", hosted_zone_id="Z0EXAMPLE",
                                                          zone_name="example.com")
    made = FleetGroup(app, "Group", account=ACCOUNT, regions=["eu-west-1"], max_template_bytes=150_000)
    for index in range(3):
        names = [f"host{n}-{'x' * 40}.site{index}.example.com" for n in range(30)]
        made.add_fleet(f"site{index}", source=CertificateSource.acme(directory_url=DIRECTORY, domains=names,
                                                                     hosted_zone=zone, key_type="rsa-2048"))
    out = Path(app.synth().directory)
    assert len(made.shards("us-east-1")) > 1, "the names must open more shards"
    for region in made.regions:
        for shard in made.shards(region):
            path = out / f"{shard.stack.artifact_id}.template.json"
            assert path.stat().st_size <= shard.template_bytes <= 150_000, shard.stack.stack_name
            assert len(json.loads(path.read_text())["Resources"]) <= shard.resources <= made.max_resources


def _role_policy_bytes(template: dict[str, Any]) -> dict[str, int]:
    """The bytes of every policy attached to each role, by role logical id (inline and managed)."""
    found: dict[str, int] = {}
    for resource in template["Resources"].values():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            size = len(json.dumps(resource["Properties"]["PolicyDocument"], separators=(",", ":")))
            for role in resource["Properties"].get("Roles", []):
                found[role["Ref"]] = found.get(role["Ref"], 0) + size
    return found


def _acme_roles(template: dict[str, Any]) -> dict[str, int]:
    """The policy bytes of the stack's shared ACME roles (onEvent, isComplete, renewer)."""
    return {role: size for role, size in _role_policy_bytes(template).items()
            if role.startswith(ACME_HANDLERS_ID) and "Role" in role
            and not any(other in role for other in ("Framework", "Scheduler", "Provider"))}


def test_a_shard_holds_no_more_acme_fleets_than_its_roles_policies_take(tmp_path: Path) -> None:
    """GIVEN twenty ACME members WHEN the group places them THEN the shared ACME roles' grants of each shard stay
    within the counted bytes, which stay within what IAM lets a role hold: the twentieth opens a second shard."""
    app = App(outdir=str(tmp_path / "cdk.out"), context={"@aws-cdk/core:validateAgainstDefaultRules": False})
    dns = Stack(app, "Dns", env=Environment(account=ACCOUNT, region="eu-west-1"))
    zone = route53.HostedZone.from_hosted_zone_attributes(dns, "Zone", hosted_zone_id="Z0EXAMPLE",
                                                          zone_name="example.com")
    made = FleetGroup(app, "Group", account=ACCOUNT, regions=["eu-west-1"])
    for index in range(20):
        made.add_fleet(f"site{index}", source=CertificateSource.acme(
            directory_url=DIRECTORY, domains=[f"host-{'x' * 40}.site{index}.example.com"], hosted_zone=zone))
    out = Path(app.synth().directory)
    shards = made.shards("us-east-1")
    assert len(shards) == 2
    for shard in shards:
        template = json.loads((out / f"{shard.stack.artifact_id}.template.json").read_text())
        acme_roles = _acme_roles(template)
        assert len(acme_roles) == 3
        assert max(acme_roles.values()) <= shard.policy_bytes <= ACME_POLICY_BYTES
        assert len(template["Resources"]) <= shard.resources


def _zones(dns: Stack, count: int) -> dict[str, route53.IHostedZone]:
    """``count`` domains, each in its own zone (Route 53 ids are 21 characters at most, as here)."""
    return {f"www.zone{n}.example{n}.com": route53.HostedZone.from_hosted_zone_attributes(
        dns, f"Zone{n}", hosted_zone_id=f"Z{n:020d}", zone_name=f"zone{n}.example{n}.com") for n in range(count)}


@pytest.mark.parametrize("fleet_id", ["C", "Certificates"])
def test_the_estimate_counts_each_hosted_zone(fleet_id: str) -> None:
    """GIVEN an ACME source of 40 domains in 40 hosted zones WHEN synthesized THEN what the order counts per role is
    at least the bytes of each ACME role's synthesized policies (inline and managed)."""
    app = App(context={"@aws-cdk/core:validateAgainstDefaultRules": False})
    zones = _zones(Stack(app, "Dns", env=Environment(account=ACCOUNT, region="us-east-1")), 40)
    source = CertificateSource.acme(directory_url=DIRECTORY, domains=list(zones), hosted_zone=zones)
    CertificateFleet(app, fleet_id, source=source, account=ACCOUNT, regions=["eu-west-1"])
    template = app.synth().get_stack_by_name(f"{fleet_id}-us-east-1").template
    roles = _acme_roles(template)
    assert len(roles) == 3
    assert max(roles.values()) <= source.order.policy_bytes <= ACME_POLICY_BYTES


def test_an_order_in_more_zones_than_a_role_could_hold_is_refused() -> None:
    app = App()
    zones = _zones(Stack(app, "Dns", env=Environment(account=ACCOUNT, region="us-east-1")), 100)
    with pytest.raises(ValueError, match=r"100 domains in 100 hosted zones make IAM grants of about .* bytes per "
                                         r"role, over the 60,000 .* fewer hosted zones"):
        CertificateSource.acme(directory_url=DIRECTORY, domains=list(zones), hosted_zone=zones)
