"""Weak cross-stack references: a stack output read with ``Fn::GetStackOutput``.

A strong reference (Export / ImportValue, or the SSM writer CDK uses across regions) refuses to change a
value a consumer imports ("Exports cannot be updated"): harmless while a renewal keeps the ARN, a failed
deploy the day a key-type upgrade replaces it. ``Fn::GetStackOutput`` is resolved at deploy time and lets
the producer change the value freely, in the same region, across regions and across accounts.
"""

from __future__ import annotations

import hashlib

from aws_cdk import CfnOutput, Fn, Stack
from constructs import Construct

OUTPUT_PREFIX = "Certfleet"


def output_name(producer: Construct, attribute: str) -> str:
    """The output's logical id: stable, readable, unique per producing construct and attribute."""
    digest = hashlib.sha256(producer.node.path.encode()).hexdigest()[:8].upper()
    clean = "".join(ch for ch in producer.node.id if ch.isalnum())[:40]
    return f"{OUTPUT_PREFIX}{clean}{attribute}{digest}"


def weak_reference(producer: Construct, attribute: str, value: str, consumer: Construct) -> str:
    """``value`` (a token of ``producer``'s stack) as ``consumer``'s stack may read it, weakly."""
    producer_stack, consumer_stack = Stack.of(producer), Stack.of(consumer)
    if producer_stack is consumer_stack:
        return value
    name = output_name(producer, attribute)
    if producer_stack.node.try_find_child(name) is None:
        output = CfnOutput(producer_stack, name, value=value,
                           description=f"certfleet: {attribute} of {producer.node.path}")
        output.override_logical_id(name)
    consumer_stack.add_stack_dependency(producer_stack, f"certfleet: reads {attribute} of {producer.node.path}")
    role_arn = None
    if producer_stack.account != consumer_stack.account:
        role_arn = _cross_account_role(consumer_stack)
    return Fn.get_stack_output(producer_stack.stack_name, name, producer_stack.region, role_arn)


def _cross_account_role(consumer: Stack) -> str:
    """The role the consumer's CloudFormation execution role assumes to read the producer's outputs."""
    role = getattr(consumer.synthesizer, "cloud_formation_execution_role_arn", None)
    if not role:
        raise ValueError(
            f"{consumer.node.path}: reading a certificate from another account needs a synthesizer with a "
            "CloudFormation execution role (the default DefaultStackSynthesizer has one)",
        )
    return str(role)
