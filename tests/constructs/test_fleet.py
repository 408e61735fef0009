"""CertificateFleet: stacks per region, the key's replicas, and weak ARN hand-off to consumers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack, Stage
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk.assertions import Match, Template
from construct_support import ACCOUNT, sweeper_grants, write_sealed

from certfleet import CertificateBundle, CertificateFleet, KeySource, Service
from certfleet.material.demo import DemoPKI, Issued

SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:production/ssl/private-key-AbCdEf"


def _fleet(app: Stage, bundle: CertificateBundle, key: KeySource | None = None, **kwargs: Any) -> CertificateFleet:
    kwargs.setdefault("regions", ["ap-northeast-1", "eu-west-1"])
    return CertificateFleet(app, "Certificates", bundle=bundle, key=key or KeySource.secret(SECRET),
                            account=ACCOUNT, **kwargs)


def _consumer(app: Stage, region: str, name: str = "Web") -> Stack:
    return Stack(app, name, env=Environment(account=ACCOUNT, region=region))


def test_one_stack_per_region_edge_first(bundle: CertificateBundle) -> None:
    app = App()
    fleet = _fleet(app, bundle)
    assert fleet.regions == ("us-east-1", "ap-northeast-1", "eu-west-1")
    assert fleet.primary_region == "us-east-1"
    for region in fleet.regions:
        stack = fleet.stack_for(region)
        assert stack.region == region and stack.account == ACCOUNT
        assert stack.stack_name == f"Certificates-{region}"
        Template.from_stack(stack).resource_count_is("Custom::CertfleetCertificate", 1)
    assert fleet.edge_certificate.region == "us-east-1"


def test_without_edge_the_first_region_is_primary_and_edge_is_refused(bundle: CertificateBundle) -> None:
    fleet = _fleet(App(), bundle, edge=False)
    assert fleet.regions == ("ap-northeast-1", "eu-west-1")
    with pytest.raises(ValueError, match=r"no us-east-1 certificate .* Set edge=True"):
        _ = fleet.edge_certificate


def test_sealed_key_lives_in_the_primary_and_is_replicated(bundle: CertificateBundle, sealed_path: Path) -> None:
    app = App()
    fleet = _fleet(app, bundle, KeySource.sealed(sealed_path))
    primary = Template.from_stack(fleet.stack_for("us-east-1"))
    primary.has_resource_properties("AWS::SecretsManager::Secret", {
        "Name": "certfleet/fleet/Certificates-us-east-1/www.example.com/key",
        "ReplicaRegions": [{"Region": "ap-northeast-1"}, {"Region": "eu-west-1"}],
        "KmsKeyId": Match.any_value(),
    })
    primary.resource_count_is("Custom::CertfleetSealedKey", 1)
    for region in ("ap-northeast-1", "eu-west-1"):
        regional = Template.from_stack(fleet.stack_for(region))
        regional.resource_count_is("AWS::SecretsManager::Secret", 0)
        regional.resource_count_is("Custom::CertfleetSealedKey", 0)
        regional.has_resource_properties("Custom::CertfleetCertificate", {
            "KeySecretId": "certfleet/fleet/Certificates-us-east-1/www.example.com/key",
            "KeySecretVersionId": {"Fn::GetStackOutput": {
                "StackName": "Certificates-us-east-1", "Region": "us-east-1", "OutputName": Match.any_value(),
            }},
        })


def test_certificate_for_hands_out_the_local_certificate_weakly(bundle: CertificateBundle) -> None:
    app = App()
    fleet = _fleet(app, bundle)
    web = _consumer(app, "ap-northeast-1")
    vpc = ec2.Vpc(web, "Vpc", availability_zones=["ap-northeast-1a", "ap-northeast-1c"], nat_gateways=0)
    alb = elbv2.ApplicationLoadBalancer(web, "Alb", vpc=vpc)
    alb.add_listener("Https", port=443, certificates=[fleet.certificate_for(web)],
                     default_action=elbv2.ListenerAction.fixed_response(200))
    cloudfront.Distribution(web, "Cdn", default_behavior=cloudfront.BehaviorOptions(
        origin=origins.LoadBalancerV2Origin(alb)), domain_names=["www.example.com"],
        certificate=fleet.edge_certificate_for(web))
    template = Template.from_stack(web)
    template.has_resource_properties("AWS::ElasticLoadBalancingV2::Listener", {"Certificates": [{"CertificateArn": {
        "Fn::GetStackOutput": {"StackName": "Certificates-ap-northeast-1", "Region": "ap-northeast-1",
                               "OutputName": Match.any_value()}}}]})
    template.has_resource_properties("AWS::CloudFront::Distribution", {"DistributionConfig": Match.object_like({
        "ViewerCertificate": Match.object_like({"AcmCertificateArn": {"Fn::GetStackOutput": {
            "StackName": "Certificates-us-east-1", "Region": "us-east-1", "OutputName": Match.any_value()}}}),
    })})
    deps = {d.stack_name for d in web.dependencies}
    assert deps == {"Certificates-ap-northeast-1", "Certificates-us-east-1"}


def test_certificate_for_in_the_fleet_stack_is_the_certificate_itself(bundle: CertificateBundle) -> None:
    fleet = _fleet(App(), bundle)
    stack = fleet.stack_for("eu-west-1")
    assert fleet.certificate_for(stack) is fleet.certificates["eu-west-1"]


def test_missing_region_is_named_with_the_fix(bundle: CertificateBundle) -> None:
    app = App()
    fleet = _fleet(app, bundle)
    tokyo_less = _consumer(app, "sa-east-1")
    expected = (r"Web \(in sa-east-1\) needs the certificate in sa-east-1, .* only in "
                r"us-east-1, ap-northeast-1, eu-west-1: add 'sa-east-1' to regions=\[\.\.\.\]")
    with pytest.raises(ValueError, match=expected):
        fleet.certificate_for(tokyo_less)
    # the edge services still work from that stack
    assert fleet.certificate_for(tokyo_less, Service.CLOUDFRONT) is not None


def test_env_agnostic_consumer_and_app_runner_are_refused(bundle: CertificateBundle) -> None:
    app = App()
    fleet = _fleet(app, bundle)
    with pytest.raises(ValueError, match="environment-agnostic"):
        fleet.certificate_for(Stack(app, "Agnostic"))
    with pytest.raises(ValueError, match="App Runner does not accept imported certificates"):
        fleet.certificate_for(_consumer(app, "eu-west-1"), Service.APP_RUNNER)


def test_fleet_must_sit_in_an_app_or_stage(bundle: CertificateBundle) -> None:
    app = App()
    with pytest.raises(TypeError, match="must be created directly in an App or a Stage"):
        CertificateFleet(Stack(app, "S"), "Certificates", bundle=bundle, key=KeySource.secret(SECRET),
                         account=ACCOUNT)
    with pytest.raises(ValueError, match="12-digit"):
        CertificateFleet(app, "C1", bundle=bundle, key=KeySource.secret(SECRET), account="12")
    with pytest.raises(ValueError, match="not an AWS region"):
        CertificateFleet(app, "C2", bundle=bundle, key=KeySource.secret(SECRET), account=ACCOUNT,
                         regions=["europe"])


def test_under_a_stage_stack_names_carry_the_stage(bundle: CertificateBundle) -> None:
    app = App()
    stage = Stage(app, "prod")
    fleet = _fleet(stage, bundle)
    assert fleet.stack_for("eu-west-1").stack_name == "prod-Certificates-eu-west-1"
    assert fleet.fleet_name == "prod-Certificates"
    assembly = app.synth()
    names = {s.stack_name for s in assembly.get_nested_assembly(stage.artifact_id).stacks}
    assert {"prod-Certificates-us-east-1", "prod-Certificates-eu-west-1"} <= names


def _synth_pair(tmp: Path, bundle: CertificateBundle) -> dict[str, Any]:
    app = App(outdir=str(tmp))
    fleet = _fleet(app, bundle)
    web = _consumer(app, "eu-west-1")
    cloudfront.Distribution(web, "Cdn", default_behavior=cloudfront.BehaviorOptions(
        origin=origins.HttpOrigin("origin.example.com")), domain_names=["www.example.com"],
        certificate=fleet.edge_certificate_for(web))
    app.synth()
    return {p.name: json.loads(p.read_text()) for p in tmp.glob("*.template.json")}


def test_key_type_upgrade_changes_no_reference(tmp_path: Path, pki: DemoPKI, ec_pki: DemoPKI) -> None:
    """RSA 2048 → EC P-256 replaces every certificate (new ARNs): consumers read them through
    Fn::GetStackOutput, so no Export, ImportValue or SSM reference writer can block the deploy."""
    rsa_leaf: Issued = pki.leaf(("www.example.com", "example.com"))
    ec_leaf: Issued = ec_pki.leaf(("www.example.com", "example.com"), key_type="ec-p256")
    (tmp_path / "rsa.pem").write_bytes(rsa_leaf.pem() + pki.chain_pem())
    (tmp_path / "ec.pem").write_bytes(ec_leaf.pem() + ec_pki.chain_pem())
    before = _synth_pair(tmp_path / "before", CertificateBundle.from_files(tmp_path / "rsa.pem"))
    after = _synth_pair(tmp_path / "after", CertificateBundle.from_files(tmp_path / "ec.pem"))
    assert before.keys() == after.keys()
    for name in before:
        text = json.dumps(after[name])
        assert "Fn::ImportValue" not in text and '"Export"' not in text
        assert "Custom::CrossRegionExportWriter" not in text and "Custom::CrossRegionExportReader" not in text
    web = "Web.template.json"
    assert before[web] == after[web], "the consumer's template does not change with the key type"
    edge = next(n for n in before if "useast1" in n)
    (old,) = [r for r in before[edge]["Resources"].values() if r["Type"] == "Custom::CertfleetCertificate"]
    (new,) = [r for r in after[edge]["Resources"].values() if r["Type"] == "Custom::CertfleetCertificate"]
    assert (old["Properties"]["KeyAlgorithm"], new["Properties"]["KeyAlgorithm"]) == ("RSA_2048", "EC_prime256v1")


def test_sealed_fleet_rejects_a_key_for_another_certificate(bundle: CertificateBundle, pki: DemoPKI,
                                                           tmp_path: Path) -> None:
    other = write_sealed(tmp_path / "other.sealed", pki.leaf(("www.example.com",)))
    with pytest.raises(ValueError, match=r"^Certificates: .*key-mismatch"):
        _fleet(App(), bundle, KeySource.sealed(other))


def test_sweeper_stack_runs_after_the_fleet_and_every_consumer(bundle: CertificateBundle) -> None:
    """A key-type upgrade retires the old certificates while consumers still use them; the sweeper stack,
    deployed after the fleet stacks and every stack that asked certificate_for, deletes them once released."""
    app = App()
    fleet = _fleet(app, bundle)
    web = _consumer(app, "eu-west-1")
    fleet.certificate_for(web)
    sweeper = fleet.sweeper_stack
    assert sweeper.stack_name == "Certificates-sweeper" and sweeper.region == "us-east-1"
    assert {d.stack_name for d in sweeper.dependencies} == {
        "Certificates-us-east-1", "Certificates-ap-northeast-1", "Certificates-eu-west-1", "Web"}
    template = Template.from_stack(sweeper)
    template.has_resource_properties("Custom::CertfleetSweeper", {
        "Fleet": "Certificates", "Regions": ["us-east-1", "ap-northeast-1", "eu-west-1"],
        "Generation": f"{bundle.fingerprint}/RSA_2048",
    })
    statements = [s for p in template.find_resources("AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    sweep = [s for s in statements if str(s.get("Sid", "")).startswith("SweepOnlyOwnRetired")]
    assert sweep and all(s["Condition"]["StringEquals"]["aws:ResourceTag/certfleet:fleet"] == "Certificates"
                         for s in sweep)
    assert all(s["Action"] == "acm:DeleteCertificate" for s in sweep)


def test_the_sweeper_may_delete_only_retired_certificates_and_nothing_else(bundle: CertificateBundle) -> None:
    """The sweeper lists certificates and their tags and deletes the retired ones (certfleet_sweeper on_event,
    is_complete, sweep; certfleet_common.try_delete): it gets exactly that, the delete only with the
    certfleet:retired tag present, never an import or a delete of a live certificate."""
    grants = sweeper_grants(_fleet(App(), bundle).sweeper_stack)
    actions = {a for s in grants for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {"acm:ListCertificates", "acm:ListTagsForCertificate", "acm:DeleteCertificate"}
    deletes = [s for s in grants if "acm:DeleteCertificate" in json.dumps(s["Action"])]
    assert deletes and all(s["Condition"]["Null"] == {"aws:ResourceTag/certfleet:retired": "false"}
                           and s["Condition"]["StringEquals"]["aws:ResourceTag/certfleet:fleet"] == "Certificates"
                           for s in deletes)
