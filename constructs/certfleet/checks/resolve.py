"""What a consumer's certificate value resolves to, across every stack of an assembly.

A literal ACM ARN (known by its region only); a certfleet certificate (``Custom::CertfleetCertificate``) or an
``AWS::CertificateManager::Certificate`` reached by ``Ref``/``Fn::GetAtt`` in the same template, ``Fn::GetStackOutput``
(weak), ``Fn::ImportValue`` or a cross-region export reader (strong); an ``Fn::Join`` that spells an ACM ARN.
Anything else (parameters, dynamic references) resolves to ``None``: it cannot be known from the templates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from cryptography import x509

from certfleet._lambda.certfleet_contract import CertificateProperties
from certfleet.checks.assembly import StackTemplate
from certfleet.checks.template import (
    CERTFLEET_TYPE,
    FLEET_TAG,
    ID_TAG,
    as_dict,
    is_literal,
    properties,
    resources,
    tag_value,
)
from certfleet.material.checks import key_algorithm
from certfleet.material.names import dns_names, ip_addresses

_ACM_ARN = re.compile(r"^arn:[a-z0-9-]*:acm:([a-z0-9-]*):[0-9]*:certificate/\S+$")
_JOINED_ACM_ARN = re.compile(r":acm:([a-z]{2}(?:-gov|-iso[a-z]*)?-[a-z]+-\d):")
_MAX_DEPTH = 8


@dataclass(frozen=True)
class ResolvedCertificate:
    """A certificate as the templates tell it: where it is and, for a certfleet certificate, what it holds."""

    region: str | None
    label: str  # how messages name it, e.g. "certfleet certificate Certs/us-east-1/Certificate (fleet Certs)"
    arn: str | None = None  # a literal (or joined) ARN
    certificate_pem: str | None = None
    key_algorithm: str | None = None
    fleet: str | None = None
    stack: str | None = None
    strong: str = ""  # how a strong reference was read, empty when weak or local
    logical_id: str | None = None
    names: tuple[str, ...] = ()  # DNS names and IP addresses of a certfleet certificate
    ordered: bool = False  # a certificate ordered at deploy time (material mode: ACME): judged by names and key type

    @property
    def is_certfleet(self) -> bool:
        return self.certificate_pem is not None or self.fleet is not None


class Resolver:
    """Resolves certificate values in any of ``stacks``, through the outputs and exports of the others."""

    def __init__(self, stacks: Sequence[StackTemplate]) -> None:
        self.stacks = list(stacks)
        self._by_name: dict[str, list[StackTemplate]] = {}
        self._exports: dict[str, list[tuple[StackTemplate, Any]]] = {}
        self._region_exports: dict[str, list[tuple[StackTemplate, Any]]] = {}
        self._fleet_regions: dict[str, set[str]] = {}
        self._parsed: dict[str, x509.Certificate | None] = {}
        self._at: dict[tuple[str, str], ResolvedCertificate | None] = {}
        for st in self.stacks:
            self._by_name.setdefault(st.stack_name, []).append(st)
            for output in as_dict(st.template.get("Outputs")).values():
                name = as_dict(as_dict(output).get("Export")).get("Name")
                if is_literal(name):
                    self._exports.setdefault(str(name), []).append((st, as_dict(output).get("Value")))
            for raw in resources(st.template).values():
                kind = as_dict(raw).get("Type")
                if kind == "Custom::CrossRegionExportWriter":
                    writer = as_dict(properties(raw).get("WriterProps"))
                    for name, value in as_dict(writer.get("exports")).items():
                        self._region_exports.setdefault(name, []).append((st, value))
                elif kind == CERTFLEET_TYPE and st.region:
                    fleet = tag_value(properties(raw), FLEET_TAG)
                    if fleet:
                        self._fleet_regions.setdefault(fleet, set()).add(st.region)

    def fleet_regions(self, fleet: str) -> frozenset[str]:
        """The regions where the templates hold a certificate of ``fleet``."""
        return frozenset(self._fleet_regions.get(fleet, set()))

    def certificates(self) -> list[ResolvedCertificate]:
        """Every certfleet certificate of every stack, in template order."""
        found: list[ResolvedCertificate] = []
        for st in self.stacks:
            for logical_id, raw in resources(st.template).items():
                if as_dict(raw).get("Type") == CERTFLEET_TYPE:
                    resolved = self.at(st, logical_id)
                    if resolved is not None:
                        found.append(resolved)
        return found

    def at(self, st: StackTemplate, logical_id: str, strong: str = "") -> ResolvedCertificate | None:
        """The certificate resource ``logical_id`` of ``st`` (certfleet or ACM), or None for anything else."""
        key = (st.template_path, logical_id)
        if key not in self._at:
            self._at[key] = self._read(st, logical_id)
        found = self._at[key]
        return replace(found, strong=strong) if found is not None and strong else found

    def _read(self, st: StackTemplate, logical_id: str) -> ResolvedCertificate | None:
        resource = as_dict(resources(st.template).get(logical_id))
        if resource.get("Type") == "AWS::CertificateManager::Certificate":
            path = as_dict(resource.get("Metadata")).get("aws:cdk:path")
            shown = str(path) if is_literal(path) else f"{st.stack_name}/{logical_id}"
            return ResolvedCertificate(region=st.region, label=f"ACM certificate {shown}", stack=st.stack_name)
        if resource.get("Type") != CERTFLEET_TYPE:
            return None
        props = cast(CertificateProperties, properties(resource))  # its values may be tokens: checked below
        pem: object = props.get("Certificate")
        algorithm: object = props.get("KeyAlgorithm")
        cert = self._parse(pem) if is_literal(pem) else None
        if cert is not None:
            algorithm = key_algorithm(cert.public_key())
        names: tuple[str, ...] = tuple(dns_names(cert) + ip_addresses(cert)) if cert is not None else ()
        if cert is None and pem is None:  # material mode (an ACME source): the names it is ordered for
            listed: object = props.get("Names")
            if isinstance(listed, list) and all(is_literal(n) for n in listed):
                names = tuple(str(n) for n in listed)
        ident = tag_value(props, ID_TAG) or f"{st.stack_name}/{logical_id}"
        fleet = tag_value(props, FLEET_TAG)
        return ResolvedCertificate(
            region=st.region, label=f"certfleet certificate {ident}" + (f" (fleet {fleet})" if fleet else ""),
            certificate_pem=str(pem) if cert is not None else None,
            key_algorithm=str(algorithm) if is_literal(algorithm) else None, fleet=fleet, stack=st.stack_name,
            logical_id=logical_id,
            names=names, ordered=cert is None and pem is None,
        )

    def parsed(self, resolved: ResolvedCertificate) -> x509.Certificate | None:
        """The X.509 certificate of a certfleet certificate (parsed once per assembly)."""
        return self._parse(resolved.certificate_pem) if resolved.certificate_pem else None

    def resolve(self, st: StackTemplate, value: Any, depth: int = 0, strong: str = "") -> ResolvedCertificate | None:
        """What ``value`` (in ``st``'s template) is, or None when it cannot be known from the templates."""
        if depth > _MAX_DEPTH:
            return None
        if isinstance(value, str):
            match = _ACM_ARN.match(value.strip()) if is_literal(value) else None
            if not match:
                return None
            return ResolvedCertificate(region=match.group(1) or None, label=f"certificate {value}", arn=value,
                                       strong=strong)
        if not isinstance(value, dict) or len(value) != 1:
            return None
        (fn, arg), = value.items()
        if fn == "Ref" and isinstance(arg, str):
            return self.at(st, arg, strong)
        if fn == "Fn::GetAtt":
            return self._get_att(st, arg, depth, strong)
        if fn == "Fn::GetStackOutput" and isinstance(arg, dict):
            return self._stack_output(arg, depth, strong)
        if fn == "Fn::ImportValue" and is_literal(arg):
            candidates = self._exports.get(str(arg), [])
            same = [c for c in candidates if c[0].region == st.region] or candidates
            for producer, exported in same[:1]:
                return self.resolve(producer, exported, depth + 1, strong or f"Fn::ImportValue {arg!r}")
            return None
        if fn == "Fn::Join":
            return _from_join(st, arg, strong)
        return None

    def _get_att(self, st: StackTemplate, arg: Any, depth: int, strong: str) -> ResolvedCertificate | None:
        parts = arg.split(".", 1) if isinstance(arg, str) else arg
        if not isinstance(parts, list) or len(parts) != 2 or not isinstance(parts[0], str):
            return None
        target = as_dict(resources(st.template).get(parts[0]))
        if target.get("Type") == "Custom::CrossRegionExportReader" and isinstance(parts[1], str):
            for producer, exported in self._region_exports.get(parts[1], [])[:1]:
                return self.resolve(producer, exported, depth + 1,
                                    strong or f"a cross-region strong reference ({parts[1]})")
            return None
        return self.at(st, parts[0], strong)

    def _stack_output(self, arg: dict[str, Any], depth: int, strong: str) -> ResolvedCertificate | None:
        name, output, region = arg.get("StackName"), arg.get("OutputName"), arg.get("Region")
        if not (is_literal(name) and is_literal(output)):
            return None
        for producer in self._by_name.get(str(name), []):
            if is_literal(region) and producer.region and producer.region != region:
                continue
            out = as_dict(as_dict(producer.template.get("Outputs")).get(str(output)))
            if "Value" in out:
                return self.resolve(producer, out["Value"], depth + 1, strong)
        return None

    def _parse(self, pem: Any) -> x509.Certificate | None:
        text = str(pem)
        if text not in self._parsed:
            try:
                self._parsed[text] = x509.load_pem_x509_certificate(text.encode())
            except ValueError:
                self._parsed[text] = None
        return self._parsed[text]


def _from_join(st: StackTemplate, arg: Any, strong: str) -> ResolvedCertificate | None:
    """An ``Fn::Join`` that spells an ACM ARN (``Ref AWS::Region`` filled in; other tokens shown as "…")."""
    if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and isinstance(arg[1], list)):
        return None
    pieces = []
    for part in arg[1]:
        if isinstance(part, str):
            pieces.append(part)
        elif part == {"Ref": "AWS::Region"} and st.region:
            pieces.append(st.region)
        else:
            pieces.append("\x00")
    joined = arg[0].join(pieces)
    match = _JOINED_ACM_ARN.search(joined)
    if not match or ":certificate/" not in joined:
        return None
    shown = joined.replace("\x00", "…")
    return ResolvedCertificate(region=match.group(1), label=f"certificate {shown}", arn=shown, strong=strong)


__all__ = ["ResolvedCertificate", "Resolver"]
