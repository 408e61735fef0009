"""The providers' templates: checkov skips written where checkov reads them, and the Provider framework's closed
roles still hold their policies before their functions run (no checkov or IAM evaluator needed here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnResource, Stack
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from construct_support import ACCOUNT

from certfleet import CertificateBundle, CertificateFleet, KeySource
from certfleet.gates import skip_checkov

FUNCTION_SKIPS = {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117"}


@pytest.fixture(scope="module")
def primary(bundle: CertificateBundle, sealed_path: Path) -> dict[str, Any]:
    """The primary stack of a fleet: both providers (importer with its waiter, key writer)."""
    fleet = CertificateFleet(App(), "Certificates", bundle=bundle, key=KeySource.sealed(sealed_path),
                             account=ACCOUNT, regions=["eu-west-1"])
    return dict(Template.from_stack(fleet.stack_for("us-east-1")).to_json()["Resources"])


def _skips(resource: dict[str, Any]) -> dict[str, str]:
    return {s["id"]: s["comment"] for s in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])}


def test_every_function_and_log_group_of_the_providers_carries_its_checkov_skips_with_a_reason(
    primary: dict[str, Any],
) -> None:
    functions = {k: v for k, v in primary.items() if v["Type"] == "AWS::Lambda::Function"}
    framework = {k for k, v in functions.items() if str(v["Properties"]["Handler"]).startswith("framework.")}
    assert len(functions) == 7 and len(framework) == 4, sorted(functions)  # 3 certfleet handlers, 4 framework
    for logical, function in functions.items():
        skips = _skips(function)
        assert set(skips) == FUNCTION_SKIPS | ({"CKV_AWS_173"} if logical in framework else set()), logical
        assert all(comment.strip() and "\n" not in comment for comment in skips.values()), logical
    groups = [v for v in primary.values() if v["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == 2 and all(set(_skips(g)) == {"CKV_AWS_158"} for g in groups)


def test_each_framework_function_waits_for_its_own_roles_policy(primary: dict[str, Any]) -> None:
    """The framework roles are handed to the Provider closed to updates (certfleet adds their statements itself):
    each framework function must still depend on its role's policy, or it could run before it may invoke."""
    for logical, resource in primary.items():
        if resource["Type"] != "AWS::Lambda::Function" or not resource["Properties"]["Handler"].startswith("fra"):
            continue
        role = resource["Properties"]["Role"]["Fn::GetAtt"][0]
        policies = [k for k, v in primary.items() if v["Type"] == "AWS::IAM::Policy"
                    and {"Ref": role} in v["Properties"]["Roles"]]
        assert policies and set(policies) <= set(resource.get("DependsOn", [])), logical


def test_a_skip_is_replaced_not_repeated_and_other_metadata_is_kept() -> None:
    stack = Stack(App(), "S")
    made = sqs.Queue(stack, "Queue")
    resource = made.node.default_child
    assert isinstance(resource, CfnResource)
    resource.add_metadata("checkov", {"note": "kept"})
    skip_checkov(made, "CKV_AWS_27", "first")
    skip_checkov(made, "CKV_AWS_27", "second")
    skip_checkov(made, "CKV_AWS_26", "other")
    (synthesized,) = Template.from_stack(stack).find_resources("AWS::SQS::Queue").values()
    assert synthesized["Metadata"]["checkov"] == {"note": "kept", "skip": [
        {"id": "CKV_AWS_27", "comment": "second"}, {"id": "CKV_AWS_26", "comment": "other"}]}
