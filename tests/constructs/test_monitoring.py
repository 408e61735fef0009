"""Expiry monitoring: alarm + ACM expiry events to one SNS topic in any region, and the account's DaysBeforeExpiry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Annotations as CdkAnnotations
from aws_cdk import App, CfnResource, Environment, Stack, Stage
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Annotations, Match, Template
from construct_support import ACCOUNT
from constructs import Construct

from certfleet import CertificateBundle, CertificateFleet, ImportedCertificate, KeySource

SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:production/ssl/private-key-AbCdEf"
ACM_EVENT = "ACM Certificate Approaching Expiration"


def _fleet(app: Stage, bundle: CertificateBundle, name: str = "Certificates") -> CertificateFleet:
    return CertificateFleet(app, name, bundle=bundle, key=KeySource.secret(SECRET), account=ACCOUNT,
                            regions=["eu-west-1"])


def _ops(app: App, region: str = "us-east-1") -> tuple[Stack, sns.Topic]:
    ops = Stack(app, "Ops", env=Environment(account=ACCOUNT, region=region))
    return ops, sns.Topic(ops, "Alerts")


def _resources(template: Template, type_: str) -> list[dict[str, Any]]:
    return [dict(resource) for resource in template.find_resources(type_).values()]


def test_alarm_in_every_region_keeps_its_state_on_missing_data(bundle: CertificateBundle) -> None:
    """A new ARN has no data for up to a day: "ignore" keeps INSUFFICIENT_DATA (no page); an expired certificate's
    alarm, in ALARM since ``days`` before, stays there when ACM stops publishing. "breaching" paged at once."""
    app = App()
    fleet = _fleet(app, bundle)
    _, topic = _ops(app)
    fleet.add_expiry_monitoring(topic=topic, days=21)
    for region in fleet.regions:
        template = Template.from_stack(fleet.stack_for(region))
        template.resource_count_is("AWS::CloudWatch::Alarm", 1)
        template.has_resource_properties("AWS::CloudWatch::Alarm", {
            "Namespace": "AWS/CertificateManager",
            "MetricName": "DaysToExpiry",
            "Dimensions": [{"Name": "CertificateArn", "Value": {"Ref": Match.any_value()}}],
            "Statistic": "Minimum",
            "Period": 86400,
            "Threshold": 21,
            "ComparisonOperator": "LessThanOrEqualToThreshold",
            "TreatMissingData": "ignore",
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "AlarmDescription": Match.string_like_regexp(f"www.example.com in {region} expires within 21 days"),
        })
        template.has_resource_properties("AWS::Events::Rule", {"EventPattern": {
            "source": ["aws.acm"], "detail-type": [ACM_EVENT], "resources": [{"Ref": Match.any_value()}],
        }})
        template.has_resource_properties("AWS::CertificateManager::Account", {
            "ExpiryEventsConfiguration": {"DaysBeforeExpiry": 45},
        })


def test_topic_in_the_certificate_region_is_the_alarm_action_and_rule_target(bundle: CertificateBundle) -> None:
    app = App()
    fleet = _fleet(app, bundle)
    _, topic = _ops(app, "us-east-1")
    fleet.add_expiry_monitoring(topic=topic)
    template = Template.from_stack(fleet.stack_for("us-east-1"))
    topic_arn = {"Fn::GetStackOutput": {"StackName": "Ops", "Region": "us-east-1", "OutputName": Match.any_value()}}
    template.has_resource_properties("AWS::CloudWatch::Alarm", {"AlarmActions": [topic_arn]})
    template.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": Match.object_like({"source": ["aws.acm"]}),
        "Targets": [Match.object_like({"Arn": topic_arn})],
    })
    template.resource_count_is("AWS::Events::EventBus", 0)


def test_topic_in_another_region_is_reached_through_a_relay_bus(bundle: CertificateBundle) -> None:
    app = App()
    fleet = _fleet(app, bundle)
    ops, topic = _ops(app, "us-east-1")
    fleet.add_expiry_monitoring(topic=topic)
    ops_template = Template.from_stack(ops)
    (bus,) = _resources(ops_template, "AWS::Events::EventBus")
    bus_name = bus["Properties"]["Name"]
    assert bus_name.startswith("certfleet-expiry-")
    ops_template.has_resource_properties("AWS::Events::Rule", {
        "EventBusName": {"Ref": Match.any_value()},
        "EventPattern": {"source": ["aws.acm", "aws.cloudwatch"]},
        "Targets": [Match.object_like({"Arn": {"Ref": Match.string_like_regexp("Alerts")}})],
    })
    policy = json.dumps(_resources(ops_template, "AWS::SNS::TopicPolicy"))
    assert "events.amazonaws.com" in policy and "cloudwatch.amazonaws.com" in policy

    europe = Template.from_stack(fleet.stack_for("eu-west-1"))
    (alarm,) = _resources(europe, "AWS::CloudWatch::Alarm")
    assert "AlarmActions" not in alarm["Properties"], "CloudWatch cannot notify a topic in another region"
    rules = _resources(europe, "AWS::Events::Rule")
    assert len(rules) == 2
    by_source = {r["Properties"]["EventPattern"]["source"][0]: r["Properties"] for r in rules}
    assert by_source["aws.cloudwatch"]["EventPattern"]["detail-type"] == ["CloudWatch Alarm State Change"]
    assert by_source["aws.cloudwatch"]["EventPattern"]["detail"] == {"state": {"value": ["ALARM"]}}
    assert by_source["aws.acm"]["EventPattern"]["detail-type"] == [ACM_EVENT]
    for rule in by_source.values():
        (target,) = rule["Targets"]
        arn = json.dumps(target["Arn"])
        assert f":events:us-east-1:{ACCOUNT}:event-bus/{bus_name}" in arn
        assert "RoleArn" in target
    statements = [s for p in _resources(europe, "AWS::IAM::Policy") for s in p["Properties"]["PolicyDocument"]
                  ["Statement"] if s["Action"] == "events:PutEvents"]
    assert statements and all(bus_name in json.dumps(s["Resource"]) for s in statements)
    assert "Ops" in {d.stack_name for d in fleet.stack_for("eu-west-1").dependencies}


def test_topic_imported_by_arn_relays_through_the_fleet_stack_of_its_region(bundle: CertificateBundle) -> None:
    app = App()
    fleet = _fleet(app, bundle)
    elsewhere = Stack(app, "Elsewhere", env=Environment(account=ACCOUNT, region="ap-northeast-1"))
    topic = sns.Topic.from_topic_arn(elsewhere, "Alerts", f"arn:aws:sns:us-east-1:{ACCOUNT}:oncall")
    fleet.add_expiry_monitoring(topic=topic)
    edge = Template.from_stack(fleet.stack_for("us-east-1"))
    edge.resource_count_is("AWS::Events::EventBus", 1)
    edge.has_resource_properties("AWS::CloudWatch::Alarm", {
        "AlarmActions": [f"arn:aws:sns:us-east-1:{ACCOUNT}:oncall"],
    })
    edge.has_resource_properties("AWS::Events::Rule", {
        "EventBusName": Match.any_value(),
        "Targets": [Match.object_like({"Arn": f"arn:aws:sns:us-east-1:{ACCOUNT}:oncall"})],
    })
    Template.from_stack(elsewhere).resource_count_is("AWS::Events::EventBus", 0)


def test_no_stack_in_the_topic_region_is_refused_with_the_fix(bundle: CertificateBundle) -> None:
    app = App()
    fleet = _fleet(app, bundle)
    holder = Stack(app, "Holder", env=Environment(account=ACCOUNT, region="eu-west-1"))
    topic = sns.Topic.from_topic_arn(holder, "Alerts", f"arn:aws:sns:sa-east-1:{ACCOUNT}:oncall")
    with pytest.raises(ValueError, match=r"is in sa-east-1, and no stack .* in a stack whose env region is "
                                         r"sa-east-1, or use a topic in the certificate's region"):
        fleet.add_expiry_monitoring(topic=topic)


def test_topic_of_another_account_or_without_region_is_refused(bundle: CertificateBundle) -> None:
    app = App()
    fleet = _fleet(app, bundle)
    holder = Stack(app, "Holder", env=Environment(account=ACCOUNT, region="us-east-1"))
    foreign = sns.Topic.from_topic_arn(holder, "Foreign", "arn:aws:sns:us-east-1:222222222222:oncall")
    with pytest.raises(ValueError, match="is in account 222222222222"):
        fleet.add_expiry_monitoring(topic=foreign)
    agnostic = sns.Topic(Stack(app, "Agnostic"), "Alerts")
    with pytest.raises(ValueError, match="has no known region"):
        _fleet(app, bundle, "Other").add_expiry_monitoring(topic=agnostic)


def test_thresholds_are_validated(bundle: CertificateBundle) -> None:
    app = App()
    fleet = _fleet(app, bundle)
    _, topic = _ops(app)
    with pytest.raises(ValueError, match=r"^Certificates: days=0 must be .* at least 1"):
        fleet.add_expiry_monitoring(topic=topic, days=0)
    with pytest.raises(ValueError, match=r"days_before_expiry_event=60 must be between 1 and 45"):
        fleet.add_expiry_monitoring(topic=topic, days_before_expiry_event=60)


def test_account_expiry_setting_is_one_per_account_and_region(bundle: CertificateBundle) -> None:
    app = App()
    first = _fleet(app, bundle, "First")
    second = _fleet(app, bundle, "Second")
    _, topic = _ops(app)
    first.add_expiry_monitoring(topic=topic, days_before_expiry_event=40)
    second.add_expiry_monitoring(topic=topic, days_before_expiry_event=40)  # same value: declared once
    counts = [
        len(_resources(Template.from_stack(fleet.stack_for("eu-west-1")), "AWS::CertificateManager::Account"))
        for fleet in (first, second)
    ]
    assert counts == [1, 0]
    third = _fleet(app, bundle, "Third")
    with pytest.raises(ValueError, match=r"DaysBeforeExpiry of account 123456789012 in us-east-1 is already set "
                                         r"to 40 by First/.*configure_account_expiry_events=False"):
        third.add_expiry_monitoring(topic=topic, days_before_expiry_event=30)


def test_account_expiry_setting_can_be_left_to_its_owner(bundle: CertificateBundle) -> None:
    app = App()
    fleet = _fleet(app, bundle)
    _, topic = _ops(app)
    fleet.add_expiry_monitoring(topic=topic, configure_account_expiry_events=False)
    for region in fleet.regions:
        template = Template.from_stack(fleet.stack_for(region))
        template.resource_count_is("AWS::CertificateManager::Account", 0)
        template.resource_count_is("AWS::CloudWatch::Alarm", 1)


def test_single_certificate_monitoring_in_its_own_stack(bundle: CertificateBundle) -> None:
    app = App()
    stack = Stack(app, "Certs", env=Environment(account=ACCOUNT, region="eu-west-1"))
    cert = ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.secret(SECRET))
    topic = sns.Topic(stack, "Alerts")
    cert.add_expiry_monitoring(topic=topic, days=14, days_before_expiry_event=30)
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Threshold": 14, "AlarmActions": [{"Ref": Match.string_like_regexp("Alerts")}],
    })
    template.has_resource_properties("AWS::Events::Rule", {
        "Targets": [Match.object_like({"Arn": {"Ref": Match.string_like_regexp("Alerts")}})],
    })
    template.has_resource_properties("AWS::CertificateManager::Account", {
        "ExpiryEventsConfiguration": {"DaysBeforeExpiry": 30},
    })
    with pytest.raises(ValueError, match="Certs/Cert: expiry monitoring is already on"):
        cert.add_expiry_monitoring(topic=topic)


def _key_statements(template: Template) -> list[dict[str, Any]]:
    (key,) = _resources(template, "AWS::KMS::Key")
    return list(key["Properties"]["KeyPolicy"]["Statement"])


def _service_key_grants(template: Template) -> dict[str, list[list[str]]]:
    grants: dict[str, list[list[str]]] = {}
    for statement in _key_statements(template):
        service = statement.get("Principal", {}).get("Service")
        if isinstance(service, str):
            actions = statement["Action"]
            grants.setdefault(service, []).append(sorted([actions] if isinstance(actions, str) else actions))
            assert statement["Resource"] == "*" and statement["Effect"] == "Allow"
    return grants


def _encrypted_topic(stack: Stack) -> sns.Topic:
    return sns.Topic(stack, "Alerts", master_key=kms.Key(stack, "AlertsKey", enable_key_rotation=True))


def test_encrypted_topic_in_the_certificate_region_lets_both_publishers_use_its_key(bundle: CertificateBundle) -> None:
    app = App()
    fleet = _fleet(app, bundle)
    ops = Stack(app, "Ops", env=Environment(account=ACCOUNT, region="eu-west-1"))
    fleet.add_expiry_monitoring(topic=_encrypted_topic(ops))  # eu-west-1 direct; us-east-1 through the relay
    grants = _service_key_grants(Template.from_stack(ops))
    both = ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert grants == {"cloudwatch.amazonaws.com": [both], "events.amazonaws.com": [both]}


def test_encrypted_topic_in_its_own_stack_lets_the_alarm_use_its_key(bundle: CertificateBundle) -> None:
    app = App()
    stack = Stack(app, "Certs", env=Environment(account=ACCOUNT, region="eu-west-1"))
    cert = ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.secret(SECRET))
    cert.add_expiry_monitoring(topic=_encrypted_topic(stack))
    grants = _service_key_grants(Template.from_stack(stack))
    both = ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert grants == {"cloudwatch.amazonaws.com": [both], "events.amazonaws.com": [both]}, "merged with CDK's grant"


def test_relay_only_topic_grants_eventbridge_alone(bundle: CertificateBundle) -> None:
    app = App()
    stack = Stack(app, "Certs", env=Environment(account=ACCOUNT, region="eu-west-1"))
    cert = ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.secret(SECRET))
    ops = Stack(app, "Ops", env=Environment(account=ACCOUNT, region="us-east-1"))
    cert.add_expiry_monitoring(topic=_encrypted_topic(ops))
    template = Template.from_stack(ops)
    assert _service_key_grants(template) == {"events.amazonaws.com": [["kms:Decrypt", "kms:GenerateDataKey*"]]}
    policy = json.dumps(_resources(template, "AWS::SNS::TopicPolicy"))
    assert "events.amazonaws.com" in policy
    assert "cloudwatch.amazonaws.com" not in policy, "no CloudWatch alarm publishes to a topic in another region"


def test_topic_under_the_aws_managed_sns_key_is_refused_with_the_fix(bundle: CertificateBundle) -> None:
    app = App()
    stack = Stack(app, "Certs", env=Environment(account=ACCOUNT, region="eu-west-1"))
    cert = ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.secret(SECRET))
    topic = sns.Topic(stack, "Alerts", master_key=kms.Alias.from_alias_name(stack, "AwsSns", "alias/aws/sns"))
    with pytest.raises(ValueError, match=r"^Certs/Alerts: .*AWS managed key alias/aws/sns.*customer managed KMS key"):
        cert.add_expiry_monitoring(topic=topic)


def test_topic_under_an_imported_key_warns_with_the_statement_to_add(bundle: CertificateBundle) -> None:
    app = App()
    stack = Stack(app, "Certs", env=Environment(account=ACCOUNT, region="eu-west-1"))
    cert = ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.secret(SECRET))
    key = kms.Key.from_key_arn(stack, "Shared", f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234")
    topic = sns.Topic(stack, "Alerts", master_key=key)
    cert.add_expiry_monitoring(topic=topic)
    for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
        Annotations.from_stack(stack).has_warning("/Certs/Alerts", Match.string_like_regexp(
            rf"certfleet cannot let {service} use it: .*kms:Decrypt, kms:GenerateDataKey\*"))
    CdkAnnotations.of(topic).acknowledge_warning("certfleet:expiry-topic-key")
    Annotations.from_stack(stack).has_no_warning("/Certs/Alerts", Match.string_like_regexp("certfleet cannot let"))


@pytest.mark.parametrize("raw", [False, True])
def test_account_setting_declared_again_in_the_app_fails_synth(bundle: CertificateBundle, raw: bool) -> None:
    app = App()
    fleet = _fleet(app, bundle)
    _, topic = _ops(app)
    fleet.add_expiry_monitoring(topic=topic)
    mine = Stack(app, "Mine", env=Environment(account=ACCOUNT, region="eu-west-1"))
    if raw:
        CfnResource(Construct(mine, "Nested"), "Expiry", type="AWS::CertificateManager::Account")
    else:
        acm.CfnAccount(mine, "Expiry", expiry_events_configuration=acm.CfnAccount.ExpiryEventsConfigurationProperty(
            days_before_expiry=30))
    paths = r"\(Certificates/eu-west-1/.*, Mine/(Nested/)?Expiry\)"
    declared = rf"declared 2 times for account {ACCOUNT} in eu-west-1 {paths}"
    with pytest.raises(RuntimeError, match=rf"AWS::CertificateManager::Account is {declared}"):
        app.synth()


def test_account_setting_once_per_region_across_stages_synthesizes(bundle: CertificateBundle) -> None:
    app = App()
    fleets = []
    for name in ("Dev", "Prod"):
        stage = Stage(app, name)
        fleets.append(_fleet(stage, bundle))
        ops = Stack(stage, "Ops", env=Environment(account=ACCOUNT, region="us-east-1"))
        fleets[-1].add_expiry_monitoring(topic=sns.Topic(ops, "Alerts"))
    app.synth()
    declared = [len(_resources(Template.from_stack(fleet.stack_for(region)), "AWS::CertificateManager::Account"))
                for fleet in fleets for region in ("us-east-1", "eu-west-1")]
    assert declared == [1, 1, 0, 0]
