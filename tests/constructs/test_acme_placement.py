"""The placement checks on consumers of an ACME fleet: no PEM in the templates, so the certificate is judged by the
Names and KeyAlgorithm its importers declare (region, key type, names)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_route53 as route53

from certfleet import CertificateFleet, CertificateSource, Service
from certfleet.checks.plugin import PLUGIN_NAME

ACCOUNT = "123456789012"


def _fleet(app: App, key_type: str, domains: tuple[str, ...] = ("www.example.com", "*.example.com")) -> \
        CertificateFleet:
    dns = Stack(app, "Dns", env=Environment(account=ACCOUNT, region="us-east-1"))
    zone = route53.HostedZone.from_hosted_zone_attributes(dns, "Zone", hosted_zone_id="Z0EXAMPLE",
                                                          zone_name="example.com")
    source = CertificateSource.acme(directory_url="https://acme.example.net/directory", domains=list(domains),
                                    hosted_zone=zone, key_type=key_type)
    return CertificateFleet(app, "Certs", source=source, account=ACCOUNT, regions=["eu-west-1"])


def _app(tmp_path: Path) -> App:
    return App(outdir=str(tmp_path / "cdk.out"), context={"@aws-cdk/core:validateAgainstDefaultRules": False})


def _distribution(app: App, fleet: CertificateFleet, *names: str) -> None:
    web = Stack(app, "Web", env=Environment(account=ACCOUNT, region="us-east-1"))
    cloudfront.Distribution(
        web, "Site", default_behavior=cloudfront.BehaviorOptions(origin=origins.HttpOrigin("origin.example.com")),
        domain_names=list(names), certificate=fleet.certificate_for(web, Service.CLOUDFRONT),
        minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
    )


def _api_domain(app: App, fleet: CertificateFleet, endpoint: apigateway.EndpointType) -> None:
    """A custom domain of an API in eu-west-1, given the fleet's certificate of that region."""
    api = Stack(app, "Api", env=Environment(account=ACCOUNT, region="eu-west-1"))
    apigateway.DomainName(api, "Domain", domain_name="api.example.com", certificate=fleet.certificate_for(api),
                          endpoint_type=endpoint, security_policy=apigateway.SecurityPolicy.TLS_1_2)


def _violations(app: App) -> tuple[bool, list[dict[str, Any]]]:
    try:
        app.synth()
    except RuntimeError:
        failed = True
    else:
        failed = False
    report = Path(app.outdir) / "validation-report.json"
    found: list[dict[str, Any]] = []
    if report.exists():
        for plugin in json.loads(report.read_text())["pluginReports"]:
            if plugin["pluginName"] == PLUGIN_NAME:
                found.extend(plugin["violations"])
    return failed, found


def _codes(violations: list[dict[str, Any]]) -> list[str]:
    return sorted(v["ruleName"] for v in violations)


def test_cloudfront_with_an_ec_p256_acme_certificate_and_covered_names_passes(tmp_path: Path) -> None:
    app = _app(tmp_path)
    _distribution(app, _fleet(app, "ec-p256"), "www.example.com", "shop.example.com")
    failed, violations = _violations(app)
    assert not failed
    assert _codes(violations) == []


def test_cloudfront_refuses_an_ec_p384_acme_certificate(tmp_path: Path) -> None:
    app = _app(tmp_path)
    _distribution(app, _fleet(app, "ec-p384"), "www.example.com")
    failed, violations = _violations(app)
    assert failed
    assert _codes(violations) == ["key-refused"]
    (violation,) = violations
    assert "EC_secp384r1" in violation["description"] and "CloudFront" in violation["description"]


def test_a_name_the_acme_certificate_is_not_ordered_for_is_not_covered(tmp_path: Path) -> None:
    app = _app(tmp_path)
    _distribution(app, _fleet(app, "ec-p256"), "www.example.com", "a.b.example.com")
    failed, violations = _violations(app)
    assert failed
    assert _codes(violations) == ["domain-not-covered"]
    (violation,) = violations
    assert "a.b.example.com" in violation["description"]
    assert "www.example.com, *.example.com" in violation["description"]
    assert "CertificateSource.acme(domains=[...])" in json.dumps(violation)


def test_an_rsa_only_regional_api_refuses_an_rsa_4096_acme_certificate(tmp_path: Path) -> None:
    app = _app(tmp_path)
    fleet = _fleet(app, "rsa-4096", ("api.example.com",))
    _api_domain(app, fleet, apigateway.EndpointType.REGIONAL)
    failed, violations = _violations(app)
    assert failed
    assert _codes(violations) == ["key-refused"]
    assert "RSA_4096" in violations[0]["description"]


def test_an_ec_key_on_a_regional_api_is_a_warning(tmp_path: Path) -> None:
    app = _app(tmp_path)
    fleet = _fleet(app, "ec-p256", ("api.example.com",))
    _api_domain(app, fleet, apigateway.EndpointType.REGIONAL)
    failed, violations = _violations(app)
    assert not failed
    assert _codes(violations) == ["key-unverified"]


def test_an_edge_api_given_the_eu_west_1_acme_certificate_is_in_the_wrong_region(tmp_path: Path) -> None:
    app = _app(tmp_path)
    fleet = _fleet(app, "ec-p256", ("api.example.com",))
    _api_domain(app, fleet, apigateway.EndpointType.EDGE)
    failed, violations = _violations(app)
    assert failed
    assert "wrong-region" in _codes(violations)
