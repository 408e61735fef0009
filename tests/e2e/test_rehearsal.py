"""The demo environment's assembly, played against moto_server + StrictAWS: create, renew, upgrade, destroy.

One module-scoped deployment (``story``) carries the phases, one test each, in file order. A phase that passes
records itself; a phase whose predecessor did not pass skips, naming it, so a failed create shows as one failure and
the later phases as skips that say why, instead of one test that stops at its first assert."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk import App

from certfleet.material.demo import DemoPKI, Issued, issue
from certfleet.material.keys import private_pem, write_secret_file
from certfleet.reference import build
from certfleet.testing import MotoServer, StrictAWS
from certfleet.testing.rehearsal import Rehearsal, StackArtifact

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("www.example.com", "example.com", "*.example.com")
FLEET_REGIONS = ["ap-northeast-1", "eu-west-1", "us-east-1", "us-west-2"]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow  # one demo-environment deployment, played phase by phase: minutes


@dataclass
class World:
    aws: StrictAWS
    folder: Path
    kms_key: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    moto = MotoServer.shared()
    moto.reset()
    with StrictAWS(moto.url) as aws:
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
               "CERTFLEET_SECRET_WAIT_SECONDS": "30"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        kms = boto3.client("kms", endpoint_url=aws.url, region_name="us-east-1")
        key = kms.create_key(Description="certfleet sealing (e2e)")["KeyMetadata"]["Arn"]
        try:
            yield World(aws, tmp_path_factory.mktemp("e2e"), key, env)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _material(world: World, name: str, leaf: Issued, pki: DemoPKI) -> Path:
    """certificate + chain + a key sealed with moto's KMS (through the real CLI), as an app folder."""
    root = world.folder / name
    (root / "demo").mkdir(parents=True)
    (root / "demo" / "certificate.pem").write_bytes(leaf.pem())
    (root / "demo" / "chain.pem").write_bytes(pki.chain_pem())
    write_secret_file(root / "demo" / "private.key", private_pem(leaf.key))
    sealed = subprocess.run(
        [str(BIN / "certfleet"), "seal", "--key", "demo/private.key", "--certificate", "demo/certificate.pem",
         "--chain", "demo/chain.pem", "--kms-key", world.kms_key, "--name", "www.example.com",
         "--out", "demo/private.key.sealed", "--endpoint-url", world.aws.url],
        cwd=root, capture_output=True, text=True, check=False, env={**os.environ, **world.env},
    )
    assert sealed.returncode == 0, sealed.stderr
    assert "PRIVATE KEY" not in sealed.stdout + sealed.stderr
    (root / "demo" / "private.key").chmod(0o600)
    (root / "demo" / "private.key").unlink()
    return root


def _synth(root: Path) -> Path:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(outdir=str(root / "cdk.out"), context={**context, "env": "demo"})
    build(app, root)
    app.synth()
    return root / "cdk.out"


def _by_region(rehearsal: Rehearsal) -> dict[str, list[dict[str, Any]]]:
    return rehearsal.inventory(FLEET_REGIONS)


def _cli_arns(world: World, region: str) -> set[str]:
    listed = subprocess.run(
        [str(BIN / "aws"), "acm", "list-certificates", "--region", region, "--endpoint-url", world.aws.url,
         "--includes", "keyTypes=RSA_2048,EC_prime256v1", "--output", "json"],
        capture_output=True, text=True, check=True, env={**os.environ, **world.env},
    )
    return {c["CertificateArn"] for c in json.loads(listed.stdout)["CertificateSummaryList"]}


@dataclass
class Story:
    """The deployment the phases share, and what each phase left for the next."""

    world: World
    rehearsal: Rehearsal
    rsa_pki: DemoPKI
    passed: list[str] = field(default_factory=list)
    first: Issued | None = None
    assembly: Path | None = None
    created: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)

    def begin(self, phase: str, *, after: str | None = None) -> None:
        """Start ``phase``; skip it unless ``after`` passed, as it builds on that phase's deployment."""
        if after is not None and after not in self.passed:
            pytest.skip(f"phase {phase!r} needs phase {after!r}, which did not pass "
                        f"(passed so far: {', '.join(self.passed) or 'none'}); run the whole module")

    def done(self, phase: str) -> None:
        """Record that ``phase`` passed: the phases after it may run."""
        self.passed.append(phase)


@pytest.fixture(scope="module")
def story(world: World) -> Iterator[Story]:
    """One rehearsal of the demo environment for every phase; ACM and Secrets Manager emptied afterwards."""
    rehearsal = Rehearsal(world.aws.url, environment={"CERTFLEET_SECRET_WAIT_SECONDS": "30"})
    yield Story(world, rehearsal, DemoPKI.create("rsa-2048", label="e2e"))
    MotoServer.shared().reset()


def _one_per_region(rows: dict[str, list[dict[str, Any]]]) -> None:
    assert {r: len(found) for r, found in rows.items()} == dict.fromkeys(FLEET_REGIONS, 1)


def test_create(story: Story) -> None:
    """GIVEN the demo environment (fleet in 4 regions + 8 architectures) sealed with moto's KMS
    WHEN it is deployed THEN each fleet region holds one tagged RSA certificate with every name."""
    story.begin("create")
    story.first = story.rsa_pki.leaf(NAMES, days=200)
    story.assembly = _synth(_material(story.world, "first", story.first, story.rsa_pki))
    story.rehearsal.deploy(story.assembly)
    story.created = _by_region(story.rehearsal)
    _one_per_region(story.created)
    for region, (cert,) in story.created.items():
        assert set(cert["names"]) == set(NAMES), region
        assert cert["key_algorithm"] == "RSA_2048"
        assert cert["tags"]["certfleet:managed-by"] == "certfleet"
        assert cert["tags"]["certfleet:fleet"] == "Certificates"
        assert _cli_arns(story.world, region) == {cert["arn"]}, "the real AWS CLI sees the same"
    story.arns = {r: rows[0]["arn"] for r, rows in story.created.items()}
    story.done("create")


def test_no_change(story: Story) -> None:
    """GIVEN the deployed fleet WHEN the same assembly is deployed again THEN no custom resource runs."""
    story.begin("no-change", after="create")
    assert story.assembly is not None
    again = story.world.folder / "first-again"
    shutil.copytree(story.assembly, again)
    imports = story.world.aws.calls("acm", "ImportCertificate")
    assert story.rehearsal.deploy(again) == []
    assert story.world.aws.calls("acm", "ImportCertificate") == imports
    story.done("no-change")


def test_renewal(story: Story) -> None:
    """GIVEN the deployed fleet WHEN a renewal (same key, later NotAfter) is deployed
    THEN every ARN is kept, NotAfter moves, and each region imports exactly once."""
    story.begin("renewal", after="no-change")
    assert story.first is not None
    imports_before = story.world.aws.calls("acm", "ImportCertificate")
    renewed = issue(NAMES[0], issuer=story.rsa_pki.intermediate, key=story.first.key, names=NAMES, days=400)
    story.rehearsal.deploy(_synth(_material(story.world, "renewed", renewed, story.rsa_pki)))
    after_renewal = _by_region(story.rehearsal)
    _one_per_region(after_renewal)
    assert {r: rows[0]["arn"] for r, rows in after_renewal.items()} == story.arns
    for region, (cert,) in after_renewal.items():
        old_end = dt.datetime.fromisoformat(story.created[region][0]["not_after"])
        assert dt.datetime.fromisoformat(cert["not_after"]) - old_end > dt.timedelta(days=150), region
    assert story.world.aws.calls("acm", "ImportCertificate") - imports_before == len(FLEET_REGIONS)
    story.done("renewal")


def test_key_type_upgrade_retires_and_sweeps(story: Story) -> None:
    """GIVEN the renewed RSA fleet, its certificates in use WHEN an EC P-256 certificate is deployed
    THEN each fleet stack retires its in-use RSA certificate, the sweeper runs last and deletes them once
    released, and every region holds only the new EC certificate under a new ARN."""
    story.begin("upgrade", after="renewal")
    world, arns = story.world, story.arns
    ec_pki = DemoPKI.create("ec-p256", label="e2e ec")
    upgraded = ec_pki.leaf(NAMES, key_type="ec-p256", days=300)
    for arn in arns.values():  # CloudFront, ALBs... use the RSA certificates until their stacks move on
        world.aws.mark_in_use(arn)
    released: list[str] = []

    def consumers_move_on(artifact: StackArtifact) -> None:
        if not artifact.stack_name.startswith("Certificates-") and not released:
            for arn in arns.values():
                world.aws.release(arn)
            released.extend(arns.values())

    story.rehearsal.after_stack = consumers_move_on
    try:
        events = story.rehearsal.deploy(_synth(_material(world, "upgraded", upgraded, ec_pki)))
    finally:
        story.rehearsal.after_stack = None
    assert sorted(e.physical_id for e in events if e.action == "retire") == sorted(arns.values()), \
        "each fleet stack's cleanup retires the old certificate its consumers still use, instead of failing"
    sweeps = [e for e in events if e.logical_id.startswith("Sweeper")]
    assert len(sweeps) == 1 and events[-1] is sweeps[0], "the sweeper runs last, after every consumer"
    after_upgrade = _by_region(story.rehearsal)
    _one_per_region(after_upgrade)  # no orphan: the sweeper deleted every retired certificate once released
    for region, (cert,) in after_upgrade.items():
        assert cert["arn"] != arns[region]
        assert cert["key_algorithm"] == "EC_prime256v1"
        assert _cli_arns(world, region) == {cert["arn"]}
    story.done("upgrade")


def test_destroy(story: Story) -> None:
    """GIVEN the deployed fleet WHEN it is destroyed THEN ACM holds no certificate in any fleet region."""
    story.begin("destroy", after="create")
    story.rehearsal.destroy()
    assert {r: len(rows) for r, rows in _by_region(story.rehearsal).items()} == dict.fromkeys(FLEET_REGIONS, 0)
    story.done("destroy")
