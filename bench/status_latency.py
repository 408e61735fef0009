"""Bench: `certfleet status` when every AWS request costs a round trip, and with 300 certificates in one region.

A local proxy (SlowAWS: StrictAWS in front of moto_server, plus a fixed latency on every request and ACM's
documented request rates, refusing above them with ThrottlingException) stands in for a distant AWS.

1. 17 regions x 3 certificates (RSA 2048, EC P-256, EC P-384): `certfleet status --region x17` against the seed's
   loop (one `aws acm list-certificates` process per region, one after the other, asking for every key type).
2. 300 certificates in one region, 100 of them in use (DescribeCertificate needed): `certfleet status` against what
   ACM's request rates allow (ListTagsForCertificate and DescribeCertificate 10/s, ListCertificates 1/s).

    .venv/bin/python bench/status_latency.py [--latency 0.1] [--runs 3] [--big 300]

Prints medians, the ratios, and the round trips certfleet spent beyond its start-up. A script, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import boto3
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certfleet.material.demo import DemoPKI
from certfleet.testing import MotoServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "ops"))
from ops_support import ACM_READ_RATES, REGIONS_17, SlowAWS  # the tests' proxy: one implementation

KEY_TYPES = ("RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1")
BIN = Path(sys.executable).parent
BIG_REGION, EMPTY_REGION = "eu-central-2", "eu-south-2"


def seed(url: str, regions: tuple[str, ...], per_region: int, *, in_use: int = 0, aws: SlowAWS | None = None) -> int:
    """``per_region`` certificates in each region, RSA 2048, EC P-256 and EC P-384 in turn; the first ``in_use``
    of each region marked in use by a load balancer."""
    kinds = [(DemoPKI.create("rsa-2048", "bench rsa"), rsa.generate_private_key(65537, 2048), "rsa-2048"),
             (DemoPKI.create("ec-p256", "bench ec"), ec.generate_private_key(ec.SECP256R1()), "ec-p256"),
             (DemoPKI.create("ec-p256", "bench ec384"), ec.generate_private_key(ec.SECP384R1()), "ec-p384")]
    count = 0
    for i, region in enumerate(regions):
        acm = boto3.client("acm", endpoint_url=url, region_name=region)
        for n in range(per_region):
            pki, key, _kind = kinds[n % 3]
            leaf = pki.leaf((f"app{n}.r{i}.example.com",), key=key, days=10 + 7 * ((i * per_region + n) % 40))
            arn = acm.import_certificate(Certificate=leaf.pem(), PrivateKey=leaf.key_pem(),
                                         CertificateChain=pki.chain_pem())["CertificateArn"]
            if aws is not None and n < in_use:
                aws.mark_in_use(arn, f"arn:aws:elasticloadbalancing:{region}:123456789012:loadbalancer/app/b/{n}")
            count += 1
    return count


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} exited {result.returncode}: {result.stderr[-2000:]}")
    return elapsed, result.stdout


def seed_loop(url: str, env: dict[str, str], regions: tuple[str, ...]) -> tuple[float, int]:
    """The seed's loop: one `aws acm list-certificates` process per region, one after the other (every key type)."""
    started = time.perf_counter()
    found = 0
    for region in regions:
        _elapsed, stdout = timed([str(BIN / "aws"), "acm", "list-certificates", "--region", region, "--endpoint-url",
                                  url, "--output", "json", "--includes", f"keyTypes={','.join(KEY_TYPES)}"], env)
        found += len(json.loads(stdout)["CertificateSummaryList"])
    return time.perf_counter() - started, found


def certfleet_status(url: str, env: dict[str, str], regions: tuple[str, ...]) -> tuple[float, int]:
    args = [a for r in regions for a in ("--region", r)]
    elapsed, stdout = timed([str(BIN / "certfleet"), "status", "--endpoint-url", url, *args, "--json"], env)
    return elapsed, len(json.loads(stdout)["certificates"])


def median_of(runs: int, what: Callable[..., tuple[float, int]], *args: object) -> tuple[float, list[float], int]:
    times, found = [], 0
    for _ in range(runs):
        elapsed, found = what(*args)
        times.append(elapsed)
        time.sleep(1.1)  # ListCertificates: once a second per region, also between runs
    return statistics.median(times), times, found


def spanned(aws: SlowAWS, env: dict[str, str], runs: int) -> tuple[float, list[float]]:
    """Median wall time of ``runs`` runs of status over the 17 regions, and every region's span at the proxy."""
    times: list[float] = []
    spans: list[float] = []
    for _ in range(runs):
        aws.forget_peaks()
        elapsed, found = certfleet_status(aws.url, env, REGIONS_17)
        assert found == 3 * len(REGIONS_17), found
        times.append(elapsed)
        spans.extend(aws.span(r) for r in REGIONS_17)
        time.sleep(1.1)
    return statistics.median(times), spans


def fmt(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every request (default 0.1)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each in scenario 1; median reported (3)")
    parser.add_argument("--big", type=int, default=300, help="certificates in one region, scenario 2 (300; 0 skips it)")
    args = parser.parse_args()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_MAX_ATTEMPTS"):
        env.pop(name, None)
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")})
    latency = args.latency
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
          f"{latency * 1000:.0f} ms added to every request; ACM rates enforced: {ACM_READ_RATES}")
    with MotoServer() as moto, contextlib.ExitStack() as stack:
        aws = SlowAWS(moto.url, import_rate=None)
        stack.enter_context(aws)
        total = seed(aws.url, REGIONS_17, 3)
        big = seed(aws.url, (BIG_REGION,), args.big, in_use=args.big // 3, aws=aws) if args.big else 0
        aws.rates = dict(ACM_READ_RATES)
        # start-up: the same commands with no latency (process, imports, clients, moto's own work)
        certfleet_status(aws.url, env, REGIONS_17)  # warm-up: moto builds each region's backend on first use
        time.sleep(1.1)
        startup_one, _t, _n = median_of(args.runs, certfleet_status, aws.url, env, (EMPTY_REGION,))
        startup_17, spans_0 = spanned(aws, env, args.runs)
        aws.latency = latency
        aws.forget_peaks()
        loop, loops, found_loop = median_of(args.runs, seed_loop, aws.url, env, REGIONS_17)
        status, spans = spanned(aws, env, args.runs)
        assert found_loop == total, (found_loop, total)
        throttled_1 = sum(aws.throttled.values())  # of the last run
        print(f"\n1. {total} certificates: 3 in each of {len(REGIONS_17)} regions (RSA 2048, EC P-256, EC P-384)")
        print(f"   seed loop, 17 x `aws acm list-certificates` (sequential): median {loop:6.2f} s  "
              f"(runs: {fmt(loops)})")
        print(f"   certfleet status --region x17:                           median {status:6.2f} s")
        print(f"   ratio: certfleet status is {loop / status:.1f}x faster than the loop")
        median_span, median_span_0 = statistics.median(spans), statistics.median(spans_0)
        print(f"   a region's time at the proxy (first request to last answer; median of regions and runs): "
              f"{median_span:.2f} s, {median_span_0:.2f} s with no latency (moto answering one request at a time); "
              f"the latency's share: {(median_span - median_span_0) / latency:.1f} round trips of "
              f"{latency * 1000:.0f} ms (the limit: 2, a listing then one wave of reads); slowest region "
              f"{max(spans):.2f} s")
        print(f"   start-up (the same command with no latency): {startup_17:.2f} s; so status = start-up + "
              f"{status - startup_17:+.2f} s; throttled requests in the last run: {throttled_1}")

        if not args.big:
            return
        aws.latency = 0.0
        zero_big, _t, found = median_of(1, certfleet_status, aws.url, env, (BIG_REGION,))
        assert found == big, (found, big)
        aws.latency = latency
        loop_big, _t, _n = median_of(1, seed_loop, aws.url, env, (BIG_REGION,))
        aws.forget_peaks()
        status_big, _t, found = median_of(1, certfleet_status, aws.url, env, (BIG_REGION,))
        span_big = aws.span(BIG_REGION)
        assert found == big, (found, big)
        described = args.big // 3
        paced = max((math.ceil(n / ACM_READ_RATES[op]) - 1) * 1.0
                    for op, n in (("ListTagsForCertificate", big), ("DescribeCertificate", described)))
        allowed = startup_one + latency + paced + latency
        allowed_span = latency + paced + latency
        print(f"\n2. {big} certificates in {BIG_REGION}, {described} in use (DescribeCertificate for those only)")
        print(f"   certfleet status --region {BIG_REGION}: {status_big:.2f} s ({zero_big:.2f} s with no latency); "
              f"seed loop (1 list, no tags, no users): {loop_big:.2f} s")
        print(f"   what ACM's rates allow: start-up {startup_one:.2f} s + list {latency:.2f} s + {big} tag reads "
              f"at 10/s ({paced:.0f} s after the first wave) + last wave {latency:.2f} s = {allowed:.2f} s")
        print(f"   ratio to that: {status_big / allowed:.2f}x; at the proxy, first request to last answer "
              f"{span_big:.2f} s against {allowed_span:.2f} s: {span_big / allowed_span:.2f}x; peak reads in flight "
              f"{aws.peak_in_flight[BIG_REGION]}; throttled requests: {sum(aws.throttled.values())}")


if __name__ == "__main__":
    main()
