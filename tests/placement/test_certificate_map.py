"""certfleet.checks.graph and extract: the map of an assembly (certificates, consumer edges, findings per edge)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from certfleet import CertificateBundle
from certfleet.checks import graph
from certfleet.checks.assembly import StackTemplate
from certfleet.checks.extract.base import Resource
from certfleet.checks.extract.registry import EXTRACTORS
from certfleet.checks.graph import certificate_map, check_templates, consumers
from certfleet.rules import Service

ACCOUNT = "123456789012"
ARN = f"arn:aws:acm:eu-west-1:{ACCOUNT}:certificate/11111111-2222-3333-4444-555555555555"


def st(name: str, region: str, resources: dict[str, Any], **sections: Any) -> StackTemplate:
    return StackTemplate(name, name, ACCOUNT, region, {"Resources": resources, **sections},
                         f"/out/{name}.template.json")


def assembly(bundle: CertificateBundle, aliases: list[str]) -> list[StackTemplate]:
    """A fleet stack in us-east-1; a web stack in eu-west-1 with a distribution (weak reference) and a listener."""
    cert = {"Type": "Custom::CertfleetCertificate", "Properties": {
        "Certificate": bundle.certificate_pem, "KeyAlgorithm": bundle.key_algorithm,
        "Tags": [{"Key": "certfleet:fleet", "Value": "Certs"}, {"Key": "certfleet:id", "Value": "Certs/us-east-1/C"}]}}
    producer = st("Certs-us-east-1", "us-east-1", {"Certificate": cert},
                  Outputs={"Arn": {"Value": {"Ref": "Certificate"}}})
    weak = {"Fn::GetStackOutput": {"StackName": "Certs-us-east-1", "OutputName": "Arn", "Region": "us-east-1"}}
    viewer = {"AcmCertificateArn": weak, "MinimumProtocolVersion": "TLSv1.2_2021"}
    dist = {"Type": "AWS::CloudFront::Distribution",
            "Properties": {"DistributionConfig": {"Aliases": aliases, "ViewerCertificate": viewer}}}
    listener = {"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {
        "Protocol": "HTTPS", "Certificates": [{"CertificateArn": ARN}], "SslPolicy": "ELBSecurityPolicy-2016-08"}}
    return [producer, st("Web", "eu-west-1", {"Dist": dist, "Listener": listener})]


def test_map_lists_every_certificate_and_every_edge(rsa_bundle: CertificateBundle) -> None:
    found = certificate_map(assembly(rsa_bundle, ["www.example.com"]))
    (certificate,) = found.certificates
    assert (certificate.stack, certificate.region, certificate.fleet) == ("Certs-us-east-1", "us-east-1", "Certs")
    assert certificate.names == ("www.example.com", "example.com")
    dist, listener = found.edges
    assert (dist.consumer.service, dist.consumer.stack, dist.consumer.region) == (Service.CLOUDFRONT, "Web",
                                                                                    "eu-west-1")
    assert dist.consumer.domains == ("www.example.com",)
    assert dist.consumer.certificate is not None and dist.consumer.certificate.logical_id == "Certificate"
    assert dist.findings == ()
    assert listener.consumer.certificate is not None and listener.consumer.certificate.arn == ARN
    assert [f.code for f in listener.findings] == ["tls-below-floor"]


def test_map_puts_each_finding_on_its_edge(rsa_bundle: CertificateBundle) -> None:
    found = certificate_map(assembly(rsa_bundle, ["www.example.com", "api.example.org"]))
    dist = found.edges[0]
    assert [f.code for f in dist.findings] == ["domain-not-covered"]
    assert dist.findings[0].site is not None and dist.findings[0].site.logical_id == "Dist"
    assert list(found.findings) == check_templates(assembly(rsa_bundle, ["www.example.com", "api.example.org"]))
    assert [f.code for f in found.findings] == ["domain-not-covered", "tls-below-floor"]


def test_consumers_extract_and_resolve_without_judging(rsa_bundle: CertificateBundle,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    stacks = assembly(rsa_bundle, ["api.example.org"])
    expected = certificate_map(stacks).consumers

    def refuse(*_: Any) -> None:
        raise AssertionError("consumers() must not judge")

    monkeypatch.setattr(graph, "judge", refuse)
    monkeypatch.setattr(graph, "tls_below_floor", refuse)
    assert tuple(consumers(stacks)) == expected


# ---- extraction, one case per consumer type ---------------------------------------------------------------------

_CASES: list[tuple[str, dict[str, Any], Service, str]] = [
    ("AWS::CloudFront::Distribution",
     {"DistributionConfig": {"ViewerCertificate": {"AcmCertificateArn": ARN}}}, Service.CLOUDFRONT,
     "Properties/DistributionConfig/ViewerCertificate/AcmCertificateArn"),
    ("AWS::ApiGateway::DomainName", {"RegionalCertificateArn": ARN}, Service.API_GATEWAY_REGIONAL,
     "Properties/RegionalCertificateArn"),
    ("AWS::ApiGatewayV2::DomainName", {"DomainNameConfigurations": [{"CertificateArn": ARN}]}, Service.API_GATEWAY_V2,
     "Properties/DomainNameConfigurations/0/CertificateArn"),
    ("AWS::ElasticLoadBalancingV2::Listener", {"Protocol": "TLS", "Certificates": [{"CertificateArn": ARN}]},
     Service.NLB, "Properties/Certificates/0/CertificateArn"),
    ("AWS::ElasticLoadBalancingV2::ListenerCertificate", {"Certificates": [{"CertificateArn": ARN}]}, Service.ALB,
     "Properties/Certificates/0/CertificateArn"),
    ("AWS::ElasticLoadBalancing::LoadBalancer", {"Listeners": [{"SSLCertificateId": ARN}]}, Service.CLB,
     "Properties/Listeners/0/SSLCertificateId"),
    ("AWS::ElasticBeanstalk::Environment", {"OptionSettings": [
        {"Namespace": "aws:elbv2:listener:443", "OptionName": "SSLCertificateArns", "Value": ARN}]},
     Service.ELASTIC_BEANSTALK, "Properties/OptionSettings/0/Value"),
    ("AWS::ElasticBeanstalk::ConfigurationTemplate", {"OptionSettings": [
        {"Namespace": "aws:elb:listener:443", "OptionName": "SSLCertificateId", "Value": ARN}]},
     Service.CLB, "Properties/OptionSettings/0/Value"),
    ("AWS::Amplify::Domain", {"DomainName": "example.com", "CertificateSettings": {"CustomCertificateArn": ARN}},
     Service.AMPLIFY, "Properties/CertificateSettings/CustomCertificateArn"),
    ("AWS::Transfer::Server", {"Certificate": ARN}, Service.TRANSFER_FAMILY, "Properties/Certificate"),
    ("AWS::Cognito::UserPoolDomain", {"Domain": "auth.example.com", "CustomDomainConfig": {"CertificateArn": ARN}},
     Service.COGNITO, "Properties/CustomDomainConfig/CertificateArn"),
    ("AWS::AppSync::DomainName", {"DomainName": "api.example.com", "CertificateArn": ARN}, Service.APPSYNC,
     "Properties/CertificateArn"),
]


def test_every_consumer_type_has_an_extractor_and_a_case() -> None:
    assert sorted(EXTRACTORS) == sorted(kind for kind, *_ in _CASES)


@pytest.mark.parametrize(("kind", "props", "service", "location"), _CASES, ids=[c[0] for c in _CASES])
def test_extractor_finds_the_certificate(kind: str, props: dict[str, Any], service: Service, location: str) -> None:
    resource = Resource(st("Web", "eu-west-1", {}), "Thing", {"Type": kind, "Properties": props})
    (use,) = EXTRACTORS[kind](resource).uses
    assert (use.service, use.value, use.location) == (service, ARN, location)


@pytest.mark.parametrize("kind", sorted(EXTRACTORS))
def test_extractor_without_a_certificate_finds_none(kind: str) -> None:
    resource = Resource(st("Web", "eu-west-1", {}), "Thing", {"Type": kind, "Properties": {"Protocol": "HTTPS"}})
    assert EXTRACTORS[kind](resource).uses == ()


def test_the_map_needs_no_cdk() -> None:
    code = ("import sys; from certfleet.checks.graph import certificate_map; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    result = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert not set(result.stdout.split()) & {"aws_cdk", "jsii", "constructs", "boto3", "botocore"}


def test_one_certificate_read_strongly_and_weakly_is_judged_per_read(rsa_bundle: CertificateBundle) -> None:
    """The resolver reads each certificate once; how each consumer reached it stays that consumer's own."""
    producer, web = assembly(rsa_bundle, ["www.example.com"])
    producer.template["Outputs"]["Arn"]["Export"] = {"Name": "CertArn"}
    listener = {"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {
        "Protocol": "HTTPS", "Certificates": [{"CertificateArn": {"Fn::ImportValue": "CertArn"}}],
        "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06"}}
    edge = st("Edge", "us-east-1", {"Listener": listener, "Dist": web.template["Resources"]["Dist"]})
    found = certificate_map([producer, edge])
    strong = {e.consumer.logical_id: e.consumer.certificate.strong for e in found.edges if e.consumer.certificate}
    assert strong == {"Listener": "Fn::ImportValue 'CertArn'", "Dist": ""}
    assert [f.code for f in found.findings] == ["strong-reference"]
