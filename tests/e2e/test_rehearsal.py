"""The demo environment's assembly, played against moto_server + StrictAWS: create, renew, upgrade, destroy."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
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


def test_create_renew_upgrade_destroy(world: World) -> None:
    """GIVEN the demo environment (fleet in 4 regions + 8 architectures) sealed with moto's KMS
    WHEN it is deployed, renewed, upgraded to EC P-256 and destroyed
    THEN ACM holds exactly one certificate per region throughout, renewal keeps every ARN and moves NotAfter,
    the upgrade replaces every ARN without orphans, and destroy empties ACM."""
    rsa_pki = DemoPKI.create("rsa-2048", label="e2e")
    first = rsa_pki.leaf(NAMES, days=200)
    rehearsal = Rehearsal(world.aws.url, environment={"CERTFLEET_SECRET_WAIT_SECONDS": "30"})

    rehearsal.deploy(_synth(_material(world, "first", first, rsa_pki)))
    created = _by_region(rehearsal)
    assert {r: len(rows) for r, rows in created.items()} == dict.fromkeys(FLEET_REGIONS, 1)
    for region, (cert,) in created.items():
        assert set(cert["names"]) == set(NAMES), region
        assert cert["key_algorithm"] == "RSA_2048"
        assert cert["tags"]["certfleet:managed-by"] == "certfleet"
        assert cert["tags"]["certfleet:fleet"] == "Certificates"
        assert _cli_arns(world, region) == {cert["arn"]}, "the real AWS CLI sees the same"
    arns = {r: rows[0]["arn"] for r, rows in created.items()}
    imports_before = world.aws.calls("acm", "ImportCertificate")

    renewed = issue(NAMES[0], issuer=rsa_pki.intermediate, key=first.key, names=NAMES, days=400)
    rehearsal.deploy(_synth(_material(world, "renewed", renewed, rsa_pki)))
    after_renewal = _by_region(rehearsal)
    assert {r: rows[0]["arn"] for r, rows in after_renewal.items()} == arns
    assert {r: len(rows) for r, rows in after_renewal.items()} == dict.fromkeys(FLEET_REGIONS, 1)
    for region, (cert,) in after_renewal.items():
        old_end = dt.datetime.fromisoformat(created[region][0]["not_after"])
        assert dt.datetime.fromisoformat(cert["not_after"]) - old_end > dt.timedelta(days=150), region
    assert world.aws.calls("acm", "ImportCertificate") - imports_before == len(FLEET_REGIONS)

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

    rehearsal.after_stack = consumers_move_on
    events = rehearsal.deploy(_synth(_material(world, "upgraded", upgraded, ec_pki)))
    rehearsal.after_stack = None
    assert sorted(e.physical_id for e in events if e.action == "retire") == sorted(arns.values()), \
        "each fleet stack's cleanup retires the old certificate its consumers still use, instead of failing"
    sweeps = [e for e in events if e.logical_id.startswith("Sweeper")]
    assert len(sweeps) == 1 and events[-1] is sweeps[0], "the sweeper runs last, after every consumer"
    after_upgrade = _by_region(rehearsal)
    assert {r: len(rows) for r, rows in after_upgrade.items()} == dict.fromkeys(FLEET_REGIONS, 1), \
        "no orphan: the sweeper deleted every retired certificate once released"
    for region, (cert,) in after_upgrade.items():
        assert cert["arn"] != arns[region]
        assert cert["key_algorithm"] == "EC_prime256v1"
        assert _cli_arns(world, region) == {cert["arn"]}

    rehearsal.destroy()
    assert {r: len(rows) for r, rows in _by_region(rehearsal).items()} == dict.fromkeys(FLEET_REGIONS, 0)


def test_a_deploy_with_no_change_imports_nothing(world: World) -> None:
    """GIVEN a deployed fleet WHEN the same assembly is deployed again THEN no custom resource runs."""
    pki = DemoPKI.create("rsa-2048", label="e2e idle")
    leaf = pki.leaf(NAMES, days=100)
    assembly = _synth(_material(world, "idle", leaf, pki))
    rehearsal = Rehearsal(world.aws.url, environment={"CERTFLEET_SECRET_WAIT_SECONDS": "30"})
    rehearsal.deploy(assembly)
    again = world.folder / "idle-again"
    shutil.copytree(assembly, again)
    imports = world.aws.calls("acm", "ImportCertificate")
    assert rehearsal.deploy(again) == []
    assert world.aws.calls("acm", "ImportCertificate") == imports
    rehearsal.destroy()
