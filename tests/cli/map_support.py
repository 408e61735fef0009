"""Hand-written cloud assemblies for ``certfleet map`` tests, and the real Mermaid parser (npm) to read its output."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARSER = Path(__file__).resolve().parent / "map_parse.mjs"
ACCOUNT = "123456789012"
HOSTILE = 'Evil"] --> x["pwned"]\n%% #<script>alert(1)</script> `|;{}& \\N \\ end'


def certfleet_certificate(pem: str, algorithm: str, fleet: str, ident: str) -> dict[str, Any]:
    return {"Type": "Custom::CertfleetCertificate", "Properties": {
        "Certificate": pem, "KeyAlgorithm": algorithm,
        "Tags": [{"Key": "certfleet:fleet", "Value": fleet}, {"Key": "certfleet:id", "Value": ident}]}}


def distribution(aliases: list[str], arn: Any) -> dict[str, Any]:
    return {"Type": "AWS::CloudFront::Distribution", "Properties": {"DistributionConfig": {
        "Aliases": aliases, "ViewerCertificate": {"AcmCertificateArn": arn, "MinimumProtocolVersion": "TLSv1.2_2021",
                                                  "SslSupportMethod": "sni-only"}}}}


def listener(arn: Any) -> dict[str, Any]:
    return {"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {
        "Protocol": "HTTPS", "Certificates": [{"CertificateArn": arn}],
        "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06"}}


def weak(stack: str, output: str, region: str) -> dict[str, Any]:
    return {"Fn::GetStackOutput": {"StackName": stack, "OutputName": output, "Region": region}}


def acm_arn(region: str, ident: str = "11111111-2222-3333-4444-555555555555") -> str:
    return f"arn:aws:acm:{region}:{ACCOUNT}:certificate/{ident}"


def write_assembly(folder: Path, stacks: dict[str, tuple[str, dict[str, Any]]],
                   stages: dict[str, dict[str, tuple[str, dict[str, Any]]]] | None = None) -> Path:
    """A ``cdk.out`` as the CDK writes it: manifest.json, one template per stack, a nested assembly per stage.

    ``stacks``: stack name -> (region, template).
    """
    folder.mkdir(parents=True, exist_ok=True)
    artifacts: dict[str, Any] = {}
    for n, (name, (region, template)) in enumerate(stacks.items()):
        artifact = f"Stack{n}"
        (folder / f"{artifact}.template.json").write_text(json.dumps(template))
        artifacts[artifact] = {"type": "aws:cloudformation:stack", "environment": f"aws://{ACCOUNT}/{region}",
                               "properties": {"templateFile": f"{artifact}.template.json", "stackName": name},
                               "displayName": name}
    for stage, members in (stages or {}).items():
        directory = f"assembly-{stage}"
        write_assembly(folder / directory, members)
        artifacts[directory] = {"type": "cdk:cloud-assembly", "properties": {"directoryName": directory,
                                                                             "displayName": stage},
                                "displayName": stage}
    (folder / "manifest.json").write_text(json.dumps({"version": "48.0.0", "artifacts": artifacts}))
    return folder


def decode_mermaid(text: str) -> str:
    """Text as Mermaid shows it: entity codes (``#35;``, held by mermaid as ``ﬂ°°35¶ß``) decoded."""
    return re.sub(r"(?:#|ﬂ°°)(\d+)(?:;|¶ß)", lambda m: chr(int(m.group(1))), text)


def mermaid_lines(label: str) -> list[str]:
    """The lines of a node label (``<br>`` breaks), each decoded."""
    return [decode_mermaid(line) for line in re.split(r"<br/?>", label)]


def parse_mermaid(text: str) -> dict[str, Any]:
    """What mermaid's own parser (npm ``mermaid``, in Node with jsdom) understood of ``text``.

    Missing Node or packages: skipped locally, a failure in CI (``CI`` set), where they must be installed.
    """
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    done = subprocess.run([str(node), str(PARSER)], input=text, capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)
    if done.returncode == 2:
        _missing(f"the npm packages mermaid and jsdom are not installed ({done.stdout[:200]})")
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _missing(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the Mermaid parser is required in CI: {why} (npm ci installs it from package.json)")
    pytest.skip(why)


def dot_strings(text: str) -> tuple[list[str], str]:
    """The double-quoted strings of a DOT text (escapes undone, ``\\n`` a line break) and what is left outside."""
    strings: list[str] = []

    def take(m: re.Match[str]) -> str:
        strings.append(re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), m.group(1)))
        return '""'

    return strings, re.sub(r'"((?:[^"\\]|\\.)*)"', take, text)
