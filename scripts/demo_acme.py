"""The demo's ACME act, offline: pebble (a local ACME CA) issues the demo certificate, the demo fleet imports it in
every region, the clock jumps into the renewal window and the daily schedule renews it, with no deploy.

Run by scripts/demo.py after its other acts, or alone: ``.venv/bin/python -P scripts/demo_acme.py``. Needs Debian's
pebble (scripts/setup.sh installs it), node and the npm packages of package.json; no network, no AWS account.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from certfleet._lambda.certfleet_contract import FLEET_TAG

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = ("www.example.com", "example.com")
ZONE = "example.com"
FLEET = "AcmeCertificates"


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def demo_environment() -> tuple[str, tuple[str, ...]]:
    """The demo fleet's account and regions (cdk.json, context certfleet.environments.demo)."""
    demo = json.loads((ROOT / "cdk.json").read_text())["context"]["certfleet"]["environments"]["demo"]
    return str(demo["account"]), tuple(demo["regions"])


def synth(out: Path, account: str, regions: tuple[str, ...], directory_url: str, zone_id: str) -> Path:
    """The demo fleet with an ACME source instead of files: the CDK app as a user writes it, synthesized here."""
    from aws_cdk import App, Environment, Stack
    from aws_cdk import aws_cloudformation as cloudformation
    from aws_cdk import aws_route53 as route53

    from certfleet import AcmeAccount, CertificateFleet, CertificateSource

    app = App(outdir=str(out))
    dns = Stack(app, "AcmeDns", env=Environment(account=account, region="us-east-1"))
    cloudformation.CfnWaitConditionHandle(dns, "Nothing")  # the zone is imported; a stack needs one resource
    zone = route53.HostedZone.from_hosted_zone_attributes(dns, "Zone", hosted_zone_id=zone_id, zone_name=ZONE)
    source = CertificateSource.acme(directory_url=directory_url, domains=list(DOMAINS), hosted_zone=zone,
                                    key_type="ec-p256", account=AcmeAccount(contact="mailto:ops@example.com"))
    CertificateFleet(app, FLEET, source=source, account=account, regions=list(regions))
    app.synth()
    return out


def table(rehearsal: Any, regions: tuple[str, ...], before: dict[str, str] | None = None) -> dict[str, str]:
    """Print, per region, the fleet's certificate in ACM (ARN, expiry, key type); return {region: ARN}."""
    arns: dict[str, str] = {}
    print(f"{'region':15} {'certificate ARN':88} {'not after':26} key")
    for region, rows in rehearsal.inventory(list(regions)).items():
        for row in rows:
            if row["tags"].get(FLEET_TAG) != FLEET:
                continue
            arns[region] = row["arn"]
            same = "" if before is None else ("  (same ARN)" if before.get(region) == row["arn"] else "  (NEW ARN!)")
            print(f"{region:15} {row['arn']:88} {row['not_after']:26} {row['key_algorithm']}{same}")
    return arns


def act() -> int:
    import boto3

    from certfleet.testing import MotoServer, StrictAWS
    from certfleet.testing.pebble import ChallTestSrv, Pebble, Route53Bridge, bare_zone_id, missing_tools
    from certfleet.testing.rehearsal import Rehearsal

    step("ACME act: pebble issues the demo certificate, the fleet imports it, the clock jumps, it renews")
    missing = missing_tools()
    if missing:
        print(f"{', '.join(missing)} not on PATH: run bash scripts/setup.sh (it installs Debian's pebble)",
              file=sys.stderr)
        return 1
    account, others = demo_environment()
    regions = ("us-east-1", *others)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="certfleet-acme-demo-") as scratch, MotoServer() as moto, \
            StrictAWS(moto.url) as aws, ChallTestSrv() as dns, Pebble(Path(scratch) / "pebble", dns.dns_address) as ca:
        os.environ["REQUESTS_CA_BUNDLE"] = str(ca.ca_bundle)  # the acme library trusts the local CA's HTTPS
        route53 = boto3.client("route53", endpoint_url=aws.url, region_name="us-east-1")
        zone = bare_zone_id(route53.create_hosted_zone(Name=ZONE, CallerReference="demo")["HostedZone"]["Id"])
        print(f"pebble at {ca.directory_url}; Route 53 zone {ZONE} ({zone}) in the local AWS, its TXT records "
              "served to pebble by challtestsrv once Route 53 reports them INSYNC")
        with Route53Bridge(aws, dns, [zone]):
            began = time.monotonic()
            cdk_out = synth(Path(scratch) / "cdk.out", account, others, ca.directory_url, zone)
            print(f"synth of the ACME fleet (us-east-1 + {', '.join(others)}): {time.monotonic() - began:.1f} s")
            rehearsal = Rehearsal(aws.url, environment={"CERTFLEET_INSYNC_POLL_SECONDS": "0.1"})
            began = time.monotonic()
            events = rehearsal.deploy(cdk_out)
            print(f"first deploy: ordered at pebble (DNS-01 through Route 53), imported in {len(regions)} regions: "
                  f"{time.monotonic() - began:.1f} s, {len(events)} resources, "
                  f"{aws.calls('acm', 'ImportCertificate')} ImportCertificate calls")
            first = table(rehearsal, regions)

            (today,) = rehearsal.run_schedules(datetime.datetime.now(datetime.UTC))
            if today.error:
                print(f"the daily renewer failed: {today.error}", file=sys.stderr)
                return 1
            due = datetime.datetime.fromisoformat(today.result["Due"])
            print(f"\nthe daily renewer, today: renewed={today.result['Renewed']} ({today.result['Reason']})")

            jump = due + datetime.timedelta(minutes=1)
            imports, cfn = aws.calls("acm", "ImportCertificate"), len(rehearsal.events)
            began = time.monotonic()
            (renewal,) = rehearsal.run_schedules(jump)
            if renewal.error or not renewal.result["Renewed"]:
                print(f"the renewal failed: {renewal.error or renewal.result}", file=sys.stderr)
                return 1
            print(f"the clock jumps to {jump.isoformat(timespec='minutes')}: the daily renewer ordered a new "
                  f"certificate with a new key and re-imported it in {len(renewal.result['Imported'])} regions in "
                  f"{time.monotonic() - began:.1f} s ({aws.calls('acm', 'ImportCertificate') - imports} imports, "
                  f"{len(rehearsal.events) - cfn} CloudFormation events: no deploy)")
            table(rehearsal, regions, first)
            print("(pebble's own clock did not jump: the new certificate's validity starts now, so its expiry moved "
                  "by the seconds since the first)")
    print(f"\nACME act: {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent",
                        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}.items():
        os.environ.setdefault(name, value)
    sys.exit(act())
