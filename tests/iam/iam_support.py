"""IAM as AWS evaluates it, for tests: synthesized policies resolved for an account and region, then judged by
``@cloud-copilot/iam-simulate`` (a Node process answering one JSON line per simulation; AGPL-3.0, tests only)."""

from __future__ import annotations

import collections
import fnmatch
import itertools
import json
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from certfleet.testing.authorize import Check, Principal

ROOT = Path(__file__).resolve().parents[2]
SERVER = Path(__file__).with_name("simulate.mjs")
ALLOWED = "Allowed"
ENCRYPTION_CONTEXT = "kms:encryptioncontext:"
STAND_IN = "aws:PrincipalTag/kms-encryption-context."
"""iam-simulate 0.1.173 drops request keys whose variable follows a colon (``kms:EncryptionContext:<key>``), so the
evaluator renames them, in the policies and the request alike, to a global key with the same string semantics."""
SEALING_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@dataclass(frozen=True)
class Request:
    """One API call as IAM sees it: who, which action, on which resource, with which context keys."""

    action: str
    resource: str
    principal: str = "arn:aws:iam::123456789012:role/certfleet-test"
    account: str = "123456789012"
    context: dict[str, str | list[str]] = field(default_factory=dict)


class IamEvaluator:
    """``decide(request, identity_policies, resource_policy)`` -> Allowed / ImplicitlyDenied / ExplicitlyDenied."""

    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not on PATH: the IAM evaluator needs Node.js (scripts/setup.sh installs it)")
        if not (ROOT / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir():
            raise RuntimeError("@cloud-copilot/iam-simulate is missing: run bash scripts/setup.sh")
        self._process = subprocess.Popen([node, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         text=True, cwd=ROOT)
        self._ids = itertools.count()
        self.calls = 0

    def __enter__(self) -> IamEvaluator:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        self._process.wait(timeout=10)

    def decide(self, request: Request, identity_policies: list[dict[str, Any]],
               resource_policy: dict[str, Any] | None = None) -> str:
        """The overall result of ``request``; an input the simulator refuses (a malformed policy) raises."""
        assert self._process.stdin and self._process.stdout
        identity_policies = [_stand_in(p) for p in identity_policies]
        resource_policy = _stand_in(resource_policy) if resource_policy is not None else None
        simulation: dict[str, Any] = {
            "identityPolicies": [{"name": f"p{i}", "policy": p} for i, p in enumerate(identity_policies)],
            "serviceControlPolicies": [], "resourceControlPolicies": [],
            "request": {"action": request.action, "principal": request.principal,
                        "resource": {"accountId": request.account, "resource": request.resource},
                        "contextVariables": _stand_in(request.context)},
        }
        if resource_policy is not None:
            simulation["resourcePolicy"] = resource_policy
        ident = next(self._ids)
        self._process.stdin.write(json.dumps({"id": ident, "simulation": simulation}) + "\n")
        self._process.stdin.flush()
        answer = json.loads(self._process.stdout.readline())
        self.calls += 1
        if "error" in answer:
            raise ValueError(f"iam-simulate refused the simulation: {answer['error'][:2000]}")
        assert answer["id"] == ident
        assert not answer["ignored"], f"iam-simulate ignored context keys {answer['ignored']}: the test would lie"
        return str(answer["result"])


def _stand_in(node: Any) -> Any:
    """``node`` with every ``kms:EncryptionContext:<key>`` key renamed to its stand-in (see STAND_IN)."""
    if isinstance(node, list):
        return [_stand_in(v) for v in node]
    if not isinstance(node, dict):
        return node
    return {(STAND_IN + k[len(ENCRYPTION_CONTEXT):] if k.lower().startswith(ENCRYPTION_CONTEXT) else k): _stand_in(v)
            for k, v in node.items()}


class Resolved:
    """A synthesized template with intrinsic functions resolved for one account and region (ARNs for resources)."""

    def __init__(self, template: dict[str, Any], *, account: str, region: str) -> None:
        self.template, self.account, self.region = template, account, region
        self.resources: dict[str, Any] = template.get("Resources", {})

    def arn(self, logical_id: str) -> str:
        """The ARN CloudFormation would give ``logical_id`` (names made up where AWS makes them up)."""
        resource = self.resources[logical_id]
        kind, props = resource["Type"], resource.get("Properties", {})
        at = f"{self.region}:{self.account}"
        if kind == "AWS::SecretsManager::Secret":
            return f"arn:aws:secretsmanager:{at}:secret:{self.value(props['Name'])}-AbCdEf"
        if kind == "AWS::KMS::Key":
            return f"arn:aws:kms:{at}:key/{logical_id.lower()}"
        if kind == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{at}:log-group:{logical_id}:*"
        if kind == "AWS::Lambda::Function":
            return f"arn:aws:lambda:{at}:function:{logical_id}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{self.account}:role/{self.value(props.get('RoleName', logical_id))}"
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{at}:{logical_id}"
        return f"arn:aws:cloudformation:{at}:resource/{logical_id}"

    def value(self, node: Any) -> Any:
        """``node`` with Ref, Fn::GetAtt, Fn::Join, Fn::Sub and Fn::Select resolved."""
        if isinstance(node, list):
            return [self.value(v) for v in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {k: self.value(v) for k, v in node.items()}
        (key, arg), = node.items()
        pseudo = {"AWS::Partition": "aws", "AWS::Region": self.region, "AWS::AccountId": self.account,
                  "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}
        if key == "Ref":
            return pseudo[arg] if arg in pseudo else self.arn(arg)
        if key == "Fn::GetAtt":
            return self.arn(arg[0])
        if key == "Fn::Join":
            return str(arg[0]).join(str(self.value(v)) for v in arg[1])
        if key == "Fn::Select":
            return self.value(arg[1])[int(arg[0])]
        if key == "Fn::Sub":
            text = arg if isinstance(arg, str) else arg[0]
            for name, val in pseudo.items():
                text = text.replace("${" + name + "}", str(val))
            return text
        if key == "Fn::GetStackOutput":
            return f"arn:aws:unresolved:{self.region}:{self.account}:output/{arg.get('OutputName', '?')}"
        return {key: self.value(arg)}

    def role(self, description: str) -> str:
        """The logical id of the one role whose Description is ``description``."""
        (found,) = [k for k, v in self.resources.items() if v["Type"] == "AWS::IAM::Role"
                    and v.get("Properties", {}).get("Description") == description]
        return found

    def role_policies(self, role_id: str) -> list[dict[str, Any]]:
        """Every policy document attached to ``role_id`` in this template (inline and AWS::IAM::Policy)."""
        role = self.resources[role_id]["Properties"]
        documents = [p["PolicyDocument"] for p in role.get("Policies", [])]
        for resource in self.resources.values():
            if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"].get("Roles", []):
                documents.append(resource["Properties"]["PolicyDocument"])
        assert not role.get("ManagedPolicyArns"), "managed policies are not resolved here"
        return [self.value(d) for d in documents]

    def only(self, kind: str) -> tuple[str, dict[str, Any]]:
        """The logical id and resolved properties of the one resource of ``kind``."""
        (found,) = [k for k, v in self.resources.items() if v["Type"] == kind]
        return found, self.value(self.resources[found].get("Properties", {}))


RUNTIME_GRANTS = frozenset({"logs:CreateLogStream", "logs:PutLogEvents"})
"""Granted for the Lambda runtime, which writes the function's logs: no handler calls them."""


class SessionAuthorizer:
    """StrictAWS's authorizer for a test session: every check judged by one :class:`IamEvaluator` (started at the
    first check), every decision kept, so that the session can compare what roles were granted with what their
    handlers called."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._evaluator: IamEvaluator | None = None
        self.roles: dict[str, Principal] = {}
        """Access key id -> the role registered under it."""
        self.allowed: collections.Counter[tuple[str, str]] = collections.Counter()
        """(what runs as the role: ``certfleet_import.on_event``, action) -> calls allowed."""
        self.denied: list[tuple[str, str, str, str]] = []
        """(role ARN, what runs, action, resource) of every call refused."""
        self.checks = 0
        self.seconds = 0.0

    def registered(self, principal: Principal) -> None:
        with self._lock:  # by access key: two rehearsals' roles of one name (same stack names) are two roles
            self.roles[principal.access_key_id] = principal

    def decide(self, check: Check) -> str:
        request = Request(check.action, check.resource, principal=check.principal.arn, account=check.account,
                          context=check.context)
        with self._lock:
            if self._evaluator is None:
                self._evaluator = IamEvaluator()
            started = time.perf_counter()
            try:
                result = self._evaluator.decide(request, list(check.principal.policies), check.resource_policy)
            finally:
                self.seconds += time.perf_counter() - started
                self.checks += 1
            if result == ALLOWED:
                self.allowed[(check.principal.runs, check.action)] += 1
            else:
                self.denied.append((check.principal.arn, check.principal.runs, check.action, check.resource))
        return result

    def unused_grants(self) -> dict[str, dict[str, list[str]]]:
        """What runs -> action granted by its roles' policies that no role running it was ever allowed to call ->
        the roles granting it (the runtime's log grants aside)."""
        with self._lock:
            called: dict[str, set[str]] = collections.defaultdict(set)
            for runs, action in self.allowed:
                called[runs].add(action.lower())
            unused: dict[str, dict[str, list[str]]] = collections.defaultdict(lambda: collections.defaultdict(list))
            for principal in self.roles.values():
                for action in granted_actions(principal.policies):
                    if action in RUNTIME_GRANTS:
                        continue
                    if not any(fnmatch.fnmatchcase(c, action.lower()) for c in called[principal.runs]):
                        unused[principal.runs][action].append(principal.arn)
        return {runs: {a: sorted(set(arns)) for a, arns in sorted(actions.items())}
                for runs, actions in sorted(unused.items())}

    def record(self) -> dict[str, Any]:
        """What this session saw, as JSON: each role's handler and granted actions, and the (handler, action) pairs
        allowed (runs of parts of the suite can be merged to judge the whole)."""
        with self._lock:
            return {"roles": {key: {"arn": p.arn, "runs": p.runs, "granted": sorted(granted_actions(p.policies))}
                              for key, p in self.roles.items()},
                    "allowed": sorted([runs, action] for runs, action in self.allowed),
                    "denied": [list(d) for d in self.denied], "checks": self.checks, "seconds": self.seconds}

    def close(self) -> None:
        with self._lock:
            if self._evaluator is not None:
                self._evaluator.close()
                self._evaluator = None


def granted_actions(policies: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> set[str]:
    """Every action (or action pattern) an Allow statement of ``policies`` names."""
    found: set[str] = set()
    for policy in policies:
        statements = policy.get("Statement") or []
        for statement in statements if isinstance(statements, list) else [statements]:
            if statement.get("Effect") == "Allow":
                actions = statement.get("Action") or []
                found.update([actions] if isinstance(actions, str) else actions)
    return found
