"""DESIGN.md's nevers and import hygiene, each a test."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "constructs" / "certfleet"
PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\s*\n(?:[A-Za-z0-9+/=]{40,}\s*\n){2}")


def _imports_of(path: Path, *, runtime: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if runtime:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                node.body = [ast.Pass()]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _fresh_modules(statement: str) -> set[str]:
    code = f"import sys; {statement}; import json; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True, cwd="/")
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("module", ["certfleet.material", "certfleet.rules", "certfleet.material.sealed"])
def test_material_and_rules_import_neither_cdk_nor_boto3(module: str) -> None:
    loaded = _fresh_modules(f"import {module}")
    assert not {m for m in loaded if m.split(".")[0] in {"aws_cdk", "boto3", "botocore", "jsii"}}


def test_material_and_rules_source_never_imports_cdk_or_boto3() -> None:
    files = [*sorted((PACKAGE / "material").glob("*.py")), PACKAGE / "rules.py"]
    for path in files:
        assert not _imports_of(path) & {"aws_cdk", "boto3", "botocore", "constructs", "jsii"}, path


def test_cli_never_imports_aws_cdk() -> None:
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        assert not _imports_of(path) & {"aws_cdk", "constructs", "jsii"}, path
    for command in ("inspect", "verify", "seal", "upload", "status", "probe", "renew"):
        loaded = _fresh_modules(
            "from certfleet.cli.main import _handler, build_parser; build_parser(); "
            f"_handler({command!r})"
        )
        assert not {m for m in loaded if m.split(".")[0] in {"aws_cdk", "jsii", "constructs"}}, command


def _runtime_imports_of(path: Path) -> set[str]:
    """The top-level modules ``path`` imports when it runs (what an ``if TYPE_CHECKING:`` branch names is not)."""
    return _imports_of(path, runtime=True)


def test_lambda_code_imports_only_stdlib_and_boto3() -> None:
    """The handler asset (certfleet/_lambda) runs with the standard library and boto3 only, its modules importing
    each other at the asset's top level."""
    handlers = sorted((PACKAGE / "_lambda").glob("*.py"))
    assert len(handlers) >= 6, "certfleet/_lambda holds the custom-resource handlers and their contract"
    local = {p.stem for p in handlers}
    allowed = set(sys.stdlib_module_names) | {"boto3", "botocore"} | local
    for path in handlers:
        assert _runtime_imports_of(path) <= allowed, f"{path}: {_runtime_imports_of(path) - allowed}"


def test_the_contract_module_imports_only_the_standard_library() -> None:
    contract = PACKAGE / "_lambda" / "certfleet_contract.py"
    assert _imports_of(contract) <= set(sys.stdlib_module_names), _imports_of(contract)


def test_acme_client_imports_only_what_its_own_asset_ships() -> None:
    """lambda_acme/ ships in its own wheel-built asset (certfleet.acme_asset): the standard library, boto3, the
    ACME stack, its own modules and the contract; no custom-resource handler of certfleet/_lambda imports it."""
    client = sorted((ROOT / "lambda_acme").glob("*.py"))
    assert client, "lambda_acme/ holds the ACME client"
    own = {p.stem for p in client} | {"certfleet_contract"}  # the asset ships lambda_acme/*.py and the contract
    allowed = set(sys.stdlib_module_names) | {"boto3", "botocore", "acme", "josepy", "cryptography", "requests"} | own
    for path in client:
        assert _runtime_imports_of(path) <= allowed, f"{path}: {_runtime_imports_of(path) - allowed}"
    for path in (PACKAGE / "_lambda").glob("*.py"):
        assert not {p.stem for p in client} & _imports_of(path), f"{path} imports the ACME client"


def test_constructs_folder_is_not_a_package() -> None:
    assert not (ROOT / "constructs" / "__init__.py").exists()


def test_constructs_module_comes_from_site_packages() -> None:
    code = "import constructs, certfleet; print(constructs.__file__); print(certfleet.__file__)"
    result = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    constructs_file, certfleet_file = result.stdout.split()
    assert "site-packages" in constructs_file
    assert Path(certfleet_file).resolve().is_relative_to(PACKAGE)


def test_constructs_certfleet_is_not_a_second_copy() -> None:
    """With the project root on sys.path, jsii's constructs would expose constructs.certfleet: cdk.json uses -P."""
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    assert cdk_json["app"].startswith("python -P ") or " -P " in cdk_json["app"]


def test_no_tracked_file_contains_a_private_key() -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    offenders = []
    for name in filter(None, listed.split(b"\0")):
        path = ROOT / name.decode()
        if path.is_file() and PRIVATE_KEY.search(path.read_bytes()):
            offenders.append(str(path))
    assert offenders == []


def test_gitignore_keeps_build_output_and_demo_material_out() -> None:
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in ("cdk.out/", ".venv/", "node_modules/", "demo/"):
        assert entry in ignored


def test_the_leak_scanner_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scans in this suite (logs, cdk.out, CLI output) can fail: each kind of leak is found."""
    from certfleet.material.demo import DemoPKI
    from certfleet.testing.leaks import find_leaks, scan_tree

    leaf = DemoPKI.create("ec-p256", label="leaks").leaf(key_type="ec-p256")
    pem = leaf.key_pem()
    assert find_leaks(pem) == ["a PEM private key block"]
    assert find_leaks(json.dumps({"k": pem.decode()}), leaf.key) == ["a PEM private key block",
                                                                     "a fragment of the private key"]
    body = b"".join(pem.splitlines()[1:-1])
    assert find_leaks(b"x" + body + b"x", leaf.key) == ["a fragment of the private key"]
    assert find_leaks(b"-----BEGIN PRIVATE KEY-----") == []
    assert find_leaks(b'{"label": "PRIVATE KEY"}', label_only_ok=False) == ["the words PRIVATE KEY"]
    (tmp_path / "template.json").write_text('{"Key": "PRIVATE KEY"}')
    (tmp_path / "handler.py").write_text('HEADER = "-----BEGIN PRIVATE KEY-----"')
    assert list(scan_tree(tmp_path)) == [str(tmp_path / "template.json")]
