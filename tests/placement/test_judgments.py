"""One compliant and one non-compliant case per finding code, on the judgments of certfleet.checks directly."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from cryptography import x509

from certfleet import CertificateBundle
from certfleet.checks.assembly import StackTemplate
from certfleet.checks.consumer import Consumer
from certfleet.checks.extract.base import Resource, TlsSetting
from certfleet.checks.finding import Finding, Severity
from certfleet.checks.judgments import (
    domain_not_covered,
    key_refused,
    key_unverified,
    strong_reference,
    tls_below_floor,
    wrong_region,
)
from certfleet.checks.resolve import ResolvedCertificate
from certfleet.rules import Service

ARN = "arn:aws:acm:{}:123456789012:certificate/11111111-2222-3333-4444-555555555555"


def certificate(region: str = "us-east-1", **kwargs: Any) -> ResolvedCertificate:
    kwargs.setdefault("label", f"certificate {ARN.format(region)}")
    return ResolvedCertificate(region=region, **kwargs)


def fleet_certificate(region: str, key: str = "RSA_2048", **kwargs: Any) -> ResolvedCertificate:
    return certificate(region, label=f"certfleet certificate Certs/{region}/Certificate (fleet Certs)",
                       key_algorithm=key, fleet="Certs", stack=f"Certs-{region}", logical_id="Certificate", **kwargs)


def consumer(service: Service, source: ResolvedCertificate | None, *, region: str = "eu-west-1",
             domains: tuple[str, ...] = ()) -> Consumer:
    return Consumer("Web", region, "Thing", "Web/Thing/Resource", "/out/Web.template.json", service, "", "Properties/X",
                    domains, "DomainName", source)


def resource(region: str = "eu-west-1") -> Resource:
    st = StackTemplate("Web", "Web", "123456789012", region, {"Resources": {}}, "/out/Web.template.json")
    return Resource(st, "Thing", {"Type": "AWS::Any", "Metadata": {"aws:cdk:path": "Web/Thing/Resource"}})


def coded(finding: Finding | None, code: str, severity: Severity) -> Finding:
    assert finding is not None
    assert (finding.code, finding.severity) == (code, severity)
    assert finding.site is not None and finding.site.logical_id == "Thing"
    return finding


# ---- wrong-region ---------------------------------------------------------------------------------------------


def test_wrong_region_compliant_edge_service_given_us_east_1() -> None:
    assert wrong_region(consumer(Service.CLOUDFRONT, certificate("us-east-1"))) is None


def test_wrong_region_non_compliant_edge_service_given_its_own_region() -> None:
    finding = coded(wrong_region(consumer(Service.CLOUDFRONT, certificate("eu-west-1"))), "wrong-region",
                    Severity.ERROR)
    assert "must be in us-east-1" in finding.message
    assert finding.site is not None and finding.site.service == "cloudfront"


def test_wrong_region_compliant_regional_service_in_its_own_region() -> None:
    assert wrong_region(consumer(Service.ALB, certificate("eu-west-1"))) is None


def test_wrong_region_non_compliant_regional_service_points_at_the_fleets_certificate() -> None:
    finding = coded(wrong_region(consumer(Service.ALB, fleet_certificate("us-east-1")), frozenset({"eu-west-1"})),
                    "wrong-region", Severity.ERROR)
    assert finding.fix.startswith("fleet Certs already has a certificate in eu-west-1")


def test_wrong_region_where_aws_documents_no_rule_is_a_warning() -> None:
    coded(wrong_region(consumer(Service.TRANSFER_FAMILY, certificate("us-east-1"))), "wrong-region", Severity.WARNING)


# ---- strong-reference -----------------------------------------------------------------------------------------


def test_strong_reference_compliant_weak_reference() -> None:
    assert strong_reference(consumer(Service.ALB, fleet_certificate("eu-west-1"))) is None


def test_strong_reference_compliant_plain_arn_through_an_export() -> None:
    assert strong_reference(consumer(Service.ALB, certificate("eu-west-1", strong="Fn::ImportValue 'x'"))) is None


def test_strong_reference_non_compliant_certfleet_certificate_through_an_export() -> None:
    source = fleet_certificate("eu-west-1", strong="Fn::ImportValue 'Arn'")
    finding = coded(strong_reference(consumer(Service.ALB, source)), "strong-reference", Severity.WARNING)
    assert "Fn::ImportValue 'Arn'" in finding.message


# ---- key-refused / key-unverified -----------------------------------------------------------------------------


def test_key_refused_compliant_rsa_2048_on_cloudfront() -> None:
    assert key_refused(consumer(Service.CLOUDFRONT, fleet_certificate("us-east-1", "RSA_2048"))) is None


def test_key_refused_non_compliant_p384_on_cloudfront() -> None:
    finding = coded(key_refused(consumer(Service.CLOUDFRONT, fleet_certificate("us-east-1", "EC_secp384r1"))),
                    "key-refused", Severity.ERROR)
    assert "does not accept EC_secp384r1" in finding.message
    assert "--type ec-p256" in finding.fix


def test_key_refused_non_compliant_rsa_4096_on_a_network_load_balancer() -> None:
    coded(key_refused(consumer(Service.NLB, fleet_certificate("eu-west-1", "RSA_4096"))), "key-refused",
          Severity.ERROR)


def test_key_unverified_compliant_documented_key() -> None:
    assert key_unverified(consumer(Service.API_GATEWAY_REGIONAL, fleet_certificate("eu-west-1", "RSA_2048"))) is None


def test_key_unverified_non_compliant_ecdsa_on_a_regional_api() -> None:
    source = fleet_certificate("eu-west-1", "EC_prime256v1")
    finding = coded(key_unverified(consumer(Service.API_GATEWAY_REGIONAL, source)), "key-unverified",
                    Severity.WARNING)
    assert "EC_prime256v1 is unverified" in finding.message
    assert key_refused(consumer(Service.API_GATEWAY_REGIONAL, source)) is None


def test_key_judgments_skip_a_certificate_whose_key_is_unknown() -> None:
    source = certificate("us-east-1")  # a literal ARN: no key algorithm in the templates
    assert key_refused(consumer(Service.CLOUDFRONT, source)) is None
    assert key_unverified(consumer(Service.CLOUDFRONT, source)) is None


# ---- domain-not-covered ---------------------------------------------------------------------------------------


def _parsed(bundle: CertificateBundle) -> x509.Certificate:
    return x509.load_pem_x509_certificate(bundle.certificate_pem.encode())


def test_domain_not_covered_compliant(rsa_bundle: CertificateBundle) -> None:
    source = fleet_certificate("us-east-1", certificate_pem=rsa_bundle.certificate_pem)
    found = domain_not_covered(consumer(Service.CLOUDFRONT, source, domains=("www.example.com", "example.com")),
                               _parsed(rsa_bundle))
    assert found == []


def test_domain_not_covered_non_compliant(rsa_bundle: CertificateBundle) -> None:
    source = fleet_certificate("us-east-1", certificate_pem=rsa_bundle.certificate_pem,
                               names=("www.example.com", "example.com"))
    found = domain_not_covered(consumer(Service.CLOUDFRONT, source, domains=("www.example.com", "api.example.org")),
                               _parsed(rsa_bundle))
    assert [f.code for f in found] == ["domain-not-covered"]
    assert "serves api.example.org" in found[0].message
    assert "(it covers: www.example.com, example.com)" in found[0].message


def test_domain_not_covered_needs_the_certificate(rsa_bundle: CertificateBundle) -> None:
    assert domain_not_covered(consumer(Service.CLOUDFRONT, certificate(), domains=("api.example.org",)), None) == []


# ---- tls-below-floor ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("service", "policy"), [
    (Service.CLOUDFRONT, "TLSv1.2_2021"), (Service.CLOUDFRONT, "TLSv1.3_2025"),
    (Service.API_GATEWAY_REGIONAL, "TLS_1_2"), (Service.API_GATEWAY_V2, None),
    (Service.ALB, "ELBSecurityPolicy-TLS13-1-2-2021-06"), (Service.NLB, "ELBSecurityPolicy-TLS13-1-3-2021-06"),
])
def test_tls_below_floor_compliant(service: Service, policy: str | None) -> None:
    assert tls_below_floor(resource(), TlsSetting(service, policy, "Properties/Policy")) is None


@pytest.mark.parametrize(("service", "policy", "shown"), [
    (Service.CLOUDFRONT, "TLSv1", "MinimumProtocolVersion is TLSv1, below TLSv1.2_2021"),
    (Service.CLOUDFRONT, None, "not set (CloudFront then allows TLSv1)"),
    (Service.API_GATEWAY_EDGE, "TLS_1_0", "SecurityPolicy TLS_1_0 allows TLS below 1.2"),
    (Service.ALB, None, "no SslPolicy (the default ELBSecurityPolicy-2016-08)"),
    (Service.NLB, "ELBSecurityPolicy-2016-08", "SslPolicy ELBSecurityPolicy-2016-08, which offers no TLS 1.3"),
])
def test_tls_below_floor_non_compliant(service: Service, policy: str | None, shown: str) -> None:
    finding = coded(tls_below_floor(resource(), TlsSetting(service, policy, "Properties/Policy")),
                    "tls-below-floor", Severity.WARNING)
    assert shown in finding.message
    assert finding.site is not None and finding.site.location == "Properties/Policy"


def test_tls_below_floor_ignores_a_service_without_a_floor_in_the_rules() -> None:
    assert tls_below_floor(resource(), TlsSetting(Service.APPSYNC, None, "Properties/Policy")) is None


def test_judgments_do_nothing_without_a_resolved_certificate() -> None:
    unresolved = consumer(Service.CLOUDFRONT, None, domains=("api.example.org",))
    assert [wrong_region(unresolved), strong_reference(unresolved), key_refused(unresolved),
            key_unverified(unresolved)] == [None] * 4
    assert replace(unresolved, region=None).name() == "Web/Thing/Resource in stack Web"
