"""certfleet.checks.limits: CloudFormation and IAM template limits, on hand-built templates and inside app.synth()."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnWaitConditionHandle
from aws_cdk import aws_iam as iam
from placement_support import ACCOUNT, SECRET_ARN, Synth, fleet, new_app, stack, synth

from certfleet import CertificateBundle, FleetGroup, KeySource
from certfleet.checks.assembly import StackTemplate
from certfleet.checks.finding import Finding
from certfleet.checks.judgments import RULE_IDS
from certfleet.checks.limits import LIMIT_RULE_IDS, check_limits, policy_chars
from certfleet.checks.plugin import PlacementChecks

NO_CDK_RESOURCE_LIMIT = {"@aws-cdk/core:stackResourceLimit": 0}  # the CDK's own 500 check off: ours is left


def st(name: str = "Big", resources: dict[str, Any] | None = None, *, path: Path | None = None,
       **sections: Any) -> StackTemplate:
    """A StackTemplate; without ``path`` its template file does not exist (size taken from the JSON)."""
    template = {"Resources": resources if resources is not None else {}, **sections}
    return StackTemplate(name, name, ACCOUNT, "eu-west-1", template,
                         str(path) if path else f"/nowhere/{name}.template.json")


def handles(count: int) -> dict[str, Any]:
    return {f"Handle{i}": {"Type": "AWS::CloudFormation::WaitConditionHandle"} for i in range(count)}


def entries(count: int, value: Any) -> dict[str, Any]:
    return {f"E{i}": value for i in range(count)}


def document(chars: int, resource: str = "arn:aws:s3:::bucket/") -> dict[str, Any]:
    """A policy document of exactly ``chars`` characters as IAM counts them (no whitespace)."""
    def make(pad: int) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": resource + "x" * pad}]}
    doc = make(chars - policy_chars(make(0)))
    assert policy_chars(doc) == chars
    return doc


def role(**props: Any) -> dict[str, Any]:
    return {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}, **props},
            "Metadata": {"aws:cdk:path": "Big/Worker/Resource"}}


def policy(chars: int, *roles: Any, kind: str = "AWS::IAM::Policy") -> dict[str, Any]:
    props: dict[str, Any] = {"PolicyDocument": document(chars)}
    if kind == "AWS::IAM::RolePolicy":
        props["RoleName"] = roles[0]
    else:
        props["Roles"] = list(roles)
    return {"Type": kind, "Properties": props}


def managed(chars: int = 200, *roles: Any) -> dict[str, Any]:
    return {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": document(chars), "Roles": list(roles)}}


def certificate(group: str | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"Certificate": "-----BEGIN CERTIFICATE-----"}
    if group:
        props["Group"] = group
    return {"Type": "Custom::CertfleetCertificate", "Properties": props}


def only(findings: list[Finding], code: str) -> Finding:
    assert [f.code for f in findings] == [code], [str(f) for f in findings]
    return findings[0]


# ---- per-template counts: resources, outputs, parameters, mappings --------------------------------------------------

SECTIONS = [
    ("Resources", "certfleet-limit-resources", 500, "resources"),
    ("Outputs", "certfleet-limit-outputs", 200, "outputs"),
    ("Parameters", "certfleet-limit-parameters", 200, "parameters"),
    ("Mappings", "certfleet-limit-mappings", 200, "mappings"),
]


def _section(section: str, count: int) -> StackTemplate:
    if section == "Resources":
        return st(resources=handles(count))
    value = {"Outputs": {"Value": "x"}, "Parameters": {"Type": "String"}, "Mappings": {"k": {"a": "b"}}}[section]
    template = st(resources=handles(1))
    template.template[section] = entries(count, value)
    return template


@pytest.mark.parametrize(("section", "code", "limit", "noun"), SECTIONS)
def test_a_section_at_its_limit_passes(section: str, code: str, limit: int, noun: str) -> None:
    assert check_limits([_section(section, limit)]) == []


@pytest.mark.parametrize(("section", "code", "limit", "noun"), SECTIONS)
def test_one_over_a_section_limit_is_an_error_naming_stack_numbers_and_fix(
    section: str, code: str, limit: int, noun: str,
) -> None:
    finding = only(check_limits([_section(section, limit + 1)]), code)
    assert finding.is_error
    assert finding.site.stack == "Big"
    assert f"stack Big, eu-west-1 declares {limit + 1:,} {noun}" in finding.message
    assert f"1 over CloudFormation's limit of {limit:,} {noun} per template" in finding.message
    assert finding.fix.startswith("split the stack")
    assert "FleetGroup" not in finding.fix
    assert (finding.site.logical_id, finding.site.location) == (section, section)
    assert finding.site.template_path == "/nowhere/Big.template.json"


def test_the_resources_message_names_the_most_common_types() -> None:
    resources = {**handles(480), **{f"Topic{i}": {"Type": "AWS::SNS::Topic"} for i in range(30)}}
    finding = only(check_limits([st(resources=resources)]), "certfleet-limit-resources")
    assert "510 resources (most: AWS::CloudFormation::WaitConditionHandle x480, AWS::SNS::Topic x30)" in finding.message
    assert "10 over" in finding.message


def test_outputs_fix_says_that_cross_stack_references_are_outputs() -> None:
    finding = only(check_limits([_section("Outputs", 250)]), "certfleet-limit-outputs")
    assert "50 over CloudFormation's limit of 200 outputs" in finding.message
    assert "every cross-stack reference that another stack reads is one output" in finding.fix


# ---- what to do: a FleetGroup shard, a stack of certfleet certificates, any other stack ------------------------------

@pytest.mark.parametrize(("section", "option"), [("Resources", "max_resources"), ("Outputs", "max_outputs")])
def test_a_fleet_group_shard_is_told_to_lower_the_groups_option(section: str, option: str) -> None:
    template = _section(section, 501 if section == "Resources" else 201)
    template.template["Resources"]["Certificate"] = certificate("Prod-Certs")
    (finding,) = check_limits([template])
    assert "this stack is a shard of FleetGroup Prod-Certs" in finding.fix
    assert f"lower its {option} (FleetGroup(..., {option}=...))" in finding.fix
    assert "opens another shard stack sooner" in finding.fix


def test_a_stack_of_certfleet_certificates_is_told_about_fleet_group() -> None:
    finding = only(check_limits([st(resources={**handles(500), "A": certificate(), "B": certificate()})]),
                   "certfleet-limit-resources")
    assert "this stack holds 2 certfleet certificate(s): hold them in a FleetGroup" in finding.fix
    assert "split the stack" in finding.fix


def test_parameters_of_a_fleet_group_shard_get_the_generic_fix() -> None:
    template = _section("Parameters", 201)
    template.template["Resources"]["Certificate"] = certificate("Prod-Certs")
    finding = only(check_limits([template]), "certfleet-limit-parameters")
    assert "max_" not in finding.fix
    assert "one list parameter or a mapping" in finding.fix


# ---- template size, description, dynamic references ------------------------------------------------------------------

@pytest.mark.parametrize(("size", "expected"), [
    (800_000, None), (800_001, "warning"), (1_000_000, "warning"), (1_000_001, "error"),
])
def test_template_size_is_read_from_the_file_in_cdk_out(tmp_path: Path, size: int, expected: str | None) -> None:
    path = tmp_path / "Big.template.json"
    path.write_bytes(b" " * size)
    findings = check_limits([st(path=path)])
    if expected is None:
        assert findings == []
        return
    finding = only(findings, "certfleet-limit-template-size")
    assert finding.severity == expected
    assert f"stack Big, eu-west-1: its template is {size:,} bytes (as written to Big.template.json)" in finding.message
    if expected == "error":
        assert "1 over CloudFormation's limit of 1,000,000 bytes (1 MB) for a template uploaded through S3" \
            in finding.message
    else:
        assert f"{1_000_000 - size:,} under (close to) CloudFormation's limit of 1,000,000 bytes" in finding.message
    assert "suppress_template_indentation=True" in finding.fix


def test_template_size_without_a_file_is_the_json_as_the_cdk_indents_it() -> None:
    template = st(Metadata={"Blob": "é" * 500_001})
    expected = len(json.dumps(template.template, indent=1, ensure_ascii=False).encode())
    assert expected > 1_000_000  # two bytes per é
    finding = only(check_limits([template]), "certfleet-limit-template-size")
    assert f"its template is {expected:,} bytes (as the CDK writes its JSON)" in finding.message


def test_a_fleet_group_shard_too_big_is_told_max_template_bytes(tmp_path: Path) -> None:
    path = tmp_path / "Big.template.json"
    path.write_bytes(b" " * 900_000)
    finding = only(check_limits([st(resources={"C": certificate("G")}, path=path)]), "certfleet-limit-template-size")
    assert finding.severity == "warning"
    assert "lower its max_template_bytes" in finding.fix


@pytest.mark.parametrize(("description", "over"), [("d" * 1024, 0), ("d" * 1025, 1), ("é" * 513, 2)])
def test_description_is_limited_to_1024_bytes(description: str, over: int) -> None:
    findings = check_limits([st(resources=handles(1), Description=description)])
    if not over:
        assert findings == []
        return
    finding = only(findings, "certfleet-limit-description")
    assert finding.is_error
    assert f"its description is {1024 + over:,} bytes (UTF-8), {over} over CloudFormation's limit of 1,024 bytes" \
        in finding.message
    assert "Stack(..., description=...)" in finding.fix


@pytest.mark.parametrize(("count", "error"), [(60, False), (61, True)])
def test_at_most_60_dynamic_references(count: int, error: bool) -> None:
    resources = {f"P{i}": {"Type": "AWS::SSM::Parameter", "Properties": {"Value": f"{{{{resolve:ssm:/p/{i}}}}}"}}
                 for i in range(count)}
    findings = check_limits([st(resources=resources)])
    if not error:
        assert findings == []
        return
    finding = only(findings, "certfleet-limit-dynamic-references")
    assert "stack Big, eu-west-1: its template holds 61 dynamic references ({{resolve:...}}), 1 over" \
        in finding.message
    assert "limit of 60 per template" in finding.message


# ---- IAM: a role's inline policies, its managed policies, a managed policy's size -----------------------------------

def test_policy_chars_counts_compact_json_with_tokens_as_written() -> None:
    doc = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": {"Fn::GetAtt": ["Bucket", "Arn"]}}]}
    assert policy_chars(doc) == len('{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":{"Fn::GetAtt":'
                                    '["Bucket","Arn"]}}]}')


@pytest.mark.parametrize(("extra", "error"), [(0, False), (1, True)])
def test_role_inline_policies_add_up_to_at_most_10240_characters(extra: int, error: bool) -> None:
    resources = {
        "Worker": role(Policies=[{"PolicyName": "a", "PolicyDocument": document(3_000)},
                                 {"PolicyName": "b", "PolicyDocument": document(2_000)}]),
        "Default": policy(4_240 + extra, {"Ref": "Worker"}),
        "Inline": policy(1_000, {"Ref": "Worker"}, kind="AWS::IAM::RolePolicy"),
        "Elsewhere": policy(9_000, {"Ref": "Other"}),  # another role's: not counted
    }
    findings = check_limits([st(resources=resources)])
    if not error:
        assert findings == []
        return
    finding = only(findings, "certfleet-limit-role-inline-policy")
    assert finding.is_error
    assert (finding.site.logical_id, finding.site.location) == ("Worker", "Properties/Policies")
    assert finding.site.construct_path == "Big/Worker/Resource"
    assert ("role Big/Worker/Resource in stack Big, eu-west-1: its inline policies add up to 10,241 characters "
            "(its Policies 5,000, Default 4,241, Inline 1,000), 1 over IAM's limit of 10,240 characters per role"
            in finding.message)
    assert "measured unresolved" in finding.message
    assert "approximate" in finding.message
    assert "iam.ManagedPolicy" in finding.fix
    assert "certfleet role" not in finding.fix


def test_a_policy_naming_the_role_by_its_literal_name_counts() -> None:
    resources = {"Worker": role(RoleName="worker"), "P": policy(10_241, "worker")}
    finding = only(check_limits([st(resources=resources)]), "certfleet-limit-role-inline-policy")
    assert "10,241 characters (P 10,241)" in finding.message


def test_certfleets_own_role_over_the_limit_is_told_to_spread_the_certificates() -> None:
    importer = {**role(), "Metadata": {"aws:cdk:path": "Big/CertfleetImporter/OnEventRole/Resource"}}
    resources = {"Importer": importer, "Grants": policy(10_500, {"Ref": "Importer"}),
                 **{f"C{i}": certificate() for i in range(40)}}
    finding = only(check_limits([st(resources=resources)]), "certfleet-limit-role-inline-policy")
    assert "role Big/CertfleetImporter/OnEventRole/Resource in stack Big" in finding.message
    assert finding.fix.endswith("; this is a certfleet role, granted the key of each of the stack's 40 certificates: "
                                "spread them over more stacks")


def _role_with_managed(count: int) -> StackTemplate:
    """``count`` managed policies: half literal ARNs on the role, half ManagedPolicy resources naming the role."""
    arns: list[Any] = [f"arn:aws:iam::aws:policy/P{i}" for i in range(count // 2)]
    resources: dict[str, Any] = {f"Managed{i}": managed(200, {"Ref": "Worker"}) for i in range(count - len(arns))}
    arns.append({"Ref": "Managed0"})  # also named by the role itself: still one policy
    return st(resources={"Worker": role(ManagedPolicyArns=arns), **resources})


@pytest.mark.parametrize(("count", "severity"), [(10, None), (11, "warning"), (20, "warning"), (21, "error")])
def test_managed_policies_per_role(count: int, severity: str | None) -> None:
    findings = check_limits([_role_with_managed(count)])
    if severity is None:
        assert findings == []
        return
    finding = only(findings, "certfleet-limit-role-managed-policies")
    assert finding.severity == severity
    assert f"role Big/Worker/Resource in stack Big, eu-west-1: {count} managed policies are attached to it" \
        in finding.message
    if severity == "warning":
        assert f"{count - 10} over IAM's default quota of 10 per role" in finding.message
        assert finding.fix.startswith("raise the 'Managed policies per role' quota to 20")
    else:
        assert "1 over IAM's maximum of 20 per role (the quota cannot be raised further)" in finding.message
        assert finding.fix.startswith("attach fewer managed policies")
    assert "OverflowPolicy" not in finding.message


@pytest.mark.parametrize(("chars", "error"), [(6_144, False), (6_145, True)])
def test_a_managed_policy_document_is_at_most_6144_characters(chars: int, error: bool) -> None:
    findings = check_limits([st(resources={"Shared": managed(chars)})])
    if not error:
        assert findings == []
        return
    finding = only(findings, "certfleet-limit-managed-policy-size")
    assert "managed policy Shared in stack Big, eu-west-1: its document is 6,145 characters, 1 over IAM's limit" \
        in finding.message
    assert "measured unresolved" in finding.message
    assert (finding.site.logical_id, finding.site.location) == ("Shared", "Properties/PolicyDocument")


def _zone_statements(count: int) -> dict[str, Any]:
    """A managed policy of ``count`` Route 53 statements whose zone ARNs are ``Fn::Join``s of the partition."""
    arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":route53:::hostedzone/Z0123456789ABCDEFGHIJ"]]}
    statements = [{"Sid": f"AcmeReadZone{i}", "Effect": "Allow", "Action": "route53:ListResourceRecordSets",
                   "Resource": arn} for i in range(count)]
    return {"Type": "AWS::IAM::ManagedPolicy",
            "Properties": {"PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}}


def test_a_managed_policy_over_the_limit_only_as_written_is_a_warning() -> None:
    """Pseudo parameters written as Fn::Join are longer than what IAM counts once deployed (the CDK packs overflow
    policies by the deployed size): over 6,144 as written but not resolved is a warning, over both an error."""
    written = check_limits([st(resources={"Zones": _zone_statements(40)})])
    finding = only(written, "certfleet-limit-managed-policy-size")
    assert finding.severity == "warning"
    assert "with its partition, region and account resolved: 5," in finding.message
    over = only(check_limits([st(resources={"Zones": _zone_statements(80)})]), "certfleet-limit-managed-policy-size")
    assert over.severity == "error"


def test_every_rule_has_its_code_and_errors_come_first(tmp_path: Path) -> None:
    path = tmp_path / "Big.template.json"
    path.write_bytes(b"{{resolve:" * 61 + b" " * 1_000_000)
    resources = {**handles(500), "Worker": role(), "Default": policy(10_241, {"Ref": "Worker"}),
                 **{f"Managed{i}": managed(200, {"Ref": "Worker"}) for i in range(11)}, "Huge": managed(6_145)}
    template = st(resources=resources, path=path, Description="d" * 1025, Outputs=entries(201, {"Value": "x"}),
                  Parameters=entries(201, {"Type": "String"}), Mappings=entries(201, {"k": {"a": "b"}}))
    findings = check_limits([template])
    assert sorted(f.code for f in findings) == sorted(LIMIT_RULE_IDS)
    assert [f.severity for f in findings] == ["error"] * 9 + ["warning"]
    assert findings[-1].code == "certfleet-limit-role-managed-policies"
    assert not set(LIMIT_RULE_IDS) & set(RULE_IDS)


def test_the_checker_is_pure_it_imports_neither_cdk_nor_boto3() -> None:
    code = "import sys, certfleet.checks.limits; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    result = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert not set(result.stdout.split()) & {"aws_cdk", "jsii", "constructs", "boto3", "botocore"}


def test_the_plugin_declares_the_limit_rules() -> None:
    rule_ids = PlacementChecks().rule_ids
    assert set(RULE_IDS) <= set(rule_ids)
    assert set(LIMIT_RULE_IDS) <= set(rule_ids)


# ---- inside app.synth() ----------------------------------------------------------------------------------------------

def _handles_app(tmp_path: Path, count: int, **context: Any) -> App:
    app = new_app(tmp_path, context=context)
    big = stack(app, "Big", "eu-west-1")
    for i in range(count):
        CfnWaitConditionHandle(big, f"Handle{i}")
    return app


def test_synth_fails_with_501_resources_once_the_cdks_own_check_is_off(tmp_path: Path) -> None:
    result = synth(_handles_app(tmp_path, 501, **NO_CDK_RESOURCE_LIMIT))
    assert result.failed
    violation = result.one("certfleet-limit-resources")
    assert violation["severity"] == "error"
    assert "stack Big, eu-west-1 declares 501 resources" in violation["description"]
    assert "1 over CloudFormation's limit of 500 resources per template" in violation["description"]
    assert violation["suggestedFix"].startswith("split the stack")
    assert result.location(violation) == ("", "Resources")
    assert "declares 501 resources" in result.text
    assert result.codes() == ["certfleet-limit-resources"]


def test_by_default_the_cdk_refuses_501_resources_before_the_checks_run(tmp_path: Path) -> None:
    result = synth(_handles_app(tmp_path, 501))
    assert result.failed
    assert "501 is greater than allowed maximum of 500" in result.text
    assert result.violations == []


def test_synth_passes_with_500_resources(tmp_path: Path) -> None:
    result = synth(_handles_app(tmp_path, 500, **NO_CDK_RESOURCE_LIMIT))
    assert not result.failed, result.text
    assert result.violations == []


def test_synth_measures_the_template_file_the_cdk_wrote(tmp_path: Path) -> None:
    app = new_app(tmp_path)
    big = stack(app, "Big", "eu-west-1")
    CfnWaitConditionHandle(big, "Handle").add_metadata("Blob", "x" * 1_000_000)
    result = synth(app)
    assert result.failed
    violation = result.one("certfleet-limit-template-size")
    written = Path(app.outdir) / "Big.template.json"
    size = written.stat().st_size
    assert f"its template is {size:,} bytes (as written to Big.template.json)" in violation["description"]
    assert f"{size - 1_000_000:,} over" in violation["description"]
    template = json.loads(written.read_text())
    assert f"its template is {size:,} bytes (as the CDK writes its JSON)" in only(
        check_limits([st(**template)]), "certfleet-limit-template-size").message  # no file: the same size


def test_synth_fails_on_a_cfn_role_whose_cfn_policy_is_too_big(tmp_path: Path) -> None:
    app = new_app(tmp_path)
    big = stack(app, "Big", "eu-west-1")
    worker = iam.CfnRole(big, "Worker", assume_role_policy_document={
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                               "Principal": {"Service": "lambda.amazonaws.com"}}]})
    iam.CfnPolicy(big, "Grants", policy_name="grants", roles=[worker.ref], policy_document=document(10_300))
    result = synth(app)
    assert result.failed
    violation = result.one("certfleet-limit-role-inline-policy")
    assert result.location(violation) == ("Big/Worker", "Properties/Policies")
    assert "its inline policies add up to 10,300 characters (Grants 10,300), 60 over IAM's limit of 10,240" \
        in violation["description"]


def test_synth_fails_on_an_l2_role_with_a_big_inline_policy(tmp_path: Path) -> None:
    app = new_app(tmp_path)
    big = stack(app, "Big", "eu-west-1")
    statements = [iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"arn:aws:s3:::bucket-{i:03d}/*"])
                  for i in range(200)]
    iam.Role(big, "Worker", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
             inline_policies={"Reads": iam.PolicyDocument(statements=statements)})  # the CDK does not split these
    result = synth(app)
    assert result.failed
    violation = result.one("certfleet-limit-role-inline-policy")
    assert result.location(violation) == ("Big/Worker/Resource", "Properties/Policies")
    assert "role Big/Worker/Resource in stack Big, eu-west-1: its inline policies add up to" in violation["description"]


def _overflowing_role(tmp_path: Path, statements: int) -> tuple[Synth, int]:
    """Synthesize an iam.Role given ``statements`` statements: the CDK moves what outgrows its default policy into
    managed OverflowPolicy parts. Returns the synth and how many parts the CDK made (read from the template)."""
    app = new_app(tmp_path)
    big = stack(app, "Big", "eu-west-1")
    worker = iam.Role(big, "Worker", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    for i in range(statements):
        worker.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[f"arn:aws:s3:::bucket-{i:04d}-{j:02d}/*" for j in range(10)]))
    result = synth(app)
    parts = [lid for lid, r in _template(app, "Big")["Resources"].items()
             if r["Type"] == "AWS::IAM::ManagedPolicy" and lid.startswith("WorkerOverflowPolicy")]
    return result, len(parts)


def _template(app: App, name: str) -> dict[str, Any]:
    return dict(json.loads((Path(app.outdir) / f"{name}.template.json").read_text()))


@pytest.mark.parametrize(("statements", "severity"), [(250, "warning"), (400, "error")])
def test_the_cdks_overflow_policies_count_as_managed_policies(
    tmp_path: Path, statements: int, severity: str,
) -> None:
    result, parts = _overflowing_role(tmp_path, statements)
    assert (11 <= parts <= 20) if severity == "warning" else parts > 20, f"the CDK made {parts} OverflowPolicy parts"
    assert result.failed is (severity == "error"), result.text
    assert result.codes() == ["certfleet-limit-role-managed-policies"]  # no inline or per-policy finding
    violation = result.one("certfleet-limit-role-managed-policies")
    assert violation["severity"] == severity
    assert result.location(violation) == ("Big/Worker/Resource", "Properties/ManagedPolicyArns")
    over = parts - 10 if severity == "warning" else parts - 20
    assert f"{parts} managed policies are attached to it, {over} over IAM's" in violation["description"]
    assert f"({parts} of them the CDK's OverflowPolicy parts of the role's default policy" in violation["description"]
    assert "@aws-cdk/aws-iam:minimizePolicies" in violation["suggestedFix"]


def test_a_fleet_synthesizes_with_no_limit_finding(tmp_path: Path, rsa_bundle: CertificateBundle) -> None:
    app = new_app(tmp_path)
    fleet(app, rsa_bundle, regions=("eu-west-1", "ap-northeast-1"))
    result = synth(app)
    assert not result.failed, result.text
    assert result.violations == []


def test_a_fleet_group_shard_over_the_limit_names_the_groups_max_resources(
    tmp_path: Path, rsa_bundle: CertificateBundle,
) -> None:
    app = new_app(tmp_path, context=NO_CDK_RESOURCE_LIMIT)
    group = FleetGroup(app, "Certs", account=ACCOUNT, regions=["eu-west-1"], edge=False)
    group.add_fleet("Www", bundle=rsa_bundle, key=KeySource.secret(SECRET_ARN))
    (shard,) = group.stacks
    for i in range(500):  # what a user adds to the group's stack counts too
        CfnWaitConditionHandle(shard, f"Handle{i}")
    result = synth(app)
    assert result.failed
    violation = result.one("certfleet-limit-resources")
    assert f"stack {shard.stack_name}, eu-west-1 declares" in violation["description"]
    assert "this stack is a shard of FleetGroup Certs: lower its max_resources" in violation["suggestedFix"]
