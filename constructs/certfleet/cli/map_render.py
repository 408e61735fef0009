"""Drawing the map document (``map_model``) as a Mermaid flowchart or a Graphviz DOT graph.

Every label is quoted by construction: node ids are generated (``c0``, ``s0``, ``r0``), never taken from a
template, and every character of template text outside a small safe set is written as an entity (Mermaid) or an
escape (DOT), so a hostile name cannot close a label, start a statement or inject markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_MERMAID_SAFE = re.compile(r"[A-Za-z0-9 .,:/_*@=+()-]")
_MAX_NAMES = 4
_DOT_BREAK = "\\n"  # a line break inside a DOT label
_COLOURS = {"error": "#d1242f", "warning": "#bf8700"}


def _mermaid_text(text: str) -> str:
    """``text`` with every character outside the safe set as a Mermaid entity code (``#35;`` for ``#``)."""
    return "".join(ch if _MERMAID_SAFE.fullmatch(ch) else f"#{ord(ch)};" for ch in text)


def _dot_text(text: str) -> str:
    """``text`` for inside a DOT double-quoted string: backslash and quote escaped, control characters dropped."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return cleaned.replace("\\", "\\\\").replace('"', '\\"')


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES])
    return shown + (f" +{len(names) - _MAX_NAMES} more" if len(names) > _MAX_NAMES else "")


def certificate_lines(cert: dict[str, Any]) -> list[str]:
    """The lines of a certificate's label: what it is, its fleet, names, key type and NotAfter."""
    lines = [cert["label"]]
    if cert["names"]:
        lines.append(_names(cert["names"]))
    facts = [cert["key_algorithm"] or "", f"NotAfter {cert['not_after'][:10]}" if cert["not_after"] else ""]
    if any(facts):
        lines.append(", ".join(f for f in facts if f))
    if cert["kind"] != "certfleet":
        lines.append("not certfleet's: judged by region only")
    return lines


def consumer_lines(con: dict[str, Any]) -> list[str]:
    """The lines of a consumer's label: service and what it serves, resource path, stack, domain names."""
    lines = [f"{con['service_title']} {con['what']}".strip(), con["construct_path"] or con["logical_id"],
             f"stack {con['stack']}" + (f" in {con['region']}" if con["region"] else "")]
    if con["domains"]:
        lines.append(_names(con["domains"]))
    return lines


def _regions(doc: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    by_region: dict[str, list[dict[str, Any]]] = {}
    for cert in doc["certificates"]:
        by_region.setdefault(cert["region"] or "region unknown", []).append(cert)
    return sorted(by_region.items())


def _stacks(doc: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    by_stack: dict[str, list[dict[str, Any]]] = {}
    for con in doc["consumers"]:
        title = f"{con['stage']}: {con['stack']}" if con["stage"] else con["stack"]
        by_stack.setdefault(title + (f" ({con['region']})" if con["region"] else ""), []).append(con)
    return list(by_stack.items())


def _edges(doc: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """(from, to, label, severity) per consumer; a consumer whose certificate is unknown hangs from ``unknown``."""
    for con in doc["consumers"]:
        yield con["certificate"] or "unknown", con["id"], " ".join(con["codes"]), con["severity"]


def mermaid(doc: dict[str, Any]) -> str:
    """A Mermaid flowchart: region subgraphs of certificates, stack subgraphs of consumers, coded edges."""
    m = _mermaid_text
    lines = ["flowchart LR"]
    for n, (region, certs) in enumerate(_regions(doc)):
        lines.append(f'  subgraph r{n}["{m(region)}"]')
        lines += [f'    {c["id"]}["{"<br/>".join(m(x) for x in certificate_lines(c))}"]' for c in certs]
        lines.append("  end")
    if any(con["certificate"] is None for con in doc["consumers"]):
        lines.append(f'  unknown["{m("certificate not known from the templates")}"]')
    for n, (stack, cons) in enumerate(_stacks(doc)):
        lines.append(f'  subgraph k{n}["{m(stack)}"]')
        lines += [f'    {c["id"]}["{"<br/>".join(m(x) for x in consumer_lines(c))}"]' for c in cons]
        lines.append("  end")
    styles: list[str] = []
    for n, (source, target, label, severity) in enumerate(_edges(doc)):
        lines.append(f'  {source} -->|"{m(label)}"| {target}' if label else f"  {source} --> {target}")
        if severity in _COLOURS:
            styles.append(f"  linkStyle {n} stroke:{_COLOURS[severity]},stroke-width:3px")
    lines += styles
    for severity, colour in _COLOURS.items():
        flagged = [con["id"] for con in doc["consumers"] if con["severity"] == severity]
        if flagged:
            lines.append(f"  classDef {severity} stroke:{colour},stroke-width:3px")
            lines.append(f"  class {','.join(flagged)} {severity}")
    return "\n".join(lines) + "\n"


def dot(doc: dict[str, Any]) -> str:
    """A Graphviz digraph with the same clusters, nodes and coded edges as the Mermaid picture."""
    d = _dot_text
    lines = ["digraph certfleet {", '  rankdir="LR";', '  node [shape="box", fontname="Helvetica"];']
    for n, (region, certs) in enumerate(_regions(doc)):
        lines.append(f'  subgraph "cluster_r{n}" {{')
        lines.append(f'    label="{d(region)}";')
        lines += [f'    "{c["id"]}" [label="{_DOT_BREAK.join(d(x) for x in certificate_lines(c))}"];'
                  for c in certs]
        lines.append("  }")
    if any(con["certificate"] is None for con in doc["consumers"]):
        lines.append(f'  "unknown" [label="{d("certificate not known from the templates")}"];')
    for n, (stack, cons) in enumerate(_stacks(doc)):
        lines.append(f'  subgraph "cluster_k{n}" {{')
        lines.append(f'    label="{d(stack)}";')
        lines += [f'    "{c["id"]}" [label="{_DOT_BREAK.join(d(x) for x in consumer_lines(c))}"];'
                  for c in cons]
        lines.append("  }")
    for source, target, label, severity in _edges(doc):
        colour = f', color="{_COLOURS[severity]}", penwidth="2"' if severity in _COLOURS else ""
        lines.append(f'  "{source}" -> "{target}" [label="{d(label)}"{colour}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


__all__ = ["certificate_lines", "consumer_lines", "dot", "mermaid"]
