"""Acknowledging the findings of the quality gates certfleet passes (cdk-nag, checkov) on the resources it makes,
each with the one-line reason a reviewer reads."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import IConstruct

__all__ = ["acknowledge", "nag_reference", "skip_checkov", "wildcard_finding"]


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``scope`` and its children: the exact rule id, granular part included
    (``AwsSolutions-IAM5[Resource::*]``), with the one-line reason a reviewer reads in the validation report."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def skip_checkov(scope: IConstruct, check: str, comment: str) -> None:
    """Skip one checkov check on ``scope``'s CloudFormation resource (``Metadata.checkov.skip``) with the one-line
    reason a reviewer reads, as ``acknowledge`` does for cdk-nag."""
    resource = scope if isinstance(scope, CfnResource) else scope.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{scope.node.path}: no CloudFormation resource to skip checkov's {check} on")
    existing = resource.get_metadata("checkov") or {}
    skips = [s for s in existing.get("skip", []) if s.get("id") != check] + [{"id": check, "comment": comment}]
    resource.add_metadata("checkov", {**existing, "skip": skips})


def wildcard_finding(scope: IConstruct, resource: str) -> str:
    """The id of cdk-nag's ``AwsSolutions-IAM5`` finding for ``resource`` (an ARN, tokens allowed) in a policy of
    ``scope``'s stack: references flattened as cdk-nag prints them (``<AWS::Partition>``, ``<LogicalId.Arn>``)."""
    return f"AwsSolutions-IAM5[Resource::{nag_reference(Stack.of(scope).resolve(resource))}]"


def nag_reference(value: Any) -> str:
    """A resolved value as cdk-nag prints it in a finding id (its flattenCfnReference): ``${X}`` and ``Ref`` as
    ``<X>``, ``Fn::GetAtt`` as ``<LogicalId.Attr>``, ``Fn::Join`` joined; anything else as JSON."""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Fn::Join":
            delimiter, items = arg
            return str(delimiter).join(nag_reference(item) for item in items)
        if fn in ("Fn::Sub", "Fn::ImportValue"):
            return nag_reference(arg)
        if fn == "Fn::GetAtt":
            return f"<{nag_reference(arg[0])}.{nag_reference(arg[1])}>"
        if fn == "Ref":
            return f"<{nag_reference(arg)}>"
    return json.dumps(value, separators=(",", ":"))
