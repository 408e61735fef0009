"""Load balancers: ELBv2 listeners (HTTPS: ALB, TLS: NLB), their additional certificates, Classic Load Balancers."""

from __future__ import annotations

from typing import Any

from certfleet.checks.extract.base import CertificateUse, Extracted, Resource, tls_setting
from certfleet.checks.template import as_dict, dicts, properties, resources
from certfleet.rules import Service


def listener_service(protocol: Any) -> Service | None:
    """ALB for an HTTPS listener, NLB for a TLS listener, None for a protocol without a certificate."""
    if protocol == "HTTPS":
        return Service.ALB
    if protocol == "TLS":
        return Service.NLB
    return None


def listener(resource: Resource) -> Extracted:
    props = resource.props
    service = listener_service(props.get("Protocol"))
    if service is None:
        return Extracted()
    uses = tuple(
        CertificateUse(service, cert["CertificateArn"], f"Properties/Certificates/{index}/CertificateArn",
                       "HTTPS listener" if service is Service.ALB else "")
        for index, cert in enumerate(dicts(props.get("Certificates"))) if "CertificateArn" in cert
    )
    return Extracted(uses, tls_setting(service, props.get("SslPolicy"), "Properties/SslPolicy"))


def listener_certificate(resource: Resource) -> Extracted:
    """Additional certificates of a listener: its service follows the listener's protocol (ALB when unknown)."""
    target = as_dict(resource.props.get("ListenerArn")).get("Ref")
    owner = resources(resource.stack.template).get(target) if isinstance(target, str) else None
    service = listener_service(properties(owner).get("Protocol")) or Service.ALB
    return Extracted(tuple(
        CertificateUse(service, cert["CertificateArn"], f"Properties/Certificates/{index}/CertificateArn",
                       "listener, additional certificate")
        for index, cert in enumerate(dicts(resource.props.get("Certificates"))) if "CertificateArn" in cert
    ))


def classic(resource: Resource) -> Extracted:
    return Extracted(tuple(
        CertificateUse(Service.CLB, entry["SSLCertificateId"], f"Properties/Listeners/{index}/SSLCertificateId",
                       f"listener on port {entry.get('LoadBalancerPort', '?')}")
        for index, entry in enumerate(dicts(resource.props.get("Listeners"))) if "SSLCertificateId" in entry
    ))


EXTRACTORS = {
    "AWS::ElasticLoadBalancingV2::Listener": listener,
    "AWS::ElasticLoadBalancingV2::ListenerCertificate": listener_certificate,
    "AWS::ElasticLoadBalancing::LoadBalancer": classic,
}
