"""What the importer's and key writer's functions need at scale and on a revert."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import App
from aws_cdk.assertions import Match, Template
from construct_support import ACCOUNT

from certfleet import CertificateBundle, FleetGroup, KeySource


def test_the_importer_may_run_as_long_as_lambda_allows(bundle: CertificateBundle, sealed_path: Path) -> None:
    group = FleetGroup(App(), "Certificates", account=ACCOUNT, regions=["eu-west-1"])
    fleet = group.add_fleet("www", bundle=bundle, key=KeySource.sealed(sealed_path))
    template = Template.from_stack(fleet.stack_for("us-east-1"))
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "certfleet_import.on_event", "Timeout": 900,
    })


def test_a_group_key_writer_may_move_awscurrent_back_after_a_revert(bundle: CertificateBundle,
                                                                    sealed_path: Path) -> None:
    group = FleetGroup(App(), "Certificates", account=ACCOUNT, regions=["eu-west-1"])
    fleet = group.add_fleet("www", bundle=bundle, key=KeySource.sealed(sealed_path))
    template = Template.from_stack(fleet.stack_for("us-east-1"))
    template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Sid": Match.string_like_regexp("^WriteOnlyKeysOf"),
                           "Action": Match.array_with(["secretsmanager:UpdateSecretVersionStage"])}),
    ])}})
