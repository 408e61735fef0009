"""Weak cross-stack references: a stack output read with ``Fn::GetStackOutput``.

A strong reference (Export / ImportValue, or the SSM writer CDK uses across regions) refuses to change a
value a consumer imports ("Exports cannot be updated"): harmless while a renewal keeps the ARN, a failed
deploy the day a key-type upgrade replaces it. ``Fn::GetStackOutput`` is resolved at deploy time and lets
the producer change the value freely, in the same region, across regions and across accounts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from aws_cdk import Aws, CfnOutput, Fn, Stack, Token
from aws_cdk import aws_iam as iam
from constructs import Construct

OUTPUT_PREFIX = "Certfleet"


def output_name(producer: Construct, attribute: str) -> str:
    """The output's logical id: stable, readable, unique per producing construct and attribute."""
    digest = hashlib.sha256(producer.node.path.encode()).hexdigest()[:8].upper()
    clean = "".join(ch for ch in producer.node.id if ch.isalnum())[:40]
    return f"{OUTPUT_PREFIX}{clean}{attribute}{digest}"


@dataclass
class _Produced:
    """What one producing construct's weak references reuse: its stack, path, outputs and readers (fewer jsii calls
    per reference: a FleetGroup makes hundreds)."""

    stack: Stack
    path: str
    outputs: dict[str, str] = field(default_factory=dict)
    """Output logical id by attribute."""
    readers: set[int] = field(default_factory=set)
    """Ids of the consumer stacks already given the stack dependency."""
    tokens: dict[tuple[str, str | None], str] = field(default_factory=dict)
    """The ``Fn::GetStackOutput`` token by output and reader role (the same in every consumer stack)."""


@dataclass(frozen=True)
class _StackFacts:
    stack_name: str
    region: str
    account: str


_PRODUCED: WeakKeyDictionary[Construct, _Produced] = WeakKeyDictionary()
_STACKS: WeakKeyDictionary[Stack, _StackFacts] = WeakKeyDictionary()


def _facts(stack: Stack) -> _StackFacts:
    facts = _STACKS.get(stack)
    if facts is None:
        facts = _STACKS[stack] = _StackFacts(stack.stack_name, stack.region, stack.account)
    return facts


def weak_reference(producer: Construct, attribute: str, value: str, consumer: Construct) -> str:
    """``value`` (a token of ``producer``'s stack) as ``consumer``'s stack may read it, weakly."""
    produced = _PRODUCED.get(producer)
    if produced is None:
        produced = _PRODUCED[producer] = _Produced(Stack.of(producer), producer.node.path)
    producer_stack = produced.stack
    consumer_stack = consumer if isinstance(consumer, Stack) else Stack.of(consumer)
    if producer_stack is consumer_stack:
        return value
    name = produced.outputs.get(attribute)
    if name is None:
        name = output_name(producer, attribute)
        if producer_stack.node.try_find_child(name) is None:
            output = CfnOutput(producer_stack, name, value=value,
                               description=f"certfleet: {attribute} of {produced.path}")
            output.override_logical_id(name)
        produced.outputs[attribute] = name
    if id(consumer_stack) not in produced.readers:
        consumer_stack.add_stack_dependency(producer_stack, f"certfleet: reads {attribute} of {produced.path}")
        produced.readers.add(id(consumer_stack))
    here, there = _facts(producer_stack), _facts(consumer_stack)
    role_arn = None
    if here.account != there.account:
        role_arn = _reader_role(producer_stack, consumer_stack)
    token = produced.tokens.get((name, role_arn))
    if token is None:
        token = produced.tokens[(name, role_arn)] = Fn.get_stack_output(here.stack_name, name, here.region, role_arn)
    return token


class _ReaderTrust(Construct):
    """The consumer execution roles one reader role trusts (one per consumer stack's account and region)."""

    def __init__(self, scope: Construct, id: str, role: iam.CfnRole) -> None:
        super().__init__(scope, id)
        self.role = role
        self.execution_roles: list[str] = []

    def trust(self, execution_role: str) -> None:
        """Add ``execution_role`` (a bootstrap role name with ``${AWS::Partition}``) to the role's trust policy."""
        if execution_role in self.execution_roles:
            return
        self.execution_roles.append(execution_role)
        principals = [Fn.sub(arn) for arn in self.execution_roles]
        self.role.assume_role_policy_document = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"AWS": principals[0] if len(principals) == 1 else principals},
        }]}


def _reader_role(producer: Stack, consumer: Stack) -> str:
    """A role in the producer's account that the consumers' CloudFormation execution roles may assume to read
    the producer's outputs (``Fn::GetStackOutput`` ``RoleArn``): allowed ``cloudformation:DescribeStacks`` on
    the producer stack only. One per producer stack and consumer account, with a fixed name so that a consumer
    names it without reading anything of the producer (aws-cdk-lib's own weak references do the same); it trusts
    the execution role of every consumer stack that uses it, each of which is specific to its region.
    """
    execution_role = getattr(consumer.synthesizer, "cloud_formation_execution_role_arn", None)
    if not execution_role:
        raise ValueError(
            f"{consumer.node.path}: reading {producer.node.path}'s outputs from another account needs a synthesizer "
            "with a CloudFormation execution role (DefaultStackSynthesizer has one)",
        )
    if Token.is_unresolved(producer.account) or Token.is_unresolved(consumer.account):
        raise ValueError(
            f"{consumer.node.path} reads {producer.node.path} across accounts: give both stacks an explicit "
            "env=Environment(account=..., region=...)",
        )
    id = f"CertfleetOutputReader{consumer.account}"
    digest = hashlib.sha256(f"{producer.stack_name}/{producer.region}/{consumer.account}".encode()).hexdigest()
    role_name = f"certfleet-output-reader-{digest[:24]}"
    trust = producer.node.try_find_child(f"{id}Trust")
    if not isinstance(trust, _ReaderTrust):
        reader = iam.CfnRole(
            producer, id,
            role_name=role_name,
            description=f"certfleet: lets account {consumer.account}'s CloudFormation read {producer.stack_name}'s "
                        "outputs (Fn::GetStackOutput)",
            assume_role_policy_document={},
            policies=[iam.CfnRole.PolicyProperty(policy_name="DescribeThisStack", policy_document={
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow", "Action": "cloudformation:DescribeStacks",
                    "Resource": producer.format_arn(service="cloudformation", resource="stack",
                                                    resource_name=f"{producer.stack_name}/*"),
                }],
            })],
        )
        trust = _ReaderTrust(producer, f"{id}Trust", reader)
    # the bootstrap template's name, with ${AWS::Partition}: a Fn::Sub, as aws-cdk-lib renders it
    trust.trust(str(execution_role))
    return f"arn:{Aws.PARTITION}:iam::{producer.account}:role/{role_name}"
