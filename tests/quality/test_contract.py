"""One contract between constructs and handlers: each resource type, property name, tag key, tag value and ACM key
type is spelled in certfleet._lambda.certfleet_contract only, and the handlers run on that very module."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
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


PROPERTIES = (contract.CertificateProperties, contract.SweeperProperties, contract.SealedKeyProperties,
              contract.KeyVersionProperties, contract.AcmeCertificateProperties, contract.AcmeRenewInput,
              contract.HostedZone)
PROPERTY_NAMES = frozenset(k for p in PROPERTIES for k in p.__required_keys__ | p.__optional_keys__)
PROPERTY_DICTS = frozenset(p.__name__ for p in PROPERTIES)
TYPED_DICTS = PROPERTY_DICTS | {"Tag"}
"""What a property name may be read or written through: mypy checks each key against these (and boto3-stubs'
``...TypeDef`` TypedDicts, which check AWS's own names)."""
AWS_SERVICES = ("acm", "secretsmanager", "kms", "cloudformation", "sts", "route53", "scheduler")
"""The APIs certfleet's code calls: a property name that is also a member of one of their shapes (``Certificate``,
``Tags``, ``SecretId``...) is a copy only where custom-resource properties are built."""
CLOUDFORMATION_NAMES = frozenset({"ServiceToken"})
"""CloudFormation's own custom-resource property: every Custom:: resource has one, certfleet did not name it."""
DATA = "Data"
"""A custom resource's response attributes (``{"Data": {...}}``, read back as ``x.get("Data")``): a namespace of its
own, whose ``Fingerprint`` or ``KeyAlgorithm`` is an attribute, not a property."""


@cache
def aws_member_names() -> frozenset[str]:
    """Every member name of every shape of the AWS_SERVICES botocore models."""
    loader = botocore.session.get_session().get_component("data_loader")
    return frozenset(member for service in AWS_SERVICES
                     for shape in loader.load_service_model(service, "service-2")["shapes"].values()
                     for member in shape.get("members", {}))


def own_property_names() -> frozenset[str]:
    """The property names only certfleet's contract gives a meaning: a copy wherever they are spelled."""
    return PROPERTY_NAMES - aws_member_names() - CLOUDFORMATION_NAMES


def _words(annotation: ast.expr) -> set[str]:
    text = annotation.value if isinstance(annotation, ast.Constant) else ast.unparse(annotation)
    return set(re.findall(r"\w+", str(text)))


def _typed_annotation(annotation: ast.expr | None) -> bool:
    """An annotation that names a TypedDict whose keys mypy checks (the contract's, or a boto3-stubs TypeDef)."""
    return annotation is not None and any(w in TYPED_DICTS or w.endswith("TypeDef") for w in _words(annotation))


def _typed_value(value: ast.expr | None, names: frozenset[str] = TYPED_DICTS) -> bool:
    """A TypedDict (of ``names``) made or cast here: ``CertificateProperties(...)``,
    ``cast("CertificateProperties", ...)``, or either branch of a conditional that is both."""
    if isinstance(value, ast.IfExp):
        return _typed_value(value.body, names) and _typed_value(value.orelse, names)
    if isinstance(value, ast.BoolOp):
        return all(_typed_value(v, names) for v in value.values)
    if not isinstance(value, ast.Call) or not isinstance(value.func, ast.Name):
        return False
    if value.func.id == "cast":
        return bool(value.args) and _typed_annotation(value.args[0]) and bool(_words(value.args[0]) & names)
    return value.func.id in names


def _properties_annotation(annotation: ast.expr | None) -> bool:
    return annotation is not None and bool(_words(annotation) & PROPERTY_DICTS)


def _reads_data(value: ast.expr | None) -> bool:
    """``x.get("Data")``, ``x["Data"]`` (possibly ``or {}``): the response attributes."""
    if isinstance(value, ast.BoolOp):
        return any(_reads_data(v) for v in value.values)
    key = (value.slice if isinstance(value, ast.Subscript) else value.args[0] if isinstance(value, ast.Call)
           and isinstance(value.func, ast.Attribute) and value.func.attr == "get" and value.args else None)
    return isinstance(key, ast.Constant) and key.value == DATA


def _scope_names(scope: ast.AST) -> tuple[set[str], set[Any]]:
    """The names ``scope`` (a function or module, not its nested functions) binds to a TypedDict (those bound to the
    contract's properties also as ``properties:<name>``), and the names it binds to response attributes with the
    ids of its response-attribute dict literals."""
    typed: set[str] = set()
    data: set[Any] = set()
    if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
        arguments = scope.args
        for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
            typed |= {a.arg} if _typed_annotation(a.annotation) else set()
            typed |= {f"properties:{a.arg}"} if _properties_annotation(a.annotation) else set()
    for node in _own_nodes(scope):
        if isinstance(node, ast.Dict):
            data |= {id(v) for k, v in zip(node.keys, node.values, strict=True)
                     if isinstance(k, ast.Constant) and k.value == DATA and isinstance(v, ast.Dict)}
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if _properties_annotation(node.annotation) or _typed_value(node.value, PROPERTY_DICTS):
                typed.add(f"properties:{node.target.id}")
            if _typed_annotation(node.annotation) or _typed_value(node.value):
                typed.add(node.target.id)
            elif _reads_data(node.value):
                data.add(node.target.id)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if _typed_value(node.value):
                typed.add(node.targets[0].id)
            if _typed_value(node.value, PROPERTY_DICTS):
                typed.add(f"properties:{node.targets[0].id}")
            elif _reads_data(node.value):
                data.add(node.targets[0].id)
    return typed, data


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``scope``'s body, not those of the functions and classes nested in it."""
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            todo.extend(ast.iter_child_nodes(node))


def _scopes(tree: ast.Module) -> Iterator[tuple[ast.AST, set[str], set[Any]]]:
    """Each scope with the TypedDict and response-attribute names it sees (its own, and its enclosing scopes')."""
    stack: list[tuple[ast.AST, set[str], set[Any]]] = [(tree, set(), set())]
    while stack:
        scope, typed, data = stack.pop()
        own_typed, own_data = _scope_names(scope)
        typed, data = typed | own_typed, data | own_data
        yield scope, typed, data
        stack += [(n, typed, data) for n in _own_nodes(scope)
                  if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda)]


def _receiver_checked(receiver: ast.expr, typed: set[str], data: set[Any]) -> bool:
    if isinstance(receiver, ast.Name):
        return receiver.id in typed or receiver.id in data
    return _typed_value(receiver) or _reads_data(receiver)


def property_copies(root: Path) -> list[str]:
    """``file:line: name`` of every custom-resource property name spelled outside the contract where no TypedDict
    checks it: a string key, subscript or ``.get()``/``.pop()`` argument naming one of the contract's own property
    names on anything but a TypedDict; a keyword naming one in a call that is not a TypedDict's; any property name
    in a dict literal given as ``properties=``, or in ``add_property_override``/``add_override``."""
    own = own_property_names()
    copies: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if path.name == CONTRACT.name:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(root)
        for scope, typed, data in _scopes(tree):
            for node in _own_nodes(scope):
                line = getattr(node, "lineno", 0)
                copies += [f"{where}:{line}: {name!r}" for name in _copies_at(node, own, typed, data)]
    return sorted(set(copies), key=lambda line: (line.split(":")[0], int(line.split(":")[1])))


def _copies_at(node: ast.AST, own: frozenset[str], typed: set[str], data: set[Any]) -> list[str]:
    def named(key: ast.expr | None, names: frozenset[str]) -> list[str]:
        return [key.value] if isinstance(key, ast.Constant) and key.value in names else []

    found: list[str] = []
    if isinstance(node, ast.Dict) and id(node) not in data:
        found += [n for k in node.keys for n in named(k, own)]
    elif isinstance(node, ast.Subscript) and not _receiver_checked(node.value, typed, data):
        found += named(node.slice, own)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        method = node.func.attr
        first = node.args[0] if node.args else None
        if method in ("get", "pop", "setdefault") and not _receiver_checked(node.func.value, typed, data):
            found += named(first, own)
        elif method == "get" and isinstance(node.func.value, ast.Name) and f"properties:{node.func.value.id}" in typed \
                and isinstance(first, ast.Constant) and first.value not in PROPERTY_NAMES:
            found.append(f"{first.value!s} (no such property: mypy lets .get() through)")
        elif method == "add_property_override":
            found += named(first, PROPERTY_NAMES)
        elif method == "add_override" and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found += [p for p in first.value.split(".")[1:2] if p in PROPERTY_NAMES]
    if isinstance(node, ast.Call) and not _typed_value(node):
        found += [k.arg for k in node.keywords if k.arg in own]
        for keyword in node.keywords:
            if keyword.arg == "properties" and isinstance(keyword.value, ast.Dict):
                found += [n for k in keyword.value.keys for n in named(k, PROPERTY_NAMES)]
    if isinstance(node, ast.AnnAssign | ast.Assign) and _typed_annotation(getattr(node, "annotation", None)) \
            and isinstance(node.value, ast.Dict):
        found = [n for n in found if n not in named_keys(node.value)]
    return found


def named_keys(display: ast.Dict) -> set[str]:
    return {k.value for k in display.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}


NOT_YET_TYPED: frozenset[tuple[str, str]] = frozenset()
"""Copies known and not yet typed (file, name), each to be fixed by its owner: none left."""


def test_each_property_name_is_spelled_by_the_contract_only() -> None:
    copies = [c for c in property_copies(PACKAGE) if (c.split(":")[0], c.split("'")[1]) not in NOT_YET_TYPED]
    assert not copies, (
        "build custom-resource properties with the contract's TypedDicts (CertificateProperties(...)) and read them "
        "through a name annotated with one (props: CertificateProperties = ...):\n" + "\n".join(copies)
    )


def test_each_exception_is_still_needed() -> None:
    """An entry of NOT_YET_TYPED whose copy is gone must go too, so that the list only shrinks."""
    found = {(c.split(":")[0], c.split("'")[1]) for c in property_copies(PACKAGE)}
    assert found >= NOT_YET_TYPED


def test_the_contract_names_its_own_properties_and_shares_the_aws_ones() -> None:
    own = own_property_names()
    assert {"KeySecretId", "KeySecretVersionId", "FleetPrefix", "Generation", "SpkiSha256"} <= own
    assert not {"Certificate", "Tags", "SecretId", "KmsKeyId", "ServiceToken"} & own


@pytest.mark.parametrize(("copy", "names"), [
    ('CustomResource(scope, "R", properties={"Certificate": pem, "KeySecretId": arn})', ["Certificate", "KeySecretId"]),
    ('CustomResource(scope, "R", properties=dict(KeySecretId=arn))', ["KeySecretId"]),
    ('def on_event(event):\n    props = event["ResourceProperties"]\n    return props["KeySecretVersionId"]',
     ["KeySecretVersionId"]),
    ('def sweep(props: dict[str, str]) -> str:\n    return props.get("FleetPrefix", "")', ["FleetPrefix"]),
    ('cfn.add_property_override("Generation", generation)', ["Generation"]),
    ('def read(props: CertificateProperties) -> str:\n    return props.get("KeySecretVersionID") or ""',
     ["KeySecretVersionID (no such property: mypy lets .get() through)"]),
    ('cfn.add_override("Properties.Tags", [])', ["Tags"]),
    ('SEALED = {"Ciphertext": blob, "SpkiSha256": digest}', ["Ciphertext", "SpkiSha256"]),
])
def test_a_property_name_outside_a_typed_dict_is_a_copy(tmp_path: Path, copy: str, names: list[str]) -> None:
    (tmp_path / "module.py").write_text(f'"""Reads KeySecretId in prose: allowed."""\n\n{copy}\n')
    assert sorted(c.split("'")[1] for c in property_copies(tmp_path)) == sorted(names)


def test_typed_reads_aws_names_and_response_attributes_are_not_copies(tmp_path: Path) -> None:
    (tmp_path / "module.py").write_text(
        "def on_event(event: CertificateEvent) -> OnEventResponse:\n"
        '    props: CertificateProperties = event["ResourceProperties"]\n'
        '    old = cast("CertificateProperties", event.get("OldResourceProperties") or {})\n'
        '    made = CertificateProperties(Certificate="", KeyAlgorithm="", Fingerprint="", KeySecretId="")\n'
        '    made["RemovalPolicy"] = "retain"\n'
        '    key = props["KeySecretId"] + old.get("KeySecretVersionId", "") + made["Fingerprint"]\n'
        '    held = acm.describe_certificate(CertificateArn=arn)["Certificate"]["KeyAlgorithm"]\n'
        '    data = event.get("Data") or {}\n'
        '    return {"PhysicalResourceId": key, "Data": {"Fingerprint": held, "DeleteTimeoutSeconds": '
        'data.get("DeleteTimeoutSeconds", "")}}\n',
    )
    assert property_copies(tmp_path) == []


def test_a_construct_that_goes_back_to_a_plain_dict_is_caught(tmp_path: Path) -> None:
    """The real layout.py with its sweeper's properties built as a plain dict again."""
    text = (PACKAGE / "layout.py").read_text(encoding="utf-8")
    typed = "SweeperProperties(Fleet=fleet, Regions=list(regions))"
    assert typed in text
    (tmp_path / "layout.py").write_text(text.replace(typed, '{"Fleet": fleet, "Regions": list(regions)}'))
    # Regions is also CloudFormation's; what is then set on the plain dict is caught too
    assert [c.split("'")[1] for c in property_copies(tmp_path)] == ["Fleet", "Generation", "WaitSeconds"]


def test_mypy_refuses_a_misspelled_property_name(tmp_path: Path) -> None:
    """The TypedDicts are what makes a misspelling fail: mypy --strict on a construct and a handler that each
    misspell one key, next to the same lines spelled right."""
    (tmp_path / CONTRACT.name).write_text(CONTRACT.read_text(encoding="utf-8"))  # as the asset ships it: no package
    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        "from certfleet_contract import CertificateProperties, CustomResourceEvent\n\n\n"
        "def build(pem: str) -> CertificateProperties:\n"
        '    return CertificateProperties(Certificate=pem, KeyAlgorithm="RSA_2048", Fingerprint="f", KeySecretId="k")\n'
        "\n\n"
        "def build_wrong(pem: str) -> CertificateProperties:\n"
        '    return CertificateProperties(Certificate=pem, KeyAlgorithm="RSA_2048", Fingerprint="f", KeySecretID="k")\n'
        "\n\n"
        "def read(event: CustomResourceEvent[CertificateProperties]) -> str:\n"
        '    props = event["ResourceProperties"]\n'
        '    return props["KeySecretId"] + props["KeySecretVersionID"]\n',
    )
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull,
         "--no-error-summary", str(snippet)],
        check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert {e.split(":")[1] for e in errors} == {"9", "14"}, run.stdout + run.stderr  # the lines spelled right pass
    assert any(":9:" in e and 'Extra key "KeySecretID"' in e for e in errors), run.stdout
    assert any(":14:" in e and 'no key "KeySecretVersionID"' in e for e in errors), run.stdout
