"""A local deploy rehearsal: play a cloud assembly's certfleet resources against a local AWS stand-in (moto_server
behind StrictAWS) as CloudFormation and the CDK Provider framework would, each handler as its own IAM role. What it
models and what it does not: the README, "A local deploy rehearsal".

    with MotoServer() as moto, StrictAWS(moto.url) as aws:
        rehearsal = Rehearsal(aws.url)
        rehearsal.deploy("cdk.out")
        print(rehearsal.inventory())

Needs boto3, ``node`` and the npm packages of certfleet's package.json (``npm ci``); never aws_cdk.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import re
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from certfleet._lambda.certfleet_contract import (
    ACM_KEY_TYPES,
    ACME_CERTIFICATE_TYPE,
    ACME_ISSUER_ON_EVENT,
    CERTIFICATE_TYPE,
    HANDLED_BY,
    KEY_VERSION_TYPE,
    SEALED_KEY_TYPE,
    SWEEPER_TYPE,
)
from certfleet.testing.assembly import (
    MAX_PHYSICAL_ID_BYTES,
    MAX_RESPONSE_BYTES,
    Deployed,
    Event,
    RehearsalError,
    RehearsalWarning,
    ResourceKey,
    StackArtifact,
    StackKey,
    _acme_handler_dir,
    _default_handler_dir,
    _dependency_order,
    _nested_template,
    _resource_order,
    _stack_id,
    code_folder,
    load_assembly,
    load_handler,
)
from certfleet.testing.emulated import (
    KMS_KEY,
    SCHEDULE,
    SECRET,
    SECRET_POLICY,
    ScheduleRun,
    kms_key,
    run_schedule,
    schedule,
    secret,
    secret_policy,
)
from certfleet.testing.framework import (
    FrameworkError,
    FrameworkHost,
    Invoke,
    ProviderFunctions,
    cloudformation_outcome,
    find_provider,
    one_line_reason,
)
from certfleet.testing.identities import Identities
from certfleet.testing.resolver import INVENTED, _IamResolver, _Resolver
from certfleet.testing.roles import Entry

__all__ = ["ACME_CERTIFICATE", "CERTIFICATE", "INVENTED", "MAX_PHYSICAL_ID_BYTES", "MAX_RESPONSE_BYTES",
           "SCHEDULE", "SEALED_KEY", "SWEEPER", "Deployed", "Event", "Rehearsal", "RehearsalError",
           "RehearsalWarning", "ResourceKey", "ScheduleRun", "StackArtifact", "StackKey", "load_assembly"]

CERTIFICATE, SEALED_KEY, SWEEPER, KEY_VERSION = CERTIFICATE_TYPE, SEALED_KEY_TYPE, SWEEPER_TYPE, KEY_VERSION_TYPE
ACME_CERTIFICATE = ACME_CERTIFICATE_TYPE
NESTED_STACK = "AWS::CloudFormation::Stack"
_HANDLERS = {kind: handler.split(".")[0]
             for kind, handler in {**HANDLED_BY, ACME_CERTIFICATE: ACME_ISSUER_ON_EVENT}.items()}
_EMULATED = {KMS_KEY, SECRET, SECRET_POLICY, SCHEDULE, NESTED_STACK, *_HANDLERS}
#: The properties of each emulated resource that the rehearsal (or the handler it runs) reads.
_READ = {
    KMS_KEY: ("Description",),
    SECRET: ("Name", "SecretString", "KmsKeyId", "ReplicaRegions", "Tags", "Description"),
    SECRET_POLICY: ("SecretId",),
}

_INVENTED_NAME = re.compile(re.escape(INVENTED) + r"([^\s\"',]+)")
_ENV_LOCK = threading.Lock()


class Rehearsal:
    """Deploys and destroys certfleet resources of cloud assemblies against ``endpoint_url``.

    ``invented``: what to do when a certfleet resource's properties hold a value of a resource the rehearsal does not
    model: ``"fail"`` (default: :class:`RehearsalError`) or ``"warn"`` (:class:`RehearsalWarning`, then play it).
    ``isolate_accounts``: play each stack's account as its own moto account (needs a StrictAWS endpoint; default
    True: ``endpoint_url`` must then be a StrictAWS, which answers ``/_account/<id>`` paths). moto does not read
    another account's secret by ARN: rehearse a fleet that spans accounts (``accounts=``) with False, in one account.
    ``iam``: run each handler as its role, authorized by the StrictAWS endpoint (default True; see the module's doc).
    ``poll_seconds``: how long the Provider waiter's first wait lasts (synthesized: 30 s); its other waits scale alike.
    ``framework_host``: the Node process running the Provider framework (default: one shared per Python process).
    """

    def __init__(
        self,
        endpoint_url: str,
        *,
        handler_dir: str | os.PathLike[str] | None = None,
        poll_seconds: float = 0.2,
        environment: dict[str, str] | None = None,
        after_stack: Callable[[StackArtifact], None] | None = None,
        invented: Literal["fail", "warn"] = "fail",
        isolate_accounts: bool = True,
        iam: bool = True,
        framework_host: FrameworkHost | None = None,
    ) -> None:
        if invented not in ("fail", "warn"):
            raise ValueError(f"invented must be 'fail' or 'warn', got {invented!r}")
        self.endpoint_url = endpoint_url.rstrip("/")
        self.poll_seconds = poll_seconds
        self.framework_host = framework_host
        self.extra_env = dict(environment or {})
        self.handler_dir = Path(handler_dir) if handler_dir else _default_handler_dir()
        self.after_stack = after_stack
        self.invented = invented
        self.isolate_accounts = isolate_accounts
        self.resources: dict[ResourceKey, Deployed] = {}
        self.outputs: dict[StackKey, dict[str, Any]] = {}
        self.exports: dict[tuple[str, str, str], Any] = {}
        self.events: list[Event] = []
        self.warnings: list[str] = []
        self._load = functools.partial(load_handler, folders=(self.handler_dir, _acme_handler_dir()),
                                       noted=self.warnings)  # certfleet's handler sources; a stale asset warns
        self._stacks: dict[StackKey, StackArtifact] = {}
        self._export_owner: dict[tuple[str, str, str], StackKey] = {}
        self.regions: set[str] = set()
        self.identities = Identities(self) if iam else None
        self._providers: dict[ResourceKey, ProviderFunctions] = {}
        self._clients: dict[tuple[str, str, str, str], Any] = {}

    def deploy(self, cdk_out: str | os.PathLike[str]) -> list[Event]:
        """Create or update every stack, dependencies first; each stack then deletes what its update replaced
        or removed (CloudFormation's cleanup phase), before any stack that depends on it starts."""
        start = len(self.events)
        for artifact in load_assembly(cdk_out):
            for key, old in self._deploy_stack(artifact):
                self._delete(key, old)
            if self.after_stack is not None:
                self.after_stack(artifact)
        return self.events[start:]

    def destroy(self) -> list[Event]:
        """Delete every stack's certfleet resources, dependents first (retained ones stay)."""
        start = len(self.events)
        top = {a.artifact_id: a for a in self._stacks.values() if a.parent is None}
        for artifact in reversed(_dependency_order(top)):
            self._destroy(artifact.key)
        return self.events[start:]

    def destroy_stack(self, stack_name: str, *, account: str | None = None, region: str | None = None) -> list[Event]:
        """Delete one stack's certfleet resources, as ``cdk destroy <stack>`` or ``aws cloudformation delete-stack``
        does (a stack no longer in the app, such as an emptied FleetGroup shard). ``account`` and ``region`` pick one
        when stacks of that name were deployed in several."""
        start = len(self.events)
        found = [k for k, a in self._stacks.items() if a.parent is None and k[2] == stack_name
                 and account in (None, k[0]) and region in (None, k[1])]
        if not found:
            raise RehearsalError(f"{stack_name} was never deployed by this rehearsal")
        if len(found) > 1:
            raise RehearsalError(f"{stack_name} was deployed in {', '.join(f'{a}/{r}' for a, r, _ in found)}: "
                                 "say which with account= and region=")
        self._destroy(found[0])
        return self.events[start:]

    def inventory(self, regions: list[str] | None = None, *, account: str | None = None,
                  ) -> dict[str, list[dict[str, Any]]]:
        """What ACM holds, per region: every certificate of every key type, with domains, expiry and tags
        (of ``account`` when given and accounts are isolated; of moto's default account otherwise)."""
        wanted = regions or sorted(self.regions)
        report: dict[str, list[dict[str, Any]]] = {}
        for region in wanted:
            acm = self._client("acm", region, account or "")
            rows = []
            for page in acm.get_paginator("list_certificates").paginate(Includes={"keyTypes": list(ACM_KEY_TYPES)}):
                for summary in page["CertificateSummaryList"]:
                    arn = summary["CertificateArn"]
                    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
                    tags = {t["Key"]: t["Value"] for t in acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]}
                    rows.append({"arn": arn, "domain": detail.get("DomainName"),
                                 "names": detail.get("SubjectAlternativeNames", []),
                                 "not_after": detail["NotAfter"].isoformat() if detail.get("NotAfter") else None,
                                 "key_algorithm": detail.get("KeyAlgorithm"), "tags": tags})
            report[region] = rows
        return report

    def resolve_for_iam(self, artifact: StackArtifact, value: Any) -> Any:
        """``value`` (a policy document) resolved in ``artifact`` as IAM reads it: roles by their ARNs, resources
        the rehearsal does not model by ARNs that match nothing real."""
        return _IamResolver(self, artifact).resolve(value)

    def _raw_for_iam(self, artifact: StackArtifact, logical_id: str, name: str) -> Any:
        """Property ``name`` of a resource as written in the template, resolved as IAM reads it (a policy)."""
        raw = (artifact.template["Resources"][logical_id].get("Properties") or {}).get(name)
        return self.resolve_for_iam(artifact, raw) if raw else None

    def run_schedules(self, now: datetime.datetime) -> list[ScheduleRun]:
        """Run every deployed, enabled ``AWS::Scheduler::Schedule`` once, as if its time had come at ``now``: its
        target function's Handler with the Target's Input, as its role, in its stack's region and account, with
        CERTFLEET_NOW=now (the handlers' clock). No CloudFormation event; each run's result or error is returned."""
        runs = []
        for key, deployed in list(self.resources.items()):
            if deployed.type == SCHEDULE and deployed.properties.get("State", "ENABLED") == "ENABLED":
                artifact = self._stacks[key[:3]]
                call = functools.partial(self._call_function, artifact, now=now)
                runs.append(run_schedule(artifact, key[3], deployed, call))
        return runs

    def _call_function(self, artifact: StackArtifact, function: str, handler: str, payload: Any, *,
                       now: datetime.datetime) -> Any:
        """Lambda's Python runtime for one of the stack's functions (a schedule's target), as its role."""
        resource = artifact.template["Resources"][function]
        module_name, _, entry = handler.rpartition(".")
        module = self._load(module_name, code_folder(artifact.folder, resource, f"{module_name}.py"))
        variables = ((resource.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        role = self.identities.for_function(artifact, function) if self.identities is not None else None
        told = {**{k: str(v) for k, v in _Resolver(self, artifact).resolve(variables).items()},
                "CERTFLEET_NOW": now.isoformat()}
        with self._environment(artifact.region, artifact.account, role, told):
            return getattr(module, entry)(payload, None)

    def certificate_arns(self) -> dict[ResourceKey, str]:
        """(account, region, stack name, logical id) → ARN of every certfleet certificate deployed now."""
        return {k: d.physical_id for k, d in self.resources.items() if d.type == CERTIFICATE}

    # -- one stack -----------------------------------------------------------------------------------------

    def _deploy_stack(self, artifact: StackArtifact) -> list[tuple[ResourceKey, Deployed]]:
        previous = self._stacks.get(artifact.key)
        self._stacks[artifact.key] = artifact
        self.regions.add(artifact.region)
        resources: dict[str, Any] = artifact.template.get("Resources", {})
        cleanup: list[tuple[ResourceKey, Deployed]] = []
        for logical_id in _resource_order(resources):
            resource = resources[logical_id]
            if resource.get("Type") in _EMULATED:
                cleanup += self._deploy_resource(artifact, logical_id, resource)
        old_order = _resource_order(previous.template.get("Resources", {})) if previous is not None else []
        mine = [k[3] for k in self.resources if k[:3] == artifact.key]
        for logical_id in [*reversed(old_order), *(m for m in mine if m not in old_order)]:
            key = (*artifact.key, logical_id)
            if logical_id not in resources and key in self.resources:
                cleanup.append((key, self.resources.pop(key)))
        resolver = _Resolver(self, artifact)
        outputs = {}
        for name, output in artifact.template.get("Outputs", {}).items():
            value = resolver.resolve(output.get("Value"))
            outputs[name] = value
            export = output.get("Export", {}).get("Name")
            if export:
                where = (artifact.account, artifact.region, str(resolver.resolve(export)))
                self.exports[where] = value
                self._export_owner[where] = artifact.key
        self.outputs[artifact.key] = outputs
        return cleanup

    def _deploy_resource(self, artifact: StackArtifact, logical_id: str, resource: dict[str, Any],
                         ) -> list[tuple[ResourceKey, Deployed]]:
        kind = resource["Type"]
        props = _Resolver(self, artifact).resolve(resource.get("Properties", {}))
        key: ResourceKey = (*artifact.key, logical_id)
        old = self.resources.get(key)
        if kind == NESTED_STACK:
            return self._nested(artifact, logical_id, resource, props, old)
        if old is not None and old.properties == props:
            return []
        self._check_invented(artifact, logical_id, kind, props)
        if kind in _HANDLERS:
            deployed = self._custom(artifact, logical_id, kind, props, old)
        elif kind == KMS_KEY:
            deployed = kms_key(self._client("kms", artifact.region, artifact.account), props, old,
                               self._raw_for_iam(artifact, logical_id, "KeyPolicy"))
        elif kind == SECRET_POLICY:
            secret_id = str(props.get("SecretId", ""))
            region = secret_id.split(":")[3] if secret_id.startswith("arn:") else artifact.region
            secret_policy(self._client("secretsmanager", region, artifact.account), f"{artifact.where}/{logical_id}",
                          props, self._raw_for_iam(artifact, logical_id, "ResourcePolicy"))
            self.resources[key] = Deployed(kind, f"{secret_id}#policy", props, {}, True, artifact.region,
                                           artifact.account)
            return []
        elif kind == SCHEDULE:
            deployed = schedule(artifact, logical_id, props, old)
        else:
            deployed = secret(self._client("secretsmanager", artifact.region, artifact.account), artifact.where,
                              props, old)
        deployed.retain = resource.get("DeletionPolicy") == "Retain"
        deployed.region = artifact.region
        deployed.account = artifact.account
        self.resources[key] = deployed
        self._event(artifact, logical_id, "create" if old is None else "update", deployed.physical_id)
        if old is not None and old.physical_id != deployed.physical_id:
            return [(key, old)]
        return []

    def _nested(self, parent: StackArtifact, logical_id: str, resource: dict[str, Any], props: dict[str, Any],
                old: Deployed | None) -> list[tuple[ResourceKey, Deployed]]:
        """Play a nested stack as CloudFormation does: its own stack, named after the parent and the resource."""
        template = _nested_template(parent, logical_id, resource, props)
        suffix = hashlib.sha256("/".join((*parent.key, logical_id)).encode()).hexdigest()[:12].upper()
        nested = StackArtifact(
            artifact_id=f"{parent.artifact_id}/{logical_id}", stack_name=f"{parent.stack_name}-{logical_id}-{suffix}",
            account=parent.account, region=parent.region, template=template, dependencies=[], folder=parent.folder,
            parameters=dict(props.get("Parameters") or {}), parent=parent.key,
        )
        cleanup = self._deploy_stack(nested)
        data = {f"Outputs.{name}": value for name, value in self.outputs[nested.key].items()}
        retain = resource.get("DeletionPolicy") == "Retain"
        deployed = Deployed(NESTED_STACK, _stack_id(*nested.key), props, data, retain, parent.region, parent.account,
                            nested.key)
        self.resources[(*parent.key, logical_id)] = deployed
        if old is None or old.properties != props:
            self._event(parent, logical_id, "create" if old is None else "update", deployed.physical_id)
        return cleanup

    def _check_invented(self, artifact: StackArtifact, logical_id: str, kind: str, props: dict[str, Any]) -> None:
        read = {k: v for k, v in props.items() if k != "ServiceToken"} if kind in _HANDLERS \
            else {k: v for k, v in props.items() if k in _READ.get(kind, ())}
        names = sorted(set(_INVENTED_NAME.findall(json.dumps(read, default=str))))
        if not names:
            return
        message = (f"{artifact.where}/{logical_id} ({kind}) depends on values the rehearsal does not model and had "
                   f"to invent: {', '.join(names)}. A deploy would use the real values: model them, or play on with "
                   "Rehearsal(invented='warn').")
        if self.invented == "fail":
            raise RehearsalError(message)
        self.warnings.append(message)
        warnings.warn(message, RehearsalWarning, stacklevel=2)

    def _custom(self, artifact: StackArtifact, logical_id: str, kind: str, props: dict[str, Any],
                old: Deployed | None) -> Deployed:
        event: dict[str, Any] = {
            "RequestType": "Create" if old is None else "Update",
            "ServiceToken": props.get("ServiceToken", ""),
            "ResponseURL": "",
            "StackId": _stack_id(*artifact.key),
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": logical_id,
            "ResourceType": kind,
            "ResourceProperties": props,
        }
        if old is not None:
            event["PhysicalResourceId"] = old.physical_id
            event["OldResourceProperties"] = old.properties
        physical_id, data = self._invoke(artifact, logical_id, kind, event)
        return Deployed(kind, physical_id, props, data)

    def _destroy(self, stack: StackKey) -> None:
        """Delete one stack's resources in reverse dependency order; forget its outputs and exports."""
        artifact = self._stacks[stack]
        order = _resource_order(artifact.template.get("Resources", {}))
        left = [k[3] for k in self.resources if k[:3] == stack and k[3] not in order]
        for logical_id in [*reversed(order), *left]:
            key = (*stack, logical_id)
            if key in self.resources:
                self._delete(key, self.resources.pop(key))
        self.outputs.pop(stack, None)
        for export in [e for e, owner in self._export_owner.items() if owner == stack]:
            self.exports.pop(export, None)
            del self._export_owner[export]
        del self._stacks[stack]

    def _delete(self, key: ResourceKey, old: Deployed) -> None:
        account, region, stack, logical_id = key
        artifact = self._stacks.get(key[:3]) or StackArtifact(stack, stack, account, region, {}, [])
        if old.type == NESTED_STACK:
            if not old.retain and old.nested is not None and old.nested in self._stacks:
                self._destroy(old.nested)
            self._event(artifact, logical_id, "retain" if old.retain else "delete", old.physical_id)
            return
        if old.retain or old.type not in _HANDLERS:
            self._event(artifact, logical_id, "retain", old.physical_id)
            return
        event = {
            "RequestType": "Delete", "ServiceToken": old.properties.get("ServiceToken", ""), "ResponseURL": "",
            "StackId": _stack_id(*key[:3]),
            "RequestId": str(uuid.uuid4()), "LogicalResourceId": logical_id, "ResourceType": old.type,
            "ResourceProperties": old.properties, "PhysicalResourceId": old.physical_id,
        }
        _, data = self._invoke(artifact, logical_id, old.type, event)
        self._event(artifact, logical_id, "retire" if data.get("Retired") == "true" else "delete", old.physical_id)

    def _event(self, artifact: StackArtifact, logical_id: str, action: str, physical_id: str) -> None:
        self.events.append(Event(artifact.stack_name, logical_id, action, physical_id, artifact.account,
                                 artifact.region))

    def _invoke(self, artifact: StackArtifact, logical_id: str, kind: str, event: dict[str, Any],
                ) -> tuple[str, dict[str, Any]]:
        """Send ``event`` through the resource's Provider framework (aws-cdk-lib's own code); return (physical id,
        Data) as CloudFormation records them. A Delete goes to the provider that created or last updated it."""
        where = f"{artifact.where}/{logical_id} ({kind}, {event['RequestType']})"
        key: ResourceKey = (*artifact.key, logical_id)
        try:
            if event["RequestType"] != "Delete" or key not in self._providers:
                token = (artifact.template.get("Resources", {}).get(logical_id, {}).get("Properties") or {}) \
                    .get("ServiceToken")
                self._providers[key] = find_provider(artifact.template, token, assembly_dir=artifact.folder,
                                                     account=artifact.account, region=artifact.region)
            provider = self._providers[key]
            framework = provider.framework(poll_seconds=self.poll_seconds,
                                           host=self.framework_host or FrameworkHost.shared())
            response = framework.run(event, self._user_functions(artifact, logical_id, provider))
        except FrameworkError as exc:
            raise RehearsalError(f"{where}: {exc}") from None
        status, reason = cloudformation_outcome(response)
        data: dict[str, Any] = dict(response.get("Data") or {})
        if status != "SUCCESS":
            if reason.startswith("Response object is too long"):
                sizes = [f"{k} ({len(json.dumps(v, default=str))} bytes)" for k, v in data.items()]
                reason += f" Its Data holds {', '.join(sizes) or 'nothing'}"
            raise RehearsalError(f"{where} failed: {one_line_reason(reason)}")
        return str(response["PhysicalResourceId"]), data

    def _user_functions(self, artifact: StackArtifact, logical_id: str, provider: ProviderFunctions) -> Invoke:
        """Lambda's Python runtime for the provider's user functions: each one's Handler (module.function) from the
        handler folder, in the stack's region and account, as its role."""

        def invoke(arn: str, payload: dict[str, Any]) -> Any:
            module_name, _, function = provider.handlers[arn].rpartition(".")
            module = self._load(module_name, provider.code.get(arn))
            role = None
            if self.identities is not None and function in ("on_event", "is_complete"):
                entry: Entry = "on_event" if function == "on_event" else "is_complete"
                role = self.identities.for_handler(artifact, logical_id, entry, module_name)
            with self._environment(artifact.region, artifact.account, role):
                return getattr(module, function)(payload, None)

        return invoke

    # -- plumbing ------------------------------------------------------------------------------------------

    def _endpoint(self, account: str) -> str:
        if self.isolate_accounts and re.fullmatch(r"\d{12}", account or ""):
            return f"{self.endpoint_url}/_account/{account}"
        return self.endpoint_url

    @contextmanager
    def _environment(self, region: str, account: str = "", role: str | None = None,
                     variables: dict[str, str] | None = None) -> Iterator[None]:
        """The handler's environment, as Lambda sets it (plus ``variables``); with ``role`` (an access key id), that
        role's credentials, boto3 session and handler client cache."""
        values = {
            **(variables or {}),
            "AWS_REGION": region, "AWS_DEFAULT_REGION": region, "AWS_ENDPOINT_URL": self._endpoint(account),
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            **self.extra_env,
        }
        if role is not None:
            values |= {"AWS_ACCESS_KEY_ID": role, "AWS_SECRET_ACCESS_KEY": "rehearsal"}
        with _ENV_LOCK:
            saved = {k: os.environ.get(k) for k in values}
            os.environ.update(values)
            try:
                if role is not None and self.identities is not None:
                    with self.identities.sandbox(role):
                        yield
                else:
                    yield
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v

    def _client(self, service: str, region: str, account: str = "") -> Any:  # CloudFormation's own calls, unchecked
        key_id = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
        place = (service, region, self._endpoint(account), key_id)
        if place not in self._clients:
            import boto3

            self._clients[place] = boto3.session.Session().client(  # type: ignore[call-overload]
                service, region_name=region, endpoint_url=place[2], aws_access_key_id=key_id,
                aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            )
        return self._clients[place]

