"""The reader role behind cross-account ``Fn::GetStackOutput``: trusted by every consumer region's execution role."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import App
from aws_cdk.assertions import Match, Template
from construct_support import ACCOUNT

from certfleet import CertificateBundle, CertificateFleet, KeySource

OTHER = "222222222222"


def _exec_role(account: str, region: str) -> dict[str, Any]:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::{account}:role/cdk-hnb659fds-cfn-exec-role-{account}-{region}"}


def _reader_principals(template: Template) -> list[dict[str, Any]]:
    (reader,) = template.find_resources("AWS::IAM::Role", {"Properties": {
        "RoleName": Match.string_like_regexp("^certfleet-output-reader-")}}).values()
    (statement,) = reader["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    principal = statement["Principal"]["AWS"]
    return principal if isinstance(principal, list) else [principal]


def test_one_reader_role_trusts_every_consumer_region_of_the_other_account(bundle: CertificateBundle,
                                                                           sealed_path: Path) -> None:
    app = App()
    fleet = CertificateFleet(app, "Certificates", bundle=bundle, key=KeySource.sealed(sealed_path), account=ACCOUNT,
                             regions=["eu-west-1", "ap-northeast-1"],
                             accounts={"eu-west-1": OTHER, "ap-northeast-1": OTHER})
    primary = Template.from_stack(fleet.stack_for("us-east-1"))
    principals = _reader_principals(primary)
    assert principals == [_exec_role(OTHER, "eu-west-1"), _exec_role(OTHER, "ap-northeast-1")]


def test_a_single_consumer_region_keeps_a_single_principal(bundle: CertificateBundle, sealed_path: Path) -> None:
    fleet = CertificateFleet(App(), "Certificates", bundle=bundle, key=KeySource.sealed(sealed_path),
                             account=ACCOUNT, regions=["eu-west-1"], accounts={"eu-west-1": OTHER})
    assert _reader_principals(Template.from_stack(fleet.stack_for("us-east-1"))) == [_exec_role(OTHER, "eu-west-1")]
