"""The template checks as a CDK policy-validation plugin: every ``app.synth()`` / ``cdk synth`` runs them.

``PlacementChecks.enable(scope)`` registers the plugin once on the root App (a ``CertificateFleet`` does it for
you); an app that uses certificates by ARN only calls it itself::

    app = App()
    PlacementChecks.enable(app)

Errors (a certificate in the wrong region, a key the service refuses, a domain name the certificate does not
cover) fail the synth; warnings (TLS below the floor, strong cross-stack references, unverified keys or regions) are
printed in the validation report and do not. The template limits of ``certfleet.checks.limits`` (resources, outputs,
template size, IAM policy sizes...) are checked in the same pass: a stack CloudFormation would refuse at deploy fails
the synth.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from pathlib import Path

import jsii
from aws_cdk import (
    IPolicyValidationContext,
    IPolicyValidationPlugin,
    PolicyValidationPluginReport,
    PolicyViolatingResource,
    PolicyViolation,
    Stage,
    Validations,
)
from constructs import IConstruct

from certfleet.checks.assembly import StackTemplate, read_assembly_stacks
from certfleet.checks.finding import Finding
from certfleet.checks.graph import check_templates
from certfleet.checks.judgments import RULE_IDS
from certfleet.checks.limits import LIMIT_RULE_IDS, check_limits

PLUGIN_NAME = "certfleet-placement"
PLUGIN_VERSION = "0.1.0"

_ENABLED: weakref.WeakKeyDictionary[Stage, PlacementChecks] = weakref.WeakKeyDictionary()


@jsii.implements(IPolicyValidationPlugin)
class PlacementChecks:
    """Checks, at synth, that every certificate consumer gets a certificate it can use (see certfleet.checks) and
    that no template breaks a CloudFormation or IAM limit (see certfleet.checks.limits)."""

    @classmethod
    def enable(cls, scope: IConstruct) -> PlacementChecks:
        """Register the checks on ``scope``'s root App (or root Stage), once however often it is called."""
        root = scope.node.root
        if not isinstance(root, Stage):
            raise TypeError(
                f"{scope.node.path or 'this construct'}: placement checks need an App (or a Stage) at the root of "
                "the construct tree",
            )
        plugin = _ENABLED.get(root)
        if plugin is None:
            plugin = cls()
            Validations.of(root).add_plugins(plugin)
            _ENABLED[root] = plugin
        return plugin

    @property
    def name(self) -> str:
        """The plugin's name in the validation report, ``certfleet-placement``."""
        return PLUGIN_NAME

    @property
    def version(self) -> str:
        """The plugin's version in the validation report."""
        return PLUGIN_VERSION

    @property
    def rule_ids(self) -> list[str]:
        """Every finding code the checks can report: placement judgments, then template limits."""
        return [*RULE_IDS, *LIMIT_RULE_IDS]

    def validate(self, context: IPolicyValidationContext) -> PolicyValidationPluginReport:
        """Check the synthesized stacks; any error finding fails the synth, warnings are only reported."""
        stacks = stack_templates(context)
        findings = check_templates(stacks) + check_limits(stacks)
        return PolicyValidationPluginReport(
            success=not any(f.is_error for f in findings),
            violations=[_violation(f) for f in findings],
            plugin_version=PLUGIN_VERSION,
        )


def stack_templates(context: IPolicyValidationContext) -> list[StackTemplate]:
    """The stacks under validation, with the stack names and construct paths their assembly manifests hold."""
    known: dict[Path, StackTemplate] = {}
    for directory in {Path(s.template_path).resolve().parent for s in context.stack_templates}:
        if (directory / "manifest.json").is_file():
            for st in read_assembly_stacks(directory):
                known[Path(st.template_path).resolve()] = st
    stacks: list[StackTemplate] = []
    for validated in context.stack_templates:
        path = Path(validated.template_path).resolve()
        found = known.get(path)
        stacks.append(StackTemplate(
            stack_name=found.stack_name if found else path.name.removesuffix(".template.json"),
            construct_path=validated.stack_construct_path,
            account=validated.account_id,
            region=validated.region,
            template=found.template if found else json.loads(path.read_text(encoding="utf-8")),
            template_path=validated.template_path,
            construct_paths=found.construct_paths if found else {},
        ))
    return stacks


def _violation(finding: Finding) -> PolicyViolation:
    site = finding.site
    return PolicyViolation(
        rule_name=finding.code,
        description=finding.message,
        fix=finding.fix,
        severity=finding.severity.value,
        violating_resources=[PolicyViolatingResource(
            resource_logical_id=site.logical_id,
            template_path=site.template_path,
            locations=[site.location],
        )] if site is not None else [],
    )


__all__: Sequence[str] = ("PLUGIN_NAME", "PlacementChecks", "stack_templates")
