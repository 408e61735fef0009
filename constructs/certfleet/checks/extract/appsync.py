"""AppSync custom domains (GraphQL and Event APIs both synthesize one), named by the API they serve."""

from __future__ import annotations

from certfleet.checks.extract.base import CertificateUse, Extracted, Resource
from certfleet.checks.template import as_dict, is_literal, literal_names, properties, resources
from certfleet.rules import Service

_API_KINDS = {"AWS::AppSync::GraphQLApi": "GraphQL API", "AWS::AppSync::Api": "Event API"}


def domain(resource: Resource) -> Extracted:
    if "CertificateArn" not in resource.props:
        return Extracted()
    domains = literal_names(resource.props.get("DomainName"))
    what = domains[0] if domains else ""
    api = api_of(resource, domains)
    if api:
        what = f"{what} for {api}" if what else f"for {api}"
    return Extracted((CertificateUse(Service.APPSYNC, resource.props["CertificateArn"], "Properties/CertificateArn",
                                     what, domains, "DomainName"),))


def api_of(resource: Resource, domains: tuple[str, ...]) -> str:
    """``GraphQL API 'name'`` / ``Event API 'name'`` for the API a DomainNameApiAssociation links to the domain."""
    every = resources(resource.stack.template)
    mine = ({"Ref": resource.logical_id}, {"Fn::GetAtt": [resource.logical_id, "DomainName"]})
    for raw in every.values():
        if as_dict(raw).get("Type") != "AWS::AppSync::DomainNameApiAssociation":
            continue
        props = properties(raw)
        name = props.get("DomainName")
        if not ((is_literal(name) and name in domains) or name in mine):
            continue
        target = as_dict(props.get("ApiId")).get("Fn::GetAtt")
        api_id = target[0] if isinstance(target, list) and target else None
        api = as_dict(every.get(api_id)) if isinstance(api_id, str) else {}
        kind = _API_KINDS.get(str(api.get("Type", "")))
        if kind:
            api_name = properties(api).get("Name")
            return f"{kind} '{api_name}'" if is_literal(api_name) else kind
    return ""


EXTRACTORS = {"AWS::AppSync::DomainName": domain}
