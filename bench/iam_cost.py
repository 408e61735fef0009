"""What IAM enforcement costs a rehearsal: one fleet (sealed key, edge + N regions) deployed, renewed and destroyed
against moto_server + StrictAWS, with the rehearsal's roles unregistered (``iam=False``) and then enforced through
``@cloud-copilot/iam-simulate`` (tests/iam). It prints the wall time of each, the evaluator's own time and the number
of IAM checks.

    .venv/bin/python bench/iam_cost.py                 # edge + 2 regions
    .venv/bin/python bench/iam_cost.py --regions 4
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # before jsii starts

import boto3
from aws_cdk import App

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "iam"), str(ROOT / "tests" / "e2e")]

from iam_support import SessionAuthorizer  # noqa: E402 - tests/iam on sys.path
from sealing_support import OFFLINE_AWS_ENV, seal_with_kms  # noqa: E402 - tests/e2e on sys.path: the test's setup

from certfleet import CertificateBundle, CertificateFleet, KeySource  # noqa: E402
from certfleet.material.demo import DemoPKI, Issued  # noqa: E402
from certfleet.testing import MotoServer, StrictAWS  # noqa: E402
from certfleet.testing.rehearsal import Rehearsal  # noqa: E402

ACCOUNT, HOME = "123456789012", "us-east-1"
ALL_REGIONS = ["eu-west-1", "ap-northeast-1", "us-west-2", "eu-central-1", "sa-east-1"]


def _synth(out: Path, pki: DemoPKI, leaf: Issued, sealed: Path, regions: list[str]) -> Path:
    app = App(outdir=str(out))
    CertificateFleet(app, "Certificates", bundle=CertificateBundle.from_pem(leaf.pem().decode(),
                                                                            pki.chain_pem().decode()),
                     key=KeySource.sealed(sealed), account=ACCOUNT, regions=regions)
    app.synth()
    return out


def run(moto: MotoServer, versions: list[Path], *, enforce: bool) -> tuple[float, SessionAuthorizer]:
    """Seconds to deploy, renew and destroy the fleet, and the authorizer that judged it; the retained key secrets
    are then deleted, so that the next run starts from the same state."""
    judge = SessionAuthorizer()
    with StrictAWS(moto.url, import_rate=None, authorizer=judge) as aws:
        started = time.perf_counter()  # the evaluator starts at its first check, inside the timing, as in a test
        rehearsal = Rehearsal(aws.url, iam=enforce, environment={"CERTFLEET_SECRET_WAIT_SECONDS": "30"})
        for version in versions:
            rehearsal.deploy(version)
        rehearsal.destroy()
        elapsed = time.perf_counter() - started
    judge.close()
    sm = boto3.client("secretsmanager", endpoint_url=moto.url, region_name=HOME)
    for secret in sm.list_secrets()["SecretList"]:
        if secret["Name"].startswith("certfleet/"):
            replicas = [r["Region"] for r in sm.describe_secret(SecretId=secret["ARN"]).get("ReplicationStatus") or []]
            if replicas:
                sm.remove_regions_from_replication(SecretId=secret["ARN"], RemoveReplicaRegions=replicas)
            sm.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
    return elapsed, judge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regions", type=int, default=2, help="regional copies besides us-east-1 (default 2)")
    args = parser.parse_args()
    os.environ.update({**OFFLINE_AWS_ENV, "AWS_DEFAULT_REGION": HOME})
    regions = ALL_REGIONS[: max(1, min(args.regions, len(ALL_REGIONS)))]
    pki = DemoPKI.create("rsa-2048", label="bench iam")
    with MotoServer() as moto, tempfile.TemporaryDirectory() as tmp:
        versions = []
        for days in (100, 200):  # the first deploy, then a renewal (a new leaf and key)
            folder = Path(tmp) / f"v{days}"
            folder.mkdir()
            leaf = pki.leaf(("www.example.com",), days=days)
            kms = boto3.client("kms", endpoint_url=moto.url, region_name=HOME)
            sealed = seal_with_kms(kms, leaf, folder / "www.sealed", why="bench")
            versions.append(_synth(folder / "out", pki, leaf, sealed, regions))
        off, _ = run(moto, versions, enforce=False)
        on, judge = run(moto, versions, enforce=True)
    print(f"fleet: us-east-1 + {', '.join(regions)}; deploy, renew, destroy")
    print(f"IAM not enforced: {off:.2f} s")
    print(f"IAM enforced:     {on:.2f} s  ({len(judge.roles)} roles, {judge.checks} checks, evaluator "
          f"{judge.seconds:.2f} s, {len(judge.denied)} refused)")
    print(f"cost per rehearsal: {on - off:+.2f} s wall, {judge.seconds:.2f} s in the evaluator")


if __name__ == "__main__":
    main()
