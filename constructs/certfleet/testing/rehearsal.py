"""A local deploy rehearsal: play a cloud assembly's certfleet resources against a local AWS stand-in.

Given a synthesized ``cdk.out``, the rehearsal walks its stacks in dependency order (Stages included) and
does what CloudFormation and the CDK Provider framework would do with the resources certfleet owns: the
key's KMS key and secret (with replicas), ``Custom::CertfleetSealedKey`` and ``Custom::CertfleetCertificate``
(onEvent, then isComplete until done), resolving ``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::GetStackOutput``
and friends between them. Deploying a second assembly plays Updates, and Deletes for replaced certificates,
as CloudFormation's cleanup phase does; ``destroy`` plays the Deletes. Everything else in the templates
(load balancers, distributions) is not created: only its place in the graph matters.

    with MotoServer() as moto, StrictAWS(moto.url) as aws:
        rehearsal = Rehearsal(aws.url)
        rehearsal.deploy("cdk.out")
        print(rehearsal.inventory())

Needs boto3; never aws_cdk. The handlers run in this process, as Lambda would run them.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CERTIFICATE = "Custom::CertfleetCertificate"
SEALED_KEY = "Custom::CertfleetSealedKey"
SWEEPER = "Custom::CertfleetSweeper"
_HANDLERS = {CERTIFICATE: "certfleet_import", SEALED_KEY: "certfleet_keywriter", SWEEPER: "certfleet_import"}
_EMULATED = {"AWS::KMS::Key", "AWS::SecretsManager::Secret", *_HANDLERS}
_ACM_KEY_TYPES = ["RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1"]
_ENV_LOCK = threading.Lock()


class RehearsalError(Exception):
    """A resource failed as it would have failed the deploy; the message names stack, resource and cause."""


@dataclass
class StackArtifact:
    """One stack of the cloud assembly."""

    artifact_id: str
    stack_name: str
    account: str
    region: str
    template: dict[str, Any]
    dependencies: list[str]


@dataclass
class Deployed:
    """What the rehearsal remembers of one resource, as CloudFormation does."""

    type: str
    physical_id: str
    properties: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    retain: bool = False
    region: str = ""
    account: str = ""


@dataclass
class Event:
    """One thing the rehearsal did, for the report."""

    stack: str
    logical_id: str
    action: str
    physical_id: str


def load_assembly(cdk_out: str | os.PathLike[str]) -> list[StackArtifact]:
    """Every stack of the assembly (nested Stage assemblies included), dependencies before dependents."""
    stacks: dict[str, StackArtifact] = {}
    _collect(Path(cdk_out), stacks)
    ordered: list[StackArtifact] = []
    seen: set[str] = set()

    def visit(artifact_id: str, path: tuple[str, ...]) -> None:
        if artifact_id in seen or artifact_id not in stacks:
            return
        if artifact_id in path:
            raise RehearsalError(f"dependency cycle between stacks: {' -> '.join((*path, artifact_id))}")
        for dep in stacks[artifact_id].dependencies:
            visit(dep, (*path, artifact_id))
        seen.add(artifact_id)
        ordered.append(stacks[artifact_id])

    for artifact_id in stacks:
        visit(artifact_id, ())
    return ordered


def _collect(folder: Path, into: dict[str, StackArtifact]) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        kind = artifact.get("type")
        if kind == "cdk:cloud-assembly":
            _collect(folder / artifact["properties"]["directoryName"], into)
        elif kind == "aws:cloudformation:stack":
            _, _, account_region = artifact["environment"].partition("aws://")
            account, _, region = account_region.partition("/")
            props = artifact["properties"]
            into[artifact_id] = StackArtifact(
                artifact_id=artifact_id,
                stack_name=props.get("stackName", artifact_id),
                account=account,
                region=region,
                template=json.loads((folder / props["templateFile"]).read_text()),
                dependencies=[d for d in artifact.get("dependencies", []) if not d.endswith(".assets")],
            )


class Rehearsal:
    """Deploys and destroys certfleet resources of cloud assemblies against ``endpoint_url``."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        handler_dir: str | os.PathLike[str] | None = None,
        poll_seconds: float = 0.2,
        complete_timeout: float = 120.0,
        environment: dict[str, str] | None = None,
        after_stack: Callable[[StackArtifact], None] | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.poll_seconds = poll_seconds
        self.complete_timeout = complete_timeout
        self.extra_env = dict(environment or {})
        self.handler_dir = Path(handler_dir) if handler_dir else _default_handler_dir()
        self.after_stack = after_stack
        self.resources: dict[tuple[str, str], Deployed] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.exports: dict[str, Any] = {}
        self.events: list[Event] = []
        self._stacks: dict[str, StackArtifact] = {}
        self.regions: set[str] = set()

    def deploy(self, cdk_out: str | os.PathLike[str]) -> list[Event]:
        """Create or update every stack, dependencies first; each stack then deletes what its update replaced
        or removed (CloudFormation's cleanup phase), before any stack that depends on it starts."""
        start = len(self.events)
        for artifact in load_assembly(cdk_out):
            for stack, logical_id, old in self._deploy_stack(artifact):
                self._delete(stack, logical_id, old)
            if self.after_stack is not None:
                self.after_stack(artifact)
        return self.events[start:]

    def destroy(self) -> list[Event]:
        """Delete every stack's certfleet resources, dependents first (retained ones stay)."""
        start = len(self.events)
        for artifact in reversed(list(self._stacks.values())):
            template_order = list(artifact.template.get("Resources", {}))
            for logical_id in reversed(template_order):
                key = (artifact.stack_name, logical_id)
                if key in self.resources:
                    self._delete(artifact.stack_name, logical_id, self.resources.pop(key))
            self.outputs.pop(artifact.stack_name, None)
        self._stacks.clear()
        return self.events[start:]

    def destroy_stack(self, stack_name: str) -> list[Event]:
        """Delete one stack's certfleet resources, as ``cdk destroy <stack>`` or ``aws cloudformation delete-stack``
        does (a stack no longer in the app, such as an emptied FleetGroup shard)."""
        start = len(self.events)
        artifact = next((a for a in self._stacks.values() if a.stack_name == stack_name), None)
        if artifact is None:
            raise RehearsalError(f"{stack_name} was never deployed by this rehearsal")
        for logical_id in reversed(list(artifact.template.get("Resources", {}))):
            key = (stack_name, logical_id)
            if key in self.resources:
                self._delete(stack_name, logical_id, self.resources.pop(key))
        self.outputs.pop(stack_name, None)
        del self._stacks[artifact.artifact_id]
        return self.events[start:]

    def inventory(self, regions: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        """What ACM holds, per region: every certificate of every key type, with domains, expiry and tags."""
        wanted = regions or sorted(self.regions)
        report: dict[str, list[dict[str, Any]]] = {}
        for region in wanted:
            acm = self._client("acm", region)
            rows = []
            for page in acm.get_paginator("list_certificates").paginate(Includes={"keyTypes": _ACM_KEY_TYPES}):
                for summary in page["CertificateSummaryList"]:
                    arn = summary["CertificateArn"]
                    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
                    tags = {t["Key"]: t["Value"] for t in acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]}
                    rows.append({
                        "arn": arn,
                        "domain": detail.get("DomainName"),
                        "names": detail.get("SubjectAlternativeNames", []),
                        "not_after": detail["NotAfter"].isoformat() if detail.get("NotAfter") else None,
                        "key_algorithm": detail.get("KeyAlgorithm"),
                        "tags": tags,
                    })
            report[region] = rows
        return report

    def certificate_arns(self) -> dict[tuple[str, str], str]:
        """(stack name, logical id) → ARN of every certfleet certificate deployed now."""
        return {k: d.physical_id for k, d in self.resources.items() if d.type == CERTIFICATE}

    # -- one stack -----------------------------------------------------------------------------------------

    def _deploy_stack(self, artifact: StackArtifact) -> list[tuple[str, str, Deployed]]:
        self._stacks[artifact.artifact_id] = artifact
        self.regions.add(artifact.region)
        resources: dict[str, Any] = artifact.template.get("Resources", {})
        cleanup: list[tuple[str, str, Deployed]] = []
        for logical_id in _resource_order(resources):
            resource = resources[logical_id]
            if resource.get("Type") not in _EMULATED:
                continue
            cleanup += self._deploy_resource(artifact, logical_id, resource)
        gone = [k for k in self.resources if k[0] == artifact.stack_name and k[1] not in resources]
        for key in gone:
            cleanup.append((key[0], key[1], self.resources.pop(key)))
        resolver = _Resolver(self, artifact)
        outputs = {}
        for name, output in artifact.template.get("Outputs", {}).items():
            value = resolver.resolve(output.get("Value"))
            outputs[name] = value
            export = output.get("Export", {}).get("Name")
            if export:
                self.exports[resolver.resolve(export)] = value
        self.outputs[artifact.stack_name] = outputs
        return cleanup

    def _deploy_resource(self, artifact: StackArtifact, logical_id: str, resource: dict[str, Any],
                         ) -> list[tuple[str, str, Deployed]]:
        kind = resource["Type"]
        props = _Resolver(self, artifact).resolve(resource.get("Properties", {}))
        key = (artifact.stack_name, logical_id)
        old = self.resources.get(key)
        retain = resource.get("DeletionPolicy") == "Retain"
        if old is not None and old.properties == props:
            return []
        if kind in _HANDLERS:
            deployed = self._custom(artifact, logical_id, kind, props, old)
        elif kind == "AWS::KMS::Key":
            deployed = old or self._kms_key(artifact, props)
        else:
            deployed = self._secret(artifact, props, old)
        deployed.retain = retain
        deployed.region = artifact.region
        deployed.account = artifact.account
        self.resources[key] = deployed
        action = "create" if old is None else "update"
        self.events.append(Event(artifact.stack_name, logical_id, action, deployed.physical_id))
        if old is not None and old.physical_id != deployed.physical_id:
            return [(artifact.stack_name, logical_id, old)]
        return []

    def _custom(self, artifact: StackArtifact, logical_id: str, kind: str, props: dict[str, Any],
                old: Deployed | None) -> Deployed:
        event: dict[str, Any] = {
            "RequestType": "Create" if old is None else "Update",
            "ServiceToken": props.get("ServiceToken", ""),
            "ResponseURL": "",
            "StackId": _stack_id(artifact.region, artifact.account, artifact.stack_name),
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": logical_id,
            "ResourceType": kind,
            "ResourceProperties": props,
        }
        if old is not None:
            event["PhysicalResourceId"] = old.physical_id
            event["OldResourceProperties"] = old.properties
        result = self._invoke(artifact, logical_id, kind, event)
        return Deployed(kind, str(result["PhysicalResourceId"]), props, dict(result.get("Data") or {}))

    def _delete(self, stack: str, logical_id: str, old: Deployed) -> None:
        if old.retain or old.type not in _HANDLERS:
            self.events.append(Event(stack, logical_id, "retain", old.physical_id))
            return
        artifact = next((a for a in self._stacks.values() if a.stack_name == stack), None)
        region_artifact = artifact or StackArtifact(stack, stack, "", old.region, {}, [])
        event = {
            "RequestType": "Delete", "ServiceToken": old.properties.get("ServiceToken", ""), "ResponseURL": "",
            "StackId": _stack_id(old.region, old.account, stack),
            "RequestId": str(uuid.uuid4()), "LogicalResourceId": logical_id, "ResourceType": old.type,
            "ResourceProperties": old.properties, "PhysicalResourceId": old.physical_id,
        }
        result = self._invoke(region_artifact, logical_id, old.type, event)
        retired = (result.get("Data") or {}).get("Retired") == "true"
        self.events.append(Event(stack, logical_id, "retire" if retired else "delete", old.physical_id))

    def _invoke(self, artifact: StackArtifact, logical_id: str, kind: str, event: dict[str, Any]) -> dict[str, Any]:
        module = self._handler_module(_HANDLERS[kind])
        where = f"{artifact.stack_name}/{logical_id} ({kind}, {event['RequestType']})"
        with self._environment(artifact.region):
            try:
                result: dict[str, Any] = module.on_event(event, None)
                is_complete: Callable[..., dict[str, Any]] | None = getattr(module, "is_complete", None)
                deadline = time.monotonic() + self.complete_timeout
                while is_complete is not None:
                    state = is_complete({**event, **result}, None)
                    if state.get("IsComplete"):
                        result = {**result, "Data": {**(result.get("Data") or {}), **(state.get("Data") or {})}}
                        break
                    if time.monotonic() > deadline:
                        raise RehearsalError(f"{where}: not complete after {self.complete_timeout:.0f} s")
                    time.sleep(self.poll_seconds)
            except RehearsalError:
                raise
            except Exception as exc:  # what CloudFormation would show as the resource's failure reason
                raise RehearsalError(f"{where} failed: {exc}") from None
        return result

    def _kms_key(self, artifact: StackArtifact, props: dict[str, Any]) -> Deployed:
        kms = self._client("kms", artifact.region)
        meta = kms.create_key(Description=str(props.get("Description", "certfleet rehearsal")))["KeyMetadata"]
        return Deployed("AWS::KMS::Key", meta["KeyId"], props, {"Arn": meta["Arn"], "KeyId": meta["KeyId"]})

    def _secret(self, artifact: StackArtifact, props: dict[str, Any], old: Deployed | None) -> Deployed:
        sm = self._client("secretsmanager", artifact.region)
        if old is not None:
            return Deployed(old.type, old.physical_id, props, old.data)
        request: dict[str, Any] = {"Name": props.get("Name") or f"rehearsal-{uuid.uuid4().hex[:8]}"}
        if "SecretString" in props:
            request["SecretString"] = props["SecretString"]
        if props.get("KmsKeyId"):
            request["KmsKeyId"] = props["KmsKeyId"]
        if props.get("ReplicaRegions"):
            request["AddReplicaRegions"] = [{"Region": r["Region"]} for r in props["ReplicaRegions"]]
        try:
            arn = sm.create_secret(**request)["ARN"]
        except sm.exceptions.ResourceExistsException:  # a retained secret from an earlier rehearsal
            arn = sm.describe_secret(SecretId=request["Name"])["ARN"]
        return Deployed("AWS::SecretsManager::Secret", arn, props, {"Id": arn})

    # -- plumbing ------------------------------------------------------------------------------------------

    def _handler_module(self, name: str) -> Any:
        folder = str(self.handler_dir)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        return importlib.import_module(name)

    @contextmanager
    def _environment(self, region: str) -> Iterator[None]:
        values = {
            "AWS_REGION": region, "AWS_DEFAULT_REGION": region, "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            **self.extra_env,
        }
        with _ENV_LOCK:
            saved = {k: os.environ.get(k) for k in values}
            os.environ.update(values)
            try:
                yield
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v

    def _client(self, service: str, region: str) -> Any:
        import boto3

        session = boto3.session.Session()
        return session.client(  # type: ignore[call-overload]
            service, region_name=region, endpoint_url=self.endpoint_url,
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        )


def _stack_id(region: str, account: str, stack_name: str) -> str:
    """The StackId CloudFormation sends in every custom-resource event of the stack (the same for its life)."""
    return f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/rehearsal"


def _default_handler_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_lambda", here.parent.parent / "lambda"):
        if (candidate / "certfleet_import.py").is_file():
            return candidate
    raise RehearsalError("certfleet's Lambda handler code is missing: reinstall certfleet")


def _resource_order(resources: dict[str, Any]) -> list[str]:
    """Logical ids with every resource after those it references or depends on."""
    order: list[str] = []
    seen: set[str] = set()

    def refs(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "Ref" and isinstance(v, str):
                    yield v
                elif k == "Fn::GetAtt" and isinstance(v, list) and v:
                    yield str(v[0])
                else:
                    yield from refs(v)
        elif isinstance(value, list):
            for v in value:
                yield from refs(v)

    def visit(logical_id: str, path: frozenset[str]) -> None:
        if logical_id in seen or logical_id not in resources or logical_id in path:
            return
        resource = resources[logical_id]
        depends = resource.get("DependsOn", [])
        for dep in [*([depends] if isinstance(depends, str) else depends), *refs(resource.get("Properties", {}))]:
            visit(dep, path | {logical_id})
        seen.add(logical_id)
        order.append(logical_id)

    for logical_id in resources:
        visit(logical_id, frozenset())
    return order


class _Resolver:
    """CloudFormation's intrinsic functions, as far as certfleet's resources and their outputs use them."""

    def __init__(self, rehearsal: Rehearsal, artifact: StackArtifact) -> None:
        self.rehearsal = rehearsal
        self.artifact = artifact

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (name, arg), = value.items()
            handler = getattr(self, "_" + name.replace("Fn::", "fn_").replace("::", "_"), None)
            if handler is not None:
                return handler(arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def _Ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.artifact.region, "AWS::AccountId": self.artifact.account,
            "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": self.artifact.stack_name,
            "AWS::StackId": _stack_id(self.artifact.region, self.artifact.account, self.artifact.stack_name),
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        deployed = self.rehearsal.resources.get((self.artifact.stack_name, name))
        if deployed is not None:
            return deployed.physical_id
        parameter = self.artifact.template.get("Parameters", {}).get(name)
        if parameter is not None and "Default" in parameter:
            return parameter["Default"]
        return f"rehearsal:{self.artifact.stack_name}:{name}"

    def _fn_GetAtt(self, arg: Any) -> Any:
        logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
        deployed = self.rehearsal.resources.get((self.artifact.stack_name, logical_id))
        if deployed is not None and attribute in deployed.data:
            return deployed.data[attribute]
        return f"rehearsal:{self.artifact.stack_name}:{logical_id}.{attribute}"

    def _fn_Join(self, arg: list[Any]) -> str:
        separator, parts = arg
        return str(separator).join(str(p) for p in self.resolve(parts))

    def _fn_Select(self, arg: list[Any]) -> Any:
        index, items = self.resolve(arg)
        return items[int(index)]

    def _fn_Split(self, arg: list[Any]) -> list[str]:
        separator, text = self.resolve(arg)
        return str(text).split(separator)

    def _fn_Sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
        out = str(text)
        for name, value in variables.items():
            out = out.replace("${" + name + "}", str(value))
        while "${" in out:
            start = out.index("${")
            end = out.index("}", start)
            name = out[start + 2 : end]
            value = self._fn_GetAtt(name) if "." in name else self._Ref(name)
            out = out[:start] + str(value) + out[end + 1 :]
        return out

    def _fn_Base64(self, arg: Any) -> str:
        return base64.b64encode(str(self.resolve(arg)).encode()).decode()

    def _fn_GetStackOutput(self, arg: dict[str, Any]) -> Any:
        spec = self.resolve(arg)
        outputs = self.rehearsal.outputs.get(spec["StackName"])
        if outputs is None or spec["OutputName"] not in outputs:
            raise RehearsalError(
                f"{self.artifact.stack_name}: Fn::GetStackOutput reads {spec['StackName']}.{spec['OutputName']}, "
                "which is not deployed (a missing stack dependency?)",
            )
        return outputs[spec["OutputName"]]

    def _fn_ImportValue(self, arg: Any) -> Any:
        name = self.resolve(arg)
        if name not in self.rehearsal.exports:
            raise RehearsalError(f"{self.artifact.stack_name}: no stack exports {name!r}")
        return self.rehearsal.exports[name]
