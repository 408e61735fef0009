"""cdk-nag's AwsSolutions pack on an ACME fleet (EAB, monitored, two regions): nothing unacknowledged, and every
acknowledgement the ACME constructs add carries a reason."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import App, Environment, Stack, Validations
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from cdk_nag import AwsSolutionsChecks

from certfleet import AcmeAccount, CertificateFleet, CertificateSource
from certfleet.acme import ACME_HANDLERS_ID

ACCOUNT = "123456789012"
PACK = "AwsSolutions"


def test_an_acme_fleet_has_no_unacknowledged_cdk_nag_finding(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path / "cdk.out"))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    dns = Stack(app, "Dns", env=Environment(account=ACCOUNT, region="us-east-1"))
    zone = route53.HostedZone.from_hosted_zone_attributes(dns, "Zone", hosted_zone_id="Z0EXAMPLE",
                                                          zone_name="example.com")
    topic = sns.Topic(dns, "Alerts", enforce_ssl=True)
    hmac = secretsmanager.Secret.from_secret_complete_arn(
        dns, "Hmac", f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:eab-hmac-AbCdEf")
    source = CertificateSource.acme(directory_url="https://acme.example.net/directory",
                                    domains=["www.example.com", "*.example.com"], hosted_zone=zone,
                                    account=AcmeAccount(eab_key_id="kid", eab_hmac_secret=hmac))
    fleet = CertificateFleet(app, "Certs", source=source, account=ACCOUNT, regions=["eu-west-1"])
    fleet.add_expiry_monitoring(topic=topic)
    try:
        app.synth()
    except RuntimeError as exc:  # the validation plugins fail the in-memory synth with a report
        assert "ValidationFailed" in str(exc)
    report = tmp_path / "cdk.out" / "validation-report.json"
    findings = []
    if report.exists():  # a plugin with nothing to report is left out of the report
        for nag in json.loads(report.read_text())["pluginReports"]:
            if nag["pluginName"] == PACK:
                findings += [f"{v['ruleName']} at {c['constructPath']}" for v in nag["violations"]
                             for c in v["violatingConstructs"]]
    assert findings == []
    handlers = fleet.stack_for("us-east-1").node.find_child(ACME_HANDLERS_ID)
    acknowledged = [
        (str(rule), str(reason)) for construct in handlers.node.find_all() for entry in construct.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY for rule, reason in dict(entry.data).items()
    ]
    assert any("AwsSolutions-L1" in rule for rule, _ in acknowledged)  # Python 3.12: the wheels' runtime
    assert all(len(reason) > 20 for _, reason in acknowledged)
