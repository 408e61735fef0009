"""An ACME source outside a fleet (ImportedCertificate in one stack), and reading an ACME fleet's material from an
application's role (fleet.grant_key_read)."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import App, Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from certfleet import CertificateFleet, CertificateSource, ImportedCertificate
from certfleet._lambda.certfleet_contract import ACME_CERTIFICATE_TYPE, CERTIFICATE_TYPE, ID_TAG

ACCOUNT = "123456789012"
DIRECTORY = "https://acme.example.net/directory"


def _source(scope: Stack) -> Any:
    zone = route53.HostedZone.from_hosted_zone_attributes(scope, "Zone", hosted_zone_id="Z0EXAMPLE",
                                                          zone_name="example.com")
    return CertificateSource.acme(directory_url=DIRECTORY, domains=["www.example.com"], hosted_zone=zone)


def _input(template: Template) -> str:
    (schedule,) = template.find_resources("AWS::Scheduler::Schedule").values()
    return json.dumps(schedule["Properties"]["Target"]["Input"])


def test_an_imported_certificate_of_an_acme_source_orders_and_renews_in_its_own_stack() -> None:
    app = App(context={"@aws-cdk/core:validateAgainstDefaultRules": False})
    web = Stack(app, "Web", env=Environment(account=ACCOUNT, region="eu-west-1"))
    ImportedCertificate(web, "Cert", source=_source(web))
    template = Template.from_stack(web)
    (issuer,) = template.find_resources(ACME_CERTIFICATE_TYPE).values()
    assert issuer["Properties"]["Fleet"] == "Web"
    (certificate,) = template.find_resources(CERTIFICATE_TYPE).values()
    tags = {t["Key"]: t["Value"] for t in certificate["Properties"]["Tags"]}
    assert tags[ID_TAG] == "Web/Cert"
    given = _input(template)
    assert '\\"Regions\\":[\\"eu-west-1\\"]' in given and '\\"CertificateId\\":\\"Web/Cert\\"' in given
    (material,) = [s for s in template.find_resources("AWS::SecretsManager::Secret").values()
                   if "Name" in s["Properties"]]
    assert material["Properties"]["Name"] == "certfleet/cert/Web/www.example.com/key"
    assert "ReplicaRegions" not in material["Properties"]


def test_an_application_role_reads_the_material_of_its_region() -> None:
    app = App(context={"@aws-cdk/core:validateAgainstDefaultRules": False})
    web = Stack(app, "Web", env=Environment(account=ACCOUNT, region="eu-west-1"))
    fleet = CertificateFleet(app, "Certs", source=_source(web), account=ACCOUNT, regions=["eu-west-1"])
    role = iam.Role(web, "App", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    binding = fleet.grant_key_read(role)
    assert binding.secret_id == "certfleet/fleet/Certs-us-east-1/www.example.com/key"  # the local replica, by name
    template = Template.from_stack(web)
    (policy,) = [p for p in template.find_resources("AWS::IAM::Policy").values()
                 if {"Ref": template_role(template)} in p["Properties"]["Roles"]]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert ":secretsmanager:eu-west-1:" in json.dumps(statement["Resource"])


def template_role(template: Template) -> str:
    roles = template.find_resources("AWS::IAM::Role", {"Properties": {"AssumeRolePolicyDocument": {"Statement": [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}}]}}})
    (logical,) = roles
    return logical


def test_the_primary_region_reads_the_material_with_its_key() -> None:
    app = App(context={"@aws-cdk/core:validateAgainstDefaultRules": False})
    edge = Stack(app, "Edge", env=Environment(account=ACCOUNT, region="us-east-1"))
    fleet = CertificateFleet(app, "Certs", source=_source(edge), account=ACCOUNT)
    role = iam.Role(edge, "App", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    fleet.grant_key_read(role)
    template = Template.from_stack(edge)
    (policy,) = [p for p in template.find_resources("AWS::IAM::Policy").values()
                 if {"Ref": template_role(template)} in p["Properties"]["Roles"]]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (decrypt,) = [s for s in statements if s["Action"] == "kms:Decrypt"]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
    assert "Fn::GetStackOutput" in json.dumps(decrypt["Resource"])  # the fleet's key, read weakly


def test_monitoring_a_lone_acme_certificate_alarms_on_its_renewer() -> None:
    app = App(context={"@aws-cdk/core:validateAgainstDefaultRules": False})
    web = Stack(app, "Web", env=Environment(account=ACCOUNT, region="eu-west-1"))
    certificate = ImportedCertificate(web, "Cert", source=_source(web))
    certificate.add_expiry_monitoring(topic=sns.Topic(web, "Alerts"))
    template = Template.from_stack(web)
    (alarm,) = template.find_resources("AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "Errors"}}).values()
    assert alarm["Properties"]["Namespace"] == "AWS/Lambda"
    assert len(alarm["Properties"]["AlarmActions"]) == 1
