"""FleetGroup: many certificates in shared region stacks, sharded below CloudFormation's limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template
from construct_support import ACCOUNT, SEALING_KEY_ARN, sweeper_grants, write_sealed

from certfleet import CertificateBundle, CertificateFleet, FleetGroup, KeySource
from certfleet.material.demo import DemoPKI, Issued

REGIONS = ["eu-west-1"]


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory, ec_pki: DemoPKI) -> list[tuple[CertificateBundle, Path]]:
    """Twelve distinct certificates with their (synth-only) sealed keys."""
    folder = tmp_path_factory.mktemp("group")
    made = []
    for i in range(12):
        leaf: Issued = ec_pki.leaf((f"site{i}.example.com",), key_type="ec-p256")
        bundle = CertificateBundle.from_pem(leaf.pem().decode(), ec_pki.chain_pem().decode())
        made.append((bundle, write_sealed(folder / f"site{i}.sealed", leaf, f"site{i}.example.com")))
    return made


def _group(app: App, sites: list[tuple[CertificateBundle, Path]], count: int, **kwargs: Any) -> FleetGroup:
    kwargs.setdefault("regions", REGIONS)
    group = FleetGroup(app, "Certs", account=ACCOUNT, **kwargs)
    for i, (bundle, sealed) in enumerate(sites[:count]):
        group.add_fleet(f"Site{i}", bundle=bundle, key=KeySource.sealed(sealed))
    return group


def _placement(group: FleetGroup) -> dict[tuple[str, str], str]:
    return {(id, region): Stack.of(cert).stack_name
            for id, fleet in group.fleets.items() for region, cert in fleet.certificates.items()}


def test_fleets_share_one_stack_per_region_with_one_importer(sites: list[tuple[CertificateBundle, Path]]) -> None:
    group = _group(App(), sites, 3)
    assert [s.stack_name for s in group.stacks] == ["Certs-us-east-1", "Certs-eu-west-1"]
    for stack in group.stacks:
        template = Template.from_stack(stack)
        template.resource_count_is("Custom::CertfleetCertificate", 3)
        template.resource_properties_count_is("AWS::Lambda::Function", {"Handler": "certfleet_import.on_event"}, 1)
        template.has_resource_properties("Custom::CertfleetCertificate", {
            "Group": "Certs",
            "Names": ["site1.example.com"],
            "Tags": Match.array_with([{"Key": "certfleet:fleet", "Value": "Certs/Site1"},
                                      {"Key": "certfleet:id", "Value": "Certs/Site1"}]),
        })
    primary = Template.from_stack(group.stacks[0])
    primary.resource_count_is("AWS::SecretsManager::Secret", 3)
    primary.has_resource_properties("AWS::SecretsManager::Secret", {
        "Name": "certfleet/group/Certs/Site2/us-east-1/site2.example.com/key",
        "ReplicaRegions": [{"Region": "eu-west-1"}],
    })
    primary.resource_properties_count_is("AWS::Lambda::Function", {"Handler": "certfleet_keywriter.on_event"}, 1)


def _policy_text(stack: Stack, handler: str) -> str:
    """Every policy document attached to the role of the function with ``handler``, as one JSON text."""
    template = Template.from_stack(stack).to_json()
    resources = template["Resources"]
    role = next(r["Properties"]["Role"]["Fn::GetAtt"][0] for r in resources.values()
                if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == handler)
    docs = [r["Properties"]["PolicyDocument"] for r in resources.values()
            if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
            and {"Ref": role} in r["Properties"].get("Roles", [])]
    return json.dumps(docs, sort_keys=True)


def test_iam_does_not_grow_with_the_number_of_fleets(sites: list[tuple[CertificateBundle, Path]]) -> None:
    """The importer's policy is the same for 2 fleets as for 12; the key writer's grows only by each key's
    encryption-context value (tight: it decrypts exactly the group's sealed keys)."""
    small, large = _group(App(), sites, 2), _group(App(), sites, 12)
    for region in (0, 1):
        assert _policy_text(small.stacks[region], "certfleet_import.on_event") == \
            _policy_text(large.stacks[region], "certfleet_import.on_event")
    writer = json.loads(_policy_text(large.stacks[0], "certfleet_keywriter.on_event"))
    statements = {s.get("Sid", ""): s for doc in writer for s in doc["Statement"]}
    decrypt = statements["DecryptOnlySealedKeysOfGroupCerts"]
    assert decrypt["Resource"] == SEALING_KEY_ARN
    assert decrypt["Condition"]["StringEquals"]["kms:EncryptionContext:certfleet:certificate"] == sorted(
        f"site{i}.example.com" for i in range(12))
    importer = json.loads(_policy_text(large.stacks[1], "certfleet_import.on_event"))
    reads = [s for doc in importer for s in doc["Statement"] if "secretsmanager:GetSecretValue" in s["Action"]]
    assert [s["Resource"] for s in reads] == [
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":secretsmanager:eu-west-1:{ACCOUNT}:secret:"
                                                               "certfleet/group/Certs/*"]]}]


def _synth(app: App) -> Path:
    return Path(app.synth().directory)


def test_stacks_are_sharded_below_the_limits_and_the_estimates_hold(
    sites: list[tuple[CertificateBundle, Path]],
) -> None:
    """GIVEN limits that fit a few fleets per stack THEN more shards open, named -2, -3..., and every
    synthesized template is within them: the counted resources are exact, the bytes and outputs estimates are
    never below the real template's."""
    app = App()
    group = _group(app, sites, 12, max_resources=45, max_outputs=8, max_template_bytes=90_000)
    out = _synth(app)
    names = [s.stack_name for s in group.stacks]
    assert names[:3] == ["Certs-us-east-1", "Certs-us-east-1-2", "Certs-us-east-1-3"]
    assert "Certs-eu-west-1-2" in names
    for region in group.regions:
        for shard in group.shards(region):
            path = out / f"{shard.stack.artifact_id}.template.json"
            template = json.loads(path.read_text())
            assert len(template["Resources"]) == shard.resources <= 45
            assert path.stat().st_size <= shard.template_bytes <= 90_000
            assert len(template.get("Outputs", {})) <= shard.outputs <= 8
            assert shard.fleets


def test_adding_fleets_never_moves_one_already_placed(sites: list[tuple[CertificateBundle, Path]]) -> None:
    before = _placement(_group(App(), sites, 7, max_outputs=8))
    after = _placement(_group(App(), sites, 12, max_outputs=8))
    assert {k: after[k] for k in before} == before
    assert len(set(after.values())) > len(set(before.values())), "the later fleets opened new shards"


def test_consumers_read_the_arn_from_their_fleets_shard(sites: list[tuple[CertificateBundle, Path]]) -> None:
    app = App()
    group = _group(app, sites, 12, max_outputs=8)
    web = Stack(app, "Web", env=Environment(account=ACCOUNT, region="eu-west-1"))
    fleet = group.fleet("Site11")
    cert = fleet.certificate_for(web)
    elbv2.CfnListenerCertificate(web, "Extra", listener_arn="arn:listener",
                                 certificates=[elbv2.CfnListenerCertificate.CertificateProperty(
                                     certificate_arn=cert.certificate_arn)])
    shard = fleet.stack_for("eu-west-1")
    assert shard.stack_name != "Certs-eu-west-1"
    Template.from_stack(web).has_resource_properties("AWS::ElasticLoadBalancingV2::ListenerCertificate", {
        "Certificates": [{"CertificateArn": {"Fn::GetStackOutput": Match.object_like({
            "StackName": shard.stack_name, "Region": "eu-west-1"})}}],
    })
    assert shard in web.dependencies
    assert web in group.sweeper_stack.dependencies


def test_one_sweeper_for_the_group_whose_generation_follows_the_fleets(
    sites: list[tuple[CertificateBundle, Path]],
) -> None:
    def generation(count: int) -> str:
        group = _group(App(), sites, count)
        template = Template.from_stack(group.sweeper_stack)
        template.resource_count_is("Custom::CertfleetSweeper", 1)
        template.has_resource_properties("Custom::CertfleetSweeper", {
            "FleetPrefix": "Certs/", "Regions": ["us-east-1", "eu-west-1"]})
        assert set(group.stacks) <= set(group.sweeper_stack.dependencies)
        props = template.find_resources("Custom::CertfleetSweeper")
        value = next(iter(props.values()))["Properties"]["Generation"]
        assert isinstance(value, str) and len(value) == 32
        return value

    assert generation(3) == generation(3)
    assert generation(3) != generation(4)


def test_group_refuses_what_it_cannot_place(sites: list[tuple[CertificateBundle, Path]]) -> None:
    bundle, sealed = sites[0]
    app = App()
    group = FleetGroup(app, "Certs", account=ACCOUNT, regions=REGIONS)
    group.add_fleet("A", bundle=bundle, key=KeySource.sealed(sealed))
    with pytest.raises(ValueError, match=r"a fleet named 'A' is already in the group"):
        group.add_fleet("A", bundle=bundle, key=KeySource.sealed(sealed))
    with pytest.raises(ValueError, match=r"wants ap-south-1, which the group does not cover .* add it to the "
                                         r"FleetGroup's regions"):
        group.add_fleet("B", bundle=bundle, key=KeySource.sealed(sealed), regions=["ap-south-1"])
    with pytest.raises(ValueError, match=r"max_resources=501 must be between 1 and CloudFormation's limit 500"):
        FleetGroup(App(), "G", account=ACCOUNT, max_resources=501)
    with pytest.raises(TypeError, match=r"FleetGroup 'G' must be created directly in an App or a Stage"):
        FleetGroup(Stack(App(), "S"), "G", account=ACCOUNT)
    with pytest.raises(ValueError, match=r"has no fleet 'Z'"):
        group.fleet("Z")


def test_a_fleet_may_use_a_subset_of_the_group_regions(sites: list[tuple[CertificateBundle, Path]]) -> None:
    bundle, sealed = sites[0]
    group = FleetGroup(App(), "Certs", account=ACCOUNT, regions=["eu-west-1", "ap-northeast-1"])
    fleet: CertificateFleet = group.add_fleet("Eu", bundle=bundle, key=KeySource.sealed(sealed), edge=False,
                                              regions=["eu-west-1"])
    assert fleet.regions == ("eu-west-1",) and fleet.primary_region == "eu-west-1"
    Template.from_stack(fleet.stack_for("eu-west-1")).resource_count_is("AWS::SecretsManager::Secret", 1)


def test_the_group_sweeper_may_delete_only_retired_certificates_of_the_group(
    sites: list[tuple[CertificateBundle, Path]],
) -> None:
    grants = sweeper_grants(_group(App(), sites, 2).sweeper_stack)
    assert not [s for s in grants if "acm:ImportCertificate" in json.dumps(s["Action"])]
    deletes = [s for s in grants if "acm:DeleteCertificate" in json.dumps(s["Action"])]
    assert deletes and all(s["Action"] == "acm:DeleteCertificate"
                           and s["Condition"]["Null"] == {"aws:ResourceTag/certfleet:retired": "false"}
                           and s["Condition"]["StringLike"] == {"aws:ResourceTag/certfleet:fleet": "Certs/*"}
                           for s in deletes)


def _account_settings(group: FleetGroup) -> dict[str, int]:
    return {stack.stack_name: len(Template.from_stack(stack).find_resources("AWS::CertificateManager::Account"))
            for stack in group.stacks}


def test_a_group_can_leave_the_account_expiry_setting_to_its_owner(
    sites: list[tuple[CertificateBundle, Path]],
) -> None:
    """GIVEN another stack or app owns AWS::CertificateManager::Account WHEN the group is told so THEN none of its
    stacks declares it (a second declaration fails the second app's deploy); a fleet may still say otherwise."""
    def group(configure: bool, per_fleet: bool | None = None) -> FleetGroup:
        app = App()
        topic = sns.Topic(Stack(app, "Ops", env=Environment(account=ACCOUNT, region="us-east-1")), "Alerts")
        made = FleetGroup(app, "Certs", account=ACCOUNT, regions=REGIONS, expiry_topic=topic,
                          configure_account_expiry_events=configure)
        bundle, sealed = sites[0]
        made.add_fleet("Site0", bundle=bundle, key=KeySource.sealed(sealed), configure_account_expiry_events=per_fleet)
        return made

    assert _account_settings(group(True)) == {"Certs-us-east-1": 1, "Certs-eu-west-1": 1}
    assert _account_settings(group(False)) == {"Certs-us-east-1": 0, "Certs-eu-west-1": 0}
    assert _account_settings(group(False, per_fleet=True)) == {"Certs-us-east-1": 1, "Certs-eu-west-1": 1}
    assert _account_settings(group(True, per_fleet=False)) == {"Certs-us-east-1": 0, "Certs-eu-west-1": 0}


def test_a_fleet_that_moves_shards_gets_a_new_secret_name(sites: list[tuple[CertificateBundle, Path]]) -> None:
    """The old shard's secret is retained (and the emptied shard stays deployed): a new secret of the same name
    would fail to create (Secrets Manager: the name exists). The shard is part of the name."""
    def secret_of_last(count: int, skip: int) -> tuple[str, str]:
        group = FleetGroup(App(), "Certs", account=ACCOUNT, regions=REGIONS, max_outputs=4)
        for i, (bundle, sealed) in enumerate(sites[skip:count]):
            group.add_fleet(f"Site{i + skip}", bundle=bundle, key=KeySource.sealed(sealed))
        stack = group.fleet(f"Site{count - 1}").stack_for("us-east-1")
        (secret,) = [s for s in Template.from_stack(stack).find_resources("AWS::SecretsManager::Secret").values()
                     if f"/Site{count - 1}/" in s["Properties"]["Name"]]
        return stack.stack_name, secret["Properties"]["Name"]

    before, after = secret_of_last(3, 0), secret_of_last(3, 1)
    assert (before[0], after[0]) == ("Certs-us-east-1-2", "Certs-us-east-1"), "the fleet moved"
    assert before[1] != after[1]
