"""CertificateSource.acme on a CertificateFleet: the primary stack's issuer, renewer and schedule, material-mode
importers in every region, least-privilege roles, the renewer's alarm, and the errors a wrong source gets at synth."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from certfleet import AcmeAccount, AcmeSource, CertificateFleet, CertificateSource
from certfleet._lambda.certfleet_contract import (
    ACME_CERTIFICATE_TYPE,
    ACME_ISSUER_IS_COMPLETE,
    ACME_ISSUER_ON_EVENT,
    ACME_KEY_TYPES,
    ACME_RENEWER,
    ACME_SOURCE,
    CERTIFICATE_TYPE,
    FLEET_TAG,
    ID_TAG,
    IMPORTER_ON_EVENT,
    MANAGED_BY,
    MANAGED_BY_TAG,
    SOURCE_TAG,
    AcmeRenewInput,
)

ACCOUNT = "123456789012"
DIRECTORY = "https://acme.example.net/directory"
DOMAINS = ["www.example.com", "*.example.com"]
EAB_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:eab-hmac-AbCdEf"
NAMES_KEY = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
TYPES_KEY = "route53:ChangeResourceRecordSetsRecordTypes"
ACTIONS_KEY = "route53:ChangeResourceRecordSetsActions"
PYTHON_312 = "python3.12"


def new_app() -> App:
    return App(context={"@aws-cdk/core:validateAgainstDefaultRules": False})


def zone_in(scope: Stack, name: str = "example.com", zone_id: str = "Z0EXAMPLE") -> route53.IHostedZone:
    return route53.HostedZone.from_hosted_zone_attributes(scope, f"Zone{zone_id}", hosted_zone_id=zone_id,
                                                          zone_name=name)


def dns_stack(app: App) -> Stack:
    return Stack(app, "Dns", env=Environment(account=ACCOUNT, region="us-east-1"))


def acme(app: App, **overrides: Any) -> Any:
    arguments: dict[str, Any] = dict(directory_url=DIRECTORY, domains=DOMAINS, hosted_zone=zone_in(dns_stack(app)))
    arguments.update(overrides)
    return CertificateSource.acme(**arguments)


def resolved_json(value: Any) -> Any:
    """A ``Fn::Join`` of JSON text with references, parsed, each reference spelled ``<logical id>``."""
    if isinstance(value, str):
        return json.loads(value)
    delimiter, parts = value["Fn::Join"]
    text = str(delimiter).join(p if isinstance(p, str) else f"<{_ref(p)}>" for p in parts)
    return json.loads(text)


def _ref(value: dict[str, Any]) -> str:
    if "Ref" in value:
        return str(value["Ref"])
    return ".".join(value["Fn::GetAtt"])


def one(template: Template, kind: str, props: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(kind, {"Properties": props} if props else None)
    assert len(found) == 1, f"{kind}: {list(found)}"
    logical, resource = next(iter(found.items()))
    return logical, dict(resource)



def role_statements(template: Template, handler: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the role of the function with ``handler``."""
    resources = template.to_json()["Resources"]
    role = next(r["Properties"]["Role"]["Fn::GetAtt"][0] for r in resources.values()
                if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == handler)
    return role_policy(template, role)


def role_policy(template: Template, role: str) -> list[dict[str, Any]]:
    resources = template.to_json()["Resources"]
    return [s for r in resources.values() if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in
            r["Properties"].get("Roles", []) for s in r["Properties"]["PolicyDocument"]["Statement"]]


def actions(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for s in statements:
        found.update([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    return found


def by_action(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action == s["Action"] or action in (s["Action"] if isinstance(
        s["Action"], list) else [])]


@dataclass
class Built:
    fleet: CertificateFleet
    primary: Template
    replica: Template

    def material_secret(self) -> str:
        logical, _ = one(self.primary, "AWS::SecretsManager::Secret", {"ReplicaRegions": Match.any_value()})
        return logical

    def account_secret(self) -> str:
        secrets = self.primary.find_resources("AWS::SecretsManager::Secret")
        (logical,) = [k for k, v in secrets.items() if "ReplicaRegions" not in v["Properties"]]
        return logical

    def function(self, handler: str) -> tuple[str, dict[str, Any]]:
        return one(self.primary, "AWS::Lambda::Function", {"Handler": handler})


@pytest.fixture(scope="module")
def built() -> Built:
    """One synth: an ACME fleet in us-east-1 (primary) and eu-west-1, EAB, monitored."""
    app = new_app()
    alerts = Stack(app, "Alerts", env=Environment(account=ACCOUNT, region="us-east-1"))
    topic = sns.Topic(alerts, "Topic")
    hmac = secretsmanager.Secret.from_secret_complete_arn(alerts, "Hmac", EAB_ARN)
    source = acme(app, account=AcmeAccount(contact="ops@example.com", eab_key_id="kid-1", eab_hmac_secret=hmac))
    fleet = CertificateFleet(app, "Certs", source=source, account=ACCOUNT, regions=["eu-west-1"])
    fleet.add_expiry_monitoring(topic=topic)
    assembly = app.synth()
    return Built(fleet, Template.from_json(assembly.get_stack_by_name("Certs-us-east-1").template),
                 Template.from_json(assembly.get_stack_by_name("Certs-eu-west-1").template))


# ---- the issuer ---------------------------------------------------------------------------------------------------

def test_the_issuer_orders_the_declared_certificate_into_the_material_secret(built: Built) -> None:
    _, issuer = one(built.primary, ACME_CERTIFICATE_TYPE)
    props = issuer["Properties"]
    assert props["DirectoryUrl"] == DIRECTORY
    assert props["Domains"] == DOMAINS
    assert props["KeyType"] == "ec-p256"
    assert props["HostedZones"] == [{"Id": "Z0EXAMPLE", "Name": "example.com"}]
    assert props["Fleet"] == built.fleet.fleet_name
    assert props["MaterialSecretId"] == {"Ref": built.material_secret()}
    assert props["AccountSecretId"] == {"Ref": built.account_secret()}
    assert props["Contact"] == "mailto:ops@example.com"
    assert props["EabKeyId"] == "kid-1"
    assert props["EabHmacSecretId"] == EAB_ARN
    on_event, _ = built.function(ACME_ISSUER_ON_EVENT)
    framework = props["ServiceToken"]["Fn::GetAtt"][0]
    framework_role = built.primary.to_json()["Resources"][framework]["Properties"]["Role"]["Fn::GetAtt"][0]
    assert {"Fn::GetAtt": [on_event, "Arn"]} in [s["Resource"] for s in role_policy(built.primary, framework_role)]


def test_material_secret_is_retained_encrypted_with_its_own_key_and_replicated(built: Built) -> None:
    resources = built.primary.to_json()["Resources"]
    material = resources[built.material_secret()]
    assert material["DeletionPolicy"] == "Retain"
    assert material["Properties"]["ReplicaRegions"] == [{"Region": "eu-west-1"}]
    assert material["Properties"]["Name"] == built.fleet.key_binding_for(built.fleet.stack_for("us-east-1")).secret_name
    key = material["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]
    assert resources[key]["Type"] == "AWS::KMS::Key"
    assert resources[key]["DeletionPolicy"] == "Retain"
    assert resources[key]["Properties"]["EnableKeyRotation"] is True
    account = resources[built.account_secret()]
    assert account["DeletionPolicy"] == "Retain"
    assert account["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    for secret in (material, account):  # a placeholder, never key material
        assert "BEGIN" not in json.dumps(secret)


def test_issuer_and_renewer_run_the_acme_asset_on_python_3_12(built: Built) -> None:
    timeouts = {ACME_ISSUER_ON_EVENT: 120, ACME_ISSUER_IS_COMPLETE: 180, ACME_RENEWER: 900}
    keys = set()
    for handler, timeout in timeouts.items():
        _, function = built.function(handler)
        props = function["Properties"]
        assert props["Runtime"] == PYTHON_312
        assert props["Timeout"] == timeout
        assert props["Environment"]["Variables"]["CERTFLEET_LAMBDA_MARGIN_SECONDS"].isdigit()
        keys.add(json.dumps(props["Code"]["S3Key"]))
    assert len(keys) == 1  # one asset
    _, importer = built.function(IMPORTER_ON_EVENT)
    assert json.dumps(importer["Properties"]["Code"]["S3Key"]) not in keys  # the importer stays boto3-only


def test_the_provider_polls_every_15_seconds_for_45_minutes(built: Built) -> None:
    _, is_complete = built.function(ACME_ISSUER_IS_COMPLETE)
    machines = built.primary.find_resources("AWS::StepFunctions::StateMachine")
    definitions = [json.dumps(m["Properties"]["DefinitionString"]) for m in machines.values()]
    definitions = [d for d in definitions if "framework-isComplete" in d]
    assert sum('\\"IntervalSeconds\\":15,\\"MaxAttempts\\":180' in d for d in definitions) == 1, definitions
    assert is_complete["Properties"]["Handler"] == ACME_ISSUER_IS_COMPLETE


# ---- the renewer and its schedule ---------------------------------------------------------------------------------

def test_the_schedule_runs_the_renewer_daily_with_the_issuers_properties_regions_and_id(built: Built) -> None:
    renewer, _ = built.function(ACME_RENEWER)
    _, schedule = one(built.primary, "AWS::Scheduler::Schedule")
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "rate(1 day)"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props["State"] == "ENABLED"
    target = props["Target"]
    assert target["Arn"] == {"Fn::GetAtt": [renewer, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 3
    assert 3600 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400
    given = resolved_json(target["Input"])
    keys = AcmeRenewInput.__required_keys__ | AcmeRenewInput.__optional_keys__
    assert set(given) == keys - {"ServiceToken"}
    _, issuer = one(built.primary, ACME_CERTIFICATE_TYPE)
    for key, value in issuer["Properties"].items():
        if key != "ServiceToken":
            expected = f"<{value['Ref']}>" if isinstance(value, dict) else value
            assert given[key] == expected, key
    assert given["Regions"] == ["us-east-1", "eu-west-1"]
    ids = set()
    for template in (built.primary, built.replica):
        _, certificate = one(template, CERTIFICATE_TYPE)
        ids.add(next(t["Value"] for t in certificate["Properties"]["Tags"] if t["Key"] == ID_TAG))
    assert ids == {given["CertificateId"]}  # the renewer finds each region's certificate by it


def test_the_schedule_role_may_only_invoke_the_renewer(built: Built) -> None:
    renewer, _ = built.function(ACME_RENEWER)
    _, schedule = one(built.primary, "AWS::Scheduler::Schedule")
    role = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
    trust = built.primary.to_json()["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Action": "sts:AssumeRole", "Effect": "Allow",
                      "Principal": {"Service": "scheduler.amazonaws.com"},
                      "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]
    assert role_policy(built.primary, role) == [{"Action": "lambda:InvokeFunction", "Effect": "Allow",
                                                 "Resource": {"Fn::GetAtt": [renewer, "Arn"]}}]
    assert not built.primary.find_resources("AWS::Lambda::Permission")  # no resource policy opened to Scheduler


def test_the_renewer_retries_a_failed_run_and_the_alarm_tells_the_topic(built: Built) -> None:
    renewer, _ = built.function(ACME_RENEWER)
    built.primary.has_resource_properties("AWS::Lambda::EventInvokeConfig", {
        "FunctionName": {"Ref": renewer}, "MaximumRetryAttempts": 2})
    _, alarm = one(built.primary, "AWS::CloudWatch::Alarm", {"MetricName": "Errors"})
    props = alarm["Properties"]
    assert props["Namespace"] == "AWS/Lambda"
    assert props["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": renewer}}]
    assert (props["Statistic"], props["Period"], props["Threshold"]) == ("Sum", 86400, 1)
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["TreatMissingData"] == "notBreaching"
    (action,) = props["AlarmActions"]
    assert "Alerts" in json.dumps(action) or "Topic" in json.dumps(action)


# ---- the importers: material mode in every region -----------------------------------------------------------------

def test_every_region_imports_in_material_mode(built: Built) -> None:
    issuer, _ = one(built.primary, ACME_CERTIFICATE_TYPE)
    for template, region in ((built.primary, "us-east-1"), (built.replica, "eu-west-1")):
        _, certificate = one(template, CERTIFICATE_TYPE)
        props = certificate["Properties"]
        assert not {"Certificate", "CertificateChain", "Fingerprint"} & set(props), region
        assert props["KeyAlgorithm"] == ACME_KEY_TYPES["ec-p256"]
        assert props["Names"] == DOMAINS
        tags = {t["Key"]: t["Value"] for t in props["Tags"]}
        assert tags[SOURCE_TAG] == ACME_SOURCE
        assert tags[MANAGED_BY_TAG] == MANAGED_BY
        assert tags[FLEET_TAG] == built.fleet.fleet_name
    _, primary = one(built.primary, CERTIFICATE_TYPE)
    assert primary["Properties"]["KeySecretId"] == {"Ref": built.material_secret()}
    assert primary["Properties"]["KeySecretVersionId"] == {"Fn::GetAtt": [issuer, "VersionId"]}
    _, replica = one(built.replica, CERTIFICATE_TYPE)
    name = built.primary.to_json()["Resources"][built.material_secret()]["Properties"]["Name"]
    assert replica["Properties"]["KeySecretId"] == name  # the local replica, by name
    pinned = replica["Properties"]["KeySecretVersionId"]["Fn::GetStackOutput"]  # weak: no export to block updates
    assert (pinned["StackName"], pinned["Region"]) == ("Certs-us-east-1", "us-east-1")
    output = built.primary.to_json()["Outputs"][pinned["OutputName"]]
    assert output["Value"] == {"Fn::GetAtt": [issuer, "VersionId"]}


def test_the_importer_may_tag_a_new_certificate_with_the_source(built: Built) -> None:
    (statement,) = [s for s in role_statements(built.replica, IMPORTER_ON_EVENT)
                    if s.get("Sid", "").startswith("ImportNewOnlyTagged")]
    assert SOURCE_TAG in statement["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]


def test_the_replica_importer_reads_only_the_local_replica(built: Built) -> None:
    reads = by_action(role_statements(built.replica, IMPORTER_ON_EVENT), "secretsmanager:GetSecretValue")
    resources = json.dumps([s["Resource"] for s in reads])
    assert ":secretsmanager:eu-west-1:" in resources and "/www.example.com/key-??????" in resources


# ---- least privilege ----------------------------------------------------------------------------------------------

def _route53(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return by_action(statements, "route53:ChangeResourceRecordSets")


@pytest.mark.parametrize("handler", [ACME_ISSUER_ON_EVENT, ACME_ISSUER_IS_COMPLETE, ACME_RENEWER])
def test_dns_changes_are_only_txt_challenges_of_the_declared_domains(built: Built, handler: str) -> None:
    statements = role_statements(built.primary, handler)
    (change,) = _route53(statements)
    assert "hostedzone/Z0EXAMPLE" in json.dumps(change["Resource"])
    condition = change["Condition"]
    assert condition["ForAllValues:StringEquals"] == {TYPES_KEY: ["TXT"], ACTIONS_KEY: ["UPSERT", "DELETE"]}
    assert condition["ForAllValues:StringLike"] == {
        NAMES_KEY: ["_acme-challenge.example.com", "_acme-challenge.www.example.com"]}  # *.example.com: example.com's
    assert condition["Null"] == {TYPES_KEY: "false", ACTIONS_KEY: "false", NAMES_KEY: "false"}
    # every role reads the zone's sets: publishing UPSERTs the union with the current TXT set, withdrawing re-reads
    (reads,) = by_action(statements, "route53:ListResourceRecordSets")
    assert reads["Resource"] == change["Resource"] and "Condition" not in reads
    if handler == ACME_ISSUER_ON_EVENT:  # onEvent only publishes: it never polls a change
        assert "route53:GetChange" not in actions(statements)
        return
    (changes,) = by_action(statements, "route53:GetChange")
    assert json.dumps(changes["Resource"]).endswith(':route53:::change/*"]]}')


def _secret_grants(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Each Secrets Manager action and the resources it is granted on."""
    found: dict[str, set[str]] = {}
    for statement in statements:
        for action in actions([statement]):
            if action.startswith("secretsmanager:"):
                found.setdefault(action, set()).add(json.dumps(statement["Resource"], sort_keys=True))
    return found


def test_the_issuer_reads_and_writes_only_its_two_secrets_and_the_eab_key(built: Built) -> None:
    material, account = {"Ref": built.material_secret()}, {"Ref": built.account_secret()}
    on_event = role_statements(built.primary, ACME_ISSUER_ON_EVENT)
    is_complete = role_statements(built.primary, ACME_ISSUER_IS_COMPLETE)
    renewer = role_statements(built.primary, ACME_RENEWER)
    reads = {json.dumps([material, account], sort_keys=True)}
    assert _secret_grants(on_event) == {"secretsmanager:GetSecretValue": reads | {json.dumps(EAB_ARN)},
                                        "secretsmanager:PutSecretValue": {json.dumps(account)}}  # registers
    for stores in (is_complete, renewer):  # read the account's key, store the material
        assert _secret_grants(stores) == {"secretsmanager:GetSecretValue": reads,
                                          "secretsmanager:PutSecretValue": {json.dumps(material)}}
    assert EAB_ARN not in json.dumps(is_complete)  # EAB is read when registering: onEvent only
    for statements in (on_event, is_complete, renewer):
        assert "secretsmanager:DescribeSecret" not in actions(statements)  # no handler calls it
        (kms,) = by_action(statements, "kms:Decrypt")
        assert sorted(actions([kms])) == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}


def test_the_renewer_holds_exactly_what_it_calls(built: Built) -> None:
    statements = role_statements(built.primary, ACME_RENEWER)
    assert actions(statements) == {
        "logs:CreateLogStream", "logs:PutLogEvents",
        "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "kms:Decrypt", "kms:GenerateDataKey",
        "route53:ChangeResourceRecordSets", "route53:GetChange", "route53:ListResourceRecordSets",
        "acm:ListCertificates", "acm:ListTagsForCertificate", "acm:ImportCertificate",
    }
    puts = by_action(statements, "secretsmanager:PutSecretValue")
    assert [s["Resource"] for s in puts] == [{"Ref": built.material_secret()}]  # never the account secret
    (listing,) = by_action(statements, "acm:ListCertificates")
    assert listing["Resource"] == "*"
    (imports,) = by_action(statements, "acm:ImportCertificate")
    assert actions([imports]) == {"acm:ImportCertificate"}  # never AddTagsToCertificate: re-imports take no tags
    regions = json.dumps(imports["Resource"])
    assert ":acm:us-east-1:123456789012:certificate/*" in regions and ":acm:eu-west-1:123456789012:certificate/*" \
        in regions
    assert imports["Condition"] == {"StringEquals": {
        f"aws:ResourceTag/{MANAGED_BY_TAG}": MANAGED_BY, f"aws:ResourceTag/{FLEET_TAG}": built.fleet.fleet_name,
        f"aws:ResourceTag/{ID_TAG}": built.fleet.node.path, f"aws:ResourceTag/{SOURCE_TAG}": ACME_SOURCE}}
    (tags,) = by_action(statements, "acm:ListTagsForCertificate")
    assert tags["Resource"] == imports["Resource"]


def test_no_key_material_in_any_template(built: Built) -> None:
    for template in (built.primary, built.replica):
        text = json.dumps(template.to_json())
        assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text


# ---- what a fleet of an ACME source says -----------------------------------------------------------------------------

def test_bundle_and_key_are_for_imported_sources(built: Built) -> None:
    with pytest.raises(ValueError, match=r"bundle is for fleets of CertificateSource.imported .*ACME"):
        _ = built.fleet.bundle
    with pytest.raises(ValueError, match=r"key is for fleets of CertificateSource.imported"):
        _ = built.fleet.key
    certificate = built.fleet.certificates["eu-west-1"]
    with pytest.raises(ValueError, match=r"bundle is for certificates of CertificateSource.imported"):
        _ = certificate.bundle
    with pytest.raises(ValueError, match=r"key_source is for certificates of CertificateSource.imported"):
        _ = certificate.key_source


def test_the_source_reports_its_names_and_key_type(built: Built) -> None:
    source = built.fleet.source
    assert source.names == tuple(DOMAINS)
    assert source.primary_name == "www.example.com"
    assert isinstance(source, AcmeSource)
    assert source.key_type == "ec-p256"


def test_an_eab_secret_imported_by_name_is_granted_with_its_random_suffix() -> None:
    """A secret named without its six random characters (Secret.from_secret_name_v2) has no full ARN: the grant must
    end in ``-??????`` or IAM refuses GetSecretValue on the real ARN (``...:secret:acme/eab-hmac-AbCdEf``)."""
    app = new_app()
    alerts = Stack(app, "Alerts", env=Environment(account=ACCOUNT, region="us-east-1"))
    hmac = secretsmanager.Secret.from_secret_name_v2(alerts, "Hmac", "acme/eab-hmac")
    source = acme(app, account=AcmeAccount(eab_key_id="kid-1", eab_hmac_secret=hmac))
    CertificateFleet(app, "Certs", source=source, account=ACCOUNT, regions=["eu-west-1"])
    primary = Template.from_json(app.synth().get_stack_by_name("Certs-us-east-1").template)
    (eab,) = [s for s in role_statements(primary, ACME_ISSUER_ON_EVENT) if str(s.get("Sid", "")).startswith("AcmeEab")]
    resource = eab["Resource"]
    text = resource if isinstance(resource, str) else "".join(
        p if isinstance(p, str) else "<ref>" for p in resource["Fn::Join"][1])
    assert text.endswith(":secret:acme/eab-hmac-??????"), text
