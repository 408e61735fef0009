"""The certificate map of an assembly and the template checks over it.

``consumers`` extracts and resolves only; ``certificate_map`` also judges each edge (consumer -> certificate), and
``check_templates`` is its flat list of findings. No ``aws_cdk``: the CLI (``certfleet map``) uses it over ``cdk.out``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from certfleet.checks.assembly import StackTemplate
from certfleet.checks.consumer import Consumer
from certfleet.checks.extract.base import Extracted, Resource
from certfleet.checks.extract.registry import EXTRACTORS
from certfleet.checks.finding import Finding, Severity
from certfleet.checks.judgments import (
    domain_not_covered,
    key_refused,
    key_unverified,
    strong_reference,
    tls_below_floor,
    wrong_region,
)
from certfleet.checks.resolve import ResolvedCertificate, Resolver
from certfleet.checks.template import as_dict, resources


@dataclass(frozen=True)
class Edge:
    """One consumer, the certificate it resolves to (``consumer.certificate``), and what is wrong with the pair."""

    consumer: Consumer
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class CertificateMap:
    """Every certfleet certificate and every consumer edge of an assembly, with every template-check finding."""

    certificates: tuple[ResolvedCertificate, ...]
    edges: tuple[Edge, ...]
    findings: tuple[Finding, ...]  # deduplicated, errors first; TLS findings of a resource with no certificate too

    @property
    def consumers(self) -> tuple[Consumer, ...]:
        return tuple(edge.consumer for edge in self.edges)


def consumers(stacks: Sequence[StackTemplate]) -> list[Consumer]:
    """Every certificate consumer in ``stacks`` with its resolved certificate (nothing judged)."""
    resolver = Resolver(stacks)
    return [Consumer.of(resource, use, resolver.resolve(resource.stack, use.value))
            for resource, extracted in _extracted(stacks) for use in extracted.uses]


def certificate_map(stacks: Sequence[StackTemplate]) -> CertificateMap:
    """The map behind ``certfleet map``: certificates, consumer edges and the findings of each edge."""
    resolver = Resolver(stacks)
    edges: list[Edge] = []
    findings: list[Finding] = []
    for resource, extracted in _extracted(stacks):
        tls = [f for setting in extracted.tls if (f := tls_below_floor(resource, setting)) is not None]
        findings.extend(tls)
        for use in extracted.uses:
            consumer = Consumer.of(resource, use, resolver.resolve(resource.stack, use.value))
            judged = judge(consumer, resolver)
            findings.extend(judged)
            edges.append(Edge(consumer, (*judged, *tls)))
    return CertificateMap(tuple(resolver.certificates()), tuple(edges), tuple(ordered(findings)))


def check_templates(stacks: Sequence[StackTemplate]) -> list[Finding]:
    """Every template-check finding of every certificate consumer in ``stacks`` (errors first)."""
    return list(certificate_map(stacks).findings)


def judge(consumer: Consumer, resolver: Resolver) -> list[Finding]:
    """Every judgment on one consumer edge, in the order they are told."""
    fleet = consumer.certificate.fleet if consumer.certificate is not None else None
    found = [
        wrong_region(consumer, resolver.fleet_regions(fleet) if fleet else frozenset()),
        strong_reference(consumer),
        key_refused(consumer),
        key_unverified(consumer),
    ]
    parsed = resolver.parsed(consumer.certificate) if consumer.certificate is not None else None
    return [f for f in found if f is not None] + domain_not_covered(consumer, parsed)


def ordered(findings: Sequence[Finding]) -> list[Finding]:
    """Findings without repeats (the same stack given twice), errors first, then by stack, resource and location."""
    unique: dict[tuple[str, ...], Finding] = {}
    for f in findings:
        site = f.site
        key = (site.template_path, site.logical_id, site.location) if site is not None else ("", "", "")
        unique.setdefault((*key, f.code, f.message), f)
    return sorted(unique.values(), key=_order)


def _order(f: Finding) -> tuple[bool, str, str, str, str]:
    site = f.site
    return (f.severity is not Severity.ERROR, site.stack if site else "", site.logical_id if site else "",
            site.location if site else "", f.code)


def _extracted(stacks: Sequence[StackTemplate]) -> Iterator[tuple[Resource, Extracted]]:
    """Every resource of a consumer type, in template order, with what its extractor found."""
    for st in stacks:
        for logical_id, raw in resources(st.template).items():
            body = as_dict(raw)
            extractor = EXTRACTORS.get(str(body.get("Type", "")))
            if extractor is not None:
                resource = Resource(st, logical_id, body)
                yield resource, extractor(resource)


__all__ = ["CertificateMap", "Edge", "certificate_map", "check_templates", "consumers", "judge"]
