"""Helpers for placement tests: a fresh App, a fleet with the checks on, a synth that returns the report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Stack

from certfleet import CertificateBundle, CertificateFleet, KeySource
from certfleet.checks.plugin import PLUGIN_NAME, PlacementChecks

ACCOUNT = "123456789012"
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:x-AbCdEf"


def arn(region: str, ident: str = "11111111-2222-3333-4444-555555555555") -> str:
    return f"arn:aws:acm:{region}:{ACCOUNT}:certificate/{ident}"


def new_app(tmp_path: Path, **kwargs: Any) -> App:
    """A fresh App writing into ``tmp_path``, with the placement checks on (the built-in cfn validation off: speed)."""
    kwargs.setdefault("builtin_cloud_formation_validation", False)
    app = App(outdir=str(tmp_path / "cdk.out"), **kwargs)
    PlacementChecks.enable(app)
    return app


def stack(scope: Any, name: str, region: str, **kwargs: Any) -> Stack:
    return Stack(scope, name, env=Environment(account=ACCOUNT, region=region), **kwargs)


def fleet(scope: Any, bundle: CertificateBundle, *, regions: tuple[str, ...] = (), edge: bool = True,
          id: str = "Certs") -> CertificateFleet:
    made = CertificateFleet(scope, id, bundle=bundle, key=KeySource.secret(SECRET_ARN), account=ACCOUNT,
                            regions=list(regions), edge=edge)
    PlacementChecks.enable(made)  # what CertificateFleet does itself once it is hooked in (idempotent)
    return made


@dataclass
class Synth:
    """What ``app.synth()`` did: raised or not, the exception text, and the plugin's violations."""

    failed: bool
    text: str
    violations: list[dict[str, Any]] = field(default_factory=list)

    def codes(self, severity: str | None = None) -> list[str]:
        return [v["ruleName"] for v in self.violations if severity is None or v["severity"] == severity]

    def of(self, code: str) -> list[dict[str, Any]]:
        return [v for v in self.violations if v["ruleName"] == code]

    def one(self, code: str) -> dict[str, Any]:
        found = self.of(code)
        assert len(found) == 1, f"expected one {code}, got {self.violations}"
        return found[0]

    @staticmethod
    def location(violation: dict[str, Any]) -> tuple[str, str]:
        """(construct path, property path) of the violation's one resource."""
        (construct,) = violation["violatingConstructs"]
        (prop,) = construct["cloudFormationResource"]["propertyPaths"]
        return construct["constructPath"], prop


def synth(app: App) -> Synth:
    try:
        app.synth()
    except RuntimeError as exc:  # jsii surfaces the CDK's ValidationFailed as RuntimeError
        failed, text = True, str(exc)
    else:
        failed, text = False, ""
    report_file = Path(app.outdir) / "validation-report.json"
    violations: list[dict[str, Any]] = []
    if report_file.exists():
        for report in json.loads(report_file.read_text())["pluginReports"]:
            if report["pluginName"] == PLUGIN_NAME:
                violations.extend(report["violations"])
    return Synth(failed, text, violations)
