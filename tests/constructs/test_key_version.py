"""KeySource.secret without a version: the primary stack pins AWSCURRENT's version once (Custom::CertfleetKeyVersion,
served by the key writer) and every importer of the fleet reads that version, by weak reference elsewhere."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Template

from certfleet import CertificateBundle, CertificateFleet, ImportedCertificate, KeySource
from certfleet.key_source import KEY_VERSION_TYPE
from certfleet.material.demo import DemoPKI

ACCOUNT = "123456789012"
OTHER = "222222222222"
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:production/ssl/www-key-AbCdEf"
CERTIFICATE = "Custom::CertfleetCertificate"
WRITER = "certfleet_keywriter.on_event"


@dataclass
class Synthesized:
    fleet: CertificateFleet
    templates: dict[str, Mapping[str, Any]]


def resources(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def only(template: Mapping[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    (found,) = resources(template, kind).items()
    return found


def role_statements(template: Mapping[str, Any], handler: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the role of the function with ``handler``."""
    functions = resources(template, "AWS::Lambda::Function").values()
    role = next(f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions if f["Properties"]["Handler"] == handler)
    return [s for p in resources(template, "AWS::IAM::Policy").values() if {"Ref": role} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


def not_logs(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if not str(s["Action"]).startswith(("logs:", "['logs:"))]


@pytest.fixture(scope="module")
def fleet(bundle: CertificateBundle) -> Synthesized:
    """A fleet on the user's secret: us-east-1 (primary), eu-west-1 (a replica), ap-northeast-1 in another account."""
    app = App()
    fleet = CertificateFleet(app, "Certificates", bundle=bundle, key=KeySource.secret(SECRET_ARN), account=ACCOUNT,
                             regions=["eu-west-1", "ap-northeast-1"], accounts={"ap-northeast-1": OTHER})
    templates = {r: Template.from_stack(fleet.stack_for(r)).to_json() for r in fleet.regions}
    return Synthesized(fleet, templates)


def test_the_primary_pins_the_version_once_for_its_certificate(fleet: Synthesized, bundle: CertificateBundle) -> None:
    """GIVEN a fleet on KeySource.secret(arn) WHEN synthesized THEN the primary stack holds one pin of that secret and
    the certificate's fingerprint, its importer reads the pin's VersionId, and no other stack holds a pin."""
    primary = fleet.templates["us-east-1"]
    pin_id, pin = only(primary, KEY_VERSION_TYPE)
    assert {k: v for k, v in pin["Properties"].items() if k != "ServiceToken"} == {
        "SecretId": SECRET_ARN, "Fingerprints": [bundle.fingerprint],
    }
    _, certificate = only(primary, CERTIFICATE)
    assert certificate["Properties"]["KeySecretVersionId"] == {"Fn::GetAtt": [pin_id, "VersionId"]}
    writer = next(f for f in resources(primary, "AWS::Lambda::Function").values()
                  if f["Properties"]["Handler"] == WRITER)
    assert writer is not None
    for region in ("eu-west-1", "ap-northeast-1"):
        assert resources(fleet.templates[region], KEY_VERSION_TYPE) == {}, region


def test_the_pins_grant_is_describe_secret_on_that_secret_only(fleet: Synthesized) -> None:
    """GIVEN the fleet WHEN synthesized THEN the key writer's role holds one statement besides its logs: DescribeSecret
    (no value read) on exactly the user's secret."""
    statements = not_logs(role_statements(fleet.templates["us-east-1"], WRITER))
    assert [(s["Action"], s["Resource"], s.get("Condition")) for s in statements] == [
        ("secretsmanager:DescribeSecret", SECRET_ARN, None),
    ]


def test_other_regions_read_the_pinned_version_by_weak_reference(fleet: Synthesized) -> None:
    """GIVEN the fleet WHEN synthesized THEN the replica region's importer reads the primary's output of the pinned
    version with Fn::GetStackOutput, and the other account's through the primary account's reader role."""
    primary = fleet.templates["us-east-1"]
    pin_id, _ = only(primary, KEY_VERSION_TYPE)
    (output,) = [name for name, o in primary["Outputs"].items() if o["Value"] == {"Fn::GetAtt": [pin_id, "VersionId"]}]
    stack_name = fleet.fleet.stack_for("us-east-1").stack_name
    for region in ("eu-west-1", "ap-northeast-1"):
        _, certificate = only(fleet.templates[region], CERTIFICATE)
        reference = certificate["Properties"]["KeySecretVersionId"]["Fn::GetStackOutput"]
        assert {k: reference[k] for k in ("StackName", "OutputName", "Region")} == {
            "StackName": stack_name, "OutputName": output, "Region": "us-east-1",
        }, region
        assert ("RoleArn" in reference) is (region == "ap-northeast-1"), region


def test_certificates_on_one_secret_share_its_pin(pki: DemoPKI, bundle: CertificateBundle) -> None:
    """GIVEN two standalone certificates on one secret (by name) and a third on another secret, in one stack
    WHEN synthesized THEN two pins: one per secret, the shared one listing both fingerprints (sorted); each importer
    reads its own secret's pin; the key writer may DescribeSecret on each secret, by name with Secrets Manager's
    six-character suffix, and nothing else."""
    other = CertificateBundle.from_pem(pki.leaf(("api.example.com",)).pem().decode(), pki.chain_pem().decode())
    third = CertificateBundle.from_pem(pki.leaf(("mail.example.com",)).pem().decode(), pki.chain_pem().decode())
    stack = Stack(App(), "Web", env=Environment(account=ACCOUNT, region="eu-west-1"))
    ImportedCertificate(stack, "Www", bundle=bundle, key=KeySource.secret("production/ssl/shared"))
    ImportedCertificate(stack, "Api", bundle=other, key=KeySource.secret("production/ssl/shared"))
    ImportedCertificate(stack, "Mail", bundle=third, key=KeySource.secret("production/ssl/mail"))
    template = Template.from_stack(stack).to_json()
    pins = {p["Properties"]["SecretId"]: (k, p["Properties"]["Fingerprints"])
            for k, p in resources(template, KEY_VERSION_TYPE).items()}
    assert {name: prints for name, (_, prints) in pins.items()} == {
        "production/ssl/shared": sorted([bundle.fingerprint, other.fingerprint]),
        "production/ssl/mail": [third.fingerprint],
    }
    for certificate in resources(template, CERTIFICATE).values():
        props = certificate["Properties"]
        assert props["KeySecretVersionId"] == {"Fn::GetAtt": [pins[props["KeySecretId"]][0], "VersionId"]}
    statements = not_logs(role_statements(template, WRITER))
    assert [(s["Action"], "Condition" in s) for s in statements] == [("secretsmanager:DescribeSecret", False)] * 2
    granted = sorted(json.dumps(s["Resource"]) for s in statements)
    assert "secret:production/ssl/mail-??????" in granted[0] and "secret:production/ssl/shared-??????" in granted[1]


def test_an_explicit_version_is_read_as_given_with_no_pin(bundle: CertificateBundle) -> None:
    """GIVEN KeySource.secret(name, version_id=...) WHEN a fleet is synthesized THEN no pin and no key writer in any
    stack, and every importer reads exactly that version."""
    fleet = CertificateFleet(App(), "Certificates", bundle=bundle, account=ACCOUNT, regions=["eu-west-1"],
                             key=KeySource.secret("production/ssl/www-key", version_id="EXAMPLE1-90ab-cdef-fedc-ba987"))
    for region in fleet.regions:
        template = Template.from_stack(fleet.stack_for(region)).to_json()
        assert resources(template, KEY_VERSION_TYPE) == {}, region
        assert not [f for f in resources(template, "AWS::Lambda::Function").values()
                    if f["Properties"]["Handler"] == WRITER], region
        _, certificate = only(template, CERTIFICATE)
        assert certificate["Properties"]["KeySecretVersionId"] == "EXAMPLE1-90ab-cdef-fedc-ba987", region


def test_the_construct_and_the_handler_name_the_same_type() -> None:
    """The pin's resource type is the one the key writer dispatches on (one coupling, checked)."""
    lambda_dir = str(Path(__file__).resolve().parents[2] / "constructs" / "certfleet" / "_lambda")
    if lambda_dir not in sys.path:
        sys.path.insert(0, lambda_dir)
    import certfleet_keyversion

    assert certfleet_keyversion.RESOURCE_TYPE == KEY_VERSION_TYPE
