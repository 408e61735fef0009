"""Amplify Hosting custom domains: a CUSTOM certificate and the sub-domains it must cover."""

from __future__ import annotations

from certfleet.checks.extract.base import CertificateUse, Extracted, Resource
from certfleet.checks.template import as_dict, as_list, is_literal
from certfleet.rules import Service


def domain(resource: Resource) -> Extracted:
    props = resource.props
    settings = as_dict(props.get("CertificateSettings"))
    if "CustomCertificateArn" not in settings:
        return Extracted()
    name = props.get("DomainName")
    domains: list[str] = []
    if is_literal(name):
        for sub in as_list(props.get("SubDomainSettings")):
            prefix = as_dict(sub).get("Prefix")
            if prefix == "":
                domains.append(str(name))
            elif is_literal(prefix):
                domains.append(f"{prefix}.{name}")
    return Extracted((CertificateUse(
        Service.AMPLIFY, settings["CustomCertificateArn"], "Properties/CertificateSettings/CustomCertificateArn",
        str(name) if is_literal(name) else "", tuple(domains), "DomainName/SubDomainSettings",
    ),))


EXTRACTORS = {"AWS::Amplify::Domain": domain}
