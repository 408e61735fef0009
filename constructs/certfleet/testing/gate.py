"""StrictAWS's IAM gate: registered principals, the resource facts a check needs (read from moto), the decisions.

A request signed with a registered access key id is authorized by the :class:`~certfleet.testing.authorize.Authorizer`
before it reaches moto; any other request passes unchecked (the test's own calls, the rehearsal playing
CloudFormation). A key in the rehearsal's range that nobody registered is refused outright.
"""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from certfleet.testing.authorize import (
    ALLOWED,
    AWS_MANAGED_SECRETS_KEY,
    KEY_PREFIX,
    ApiCall,
    Authorizer,
    Principal,
    SecretFacts,
    checks_for,
    denial,
    policy_document,
)

__all__ = ["Decision", "IamGate", "Refused", "access_key_id"]

_KEY_ID = re.compile(r"Credential=([^/,\s]+)/\d{8}/")
_TARGETS = {"acm": "CertificateManager", "secretsmanager": "secretsmanager", "kms": "TrentService"}
SideCall = Callable[[str, str, str, str, dict[str, Any]], tuple[int, dict[str, Any]]]
"""``(service, region, account, operation, payload) -> (status, answer)``: a call to moto the gate makes itself."""


def access_key_id(headers: dict[str, str], query: dict[str, list[str]]) -> str:
    """The access key id a SigV4 request was signed with ('' when unsigned)."""
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    found = _KEY_ID.search(authorization)
    if found is None and "X-Amz-Credential" in query:
        found = _KEY_ID.search("Credential=" + query["X-Amz-Credential"][0])
    return found.group(1) if found else ""


@dataclass(frozen=True)
class Decision:
    """What the gate decided for one check: the role, what runs as it, the action, the resource and the result."""

    principal: str
    runs: str
    action: str
    resource: str
    result: str


@dataclass(frozen=True)
class Refused:
    """A request the gate answers itself: the AWS error code and message (no request values)."""

    code: str
    message: str
    status: int = 400


class IamGate:
    """The registry of principals and the authorization of their requests (thread-safe)."""

    def __init__(self, authorizer: Authorizer | None, side_call: SideCall) -> None:
        self.authorizer = authorizer
        self._side_call = side_call
        self._lock = threading.Lock()
        self._principals: dict[str, Principal] = {}
        self._decisions: collections.Counter[Decision] = collections.Counter()

    def register(self, principal: Principal) -> None:
        """Authorize requests signed with ``principal.access_key_id`` against its policies (re-registering replaces
        them: a role whose policy changed in an update)."""
        if not principal.access_key_id.startswith(KEY_PREFIX):
            raise ValueError(f"a principal's access key id starts with {KEY_PREFIX} (got {principal.access_key_id!r})")
        with self._lock:
            self._principals[principal.access_key_id] = principal
        observe = getattr(self.authorizer, "registered", None)
        if callable(observe):
            observe(principal)

    def principals(self) -> list[Principal]:
        with self._lock:
            return list(self._principals.values())

    def decisions(self) -> dict[Decision, int]:
        """How many times each (principal, action, resource, result) was decided."""
        with self._lock:
            return dict(self._decisions)

    def reset(self) -> None:
        """Forget the decisions (registered principals stay: a rehearsal keeps its roles across deploys)."""
        with self._lock:
            self._decisions.clear()

    def authorize(self, key_id: str, call: ApiCall) -> Refused | None:
        """None when ``call``, signed with ``key_id``, may go on; else what AWS answers."""
        if not key_id.startswith(KEY_PREFIX):
            return None
        with self._lock:
            principal = self._principals.get(key_id)
        if principal is None:
            return Refused("UnrecognizedClientException", "The security token included in the request is invalid.",
                           403)
        facts = _MotoFacts(self._side_call, call.region, call.account)  # where moto plays it ('' = its default)
        if not call.account:
            call = ApiCall(call.service, call.operation, call.region, principal.account, call.params)
        checks = checks_for(principal, call, facts)
        for check in checks:
            try:
                result = self.authorizer.decide(check) if self.authorizer is not None else ALLOWED
            except Exception as exc:  # the evaluator's failure must fail the call, never let it through
                return Refused("AccessDeniedException", f"StrictAWS could not evaluate IAM for {check.action} on "
                                                        f"{check.resource}: {type(exc).__name__}: {str(exc)[:500]}")
            with self._lock:
                self._decisions[Decision(principal.arn, principal.runs, check.action, check.resource, result)] += 1
            if result != ALLOWED:
                return Refused("AccessDeniedException", denial(check))
        return None


class _MotoFacts:
    """Resource facts read from moto in the request's account (tags, secrets, key policies)."""

    def __init__(self, side_call: SideCall, region: str, account: str) -> None:
        self._call, self._region, self._account = side_call, region, account

    def _ask(self, service: str, arn_or_id: str, operation: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        parts = arn_or_id.split(":")
        region = parts[3] if arn_or_id.startswith("arn:") and len(parts) > 5 and parts[3] else self._region
        status, answer = self._call(service, region, self._account, f"{_TARGETS[service]}.{operation}", payload)
        return answer if status < 300 else None

    def certificate_tags(self, arn: str) -> dict[str, str] | None:
        answer = self._ask("acm", arn, "ListTagsForCertificate", {"CertificateArn": arn})
        if answer is None:
            return None
        return {str(t.get("Key")): str(t.get("Value", "")) for t in answer.get("Tags") or []}

    def secret(self, secret_id: str) -> SecretFacts | None:
        described = self._ask("secretsmanager", secret_id, "DescribeSecret", {"SecretId": secret_id})
        if described is None or not described.get("ARN"):
            return None
        arn = _secret_arn(str(described["ARN"]), str(described.get("Name") or ""))
        policy = self._ask("secretsmanager", arn, "GetResourcePolicy", {"SecretId": arn}) or {}
        return SecretFacts(
            arn=arn, kms_key=self._replica_key(arn, described),
            tags={str(t.get("Key")): str(t.get("Value", "")) for t in described.get("Tags") or []},
            policy=policy_document(policy.get("ResourcePolicy")),
            stages={str(k): list(v) for k, v in (described.get("VersionIdsToStages") or {}).items()},
        )

    def _replica_key(self, arn: str, described: dict[str, Any]) -> str:
        """The secret's KMS key; for a replica, the one its primary's ReplicationStatus names for the replica's
        region (moto reports the primary's key for a replica; AWS encrypts a replica with the key of its region,
        ``aws/secretsmanager`` unless ReplicaRegions names one)."""
        primary, region = str(described.get("PrimaryRegion") or ""), arn.split(":")[3]
        if not primary or primary == region:
            return str(described.get("KmsKeyId") or "")
        home = self._ask("secretsmanager", f"arn:aws:secretsmanager:{primary}::", "DescribeSecret",
                         {"SecretId": str(described.get("Name") or arn)}) or {}
        status = [r for r in home.get("ReplicationStatus") or [] if r.get("Region") == region]
        return str(status[0].get("KmsKeyId") or AWS_MANAGED_SECRETS_KEY) if status else AWS_MANAGED_SECRETS_KEY

    def key(self, key_id: str) -> tuple[str, dict[str, Any] | None] | None:
        described = self._ask("kms", key_id, "DescribeKey", {"KeyId": key_id})
        if described is None:
            return None
        arn = str((described.get("KeyMetadata") or {}).get("Arn") or key_id)
        policy = self._ask("kms", arn, "GetKeyPolicy", {"KeyId": arn, "PolicyName": "default"}) or {}
        return arn, policy_document(policy.get("Policy"))


def _secret_arn(reported: str, name: str) -> str:
    """A secret's ARN as AWS gives it: moto names a replica ``...:secret:<name with the primary region replaced by the
    replica's>-XXXXXX``; the name stays the primary's in AWS."""
    prefix, found, tail = reported.partition(":secret:")
    if not found or not name or len(tail) < 7:
        return reported
    return f"{prefix}:secret:{name}-{tail[-6:]}"
