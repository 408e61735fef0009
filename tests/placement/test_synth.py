"""The placement checks inside app.synth(): real CDK L2 and L1 constructs, a fresh App per test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from aws_cdk import Acknowledgment, App, Stack, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_appsync as appsync
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from placement_support import arn, fleet, new_app, stack, synth

from certfleet import CertificateBundle, CertificateFleet, Service
from certfleet.checks.plugin import PlacementChecks


def _vpc(scope: Stack) -> ec2.Vpc:
    return ec2.Vpc(scope, "Vpc", max_azs=2, nat_gateways=0, subnet_configuration=[
        ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)])


def _distribution(scope: Stack, certificate: acm.ICertificate, *, domain_names: tuple[str, ...] = ("www.example.com",),
                  minimum: cloudfront.SecurityPolicyProtocol | None = None) -> cloudfront.Distribution:
    return cloudfront.Distribution(
        scope, "Site",
        default_behavior=cloudfront.BehaviorOptions(origin=origins.HttpOrigin("origin.example.com")),
        domain_names=list(domain_names), certificate=certificate, minimum_protocol_version=minimum,
    )


def _alb_listener(scope: Stack, certificate: acm.ICertificate, *, policy: elbv2.SslPolicy | None = None,
                  ) -> elbv2.ApplicationListener:
    alb = elbv2.ApplicationLoadBalancer(scope, "Alb", vpc=_vpc(scope), internet_facing=True)
    return alb.add_listener("Https", port=443, certificates=[certificate], ssl_policy=policy,
                            default_action=elbv2.ListenerAction.fixed_response(200))


# ---- The seed's Error 1: an edge-optimized domain given an eu-west-1 certificate ----------------------------------


def _edge_domain(scope: Stack, certificate: acm.ICertificate) -> apigateway.DomainName:
    return apigateway.DomainName(scope, "ApiDomain", domain_name="www.example.com", certificate=certificate,
                                 endpoint_type=apigateway.EndpointType.EDGE,
                                 security_policy=apigateway.SecurityPolicy.TLS_1_2)


def _assert_error_1(app: App) -> None:
    result = synth(app)
    assert result.failed
    assert result.codes() == ["wrong-region"]
    violation = result.one("wrong-region")
    assert result.location(violation) == ("Api/ApiDomain/Resource", "Properties/CertificateArn")
    assert violation["severity"] == "error"
    assert "must be in us-east-1 Region" in violation["description"]
    assert "eu-west-1" in violation["description"]
    fix = violation["suggestedFix"]
    assert "Option 1: make the API regional (EndpointType REGIONAL, RegionalCertificateArn)" in fix
    assert "Option 2" in fix
    assert "fleet.edge_certificate_for(stack)" in fix
    assert "a certificate imported into us-east-1" in fix
    # what the user sees: the exception carries the whole report
    assert "must be in us-east-1 Region" in result.text
    assert "Option 1" in result.text
    assert "Option 2" in result.text


def test_error_1_edge_domain_with_a_fleet_certificate_in_eu_west_1(
    tmp_path: Path, rsa_bundle: CertificateBundle,
) -> None:
    app = new_app(tmp_path)
    certs = fleet(app, rsa_bundle, regions=("eu-west-1",))
    api = stack(app, "Api", "eu-west-1")
    _edge_domain(api, certs.certificate_for(api))
    _assert_error_1(app)


def test_error_1_edge_domain_with_a_literal_eu_west_1_arn(tmp_path: Path) -> None:
    app = new_app(tmp_path)
    api = stack(app, "Api", "eu-west-1")
    _edge_domain(api, acm.Certificate.from_certificate_arn(api, "Cert", arn("eu-west-1")))
    _assert_error_1(app)


def test_both_fixes_of_error_1_synthesize(tmp_path: Path, rsa_bundle: CertificateBundle) -> None:
    app = new_app(tmp_path)
    certs = fleet(app, rsa_bundle, regions=("eu-west-1",))
    api = stack(app, "Api", "eu-west-1")
    _edge_domain(api, certs.edge_certificate_for(api))  # option 2
    apigateway.DomainName(api, "Regional", domain_name="example.com", certificate=certs.certificate_for(api),
                          endpoint_type=apigateway.EndpointType.REGIONAL)  # option 1
    result = synth(app)
    assert not result.failed, result.text
    assert result.violations == []


# ---- The seed's Error 2: an ALB in ap-northeast-1, the certificate only in us-east-1 ------------------------------


@pytest.mark.parametrize("handed", ["edge_certificate_for", "edge_certificate", "arn"])
def test_error_2_alb_in_tokyo_names_the_missing_region(
    tmp_path: Path, rsa_bundle: CertificateBundle, handed: str,
) -> None:
    app = new_app(tmp_path)
    certs = fleet(app, rsa_bundle)  # edge only: us-east-1
    tokyo = stack(app, "Tokyo", "ap-northeast-1", cross_region_references=handed == "edge_certificate")
    picks: dict[str, Callable[[], acm.ICertificate]] = {
        "edge_certificate_for": lambda: certs.edge_certificate_for(tokyo),
        "edge_certificate": lambda: certs.edge_certificate,
        "arn": lambda: acm.Certificate.from_certificate_arn(tokyo, "Cert", arn("us-east-1")),
    }
    certificate = picks[handed]()
    _alb_listener(tokyo, certificate, policy=elbv2.SslPolicy.RECOMMENDED_TLS)
    result = synth(app)
    assert result.failed
    violation = result.one("wrong-region")
    assert result.location(violation) == ("Tokyo/Alb/Https/Resource", "Properties/Certificates/0/CertificateArn")
    assert "Application Load Balancer" in violation["description"]
    assert "ap-northeast-1" in violation["description"]
    assert "us-east-1" in violation["description"]
    fix = violation["suggestedFix"]
    assert "add 'ap-northeast-1' to regions=[...] of the CertificateFleet" in fix
    assert "fleet.certificate_for(stack)" in fix
    assert "ap-northeast-1" in result.text
    expected_warnings = ["strong-reference"] if handed == "edge_certificate" else []
    assert result.codes("warning") == expected_warnings


def test_strong_reference_in_the_same_region_is_a_warning_only(
    tmp_path: Path, rsa_bundle: CertificateBundle,
) -> None:
    app = new_app(tmp_path)
    certs = fleet(app, rsa_bundle)
    web = stack(app, "Web", "us-east-1")
    _alb_listener(web, certs.edge_certificate, policy=elbv2.SslPolicy.RECOMMENDED_TLS)  # Fn::ImportValue
    result = synth(app)
    assert not result.failed, result.text
    violation = result.one("strong-reference")
    assert violation["severity"] == "warning"
    assert "Fn::ImportValue" in violation["description"]
    assert "fleet.certificate_for(scope)" in violation["suggestedFix"]


# ---- AppSync custom domains (issue 17): GraphQL and Event APIs, us-east-1 only ------------------------------------


def _graphql_api(scope: Stack, certificate: acm.ICertificate, schema: Path) -> None:
    schema.write_text("type Query { hello: String }\n")
    appsync.GraphqlApi(scope, "Api", name="orders", definition=appsync.Definition.from_file(str(schema)),
                       domain_name=appsync.DomainOptions(certificate=certificate, domain_name="www.example.com"))


def _event_api(scope: Stack, certificate: acm.ICertificate, _: Path) -> None:
    appsync.EventApi(scope, "Api", api_name="orders", domain_name=appsync.AppSyncDomainOptions(
        certificate=certificate, domain_name="www.example.com"))


APPSYNC_KINDS = {"graphql": (_graphql_api, "GraphQL API 'orders'"), "event": (_event_api, "Event API 'orders'")}


@pytest.mark.parametrize("kind", list(APPSYNC_KINDS))
def test_appsync_domain_given_the_regional_certificate_fails_the_synth(
    tmp_path: Path, rsa_bundle: CertificateBundle, kind: str,
) -> None:
    build, named = APPSYNC_KINDS[kind]
    app = new_app(tmp_path)
    certs = fleet(app, rsa_bundle, regions=("eu-west-1",))
    api = stack(app, "Gql", "eu-west-1")
    build(api, certs.certificate_for(api), tmp_path / "schema.graphql")
    result = synth(app)
    assert result.failed
    assert result.codes() == ["wrong-region"]
    violation = result.one("wrong-region")
    assert result.location(violation) == ("Gql/Api/DomainName", "Properties/CertificateArn")
    assert violation["severity"] == "error"
    assert f"AppSync custom domain www.example.com for {named}" in violation["description"]
    assert "which is in eu-west-1: the certificate must be in us-east-1 Region" in violation["description"]
    assert "Certificate must be in us-east-1" in violation["description"]
    assert "fleet.certificate_for(stack, Service.APPSYNC)" in violation["suggestedFix"]
    assert "fleet.certificate_for(stack, Service.APPSYNC)" in result.text


@pytest.mark.parametrize("kind", list(APPSYNC_KINDS))
def test_appsync_domain_given_the_us_east_1_certificate_synthesizes(
    tmp_path: Path, rsa_bundle: CertificateBundle, kind: str,
) -> None:
    build, _ = APPSYNC_KINDS[kind]
    app = new_app(tmp_path)
    certs = fleet(app, rsa_bundle, regions=("eu-west-1",))
    api = stack(app, "Gql", "eu-west-1")
    build(api, certs.certificate_for(api, Service.APPSYNC), tmp_path / "schema.graphql")
    result = synth(app)
    assert not result.failed, result.text
    assert result.violations == []


# ---- Keys the service refuses, names the certificate does not cover ------------------------------------------------


def test_p384_fleet_certificate_on_cloudfront_is_refused(tmp_path: Path, p384_bundle: CertificateBundle) -> None:
    app = new_app(tmp_path)
    certs = fleet(app, p384_bundle)
    web = stack(app, "Web", "eu-west-1")
    _distribution(web, certs.edge_certificate_for(web))
    result = synth(app)
    assert result.failed
    violation = result.one("key-refused")
    assert result.location(violation) == (
        "Web/Site/Resource", "Properties/DistributionConfig/ViewerCertificate/AcmCertificateArn")
    assert "EC_secp384r1" in violation["description"]
    assert "CloudFront" in violation["description"]


def test_rsa_4096_on_an_nlb_tls_listener_is_refused(tmp_path: Path, rsa4096_bundle: CertificateBundle) -> None:
    app = new_app(tmp_path)
    certs = fleet(app, rsa4096_bundle, regions=("eu-west-1",))
    net = stack(app, "Net", "eu-west-1")
    nlb = elbv2.NetworkLoadBalancer(net, "Nlb", vpc=_vpc(net))
    group = elbv2.NetworkTargetGroup(net, "Targets", port=443, vpc=nlb.vpc)
    nlb.add_listener("Tls", port=443, certificates=[certs.certificate_for(net)],
                     ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                     default_action=elbv2.NetworkListenerAction.forward([group]))
    result = synth(app)
    assert result.failed
    violation = result.one("key-refused")
    assert result.location(violation) == ("Net/Nlb/Tls/Resource", "Properties/Certificates/0/CertificateArn")
    assert "Network Load Balancer" in violation["description"]
    assert "RSA_4096" in violation["description"]
    assert result.codes() == ["key-refused"]


def test_cloudfront_alias_not_covered_by_the_certificate(tmp_path: Path, rsa_bundle: CertificateBundle) -> None:
    app = new_app(tmp_path)
    certs = fleet(app, rsa_bundle)
    web = stack(app, "Web", "us-east-1")
    _distribution(web, certs.edge_certificate_for(web), domain_names=("www.example.com", "shop.example.com"))
    result = synth(app)
    assert result.failed
    violation = result.one("domain-not-covered")
    assert "shop.example.com" in violation["description"]
    assert "www.example.com" not in violation["description"].split("does not cover")[0].split("serves")[1]
    assert result.codes() == ["domain-not-covered"]


# ---- TLS floors: warnings, the synth succeeds ----------------------------------------------------------------------


def test_tls_floor_warnings_do_not_fail_the_synth(tmp_path: Path, rsa_bundle: CertificateBundle) -> None:
    app = new_app(tmp_path)
    certs = fleet(app, rsa_bundle, regions=("eu-west-1",))
    web = stack(app, "Web", "eu-west-1")
    _distribution(web, certs.edge_certificate_for(web), minimum=cloudfront.SecurityPolicyProtocol.TLS_V1_2016)
    _alb_listener(web, certs.certificate_for(web))  # default policy: ELBSecurityPolicy-2016-08
    apigateway.DomainName(web, "Api", domain_name="example.com", certificate=certs.certificate_for(web),
                          security_policy=apigateway.SecurityPolicy.TLS_1_0)
    result = synth(app)
    assert not result.failed, result.text
    assert result.codes() == ["tls-below-floor"] * 3
    assert {v["severity"] for v in result.violations} == {"warning"}
    locations = sorted(result.location(v) for v in result.violations)
    assert locations == [
        ("Web/Alb/Https/Resource", "Properties/SslPolicy"),
        ("Web/Api/Resource", "Properties/SecurityPolicy"),
        ("Web/Site/Resource", "Properties/DistributionConfig/ViewerCertificate/MinimumProtocolVersion"),
    ]


# ---- Plugin registration -------------------------------------------------------------------------------------------


def test_cdk_itself_refuses_a_literal_non_us_east_1_arn_on_a_cloudfront_l2(tmp_path: Path) -> None:
    """Why the literal-ARN tests below use an API domain: the Distribution L2 already checks a literal ARN."""
    web = stack(new_app(tmp_path), "Web", "eu-west-1")
    with pytest.raises(RuntimeError, match="us-east-1"):
        _distribution(web, acm.Certificate.from_certificate_arn(web, "Cert", arn("eu-west-1")))


def test_enable_is_idempotent_and_lands_on_the_root_app(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path / "cdk.out"), builtin_cloud_formation_validation=False)
    web = stack(app, "Web", "eu-west-1")
    first = PlacementChecks.enable(web)
    assert PlacementChecks.enable(app) is first
    _edge_domain(web, acm.Certificate.from_certificate_arn(web, "Cert", arn("eu-west-1")))
    assert PlacementChecks.enable(web.node.find_all()[-1]) is first
    result = synth(app)
    assert result.failed
    assert result.codes() == ["wrong-region"]  # one plugin, one report


def test_plugin_describes_itself() -> None:
    plugin = PlacementChecks()
    assert plugin.name == "certfleet-placement"
    assert plugin.version
    assert set(plugin.rule_ids) >= {"wrong-region", "key-refused", "domain-not-covered", "tls-below-floor"}


def test_an_error_can_be_acknowledged(tmp_path: Path) -> None:
    app = new_app(tmp_path)
    web = stack(app, "Web", "eu-west-1")
    domain = _edge_domain(web, acm.Certificate.from_certificate_arn(web, "Cert", arn("eu-west-1")))
    Validations.of(domain).acknowledge(Acknowledgment(id="certfleet-placement::wrong-region", reason="test"))
    result = synth(app)
    assert not result.failed, result.text


def test_builtin_cloudformation_validation_stays_a_separate_report(tmp_path: Path) -> None:
    app = new_app(tmp_path, builtin_cloud_formation_validation=True)
    web = stack(app, "Web", "eu-west-1")
    _edge_domain(web, acm.Certificate.from_certificate_arn(web, "Cert", arn("eu-west-1")))
    result = synth(app)
    assert result.failed
    assert result.codes() == ["wrong-region"]


def test_fleet_stacks_alone_pass(tmp_path: Path, rsa_bundle: CertificateBundle) -> None:
    app = new_app(tmp_path)
    certs: CertificateFleet = fleet(app, rsa_bundle, regions=("eu-west-1", "ap-northeast-1"))
    result = synth(app)
    assert not result.failed, result.text
    assert result.violations == []
    assert set(certs.regions) == {"us-east-1", "eu-west-1", "ap-northeast-1"}
