"""The ``--json`` outputs of inspect, verify and probe against their versioned schemas in ``schemas/`` (status's
are checked in tests/ops/test_status.py, where its AWS fixtures live).

The schemas close every object (``additionalProperties: false``) and list what is required, so a field added,
removed or retyped fails here until its schema changes with it (a new major version when a field goes or changes
meaning: see the README's Compatibility section).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from material_support import cli, key_pem, leaf, pem, rsa_key, rsa_pki, write
from ops_support import TLSServer

from certfleet.material.demo import DemoPKI, Issued

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.v1.json").read_text())


def _valid(name: str, data: Any) -> None:
    errors = sorted(Draft202012Validator(_schema(name)).iter_errors(data), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]]


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


@pytest.mark.parametrize("name", sorted(p.name.split(".")[0] for p in SCHEMAS.glob("*.v1.json")))
def test_every_schema_is_valid_and_closes_every_object(name: str) -> None:
    schema = _schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"urn:certfleet:schema:{name}:1"
    for obj in _objects(schema):
        if "properties" in obj:
            assert obj.get("additionalProperties") is False, obj
            assert set(obj["required"]) <= set(obj["properties"])


def test_a_new_field_breaks_the_schema() -> None:
    finding = {"code": "expired", "severity": "error", "message": "m", "fix": "f", "subject": "s"}
    _valid("inspect", [{"file": "a.pem", "error": finding}])
    with pytest.raises(AssertionError):
        _valid("inspect", [{"file": "a.pem", "error": {**finding, "new_field": 1}}])
    with pytest.raises(AssertionError):
        _valid("inspect", [{"file": "a.pem"}])


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("schemas")
    pki = rsa_pki()
    issued = leaf(("www.example.com", "example.com"))
    key = issued.key
    damaged = pem(issued) + b"-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZSwgbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
    return {
        "cert": write(folder / "cert.pem", pem(issued)),
        "chain": write(folder / "chain.pem", pki.chain_pem()),
        "key": write(folder / "private.key", key_pem(key), mode=0o400),
        "encrypted": write(folder / "enc.key", key_pem(rsa_key(), password=b"pw"), mode=0o400),
        "other": write(folder / "other.key", key_pem(rsa_key(n=1)), mode=0o400),
        "damaged": write(folder / "damaged.pem", damaged),
        "text": write(folder / "notes.txt", b"not a certificate\n"),
    }


def test_inspect_json_matches_its_schema(capsys: pytest.CaptureFixture[str], material: dict[str, str]) -> None:
    run = cli(capsys, "inspect", "--json", material["cert"], material["chain"], material["key"], material["encrypted"],
              material["damaged"], material["text"], str(Path(material["cert"]).with_name("missing.pem")))
    _valid("inspect", run.json())
    assert {"error" in r for r in run.json()} == {True, False}


@pytest.mark.parametrize("case", ["ok", "wrong-key", "no-chain-no-key", "refused-service"])
def test_verify_json_matches_its_schema(capsys: pytest.CaptureFixture[str], material: dict[str, str],
                                        case: str) -> None:
    args = {"ok": ["--chain", material["chain"], "--key", material["key"], "--service", "cloudfront",
                   "--domain", "www.example.com"],
            "wrong-key": ["--key", material["other"]],
            "no-chain-no-key": [],
            "refused-service": ["--service", "apprunner", "--service", "nlb"]}[case]
    run = cli(capsys, "verify", "--json", "--certificate", material["cert"], *args)
    _valid("verify", run.json())


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[TLSServer, DemoPKI, Issued]]:
    pki = DemoPKI.create("ec-p256", "schemas")
    current = pki.leaf(("www.example.com",), days=20)
    with TLSServer(current, [pki.intermediate]) as server:
        yield server, pki, current


def test_probe_json_matches_its_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                       served: tuple[TLSServer, DemoPKI, Issued]) -> None:
    server, pki, current = served
    root = write(tmp_path / "root.pem", pki.root.pem())
    cert = write(tmp_path / "cert.pem", current.pem())
    chain = write(tmp_path / "chain.pem", pki.chain_pem())
    for extra in ([], ["--ca-file", root], ["--ca-file", root, "--certificate", cert, "--chain", chain],
                  ["--servername", "other.example.com"]):
        run = cli(capsys, "probe", server.target, "--json", *extra)
        _valid("probe", run.json())
