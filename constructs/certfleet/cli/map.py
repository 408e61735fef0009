"""``certfleet map``: which certificate each consumer of a cloud assembly gets, in which region, drawn.

Reads ``cdk.out`` as JSON (nested Stage assemblies included; never ``aws_cdk``), and prints or writes a Mermaid
flowchart (default), a Graphviz DOT graph, JSON (``schemas/map.v1.json``) or SVG (through Graphviz ``dot``).
Exit 1 when the map shows an error finding, so CI can gate on it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from certfleet.checks.assembly import StackTemplate, load_cloud_assembly
from certfleet.cli.files import Output, write_outputs
from certfleet.cli.map_model import map_of
from certfleet.cli.map_render import dot, mermaid
from certfleet.cli.output import err, out, scrub

GRAPHVIZ_FIX = ("install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz), "
                "or use --format dot and draw it elsewhere")
_DOT_TIMEOUT = 120.0


class MapError(Exception):
    """A problem with the assembly or the output, told in one sentence with what to do."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


def _stacks(cdk_out: Path, stage: str | None) -> list[StackTemplate]:
    if not (cdk_out / "manifest.json").is_file():
        raise MapError(f"{cdk_out} is not a cloud assembly (it has no manifest.json)",
                       "run `cdk synth` first, or give the assembly's folder: certfleet map path/to/cdk.out")
    try:
        stacks = load_cloud_assembly(cdk_out)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MapError(f"{cdk_out} is not a readable cloud assembly ({type(exc).__name__}: {exc})",
                       "synthesize it again with `cdk synth`") from None
    if stage is None:
        return stacks
    chosen = [st for st in stacks if st.stage and (st.stage == stage or st.stage.endswith(f"/{stage}"))]
    if not chosen:
        known = sorted({st.stage for st in stacks if st.stage})
        raise MapError(f"{cdk_out} has no stage {stage!r} (stages: {', '.join(known) or 'none'})",
                       "give one of those names to --stage, or leave --stage out to map every stack")
    return chosen


def _svg(text: str) -> str:
    exe = shutil.which("dot")
    if exe is None:
        raise MapError("--format svg needs Graphviz's dot program, which is not installed", GRAPHVIZ_FIX)
    try:
        done = subprocess.run([exe, "-Tsvg"], input=text, capture_output=True, text=True, timeout=_DOT_TIMEOUT,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MapError(f"Graphviz's dot did not draw the map ({type(exc).__name__})", GRAPHVIZ_FIX) from None
    if done.returncode != 0:
        raise MapError(f"Graphviz's dot refused the map: {done.stderr.strip()[:300]}",
                       "report it with --format dot's output")
    return done.stdout


def render(doc: dict[str, Any], fmt: str) -> str:
    """The map document in ``fmt`` (mermaid, dot, json, svg)."""
    if fmt == "json":
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "dot":
        return dot(doc)
    if fmt == "svg":
        return _svg(dot(doc))
    return mermaid(doc)


def markdown(doc: dict[str, Any]) -> str:
    """A markdown page with the Mermaid picture, as GitHub and GitLab render it."""
    s = doc["summary"]
    return (f"# Certificate map of {doc['assembly']}\n\n{s['certificates']} certificates, {s['consumers']} consumers, "
            f"{s['errors']} errors, {s['warnings']} warnings (`certfleet map`).\n\n```mermaid\n{mermaid(doc)}```\n")


def run(args: argparse.Namespace) -> int:
    """Build, draw and print or write the map; 1 when it shows an error finding."""
    if args.json and args.format not in (None, "json"):
        err("certfleet map: --json and --format cannot ask for two formats; use one of them")
        return 2
    fmt = "json" if args.json else (args.format or "mermaid")
    cdk_out = Path(args.cdk_out)
    try:
        doc = map_of(_stacks(cdk_out, args.stage), assembly=str(cdk_out), stage=args.stage)
        target = Path(args.out) if args.out else None
        text = markdown(doc) if target is not None and target.suffix == ".md" and fmt == "mermaid" else render(
            doc, fmt)
        if target is not None:
            write_outputs([Output(target, scrub(text).encode())], replace=True)
            err(f"certfleet map: wrote {target}")
        else:
            out(text.rstrip("\n"))
    except MapError as exc:
        err(f"certfleet map: {exc}\n    fix: {exc.fix}")
        return 1
    if fmt != "json":
        for finding in (f for f in doc["findings"] if f["severity"] == "error"):
            err(f"error [{finding['code']}] {finding['message']}")
    return 0 if doc["ok"] else 1


__all__ = ["MapError", "markdown", "render", "run"]
