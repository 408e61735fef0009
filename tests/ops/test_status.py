"""`certfleet status` against one moto_server behind StrictAWS, 17 regions from one process."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from material_support import Run, cli
from ops_support import REGIONS_17, RefusingAWS

from certfleet._lambda.certfleet_contract import ACM_KEY_TYPES, ACME_SOURCE, ID_TAG, SOURCE_TAG
from certfleet.cli.status import _certificates, partition
from certfleet.cli.status_model import Certificate, Filters, RegionResult, sort_certificates
from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import MotoServer, free_port

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))
PROD = [{"Key": "certfleet:managed-by", "Value": "certfleet"}, {"Key": "certfleet:fleet", "Value": "Prod"}]
CLOUDFRONT = "arn:aws:cloudfront::123456789012:distribution/E2EXAMPLE"


@dataclass
class Seeded:
    aws: RefusingAWS
    moto: MotoServer
    arns: dict[str, str] = field(default_factory=dict)  # domain -> ARN
    days: dict[str, int] = field(default_factory=dict)  # domain -> days left when issued
    managed: set[str] = field(default_factory=set)
    regions: dict[str, str] = field(default_factory=dict)  # domain -> region
    acme_renewal: dt.datetime | None = None  # renewed.example.com's next renewal (an ACME source's)

    @property
    def url(self) -> str:
        return self.aws.url

    def run(self, capsys: pytest.CaptureFixture[str], *argv: str,
            regions: tuple[str, ...] | None = REGIONS_17) -> Run:
        region_args = [a for r in regions or () for a in ("--region", r)]
        return cli(capsys, "status", "--endpoint-url", self.url, *region_args, *argv)


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    moto = MotoServer.shared()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true"}
    aws = RefusingAWS(moto.url, import_rate=None)
    with pytest.MonkeyPatch.context() as patch, aws:
        for name, value in env.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_MAX_ATTEMPTS"):
            patch.delenv(name, raising=False)
        moto.reset()
        seeded = Seeded(aws, moto)
        _seed(seeded)
        yield seeded
        moto.reset()


def _seed(seeded: Seeded) -> None:
    """One certificate per region (EC P-256, 15 to 191 days, every third managed), and some with a story."""
    ec_pki, rsa_pki = DemoPKI.create("ec-p256", "ops ec"), DemoPKI.create("rsa-2048", "ops rsa")
    p256 = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def put(region: str, pki: DemoPKI, leaf: Issued, tags: list[dict[str, str]] | None = None) -> str:
        acm = boto3.client("acm", endpoint_url=seeded.url, region_name=region)
        extra: dict[str, Any] = {"Tags": tags} if tags else {}
        arn = str(acm.import_certificate(Certificate=leaf.pem(), PrivateKey=leaf.key_pem(),
                                         CertificateChain=pki.chain_pem(), **extra)["CertificateArn"])
        domain = leaf.certificate.subject.get_attributes_for_oid(
            __import__("cryptography.x509.oid", fromlist=["NameOID"]).NameOID.COMMON_NAME)[0].value
        seeded.arns[str(domain)] = arn
        seeded.regions[str(domain)] = region
        seeded.days[str(domain)] = (leaf.certificate.not_valid_after_utc - now).days
        if tags == PROD or (tags and tags[0] == PROD[0]):
            seeded.managed.add(str(domain))
        return arn

    # An expired certificate, as time makes one: ACM imports only valid certificates, so import one that is valid
    # for a few more seconds, then let it expire while the others are imported. On a machine so busy that the
    # import outlives the window, ACM refuses it as expired: try again with twice the window.
    window = 4.0
    while True:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=window)
        try:
            put("sa-east-1", ec_pki, ec_pki.leaf(("old.example.com",), key=p256, not_after=expires))
            break
        except ClientError as exc:
            if "has expired" not in str(exc) or window >= 64:
                raise
            window *= 2
    for i, region in enumerate(REGIONS_17):
        name = f"app{i}.example.com"
        leaf = ec_pki.leaf((name,), key=p256, days=15 + 11 * i)
        tags = [*PROD, {"Key": "certfleet:id", "Value": f"app{i}"}] if i % 3 == 0 else [{"Key": "team", "Value": "web"}]
        put(region, ec_pki, leaf, tags)
    wildcard = rsa_pki.leaf(("*.example.com", "example.com"), days=5)
    seeded.aws.mark_in_use(put("us-east-1", rsa_pki, wildcard), CLOUDFRONT)
    put("eu-west-1", rsa_pki, rsa_pki.leaf(("legacy.example.com",), key=rsa.generate_private_key(65537, 3072), days=3))
    put("ap-northeast-1", ec_pki, ec_pki.leaf(("api.example.com",), key_type="ec-p384", days=40), PROD)
    # an ACME source's certificate, a third into its 90 days: renewed at two thirds (in 30 days) at the latest
    put("eu-north-1", ec_pki, ec_pki.leaf(("renewed.example.com",), key=p256, not_before=now - dt.timedelta(days=30),
                                          days=90),
        [*PROD, {"Key": ID_TAG, "Value": "renewed"}, {"Key": SOURCE_TAG, "Value": ACME_SOURCE}])
    seeded.acme_renewal = now + dt.timedelta(days=30)
    time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds() + 0.5))
    seeded.days["old.example.com"] = -1


def _domains(run_json: dict[str, Any]) -> list[str]:
    return [str(c["domain"]) for c in run_json["certificates"]]


# -------------------------------------------------------------------------------------------- the listing
def test_every_region_every_key_type_sorted_by_days_left(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    before = {r: seeded.aws.calls("acm", "ListCertificates", r) for r in REGIONS_17}
    run = seeded.run(capsys, "--json")
    assert run.code == 0, run.text
    data = run.json()
    assert [r["region"] for r in data["regions"]] == list(REGIONS_17)
    assert all(r["status"] == "ok" for r in data["regions"])
    assert sorted(_domains(data)) == sorted(seeded.arns)
    days = [c["days_left"] for c in data["certificates"]]
    assert days == sorted(days)
    assert _domains(data)[0] == "old.example.com" and days[0] < 0  # expired first
    assert {c["key_algorithm"] for c in data["certificates"]} == {"RSA_2048", "RSA_3072", "EC_prime256v1",
                                                                   "EC_secp384r1"}
    for region in REGIONS_17:  # every region asked, once each (one page)
        assert seeded.aws.calls("acm", "ListCertificates", region) == before[region] + 1


def _matches_schema(document: Any) -> None:
    """``document`` against schemas/status.v1.json (closed objects: a new field fails until the schema has it)."""
    schema = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "status.v1.json").read_text())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft202012Validator(schema).iter_errors(document)]
    assert errors == []


def test_json_shape(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    data = seeded.run(capsys, "--json").json()
    _matches_schema(data)
    assert set(data) == {"ok", "filters", "regions", "notes", "warnings", "error", "certificates"}
    assert data["warnings"] == [] and data["error"] is None
    by_domain = {c["domain"]: c for c in data["certificates"]}
    wildcard = by_domain["*.example.com"]
    assert wildcard["arn"] == seeded.arns["*.example.com"]  # the full ARN in JSON
    assert wildcard["region"] == "us-east-1" and wildcard["type"] == "IMPORTED"
    assert wildcard["names"] == ["*.example.com", "example.com"]
    assert wildcard["in_use"] is True and wildcard["in_use_by"] == [CLOUDFRONT]
    assert wildcard["managed"] is False and wildcard["fleet"] is None
    app0 = by_domain["app0.example.com"]
    assert app0["managed"] is True and app0["fleet"] == "Prod" and app0["certfleet_id"] == "app0"
    assert app0["tags"]["certfleet:managed-by"] == "certfleet"
    assert app0["in_use_by"] == [] and app0["key_algorithm"] == "EC_prime256v1"
    not_after = dt.datetime.fromisoformat(app0["not_after"])
    assert not_after.tzinfo is not None and app0["days_left"] == seeded.days["app0.example.com"]
    assert data["filters"] == {"expiring_within": None, "domain": None, "managed": False}
    assert data["ok"] is True
    assert (app0["source"], app0["next_renewal"]) == ("imported", None)  # renewed when someone imports new files
    assert (wildcard["source"], wildcard["next_renewal"]) == (None, None)  # not certfleet's
    acme = by_domain["renewed.example.com"]
    assert acme["source"] == "acme" and acme["managed"] is True and acme["certfleet_id"] == "renewed"
    assert seeded.acme_renewal is not None
    assert dt.datetime.fromisoformat(acme["next_renewal"]) == seeded.acme_renewal


def test_table(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    run = seeded.run(capsys)
    assert run.code == 0, run.text
    lines = run.out.splitlines()
    assert lines[0].split() == ["REGION", "ID", "DOMAIN", "TYPE", "KEY", "NOT", "AFTER", "DAYS", "IN", "USE", "BY",
                                "MANAGED", "SOURCE", "RENEWS", "BY"]
    assert lines[1].startswith("sa-east-1") and "EXPIRED" in lines[1]
    assert lines[2].startswith("eu-west-1") and "legacy.example.com" in lines[2] and "RSA_3072" in lines[2]
    wildcard = next(line for line in lines if "*.example.com" in line)
    assert "*.example.com (+1)" in wildcard and "cloudfront distribution/E2EXAMPLE" in wildcard
    assert seeded.arns["*.example.com"].rsplit("/", 1)[1][:8] in wildcard
    assert seeded.arns["*.example.com"] not in run.out  # the table shortens ARNs
    app0 = next(line for line in lines if "app0.example.com" in line)
    assert "certfleet Prod" in app0 and app0.split()[-2:] == ["imported", "-"]
    assert seeded.acme_renewal is not None
    acme = next(line for line in lines if "renewed.example.com" in line)
    assert acme.split()[-2:] == ["acme", f"{seeded.acme_renewal:%Y-%m-%d}"]
    assert wildcard.split()[-3:] == ["-", "-", "-"]  # not managed: no source, no renewal
    assert lines[-1] == f"{len(seeded.arns)} certificate(s) in 17 region(s) (1 expired)"


# --------------------------------------------------------------------------------------------- filters
def test_expiring_within_exits_1_and_includes_expired(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    run = seeded.run(capsys, "--expiring-within", "30", "--json")
    assert run.code == 1, run.text
    expected = {d for d, days in seeded.days.items() if days <= 30}
    assert expected >= {"old.example.com", "legacy.example.com", "*.example.com", "app0.example.com"}
    assert set(_domains(run.json())) == expected
    assert run.json()["ok"] is False
    text = seeded.run(capsys, "--expiring-within", "30")
    assert text.code == 1
    assert text.out.splitlines()[-1] == (f"{len(expected)} of {len(seeded.arns)} certificate(s) in 17 region(s) "
                                         "expiring within 30 days (1 expired)")


def test_expiring_within_nothing_exits_0(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    run = seeded.run(capsys, "--expiring-within", "30", "--region", "us-west-2", regions=None)
    assert run.code == 0, run.text  # app3: 48 days
    assert "0 of 1 certificate(s) in 1 region(s) expiring within 30 days" in run.out


@pytest.mark.parametrize(("name", "expected"), [
    ("app5.example.com", {"app5.example.com", "*.example.com"}),  # the wildcard covers it too (RFC 6125)
    ("WWW.Example.com.", {"*.example.com"}),
    ("example.com", {"*.example.com"}),
    ("a.b.example.com", set()),  # a wildcard covers one label only
    ("api.example.com", {"api.example.com", "*.example.com"}),
])
def test_domain(seeded: Seeded, capsys: pytest.CaptureFixture[str], name: str, expected: set[str]) -> None:
    regions = ("us-east-1", "sa-east-1", "ap-northeast-1", "eu-west-1")  # where the names are, and more
    run = seeded.run(capsys, "--domain", name, "--json", regions=regions)
    assert run.code == 0
    assert set(_domains(run.json())) == expected


def test_managed(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    run = seeded.run(capsys, "--managed", "--json")
    assert run.code == 0
    certificates = run.json()["certificates"]
    assert {c["domain"] for c in certificates} == seeded.managed
    assert all(c["managed"] and c["fleet"] == "Prod" for c in certificates)
    both = seeded.run(capsys, "--managed", "--expiring-within", "30", "--json", regions=REGIONS_17[:4])
    assert both.code == 1
    assert _domains(both.json()) == ["app0.example.com"]


# ----------------------------------------------------------------------------------------- paging, regions
def test_pages_through_everything(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    before = seeded.aws.calls("acm", "ListCertificates", "us-east-1")
    seeded.aws.list_page_size = 1
    try:
        run = seeded.run(capsys, "--json")
    finally:
        seeded.aws.list_page_size = None
    assert run.code == 0, run.text
    assert sorted(_domains(run.json())) == sorted(seeded.arns)
    assert seeded.aws.calls("acm", "ListCertificates", "us-east-1") == before + 2  # two certificates, two pages


@pytest.mark.slow
def test_default_asks_every_enabled_region(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    ec2 = boto3.client("ec2", endpoint_url=seeded.moto.url, region_name="us-east-1")
    enabled = sorted(r["RegionName"] for r in ec2.describe_regions()["Regions"]
                     if r["OptInStatus"] != "not-opted-in" and partition(r["RegionName"]) == "aws")
    run = seeded.run(capsys, "--json", regions=None)
    assert run.code == 0, run.text
    data = run.json()
    asked = [r["region"] for r in data["regions"]]
    assert asked == enabled and set(REGIONS_17) <= set(asked)
    assert not any(r.startswith(("cn-", "us-gov-")) for r in asked)  # the home partition only
    assert sorted(_domains(data)) == sorted(seeded.arns)


def test_implicit_region_that_refuses_is_skipped(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    seeded.aws.refuse = {
        ("acm", "af-south-1"): ("UnrecognizedClientException",
                                "The security token included in the request is invalid."),
        ("acm", "eu-south-1"): ("AccessDeniedException", "explicit deny in a service control policy"),
    }
    try:
        run = seeded.run(capsys, "--json", regions=None)
    finally:
        seeded.aws.refuse = {}
    assert run.code == 0, run.text
    data = run.json()
    assert "warning: skipped af-south-1 did not accept the credentials" in run.err
    assert "warning: skipped eu-south-1 denied access" in run.err
    statuses = {r["region"]: r for r in data["regions"]}
    assert statuses["af-south-1"]["status"] == "skipped" and statuses["af-south-1"]["fix"]
    assert statuses["eu-south-1"]["code"] == "AccessDeniedException"
    assert sorted(_domains(data)) == sorted(seeded.arns)


def test_skipped_regions_are_warnings_in_json(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    seeded.aws.refuse = {
        ("acm", "eu-south-1"): ("AccessDeniedException", "explicit deny in a service control policy"),
        ("acm", "af-south-1"): ("UnrecognizedClientException", "The security token is invalid."),
    }
    try:
        run = seeded.run(capsys, "--json", regions=None)
    finally:
        seeded.aws.refuse = {}
    assert run.code == 0, run.text  # the other regions answered: a warning, not a failure
    warnings = {w["subject"]: w for w in run.json()["warnings"]}
    assert set(warnings) == {"eu-south-1", "af-south-1"}
    denied = warnings["eu-south-1"]
    assert denied["severity"] == "warning" and denied["code"] == "region-skipped-denied"
    assert "denied access" in denied["message"] and "acm:ListCertificates" in denied["fix"]
    assert warnings["af-south-1"]["code"] == "region-skipped-not-enabled"


def _enabled(seeded: Seeded) -> list[str]:
    ec2 = boto3.client("ec2", endpoint_url=seeded.moto.url, region_name="us-east-1")
    return sorted(r["RegionName"] for r in ec2.describe_regions()["Regions"]
                  if r["OptInStatus"] != "not-opted-in" and partition(r["RegionName"]) == "aws")


@pytest.mark.slow
def test_a_role_that_acm_denies_everywhere_exits_1(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    """A cron role without acm:ListCertificates (or under an SCP) read nothing: that is no "all clear"."""
    regions = _enabled(seeded)
    seeded.aws.refuse = {("acm", r): ("AccessDeniedException", "User is not authorized to perform: "
                                      "acm:ListCertificates") for r in regions}
    try:
        text = seeded.run(capsys, "--expiring-within", "30", regions=None)
        data = seeded.run(capsys, "--expiring-within", "30", "--json", regions=None)
    finally:
        seeded.aws.refuse = {}
    assert text.code == 1, text.text
    assert text.err.count("certfleet:") == 1 and "warning: skipped" not in text.err  # said once, not per region
    assert "no region could be read" in text.err and f"(and the same in all {len(regions)} regions)" in text.err
    assert "fix: allow acm:ListCertificates" in text.err
    assert "0 of 0 certificate(s)" not in text.out
    assert data.code == 1
    document = data.json()
    _matches_schema(document)
    assert document["ok"] is False and document["certificates"] == []
    assert document["error"]["code"] == "aws-AccessDeniedException"
    assert len(document["warnings"]) == len(regions)


def test_no_region_answered_in_several_ways_exits_1(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    regions = _enabled(seeded)
    seeded.aws.refuse = {("acm", r): ("AccessDeniedException", "denied") for r in regions}
    seeded.aws.refuse[("acm", regions[0])] = ("UnrecognizedClientException", "The security token is invalid.")
    try:
        run = seeded.run(capsys, regions=None)
    finally:
        seeded.aws.refuse = {}
    assert run.code == 1
    assert f"no region could be read ({len(regions) - 1} answered AccessDeniedException, 1 answered " \
        "UnrecognizedClientException)" in run.err


def test_named_region_that_refuses_is_an_error(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    seeded.aws.refuse = {
        ("acm", "eu-west-3"): ("AccessDeniedException", "not authorized to perform acm:ListCertificates"),
    }
    try:
        run = seeded.run(capsys)
    finally:
        seeded.aws.refuse = {}
    assert run.code == 1  # the answer is incomplete: cron must hear about it
    assert "error: eu-west-3 denied access (AccessDeniedException" in run.err
    assert "fix: allow acm:ListCertificates" in run.err
    assert "app8.example.com" not in run.out and "app9.example.com" in run.out  # the others still listed
    assert run.out.splitlines()[-1].endswith("in 16 of 17 region(s) (1 expired)")


@pytest.mark.slow
def test_describe_regions_denied_falls_back_to_every_acm_region(
    seeded: Seeded, capsys: pytest.CaptureFixture[str],
) -> None:
    seeded.aws.refuse = {
        ("ec2", "us-east-1"): ("UnauthorizedOperation", "You are not authorized to perform this operation."),
    }
    try:
        run = seeded.run(capsys, "--json", regions=None)
    finally:
        seeded.aws.refuse = {}
    assert run.code == 0, run.text
    data = run.json()
    assert "ec2:DescribeRegions is not permitted" in data["notes"][0]
    assert [r["region"] for r in data["regions"]] == sorted(boto3.Session().get_available_regions("acm"))
    assert sorted(_domains(data)) == sorted(seeded.arns)


# ------------------------------------------------------------------------------------------ AWS problems
def test_unreachable_endpoint_is_one_sentence(
    seeded: Seeded, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    dead = f"http://127.0.0.1:{free_port()}"
    run = cli(capsys, "status", "--endpoint-url", dead, "--region", "eu-west-1", "--region", "us-east-1")
    assert run.code == 1
    assert run.err.count("certfleet:") == 1 and "Could not connect" in run.err
    assert "(and the same in all 2 regions)" in run.err
    everything = cli(capsys, "status", "--endpoint-url", dead)  # DescribeRegions fails first
    assert everything.code == 1 and "Could not connect" in everything.err


def test_no_credentials(seeded: Seeded, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    run = seeded.run(capsys)
    assert run.code == 1
    assert "no AWS credentials were found" in run.err


def test_unknown_profile(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    run = seeded.run(capsys, "--profile", "nosuchprofile")
    assert run.code == 1
    assert "nosuchprofile" in run.err


@pytest.mark.parametrize("argv", [
    ["--region", "Europe"],
    ["--region", "eu-west"],
    ["--expiring-within", "-1"],
    ["--expiring-within", "soon"],
])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    run = cli(capsys, "status", *argv)
    assert run.code == 2, run.text
    assert "usage: certfleet status" in run.err


def test_help_documents_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "status", "--help")
    assert run.code == 0
    flat = " ".join(run.out.split())
    assert "--expiring-within" in flat and "|| alert" in flat and "exit status: 0" in flat


# ------------------------------------------------------------------------------------------ the real command
def test_console_script_across_17_regions(seeded: Seeded) -> None:
    """One process asks each of the 17 regions for its listing exactly once (its wall time: bench/status_latency.py;
    the overlap of reads: test_status_concurrency.py); a hang fails the test at the subprocess timeout."""
    regions = [a for r in REGIONS_17 for a in ("--region", r)]
    before = {r: seeded.aws.calls("acm", "ListCertificates", r) for r in REGIONS_17}
    result = subprocess.run([CERTFLEET, "status", "--endpoint-url", seeded.url, *regions, "--expiring-within", "7",
                             "--json"], capture_output=True, text=True, env=dict(os.environ), check=False, timeout=60)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 1, result.stderr
    assert {c["domain"] for c in json.loads(result.stdout)["certificates"]} == \
        {d for d, days in seeded.days.items() if days <= 7}
    assert {r: seeded.aws.calls("acm", "ListCertificates", r) - before[r] for r in REGIONS_17} == \
        dict.fromkeys(REGIONS_17, 1)


# ------------------------------------------------------------------------------------------ pure helpers
def _cert(days: int | None, region: str = "eu-west-1", domain: str = "a.example.com", **tags: str) -> Certificate:
    now = dt.datetime.now(dt.UTC)
    return Certificate(region, f"arn:aws:acm:{region}:1:certificate/{domain}", domain, [domain], "IMPORTED",
                       "ISSUED" if days is not None else "PENDING_VALIDATION", "RSA_2048", None,
                       now + dt.timedelta(days=days, hours=1) if days is not None else None, days, [], dict(tags))


def test_next_renewal_is_two_thirds_into_an_acme_certificates_life() -> None:
    acme = _cert(60, **{"certfleet:managed-by": "certfleet", SOURCE_TAG: ACME_SOURCE})
    assert acme.not_after is not None
    acme.not_before = acme.not_after - dt.timedelta(days=90)
    assert acme.source == "acme" and acme.next_renewal == acme.not_before + dt.timedelta(days=60)
    imported = _cert(60, **{"certfleet:managed-by": "certfleet"})
    imported.not_before = acme.not_before
    assert imported.source == "imported" and imported.next_renewal is None
    stray = _cert(60, **{SOURCE_TAG: ACME_SOURCE})  # the tag alone, on a certificate certfleet does not manage
    assert stray.source is None and stray.next_renewal is None


def test_sorting_puts_certificates_without_expiry_last() -> None:
    rows = sort_certificates([_cert(None), _cert(5, "us-east-1"), _cert(-2), _cert(40, "eu-west-1")])
    assert [(c.days_left, c.region) for c in rows] == [(-2, "eu-west-1"), (5, "us-east-1"), (40, "eu-west-1"),
                                                      (None, "eu-west-1")]


def test_filters() -> None:
    assert Filters(expiring_within=0).keep(_cert(-1))
    assert Filters(expiring_within=0).keep(_cert(0))
    assert not Filters(expiring_within=0).keep(_cert(1))
    assert not Filters(expiring_within=30).keep(_cert(None))  # pending validation: no expiry to report
    assert Filters(managed=True).keep(_cert(3, **{"certfleet:managed-by": "certfleet"}))
    assert not Filters(managed=True).keep(_cert(3, **{"certfleet:managed-by": "someone-else"}))
    now = dt.datetime.now(dt.UTC)
    far = {"NotAfter": now + dt.timedelta(days=90), "SubjectAlternativeNameSummaries": ["x.example.com"],
           "HasAdditionalSubjectAlternativeNames": False}
    assert not Filters(expiring_within=30).may_keep(far, now)  # no DescribeCertificate needed
    assert not Filters(domain="y.example.com").may_keep(far, now)
    assert Filters(domain="y.example.com").may_keep({**far, "HasAdditionalSubjectAlternativeNames": True}, now)


@pytest.mark.parametrize(("region", "expected"), [
    ("eu-west-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("us-isob-east-1", "aws-iso-b"),
    ("us-iso-east-1", "aws-iso"), ("eu-isoe-west-1", "aws-iso-e"), ("eusc-de-east-1", "aws-eusc"),
])
def test_partition_agrees_with_botocore(region: str, expected: str) -> None:
    assert partition(region) == expected
    assert region in boto3.Session().get_available_regions("acm", expected) or expected != "aws"


class _FakeACM:
    """Just enough of an ACM client to see which calls status makes for a complete ListCertificates summary."""

    def __init__(self, summaries: list[dict[str, object]]) -> None:
        self.summaries = summaries
        self.described: list[str] = []

    def list_certificates(self, **kwargs: object) -> dict[str, object]:
        assert kwargs == {"Includes": {"keyTypes": list(ACM_KEY_TYPES)},  # every key type, not ACM's default two
                          "MaxItems": 1000}  # the largest page: ListCertificates is allowed once a second
        return {"CertificateSummaryList": self.summaries}

    def describe_certificate(self, CertificateArn: str) -> dict[str, object]:
        self.described.append(CertificateArn)
        summary = next(s for s in self.summaries if s["CertificateArn"] == CertificateArn)
        return {"Certificate": {**summary, "SubjectAlternativeNames": ["a.example.com", "b.example.com"],
                                "InUseBy": ["arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/x/1"]}}

    def list_tags_for_certificate(self, CertificateArn: str) -> dict[str, object]:
        return {"Tags": []}


def test_describe_only_what_the_summary_lacks() -> None:
    now = dt.datetime.now(dt.UTC)
    complete = {"CertificateArn": "arn:aws:acm:eu-west-1:1:certificate/complete", "DomainName": "a.example.com",
                "SubjectAlternativeNameSummaries": ["a.example.com"], "HasAdditionalSubjectAlternativeNames": False,
                "Status": "ISSUED", "Type": "IMPORTED", "KeyAlgorithm": "EC_prime256v1", "InUse": False,
                "NotBefore": now, "NotAfter": now + dt.timedelta(days=9, hours=1)}
    in_use = {**complete, "CertificateArn": "arn:aws:acm:eu-west-1:1:certificate/in-use", "InUse": True}
    many_names = {**complete, "CertificateArn": "arn:aws:acm:eu-west-1:1:certificate/many",
                  "HasAdditionalSubjectAlternativeNames": True}
    like_moto = {k: v for k, v in complete.items() if k != "SubjectAlternativeNameSummaries"} | {
        "CertificateArn": "arn:aws:acm:eu-west-1:1:certificate/moto"}
    acm = _FakeACM([complete, in_use, many_names, like_moto])
    result = RegionResult("eu-west-1", explicit=True)
    with ThreadPoolExecutor(max_workers=4) as reads:
        _certificates(acm, result, Filters(), now, reads)
    assert sorted(acm.described) == sorted([in_use["CertificateArn"], many_names["CertificateArn"],  # type: ignore[type-var]
                                            like_moto["CertificateArn"]])
    by_arn = {c.arn: c for c in result.certificates}
    assert by_arn[complete["CertificateArn"]].names == ["a.example.com"]  # type: ignore[index]
    assert by_arn[complete["CertificateArn"]].days_left == 9  # type: ignore[index]
    assert by_arn[in_use["CertificateArn"]].in_use_by  # type: ignore[index]
    assert result.listed == 4
