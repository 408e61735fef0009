"""One contract between constructs and handlers: each resource type, tag key, tag value and ACM key type is spelled
in certfleet._lambda.certfleet_contract only, and the handlers run on that very module."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from certfleet._lambda import certfleet_contract as contract
from certfleet.providers import handler_code_dir

PACKAGE = Path(__file__).resolve().parents[2] / "constructs" / "certfleet"
CONTRACT = PACKAGE / "_lambda" / "certfleet_contract.py"
RESOURCE_TYPES = (contract.CERTIFICATE_TYPE, contract.SWEEPER_TYPE, contract.SEALED_KEY_TYPE, contract.KEY_VERSION_TYPE)
TAG_KEYS = (contract.MANAGED_BY_TAG, contract.FLEET_TAG, contract.ID_TAG, contract.RETIRED_TAG, contract.OWNER_TAG)
SPELLED_ONCE = frozenset({*RESOURCE_TYPES, *TAG_KEYS, *contract.ACM_KEY_TYPES})
"""Flagged wherever a string constant equals one (and, for resource types and tag keys, contains one)."""


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the string constants that document (a module's, class's or function's first statement, or the
    string right after an assignment): prose may name a contract value."""
    found: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for before, statement in zip([None, *body], body, strict=False):
            documents = before is None or isinstance(before, ast.Assign | ast.AnnAssign)
            if documents and isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                found.add(id(statement.value))
    return found


def _managed_by_values(tree: ast.Module) -> list[ast.Constant]:
    """MANAGED_BY ("certfleet") is also the logger's, the CLI's and the distribution's name: it counts as a copy
    where it is a tag value, in a ``{"Key": ..., "Value": "certfleet"}`` or compared with a tag look-up."""
    hits: list[ast.Constant] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "Value" for k in node.keys):
            hits += [v for v in node.values if isinstance(v, ast.Constant) and v.value == contract.MANAGED_BY]
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Call):
            hits += [c for c in node.comparators if isinstance(c, ast.Constant) and c.value == contract.MANAGED_BY]
    return hits


def second_copies(root: Path) -> list[str]:
    """``file:line: value`` of every copy of a contract value in the Python source under ``root``."""
    copies = []
    for path in sorted(root.rglob("*.py")):
        if path.name == CONTRACT.name:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        prose = _docstrings(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in prose:
                continue
            if node.value in SPELLED_ONCE or any(v in node.value for v in (*RESOURCE_TYPES, *TAG_KEYS)):
                copies.append(f"{path.relative_to(root)}:{node.lineno}: {node.value[:60]!r}")
        copies += [f"{path.relative_to(root)}:{n.lineno}: {n.value!r}" for n in _managed_by_values(tree)]
    return copies


def test_certfleet_spells_each_contract_value_once() -> None:
    copies = second_copies(PACKAGE)
    assert not copies, "import these from certfleet._lambda.certfleet_contract instead:\n" + "\n".join(copies)


@pytest.mark.parametrize("copy", [
    'RESOURCE = "Custom::CertfleetSweeper"',
    'CONDITION = {"aws:ResourceTag/certfleet:retired": "false"}',
    'TYPES = ("RSA_2048",)',
    'TAGS = [{"Key": MANAGED_BY_TAG, "Value": "certfleet"}]',
    'MINE = tags.get(MANAGED_BY_TAG) == "certfleet"',
])
def test_a_second_copy_is_found(tmp_path: Path, copy: str) -> None:
    (tmp_path / "module.py").write_text(f'"""Names {contract.FLEET_TAG} in prose: allowed."""\n\n{copy}\n')
    assert len(second_copies(tmp_path)) == 1


def test_prose_and_other_meanings_of_the_word_are_not_copies(tmp_path: Path) -> None:
    (tmp_path / "module.py").write_text(
        '"""The Custom::CertfleetCertificate handler."""\n\nLOG = logging.getLogger("certfleet")\n'
        'X = 1\n"""Tags certfleet:id."""\n',
    )
    assert second_copies(tmp_path) == []


def test_the_asset_ships_the_contract_the_constructs_import() -> None:
    assert (handler_code_dir() / CONTRACT.name).resolve() == Path(contract.__file__).resolve() == CONTRACT


def test_the_handlers_run_on_the_contract_module() -> None:
    """Loaded as Lambda loads them (the asset folder at the top of sys.path), every handler module takes its contract
    names from certfleet_contract, the same file the constructs import, holding the same values."""
    names = ["CERTIFICATE_TYPE", "SWEEPER_TYPE", "SEALED_KEY_TYPE", "KEY_VERSION_TYPE", "FLEET_TAG", "ID_TAG",
             "RETIRED_TAG", "OWNER_TAG", "MANAGED_BY_TAG", "MANAGED_BY", "ACM_KEY_TYPES"]
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import certfleet_contract as c\n"
        "import certfleet_common, certfleet_import, certfleet_keyversion, certfleet_keywriter, certfleet_sweeper\n"
        "mods = [certfleet_common, certfleet_import, certfleet_keyversion, certfleet_keywriter, certfleet_sweeper]\n"
        "shared = {m.__name__: sorted(k for k in vars(c) if k.isupper() and k in vars(m)) for m in mods}\n"
        "same = all(vars(m)[k] is vars(c)[k] for m in mods for k in shared[m.__name__])\n"
        f"print(json.dumps({{'file': c.__file__, 'same': same, 'shared': shared, 'values': {{k: getattr(c, k) "
        f"for k in {names!r}}}}}))\n"
    )
    run = subprocess.run([sys.executable, "-P", "-c", script, str(handler_code_dir())],
                         capture_output=True, text=True, check=True, cwd="/", env={"AWS_DEFAULT_REGION": "eu-west-1"})
    seen = json.loads(run.stdout)
    assert Path(seen["file"]).resolve() == CONTRACT
    assert seen["same"]
    assert seen["values"] == {k: list(v) if isinstance(v, tuple) else v for k in names for v in [getattr(contract, k)]}
    assert "SWEEPER_TYPE" in seen["shared"]["certfleet_import"]
    assert {"FLEET_TAG", "RETIRED_TAG"} <= set(seen["shared"]["certfleet_sweeper"])
    assert "KEY_VERSION_TYPE" in seen["shared"]["certfleet_keywriter"]
    assert "ACM_KEY_TYPES" in seen["shared"]["certfleet_common"]


def test_each_handler_string_names_a_function_of_the_asset() -> None:
    """The handler strings the providers give Lambda (``module.function``, from the contract) exist in the asset,
    and every resource type has one."""
    handlers = {contract.IMPORTER_ON_EVENT, contract.IMPORTER_IS_COMPLETE, contract.KEY_WRITER_ON_EVENT}
    assert set(contract.HANDLED_BY) == set(RESOURCE_TYPES)
    assert set(contract.HANDLED_BY.values()) <= handlers
    for handler in handlers:
        module, function = handler.split(".")
        tree = ast.parse((handler_code_dir() / f"{module}.py").read_text(encoding="utf-8"))
        assert function in {f.name for f in tree.body if isinstance(f, ast.FunctionDef)}, handler
