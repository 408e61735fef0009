"""API Gateway custom domain names: REST (edge-optimized and regional) and HTTP/WebSocket (v2)."""

from __future__ import annotations

from certfleet.checks.extract.base import CertificateUse, Extracted, Resource, TlsSetting, tls_setting
from certfleet.checks.template import dicts, literal_names
from certfleet.rules import Service


def rest_domain(resource: Resource) -> Extracted:
    props = resource.props
    domains = literal_names(props.get("DomainName"))
    label = domains[0] if domains else ""
    uses = []
    if "CertificateArn" in props:
        uses.append(CertificateUse(Service.API_GATEWAY_EDGE, props["CertificateArn"], "Properties/CertificateArn",
                                   label, domains, "DomainName"))
    if "RegionalCertificateArn" in props:
        uses.append(CertificateUse(Service.API_GATEWAY_REGIONAL, props["RegionalCertificateArn"],
                                   "Properties/RegionalCertificateArn", label, domains, "DomainName"))
    service = Service.API_GATEWAY_EDGE if "CertificateArn" in props else Service.API_GATEWAY_REGIONAL
    return Extracted(tuple(uses), tls_setting(service, props.get("SecurityPolicy"), "Properties/SecurityPolicy"))


def v2_domain(resource: Resource) -> Extracted:
    props = resource.props
    domains = literal_names(props.get("DomainName"))
    label = domains[0] if domains else ""
    uses: list[CertificateUse] = []
    tls: list[TlsSetting] = []
    for index, config in enumerate(dicts(props.get("DomainNameConfigurations"))):
        location = f"Properties/DomainNameConfigurations/{index}"
        if "CertificateArn" in config:
            uses.append(CertificateUse(Service.API_GATEWAY_V2, config["CertificateArn"], f"{location}/CertificateArn",
                                       label, domains, "DomainName"))
        tls.extend(tls_setting(Service.API_GATEWAY_V2, config.get("SecurityPolicy"), f"{location}/SecurityPolicy"))
    return Extracted(tuple(uses), tuple(tls))


EXTRACTORS = {"AWS::ApiGateway::DomainName": rest_domain, "AWS::ApiGatewayV2::DomainName": v2_domain}
