"""Expiry monitoring: an imported certificate never renews itself, so make its expiry impossible to miss.

What each certificate gets, how one topic serves every region, and who may publish: docs/design/monitoring.md.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from typing import cast

import jsii
from aws_cdk import Annotations, Aws, CfnResource, Stack, Stage, Token
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct, IValidation

from certfleet.references import weak_reference

ACM_EXPIRY_DETAIL_TYPE = "ACM Certificate Approaching Expiration"
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
MAX_DAYS_BEFORE_EXPIRY = 45
ACCOUNT_CONFIG_ID = "CertfleetAccountExpiryEvents"
ACCOUNT_RESOURCE_TYPE = "AWS::CertificateManager::Account"
EVENTS_SERVICE = "events.amazonaws.com"
CLOUDWATCH_SERVICE = "cloudwatch.amazonaws.com"
_PUBLISH_SIDS = {EVENTS_SERVICE: "CertfleetEventBridgePublish", CLOUDWATCH_SERVICE: "CertfleetCloudWatchAlarmsPublish"}
TOPIC_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")

# (account, region) -> (days, path) of the construct that configures the account, per root App/Stage
_ACCOUNT_CONFIGS: weakref.WeakKeyDictionary[Stage, dict[tuple[str, str], tuple[int, str]]] = (
    weakref.WeakKeyDictionary()
)
# (topic path, service) already allowed to publish, per root App/Stage
_ALLOWED_TOPICS: weakref.WeakKeyDictionary[Stage, set[tuple[str, str]]] = weakref.WeakKeyDictionary()
# roots that already check that AWS::CertificateManager::Account is declared once per account and region
_CHECKED_ROOTS: weakref.WeakSet[Stage] = weakref.WeakSet()

__all__ = ["ExpiryMonitoring", "ExpiryRelay", "RenewalMonitoring", "forward_to_relay"]


def validate_days(owner: str, days: int, days_before_expiry_event: int) -> None:
    """Fail synth on alarm / event thresholds that CloudWatch or ACM would refuse or that make no sense."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"{owner}: days={days!r} must be a whole number of days, at least 1 (e.g. days=30)")
    if (isinstance(days_before_expiry_event, bool) or not isinstance(days_before_expiry_event, int)
            or not 1 <= days_before_expiry_event <= MAX_DAYS_BEFORE_EXPIRY):
        raise ValueError(
            f"{owner}: days_before_expiry_event={days_before_expiry_event!r} must be between 1 and "
            f"{MAX_DAYS_BEFORE_EXPIRY} (ACM's DaysBeforeExpiry range)",
        )


class ExpiryMonitoring(Construct):
    """The alarm and the event rule of one certificate, in the certificate's stack (docs/design/monitoring.md).

    Use ``CertificateFleet.add_expiry_monitoring`` or ``ImportedCertificate.add_expiry_monitoring``.

    Args:
        certificate_arn: The ARN of the certificate whose ACM expiry events are matched.
        certificate_name: The certificate's name in alarm and rule descriptions.
        metric: The certificate's ``DaysToExpiry`` metric, in its own region.
        topic: The SNS topic alarms and expiry events go to, in the certificate's account, any region.
        days: The alarm's threshold in days left. Default: 30.
        days_before_expiry_event: The account's ``DaysBeforeExpiry`` in this region (1-45). Default: 45.
        configure_account_expiry_events: Declare that per-account setting in this stack. Default: True.
        relay_stacks: Finds a stack of the app in a given region to hold the relay when the topic's own stack is
            not in the topic's region. Default: None (the topic's stack only).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        certificate_arn: str,
        certificate_name: str,
        metric: cloudwatch.IMetric,
        topic: sns.ITopic,
        days: int = 30,
        days_before_expiry_event: int = MAX_DAYS_BEFORE_EXPIRY,
        configure_account_expiry_events: bool = True,
        relay_stacks: Callable[[str], Stack | None] | None = None,
    ) -> None:
        super().__init__(scope, id)
        validate_days(self.node.path, days, days_before_expiry_event)
        stack = Stack.of(self)
        region = stack.region
        topic_region = _topic_region(self.node.path, topic)
        _check_topic_account(self.node.path, topic, stack)
        self.alarm = cloudwatch.Alarm(
            self, "DaysToExpiry",
            metric=metric,
            threshold=days,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
            alarm_description=(
                f"certfleet: the certificate {certificate_name} in {region} expires within {days} days (still in "
                "ALARM once expired: ACM stops publishing DaysToExpiry then, and missing data keeps the state). "
                "Renew it with the CA, point the bundle at the new files and deploy: certfleet re-imports it in place."
            ),
        )
        self.expiry_rule = events.Rule(
            self, "ApproachingExpiration",
            description=f"certfleet: ACM's daily expiry notice for {certificate_name} in {region}",
            event_pattern=events.EventPattern(
                source=["aws.acm"], detail_type=[ACM_EXPIRY_DETAIL_TYPE], resources=[certificate_arn],
            ),
        )
        self.alarm_rule: events.Rule | None = None
        self.relay: ExpiryRelay | None = None
        if topic_region == region:
            local = topic_in(stack, topic)
            allow_publish(topic, publishers=(EVENTS_SERVICE, CLOUDWATCH_SERVICE))
            self.alarm.add_alarm_action(cloudwatch_actions.SnsAction(local))
            self.expiry_rule.add_target(targets.SnsTopic(local))
        else:
            self.relay, self.alarm_rule = forward_to_relay(
                self, topic, topic_region, relay_stacks, alarm=self.alarm, rules=[self.expiry_rule],
                what=f"expiry events of {certificate_name}", alarm_what=f"the DaysToExpiry alarm of {certificate_name}",
            )
        self.account_config: acm.CfnAccount | None = None
        if configure_account_expiry_events:
            self.account_config = configure_account(self, days_before_expiry_event)


def forward_to_relay(
    scope: Construct, topic: sns.ITopic, topic_region: str, relay_stacks: Callable[[str], Stack | None] | None, *,
    alarm: cloudwatch.Alarm, rules: list[events.Rule], what: str, alarm_what: str,
) -> tuple[ExpiryRelay, events.Rule]:
    """Forward ``alarm``'s ALARM state and what ``rules`` match, from ``scope``'s region to ``topic`` in
    ``topic_region``, through the topic's relay (an event bus there); the relay and the alarm's rule.

    Args:
        alarm: the alarm whose ALARM state is forwarded (in ``scope``'s stack).
        rules: more rules of ``scope``'s stack whose events go the same way.
        what: what is forwarded, for the forwarder role's description.
        alarm_what: the alarm, for its forwarding rule's description.
    """
    stack = Stack.of(scope)
    host = _relay_host(scope.node.path, topic, topic_region, relay_stacks)
    relay = ExpiryRelay.of(host, topic)
    bus = events.EventBus.from_event_bus_arn(
        scope, "RelayBus",
        stack.format_arn(service="events", resource="event-bus", resource_name=relay.bus_name,
                         region=topic_region, account=host.account),
    )
    alarm_rule = events.Rule(
        scope, "AlarmToRelay",
        description=f"certfleet: forwards {alarm_what} to {topic_region}",
        event_pattern=events.EventPattern(
            source=["aws.cloudwatch"], detail_type=[ALARM_DETAIL_TYPE], resources=[alarm.alarm_arn],
            detail={"state": {"value": ["ALARM"]}},
        ),
    )
    forwarder = iam.Role(
        scope, "ForwarderRole", assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
        description=f"certfleet: forwards {what} to {topic_region}",
    )
    for rule in (*rules, alarm_rule):
        rule.add_target(targets.EventBus(bus, role=forwarder))
    if host is not stack:
        stack.add_stack_dependency(host, "certfleet: the expiry relay bus exists before events reach it")
    return relay, alarm_rule


class RenewalMonitoring(Construct):
    """An ACME renewer's failures to the fleet's expiry topic: its alarm (any error in a day), delivered directly in
    the topic's region or through the topic's relay.

    Args:
        alarm: the renewer's errors alarm (in this construct's stack).
        topic: where the alarm goes, in the stack's account, any region.
        relay_stacks: finds a stack of the app in a given region to hold the relay. Default: None (the topic's).
    """

    def __init__(self, scope: Construct, id: str, *, alarm: cloudwatch.Alarm, topic: sns.ITopic,
                 relay_stacks: Callable[[str], Stack | None] | None = None) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        topic_region = _topic_region(self.node.path, topic)
        _check_topic_account(self.node.path, topic, stack)
        self.relay: ExpiryRelay | None = None
        self.alarm_rule: events.Rule | None = None
        if topic_region == stack.region:
            allow_publish(topic, publishers=(CLOUDWATCH_SERVICE,))
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic_in(stack, topic)))
        else:
            self.relay, self.alarm_rule = forward_to_relay(self, topic, topic_region, relay_stacks, alarm=alarm,
                                                           rules=[], what="ACME renewal failures",
                                                           alarm_what="the ACME renewer's errors alarm")


class ExpiryRelay(Construct):
    """In the topic's region: a certfleet event bus and the rule that delivers what arrives on it to the topic.

    Args:
        topic: The SNS topic that forwarded expiry events and alarms are delivered to.
    """

    def __init__(self, scope: Construct, id: str, *, topic: sns.ITopic) -> None:
        super().__init__(scope, id)
        self.bus_name = relay_bus_name(topic)
        self.bus = events.EventBus(
            self, "Bus", event_bus_name=self.bus_name,
            description="certfleet: expiry events and alarms of certificates in other regions, for one topic",
        )
        self.rule = events.Rule(
            self, "ToTopic",
            event_bus=self.bus,
            description="certfleet: delivers forwarded certificate expiry events and alarms to the topic",
            event_pattern=events.EventPattern(source=["aws.acm", "aws.cloudwatch"]),
        )
        allow_publish(topic, publishers=(EVENTS_SERVICE,))
        self.rule.add_target(targets.SnsTopic(topic_in(Stack.of(self), topic)))

    @classmethod
    def of(cls, stack: Stack, topic: sns.ITopic) -> ExpiryRelay:
        """The relay of ``topic`` in ``stack``, created on first use (one per stack and topic)."""
        id = relay_id(topic)
        existing = stack.node.try_find_child(id)
        return existing if isinstance(existing, ExpiryRelay) else cls(stack, id, topic=topic)


def relay_id(topic: sns.ITopic) -> str:
    """The construct id of ``topic``'s relay in a stack (one per stack and topic)."""
    return "CertfleetExpiryRelay" + _digest(topic)[:8]


def relay_bus_name(topic: sns.ITopic) -> str:
    """A stable name for the relay bus of ``topic``: both sides compute it, no stack reads the other's outputs."""
    return f"certfleet-expiry-{_digest(topic)[:16]}"


def _digest(topic: sns.ITopic) -> str:
    arn = topic.topic_arn
    key = topic.node.path if Token.is_unresolved(arn) else arn
    return hashlib.sha256(key.encode()).hexdigest()


def topic_in(stack: Stack, topic: sns.ITopic) -> sns.ITopic:
    """``topic`` as ``stack`` may use it: itself, or imported by ARN (read weakly when it is another stack's)."""
    if Stack.of(topic) is stack:
        return topic
    id = "CertfleetTopic" + _digest(topic)[:8]
    existing = stack.node.try_find_child(id)
    if existing is not None:
        return cast(sns.ITopic, existing)
    arn = topic.topic_arn
    if Token.is_unresolved(arn):
        arn = weak_reference(cast(Construct, topic), "TopicArn", arn, stack)
    return sns.Topic.from_topic_arn(stack, id, arn)


def allow_publish(topic: sns.ITopic, *, publishers: tuple[str, ...] = (EVENTS_SERVICE, CLOUDWATCH_SERVICE)) -> None:
    """Let each of ``publishers`` publish to ``topic`` and use its KMS key (a no-op for an imported topic).

    Args:
        publishers: Service principals of the topic's account. Default: EventBridge and CloudWatch.
    """
    stack = Stack.of(topic)
    root = topic.node.root
    done = _ALLOWED_TOPICS.setdefault(root, set()) if isinstance(root, Stage) else set()
    for service in publishers:
        if (topic.node.path, service) in done:
            continue
        done.add((topic.node.path, service))
        topic.add_to_resource_policy(iam.PolicyStatement(
            sid=_PUBLISH_SIDS.get(service),
            principals=[iam.ServicePrincipal(service)],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        ))
        _allow_key_use(topic, service)


def _allow_key_use(topic: sns.ITopic, service: str) -> None:
    """Grant ``service`` what SNS needs from it to publish to an encrypted topic: the key's data keys.

    The statement matches the one ``Topic.grant_publish`` writes for a service principal, so the two merge. No
    ``aws:Source*`` condition: SNS's documented statement has none, and EventBridge's KMS requests do not carry one.
    """
    key = topic.master_key
    if key is None:
        return
    owner = topic.node.path
    if _is_aws_managed(key):
        raise ValueError(
            f"{owner}: the expiry topic is encrypted with the AWS managed key alias/aws/sns, which {service} cannot "
            "use, so no alarm or expiry event would ever arrive: encrypt the topic with a customer managed KMS key "
            "(kms.Key) instead; certfleet then lets CloudWatch and EventBridge use it",
        )
    added = key.add_to_resource_policy(iam.PolicyStatement(
        principals=[iam.ServicePrincipal(service)], actions=list(TOPIC_KEY_ACTIONS), resources=["*"],
    ))
    if not added.statement_added:
        Annotations.of(topic).add_warning_v2(
            "certfleet:expiry-topic-key",
            f"the expiry topic's KMS key is imported, so certfleet cannot let {service} use it: add to that key's "
            f"policy a statement allowing principal {{\"Service\": \"{service}\"}} the actions "
            f"{', '.join(TOPIC_KEY_ACTIONS)} on \"*\", or no expiry alert is ever delivered (once it does, "
            "acknowledge this warning: Annotations.of(topic).acknowledge_warning('certfleet:expiry-topic-key'))",
        )


def _is_aws_managed(key: kms.IKey) -> bool:
    names = [getattr(key, "alias_name", ""), key.key_id, key.key_arn]
    return any(isinstance(n, str) and ("alias/aws/" in n) for n in names)


def _topic_region(owner: str, topic: sns.ITopic) -> str:
    region = topic.env.region
    if Token.is_unresolved(region):
        raise ValueError(
            f"{owner}: the expiry topic {topic.node.path} has no known region (its stack is environment-agnostic): "
            "give that stack env=Environment(account=..., region=...), or import the topic by its full ARN "
            "(sns.Topic.from_topic_arn)",
        )
    return region


def _check_topic_account(owner: str, topic: sns.ITopic, stack: Stack) -> None:
    account = topic.env.account
    if not Token.is_unresolved(account) and not Token.is_unresolved(stack.account) and account != stack.account:
        raise ValueError(
            f"{owner}: the expiry topic {topic.node.path} is in account {account}, the certificate in "
            f"{stack.account}: use a topic in the certificate's account (subscribe the other account's endpoints "
            "to it)",
        )


def _relay_host(
    owner: str, topic: sns.ITopic, topic_region: str, relay_stacks: Callable[[str], Stack | None] | None,
) -> Stack:
    """The stack that holds the relay in the topic's region: the topic's own, else a fleet stack there."""
    own = Stack.of(topic)
    if own.region == topic_region:
        return own
    fallback = relay_stacks(topic_region) if relay_stacks else None
    if fallback is not None:
        return fallback
    raise ValueError(
        f"{owner}: the expiry topic {topic.node.path} is in {topic_region}, and no stack of this app in "
        f"{topic_region} can hold the relay that forwards expiry events there: import the topic "
        f"(sns.Topic.from_topic_arn) in a stack whose env region is {topic_region}, or use a topic in the "
        "certificate's region",
    )


def configure_account(scope: Construct, days_before_expiry: int) -> acm.CfnAccount | None:
    """The account's ``DaysBeforeExpiry`` in ``scope``'s region, declared once per account and region per app.

    A second declaration with the same value is skipped; a different value, or another declaration in the app, fails
    synth (``AWS::CertificateManager::Account`` is one setting per account and region).
    """
    stack = Stack.of(scope)
    root = scope.node.root
    registry = _ACCOUNT_CONFIGS.setdefault(root, {}) if isinstance(root, Stage) else {}
    key = (stack.account if not Token.is_unresolved(stack.account) else Aws.ACCOUNT_ID, stack.region)
    seen = registry.get(key)
    if seen is not None:
        days, path = seen
        if days != days_before_expiry:
            raise ValueError(
                f"{scope.node.path}: DaysBeforeExpiry of account {key[0]} in {key[1]} is already set to {days} by "
                f"{path}; it is one setting per account and region. Use the same days_before_expiry_event, or "
                "configure_account_expiry_events=False here",
            )
        return None
    registry[key] = (days_before_expiry, scope.node.path)
    if isinstance(root, Stage) and root not in _CHECKED_ROOTS:
        _CHECKED_ROOTS.add(root)
        root.node.add_validation(_OneAccountSettingPerRegion(root))
    existing = stack.node.try_find_child(ACCOUNT_CONFIG_ID)
    if isinstance(existing, acm.CfnAccount):
        return existing
    return acm.CfnAccount(
        stack, ACCOUNT_CONFIG_ID,
        expiry_events_configuration=acm.CfnAccount.ExpiryEventsConfigurationProperty(
            days_before_expiry=days_before_expiry,
        ),
    )


@jsii.implements(IValidation)
class _OneAccountSettingPerRegion:
    """Synth fails when the app declares ``AWS::CertificateManager::Account`` twice for one account and region.

    It is a singleton: two stacks that declare it fight over one value, and the second create fails. certfleet
    declares it once per account and region; this catches another declaration in the same app (yours, or a
    construct's), across every stack and stage.
    """

    def __init__(self, root: Construct) -> None:
        self._root = root

    def validate(self) -> list[str]:
        found: dict[tuple[str, str], list[str]] = {}
        for node in self._root.node.find_all():
            # the class alone decides for an L1 (no round trip to jsii); only a raw CfnResource is asked its type
            if isinstance(node, acm.CfnAccount) or (
                type(node) is CfnResource and node.cfn_resource_type == ACCOUNT_RESOURCE_TYPE
            ):
                stack = Stack.of(node)
                found.setdefault((stack.account, stack.region), []).append(node.node.path)
        errors = []
        for (account, region), paths in found.items():
            if len(paths) > 1:
                account_name = "the deploy account" if Token.is_unresolved(account) else f"account {account}"
                region_name = "the deploy region" if Token.is_unresolved(region) else region
                errors.append(
                    f"{ACCOUNT_RESOURCE_TYPE} is declared {len(paths)} times for {account_name} in {region_name} "
                    f"({', '.join(paths)}); it is one setting per account and region, and the stacks would fight over "
                    "it: keep one (configure_account_expiry_events=False on the other certfleet fleets and groups, "
                    "or remove your own declaration)",
                )
        return errors
