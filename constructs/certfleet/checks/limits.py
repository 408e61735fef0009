"""CloudFormation and IAM template limits: a stack that CloudFormation or IAM would refuse at deploy fails the synth.

Standard library only (never ``aws_cdk`` nor ``boto3``): run inside ``app.synth()`` by ``certfleet.checks.plugin``
and usable over any ``cdk.out`` with ``certfleet.checks.assembly.load_cloud_assembly``.

Per template: resources, outputs, parameters, mappings, the template's size as written to ``cdk.out`` (CDK uploads
every template through S3, where the limit is 1 MB), the description and the dynamic references (``{{resolve:``).
Per ``AWS::IAM::Role``: the aggregate size of its inline policies and the number of managed policies attached; per
``AWS::IAM::ManagedPolicy``: its document's size. Policy sizes are measured on the template's JSON without
whitespace, with tokens (``Ref``, ``Fn::GetAtt``, ``Fn::Join``) counted as written, not as deployed: approximate.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certfleet.checks.assembly import StackTemplate
from certfleet.checks.finding import Finding, Severity, Site
from certfleet.checks.template import CERTFLEET_TYPE, as_dict, as_list, is_literal

RESOURCES = 500
OUTPUTS = 200
PARAMETERS = 200
MAPPINGS = 200
TEMPLATE_BYTES = 1_000_000
TEMPLATE_BYTES_WARNING = 800_000
DESCRIPTION_BYTES = 1_024
DYNAMIC_REFERENCES = 60
ROLE_INLINE_CHARS = 10_240
ROLE_MANAGED_POLICIES_DEFAULT = 10
ROLE_MANAGED_POLICIES_MAX = 20
MANAGED_POLICY_CHARS = 6_144

#: Every limit finding code, as the validation plugin reports them.
LIMIT_RULE_IDS: tuple[str, ...] = (
    "certfleet-limit-resources", "certfleet-limit-outputs", "certfleet-limit-parameters", "certfleet-limit-mappings",
    "certfleet-limit-template-size", "certfleet-limit-description", "certfleet-limit-dynamic-references",
    "certfleet-limit-role-inline-policy", "certfleet-limit-role-managed-policies",
    "certfleet-limit-managed-policy-size",
)

_SPLIT = "split the stack: move some of its constructs into another Stack"
_UNRESOLVED = ("measured unresolved, as the template's JSON without whitespace (tokens such as Fn::GetAtt count as "
               "written, not as deployed), so approximate")
_SECTIONS = (
    # (template section, code, limit, noun, FleetGroup option that shards on it, what else to do)
    ("Resources", "certfleet-limit-resources", RESOURCES, "resources", "max_resources", ""),
    ("Outputs", "certfleet-limit-outputs", OUTPUTS, "outputs", "max_outputs",
     "; every CfnOutput and every cross-stack reference that another stack reads is one output"),
    ("Parameters", "certfleet-limit-parameters", PARAMETERS, "parameters", "",
     ", or pass several values in one list parameter or a mapping"),
    ("Mappings", "certfleet-limit-mappings", MAPPINGS, "mappings", "",
     ", or merge mappings (each holds up to 200 attributes)"),
)


@dataclass(frozen=True)
class _Stack:
    """One template under check, with what certfleet put into it."""

    st: StackTemplate
    resources: dict[str, Any]
    certificates: int
    groups: tuple[str, ...]

    @property
    def label(self) -> str:
        region = f", {self.st.region}" if self.st.region else ""
        return f"stack {self.st.stack_name}{region}"

    def path_of(self, logical_id: str) -> str:
        return self.st.path_of(logical_id)

    def split_fix(self, option: str = "", other: str = "") -> str:
        """What to do when the stack is too big: a FleetGroup shards sooner, other stacks are split by hand."""
        if self.groups and option:
            return (f"this stack is a shard of FleetGroup {', '.join(self.groups)}: lower its {option} "
                    f"(FleetGroup(..., {option}=...)) so that it opens another shard stack sooner (what you add to its "
                    f"stacks yourself counts too), or {_SPLIT}{other}")
        if self.certificates:
            return (f"this stack holds {self.certificates} certfleet certificate(s): hold them in a FleetGroup, which "
                    f"shards its stacks below CloudFormation's limits, or {_SPLIT}{other}")
        return f"{_SPLIT}{other}"

    def finding(self, code: str, severity: Severity, message: str, fix: str, *, logical_id: str,
                location: str, construct_path: str | None = None) -> Finding:
        path = self.st.construct_path if construct_path is None else construct_path
        site = Site(self.st.stack_name, logical_id, path, self.st.template_path, location)
        return Finding(code, severity, message, fix, site=site)


def check_limits(stacks: Sequence[StackTemplate]) -> list[Finding]:
    """Every template or IAM limit that ``stacks`` break (errors) or come close to (warnings)."""
    findings: list[Finding] = []
    for st in stacks:
        stack = _inspect(st)
        findings.extend(_template_limits(stack))
        findings.extend(_role_limits(stack))
        findings.extend(_managed_policy_limits(stack))
    return sorted(findings, key=_order)


def _order(f: Finding) -> tuple[bool, str, str, str]:
    site = f.site or Site("", "", "", "", "")
    return (not f.is_error, site.stack, f.code, site.logical_id)


def policy_chars(document: Any) -> int:
    """A policy document's size as IAM counts it (no whitespace), its tokens counted as the template writes them."""
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False))


_PSEUDO = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::AccountId": "123456789012"}
"""Pseudo parameters as a deployed commercial-partition policy spells them (an account id is always 12 digits)."""


def deployed_chars(document: Any, region: str | None) -> int:
    """A policy document's size with the pseudo parameters and the ``Fn::Join``s made only of them resolved, as IAM
    will count it (other tokens as written): what the CDK's own overflow packing estimates by."""

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1 and "Ref" in value and isinstance(value["Ref"], str):
            known = {**_PSEUDO, "AWS::Region": region} if region else _PSEUDO
            return known.get(value["Ref"], value)
        if len(value) == 1 and "Fn::Join" in value:
            delimiter, parts = [*as_list(value["Fn::Join"]), None, None][:2]
            resolved = resolve(parts)
            if isinstance(delimiter, str) and isinstance(resolved, list) and all(isinstance(p, str) for p in resolved):
                return delimiter.join(resolved)
            return {"Fn::Join": [delimiter, resolved]}
        return {k: resolve(v) for k, v in value.items()}

    return policy_chars(resolve(document))


def _inspect(st: StackTemplate) -> _Stack:
    resources = as_dict(st.template.get("Resources"))
    certificates = [as_dict(r) for r in resources.values() if as_dict(r).get("Type") == CERTFLEET_TYPE]
    groups = {str(g) for c in certificates if is_literal(g := as_dict(c.get("Properties")).get("Group")) and g}
    return _Stack(st, resources, len(certificates), tuple(sorted(groups)))


def _template_text(st: StackTemplate) -> tuple[bytes, str]:
    """The template as written to cdk.out, or as the CDK would write it when there is no file."""
    path = Path(st.template_path)
    if path.is_file():
        return path.read_bytes(), f"as written to {path.name}"
    return json.dumps(st.template, indent=1, ensure_ascii=False).encode(), "as the CDK writes its JSON"


def _template_limits(stack: _Stack) -> list[Finding]:
    template = stack.st.template
    found: list[Finding] = []
    for section, code, limit, noun, option, other in _SECTIONS:
        entries = as_dict(template.get(section))
        if len(entries) > limit:
            most = ""
            if section == "Resources":
                types = Counter(str(as_dict(r).get("Type", "?")) for r in entries.values()).most_common(3)
                most = f" (most: {', '.join(f'{t} x{n}' for t, n in types)})"
            found.append(stack.finding(
                code, Severity.ERROR,
                f"{stack.label} declares {len(entries):,} {noun}{most}, {len(entries) - limit:,} over "
                f"CloudFormation's limit of {limit:,} {noun} per template: CloudFormation would refuse it at deploy",
                stack.split_fix(option, other), logical_id=section, location=section,
            ))
    data, how = _template_text(stack.st)
    size = len(data)
    if size > TEMPLATE_BYTES_WARNING:
        over = size > TEMPLATE_BYTES
        found.append(stack.finding(
            "certfleet-limit-template-size", Severity.ERROR if over else Severity.WARNING,
            f"{stack.label}: its template is {size:,} bytes ({how}), "
            + (f"{size - TEMPLATE_BYTES:,} over" if over else f"{TEMPLATE_BYTES - size:,} under (close to)")
            + f" CloudFormation's limit of {TEMPLATE_BYTES:,} bytes (1 MB) for a template uploaded through S3",
            stack.split_fix("max_template_bytes",
                            ", or write it without indentation: Stack(..., suppress_template_indentation=True)"),
            logical_id="Template", location="",
        ))
    description = template.get("Description")
    if isinstance(description, str) and len(description.encode()) > DESCRIPTION_BYTES:
        length = len(description.encode())
        found.append(stack.finding(
            "certfleet-limit-description", Severity.ERROR,
            f"{stack.label}: its description is {length:,} bytes (UTF-8), {length - DESCRIPTION_BYTES:,} over "
            f"CloudFormation's limit of {DESCRIPTION_BYTES:,} bytes",
            "shorten the stack's description (Stack(..., description=...))",
            logical_id="Description", location="Description",
        ))
    references = data.decode(errors="replace").count("{{resolve:")
    if references > DYNAMIC_REFERENCES:
        found.append(stack.finding(
            "certfleet-limit-dynamic-references", Severity.ERROR,
            f"{stack.label}: its template holds {references} dynamic references ({{{{resolve:...}}}}), "
            f"{references - DYNAMIC_REFERENCES} over CloudFormation's limit of {DYNAMIC_REFERENCES} per template",
            stack.split_fix(other=", or resolve fewer values at deploy: read secrets and parameters at run time "
                                  "(one JSON secret rather than one reference per field)"),
            logical_id="Template", location="",
        ))
    return found


def _attached(stack: _Stack, role_id: str, props: dict[str, Any]) -> tuple[list[tuple[str, int]], set[str]]:
    """A role's inline policy documents (where each is written, its size) and its managed policies (ids)."""
    refs: list[Any] = [{"Ref": role_id}]  # how other resources name the role: Ref (its name) or its literal RoleName
    if is_literal(props.get("RoleName")):
        refs.append(props["RoleName"])
    own = as_list(props.get("Policies"))
    inline = [("its Policies", sum(policy_chars(as_dict(p).get("PolicyDocument")) for p in own))] if own else []
    managed: set[str] = set()  # logical ids of the template's managed policies, else the ARN's JSON
    for entry in as_list(props.get("ManagedPolicyArns")):
        target = entry.get("Ref") if isinstance(entry, dict) and len(entry) == 1 else None
        if isinstance(target, str) and as_dict(stack.resources.get(target)).get("Type") == "AWS::IAM::ManagedPolicy":
            managed.add(target)
        else:
            managed.add(json.dumps(entry, sort_keys=True))
    for other_id, raw in stack.resources.items():
        kind = as_dict(raw).get("Type")
        other = as_dict(as_dict(raw).get("Properties"))
        names_role = any(r in refs for r in as_list(other.get("Roles")))
        if (kind == "AWS::IAM::Policy" and names_role) or (
                kind == "AWS::IAM::RolePolicy" and other.get("RoleName") in refs):
            inline.append((other_id, policy_chars(other.get("PolicyDocument"))))
        elif kind == "AWS::IAM::ManagedPolicy" and names_role:
            managed.add(other_id)
    return inline, managed


def _role_limits(stack: _Stack) -> list[Finding]:
    found: list[Finding] = []
    for role_id, raw in stack.resources.items():
        if as_dict(raw).get("Type") != "AWS::IAM::Role":
            continue
        inline, managed = _attached(stack, role_id, as_dict(as_dict(raw).get("Properties")))
        path = stack.path_of(role_id)
        where = f"role {path or role_id} in {stack.label}"
        total = sum(size for _, size in inline)
        if total > ROLE_INLINE_CHARS:
            parts = ", ".join(f"{name} {size:,}" for name, size in sorted(inline, key=lambda p: -p[1]))
            certfleet = (f"; this is a certfleet role, granted the key of each of the stack's {stack.certificates} "
                         "certificates: spread them over more stacks") if stack.certificates and "/Certfleet" in path \
                else ""
            found.append(stack.finding(
                "certfleet-limit-role-inline-policy", Severity.ERROR,
                f"{where}: its inline policies add up to {total:,} characters ({parts}), {total - ROLE_INLINE_CHARS:,} "
                f"over IAM's limit of {ROLE_INLINE_CHARS:,} characters per role ({_UNRESOLVED})",
                "move statements into customer managed policies (iam.ManagedPolicy, up to 6,144 characters each) "
                "attached to the role, merge statements that share actions (feature flag "
                f"@aws-cdk/aws-iam:minimizePolicies), or give part of the work its own role{certfleet}",
                logical_id=role_id, location="Properties/Policies", construct_path=path,
            ))
        if len(managed) > ROLE_MANAGED_POLICIES_DEFAULT:
            found.append(_managed_count(stack, role_id, where, managed))
    return found


def _managed_count(stack: _Stack, role_id: str, where: str, managed: set[str]) -> Finding:
    """Over 10 managed policies: a warning (the quota can be raised to 20); over 20: an error."""
    count = len(managed)
    overflow = sum(1 for key in managed if "OverflowPolicy" in key)
    why = (f" ({overflow} of them the CDK's OverflowPolicy parts of the role's default policy, which outgrew IAM's "
           "inline limit)" if overflow else "")
    broader = (", or add fewer, broader statements to the role (or set the feature flag @aws-cdk/aws-iam:"
               "minimizePolicies) so that the CDK needs fewer OverflowPolicy parts") if overflow else ""
    fewer = f"attach fewer managed policies: merge their statements{broader}, or give part of the work its own role"
    if count > ROLE_MANAGED_POLICIES_MAX:
        severity = Severity.ERROR
        over = (f"{count - ROLE_MANAGED_POLICIES_MAX} over IAM's maximum of {ROLE_MANAGED_POLICIES_MAX} per role (the "
                "quota cannot be raised further)")
        fix = fewer
    else:
        severity = Severity.WARNING
        over = (f"{count - ROLE_MANAGED_POLICIES_DEFAULT} over IAM's default quota of {ROLE_MANAGED_POLICIES_DEFAULT} "
                "per role: the deploy fails unless this account's quota was raised")
        fix = (f"raise the 'Managed policies per role' quota to {ROLE_MANAGED_POLICIES_MAX} (Service Quotas, IAM) for "
               f"this account, or {fewer}")
    return stack.finding(
        "certfleet-limit-role-managed-policies", severity,
        f"{where}: {count} managed policies are attached to it, {over}{why}", fix,
        logical_id=role_id, location="Properties/ManagedPolicyArns", construct_path=stack.path_of(role_id),
    )


def _managed_policy_limits(stack: _Stack) -> list[Finding]:
    found: list[Finding] = []
    for policy_id, raw in stack.resources.items():
        policy = as_dict(raw)
        if policy.get("Type") != "AWS::IAM::ManagedPolicy":
            continue
        document = as_dict(policy.get("Properties")).get("PolicyDocument")
        size = policy_chars(document)
        if size > MANAGED_POLICY_CHARS:
            deployed = deployed_chars(document, stack.st.region)
            found.append(stack.finding(
                "certfleet-limit-managed-policy-size",
                Severity.ERROR if deployed > MANAGED_POLICY_CHARS else Severity.WARNING,
                f"managed policy {stack.path_of(policy_id) or policy_id} in {stack.label}: its document is {size:,} "
                f"characters, {size - MANAGED_POLICY_CHARS:,} over IAM's limit of {MANAGED_POLICY_CHARS:,} characters "
                f"per managed policy ({_UNRESOLVED}; with its partition, region and account resolved: "
                f"{deployed:,})",
                f"split its statements over two or more managed policies (each up to {MANAGED_POLICY_CHARS:,} "
                "characters), or merge statements that share actions",
                logical_id=policy_id, location="Properties/PolicyDocument", construct_path=stack.path_of(policy_id),
            ))
    return found


__all__: Sequence[str] = ("LIMIT_RULE_IDS", "check_limits", "policy_chars")
