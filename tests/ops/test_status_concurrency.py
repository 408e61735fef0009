"""`certfleet status` at many certificates per region: reads overlap, stay bounded, keep ACM's rates, survive
throttling; progress on a terminal only. Against moto_server behind SlowAWS (StrictAWS + latency + rates)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from material_support import cli
from ops_support import SlowAWS

from certfleet.cli import status
from certfleet.cli.acm_pacing import Pacer
from certfleet.cli.status import READS_PER_REGION
from certfleet.material.demo import DemoPKI
from certfleet.testing import MotoServer

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))
BIG, SMALL = "eu-west-2", ("us-west-2", "ap-south-1")
BIG_COUNT, BIG_IN_USE = 40, 10


@dataclass
class Fleet:
    aws: SlowAWS
    domains: set[str]

    def run(self, capsys: pytest.CaptureFixture[str], *argv: str) -> object:
        regions = [a for r in (BIG, *SMALL) for a in ("--region", r)]
        return cli(capsys, "status", "--endpoint-url", self.aws.url, *regions, "--json", *argv)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """40 certificates in one region (10 in use: DescribeCertificate needed), 3 in each of two others."""
    moto = MotoServer.shared()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true"}
    aws = SlowAWS(moto.url, import_rate=None)
    with pytest.MonkeyPatch.context() as patch, aws:
        for name, value in env.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_MAX_ATTEMPTS"):
            patch.delenv(name, raising=False)
        moto.reset()
        pki, key = DemoPKI.create("ec-p256", "concurrency ec"), ec.generate_private_key(ec.SECP256R1())
        domains: set[str] = set()
        for region, count in ((BIG, BIG_COUNT), *((r, 3) for r in SMALL)):
            acm = boto3.client("acm", endpoint_url=aws.url, region_name=region)
            for n in range(count):
                name = f"c{n}.{region}.example.com"
                leaf = pki.leaf((name,), key=key, days=30 + n)
                arn = acm.import_certificate(Certificate=leaf.pem(), PrivateKey=leaf.key_pem(),
                                             CertificateChain=pki.chain_pem())["CertificateArn"]
                if region == BIG and n < BIG_IN_USE:
                    aws.mark_in_use(arn, f"arn:aws:elasticloadbalancing:{region}:123456789012:loadbalancer/app/a/{n}")
                domains.add(name)
        yield Fleet(aws, domains)
        moto.reset()


@pytest.fixture
def slow(fleet: Fleet) -> Iterator[Fleet]:
    """The fleet with the proxy's knobs put back after each test."""
    fleet.aws.forget_peaks()
    yield fleet
    fleet.aws.latency, fleet.aws.rates, fleet.aws.list_page_size = 0.0, {}, None
    fleet.aws.refuse_operation = {}


def _ok(run: object, fleet: Fleet) -> dict[str, object]:
    assert run.code == 0, run.text  # type: ignore[attr-defined]
    data: dict[str, object] = run.json()  # type: ignore[attr-defined]
    assert [r["status"] for r in data["regions"]] == ["ok"] * 3, data["regions"]  # type: ignore[attr-defined]
    assert {c["domain"] for c in data["certificates"]} == fleet.domains  # type: ignore[attr-defined]
    return data


# --------------------------------------------------------------------------------------------- concurrency
def test_reads_of_a_region_overlap_and_stay_under_the_per_region_limit(
    slow: Fleet, capsys: pytest.CaptureFixture[str],
) -> None:
    """Every read takes 0.2 s: one after another, never two at once; together, up to the limit and no more."""
    slow.aws.latency = 0.2
    described = slow.aws.calls("acm", "DescribeCertificate", BIG)
    data = _ok(slow.run(capsys), slow)
    peak = slow.aws.peak_in_flight[BIG]
    assert 2 <= peak <= READS_PER_REGION, peak
    assert slow.aws.peak_in_flight[SMALL[0]] >= 2  # a small region's reads overlap too
    # the summary carries everything but who uses a certificate: DescribeCertificate only for those in use
    assert slow.aws.calls("acm", "DescribeCertificate", BIG) - described == BIG_IN_USE
    users = [c for c in data["certificates"] if c["in_use"]]  # type: ignore[attr-defined]
    assert len(users) == BIG_IN_USE and all(c["in_use_by"][0].startswith("arn:aws:elasticloadbalancing")
                                            for c in users)


def test_total_reads_are_bounded(
    slow: Fleet, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """However many regions, no more than MAX_READS reads (plus one listing per region) are under way at once."""
    monkeypatch.setattr(status, "MAX_READS", 4)
    slow.aws.latency = 0.1
    _ok(slow.run(capsys), slow)
    assert 2 <= slow.aws.peak_total <= 4 + 3, slow.aws.peak_total  # 4 reads, 3 listings


@pytest.mark.slow
def test_throttling_is_retried_and_no_region_fails(slow: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    """An account whose limits are below ACM's documented rates (3/s): throttled, slowed down, every region ok."""
    slow.aws.rates = {"ListCertificates": 1, "DescribeCertificate": 3, "ListTagsForCertificate": 3}
    slow.aws.list_page_size = 15  # three pages in the large region, at ListCertificates' one a second
    _ok(slow.run(capsys), slow)
    assert sum(slow.aws.throttled.values()) > 0  # the test did throttle
    assert slow.aws.throttled[("ListCertificates", BIG)] == 0  # pages are paced at ACM's rate


@pytest.mark.slow
def test_a_read_that_fails_fails_its_region_only(slow: Fleet) -> None:
    """Listing allowed, tags denied in the large region: that region is an error, the others answer, no hang."""
    slow.aws.refuse_operation = {("ListTagsForCertificate", BIG): (
        "AccessDeniedException", "User is not authorized to perform: acm:ListTagsForCertificate")}
    slow.aws.latency = 0.05
    regions = [a for r in (BIG, *SMALL) for a in ("--region", r)]
    result = subprocess.run([CERTFLEET, "status", "--endpoint-url", slow.aws.url, *regions, "--json"],
                            capture_output=True, text=True, env=dict(os.environ), timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads(result.stdout)
    outcomes = {r["region"]: r for r in data["regions"]}
    assert outcomes[BIG]["status"] == "error" and outcomes[BIG]["code"] == "AccessDeniedException"
    assert all(outcomes[r]["status"] == "ok" for r in SMALL)
    assert {c["region"] for c in data["certificates"]} == set(SMALL)
    assert f"error: {BIG} denied access" in result.stderr


def test_documented_rates_with_latency(slow: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    """ACM's own rates (ListCertificates 1/s, DescribeCertificate and ListTagsForCertificate 10/s), 50 ms away."""
    slow.aws.rates = {"ListCertificates": 1, "DescribeCertificate": 10, "ListTagsForCertificate": 10}
    slow.aws.latency = 0.05
    _ok(slow.run(capsys), slow)


def test_pacer_counts_each_request_from_its_answer() -> None:
    """N per second, counted from each answer: at ACM, whatever the jitter, N+1 never arrive within a second."""
    now = [100.0]
    pacer = Pacer({"ListTagsForCertificate": 3, "ListCertificates": 1}, window=1.0, clock=lambda: now[0])
    tags = "ListTagsForCertificate"
    assert [pacer.admit(tags) for _ in range(3)] == [0.0, 0.0, 0.0]  # a burst up to the rate goes at once
    assert pacer.admit("ListCertificates") == 0.0
    assert pacer.admit("DescribeCertificate") == 0.0  # no rate known: not paced
    assert pacer.admit(tags) is None  # three under way: wait for an answer
    now[0] += 0.3
    pacer.answered(tags, throttled=False)  # this thread's last request (the third) answered at 100.3
    now[0] += 0.5
    assert pacer.admit(tags) == 0.5  # its slot frees a second after the answer, not after the send
    now[0] += 0.5
    assert pacer.admit(tags) == 0.0
    pacer.answered(tags, throttled=True)
    assert pacer.limit[tags] == 1.5
    pacer.answered(tags, throttled=True)
    pacer.answered(tags, throttled=True)
    assert pacer.limit[tags] == 1.0  # never below one
    for _ in range(40):
        pacer.answered(tags, throttled=False)
    assert pacer.limit[tags] == 3.0  # back to the documented rate, never above


def test_pacer_in_a_real_client_paces_retries_and_pages(slow: Fleet) -> None:
    """Hooked to botocore: every attempt waits its turn and every answer, throttled or not, is seen."""
    pacer = Pacer({"ListTagsForCertificate": 1, "ListCertificates": 1})
    acm = boto3.client("acm", endpoint_url=slow.aws.url, region_name=SMALL[1])
    pacer.install(acm)
    slow.aws.rates = {"ListTagsForCertificate": 1}
    listed = acm.list_certificates(Includes={"keyTypes": ["EC_prime256v1"]})["CertificateSummaryList"]
    arns = [c["CertificateArn"] for c in listed]
    for arn in arns:
        acm.list_tags_for_certificate(CertificateArn=arn)
    assert slow.aws.throttled[("ListTagsForCertificate", SMALL[1])] == 0  # one a second, counted from the answer
    assert pacer.limit["ListTagsForCertificate"] == 1.0 and len(arns) == 3


# ------------------------------------------------------------------------------------------------ progress
def _on_a_terminal(fleet: Fleet, *argv: str) -> tuple[int, str, str]:
    """Run the console script with stderr on a pseudo-terminal (stdout piped); return code, stdout, terminal."""
    import pty

    master, slave = pty.openpty()
    seen: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the other side closed
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        process = subprocess.run([CERTFLEET, "status", "--endpoint-url", fleet.aws.url, "--region", SMALL[0], *argv],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=dict(os.environ),
                                 timeout=60, check=False)
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    return process.returncode, process.stdout.decode(), b"".join(seen).decode(errors="replace")


def test_progress_on_a_terminal_when_slow(slow: Fleet) -> None:
    slow.aws.latency = 0.7  # a listing and a wave of reads: well over a second
    code, out, terminal = _on_a_terminal(slow)
    assert code == 0, terminal
    assert re.search(r"certfleet status: [01]/1 regions, \d+ certificates read", terminal), terminal
    assert terminal.endswith("\r\x1b[K")  # erased before the table
    assert "3 certificate(s) in 1 region(s)" in out and "regions," not in out


def test_no_progress_with_json_even_on_a_terminal(slow: Fleet) -> None:
    slow.aws.latency = 0.7
    code, out, terminal = _on_a_terminal(slow, "--json")
    assert code == 0, terminal
    assert "certfleet status:" not in terminal and "\x1b" not in terminal
    assert len(json.loads(out)["certificates"]) == 3


def test_no_progress_when_piped(slow: Fleet) -> None:
    slow.aws.latency = 0.7
    result = subprocess.run([CERTFLEET, "status", "--endpoint-url", slow.aws.url, "--region", SMALL[0]],
                            capture_output=True, text=True, env=dict(os.environ), timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "3 certificate(s) in 1 region(s)" in result.stdout
