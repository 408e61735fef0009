"""One judgment per finding code: each takes a consumer (or a TLS setting) and returns its findings, if any.

Which region, key and TLS policy each service takes comes from ``certfleet.rules`` only.
"""

from __future__ import annotations

from cryptography import x509

from certfleet.checks.consumer import Consumer
from certfleet.checks.extract.base import Resource, TlsSetting
from certfleet.checks.finding import Finding, error, warning
from certfleet.checks.resolve import ResolvedCertificate
from certfleet.material.names import covers, matches
from certfleet.rules import EDGE_REGION, ELB_RECOMMENDED_POLICY, RULES, Placement, Service

#: Every finding code of the template checks, as the validation plugin reports them.
RULE_IDS: tuple[str, ...] = (
    "wrong-region", "key-refused", "key-unverified", "domain-not-covered", "tls-below-floor", "strong-reference",
)
WEAK_CONTEXT = '"@aws-cdk/core:defaultCrossStackReferences": "weak"'


def wrong_region(consumer: Consumer, fleet_regions: frozenset[str] = frozenset()) -> Finding | None:
    """The certificate is not in the region the service takes it from (a warning where AWS documents no rule).

    ``fleet_regions``: where the certificate's fleet has certificates, to point at the right one.
    """
    source, rule = consumer.certificate, RULES[consumer.service]
    if source is None:
        return None
    if rule.placement is Placement.EDGE:
        needed: str | None = EDGE_REGION
    else:
        needed = rule.region_for(consumer.region) if consumer.region else None
    if not needed or not source.region or source.region == needed:
        return None
    given = f"{consumer.subject()} is given {source.label}, which is in {source.region}: "
    if rule.placement is Placement.EDGE:
        message = given + (f"the certificate must be in {EDGE_REGION} Region (this service takes its certificate "
                           f"from {EDGE_REGION}, whatever region the stack is in).")
        fix = _edge_fix(consumer, source)
    else:
        message = given + (f"ACM certificates are regional and this service uses only a certificate in its own "
                           f"region, {needed}.")
        fix = _local_fix(needed, source, fleet_regions)
    if rule.deploy_error:
        shown = source.arn or f"arn:aws:acm:{source.region}:…:certificate/…"
        message += f' At deploy time it fails with "{rule.deploy_error.format(region=needed, arn=shown)}"'
    if not rule.region_verified:
        message += " (AWS does not document this region requirement: a warning, not an error)"
        return warning("wrong-region", message, fix, site=consumer.site())
    return error("wrong-region", message, fix, site=consumer.site())


def strong_reference(consumer: Consumer) -> Finding | None:
    """A certfleet certificate read through an export: a key-type upgrade (a new ARN) would fail that deploy."""
    source = consumer.certificate
    if source is None or not (source.strong and source.is_certfleet):
        return None
    return warning(
        "strong-reference",
        f"{consumer.subject()} reads {source.label} through {source.strong}: a key-type upgrade replaces the "
        "certificate and its ARN, and CloudFormation refuses to change a value another stack imports (\"Exports "
        "cannot be updated\"), so that deploy would fail.",
        "hand the certificate over with fleet.certificate_for(scope) (a weak Fn::GetStackOutput reference), or set "
        f"{WEAK_CONTEXT} in cdk.json's context.",
        site=consumer.site(),
    )


def key_refused(consumer: Consumer) -> Finding | None:
    """The service refuses the certificate's key algorithm."""
    keyed = _keyed(consumer, "refused")
    if keyed is None:
        return None
    source, algorithm = keyed
    rule, accepted = RULES[consumer.service], _accepted(consumer.service)
    return error(
        "key-refused",
        f"{consumer.subject()} is given {source.label}, whose key is {algorithm}: {rule.title} does not "
        f"accept {algorithm} keys (it accepts {accepted}).",
        f"use a certificate with an accepted key for this service ({accepted}): e.g. certfleet keygen --type "
        f"{'ec-p256' if algorithm.startswith('EC') else 'rsa-2048'}, certfleet csr, have the CA issue it, and "
        "give this service its own CertificateFleet/ImportedCertificate.",
        site=consumer.site(),
    )


def key_unverified(consumer: Consumer) -> Finding | None:
    """AWS documents neither acceptance nor refusal of the certificate's key algorithm for the service."""
    keyed = _keyed(consumer, "unverified")
    if keyed is None:
        return None
    source, algorithm = keyed
    rule, accepted = RULES[consumer.service], _accepted(consumer.service)
    return warning(
        "key-unverified",
        f"{consumer.subject()} is given {source.label}, whose key is {algorithm}: AWS documents "
        f"{accepted} for {rule.title}; {algorithm} is unverified.",
        f"test it before relying on it, or use a certificate with one of {accepted}.",
        site=consumer.site(),
    )


def domain_not_covered(consumer: Consumer, certificate: x509.Certificate | None) -> list[Finding]:
    """Each name the consumer serves that its certfleet certificate (parsed: ``certificate``) does not cover."""
    source = consumer.certificate
    if source is None or (certificate is None and not (source.ordered and source.names)):
        return []
    return [
        error(
            "domain-not-covered",
            f"{consumer.subject()} serves {domain}, which {source.label} does not cover "
            f"(it covers: {', '.join(source.names) or 'no name'}).",
            (f"add {domain} to CertificateSource.acme(domains=[...]) (the next deploy orders it)" if source.ordered
             else f"add {domain} to the certificate's names (certfleet csr --san {domain} ..., then have the CA "
                  "reissue it)")
            + f", or remove {domain} from {consumer.domains_from or 'the consumer'}.",
            site=consumer.site(),
        )
        for domain in consumer.domains if not _covered(certificate, source.names, domain)
    ]


def _covered(certificate: x509.Certificate | None, names: tuple[str, ...], domain: str) -> bool:
    """Whether the certificate (parsed), or else the names it is ordered for, covers ``domain``."""
    if certificate is not None:
        return covers(certificate, domain)
    return any(matches(name, domain) for name in names)


def tls_below_floor(resource: Resource, setting: TlsSetting) -> Finding | None:
    """The consumer allows TLS below the service's floor (``certfleet.rules``), its default included."""
    rule = RULES[setting.service]
    floor = rule.tls
    if floor is None or not floor.is_below(setting.policy):
        return None
    where = f"{rule.title} ({resource.name()})"
    if floor.setting == "MinimumProtocolVersion":
        shown = setting.policy if setting.policy is not None else f"not set (CloudFront then allows {floor.default})"
        message = f"{where}: MinimumProtocolVersion is {shown}, below {floor.floor}."
        fix = f"set {floor.cdk_setting} (MinimumProtocolVersion {floor.floor}) or newer."
    elif floor.setting == "SslPolicy":
        shown = (f"SslPolicy {setting.policy}" if setting.policy is not None
                 else f"no SslPolicy (the default {floor.default})")
        message = f"{where} has {shown}, which offers no TLS 1.3."
        fix = f"set {floor.cdk_setting} (SslPolicy {floor.floor} or newer, e.g. {ELB_RECOMMENDED_POLICY})."
    else:
        message = f"{where}: SecurityPolicy {setting.policy} allows TLS below 1.2."
        fix = f"set {floor.cdk_setting} (SecurityPolicy {floor.floor}) or an enhanced TLS 1.3 policy."
    return warning("tls-below-floor", message, fix, site=resource.site(setting.location, setting.service))


def _keyed(consumer: Consumer, verdict: str) -> tuple[ResolvedCertificate, str] | None:
    """The certificate and its key algorithm when the service's verdict on that key is ``verdict``."""
    source = consumer.certificate
    if source is None or not source.key_algorithm:
        return None
    if RULES[consumer.service].judge_key(source.key_algorithm) != verdict:
        return None
    return source, source.key_algorithm


def _accepted(service: Service) -> str:
    return ", ".join(sorted(RULES[service].accepted)) or "none documented"


def _edge_fix(consumer: Consumer, source: ResolvedCertificate) -> str:
    edge = (
        f"use the {EDGE_REGION} certificate: fleet.certificate_for(stack, Service.{consumer.service.name}) or "
        f"fleet.edge_certificate_for(stack) (a CertificateFleet with edge=True), or a certificate imported into "
        f"{EDGE_REGION} (aws acm import-certificate --region {EDGE_REGION})"
    )
    if consumer.service is Service.API_GATEWAY_EDGE:
        region = consumer.region
        here = region or "the API's region"
        already = " (this certificate is already there)" if region and source.region == region else ""
        return (
            f"Option 1: make the API regional (EndpointType REGIONAL, RegionalCertificateArn) with a certificate "
            f"in {here}{already}: apigateway.DomainName(..., endpoint_type=EndpointType.REGIONAL, "
            f"certificate=fleet.certificate_for(stack)) — Option 2: keep it edge-optimized and {edge}."
        )
    return f"{edge[0].upper()}{edge[1:]}."


def _local_fix(needed: str, source: ResolvedCertificate, fleet_regions: frozenset[str]) -> str:
    fleet = source.fleet
    if fleet and needed in fleet_regions:
        return (
            f"fleet {fleet} already has a certificate in {needed}: use fleet.certificate_for(stack) instead of "
            f"the {source.region} certificate (fleet.edge_certificate or its ARN)."
        )
    named = f" '{fleet}'" if fleet else ""
    text = (
        f"import the certificate into {needed}: add '{needed}' to regions=[...] of the CertificateFleet{named}, "
        "and use fleet.certificate_for(stack)"
    )
    if not source.is_certfleet:
        text += f" (or aws acm import-certificate --region {needed} and use that ARN)"
    return text + "."


__all__ = [
    "RULE_IDS", "WEAK_CONTEXT", "domain_not_covered", "key_refused", "key_unverified", "strong_reference",
    "tls_below_floor", "wrong_region",
]
