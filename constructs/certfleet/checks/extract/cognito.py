"""Cognito user pool custom domains."""

from __future__ import annotations

from certfleet.checks.extract.base import CertificateUse, Extracted, Resource
from certfleet.checks.template import as_dict, literal_names
from certfleet.rules import Service


def user_pool_domain(resource: Resource) -> Extracted:
    config = as_dict(resource.props.get("CustomDomainConfig"))
    if "CertificateArn" not in config:
        return Extracted()
    domains = literal_names(resource.props.get("Domain"))
    return Extracted((CertificateUse(Service.COGNITO, config["CertificateArn"],
                                     "Properties/CustomDomainConfig/CertificateArn", domains[0] if domains else "",
                                     domains, "Domain"),))


EXTRACTORS = {"AWS::Cognito::UserPoolDomain": user_pool_domain}
