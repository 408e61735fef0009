"""IAM for StrictAWS: who makes a request (its SigV4 access key id) and what IAM must allow for it to pass.

A :class:`Principal` is a role a rehearsal registered under an access key id of its own. For a request signed with that
key, :func:`checks_for` lists the authorizations AWS makes (one per action and resource: an ``ImportCertificate`` with
``Tags`` is also an ``acm:AddTagsToCertificate``; a ``GetSecretValue`` of a secret under a customer managed key is also
a ``kms:Decrypt`` through Secrets Manager), with their context keys and the resource's own policy. An
:class:`Authorizer` decides each one; the evaluator itself lives with the tests (no IAM logic here, no Node).

No ``aws_cdk``; no request or response body is ever logged or kept (they carry private keys).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ALLOWED", "KEY_PREFIX", "ApiCall", "Authorizer", "Check", "Facts", "Principal", "SecretFacts", "checks_for",
           "denial", "new_access_key_id"]

ALLOWED = "Allowed"
KEY_PREFIX = "AKIACERTFLEET"
"""Access key ids the rehearsal hands to roles: StrictAWS refuses one it was not told about (a registration that
failed must not turn into calls nobody checks)."""
AWS_MANAGED_SECRETS_KEY = "alias/aws/secretsmanager"
Context = dict[str, str | list[str]]


def new_access_key_id() -> str:
    """A fresh access key id in the rehearsal's range (20 characters, as AWS's)."""
    return KEY_PREFIX + secrets.token_hex(4).upper()


@dataclass(frozen=True)
class Principal:
    """A role under an access key id: its ARN, account, identity policies (resolved), and what runs as it."""

    access_key_id: str
    arn: str
    account: str
    policies: tuple[dict[str, Any], ...]
    runs: str = ""
    """The handler that runs with this role (``certfleet_import.on_event``), for the observed-versus-granted report."""

    def to_json(self) -> dict[str, Any]:
        return {"AccessKeyId": self.access_key_id, "Arn": self.arn, "Account": self.account,
                "Policies": list(self.policies), "Runs": self.runs}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Principal:
        policies = data.get("Policies") or []
        if not isinstance(policies, list) or not all(isinstance(p, dict) for p in policies):
            raise ValueError("Policies must be a list of policy documents")
        return cls(str(data["AccessKeyId"]), str(data["Arn"]), str(data["Account"]), tuple(policies),
                   str(data.get("Runs", "")))


@dataclass(frozen=True)
class ApiCall:
    """One request as the gate sees it: service prefix (``acm``), operation, region, moto account, JSON params."""

    service: str
    operation: str
    region: str
    account: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Check:
    """One authorization: ``principal`` may do ``action`` on ``resource`` (of ``account``) given ``context``?"""

    principal: Principal
    action: str
    resource: str
    account: str
    context: Context = field(default_factory=dict)
    resource_policy: dict[str, Any] | None = None


class Authorizer(Protocol):
    """Decides a :class:`Check`: ``Allowed``, ``ImplicitlyDenied`` or ``ExplicitlyDenied``."""

    def decide(self, check: Check) -> str: ...


@dataclass(frozen=True)
class SecretFacts:
    """What Secrets Manager knows of a secret and IAM needs: its ARN, key, tags, resource policy, stages."""

    arn: str
    kms_key: str
    tags: dict[str, str]
    policy: dict[str, Any] | None
    stages: dict[str, list[str]]


class Facts(Protocol):
    """The resource state a check needs, read from moto by StrictAWS with its own (unchecked) credentials."""

    def certificate_tags(self, arn: str) -> dict[str, str] | None: ...

    def secret(self, secret_id: str) -> SecretFacts | None: ...

    def key(self, key_id: str) -> tuple[str, dict[str, Any] | None] | None: ...


def denial(check: Check) -> str:
    """The message AWS gives a denied call (it names the principal, action and resource, never request values)."""
    return (f"User: {check.principal.arn} is not authorized to perform: {check.action} on resource: {check.resource} "
            f"because no identity-based policy allows the {check.action} action")


def checks_for(principal: Principal, call: ApiCall, facts: Facts) -> list[Check]:
    """Every authorization AWS makes for ``call`` by ``principal``. A service certfleet's handlers never call is
    checked by action on ``*`` (deny by default: a role with no grant for it is refused)."""
    translate = _TRANSLATIONS.get(call.service)
    if translate is None:
        return [Check(principal, f"{call.service}:{call.operation}", "*", call.account)]
    return translate(principal, call, facts)


# ------------------------------------------------------------------------------------------------------- ACM
def _tag_context(tags: Any, *, values: bool = True) -> Context:
    pairs = [(str(t.get("Key", "")), str(t.get("Value", ""))) for t in tags or [] if isinstance(t, dict)]
    context: Context = {"aws:TagKeys": [k for k, _ in pairs]}
    if values:
        context.update({f"aws:RequestTag/{k}": v for k, v in pairs})
    return context


def _resource_tags(tags: dict[str, str] | None) -> Context:
    return {f"aws:ResourceTag/{k}": v for k, v in (tags or {}).items()}


def _acm(principal: Principal, call: ApiCall, facts: Facts) -> list[Check]:
    """ACM has no resource policies and no cross-account calls: a certificate a role touches is in the role's account
    (its ARN is read so, also when moto plays several accounts in one)."""
    operation, region, account, params = call.operation, call.region, principal.account, call.params
    action = f"acm:{operation}"
    given = str(params.get("CertificateArn") or "")
    if operation == "ImportCertificate" and not given:
        new = f"arn:aws:acm:{region}:{account}:certificate/{uuid.uuid4()}"
        checks = [Check(principal, action, new, account, _tag_context(params.get("Tags")) if params.get("Tags")
                        else {})]
        if params.get("Tags"):  # the Service Authorization Reference: tags on import need AddTagsToCertificate too
            checks.append(Check(principal, "acm:AddTagsToCertificate", new, account, _tag_context(params["Tags"])))
        return checks
    if not given:
        return [Check(principal, action, "*", account)]
    parts = given.split(":")
    arn = ":".join([*parts[:4], account, *parts[5:]]) if given.startswith("arn:") and len(parts) > 5 else given
    context = _resource_tags(facts.certificate_tags(given))
    if operation == "AddTagsToCertificate":
        context.update(_tag_context(params.get("Tags")))
    elif operation == "RemoveTagsFromCertificate":
        context.update(_tag_context(params.get("Tags"), values=False))
    return [Check(principal, action, arn, account, context)]


# ------------------------------------------------------------------------------------------- Secrets Manager
_WRITES = {"PutSecretValue", "UpdateSecret", "CreateSecret"}


def _secrets_manager(principal: Principal, call: ApiCall, facts: Facts) -> list[Check]:
    operation, region, account, params = call.operation, call.region, call.account, call.params
    action = f"secretsmanager:{operation}"
    secret_id = str(params.get("SecretId") or params.get("Name") or "")
    if not secret_id:
        return [Check(principal, action, "*", account)]
    found = facts.secret(secret_id)
    if found is None:  # no such secret: the action on the ARN it would have, so a refusal still says who and what
        arn = secret_id if secret_id.startswith("arn:") else \
            f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}-??????"
        return [Check(principal, action, arn, _account_of(arn, account), {"secretsmanager:SecretId": secret_id})]
    context: Context = {"secretsmanager:SecretId": found.arn, **_resource_tags(found.tags)}
    if operation == "GetSecretValue":
        if params.get("VersionId"):
            context["secretsmanager:VersionId"] = str(params["VersionId"])
        if params.get("VersionStage"):
            context["secretsmanager:VersionStage"] = str(params["VersionStage"])
    if operation == "UpdateSecretVersionStage" and params.get("VersionStage"):
        context["secretsmanager:VersionStage"] = str(params["VersionStage"])
    resource_account = _account_of(found.arn, account)
    checks = [Check(principal, action, found.arn, resource_account, context, found.policy)]
    kms_action = "kms:Decrypt" if operation == "GetSecretValue" else \
        "kms:GenerateDataKey" if operation in _WRITES and ("SecretString" in params or "SecretBinary" in params) \
        else ""
    if kms_action and found.kms_key and found.kms_key != AWS_MANAGED_SECRETS_KEY:
        key = facts.key(found.kms_key)
        key_arn, key_policy = key if key is not None else (found.kms_key, None)
        version = _version(operation, params, found)
        encryption: Context = {"kms:EncryptionContext:SecretARN": found.arn,
                               **({"kms:EncryptionContext:SecretVersionId": version} if version else {})}
        encryption["kms:EncryptionContextKeys"] = [k.rsplit(":", 1)[-1] for k in encryption]
        checks.append(Check(principal, kms_action, key_arn, _account_of(key_arn, resource_account), {
            "kms:ViaService": f"secretsmanager.{_region_of(found.arn, region)}.amazonaws.com", **encryption,
        }, key_policy))
    return checks


def _version(operation: str, params: dict[str, Any], found: SecretFacts) -> str:
    """The version id Secrets Manager puts in the encryption context (read: the version asked for; written: the
    ClientRequestToken, which becomes the version id)."""
    if operation != "GetSecretValue":
        return str(params.get("ClientRequestToken") or "")
    if params.get("VersionId"):
        return str(params["VersionId"])
    stage = str(params.get("VersionStage") or "AWSCURRENT")
    return next((v for v, labels in found.stages.items() if stage in labels), "")


# ------------------------------------------------------------------------------------------------------- KMS
_CONTEXT_PARAMS = ("EncryptionContext", "SourceEncryptionContext")


def _kms(principal: Principal, call: ApiCall, facts: Facts) -> list[Check]:
    operation, region, account, params = call.operation, call.region, call.account, call.params
    action = f"kms:{operation}"
    key_id = str(params.get("KeyId") or params.get("SourceKeyId") or "")
    if not key_id:
        return [Check(principal, action, f"arn:aws:kms:{region}:{account}:key/unknown", account)]
    key = facts.key(key_id)
    arn, policy = key if key is not None else (key_id if key_id.startswith("arn:") else
                                               f"arn:aws:kms:{region}:{account}:key/{key_id}", None)
    context: Context = {}
    for name in _CONTEXT_PARAMS:
        given = params.get(name)
        if isinstance(given, dict) and given:
            context.update({f"kms:EncryptionContext:{k}": str(v) for k, v in given.items()})
            context["kms:EncryptionContextKeys"] = [str(k) for k in given]
            break
    return [Check(principal, action, arn, _account_of(arn, account), context, policy)]


# -------------------------------------------------------------------------------------------------- Route 53
_ROUTE53_ZONE_OPERATIONS = {"ChangeResourceRecordSets", "ListResourceRecordSets", "GetHostedZone"}
_PLAIN_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def normalized_record_name(name: str) -> str:
    """``name`` as Route 53 puts it in ``route53:ChangeResourceRecordSetsNormalizedRecordNames``: lower case, no final
    dot, every character but a-z, 0-9, ``-``, ``_`` and ``.`` as a backslash and three octal digits (``*`` is
    ``\\052``); an escape already in the request is read first, so it is not escaped twice."""
    decoded: list[str] = []
    position = 0
    while position < len(name):
        octal = name[position + 1:position + 4]
        if name[position] == "\\" and len(octal) == 3 and all(c in "01234567" for c in octal):
            decoded.append(chr(int(octal, 8)))
            position += 4
        else:
            decoded.append(name[position])
            position += 1
    text = "".join(decoded).lower()
    text = text[:-1] if text.endswith(".") else text
    return "".join(c if c in _PLAIN_NAME_CHARACTERS else f"\\{ord(c):03o}" for c in text)


def _route53(principal: Principal, call: ApiCall, facts: Facts) -> list[Check]:
    """Route 53 is global: its ARNs name neither region nor account (``arn:aws:route53:::hostedzone/Z123``). A change
    batch's names, types and actions are multi-valued condition keys, one value per distinct entry."""
    operation, params = call.operation, call.params
    action = f"route53:{operation}"
    zone = str(params.get("HostedZoneId") or "").rsplit("/", 1)[-1]
    if operation in _ROUTE53_ZONE_OPERATIONS and zone:
        context: Context = {}
        if operation == "ChangeResourceRecordSets":
            batch = params.get("ChangeBatch")
            changes = [c for c in (batch.get("Changes") or [] if isinstance(batch, dict) else [])
                       if isinstance(c, dict)]
            sets: list[dict[str, Any]] = [c["ResourceRecordSet"] if isinstance(c.get("ResourceRecordSet"), dict)
                                          else {} for c in changes]
            context = {
                "route53:ChangeResourceRecordSetsNormalizedRecordNames": _distinct(
                    normalized_record_name(str(s.get("Name") or "")) for s in sets),
                "route53:ChangeResourceRecordSetsRecordTypes": _distinct(str(s.get("Type") or "") for s in sets),
                "route53:ChangeResourceRecordSetsActions": _distinct(str(c.get("Action") or "") for c in changes),
            }
        return [Check(principal, action, f"arn:aws:route53:::hostedzone/{zone}", call.account, context)]
    change = str(params.get("Id") or "").rsplit("/", 1)[-1]
    if operation == "GetChange" and change:
        return [Check(principal, action, f"arn:aws:route53:::change/{change}", call.account)]
    return [Check(principal, action, "*", call.account)]


def _distinct(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


_Translate = Callable[[Principal, ApiCall, Facts], list[Check]]
_TRANSLATIONS: dict[str, _Translate] = {"acm": _acm, "secretsmanager": _secrets_manager, "kms": _kms,
                                        "route53": _route53}


def _account_of(arn: str, default: str) -> str:
    parts = arn.split(":")
    return parts[4] if arn.startswith("arn:") and len(parts) > 5 and parts[4] else default


def _region_of(arn: str, default: str) -> str:
    parts = arn.split(":")
    return parts[3] if arn.startswith("arn:") and len(parts) > 5 and parts[3] else default


def policy_document(text: Any) -> dict[str, Any] | None:
    """A policy given as JSON text (as Secrets Manager and KMS return it) or as a dict; None when absent or broken."""
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
