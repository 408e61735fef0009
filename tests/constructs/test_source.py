"""A fleet is a certificate source x a layout: CertificateSource, the two layouts, and the modules' shape."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stage
from aws_cdk.assertions import Template
from construct_support import ACCOUNT

from certfleet import CertificateBundle, CertificateFleet, FleetGroup, KeySource
from certfleet.key_source import KeyBinding
from certfleet.source import CertificateSource, ImportedSource

SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:production/ssl/private-key-AbCdEf"
PACKAGE = Path(__file__).resolve().parents[2] / "constructs" / "certfleet"
MINE = ("fleet", "group", "layout", "source", "naming", "imported_certificate", "references", "certificate_bundle")


def _templates(app: Stage, fleet: CertificateFleet) -> dict[str, Any]:
    return {region: Template.from_stack(fleet.stack_for(region)).to_json() for region in fleet.regions}


def test_the_short_form_and_the_imported_source_synthesize_the_same_fleet(bundle: CertificateBundle) -> None:
    short, long = App(), App()
    key = KeySource.secret(SECRET)
    a = CertificateFleet(short, "Certificates", bundle=bundle, key=key, account=ACCOUNT, regions=["eu-west-1"])
    b = CertificateFleet(long, "Certificates", source=CertificateSource.imported(bundle, key), account=ACCOUNT,
                         regions=["eu-west-1"])
    assert isinstance(b.source, ImportedSource) and b.bundle is bundle and b.key is key
    assert _templates(short, a) == _templates(long, b)


def test_a_group_fleet_takes_a_source(bundle: CertificateBundle) -> None:
    group = FleetGroup(App(), "Certs", account=ACCOUNT, regions=["eu-west-1"])
    fleet = group.add_fleet("Www", source=CertificateSource.imported(bundle, KeySource.secret(SECRET)))
    for region in ("us-east-1", "eu-west-1"):
        Template.from_stack(fleet.stack_for(region)).has_resource_properties("Custom::CertfleetCertificate", {
            "Certificate": bundle.certificate_pem, "Group": "Certs", "Names": list(bundle.names),
        })


@pytest.mark.parametrize("given", ["both", "neither", "bundle-only"])
def test_a_fleet_takes_exactly_one_of_source_and_bundle_with_key(bundle: CertificateBundle, given: str) -> None:
    key = KeySource.secret(SECRET)
    choices: dict[str, dict[str, Any]] = {
        "both": {"bundle": bundle, "key": key, "source": CertificateSource.imported(bundle, key)},
        "neither": {},
        "bundle-only": {"bundle": bundle},
    }
    kwargs = choices[given]
    with pytest.raises(ValueError, match=r"Certificates: give bundle= and key= \(or source="):
        CertificateFleet(App(), "Certificates", account=ACCOUNT, **kwargs)


class _Tagged(ImportedSource):
    """A new kind of source: the importer gets one more property, and a generation of its own."""

    def resource_properties(self, binding: KeyBinding) -> dict[str, Any]:
        return {**super().resource_properties(binding), "Issuer": "acme-test"}

    @property
    def generation(self) -> tuple[str, ...]:
        return ("acme-test", *super().generation)


def test_a_new_source_reaches_every_region_and_the_sweeper_without_touching_the_fleet(
    bundle: CertificateBundle,
) -> None:
    fleet = CertificateFleet(App(), "Certificates", source=_Tagged(bundle, KeySource.secret(SECRET)),
                             account=ACCOUNT, regions=["eu-west-1"])
    for region in fleet.regions:
        Template.from_stack(fleet.stack_for(region)).has_resource_properties(
            "Custom::CertfleetCertificate", {"Issuer": "acme-test", "Fingerprint": bundle.fingerprint})
    Template.from_stack(fleet.sweeper_stack).has_resource_properties(
        "Custom::CertfleetSweeper", {"Generation": f"acme-test/{bundle.fingerprint}/{bundle.key_algorithm}"})


def test_layout_settings_belong_to_the_layout(bundle: CertificateBundle) -> None:
    app = App()
    group = FleetGroup(app, "Certs", account=ACCOUNT, regions=["eu-west-1"])
    key = KeySource.secret(SECRET)
    with pytest.raises(ValueError, match=r"fleet_name, stack_name_prefix and termination_protection belong to"):
        CertificateFleet(group, "Www", bundle=bundle, key=key, account=ACCOUNT, layout=group.layout, fleet_name="x")
    with pytest.raises(ValueError, match=r"fleet 'Www' of FleetGroup Certs is made by the group: group.add_fleet"):
        CertificateFleet(app, "Www", bundle=bundle, key=key, account=ACCOUNT, layout=group.layout)


def _imports(module: str) -> set[str]:
    """Every certfleet module ``module`` imports anywhere: top level, TYPE_CHECKING blocks and inside functions."""
    parts = module.split(".")[1:]
    path = PACKAGE.joinpath(*parts).with_suffix(".py") if parts else PACKAGE / "__init__.py"
    if not path.exists():
        path = PACKAGE.joinpath(*parts) / "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("certfleet"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("certfleet"))
    return found


def _modules() -> set[str]:
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_no_import_cycle_among_the_construct_modules() -> None:
    """The construct layer (everything but certfleet.testing, whose helpers are out of this check) has no cycle."""
    modules = {m for m in _modules() if not m.startswith("certfleet.testing")}
    graph = {m: {i for i in _imports(m) if i in modules and i != m} for m in modules}
    cycles: list[str] = []
    for start in sorted(modules):
        seen: set[str] = set()
        todo: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
        while todo:
            node, trail = todo.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycles.append(" -> ".join((*trail, start)))
                elif nxt not in seen:
                    seen.add(nxt)
                    todo.append((nxt, (*trail, nxt)))
    assert cycles == []


@pytest.mark.parametrize("module", MINE)
def test_fleet_modules_stay_under_500_lines(module: str) -> None:
    assert len((PACKAGE / f"{module}.py").read_text().splitlines()) < 500
