"""``certfleet map``: every certificate and consumer once, each finding's code on its edge, JSON that validates,
Mermaid that mermaid's own parser reads (hostile names included), DOT quoted by construction, exit 0/1/2."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from map_support import (
    HOSTILE,
    ROOT,
    acm_arn,
    certfleet_certificate,
    decode_mermaid,
    distribution,
    dot_strings,
    listener,
    mermaid_lines,
    parse_mermaid,
    weak,
    write_assembly,
)
from material_support import Run, cli

from certfleet.checks.assembly import load_cloud_assembly
from certfleet.material.demo import DemoPKI, Issued

SCHEMA = json.loads((ROOT / "schemas" / "map.v1.json").read_text())


def valid(doc: Any) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in Draft202012Validator(SCHEMA).iter_errors(doc)]
    assert not errors, errors[:5]


@pytest.fixture(scope="module")
def certs() -> dict[str, Issued]:
    rsa, ec = DemoPKI.create(label="map"), DemoPKI.create("ec-p384", "map ec")
    return {"rsa": rsa.leaf(("www.example.com", "example.com")),
            "p384": ec.leaf(("www.example.com",), key_type="ec-p384")}


def findings_assembly(folder: Path, certs: dict[str, Issued], *, hostile: bool = False) -> Path:
    """One fleet (RSA in us-east-1 and eu-west-1, P-384 in us-east-1) and a consumer per finding type."""
    rsa, p384 = certs["rsa"].pem().decode(), certs["p384"].pem().decode()
    ident = HOSTILE if hostile else "Certs/us-east-1/Rsa"
    fleet_east = {"Resources": {
        "Rsa": certfleet_certificate(rsa, "RSA_2048", "Certs", ident),
        "Ec": certfleet_certificate(p384, "EC_secp384r1", "Certs", "Certs/us-east-1/Ec")},
        "Outputs": {"RsaArn": {"Value": {"Ref": "Rsa"}, "Export": {"Name": "RsaArn"}},
                    "EcArn": {"Value": {"Ref": "Ec"}}}}
    fleet_west = {"Resources": {"Rsa": certfleet_certificate(rsa, "RSA_2048", "Certs", "Certs/eu-west-1/Rsa")},
                  "Outputs": {"RsaArn": {"Value": {"Ref": "Rsa"}}}}
    east = weak("Certs-us-east-1", "RsaArn", "us-east-1")
    web = {"Resources": {
        "Fine": distribution(["www.example.com"], east),
        "WrongRegion": listener(east),
        "Refused": distribution(["www.example.com"], weak("Certs-us-east-1", "EcArn", "us-east-1")),
        "Uncovered": distribution([HOSTILE if hostile else "api.example.org"], east),
        "LiteralWrong": listener(acm_arn("us-west-2")),
        "LiteralRight": listener(acm_arn("eu-west-1")),
        "Unknown": listener({"Ref": "CertificateArn"}),
        "Local": listener(weak("Certs-eu-west-1", "RsaArn", "eu-west-1")),
    }, "Parameters": {"CertificateArn": {"Type": "String"}}}
    strong = {"Resources": {"Strong": distribution(["www.example.com"], {"Fn::ImportValue": "RsaArn"})}}
    if hostile:
        web["Resources"]["Fine"]["Metadata"] = {"aws:cdk:path": HOSTILE}
    return write_assembly(folder, {"Certs-us-east-1": ("us-east-1", fleet_east),
                                   "Certs-eu-west-1": ("eu-west-1", fleet_west),
                                   HOSTILE if hostile else "Web": ("eu-west-1", web),
                                   "Edge": ("us-east-1", strong)})


EXPECTED_CODES = {
    "Fine": [], "WrongRegion": ["wrong-region"], "Refused": ["key-refused"], "Uncovered": ["domain-not-covered"],
    "LiteralWrong": ["wrong-region"], "LiteralRight": [], "Unknown": [], "Local": [], "Strong": ["strong-reference"],
}


def run_map(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    return cli(capsys, "map", *argv)


def test_each_finding_type_is_on_its_edge_and_everything_appears_once(capsys: pytest.CaptureFixture[str],
                                                                      tmp_path: Path,
                                                                      certs: dict[str, Issued]) -> None:
    run = run_map(capsys, str(findings_assembly(tmp_path / "cdk.out", certs)), "--json")
    assert run.code == 1, run.err
    doc = run.json()
    valid(doc)
    consumers = {c["logical_id"]: c for c in doc["consumers"]}
    assert len(consumers) == len(doc["consumers"]) == len(EXPECTED_CODES)
    assert {k: c["codes"] for k, c in consumers.items()} == EXPECTED_CODES
    certificates = {c["id"]: c for c in doc["certificates"]}
    assert len(certificates) == len(doc["certificates"])
    keys = [(c["kind"], c["stack"], c["region"], c["arn"]) for c in doc["certificates"]]
    assert sorted(keys, key=str) == sorted([
        ("certfleet", "Certs-us-east-1", "us-east-1", None), ("certfleet", "Certs-us-east-1", "us-east-1", None),
        ("certfleet", "Certs-eu-west-1", "eu-west-1", None),
        ("arn", None, "us-west-2", acm_arn("us-west-2")), ("arn", None, "eu-west-1", acm_arn("eu-west-1")),
    ], key=str)
    by_label = {c["label"]: c["id"] for c in doc["certificates"]}
    rsa_east = by_label["certfleet certificate Certs/us-east-1/Rsa (fleet Certs)"]
    assert {k for k, c in consumers.items() if c["certificate"] == rsa_east} == {"Fine", "WrongRegion", "Uncovered",
                                                                                 "Strong"}
    assert consumers["Strong"]["reference"] == "strong" and consumers["Fine"]["reference"] == "direct"
    assert consumers["Unknown"]["certificate"] is None and consumers["Unknown"]["reference"] == "unknown"
    assert certificates[consumers["LiteralWrong"]["certificate"]]["names"] == []  # judged by region only
    assert certificates[rsa_east]["not_after"] == certs["rsa"].certificate.not_valid_after_utc.strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    assert doc["summary"] == {"certificates": 5, "consumers": 9, "errors": 4, "warnings": 1}
    assert doc["ok"] is False


def test_mermaid_is_read_by_mermaids_parser_with_every_node_and_coded_edge(capsys: pytest.CaptureFixture[str],
                                                                           tmp_path: Path,
                                                                           certs: dict[str, Issued]) -> None:
    cdk_out = str(findings_assembly(tmp_path / "cdk.out", certs))
    doc = run_map(capsys, cdk_out, "--json").json()
    run = run_map(capsys, cdk_out)
    assert run.code == 1 and "error [key-refused]" in run.err
    parsed = parse_mermaid(run.out)
    assert parsed["ok"], parsed
    assert parsed["type"].startswith("flowchart")
    ids = {c["id"] for c in doc["certificates"]} | {c["id"] for c in doc["consumers"]} | {"unknown"}
    assert set(parsed["vertices"]) == ids
    edges = sorted((a, b, decode_mermaid(t)) for a, b, t in parsed["edges"])
    assert edges == sorted((c["certificate"] or "unknown", c["id"], " ".join(c["codes"])) for c in doc["consumers"])
    assert {n for _id, _t, nodes in parsed["subgraphs"] for n in nodes} == ids - {"unknown"}


def test_hostile_names_neither_break_nor_inject_into_the_mermaid_picture(capsys: pytest.CaptureFixture[str],
                                                                          tmp_path: Path,
                                                                          certs: dict[str, Issued]) -> None:
    cdk_out = str(findings_assembly(tmp_path / "cdk.out", certs, hostile=True))
    doc = run_map(capsys, cdk_out, "--json").json()
    text = run_map(capsys, cdk_out).out
    parsed = parse_mermaid(text)
    assert parsed["ok"], parsed
    ids = {c["id"] for c in doc["certificates"]} | {c["id"] for c in doc["consumers"]} | {"unknown"}
    assert set(parsed["vertices"]) == ids  # no "x" node, no "pwned"
    labels = {k: mermaid_lines(v) for k, v in parsed["vertices"].items()}
    by_logical = {c["logical_id"]: c["id"] for c in doc["consumers"]}
    rsa = next(c["id"] for c in doc["certificates"] if c["label"].startswith("certfleet certificate Evil"))
    assert labels[rsa][0] == f"certfleet certificate {HOSTILE} (fleet Certs)"
    assert labels[by_logical["Fine"]][1] == HOSTILE  # the construct path, whole
    assert labels[by_logical["Uncovered"]][-1] == HOSTILE  # the alias, whole
    assert any(decode_mermaid(title) == f"{HOSTILE} (eu-west-1)" for _i, title, _n in parsed["subgraphs"])
    assert "<script>" not in text and '"pwned"' not in text


def test_hostile_names_stay_inside_dot_strings(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                               certs: dict[str, Issued]) -> None:
    cdk_out = str(findings_assembly(tmp_path / "cdk.out", certs, hostile=True))
    run = run_map(capsys, cdk_out, "--format", "dot")
    assert run.code == 1
    strings, outside = dot_strings(run.out)
    statement = re.compile(r'(digraph certfleet \{|\}|rankdir="";|node \[shape="", fontname=""\];|subgraph "" \{|'
                           r'label="";|"" \[label=""\];|"" -> "" \[label=""(, color="", penwidth="")?\];)')
    assert [line.strip() for line in outside.splitlines() if not statement.fullmatch(line.strip())] == []
    flat = HOSTILE.replace("\n", " ")
    assert f"certfleet certificate {flat} (fleet Certs)" in {s.split("\n")[0] for s in strings}
    if shutil.which("dot") is None and os.environ.get("CI"):
        pytest.fail("Graphviz's dot is required in CI (scripts/setup.sh installs it with apt-get)")
    if shutil.which("dot"):  # Graphviz itself reads it: exactly our nodes, our edges
        drawn = json.loads(subprocess.run(["dot", "-Tjson0"], input=run.out, capture_output=True, text=True,
                                          timeout=120, check=True).stdout)
        doc = run_map(capsys, cdk_out, "--json").json()
        ids = {c["id"] for c in doc["certificates"]} | {c["id"] for c in doc["consumers"]} | {"unknown"}
        assert {o["name"] for o in drawn["objects"] if "nodes" not in o} == ids
        assert len(drawn["edges"]) == len(doc["consumers"])
        svg = run_map(capsys, cdk_out, "--format", "svg")
        assert svg.code == 1 and svg.out.lstrip().startswith("<?xml") and "<script>" not in svg.out


def test_svg_without_graphviz_says_how_to_install_it(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     certs: dict[str, Issued],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cdk_out = str(findings_assembly(tmp_path / "cdk.out", certs))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    run = run_map(capsys, cdk_out, "--format", "svg")
    assert run.code == 1 and run.out == ""
    assert "apt-get install graphviz" in run.err and "Traceback" not in run.err


def test_out_writes_markdown_and_refuses_a_symlink(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   certs: dict[str, Issued]) -> None:
    cdk_out = str(findings_assembly(tmp_path / "cdk.out", certs))
    target = tmp_path / "map.md"
    target.write_text("old")
    assert run_map(capsys, cdk_out, "--out", str(target)).code == 1
    page = target.read_text()
    assert page.startswith("# Certificate map of ") and "\n```mermaid\nflowchart LR\n" in page
    assert parse_mermaid(page.split("```mermaid\n", 1)[1].split("```", 1)[0])["ok"]
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "link.json").symlink_to(victim)
    run = run_map(capsys, cdk_out, "--json", "--out", str(tmp_path / "link.json"))
    assert run.code == 1 and "symbolic link" in run.err and victim.read_text() == "keep"


@pytest.mark.parametrize("case", ["missing", "not-json", "no-template", "unknown-stage", "two-formats"])
def test_bad_input_is_one_sentence_never_a_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     case: str) -> None:
    folder = write_assembly(tmp_path / "cdk.out", {"Web": ("eu-west-1", {"Resources": {}})})
    args = [str(folder)]
    if case == "missing":
        args = [str(tmp_path / "nowhere")]
    elif case == "not-json":
        (folder / "manifest.json").write_text("{not json")
    elif case == "no-template":
        (folder / "Stack0.template.json").unlink()
    elif case == "unknown-stage":
        args += ["--stage", "prod"]
    else:
        args += ["--json", "--format", "dot"]
    run = run_map(capsys, *args)
    assert run.code == (2 if case == "two-formats" else 1), run.err
    assert run.out == "" and "Traceback" not in run.err and run.err.startswith("certfleet")


def test_nested_stages_are_read_and_stage_selects_one(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      certs: dict[str, Issued]) -> None:
    pem = certs["rsa"].pem().decode()

    def stage(name: str) -> dict[str, tuple[str, dict[str, Any]]]:
        fleet = {"Resources": {"C": certfleet_certificate(pem, "RSA_2048", f"{name}-Certs", f"{name}/C")},
                 "Outputs": {"Arn": {"Value": {"Ref": "C"}}}}
        web = {"Resources": {"L": listener(weak(f"{name}-Certs", "Arn", "eu-west-1"))}}
        return {f"{name}-Certs": ("eu-west-1", fleet), f"{name}-Web": ("eu-west-1", web)}

    cdk_out = write_assembly(tmp_path / "cdk.out", {}, stages={"dev": stage("dev"), "prod": stage("prod")})
    assert {(st.stack_name, st.stage) for st in load_cloud_assembly(cdk_out)} == {
        ("dev-Certs", "dev"), ("dev-Web", "dev"), ("prod-Certs", "prod"), ("prod-Web", "prod")}
    every = run_map(capsys, str(cdk_out), "--json")
    assert every.code == 0 and len(every.json()["consumers"]) == 2 and len(every.json()["certificates"]) == 2
    prod = run_map(capsys, str(cdk_out), "--json", "--stage", "prod")
    assert prod.code == 0
    doc = prod.json()
    valid(doc)
    assert [(c["stack"], c["stage"], c["codes"]) for c in doc["consumers"]] == [("prod-Web", "prod", [])]
    assert [c["fleet"] for c in doc["certificates"]] == ["prod-Certs"]




@pytest.fixture(scope="module")
def reference_assemblies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The reference app's demo environment and its dev -> staging -> prod pipeline, synthesized in-process."""
    from aws_cdk import App

    from certfleet.reference import build
    from certfleet.testing.synth import write_reference_app

    folder = tmp_path_factory.mktemp("map-app")
    write_reference_app(folder, ROOT, label="map environments")
    base = json.loads((folder / "cdk.json").read_text())["context"]
    found: dict[str, Path] = {}
    for name, context in (("demo", {"env": "demo"}), ("pipeline", {"pipeline": "true"})):
        out = folder / f"cdk.out.{name}"
        app = App(outdir=str(out), context={**base, **context})
        build(app, folder)
        app.synth()
        found[name] = out
    yield found


@pytest.mark.slow
def test_reference_demo_environment(capsys: pytest.CaptureFixture[str],
                                    reference_assemblies: dict[str, Path]) -> None:
    cdk_out = str(reference_assemblies["demo"])
    run = run_map(capsys, cdk_out, "--json")
    assert run.code == 0, run.err
    doc = run.json()
    valid(doc)
    assert len({(c["stack"], c["logical_id"], c["location"]) for c in doc["consumers"]}) == len(doc["consumers"]) == 13
    regions = sorted(c["region"] for c in doc["certificates"])
    assert regions == ["ap-northeast-1", "eu-west-1", "us-east-1", "us-west-2"]
    assert {c["kind"] for c in doc["certificates"]} == {"certfleet"}
    for con in doc["consumers"]:
        assert con["codes"] == [] and con["certificate"] is not None, con
    picture = run_map(capsys, cdk_out)
    parsed = parse_mermaid(picture.out)
    assert parsed["ok"], parsed
    assert len(parsed["vertices"]) == 13 + 4 and len(parsed["edges"]) == 13


@pytest.mark.slow
def test_reference_pipeline_stages(capsys: pytest.CaptureFixture[str],
                                   reference_assemblies: dict[str, Path]) -> None:
    cdk_out = str(reference_assemblies["pipeline"])
    every = run_map(capsys, cdk_out, "--json").json()
    valid(every)
    stages = {c["stage"] for c in every["consumers"]}
    assert len(stages) == 3 and "" not in stages, stages
    total = 0
    for stage in stages:
        run = run_map(capsys, cdk_out, "--json", "--stage", stage.rsplit("/", 1)[-1])
        assert run.code == 0, run.err
        doc = run.json()
        assert {c["stage"] for c in doc["consumers"]} == {stage}
        assert doc["certificates"] and all(c["region"] for c in doc["certificates"])
        total += len(doc["consumers"])
    assert total == len(every["consumers"])
