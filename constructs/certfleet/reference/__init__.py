"""The reference app: the seed's architectures per environment, from ``cdk.json`` context.

``cdk synth -c env=demo`` builds one environment; ``cdk synth -c pipeline=true`` puts dev → staging → prod
into the Stages of a CDK Pipelines ``CodePipeline``. Only the environments asked for are read (their files
must exist; the others' need not). Paths in the configuration are relative to the folder ``cdk`` runs in.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import App, DefaultStackSynthesizer, Environment, NestedStack, Stack, Stage, pipelines, region_info
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from certfleet.certificate_bundle import CertificateBundle
from certfleet.fleet import CertificateFleet
from certfleet.gates import acknowledge, nag_reference, skip_checkov
from certfleet.key_source import KeySource
from certfleet.reference.architectures import ARCHITECTURES, AlertsStack

CONTEXT_KEY = "certfleet"
DEFAULT_PIPELINE_ORDER = ("dev", "staging", "prod")
# What the pipeline's Synth step runs in CodeBuild, from a clean checkout: setup.sh makes .venv and node_modules;
# the CDK CLI runs cdk.json's "python -P app.py", which must find the .venv's python (aws-cdk-lib) first on PATH.
SYNTH_COMMANDS = (
    "bash scripts/setup.sh",
    'PATH="$PWD/.venv/bin:$PATH" JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 '
    "node_modules/.bin/cdk synth -c pipeline=true",
)

# The wildcards CDK Pipelines writes into its own roles' policies (cdk-nag AwsSolutions-IAM5 findings), each with
# why it stays. Only findings matching one of these are acknowledged, policy by policy: a new wildcard fails CI.
PIPELINE_WILDCARDS: tuple[tuple[str, str], ...] = (
    (r"Action::s3:(GetObject|GetBucket|List|DeleteObject|Abort)\*",
     "CDK Pipelines' read/write grant on the pipeline's own artifact buckets uses these action groups"),
    (r"Action::kms:(ReEncrypt|GenerateDataKey)\*",
     "CDK Pipelines' grant on the pipeline's own artifact encryption keys uses these action groups"),
    (r"Resource::<PipelineArtifactsBucket[0-9A-F]{8}\.Arn>/\*", "objects of the pipeline's own artifact bucket"),
    (r"Resource::arn:<AWS::Partition>:s3:::certfleetpipeline-support[a-z0-9-]+/\*",
     "objects of the pipeline's cross-region artifact replication buckets"),
    (r"Resource::arn:<AWS::Partition>:logs:{region}:{account}:log-group:/aws/codebuild/[^*]*(:\*|\*)",
     "the CloudWatch log groups CodeBuild creates for the pipeline's own build projects"),
    (r"Resource::arn:<AWS::Partition>:codebuild:{region}:{account}:report-group/[^*]*\*",
     "the CodeBuild report groups of the pipeline's own build projects"),
    (r"Resource::arn:\*:iam::{account}:role/\*",
     "self-mutation assumes only CDK bootstrap roles (conditioned on iam:ResourceTag/aws-cdk:bootstrap-role)"),
    (r"Resource::\*",
     "written by CDK Pipelines (DescribeStacks, ListBucket, StartBuild of its asset jobs, its replication keys)"),
)
# checkov's CKV_AWS_111 (write access on "*") on the policies CDK Pipelines writes, by their role's path in it.
PIPELINE_WRITE_ON_ANY = {
    "Assets/FileRole": "CDK Pipelines' asset jobs call codebuild:StartBuild/StopBuild on *, as CDK Pipelines writes it",
    "Pipeline/Role": "CDK Pipelines' kms:Encrypt/ReEncrypt on * for its cross-region replication keys, whose key "
                     "policies admit only the pipeline",
}
ARTIFACT_STORE = "a CodePipeline artifact store: only the pipeline's roles use it, and CloudTrail records their calls"


@dataclass(frozen=True)
class ExpiryAlerts:
    """Where an environment's expiry alarms and ACM expiry events go (``expiry_alerts`` of its context entry)."""

    region: str
    days: int = 30
    emails: tuple[str, ...] = ()

    @classmethod
    def from_context(cls, where: str, raw: Any) -> ExpiryAlerts:
        if not isinstance(raw, dict) or not isinstance(raw.get("region"), str):
            raise ValueError(f'{where}.expiry_alerts: give {{"region": "us-east-1", "days": 30, "emails": [...]}} '
                             "(region: where the alerting topic lives)")
        days = raw.get("days", 30)
        emails = raw.get("emails", [])
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ValueError(f"{where}.expiry_alerts.days: {days!r} must be a whole number of days, at least 1")
        if not isinstance(emails, list) or not all(isinstance(e, str) and "@" in e for e in emails):
            raise ValueError(f"{where}.expiry_alerts.emails: give a list of e-mail addresses")
        return cls(region=raw["region"], days=days, emails=tuple(emails))


@dataclass(frozen=True)
class EnvironmentConfig:
    """One environment of the reference app (the ``certfleet.environments.NAME`` context entry)."""

    name: str
    account: str
    certificate: Path
    chain: Path | None
    key: KeySource
    regions: tuple[str, ...]
    domain: str
    architectures: dict[str, tuple[str, ...]] = field(default_factory=dict)
    termination_protection: bool = False
    expiry_alerts: ExpiryAlerts | None = None

    @classmethod
    def from_context(cls, name: str, raw: dict[str, Any], root: Path) -> EnvironmentConfig:
        where = f"cdk.json context {CONTEXT_KEY}.environments.{name}"
        missing = [k for k in ("account", "certificate", "key", "regions") if k not in raw]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        key_spec = raw["key"]
        key: KeySource
        if isinstance(key_spec, dict) and "sealed" in key_spec:
            sealed = root / key_spec["sealed"]
            if not sealed.exists():
                raise ValueError(f"{where}: the sealed key {sealed} does not exist ({_MAKE_MATERIAL})")
            key = KeySource.sealed(sealed)
        elif isinstance(key_spec, dict) and "secret" in key_spec:
            key = KeySource.secret(str(key_spec["secret"]))
        else:
            raise ValueError(f'{where}: key must be {{"sealed": PATH}} or {{"secret": NAME_OR_ARN}}')
        wanted = raw.get("architectures", list(ARCHITECTURES))
        unknown = [a for a in wanted if a not in ARCHITECTURES]
        if unknown:
            raise ValueError(f"{where}: unknown architecture(s) {unknown}; choose from {sorted(ARCHITECTURES)}")
        architectures = {
            a: tuple(wanted[a]) if isinstance(wanted, dict) else ARCHITECTURES[a][1] for a in wanted
        }
        protect = raw.get("termination_protection", False)
        if not isinstance(protect, bool):
            raise ValueError(f"{where}.termination_protection: {protect!r} must be true or false")
        alerts = raw.get("expiry_alerts")
        for path in [raw["certificate"], *([raw["chain"]] if raw.get("chain") else [])]:
            if not (root / path).exists():
                raise ValueError(f"{where}: the file {root / path} does not exist ({_MAKE_MATERIAL})")
        return cls(
            name=name, account=str(raw["account"]), certificate=root / raw["certificate"],
            chain=root / raw["chain"] if raw.get("chain") else None, key=key,
            regions=tuple(raw["regions"]), domain=str(raw.get("domain", "example.com")),
            architectures=architectures, termination_protection=protect,
            expiry_alerts=ExpiryAlerts.from_context(where, alerts) if alerts is not None else None,
        )


_MAKE_MATERIAL = (
    "demo/: run `bash scripts/demo.sh`; reference/: `.venv/bin/python -P scripts/reference_material.py`; your "
    "own: the CA's files and `certfleet seal --key ... --kms-key alias/certfleet-sealing --name ... --out ...`"
)


def settings(app: Construct, root: Path) -> dict[str, Any]:
    """The ``certfleet`` context: from the CDK CLI, or read from ./cdk.json when app.py runs on its own."""
    config = app.node.try_get_context(CONTEXT_KEY)
    if config is None and (root / "cdk.json").exists():
        config = json.loads((root / "cdk.json").read_text()).get("context", {}).get(CONTEXT_KEY)
    return dict(config or {})


def environments(app: Construct, root: Path, names: tuple[str, ...]) -> dict[str, EnvironmentConfig]:
    """The environments ``names`` of the app's context, and only those: the others' files are never read."""
    known = settings(app, root).get("environments") or {}
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(f"no environment {', '.join(map(repr, missing))} in cdk.json context "
                         f"{CONTEXT_KEY}.environments (have: {', '.join(known) or 'none'}): -c env=NAME")
    return {name: EnvironmentConfig.from_context(name, known[name], root) for name in names}


def build_environment(scope: Construct, config: EnvironmentConfig) -> CertificateFleet:
    """The fleet and every architecture of one environment, under an App or a Stage."""
    bundle = CertificateBundle.from_files(config.certificate, chain=config.chain)
    fleet = CertificateFleet(scope, "Certificates", bundle=bundle, key=config.key, account=config.account,
                             regions=config.regions, edge=True)
    for name, regions in config.architectures.items():
        stack_class = ARCHITECTURES[name][0]
        for region in regions:
            stack_class(scope, f"{name}-{region}", fleet=fleet, region=region, domain=config.domain)
    if config.expiry_alerts is not None:
        alerts = AlertsStack(scope, "Alerts", account=config.account, region=config.expiry_alerts.region,
                             emails=config.expiry_alerts.emails)
        fleet.add_expiry_monitoring(topic=alerts.topic, days=config.expiry_alerts.days)
    if config.termination_protection:
        for stack in scope.node.find_all():
            if isinstance(stack, Stack) and not isinstance(stack, NestedStack):
                stack.termination_protection = True
    return fleet


class EnvironmentStage(Stage):
    """One environment as a deployable unit of a pipeline."""

    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, id, env=Environment(account=config.account, region="us-east-1"))
        self.fleet = build_environment(self, config)


def build_pipeline(
    app: App, envs: dict[str, EnvironmentConfig], order: tuple[str, ...], pipeline: dict[str, Any],
) -> Stack:
    """dev → staging → prod (manual approval before prod) as Stages of one CodePipeline."""
    missing = [k for k in ("account", "repository", "connection_arn") if k not in pipeline]
    if missing:
        raise ValueError(f"cdk.json context {CONTEXT_KEY}.pipeline: missing {', '.join(missing)}")
    stack = Stack(app, "CertfleetPipeline",
                  env=Environment(account=str(pipeline["account"]), region=pipeline.get("region", "us-east-1")))
    source = pipelines.CodePipelineSource.connection(
        pipeline["repository"], pipeline.get("branch", "main"), connection_arn=pipeline["connection_arn"],
    )
    code_pipeline = pipelines.CodePipeline(
        stack, "Pipeline", cross_account_keys=True, enable_key_rotation=True,
        synth=pipelines.ShellStep("Synth", input=source, commands=list(SYNTH_COMMANDS)),
    )
    for name in order:
        if name not in envs:
            raise ValueError(f"the pipeline deploys {name!r}, but cdk.json has no environment of that name")
        pre = [pipelines.ManualApprovalStep(f"Promote-to-{name}")] if name == order[-1] else []
        stage = EnvironmentStage(stack, name, config=envs[name])
        post = [protect_step(stage, stack.region)] if envs[name].termination_protection else []
        code_pipeline.add_stage(stage, pre=pre, post=post)
    code_pipeline.build_pipeline()
    _acknowledge_pipeline(code_pipeline)
    return stack


def protect_step(stage: Stage, pipeline_region: str) -> pipelines.CodeBuildStep:
    """After the stage deploys, turn on its stacks' termination protection, which CodePipeline's CloudFormation
    actions ignore (aws/aws-cdk#17871), through each stack's CDK bootstrap deploy role, which may call it.
    """
    partition = region_info.RegionInfo.get(pipeline_region).partition or "aws"
    commands: list[str] = []
    roles: dict[str, None] = {}
    for stack in stage.node.find_all():
        if not isinstance(stack, Stack) or isinstance(stack, NestedStack) or not stack.termination_protection:
            continue
        if not isinstance(stack.synthesizer, DefaultStackSynthesizer):
            raise ValueError(f"{stack.node.path}: termination protection through the pipeline needs the default "
                             "stack synthesizer's deploy role")
        role = stack.synthesizer.deploy_role_arn.replace("${AWS::Partition}", partition)
        profile = f"deploy-{stack.account}-{stack.region}"
        if role not in roles:
            roles[role] = None
            commands += [f"aws configure set profile.{profile}.role_arn {shlex.quote(role)}",
                         f"aws configure set profile.{profile}.credential_source EcsContainer"]
        commands.append(f"aws cloudformation update-termination-protection --enable-termination-protection "
                        f"--stack-name {shlex.quote(stack.stack_name)} --region {stack.region} --profile {profile}")
    return pipelines.CodeBuildStep(
        f"Protect-{stage.stage_name}", commands=commands,
        role_policy_statements=[iam.PolicyStatement(actions=["sts:AssumeRole"], resources=sorted(roles))],
    )


def _acknowledge_pipeline(code_pipeline: pipelines.CodePipeline) -> None:
    """The cdk-nag findings CDK Pipelines' generated resources carry, acknowledged where they are made."""
    stack = Stack.of(code_pipeline)
    pipeline = code_pipeline.pipeline
    buckets = [pipeline.artifact_bucket] + [s.replication_bucket for s in pipeline.cross_region_support.values()]
    for bucket in buckets:
        if isinstance(bucket, s3.Bucket):
            acknowledge(bucket, "AwsSolutions-S1", ARTIFACT_STORE)
            skip_checkov(bucket, "CKV_AWS_18", ARTIFACT_STORE)
            skip_checkov(bucket, "CKV_AWS_21", "CodePipeline writes each artifact under a new key per execution: "
                         "versions would keep nothing more")
    here = {"{region}": re.escape(stack.region), "{account}": re.escape(stack.account)}
    patterns = [(re.compile(re.sub(r"\{region\}|\{account\}", lambda m: here[m.group(0)], p) + "$"), reason)
                for p, reason in PIPELINE_WILDCARDS]
    for policy in code_pipeline.node.find_all():
        if not isinstance(policy, iam.CfnPolicy):
            continue
        role = policy.node.path.removeprefix(code_pipeline.node.path + "/").removesuffix("/DefaultPolicy/Resource")
        if role in PIPELINE_WRITE_ON_ANY and _writes_on_any(Stack.of(policy).resolve(policy.policy_document)):
            skip_checkov(policy, "CKV_AWS_111", PIPELINE_WRITE_ON_ANY[role])
        for finding in _wildcards(Stack.of(policy).resolve(policy.policy_document)):
            reason = next((r for p, r in patterns if p.match(finding)), None)
            if reason is not None:
                acknowledge(policy, f"AwsSolutions-IAM5[{finding}]", reason)


def _writes_on_any(document: dict[str, Any]) -> bool:
    """Whether an Allow of ``document`` grants a codebuild or kms write action on ``*`` (what CKV_AWS_111 flags)."""
    for statement in document.get("Statement", []):
        actions = statement.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if statement.get("Effect") == "Allow" and statement.get("Resource") == "*" and any(
                a.split(":")[0] in ("codebuild", "kms") and not a.split(":")[1].startswith(("Describe", "BatchGet"))
                for a in actions):
            return True
    return False


def _wildcards(document: dict[str, Any]) -> list[str]:
    """cdk-nag's IAM5 findings of a resolved policy document: ``Action::x*`` and ``Resource::...*`` of Allows."""
    found: dict[str, None] = {}
    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        for key, prefix in (("Action", "Action::"), ("Resource", "Resource::")):
            values = statement.get(key, [])
            for value in values if isinstance(values, list) else [values]:
                text = nag_reference(value)
                if "*" in text:
                    found[prefix + text] = None
    return list(found)


def build(app: App, root: Path | None = None) -> None:
    """What app.py runs: one environment (``-c env=NAME``, default demo) or the pipeline (``-c pipeline=true``)."""
    root = root or Path.cwd()
    if str(app.node.try_get_context("pipeline")).lower() == "true":
        wanted = app.node.try_get_context("pipeline_order") or DEFAULT_PIPELINE_ORDER
        order = tuple(n.strip() for n in wanted.split(",")) if isinstance(wanted, str) else tuple(wanted)
        build_pipeline(app, environments(app, root, order), order, settings(app, root).get("pipeline") or {})
        return
    name = str(app.node.try_get_context("env") or "demo")
    build_environment(app, environments(app, root, (name,))[name])
