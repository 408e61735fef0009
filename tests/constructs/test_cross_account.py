"""Cross-account (the seed's FAQ 6): share the key, import it from another account, a fleet spanning accounts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template
from construct_support import ACCOUNT, sweeper_grants

from certfleet import CertificateBundle, CertificateFleet, ImportedCertificate, KeySource
from certfleet.ec2 import CertificateFiles

OTHER = "222222222222"
THIRD = "333333333333"
SHARED_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:certfleet/Certificates/www.example.com-AbCdEf"
SHARED_CMK = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _fleet(app: App, bundle: CertificateBundle, key: KeySource, **kwargs: Any) -> CertificateFleet:
    kwargs.setdefault("regions", ["eu-west-1", "ap-northeast-1"])
    return CertificateFleet(app, "Certificates", bundle=bundle, key=key, account=ACCOUNT, **kwargs)


def _statements(template: Template) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::IAM::Policy")
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def _root(account: str) -> dict[str, Any]:
    return {"AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":iam::{account}:root"]]}}


def test_share_key_with_sets_the_secret_policy_and_the_kms_key_policy(bundle: CertificateBundle,
                                                                      sealed_path: Path) -> None:
    fleet = _fleet(App(), bundle, KeySource.sealed(sealed_path))
    fleet.share_key_with([OTHER, ACCOUNT], principal_arns=[f"arn:aws:iam::{OTHER}:role/importer-*"])
    template = Template.from_stack(fleet.stack_for("us-east-1"))
    narrow = {"ArnLike": {"aws:PrincipalArn": [f"arn:aws:iam::{OTHER}:role/importer-*"]}}
    template.has_resource_properties("AWS::SecretsManager::ResourcePolicy", {
        "SecretId": {"Ref": Match.any_value()},
        "ResourcePolicy": {"Statement": [{
            "Sid": Match.string_like_regexp(OTHER), "Effect": "Allow", "Principal": _root(OTHER),
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], "Resource": "*",
            "Condition": narrow,
        }], "Version": "2012-10-17"},
    })
    (key,) = template.find_resources("AWS::KMS::Key").values()
    shared = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Principal") == _root(OTHER)]
    assert len(shared) == 1 and OTHER in shared[0].pop("Sid")
    assert shared == [{
        "Effect": "Allow", "Principal": _root(OTHER), "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}, **narrow},
    }]
    outputs = template.to_json()["Outputs"]
    assert {"CertfleetSharedKeySecretArn", "CertfleetSharedKeyEncryptionKeyArn"} <= outputs.keys()


def test_share_key_with_needs_a_key_certfleet_stores(bundle: CertificateBundle) -> None:
    fleet = _fleet(App(), bundle, KeySource.secret(SHARED_ARN))
    with pytest.raises(ValueError, match=r"^Certificates: share_key_with needs a key certfleet stores"):
        fleet.share_key_with([OTHER])
    with pytest.raises(ValueError, match="12-digit"):
        _fleet(App(), bundle, KeySource.secret(SHARED_ARN), accounts={"eu-west-1": "22"})


def test_other_account_imports_with_the_primary_arn_and_its_kms_key(bundle: CertificateBundle) -> None:
    app = App()
    stack = Stack(app, "Imports", env=Environment(account=OTHER, region="us-east-1"))
    ImportedCertificate(stack, "Cert", bundle=bundle,
                        key=KeySource.secret(SHARED_ARN, encryption_key_arn=SHARED_CMK))
    template = Template.from_stack(stack)
    template.has_resource_properties("Custom::CertfleetCertificate", {"KeySecretId": SHARED_ARN})
    statements = _statements(template)
    reads = [s for s in statements if "secretsmanager:GetSecretValue" in _actions(s)]
    assert reads and all(s["Resource"] == SHARED_ARN for s in reads)
    decrypts = [s for s in statements if "kms:Decrypt" in _actions(s)]
    assert decrypts and all(s["Resource"] == SHARED_CMK for s in decrypts)
    assert all(s["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
               for s in decrypts)
    with pytest.raises(ValueError, match="must be a KMS key ARN"):
        KeySource.secret(SHARED_ARN, encryption_key_arn="alias/certfleet")


def test_fleet_spanning_accounts(bundle: CertificateBundle, sealed_path: Path) -> None:
    app = App()
    fleet = _fleet(app, bundle, KeySource.sealed(sealed_path), accounts={"eu-west-1": OTHER})
    assert fleet.stack_for("eu-west-1").account == OTHER
    assert fleet.stack_for("ap-northeast-1").account == ACCOUNT
    primary = Template.from_stack(fleet.stack_for("us-east-1"))
    # no replica where the reader cannot use it (another account), the key shared with that account
    primary.has_resource_properties("AWS::SecretsManager::Secret", {"ReplicaRegions": [{"Region": "ap-northeast-1"}]})
    primary.has_resource_properties("AWS::SecretsManager::ResourcePolicy", {"ResourcePolicy": Match.object_like({
        "Statement": [Match.object_like({"Principal": _root(OTHER)})],
    })})
    (reader,) = primary.find_resources("AWS::IAM::Role", {"Properties": {
        "RoleName": Match.string_like_regexp("^certfleet-output-reader-")}}).values()
    props = reader["Properties"]
    assert props["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"AWS": {
        "Fn::Sub": f"arn:${{AWS::Partition}}:iam::{OTHER}:role/cdk-hnb659fds-cfn-exec-role-{OTHER}-eu-west-1"}}
    (statement,) = props["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "cloudformation:DescribeStacks"
    assert f":cloudformation:us-east-1:{ACCOUNT}:stack/Certificates-us-east-1/*" in json.dumps(statement["Resource"])

    role_arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                                  f":iam::{ACCOUNT}:role/{props['RoleName']}"]]}

    def from_primary() -> dict[str, Any]:
        return {"Fn::GetStackOutput": {"StackName": "Certificates-us-east-1", "Region": "us-east-1",
                                       "RoleArn": role_arn, "OutputName": Match.any_value()}}

    europe = Template.from_stack(fleet.stack_for("eu-west-1"))
    europe.has_resource_properties("Custom::CertfleetCertificate", {
        "KeySecretId": from_primary(), "KeySecretVersionId": from_primary(),
    })
    statements = _statements(europe)
    reads = [s for s in statements if "secretsmanager:GetSecretValue" in _actions(s)]
    decrypts = [s for s in statements if "kms:Decrypt" in _actions(s)]
    assert reads and decrypts
    for s in reads + decrypts:
        assert s["Resource"]["Fn::GetStackOutput"]["RoleArn"] == role_arn
    assert all(s["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
               for s in decrypts)
    # the same-account region still reads its replica by name
    Template.from_stack(fleet.stack_for("ap-northeast-1")).has_resource_properties("Custom::CertfleetCertificate", {
        "KeySecretId": "certfleet/fleet/Certificates-us-east-1/www.example.com/key",
    })


def test_consumer_in_another_account_reads_the_arn_through_a_reader_role(bundle: CertificateBundle,
                                                                         sealed_path: Path) -> None:
    app = App()
    fleet = _fleet(app, bundle, KeySource.sealed(sealed_path))
    web = Stack(app, "Web", env=Environment(account=THIRD, region="eu-west-1"))
    listener_cert = elbv2.ListenerCertificate.from_certificate_manager(fleet.certificate_for(web))
    assert listener_cert is not None
    arn = web.resolve(fleet.certificate_for(web).certificate_arn)
    output = arn["Fn::GetStackOutput"]
    assert output["StackName"] == "Certificates-eu-west-1" and output["Region"] == "eu-west-1"
    assert f":iam::{ACCOUNT}:role/certfleet-output-reader-" in json.dumps(output["RoleArn"])
    producer = Template.from_stack(fleet.stack_for("eu-west-1"))
    producer.has_resource_properties("AWS::IAM::Role", {
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [Match.object_like({
            "Principal": {"AWS": {"Fn::Sub": Match.string_like_regexp(f":iam::{THIRD}:role/cdk-hnb659fds-cfn-exec")}},
        })]},
    })


def test_readers_in_unshared_accounts_and_secret_names_across_accounts_are_refused(
    bundle: CertificateBundle, sealed_path: Path,
) -> None:
    app = App()
    fleet = _fleet(app, bundle, KeySource.sealed(sealed_path))
    web = Stack(app, "Web", env=Environment(account=THIRD, region="eu-west-1"))
    role = iam.Role(web, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    with pytest.raises(ValueError, match=rf"not shared with that account: fleet.share_key_with\(\['{THIRD}'\]\)"):
        CertificateFiles(web, "Tls", source=fleet, role=role)
    fleet.share_key_with([THIRD])
    files = CertificateFiles(web, "Tls2", source=fleet, role=role)
    assert "--region us-east-1" in "\n".join(files.commands), "another account reads the primary"
    with pytest.raises(ValueError, match=r"is read from another account: give the secret's full ARN"):
        CertificateFleet(App(), "ByName", bundle=bundle, key=KeySource.secret("production/ssl/private-key"),
                         account=ACCOUNT, regions=["eu-west-1"], accounts={"eu-west-1": OTHER})


def _shares(template: Template) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The sharing statements of the secret's resource policy and of its KMS key's policy."""
    (secret_policy,) = template.find_resources("AWS::SecretsManager::ResourcePolicy").values()
    (key,) = template.find_resources("AWS::KMS::Key").values()
    return ([s for s in secret_policy["Properties"]["ResourcePolicy"]["Statement"]],
            [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid", "").startswith("CertfleetShare")])


def test_a_narrowing_call_replaces_the_account_wide_grant(bundle: CertificateBundle, sealed_path: Path) -> None:
    """GIVEN accounts= shared the key with OTHER (account-wide) WHEN share_key_with narrows it to a role THEN each
    policy holds one statement for OTHER, with the narrowing, and every Sid is unique (before: a second statement
    with the same Sid was added next to the account-wide one, which kept granting the whole account)."""
    role = f"arn:aws:iam::{OTHER}:role/importer-*"
    fleet = _fleet(App(), bundle, KeySource.sealed(sealed_path), accounts={"eu-west-1": OTHER})
    fleet.share_key_with([THIRD])
    fleet.share_key_with([OTHER], principal_arns=[role])
    fleet.share_key_with([OTHER, THIRD], principal_arns=[role.replace(OTHER, "*")])
    secret, kms = _shares(Template.from_stack(fleet.stack_for("us-east-1")))
    narrow = {"aws:PrincipalArn": ["arn:aws:iam::*:role/importer-*"]}
    for statements in (secret, kms):
        sids = [s["Sid"] for s in statements]
        assert len(sids) == len(set(sids)) == 2
        assert sorted(json.dumps(s["Principal"]) for s in statements) == sorted(
            json.dumps(_root(a)) for a in (OTHER, THIRD))
        assert all(s["Condition"]["ArnLike"] == narrow for s in statements)
    assert all(s["Condition"]["StringEquals"] == {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
               for s in kms)
    with pytest.raises(ValueError, match=rf"share_key_with\(\['{OTHER}'\]\) would widen a grant already narrowed"):
        fleet.share_key_with([OTHER])


def test_sharing_with_an_account_twice_keeps_one_statement(bundle: CertificateBundle, sealed_path: Path) -> None:
    fleet = _fleet(App(), bundle, KeySource.sealed(sealed_path))
    fleet.share_key_with([OTHER])
    fleet.share_key_with([OTHER, ACCOUNT])
    secret, kms = _shares(Template.from_stack(fleet.stack_for("us-east-1")))
    assert [s["Principal"] for s in secret] == [_root(OTHER)] and [s["Principal"] for s in kms] == [_root(OTHER)]
    assert "Condition" not in secret[0]


def _sweeper_properties(stack: Stack) -> dict[str, Any]:
    (sweeper,) = Template.from_stack(stack).find_resources("Custom::CertfleetSweeper").values()
    props: dict[str, Any] = sweeper["Properties"]
    return props


def test_each_account_of_a_fleet_has_a_sweeper_for_its_own_regions(bundle: CertificateBundle,
                                                                    sealed_path: Path) -> None:
    """GIVEN a fleet with eu-west-1 in another account THEN that account has its own sweeper stack, listing only
    its regions, deployed after its fleet stack and the consumers of its certificate (before: one sweeper, in the
    key account, and certificates retired in the other account were never deleted)."""
    app = App()
    fleet = _fleet(app, bundle, KeySource.sealed(sealed_path), accounts={"eu-west-1": OTHER})
    web = Stack(app, "Web", env=Environment(account=OTHER, region="eu-west-1"))
    fleet.certificate_for(web)
    third = Stack(app, "Third", env=Environment(account=THIRD, region="eu-west-1"))
    fleet.certificate_for(third)
    edge = Stack(app, "Edge", env=Environment(account=OTHER, region="eu-west-1"))
    fleet.edge_certificate_for(edge)
    assert set(fleet.sweeper_stacks) == {ACCOUNT, OTHER}
    home, other = fleet.sweeper_stacks[ACCOUNT], fleet.sweeper_stacks[OTHER]
    assert home is fleet.sweeper_stack and home.stack_name == "Certificates-sweeper"
    assert (other.stack_name, other.account, other.region) == (f"Certificates-sweeper-{OTHER}", OTHER, "eu-west-1")
    assert _sweeper_properties(home)["Regions"] == ["us-east-1", "ap-northeast-1"]
    props = _sweeper_properties(other)
    assert (props["Fleet"], props["Regions"]) == ("Certificates", ["eu-west-1"])
    # each sweeper waits for the consumers of its account's certificates, whatever the consumer's account
    assert set(other.dependencies) == {fleet.stack_for("eu-west-1"), web, third}
    assert edge in home.dependencies
    assert not {fleet.stack_for("eu-west-1"), web, third} & set(home.dependencies)
    deletes = [s for s in sweeper_grants(other) if s["Action"] == "acm:DeleteCertificate"]
    assert deletes and all(s["Condition"]["StringEquals"]["aws:ResourceTag/certfleet:fleet"] == "Certificates"
                           and f":acm:*:{OTHER}:certificate/" in json.dumps(s["Resource"]) for s in deletes)


def _topic(app: App, id: str, account: str, region: str) -> sns.Topic:
    return sns.Topic(Stack(app, id, env=Environment(account=account, region=region)), "Alerts")


def test_monitoring_a_fleet_spanning_accounts_notifies_a_topic_in_each_account(
    bundle: CertificateBundle, sealed_path: Path,
) -> None:
    """GIVEN a topic per account THEN the certificates of each account notify their account's topic (before: every
    topic was refused as soon as one certificate lived in another account); without one, the refusal names the
    fix."""
    app = App()
    fleet = _fleet(app, bundle, KeySource.sealed(sealed_path), accounts={"eu-west-1": OTHER})
    home, away = _topic(app, "Ops", ACCOUNT, "us-east-1"), _topic(app, "OtherOps", OTHER, "eu-west-1")
    with pytest.raises(ValueError, match=rf"the expiry topic Ops/Alerts is in account {ACCOUNT}, the certificate in "
                                         rf"eu-west-1 in account {OTHER}: .* pass account_topics="
                                         rf"\{{'{OTHER}': <an sns.Topic in a stack of account {OTHER}>\}}"):
        fleet.add_expiry_monitoring(topic=home)
    with pytest.raises(ValueError, match=rf"account_topics names account {THIRD}, where the fleet has no"):
        fleet.add_expiry_monitoring(topic=home, account_topics={THIRD: away})
    monitors = fleet.add_expiry_monitoring(topic=home, account_topics={OTHER: away})
    assert set(monitors) == {"us-east-1", "eu-west-1", "ap-northeast-1"}

    def alarm_actions(region: str) -> str:
        (alarm,) = Template.from_stack(fleet.stack_for(region)).find_resources("AWS::CloudWatch::Alarm").values()
        return json.dumps(alarm["Properties"]["AlarmActions"])

    assert "OtherOps" in alarm_actions("eu-west-1") and "OtherOps" not in alarm_actions("us-east-1")
    assert "Ops" in alarm_actions("us-east-1")
    Template.from_stack(fleet.stack_for("eu-west-1")).has_resource_properties("AWS::Events::Rule", {
        "EventPattern": Match.object_like({"source": ["aws.acm"]}),
        "Targets": [Match.object_like({"Arn": Match.any_value()})],
    })
