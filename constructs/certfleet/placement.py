"""Placement checks: does every certificate consumer in a set of CloudFormation templates get a certificate it can use?

Pure template-level code (standard library, ``cryptography``, ``certfleet.material`` and ``certfleet.rules``; never
``aws_cdk`` nor ``boto3``), so it runs inside ``app.synth()`` through ``certfleet.placement_plugin`` and over any
``cdk.out`` through ``load_cloud_assembly``.

For each consumer (CloudFront, API Gateway v1/v2 domains, ELBv2 listeners, Classic LBs, Elastic Beanstalk, Amplify,
Transfer Family, Cognito, AppSync GraphQL and Event API domains) the certificate value is resolved: a literal ACM
ARN (judged by its region only), or a certfleet certificate (``Custom::CertfleetCertificate``) reached by
``Ref``/``Fn::GetAtt`` in the same template,
``Fn::GetStackOutput`` (weak), ``Fn::ImportValue`` or a cross-region export reader (strong). A certfleet certificate
is also judged by its bundle: key algorithm and names. Anything else (parameters, dynamic references) is skipped.
``certfleet.rules`` is the only source of which region and which keys each service takes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography import x509

from certfleet.material.checks import key_algorithm
from certfleet.material.names import covers, dns_names, ip_addresses
from certfleet.rules import EDGE_REGION, RULES, Placement, Service, ServiceRule

CERTFLEET_TYPE = "Custom::CertfleetCertificate"
FLEET_TAG = "certfleet:fleet"
ID_TAG = "certfleet:id"
WEAK_CONTEXT = '"@aws-cdk/core:defaultCrossStackReferences": "weak"'

#: Every finding code, as the validation plugin reports them.
RULE_IDS: tuple[str, ...] = (
    "wrong-region", "key-refused", "key-unverified", "domain-not-covered", "tls-below-floor", "strong-reference",
)

SeverityName = Literal["error", "warning"]

_ACM_ARN = re.compile(r"^arn:[a-z0-9-]*:acm:([a-z0-9-]*):[0-9]*:certificate/\S+$")
_JOINED_ACM_ARN = re.compile(r":acm:([a-z]{2}(?:-gov|-iso[a-z]*)?-[a-z]+-\d):")
_BEANSTALK_ELBV2 = re.compile(r"^aws:elbv2:listener:(\d+|default)$")
_BEANSTALK_ELB = re.compile(r"^aws:elb:(listener:\d+|loadbalancer)$")
_MAX_DEPTH = 8

# CloudFront security policies, oldest first (MinimumProtocolVersion).
_CLOUDFRONT_POLICIES = (
    "SSLv3", "TLSv1", "TLSv1_2016", "TLSv1.1_2016", "TLSv1.2_2018", "TLSv1.2_2019",
    "TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025",
)
_CLOUDFRONT_FLOOR = "TLSv1.2_2021"
_OLD_API_POLICY = re.compile(r"^TLS_1_[01]$")
_ELB_RECOMMENDED = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class StackTemplate:
    """One synthesized stack: its name, where it deploys, and its template."""

    stack_name: str
    construct_path: str
    account: str | None
    region: str | None
    template: dict[str, Any]
    template_path: str
    #: logical id -> construct path, from the assembly's ``aws:cdk:logicalId`` metadata (when known)
    construct_paths: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlacementFinding:
    """One placement problem of one consumer. ``code`` is stable: tests and scripts may match on it."""

    code: str
    severity: SeverityName
    message: str
    fix: str
    stack: str
    logical_id: str
    construct_path: str
    template_path: str
    location: str
    service: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.severity} [{self.code}] {self.message}\n    fix: {self.fix}"


@dataclass(frozen=True)
class CertificateSource:
    """What a consumer's certificate value resolves to."""

    region: str | None
    label: str
    arn: str | None = None
    certificate_pem: str | None = None
    key_algorithm: str | None = None
    fleet: str | None = None
    stack: str | None = None
    strong: str = ""  # how a strong reference was read, empty when weak or local
    logical_id: str | None = None

    @property
    def is_certfleet(self) -> bool:
        return self.certificate_pem is not None or self.fleet is not None


@dataclass
class _Use:
    """One certificate value of one consumer, with what the consumer serves."""

    service: Service
    value: Any
    location: str
    what: str  # e.g. "edge-optimized domain name api.example.com"
    domains: tuple[str, ...] = ()
    domains_from: str = ""


@dataclass
class _Context:
    stack: StackTemplate
    logical_id: str
    resource: dict[str, Any]
    construct_path: str
    findings: list[PlacementFinding] = field(default_factory=list)

    @property
    def resource_type(self) -> str:
        return str(self.resource.get("Type", ""))

    def consumer(self) -> str:
        where = self.construct_path or self.logical_id
        region = f", {self.stack.region}" if self.stack.region else ""
        return f"{where} in stack {self.stack.stack_name}{region}"

    def subject(self, rule: ServiceRule, use: _Use) -> str:
        what = f" {use.what}" if use.what else ""
        return f"{rule.title}{what} ({self.consumer()})"

    def add(self, code: str, severity: SeverityName, message: str, fix: str, *, location: str,
            service: Service | None = None) -> None:
        self.findings.append(PlacementFinding(
            code=code, severity=severity, message=message, fix=fix, stack=self.stack.stack_name,
            logical_id=self.logical_id, construct_path=self.construct_path,
            template_path=self.stack.template_path, location=location,
            service=service.value if service is not None else "",
        ))


@dataclass(frozen=True)
class Consumer:
    """One service that uses a certificate, and the certificate it resolves to (when the templates tell)."""

    stack: str
    region: str | None
    logical_id: str
    construct_path: str
    service: Service
    what: str
    source: CertificateSource | None


def consumers(stacks: Sequence[StackTemplate]) -> list[Consumer]:
    """Every certificate consumer in ``stacks`` with its resolved certificate: the map behind the checks."""
    checker = _Checker(stacks)
    found: list[Consumer] = []
    for ctx in checker.contexts():
        for use in _WALKERS[ctx.resource_type](checker, ctx):
            found.append(Consumer(ctx.stack.stack_name, ctx.stack.region, ctx.logical_id, ctx.construct_path,
                                  use.service, use.what, checker.resolve(ctx.stack, use.value)))
    return found


def check_templates(stacks: Sequence[StackTemplate]) -> list[PlacementFinding]:
    """Every placement finding of every certificate consumer in ``stacks`` (errors and warnings)."""
    return _Checker(stacks).run()


def load_cloud_assembly(cdk_out: str | Path) -> list[StackTemplate]:
    """Every stack of a cloud assembly (``cdk.out``), nested assemblies of Stages included."""
    return list(_load_assembly(Path(cdk_out), recursive=True, seen=set()))


def read_assembly_stacks(directory: str | Path) -> list[StackTemplate]:
    """The stacks of one assembly directory only (no nested Stage assemblies)."""
    return list(_load_assembly(Path(directory), recursive=False, seen=set()))


def _load_assembly(directory: Path, *, recursive: bool, seen: set[Path]) -> Iterator[StackTemplate]:
    directory = directory.resolve()
    if directory in seen:
        return
    seen.add(directory)
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    for artifact_id, artifact in (manifest.get("artifacts") or {}).items():
        kind = artifact.get("type")
        props = artifact.get("properties") or {}
        if kind == "aws:cloudformation:stack":
            template_path = directory / props["templateFile"]
            account, region = _parse_environment(str(artifact.get("environment", "")))
            metadata_path = artifact.get("displayName") or artifact_id
            yield StackTemplate(
                stack_name=str(props.get("stackName") or artifact_id),
                construct_path=str(metadata_path),
                account=account,
                region=region,
                template=json.loads(template_path.read_text(encoding="utf-8")),
                template_path=str(template_path),
                construct_paths=_logical_paths(directory, artifact),
            )
        elif kind == "cdk:cloud-assembly" and recursive and props.get("directoryName"):
            yield from _load_assembly(directory / props["directoryName"], recursive=True, seen=seen)


def _logical_paths(directory: Path, artifact: Mapping[str, Any]) -> dict[str, str]:
    """logical id -> construct path, from the artifact's metadata and its additional metadata file."""
    metadata = dict(_dict(artifact.get("metadata")))
    extra = artifact.get("additionalMetadataFile")
    if isinstance(extra, str) and (directory / extra).is_file():
        metadata.update(_dict(json.loads((directory / extra).read_text(encoding="utf-8"))))
    paths: dict[str, str] = {}
    for path, entries in metadata.items():
        for entry in _dicts(entries):
            if entry.get("type") == "aws:cdk:logicalId" and isinstance(entry.get("data"), str):
                paths[entry["data"]] = path.lstrip("/")
    return paths


def _parse_environment(env: str) -> tuple[str | None, str | None]:
    """``aws://ACCOUNT/REGION`` -> (account, region); ``unknown-account``/``unknown-region`` -> None."""
    if not env.startswith("aws://"):
        return None, None
    account, _, region = env[len("aws://"):].partition("/")
    return (
        None if not account or account.startswith("unknown") else account,
        None if not region or region.startswith("unknown") else region,
    )


def _is_str(value: Any) -> bool:
    """A literal string that is not an unresolved CDK token."""
    return isinstance(value, str) and "${Token[" not in value and not value.startswith("{{resolve:")


class _Checker:
    def __init__(self, stacks: Sequence[StackTemplate]) -> None:
        self.stacks = list(stacks)
        self.by_name: dict[str, list[StackTemplate]] = {}
        self.exports: dict[str, list[tuple[StackTemplate, Any]]] = {}
        self.region_exports: dict[str, list[tuple[StackTemplate, Any]]] = {}
        self.fleet_regions: dict[str, set[str]] = {}
        self._parsed: dict[str, x509.Certificate | None] = {}
        for st in self.stacks:
            self.by_name.setdefault(st.stack_name, []).append(st)
            for output in _dict(st.template.get("Outputs")).values():
                name = _dict(_dict(output).get("Export")).get("Name")
                if _is_str(name):
                    self.exports.setdefault(str(name), []).append((st, _dict(output).get("Value")))
            for raw in _dict(st.template.get("Resources")).values():
                resource = _dict(raw)
                if resource.get("Type") == "Custom::CrossRegionExportWriter":
                    writer = _dict(_dict(resource.get("Properties")).get("WriterProps"))
                    for name, value in _dict(writer.get("exports")).items():
                        self.region_exports.setdefault(name, []).append((st, value))
                elif resource.get("Type") == CERTFLEET_TYPE and st.region:
                    fleet = _tag(_dict(resource.get("Properties")), FLEET_TAG)
                    if fleet:
                        self.fleet_regions.setdefault(fleet, set()).add(st.region)

    def contexts(self) -> Iterator[_Context]:
        """Every resource of a consumer type, in template order."""
        for st in self.stacks:
            for logical_id, raw in _dict(st.template.get("Resources")).items():
                resource = _dict(raw)
                if str(resource.get("Type", "")) not in _WALKERS:
                    continue
                path = _dict(resource.get("Metadata")).get("aws:cdk:path")
                path = path if _is_str(path) else st.construct_paths.get(logical_id, "")
                yield _Context(st, logical_id, resource, str(path))

    def run(self) -> list[PlacementFinding]:
        findings: list[PlacementFinding] = []
        for ctx in self.contexts():
            for use in _WALKERS[ctx.resource_type](self, ctx):
                self._judge(ctx, use)
            findings.extend(ctx.findings)
        unique: dict[tuple[str, ...], PlacementFinding] = {}
        for f in findings:
            unique.setdefault((f.template_path, f.logical_id, f.location, f.code, f.message), f)
        return sorted(unique.values(), key=lambda f: (f.severity != "error", f.stack, f.logical_id, f.location, f.code))

    # ---- resolution -------------------------------------------------------------------------------------------

    def resolve(self, st: StackTemplate, value: Any, depth: int = 0, strong: str = "") -> CertificateSource | None:
        """What ``value`` (in ``st``'s template) is, or None when it cannot be known from the templates."""
        if depth > _MAX_DEPTH:
            return None
        if isinstance(value, str):
            if not _is_str(value):
                return None
            match = _ACM_ARN.match(value.strip())
            if not match:
                return None
            return CertificateSource(region=match.group(1) or None, label=f"certificate {value}", arn=value,
                                     strong=strong)
        if not isinstance(value, dict) or len(value) != 1:
            return None
        (fn, arg), = value.items()
        resources = _dict(st.template.get("Resources"))
        if fn == "Ref" and isinstance(arg, str):
            return self._from_resource(st, arg, resources.get(arg), strong)
        if fn == "Fn::GetAtt":
            parts = arg.split(".", 1) if isinstance(arg, str) else arg
            if not isinstance(parts, list) or len(parts) != 2 or not isinstance(parts[0], str):
                return None
            target = _dict(resources.get(parts[0]))
            if target.get("Type") == "Custom::CrossRegionExportReader" and isinstance(parts[1], str):
                for producer, exported in self.region_exports.get(parts[1], []):
                    return self.resolve(producer, exported, depth + 1,
                                        strong or f"a cross-region strong reference ({parts[1]})")
                return None
            return self._from_resource(st, parts[0], target, strong)
        if fn == "Fn::GetStackOutput" and isinstance(arg, dict):
            name, output, region = arg.get("StackName"), arg.get("OutputName"), arg.get("Region")
            if not (_is_str(name) and _is_str(output)):
                return None
            for producer in self.by_name.get(str(name), []):
                if _is_str(region) and producer.region and producer.region != region:
                    continue
                out = _dict(_dict(producer.template.get("Outputs")).get(str(output)))
                if "Value" in out:
                    return self.resolve(producer, out["Value"], depth + 1, strong)
            return None
        if fn == "Fn::ImportValue" and _is_str(arg):
            candidates = self.exports.get(str(arg), [])
            same = [c for c in candidates if c[0].region == st.region] or candidates
            for producer, exported in same:
                return self.resolve(producer, exported, depth + 1, strong or f"Fn::ImportValue {arg!r}")
            return None
        if fn == "Fn::Join":
            return self._from_join(st, arg, strong)
        return None

    def _from_resource(self, st: StackTemplate, logical_id: str, raw: Any, strong: str) -> CertificateSource | None:
        resource = _dict(raw)
        if resource.get("Type") == "AWS::CertificateManager::Certificate":
            path = _dict(resource.get("Metadata")).get("aws:cdk:path")
            shown = str(path) if _is_str(path) else f"{st.stack_name}/{logical_id}"
            return CertificateSource(region=st.region, label=f"ACM certificate {shown}", stack=st.stack_name,
                                     strong=strong)
        if resource.get("Type") != CERTFLEET_TYPE:
            return None
        props = _dict(resource.get("Properties"))
        pem = props.get("Certificate")
        algorithm = props.get("KeyAlgorithm")
        cert = self._parse(pem) if _is_str(pem) else None
        if cert is not None:
            algorithm = key_algorithm(cert.public_key())
        ident = _tag(props, ID_TAG) or f"{st.stack_name}/{logical_id}"
        fleet = _tag(props, FLEET_TAG)
        label = f"certfleet certificate {ident}" + (f" (fleet {fleet})" if fleet else "")
        return CertificateSource(
            region=st.region, label=label, certificate_pem=str(pem) if cert is not None else None,
            key_algorithm=str(algorithm) if _is_str(algorithm) else None, fleet=fleet, stack=st.stack_name,
            strong=strong, logical_id=logical_id,
        )

    def _from_join(self, st: StackTemplate, arg: Any, strong: str) -> CertificateSource | None:
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and isinstance(arg[1], list)):
            return None
        pieces = []
        for part in arg[1]:
            if isinstance(part, str):
                pieces.append(part)
            elif part == {"Ref": "AWS::Region"} and st.region:
                pieces.append(st.region)
            else:
                pieces.append("\x00")
        joined = arg[0].join(pieces)
        match = _JOINED_ACM_ARN.search(joined)
        if not match or ":certificate/" not in joined:
            return None
        shown = joined.replace("\x00", "…")
        return CertificateSource(region=match.group(1), label=f"certificate {shown}", arn=shown, strong=strong)

    def _parse(self, pem: Any) -> x509.Certificate | None:
        text = str(pem)
        if text not in self._parsed:
            try:
                self._parsed[text] = x509.load_pem_x509_certificate(text.encode())
            except ValueError:
                self._parsed[text] = None
        return self._parsed[text]

    # ---- judging ----------------------------------------------------------------------------------------------

    def _judge(self, ctx: _Context, use: _Use) -> None:
        source = self.resolve(ctx.stack, use.value)
        if source is None:
            return
        rule = RULES[use.service]
        self._judge_region(ctx, use, rule, source)
        if source.strong and source.is_certfleet:
            ctx.add(
                "strong-reference", "warning",
                f"{ctx.subject(rule, use)} reads {source.label} through {source.strong}: a key-type upgrade "
                "replaces the certificate and its ARN, and CloudFormation refuses to change a value another stack "
                "imports (\"Exports cannot be updated\"), so that deploy would fail.",
                "hand the certificate over with fleet.certificate_for(scope) (a weak Fn::GetStackOutput reference), "
                f"or set {WEAK_CONTEXT} in cdk.json's context.",
                location=use.location, service=use.service,
            )
        if source.key_algorithm:
            self._judge_key(ctx, use, rule, source)
        if source.certificate_pem:
            self._judge_names(ctx, use, rule, source)

    def _judge_region(self, ctx: _Context, use: _Use, rule: ServiceRule, source: CertificateSource) -> None:
        consumer_region = ctx.stack.region
        if rule.placement is Placement.EDGE:
            needed: str | None = EDGE_REGION
        elif consumer_region:
            needed = rule.region_for(consumer_region)
        else:
            needed = None
        if not needed or not source.region or source.region == needed:
            return
        if rule.placement is Placement.EDGE:
            message = (
                f"{ctx.subject(rule, use)} is given {source.label}, which is in "
                f"{source.region}: the certificate must be in {EDGE_REGION} Region (this service takes its "
                f"certificate from {EDGE_REGION}, whatever region the stack is in)."
            )
            fix = self._edge_fix(ctx, use, source)
        else:
            message = (
                f"{ctx.subject(rule, use)} is given {source.label}, which is in "
                f"{source.region}: ACM certificates are regional and this service uses only a certificate in its "
                f"own region, {needed}."
            )
            fix = self._local_fix(needed, source)
        if rule.deploy_error:
            shown = source.arn or f"arn:aws:acm:{source.region}:…:certificate/…"
            message += f' At deploy time it fails with "{rule.deploy_error.format(region=needed, arn=shown)}"'
        if not rule.region_verified:
            message += " (AWS does not document this region requirement: a warning, not an error)"
        ctx.add("wrong-region", "error" if rule.region_verified else "warning", message, fix,
                location=use.location, service=use.service)

    def _edge_fix(self, ctx: _Context, use: _Use, source: CertificateSource) -> str:
        region = ctx.stack.region
        edge = (
            f"use the {EDGE_REGION} certificate: fleet.certificate_for(stack, Service.{use.service.name}) or "
            f"fleet.edge_certificate_for(stack) (a CertificateFleet with edge=True), or a certificate imported into "
            f"{EDGE_REGION} (aws acm import-certificate --region {EDGE_REGION})"
        )
        if use.service is Service.API_GATEWAY_EDGE:
            here = region or "the API's region"
            already = " (this certificate is already there)" if region and source.region == region else ""
            return (
                f"Option 1: make the API regional (EndpointType REGIONAL, RegionalCertificateArn) with a certificate "
                f"in {here}{already}: apigateway.DomainName(..., endpoint_type=EndpointType.REGIONAL, "
                f"certificate=fleet.certificate_for(stack)) — Option 2: keep it edge-optimized and {edge}."
            )
        return f"{edge[0].upper()}{edge[1:]}."

    def _local_fix(self, needed: str, source: CertificateSource) -> str:
        fleet = source.fleet
        if fleet and needed in self.fleet_regions.get(fleet, set()):
            return (
                f"fleet {fleet} already has a certificate in {needed}: use fleet.certificate_for(stack) instead of "
                f"the {source.region} certificate (fleet.edge_certificate or its ARN)."
            )
        named = f" '{fleet}'" if fleet else ""
        text = (
            f"import the certificate into {needed}: add '{needed}' to regions=[...] of the CertificateFleet{named}, "
            "and use fleet.certificate_for(stack)"
        )
        if not source.is_certfleet:
            text += f" (or aws acm import-certificate --region {needed} and use that ARN)"
        return text + "."

    def _judge_key(self, ctx: _Context, use: _Use, rule: ServiceRule, source: CertificateSource) -> None:
        algorithm = str(source.key_algorithm)
        verdict = rule.judge_key(algorithm)
        if verdict == "accepted":
            return
        accepted = ", ".join(sorted(rule.accepted)) or "none documented"
        if verdict == "refused":
            ctx.add(
                "key-refused", "error",
                f"{ctx.subject(rule, use)} is given {source.label}, whose key is {algorithm}: "
                f"{rule.title} does not accept {algorithm} keys (it accepts {accepted}).",
                f"use a certificate with an accepted key for this service ({accepted}): e.g. certfleet keygen --type "
                f"{'ec-p256' if algorithm.startswith('EC') else 'rsa-2048'}, certfleet csr, have the CA issue it, and "
                "give this service its own CertificateFleet/ImportedCertificate.",
                location=use.location, service=use.service,
            )
        else:
            ctx.add(
                "key-unverified", "warning",
                f"{ctx.subject(rule, use)} is given {source.label}, whose key is {algorithm}: "
                f"AWS documents {accepted} for {rule.title}; {algorithm} is unverified.",
                f"test it before relying on it, or use a certificate with one of {accepted}.",
                location=use.location, service=use.service,
            )

    def _judge_names(self, ctx: _Context, use: _Use, rule: ServiceRule, source: CertificateSource) -> None:
        cert = self._parse(source.certificate_pem)
        if cert is None:
            return
        names = dns_names(cert) + ip_addresses(cert)
        for domain in use.domains:
            if covers(cert, domain):
                continue
            ctx.add(
                "domain-not-covered", "error",
                f"{ctx.subject(rule, use)} serves {domain}, which {source.label} does not cover "
                f"(it covers: {', '.join(names) or 'no name'}).",
                f"add {domain} to the certificate's names (certfleet csr --san {domain} ..., then have the CA "
                f"reissue it), or remove {domain} from {use.domains_from or 'the consumer'}.",
                location=use.location, service=use.service,
            )


# ---- consumers ----------------------------------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [_dict(item) for item in _list(value)]


def _tag(props: Mapping[str, Any], key: str) -> str | None:
    for tag in _dicts(props.get("Tags")):
        if tag.get("Key") == key and _is_str(tag.get("Value")):
            return str(tag["Value"])
    return None


def _names(*values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values if _is_str(v) and v)


def _cloudfront(_: _Checker, ctx: _Context) -> Iterator[_Use]:
    config = _dict(_dict(ctx.resource.get("Properties")).get("DistributionConfig"))
    viewer = _dict(config.get("ViewerCertificate"))
    if "AcmCertificateArn" not in viewer:
        return
    base = "Properties/DistributionConfig"
    yield _Use(Service.CLOUDFRONT, viewer["AcmCertificateArn"], f"{base}/ViewerCertificate/AcmCertificateArn",
               "", _names(*_list(config.get("Aliases"))), "the distribution's domain names (Aliases)")
    policy = viewer.get("MinimumProtocolVersion")
    if policy is None or (_is_str(policy) and policy in _CLOUDFRONT_POLICIES
                          and _CLOUDFRONT_POLICIES.index(policy) < _CLOUDFRONT_POLICIES.index(_CLOUDFRONT_FLOOR)):
        shown = policy if policy is not None else "not set (CloudFront then allows TLSv1)"
        ctx.add(
            "tls-below-floor", "warning",
            f"CloudFront distribution ({ctx.consumer()}): MinimumProtocolVersion is {shown}, below "
            f"{_CLOUDFRONT_FLOOR}.",
            f"set minimum_protocol_version=SecurityPolicyProtocol.TLS_V1_2_2021 (MinimumProtocolVersion "
            f"{_CLOUDFRONT_FLOOR}) or newer.",
            location=f"{base}/ViewerCertificate/MinimumProtocolVersion", service=Service.CLOUDFRONT,
        )


def _api_policy_warning(ctx: _Context, policy: Any, location: str, service: Service) -> None:
    if _is_str(policy) and _OLD_API_POLICY.match(str(policy)):
        ctx.add(
            "tls-below-floor", "warning",
            f"{RULES[service].title} ({ctx.consumer()}): SecurityPolicy {policy} allows TLS below 1.2.",
            "set security_policy=SecurityPolicy.TLS_1_2 (SecurityPolicy TLS_1_2) or an enhanced TLS 1.3 policy.",
            location=location, service=service,
        )


def _apigateway(_: _Checker, ctx: _Context) -> Iterator[_Use]:
    props = _dict(ctx.resource.get("Properties"))
    domains = _names(props.get("DomainName"))
    label = domains[0] if domains else ""
    if "CertificateArn" in props:
        yield _Use(Service.API_GATEWAY_EDGE, props["CertificateArn"], "Properties/CertificateArn",
                   label, domains, "DomainName")
    if "RegionalCertificateArn" in props:
        yield _Use(Service.API_GATEWAY_REGIONAL, props["RegionalCertificateArn"], "Properties/RegionalCertificateArn",
                   label, domains, "DomainName")
    service = Service.API_GATEWAY_EDGE if "CertificateArn" in props else Service.API_GATEWAY_REGIONAL
    _api_policy_warning(ctx, props.get("SecurityPolicy"), "Properties/SecurityPolicy", service)


def _apigatewayv2(_: _Checker, ctx: _Context) -> Iterator[_Use]:
    props = _dict(ctx.resource.get("Properties"))
    domains = _names(props.get("DomainName"))
    label = domains[0] if domains else ""
    for index, config in enumerate(_dicts(props.get("DomainNameConfigurations"))):
        location = f"Properties/DomainNameConfigurations/{index}"
        if "CertificateArn" in config:
            yield _Use(Service.API_GATEWAY_V2, config["CertificateArn"], f"{location}/CertificateArn", label,
                       domains, "DomainName")
        _api_policy_warning(ctx, config.get("SecurityPolicy"), f"{location}/SecurityPolicy", Service.API_GATEWAY_V2)


def _elb_policy_warning(ctx: _Context, props: Mapping[str, Any], service: Service) -> None:
    policy = props.get("SslPolicy")
    if policy is not None and (not _is_str(policy) or "TLS13" in str(policy)):
        return
    shown = f"SslPolicy {policy}" if policy is not None else "no SslPolicy (the default ELBSecurityPolicy-2016-08)"
    ctx.add(
        "tls-below-floor", "warning",
        f"{RULES[service].title} ({ctx.consumer()}) has {shown}, which offers no TLS 1.3.",
        f"set ssl_policy=SslPolicy.RECOMMENDED_TLS (SslPolicy {_ELB_RECOMMENDED} or newer, e.g. "
        "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09).",
        location="Properties/SslPolicy", service=service,
    )


def _listener_service(protocol: Any) -> Service | None:
    if protocol == "HTTPS":
        return Service.ALB
    if protocol == "TLS":
        return Service.NLB
    return None


def _elbv2_listener(_: _Checker, ctx: _Context) -> Iterator[_Use]:
    props = _dict(ctx.resource.get("Properties"))
    service = _listener_service(props.get("Protocol"))
    if service is None:
        return
    for index, cert in enumerate(_dicts(props.get("Certificates"))):
        if "CertificateArn" in cert:
            yield _Use(service, cert["CertificateArn"], f"Properties/Certificates/{index}/CertificateArn",
                       "HTTPS listener" if service is Service.ALB else "")
    _elb_policy_warning(ctx, props, service)


def _elbv2_listener_certificate(_: _Checker, ctx: _Context) -> Iterator[_Use]:
    props = _dict(ctx.resource.get("Properties"))
    listener_arn = _dict(props.get("ListenerArn"))
    target = listener_arn.get("Ref")
    listener = _dict(_dict(ctx.stack.template.get("Resources")).get(target)) if isinstance(target, str) else {}
    service = _listener_service(_dict(listener.get("Properties")).get("Protocol")) or Service.ALB
    for index, cert in enumerate(_dicts(props.get("Certificates"))):
        if "CertificateArn" in cert:
            yield _Use(service, cert["CertificateArn"], f"Properties/Certificates/{index}/CertificateArn",
                       "listener, additional certificate")


def _classic_lb(_: _Checker, ctx: _Context) -> Iterator[_Use]:
    props = _dict(ctx.resource.get("Properties"))
    for index, listener in enumerate(_dicts(props.get("Listeners"))):
        if "SSLCertificateId" in listener:
            yield _Use(Service.CLB, listener["SSLCertificateId"], f"Properties/Listeners/{index}/SSLCertificateId",
                       f"listener on port {listener.get('LoadBalancerPort', '?')}")


def _beanstalk(_: _Checker, ctx: _Context) -> Iterator[_Use]:
    props = _dict(ctx.resource.get("Properties"))
    settings = [_dict(s) for s in _list(props.get("OptionSettings"))]
    network = any(
        s.get("Namespace") == "aws:elasticbeanstalk:environment" and s.get("OptionName") == "LoadBalancerType"
        and s.get("Value") == "network" for s in settings
    )
    for index, setting in enumerate(settings):
        namespace, option = str(setting.get("Namespace", "")), setting.get("OptionName")
        if "Value" not in setting:
            continue
        location = f"Properties/OptionSettings/{index}/Value"
        if _BEANSTALK_ELBV2.match(namespace) and option == "SSLCertificateArns":
            service = Service.NLB if network else Service.ELASTIC_BEANSTALK
            yield _Use(service, setting["Value"], location, f"option {namespace} SSLCertificateArns")
        elif _BEANSTALK_ELB.match(namespace) and option == "SSLCertificateId":
            yield _Use(Service.CLB, setting["Value"], location, f"option {namespace} SSLCertificateId")


def _amplify(_: _Checker, ctx: _Context) -> Iterator[_Use]:
    props = _dict(ctx.resource.get("Properties"))
    settings = _dict(props.get("CertificateSettings"))
    if "CustomCertificateArn" not in settings:
        return
    domain = props.get("DomainName")
    domains: list[str] = []
    if _is_str(domain):
        for sub in _list(props.get("SubDomainSettings")):
            prefix = _dict(sub).get("Prefix")
            if prefix == "":
                domains.append(str(domain))
            elif _is_str(prefix):
                domains.append(f"{prefix}.{domain}")
    yield _Use(Service.AMPLIFY, settings["CustomCertificateArn"], "Properties/CertificateSettings/CustomCertificateArn",
               str(domain) if _is_str(domain) else "", tuple(domains),
               "DomainName/SubDomainSettings")


def _transfer(_: _Checker, ctx: _Context) -> Iterator[_Use]:
    props = _dict(ctx.resource.get("Properties"))
    if "Certificate" in props:
        yield _Use(Service.TRANSFER_FAMILY, props["Certificate"], "Properties/Certificate", "")


def _cognito(_: _Checker, ctx: _Context) -> Iterator[_Use]:
    props = _dict(ctx.resource.get("Properties"))
    config = _dict(props.get("CustomDomainConfig"))
    if "CertificateArn" in config:
        domains = _names(props.get("Domain"))
        yield _Use(Service.COGNITO, config["CertificateArn"], "Properties/CustomDomainConfig/CertificateArn",
                   domains[0] if domains else "", domains, "Domain")


_APPSYNC_API_KINDS = {"AWS::AppSync::GraphQLApi": "GraphQL API", "AWS::AppSync::Api": "Event API"}


def _appsync(_: _Checker, ctx: _Context) -> Iterator[_Use]:
    """An AppSync custom domain (GraphQL and Event APIs both synthesize one), named by the API it is associated with."""
    props = _dict(ctx.resource.get("Properties"))
    if "CertificateArn" not in props:
        return
    domains = _names(props.get("DomainName"))
    what = domains[0] if domains else ""
    api = _appsync_api(ctx, domains)
    if api:
        what = f"{what} for {api}" if what else f"for {api}"
    yield _Use(Service.APPSYNC, props["CertificateArn"], "Properties/CertificateArn", what, domains, "DomainName")


def _appsync_api(ctx: _Context, domains: tuple[str, ...]) -> str:
    """``GraphQL API 'name'`` / ``Event API 'name'`` for the API a DomainNameApiAssociation links to this domain."""
    resources = _dict(ctx.stack.template.get("Resources"))
    mine = ({"Ref": ctx.logical_id}, {"Fn::GetAtt": [ctx.logical_id, "DomainName"]})
    for raw in resources.values():
        association = _dict(raw)
        if association.get("Type") != "AWS::AppSync::DomainNameApiAssociation":
            continue
        props = _dict(association.get("Properties"))
        name = props.get("DomainName")
        if not ((_is_str(name) and name in domains) or name in mine):
            continue
        target = _dict(props.get("ApiId")).get("Fn::GetAtt")
        api_id = target[0] if isinstance(target, list) and target else None
        api = _dict(resources.get(api_id)) if isinstance(api_id, str) else {}
        kind = _APPSYNC_API_KINDS.get(str(api.get("Type", "")))
        if kind:
            api_name = _dict(api.get("Properties")).get("Name")
            return f"{kind} '{api_name}'" if _is_str(api_name) else kind
    return ""


_WALKERS = {
    "AWS::CloudFront::Distribution": _cloudfront,
    "AWS::ApiGateway::DomainName": _apigateway,
    "AWS::ApiGatewayV2::DomainName": _apigatewayv2,
    "AWS::ElasticLoadBalancingV2::Listener": _elbv2_listener,
    "AWS::ElasticLoadBalancingV2::ListenerCertificate": _elbv2_listener_certificate,
    "AWS::ElasticLoadBalancing::LoadBalancer": _classic_lb,
    "AWS::ElasticBeanstalk::Environment": _beanstalk,
    "AWS::ElasticBeanstalk::ConfigurationTemplate": _beanstalk,
    "AWS::Amplify::Domain": _amplify,
    "AWS::Transfer::Server": _transfer,
    "AWS::Cognito::UserPoolDomain": _cognito,
    "AWS::AppSync::DomainName": _appsync,
}
