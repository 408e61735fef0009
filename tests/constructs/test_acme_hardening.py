"""What the security review of the ACME construct asked for (the per-zone grant estimate is in test_acme_group):
unique statement ids per policy whatever the fleet names, and zone names and name counts refused at synth."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App, Environment, Stack, Token
from aws_cdk import aws_route53 as route53

from certfleet import CertificateSource, FleetGroup
from certfleet.acme_order import MAX_ORDER_NAMES

ACCOUNT = "123456789012"
DIRECTORY = "https://acme.example.net/directory"


def _app(tmp_path: Path | None = None) -> App:
    context = {"@aws-cdk/core:validateAgainstDefaultRules": False}
    return App(outdir=str(tmp_path / "cdk.out"), context=context) if tmp_path else App(context=context)


def _dns(app: App) -> Stack:
    return Stack(app, "Dns", env=Environment(account=ACCOUNT, region="us-east-1"))


def test_more_names_than_a_ca_takes_in_one_order_are_refused() -> None:
    app = _app()
    zone = route53.HostedZone.from_hosted_zone_attributes(_dns(app), "Zone", hosted_zone_id="Z0EXAMPLE",
                                                          zone_name="example.com")
    names = [f"h{n}.example.com" for n in range(MAX_ORDER_NAMES + 1)]
    with pytest.raises(ValueError, match=r"101 domains in one order, over the 100 identifiers .* split the names"):
        CertificateSource.acme(directory_url=DIRECTORY, domains=names, hosted_zone=zone)
    made = CertificateSource.acme(directory_url=DIRECTORY, domains=names[:MAX_ORDER_NAMES], hosted_zone=zone)
    assert len(made.names) == MAX_ORDER_NAMES


@pytest.mark.parametrize("how", ["by id", "token name"])
def test_a_zone_whose_name_is_not_known_at_synth_is_refused(how: str) -> None:
    dns = _dns(_app())
    if how == "by id":
        zone = route53.HostedZone.from_hosted_zone_id(dns, "Zone", "Z0NAMELESS")
    else:
        zone = route53.HostedZone.from_hosted_zone_attributes(
            dns, "Zone", hosted_zone_id="Z0TOKEN", zone_name=Token.as_string({"Ref": "ZoneName"}))
    with pytest.raises(ValueError, match=r"hosted zone Dns/Zone: .*HostedZone\.from_hosted_zone_attributes\("
                                         r"hosted_zone_id=\.\.\., zone_name='example.com'\) or a zone with a "
                                         r"literal name"):
        CertificateSource.acme(directory_url=DIRECTORY, domains=["www.example.com"], hosted_zone=zone)


def test_members_whose_names_differ_in_punctuation_get_distinct_statement_ids(tmp_path: Path) -> None:
    """GIVEN FleetGroup members ``www-a`` and ``www_a`` (the same letters and digits) WHEN synthesized THEN no policy
    of any stack holds two statements of one Sid (IAM refuses such a policy), and the ACME ones keep their
    ``AcmeReadSecretsOf<Fleet>`` shape."""
    app = _app(tmp_path)
    zone = route53.HostedZone.from_hosted_zone_attributes(_dns(app), "Zone", hosted_zone_id="Z0EXAMPLE",
                                                          zone_name="example.com")
    group = FleetGroup(app, "Group", account=ACCOUNT, regions=["eu-west-1"])
    for member, name in (("www-a", "a.example.com"), ("www_a", "b.example.com")):
        group.add_fleet(member, source=CertificateSource.acme(directory_url=DIRECTORY, domains=[name],
                                                              hosted_zone=zone))
    reads: list[str] = []
    for stack in app.synth().stacks:
        for logical, resource in stack.template.get("Resources", {}).items():
            documents = []
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                documents.append(resource["Properties"]["PolicyDocument"])
            if resource["Type"] == "AWS::IAM::Role":
                documents += [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
            for document in documents:
                sids = [s["Sid"] for s in document["Statement"] if "Sid" in s]
                assert len(sids) == len(set(sids)), f"{stack.stack_name} {logical}: {sorted(sids)}"
                reads += [s for s in sids if s.startswith("AcmeReadSecretsOf")]
    assert len(set(reads)) == 2  # one per member (each of the three roles holds its own copy)
    assert all(s.isalnum() for s in reads)
