"""The data behind ``certfleet map``: certificates and consumer edges of an assembly, as ``schemas/map.v1.json`` says.

Built only from ``certfleet.checks.graph.certificate_map`` (no second extraction); no ``aws_cdk``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509

from certfleet.checks.assembly import StackTemplate
from certfleet.checks.finding import Finding
from certfleet.checks.graph import CertificateMap, certificate_map
from certfleet.checks.resolve import ResolvedCertificate
from certfleet.rules import RULES

SCHEMA_ID = "urn:certfleet:schema:map:1"


def _key(c: ResolvedCertificate) -> tuple[str, str, str, str, str]:
    """The same certificate whatever way it is reached (a strong reference changes only ``strong``)."""
    return (c.stack or "", c.region or "", c.logical_id or "", c.arn or "", c.label)


def _kind(c: ResolvedCertificate) -> str:
    if c.is_certfleet:
        return "certfleet"
    return "arn" if c.arn else "acm"


def _not_after(c: ResolvedCertificate) -> str | None:
    if not c.certificate_pem:
        return None
    try:
        cert = x509.load_pem_x509_certificate(c.certificate_pem.encode())
    except ValueError:
        return None
    return cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def _finding(f: Finding) -> dict[str, str]:
    return {"code": f.code, "severity": f.severity.value, "message": f.message, "fix": f.fix}


def _certificate(ident: str, c: ResolvedCertificate) -> dict[str, Any]:
    return {
        "id": ident, "kind": _kind(c), "label": c.label, "region": c.region, "fleet": c.fleet, "stack": c.stack,
        "arn": c.arn, "names": list(c.names), "key_algorithm": c.key_algorithm, "not_after": _not_after(c),
    }


def build(found: CertificateMap, stages: dict[str, str], *, assembly: str, stage: str | None) -> dict[str, Any]:
    """The map document: every certificate once, every consumer once with its edge's finding codes.

    ``stages``: stack name -> the Stage it belongs to ("" at the top level).
    """
    ids: dict[tuple[str, str, str, str, str], str] = {}
    certificates: list[dict[str, Any]] = []

    def ident(c: ResolvedCertificate) -> str:
        key = _key(c)
        if key not in ids:
            ids[key] = f"c{len(ids)}"
            certificates.append(_certificate(ids[key], c))
        return ids[key]

    for c in found.certificates:
        ident(c)
    consumers: list[dict[str, Any]] = []
    for n, edge in enumerate(found.edges):
        con, cert = edge.consumer, edge.consumer.certificate
        consumers.append({
            "id": f"s{n}", "service": con.service.value, "service_title": RULES[con.service].title, "what": con.what,
            "stack": con.stack, "stage": stages.get(con.stack, ""), "region": con.region,
            "construct_path": con.construct_path, "logical_id": con.logical_id, "location": con.location,
            "domains": list(con.domains), "certificate": ident(cert) if cert is not None else None,
            "reference": ("strong" if cert.strong else "direct") if cert is not None else "unknown",
            "codes": sorted({f.code for f in edge.findings}),
            "severity": _worst(edge.findings),
            "findings": [_finding(f) for f in edge.findings],
        })
    errors = sum(1 for f in found.findings if f.is_error)
    return {
        "schema": SCHEMA_ID, "assembly": assembly, "stage": stage, "ok": errors == 0,
        "summary": {"certificates": len(certificates), "consumers": len(consumers), "errors": errors,
                    "warnings": len(found.findings) - errors},
        "certificates": certificates, "consumers": consumers,
        "findings": [{**_finding(f), "stack": f.site.stack if f.site else "",
                      "logical_id": f.site.logical_id if f.site else ""} for f in found.findings],
    }


def _worst(findings: Sequence[Finding]) -> str:
    if any(f.is_error for f in findings):
        return "error"
    return "warning" if findings else "ok"


def map_of(stacks: Sequence[StackTemplate], *, assembly: str, stage: str | None) -> dict[str, Any]:
    """The map document of ``stacks`` (already filtered to a stage when one was asked for)."""
    return build(certificate_map(stacks), {st.stack_name: st.stage for st in stacks}, assembly=assembly,
                 stage=stage)


__all__ = ["SCHEMA_ID", "build", "map_of"]
