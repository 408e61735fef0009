"""Key secrets: valid names for any certificate, and namespaces no other owner's IAM pattern reaches."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack, Stage
from aws_cdk.assertions import Template
from construct_support import ACCOUNT, write_sealed

from certfleet import CertificateBundle, CertificateFleet, FleetGroup, ImportedCertificate, KeySource
from certfleet.material.demo import DemoPKI, Issued

SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,256}")
"""Secrets Manager's rule (CreateSecret allows 512; the other calls' SecretNameType 256)."""
REGIONS = ["eu-west-1"]


@pytest.fixture(scope="module")
def wildcard(pki: DemoPKI) -> Issued:
    """The commonest certificate people buy: a wildcard first, the apex second."""
    return pki.leaf(("*.example.com", "example.com"))


@pytest.fixture(scope="module")
def wildcard_bundle(wildcard: Issued, pki: DemoPKI) -> CertificateBundle:
    return CertificateBundle.from_pem(wildcard.pem().decode(), pki.chain_pem().decode())


@pytest.fixture(scope="module")
def wildcard_sealed(tmp_path_factory: pytest.TempPathFactory, wildcard: Issued) -> Path:
    return write_sealed(tmp_path_factory.mktemp("wildcard") / "wildcard.sealed", wildcard, "wildcard.example.com")


def _stacks(scope: Stage) -> list[Stack]:
    return [c for c in scope.node.find_all() if isinstance(c, Stack)]


def _resolve(value: Any, stack: Stack) -> str | None:
    """A policy resource as a plain string: pseudo parameters filled in; None for a reference to one resource."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, items = value["Fn::Join"]
        parts = [_resolve(item, stack) for item in items]
        return None if any(p is None for p in parts) else separator.join(p or "" for p in parts)
    pseudo = {"AWS::Partition": "aws", "AWS::Region": stack.region, "AWS::AccountId": stack.account}
    if isinstance(value, dict) and value.get("Ref") in pseudo:
        return pseudo[value["Ref"]]
    return None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def secret_patterns(stacks: list[Stack]) -> list[str]:
    """Every IAM pattern of these stacks' policies that names Secrets Manager secrets: statement resources, and
    the ``kms:EncryptionContext:SecretARN`` values that decide which secrets' data keys a role may decrypt."""
    found = []
    for stack in stacks:
        for policy in Template.from_stack(stack).find_resources("AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                values = [r for r in _listed(statement.get("Resource")) if "secretsmanager" in str(r)]
                for condition in (statement.get("Condition") or {}).values():
                    values += _listed(condition.get("kms:EncryptionContext:SecretARN", []))
                found += [p for p in (_resolve(v, stack) for v in values) if p is not None]
    return found


def secret_arns(stacks: list[Stack]) -> list[str]:
    """The ARN of every secret these stacks create, in its region and in each replica region."""
    arns = []
    for stack in stacks:
        for secret in Template.from_stack(stack).find_resources("AWS::SecretsManager::Secret").values():
            props = secret["Properties"]
            regions = [stack.region] + [r["Region"] for r in props.get("ReplicaRegions", [])]
            arns += [f"arn:aws:secretsmanager:{r}:{stack.account}:secret:{props['Name']}-AbCdEf" for r in regions]
    return arns


def secret_names(stacks: list[Stack]) -> list[str]:
    return [s["Properties"]["Name"] for stack in stacks
            for s in Template.from_stack(stack).find_resources("AWS::SecretsManager::Secret").values()]


def iam_matches(pattern: str, arn: str) -> bool:
    """IAM's wildcard semantics for ARNs: ``*`` any characters, ``?`` exactly one, everything else literal."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, arn, re.DOTALL) is not None


def test_iam_matches_follows_iam_wildcards() -> None:
    assert iam_matches("a/*", "a/b/c") and iam_matches("a-??????", "a-AbCdEf")
    assert not iam_matches("a-??????", "ab-AbCdEf") and not iam_matches("a/[b]", "a/b")


def _fleet_app(bundle: CertificateBundle, sealed: Path) -> App:
    app = App()
    CertificateFleet(app, "Certificates", bundle=bundle, key=KeySource.sealed(sealed), account=ACCOUNT,
                     regions=REGIONS)
    return app


def _group_app(bundle: CertificateBundle, sealed: Path) -> App:
    app = App()
    group = FleetGroup(app, "Certificates", account=ACCOUNT, regions=REGIONS, stack_name_prefix="CertGroup")
    group.add_fleet("Www", bundle=bundle, key=KeySource.sealed(sealed))
    return app


def test_a_wildcard_first_certificate_gets_valid_secret_names(
    wildcard_bundle: CertificateBundle, wildcard_sealed: Path,
) -> None:
    """GIVEN a certificate whose first name is *.example.com, in a fleet and in a FleetGroup THEN every secret name
    is one Secrets Manager accepts, never ends like an ARN suffix, and is what the importers read."""
    assert wildcard_bundle.primary_name == "*.example.com"
    for app in (_fleet_app(wildcard_bundle, wildcard_sealed), _group_app(wildcard_bundle, wildcard_sealed)):
        stacks = _stacks(app)
        names = secret_names(stacks)
        assert len(names) == 1
        (name,) = names
        assert SECRET_NAME.fullmatch(name), name
        assert not re.search(r"-.{6}$", name), name
        read = [c["Properties"]["KeySecretId"] for stack in stacks for c in
                Template.from_stack(stack).find_resources("Custom::CertfleetCertificate").values()]
        assert name in read, "the replica region reads the secret by this name"


def test_a_wildcard_fleet_reads_its_own_secret_without_a_wildcard(
    wildcard_bundle: CertificateBundle, wildcard_sealed: Path,
) -> None:
    """The replica regions' importers get ``<name>-??????``: with a '*' in the name that pattern matched any
    sibling secret of the fleet (certfleet/<fleet>/x.example.com)."""
    stacks = _stacks(_fleet_app(wildcard_bundle, wildcard_sealed))
    patterns = secret_patterns(stacks)
    assert patterns
    (own,) = secret_arns(stacks)[1:]  # the eu-west-1 replica
    assert any(iam_matches(p, own) for p in patterns)
    assert all("*" not in p for p in patterns), patterns


def _owners(bundle: CertificateBundle, sealed: Path) -> dict[str, list[Stack]]:
    """Owners of key secrets in one account, each in its own app (as two teams' apps would be)."""
    fleet = _fleet_app(bundle, sealed)
    group = _group_app(bundle, sealed)
    second = App()
    CertificateFleet(second, "Certificates", bundle=bundle, key=KeySource.sealed(sealed), account=ACCOUNT,
                     regions=REGIONS, stack_name_prefix="Other")
    single = App()
    ImportedCertificate(Stack(single, "Certificates", env=Environment(account=ACCOUNT, region="us-east-1")), "Cert",
                        bundle=bundle, key=KeySource.sealed(sealed))
    staged = App()
    FleetGroup(Stage(staged, "Prod"), "Certs", account=ACCOUNT, regions=REGIONS).add_fleet(
        "Www", bundle=bundle, key=KeySource.sealed(sealed))
    plain = App()
    CertificateFleet(plain, "Prod-Certs", bundle=bundle, key=KeySource.sealed(sealed), account=ACCOUNT,
                     regions=REGIONS, stack_name_prefix="ProdFleet")
    return {name: _stacks(app) for name, app in {
        "fleet Certificates": fleet, "group Certificates": group, "fleet Certificates (second app)": second,
        "ImportedCertificate in stack Certificates": single, "group Certs in stage Prod": staged,
        "fleet Prod-Certs": plain,
    }.items()}


def test_no_owner_can_reach_another_owners_key(bundle: CertificateBundle, sealed_path: Path) -> None:
    """GIVEN a FleetGroup and a standalone fleet with the same id, two apps with the same fleet id, a single
    ImportedCertificate in a stack named like a fleet, a group in a stage and a fleet named like the stage's group
    THEN no owner's IAM pattern (read, write, decrypt) matches another owner's secret, in any region."""
    owners = _owners(bundle, sealed_path)
    leaks = [(who, pattern, arn)
             for who, stacks in owners.items() for pattern in secret_patterns(stacks)
             for other, theirs in owners.items() if other != who
             for arn in secret_arns(theirs) if iam_matches(pattern, arn)]
    assert leaks == []


def test_no_two_owners_share_a_secret_name(bundle: CertificateBundle, sealed_path: Path) -> None:
    """The same owners: each secret (and its replicas) has a name of its own, so no deploy fails on a name taken by
    another app and no replica lands on another owner's secret."""
    owners = _owners(bundle, sealed_path)
    names = [n for stacks in owners.values() for n in secret_names(stacks)]
    assert len(names) == len(owners)
    assert sorted(set(names)) == sorted(names), names


def test_the_group_pattern_covers_exactly_its_own_fleets(bundle: CertificateBundle, sealed_path: Path) -> None:
    owners = _owners(bundle, sealed_path)
    stacks = owners["group Certificates"]
    own = secret_arns(stacks)
    patterns = secret_patterns(stacks)
    assert own and all(any(iam_matches(p, arn) for p in patterns) for arn in own)


@pytest.mark.parametrize(("build", "message"), [
    (lambda app, b, k: CertificateFleet(app, "Certificates", bundle=b, key=k, account=ACCOUNT,
                                        fleet_name="Certs/Www"), r"fleet_name 'Certs/Www' must be"),
    (lambda app, b, k: CertificateFleet(app, "Certificates", bundle=b, key=k, account=ACCOUNT, fleet_name="*"),
     r"fleet_name '\*' must be"),
    (lambda app, b, k: FleetGroup(app, "Certs", account=ACCOUNT).add_fleet("Www*", bundle=b, key=k),
     r"Certs/Www\*: fleet id 'Www\*' must be"),
    (lambda app, b, k: FleetGroup(app, "C?", account=ACCOUNT, stack_name_prefix="C"),
     r"FleetGroup name 'C\?' must be"),
])
def test_names_that_iam_would_read_as_patterns_are_refused(
    bundle: CertificateBundle, sealed_path: Path, build: Callable[[App, CertificateBundle, KeySource], object],
    message: str,
) -> None:
    """The fleet name is the certfleet:fleet tag the importers' conditions match (StringLike for a group's
    ``<group>/*``): a '/' would put a standalone fleet inside a group's namespace, a '*' or '?' would widen it."""
    with pytest.raises(ValueError, match=message):
        build(App(), bundle, KeySource.sealed(sealed_path))


def test_a_secret_name_with_a_wildcard_is_refused() -> None:
    with pytest.raises(ValueError, match=r"KeySource.secret: 'production/\*' is not a Secrets Manager secret name"):
        KeySource.secret("production/*")
    with pytest.raises(ValueError, match=r"is not a Secrets Manager secret name"):
        KeySource.secret(f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/?-AbCdEf")


def test_two_sealed_keys_of_one_name_in_a_group_stack_get_their_own_secrets(
    pki: DemoPKI, tmp_path: Path,
) -> None:
    """Two fleets of a group whose keys were sealed under the same name share a stack: each gets its own secret
    (the second used to reuse the first one's, and its importer read another certificate's key)."""
    group = FleetGroup(App(), "Certs", account=ACCOUNT, regions=REGIONS)
    for id in ("A", "B"):
        leaf = pki.leaf((f"{id.lower()}.example.com",))
        bundle = CertificateBundle.from_pem(leaf.pem().decode(), pki.chain_pem().decode())
        group.add_fleet(id, bundle=bundle, key=KeySource.sealed(write_sealed(tmp_path / f"{id}.sealed", leaf)))
    stack = group.stacks[0]
    template = Template.from_stack(stack)
    names = sorted(s["Properties"]["Name"] for s in template.find_resources("AWS::SecretsManager::Secret").values())
    assert len(names) == 2, names
    assert names == ["certfleet/group/Certs/A/us-east-1/a.example.com/key",
                     "certfleet/group/Certs/B/us-east-1/b.example.com/key"]
    read = sorted(c["Properties"]["KeySecretId"]["Ref"] if isinstance(c["Properties"]["KeySecretId"], dict)
                  else c["Properties"]["KeySecretId"]
                  for c in template.find_resources("Custom::CertfleetCertificate").values())
    assert len(set(read)) == 2


def test_two_different_keys_sealed_under_one_name_in_one_stack_are_refused(pki: DemoPKI, tmp_path: Path) -> None:
    """Two ImportedCertificates of one stack whose keys were sealed under the same name would share one secret:
    the second importer would read the first certificate's key (it used to, silently)."""
    stack = Stack(App(), "Web", env=Environment(account=ACCOUNT, region="us-east-1"))
    for id in ("A", "B"):
        leaf = pki.leaf((f"{id.lower()}.example.com",))
        bundle = CertificateBundle.from_pem(leaf.pem().decode(), pki.chain_pem().decode())
        key = KeySource.sealed(write_sealed(tmp_path / f"{id}.sealed", leaf, "shared.example.com"))
        if id == "A":
            ImportedCertificate(stack, id, bundle=bundle, key=key)
            continue
        with pytest.raises(ValueError, match=r"Web/B: two different sealed keys named 'shared.example.com' in stack "
                                             r"Web would share the secret certfleet/cert/Web/shared.example.com/key"):
            ImportedCertificate(stack, id, bundle=bundle, key=key)
