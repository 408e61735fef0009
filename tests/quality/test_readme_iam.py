"""The README's IAM table is the synthesized policies: every statement it names exists with exactly the actions it
lists, and every statement certfleet writes with a Sid is named in the README's IAM section."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_secretsmanager as secretsmanager

from certfleet import AcmeAccount, CertificateBundle, CertificateFleet, CertificateSource, FleetGroup, KeySource
from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing.synth import write_synth_only_sealed_key

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
_SID = re.compile(r"`([A-Z][A-Za-z0-9]*(?:<N>[A-Za-z0-9]*)?(?:<Fleet>|<Group>|<Name>)?)`")
_ACTION = re.compile(r"`((?:acm|secretsmanager|kms|lambda|states|route53):[A-Za-z]+)`")


def _iam_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("### The IAM each certfleet role gets, and why")
    return text[start:text.index("\n### ", start + 10)]


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"<(Fleet|Group|Name)>", "[A-Za-z0-9]+", name).replace("<N>", "[0-9]+"))


@pytest.fixture(scope="module")
def statements(tmp_path_factory: pytest.TempPathFactory, pki: DemoPKI, leaf: Issued) -> dict[str, set[str]]:
    """Sid -> actions over the templates of a fleet (sealed key, two regions), a FleetGroup with one fleet and an ACME
    fleet with External Account Binding."""
    folder = tmp_path_factory.mktemp("iam-readme")
    (folder / "cert.pem").write_bytes(leaf.pem())
    (folder / "chain.pem").write_bytes(pki.chain_pem())
    bundle = CertificateBundle.from_files(folder / "cert.pem", chain=folder / "chain.pem")
    sealed = write_synth_only_sealed_key(folder / "www.key.sealed", leaf.key)
    app = App(outdir=str(folder / "out"))
    CertificateFleet(app, "Certificates", bundle=bundle, key=KeySource.sealed(sealed), account=ACCOUNT,
                     regions=["eu-west-1"])
    group = FleetGroup(app, "Group", account=ACCOUNT, regions=["eu-west-1"])
    group.add_fleet("www", bundle=bundle, key=KeySource.sealed(sealed))
    dns = Stack(app, "Dns", env=Environment(account=ACCOUNT, region="us-east-1"))
    zone = route53.HostedZone.from_hosted_zone_attributes(dns, "Zone", hosted_zone_id="Z0EXAMPLE",
                                                          zone_name="example.com")
    eab = secretsmanager.Secret.from_secret_name_v2(dns, "Eab", "acme/eab-hmac")
    CertificateFleet(app, "Acme", account=ACCOUNT, regions=["eu-west-1"], source=CertificateSource.acme(
        directory_url="https://acme.example.net/directory", domains=["www.example.com", "*.example.com"],
        hosted_zone=zone, account=AcmeAccount(contact="mailto:ops@example.com", eab_key_id="kid-1",
                                              eab_hmac_secret=eab)))
    found: dict[str, set[str]] = {}
    for stack in app.synth().stacks:
        for resource in stack.template.get("Resources", {}).values():
            documents: list[Any] = []
            if resource["Type"] == "AWS::IAM::Policy":
                documents.append(resource["Properties"]["PolicyDocument"])
            if resource["Type"] == "AWS::IAM::Role":
                documents += [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
            for document in documents:
                for statement in document["Statement"]:
                    if "Sid" in statement:
                        actions = statement["Action"]
                        found.setdefault(statement["Sid"], set()).update(
                            [actions] if isinstance(actions, str) else actions)
    return found


def test_every_statement_the_table_names_has_exactly_its_actions(statements: dict[str, set[str]]) -> None:
    rows = [line for line in _iam_section().splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    checked = 0
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        names = _SID.findall(cells[0])
        listed = set(_ACTION.findall(cells[1])) if len(cells) > 1 else set()
        if not names or not listed:
            continue
        patterns = [_pattern(n) for n in names]
        matching = {sid for sid in statements if any(p.fullmatch(sid) for p in patterns)}
        assert matching, f"README names {names}, which no synthesized statement has"
        granted = set().union(*(statements[sid] for sid in matching))
        assert granted == listed, f"{names}: README lists {sorted(listed)}, the templates grant {sorted(granted)}"
        checked += 1
    assert checked >= 10, f"only {checked} rows of the README's IAM table name a statement"


def test_every_statement_certfleet_writes_is_named_in_the_readme(statements: dict[str, set[str]]) -> None:
    patterns = [_pattern(n) for n in _SID.findall(_iam_section())]
    unnamed = sorted(sid for sid in statements if not any(p.fullmatch(sid) for p in patterns))
    assert unnamed == [], f"statements the README's IAM section does not name: {unnamed}"
