"""Bench: `certfleet status` over 17 regions against the seed's per-region `aws acm list-certificates` loop.

Both ask the same moto_server (behind StrictAWS, as the tests do), seeded with a few certificates in each of the
17 regions every account has. The seed's loop is the shell loop of its "list certificates expiring soon" step:

    for region in us-east-1 us-east-2 ...; do aws acm list-certificates --region "$region" ...; done

run here as one `aws` subprocess per region, one after the other. `certfleet status` is one process asking every
region in parallel, and does more per certificate (DescribeCertificate, tags) than the loop does.

    .venv/bin/python bench/status_vs_cli_loop.py [--per-region N] [--runs N]

Prints the median of --runs wall times of each, and the ratio. A script, not a test: the figures depend on the
machine (moto_server answers one request at a time, so certfleet's parallelism is measured against its limit).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import boto3
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certfleet.material.demo import DemoPKI
from certfleet.testing import MotoServer, StrictAWS

REGIONS_17 = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ap-south-1",
)
KEY_TYPES = ("RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1")
BIN = Path(sys.executable).parent
TAGS = [{"Key": "certfleet:managed-by", "Value": "certfleet"}, {"Key": "certfleet:fleet", "Value": "Bench"}]


def seed(url: str, per_region: int) -> int:
    """``per_region`` certificates in each region, RSA 2048 and EC P-256 in turn, every other one certfleet's."""
    pkis = (DemoPKI.create("rsa-2048", "bench rsa"), DemoPKI.create("ec-p256", "bench ec"))
    keys = (rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP256R1()))
    count = 0
    for i, region in enumerate(REGIONS_17):
        acm = boto3.client("acm", endpoint_url=url, region_name=region)
        for n in range(per_region):
            pki, key = pkis[(i + n) % 2], keys[(i + n) % 2]
            leaf = pki.leaf((f"app{n}.r{i}.example.com",), key=key, days=10 + 7 * ((i * per_region + n) % 40))
            extra = {"Tags": TAGS} if n % 2 == 0 else {}
            acm.import_certificate(Certificate=leaf.pem(), PrivateKey=leaf.key_pem(), CertificateChain=pki.chain_pem(),
                                   **extra)
            count += 1
    return count


def timed(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode not in ok:
        raise SystemExit(f"{argv[0]} exited {result.returncode}: {result.stderr[-2000:]}")
    return elapsed, result.stdout


def seed_loop(url: str, env: dict[str, str], *, every_key_type: bool = True) -> tuple[float, int]:
    """The seed's loop: one `aws acm list-certificates` process per region, one after the other.

    As the seed writes it, the loop lists only RSA_1024/RSA_2048 certificates (ACM's default); the timed loop asks
    for every key type, so that both sides find the same certificates.
    """
    started = time.perf_counter()
    found = 0
    includes = ["--includes", f"keyTypes={','.join(KEY_TYPES)}"] if every_key_type else []
    for region in REGIONS_17:
        _elapsed, stdout = timed([str(BIN / "aws"), "acm", "list-certificates", "--region", region,
                                  "--endpoint-url", url, "--output", "json", *includes], env)
        found += len(json.loads(stdout)["CertificateSummaryList"])
    return time.perf_counter() - started, found


def certfleet_status(url: str, env: dict[str, str]) -> tuple[float, int]:
    regions = [a for r in REGIONS_17 for a in ("--region", r)]
    elapsed, stdout = timed([str(BIN / "certfleet"), "status", "--endpoint-url", url, *regions, "--json"], env)
    return elapsed, len(json.loads(stdout)["certificates"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-region", type=int, default=3, help="certificates per region (default 3)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each, the median is reported (default 5)")
    args = parser.parse_args()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_ENDPOINT_URL", None)
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")})
    with MotoServer() as moto, StrictAWS(moto.url, import_rate=None) as strict:
        total = seed(strict.url, args.per_region)
        print(f"seeded {total} certificates: {args.per_region} in each of {len(REGIONS_17)} regions "
              f"({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
        # one warm-up of each: moto builds each region's backend on first use, and the OS caches the files
        _elapsed, as_written = seed_loop(strict.url, env, every_key_type=False)
        print(f"the seed's loop as written (no --includes) sees {as_written} of {total} certificates: "
              "ACM lists only RSA_1024/RSA_2048 unless asked; the timed loop below asks for every key type")
        before = strict.call_counts
        certfleet_status(strict.url, env)
        after = strict.call_counts
        loops, statuses, startup = [], [], []
        for _ in range(args.runs):
            elapsed, found = seed_loop(strict.url, env)
            assert found == total, (found, total)
            loops.append(elapsed)
            elapsed, found = certfleet_status(strict.url, env)
            assert found == total, (found, total)
            statuses.append(elapsed)
            startup.append(timed([str(BIN / "certfleet"), "--version"], env)[0])
    loop, status = statistics.median(loops), statistics.median(statuses)
    per_run = {op: sum(n - before.get(c, 0) for c, n in after.items() if c.operation == op)
               for op in ("ListCertificates", "DescribeCertificate", "ListTagsForCertificate")}
    print(f"seed loop, 17 x `aws acm list-certificates` (sequential): median {loop:6.2f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in loops)})")
    print(f"certfleet status --region x17 (one process, parallel):   median {status:6.2f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in statuses)})")
    print(f"ratio: certfleet status is {loop / status:.1f}x faster than the loop")
    aws_start = statistics.median(timed([str(BIN / "aws"), "--version"], env)[0] for _ in range(3))
    print(f"where the time goes: `aws --version` alone {aws_start:.2f} s per process x 17 = {17 * aws_start:.2f} s "
          f"of the loop; `certfleet --version` alone {statistics.median(startup):.2f} s of certfleet's "
          f"{status:.2f} s")
    print(f"requests per certfleet run: {per_run}, {sum(per_run.values())} in all; the loop makes 17 "
          "(ListCertificates only: no users, no tags); moto_server answers one request at a time, so certfleet's "
          "time here is mostly moto's")


if __name__ == "__main__":
    main()
