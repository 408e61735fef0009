"""``certfleet map --json`` against ``schemas/map.v1.json``: a clean map, a map with findings, and what it refuses."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from material_support import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from map_support import ROOT, acm_arn, certfleet_certificate, listener, weak, write_assembly

from certfleet.material.demo import DemoPKI

SCHEMA = json.loads((ROOT / "schemas" / "map.v1.json").read_text())


def errors(doc: Any) -> list[str]:
    validator = Draft202012Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pem = DemoPKI.create(label="map schema").leaf(("www.example.com",)).pem().decode()
    fleet = {"Resources": {"C": certfleet_certificate(pem, "RSA_2048", "Certs", "Certs/eu-west-1/C")},
             "Outputs": {"Arn": {"Value": {"Ref": "C"}}}}
    web = {"Resources": {"Good": listener(weak("Certs", "Arn", "eu-west-1")),
                         "Wrong": listener(acm_arn("us-west-2")), "Unknown": listener({"Ref": "P"})}}
    return write_assembly(tmp_path_factory.mktemp("map-schema") / "cdk.out",
                          {"Certs": ("eu-west-1", fleet), "Web": ("eu-west-1", web)})


def test_map_json_matches_its_schema(capsys: pytest.CaptureFixture[str], cdk_out: Path) -> None:
    run = cli(capsys, "map", str(cdk_out), "--json")
    assert run.code == 1
    doc = run.json()
    assert errors(doc) == []
    assert {c["reference"] for c in doc["consumers"]} == {"direct", "unknown"}
    assert {c["kind"] for c in doc["certificates"]} == {"certfleet", "arn"}
    assert [f["severity"] for f in doc["findings"]] == ["error"]


def test_an_empty_assembly_matches_its_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = cli(capsys, "map", str(write_assembly(tmp_path / "cdk.out", {})), "--json")
    assert run.code == 0 and errors(run.json()) == []
    assert run.json()["summary"] == {"certificates": 0, "consumers": 0, "errors": 0, "warnings": 0}


@pytest.mark.parametrize("change", ["new-top-field", "new-consumer-field", "missing-codes", "bad-certificate-id",
                                    "bad-reference"])
def test_the_schema_refuses_what_version_1_does_not_say(capsys: pytest.CaptureFixture[str], cdk_out: Path,
                                                        change: str) -> None:
    doc = copy.deepcopy(cli(capsys, "map", str(cdk_out), "--json").json())
    consumer = doc["consumers"][0]
    if change == "new-top-field":
        doc["extra"] = 1
    elif change == "new-consumer-field":
        consumer["extra"] = 1
    elif change == "missing-codes":
        del consumer["codes"]
    elif change == "bad-certificate-id":
        consumer["certificate"] = "arn:aws:acm:eu-west-1:1:certificate/x"
    else:
        consumer["reference"] = "weak"
    assert errors(doc) != []
