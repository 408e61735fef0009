"""The reference app: the seed's architectures per environment, from ``cdk.json`` context.

``cdk synth -c env=demo`` builds one environment; ``cdk synth -c pipeline=true`` puts dev → staging → prod
into the Stages of a CDK Pipelines ``CodePipeline``. Paths in the configuration are relative to the folder
``cdk`` runs in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Stack, Stage, pipelines
from constructs import Construct

from certfleet.certificate_bundle import CertificateBundle
from certfleet.fleet import CertificateFleet
from certfleet.key_source import KeySource
from certfleet.reference.architectures import ARCHITECTURES

CONTEXT_KEY = "certfleet"


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
                raise ValueError(
                    f"{where}: the sealed key {sealed} does not exist: run `bash scripts/demo.sh` (demo) or "
                    "`certfleet seal --key ... --kms-key alias/certfleet-sealing --name ... --out ...`",
                )
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
        return cls(
            name=name, account=str(raw["account"]), certificate=root / raw["certificate"],
            chain=root / raw["chain"] if raw.get("chain") else None, key=key,
            regions=tuple(raw["regions"]), domain=str(raw.get("domain", "example.com")),
            architectures=architectures,
        )


def settings(app: Construct, root: Path) -> dict[str, Any]:
    """The ``certfleet`` context: from the CDK CLI, or read from ./cdk.json when app.py runs on its own."""
    config = app.node.try_get_context(CONTEXT_KEY)
    if config is None and (root / "cdk.json").exists():
        config = json.loads((root / "cdk.json").read_text()).get("context", {}).get(CONTEXT_KEY)
    return dict(config or {})


def environments(app: Construct, root: Path) -> dict[str, EnvironmentConfig]:
    """Every environment in the app's context."""
    config = settings(app, root)
    return {
        name: EnvironmentConfig.from_context(name, raw, root)
        for name, raw in (config.get("environments") or {}).items()
    }


def build_environment(scope: Construct, config: EnvironmentConfig) -> CertificateFleet:
    """The fleet and every architecture of one environment, under an App or a Stage."""
    bundle = CertificateBundle.from_files(config.certificate, chain=config.chain)
    fleet = CertificateFleet(scope, "Certificates", bundle=bundle, key=config.key, account=config.account,
                             regions=config.regions, edge=True)
    for name, regions in config.architectures.items():
        stack_class = ARCHITECTURES[name][0]
        for region in regions:
            stack_class(scope, f"{name}-{region}", fleet=fleet, region=region, domain=config.domain)
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
        stack, "Pipeline", cross_account_keys=True,
        synth=pipelines.ShellStep("Synth", input=source, commands=[
            "bash scripts/setup.sh",
            "node_modules/.bin/cdk synth -c pipeline=true",
        ]),
    )
    for name in order:
        if name not in envs:
            raise ValueError(f"the pipeline deploys {name!r}, but cdk.json has no environment of that name")
        pre = [pipelines.ManualApprovalStep(f"Promote-to-{name}")] if name == order[-1] else []
        code_pipeline.add_stage(EnvironmentStage(stack, name, config=envs[name]), pre=pre)
    return stack


def build(app: App, root: Path | None = None) -> None:
    """What app.py runs: one environment (``-c env=NAME``, default demo) or the pipeline (``-c pipeline=true``)."""
    root = root or Path.cwd()
    envs = environments(app, root)
    if str(app.node.try_get_context("pipeline")).lower() == "true":
        order = tuple(app.node.try_get_context("pipeline_order") or ("dev", "staging", "prod"))
        build_pipeline(app, envs, order, settings(app, root).get("pipeline") or {})
        return
    name = app.node.try_get_context("env") or "demo"
    if name not in envs:
        raise ValueError(f"no environment {name!r} in cdk.json (have: {', '.join(envs) or 'none'}): -c env=NAME")
    build_environment(app, envs[name])
