"""cdk-nag ``AwsSolutionsChecks`` on every environment of the reference app: no unacknowledged finding.

Each environment (demo, dev, staging, prod, and the pipeline that deploys dev -> staging -> prod) is synthesized
once with the cdk-nag 3 validation plugin. A finding fails the test, listed as ``rule at construct path``; the fix
is in the code that makes the resource, or an acknowledgement right there (``certfleet.gates.acknowledge``) with
a one-line reason. The placement checks and CloudFormation Validate plugins run too and are not judged here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack, Stage, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from certfleet import CertificateBundle, CertificateFleet, FleetGroup, KeySource
from certfleet.ec2 import CertificateFiles
from certfleet.gates import acknowledge
from certfleet.material.demo import DemoPKI
from certfleet.reference import build
from certfleet.sealing import SealingKey
from certfleet.testing.synth import write_reference_app, write_synth_only_sealed_key

ROOT = Path(__file__).resolve().parents[2]
PACK = "AwsSolutions"
ENVIRONMENTS = {
    "demo": {"env": "demo"},
    "dev": {"env": "dev"},
    "staging": {"env": "staging"},
    "prod": {"env": "prod"},
    "pipeline": {"pipeline": "true"},
}


@pytest.fixture(scope="module")
def app_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like the repository's: cdk.json, demo material (the key sealed, never plain) and the
    committed reference material the other environments use."""
    folder = tmp_path_factory.mktemp("nag-app")
    write_reference_app(folder, ROOT, label="cdk-nag")
    return folder


def nag_app(outdir: Path, context: dict[str, Any] | None = None) -> App:
    app = App(outdir=str(outdir), context=context or {})
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def unacknowledged(app: App, outdir: Path) -> list[str]:
    """Synthesize ``app`` and return cdk-nag's findings that nothing acknowledged, as ``rule at path``."""
    try:
        app.synth()
    except Exception as exc:  # the validation plugins fail the in-memory synth with a report
        if "ValidationFailed" not in str(exc):
            raise
    report = json.loads((outdir / "validation-report.json").read_text())
    findings = []
    for nag in report["pluginReports"]:  # a plugin with nothing to report is left out of the report
        if nag["pluginName"] != PACK:
            continue
        findings += [f"{v['ruleName']} ({v['severity']}) at {c['constructPath']}"
                     for v in nag["violations"] for c in v["violatingConstructs"]]
        if nag["conclusion"] != "success" and not findings:
            findings.append(f"{PACK} did not run to the end: {nag}")
    return sorted(findings)


def acknowledgements(root: IConstruct) -> list[tuple[IConstruct, str, str]]:
    """Every cdk-nag acknowledgement in the tree: (construct, rule id, reason)."""
    found = []
    for construct in root.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for qualified, reason in dict(entry.data).items():
                    rule = str(qualified).removeprefix("Annotation::")
                    if rule.startswith(f"{PACK}-"):  # not another plugin's (certfleet-placement has its own tests)
                        found.append((construct, rule, str(reason)))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_reference_app_has_no_unacknowledged_cdk_nag_finding(
    environment: str, app_folder: Path, tmp_path: Path,
) -> None:
    """GIVEN an environment of the reference app WHEN it is synthesized with AwsSolutionsChecks
    THEN cdk-nag reports nothing, and every acknowledgement is narrow (no app, stage or stack) with a one-line
    reason"""
    context = json.loads((app_folder / "cdk.json").read_text())["context"]
    app = nag_app(tmp_path / "cdk.out", {**context, **ENVIRONMENTS[environment]})
    build(app, app_folder)
    assert unacknowledged(app, tmp_path / "cdk.out") == []
    acks = acknowledgements(app)
    assert acks, "the reference app acknowledges what it keeps on purpose"
    for construct, rule, reason in acks:
        path = construct.node.path
        assert not isinstance(construct, (Stack, Stage)), f"{rule} is acknowledged for the whole of {path!r}"
        assert reason.strip() and "\n" not in reason and len(reason) <= 160, f"{path} {rule}: reason {reason!r}"


def test_the_library_constructs_need_nothing_from_their_users(app_folder: Path, tmp_path: Path) -> None:
    """GIVEN what the reference app does not use (expiry monitoring through a cross-region relay, certificate files
    for EC2, the sealing key) WHEN checked THEN nothing is reported: a user acknowledges nothing of certfleet's"""
    app = nag_app(tmp_path / "cdk.out")
    demo = app_folder / "demo"
    fleet = CertificateFleet(
        app, "Fleet", bundle=CertificateBundle.from_files(demo / "certificate.pem", chain=demo / "chain.pem"),
        key=KeySource.sealed(demo / "private.key.sealed"), account="123456789012", regions=["eu-west-1"],
    )
    env = Environment(account="123456789012", region="eu-west-1")
    ops = Stack(app, "Ops", env=env)
    fleet.add_expiry_monitoring(topic=sns.Topic(ops, "Topic", enforce_ssl=True))
    web = Stack(app, "Web", env=env)
    role = iam.Role(web, "Instance", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    CertificateFiles(web, "Files", source=fleet, role=role)
    SealingKey(web, "Sealing", sealers=[role])
    assert unacknowledged(app, tmp_path / "cdk.out") == []


def test_a_fleet_group_needs_nothing_from_its_users(app_folder: Path, tmp_path: Path) -> None:
    """GIVEN a FleetGroup of three certificates, sharded (two fleets per us-east-1 stack), with expiry alerts to a
    topic in another region WHEN checked THEN nothing is reported: its group-wide IAM carries its own reasons"""
    app = nag_app(tmp_path / "cdk.out")
    ops = Stack(app, "Ops", env=Environment(account="123456789012", region="eu-west-1"))
    group = FleetGroup(app, "Group", account="123456789012", regions=["eu-west-1"], max_outputs=4,
                       expiry_topic=sns.Topic(ops, "Topic", enforce_ssl=True))
    pki = DemoPKI.create("ec-p256", label="cdk-nag group")
    for i in range(3):
        leaf = pki.leaf((f"site{i}.example.com",), key_type="ec-p256", days=200)
        sealed = write_synth_only_sealed_key(tmp_path / f"{i}.sealed", leaf.key, f"site{i}.example.com")
        bundle = CertificateBundle.from_pem(leaf.pem().decode(), pki.chain_pem().decode())
        group.add_fleet(f"Site{i}", bundle=bundle, key=KeySource.sealed(sealed))
    assert len(group.shards("us-east-1")) == 2
    assert unacknowledged(app, tmp_path / "cdk.out") == []


def test_a_finding_fails_and_an_exact_acknowledgement_clears_it(tmp_path: Path) -> None:
    """GIVEN a throwaway app with a queue that allows plain HTTP and a role with a wildcard resource
    WHEN it is checked THEN both findings are reported; acknowledged by exact id on the construct that makes them,
    they are gone, and an acknowledgement of another granular finding clears nothing"""
    def throwaway(outdir: Path, acknowledged: bool) -> list[str]:
        app = nag_app(outdir)
        stack = Stack(app, "Throwaway")
        queue = sqs.Queue(stack, "Queue", encryption=sqs.QueueEncryption.SQS_MANAGED)
        role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=["*"]))
        acknowledge(role, "AwsSolutions-IAM5[Resource::arn:aws:sqs:*]", "not the finding: clears nothing")
        if acknowledged:
            acknowledge(queue, "AwsSolutions-SQS3", "test: no dead-letter queue")
            acknowledge(queue, "AwsSolutions-SQS4", "test: plain HTTP allowed")
            acknowledge(role, "AwsSolutions-IAM5[Resource::*]", "test: wildcard on purpose")
        return unacknowledged(app, outdir)

    found = throwaway(tmp_path / "a", acknowledged=False)
    assert "AwsSolutions-SQS4 (error) at Throwaway/Queue/Resource" in found
    assert "AwsSolutions-IAM5[Resource::*] (error) at Throwaway/Role/DefaultPolicy/Resource" in found
    assert throwaway(tmp_path / "b", acknowledged=True) == []
