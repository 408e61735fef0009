"""The plain AWS resources the rehearsal creates as CloudFormation would (KMS keys, secrets, secret policies), and
the ones it only records (EventBridge Scheduler schedules, which :meth:`Rehearsal.run_schedules` plays)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from certfleet.testing.assembly import Deployed, RehearsalError, StackArtifact
from certfleet.testing.resolver import INVENTED
from certfleet.testing.roles import function_target

__all__ = ["KMS_KEY", "SCHEDULE", "SECRET", "SECRET_POLICY", "ScheduleRun", "kms_key", "run_schedule", "schedule",
           "secret", "secret_policy"]

KMS_KEY = "AWS::KMS::Key"
SECRET = "AWS::SecretsManager::Secret"  # noqa: S105 - a resource type
SECRET_POLICY = "AWS::SecretsManager::ResourcePolicy"  # noqa: S105 - a resource type
SCHEDULE = "AWS::Scheduler::Schedule"


def kms_key(kms: Any, props: dict[str, Any], old: Deployed | None, policy: Any) -> Deployed:
    """Create the key with ``policy`` (the template's KeyPolicy resolved as IAM reads it); an update puts it."""
    text = json.dumps(policy) if policy else None
    if old is not None:
        if text:
            kms.put_key_policy(KeyId=old.physical_id, PolicyName="default", Policy=text)
        return Deployed(old.type, old.physical_id, props, old.data)
    meta = kms.create_key(Description=str(props.get("Description", "certfleet rehearsal")),
                          **({"Policy": text} if text else {}))["KeyMetadata"]
    return Deployed(KMS_KEY, meta["KeyId"], props, {"Arn": meta["Arn"], "KeyId": meta["KeyId"]})


def secret_policy(sm: Any, where: str, props: dict[str, Any], policy: Any) -> None:
    """Put an ``AWS::SecretsManager::ResourcePolicy`` (``policy``: principals resolved as IAM reads them) on its
    secret; ``sm`` is a client of the secret's region."""
    secret_id = str(props.get("SecretId", ""))
    try:
        sm.put_resource_policy(SecretId=secret_id, ResourcePolicy=json.dumps(policy))
    except Exception as exc:  # botocore's ClientError: what CloudFormation would report for the resource
        raise RehearsalError(f"{where}: {SECRET_POLICY} on {secret_id!r} failed: {exc}") from None


def secret(sm: Any, where: str, props: dict[str, Any], old: Deployed | None) -> Deployed:
    """Create the secret; an update with the same Name keeps it (CloudFormation updates in place), a new Name
    replaces it (a new secret; the old one goes to the cleanup phase)."""
    if old is not None and old.properties.get("Name") == props.get("Name"):
        return Deployed(old.type, old.physical_id, props, old.data)
    request: dict[str, Any] = {"Name": props.get("Name") or f"rehearsal-{uuid.uuid4().hex[:8]}"}
    for name in ("SecretString", "Description", "Tags"):
        if name in props:
            request[name] = props[name]
    if props.get("KmsKeyId"):
        request["KmsKeyId"] = props["KmsKeyId"]
    if props.get("ReplicaRegions"):
        request["AddReplicaRegions"] = [{"Region": r["Region"]} for r in props["ReplicaRegions"]]
    try:
        arn = sm.create_secret(**request)["ARN"]
    except sm.exceptions.ResourceExistsException:  # a retained secret from an earlier rehearsal
        arn = sm.describe_secret(SecretId=request["Name"])["ARN"]
    except Exception as exc:  # botocore's ClientError: what CloudFormation would report for the resource
        raise RehearsalError(f"{where}: {SECRET} {request['Name']!r} failed: {exc}") from None
    return Deployed(SECRET, arn, props, {"Id": arn, "Arn": arn})


def schedule(artifact: StackArtifact, logical_id: str, props: dict[str, Any], old: Deployed | None) -> Deployed:
    """Record a schedule (nothing runs it on its own: the rehearsal's clock is the test's); its physical id is its
    Name, else one CloudFormation would make, kept across updates."""
    name = props.get("Name") or (old.physical_id if old is not None else
                                 f"{artifact.stack_name[:32]}-{logical_id[:24]}-{uuid.uuid4().hex[:12].upper()}")
    arn = f"arn:aws:scheduler:{artifact.region}:{artifact.account}:schedule/{props.get('GroupName') or 'default'}/" \
          f"{name}"
    return Deployed(SCHEDULE, str(name), props, {"Arn": arn})


@dataclass
class ScheduleRun:
    """One run of a schedule's target (:meth:`Rehearsal.run_schedules`): what it returned, or its error."""

    stack: str
    schedule: str
    function: str
    """The target function's logical id."""
    handler: str
    region: str
    result: Any = None
    error: str = ""


CallFunction = Callable[[str, str, Any], Any]
"""(function logical id, its Handler, payload) → what the handler returned; an exception is its error."""


def run_schedule(artifact: StackArtifact, logical_id: str, deployed: Deployed, call: CallFunction) -> ScheduleRun:
    """Invoke the schedule's target with its Target.Input (JSON, as EventBridge Scheduler passes it to Lambda)."""
    resources: dict[str, Any] = artifact.template.get("Resources", {})
    raw = (resources[logical_id].get("Properties") or {}).get("Target") or {}
    function = function_target(raw.get("Arn")) or ""
    handler = str((resources.get(function, {}).get("Properties") or {}).get("Handler", ""))
    run = ScheduleRun(artifact.stack_name, logical_id, function, handler, artifact.region)
    given = (deployed.properties.get("Target") or {}).get("Input")
    try:
        if resources.get(function, {}).get("Type") != "AWS::Lambda::Function" or "." not in handler:
            raise RehearsalError(f"{artifact.where}/{logical_id}: its target is not a Lambda function of the stack "
                                 "with a Handler: the rehearsal runs only those")
        if INVENTED in str(given):
            raise RehearsalError(f"{artifact.where}/{logical_id}: its Target.Input holds values the rehearsal had to "
                                 f"invent: {given}")
        run.result = call(function, handler, json.loads(given) if given else {})
    except Exception as exc:  # the function's error, as the schedule's target reports it
        run.error = f"{type(exc).__name__}: {exc}"
    return run
