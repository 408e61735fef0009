"""Which IAM role runs a custom resource's handler, and that role's policies, read from a synthesized template.

A custom resource's ``ServiceToken`` is the CDK Provider framework's function; its environment names the user's
onEvent and isComplete functions (``USER_ON_EVENT_FUNCTION_ARN``, ``USER_IS_COMPLETE_FUNCTION_ARN``); each of those
names its ``Role``. Pure template reading: no boto3, no aws_cdk.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Entry", "RoleRef", "function_role", "function_target", "role_arn", "role_policy_documents",
           "running_role"]

Entry = Literal["on_event", "is_complete"]
_FRAMEWORK_VARIABLE = {"on_event": "USER_ON_EVENT_FUNCTION_ARN", "is_complete": "USER_IS_COMPLETE_FUNCTION_ARN"}
_FUNCTION = "AWS::Lambda::Function"
_ROLE = "AWS::IAM::Role"


@dataclass(frozen=True)
class RoleRef:
    """The role (logical id) a handler entry runs as, and the function's ``Handler`` (what runs)."""

    role: str
    function: str
    handler: str


def function_target(value: Any) -> str | None:
    """The logical id a ``Fn::GetAtt [X, Arn]`` or ``Ref X`` points to."""
    if isinstance(value, dict) and len(value) == 1:
        (name, arg), = value.items()
        if name == "Fn::GetAtt":
            return str(arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0])
        if name == "Ref" and isinstance(arg, str):
            return arg
    return None


def running_role(template: dict[str, Any], resource_id: str, entry: Entry, handler_module: str) -> RoleRef | None:
    """The role ``entry`` of custom resource ``resource_id`` runs as: through the ServiceToken's Provider framework
    function, or (a token from elsewhere) the stack's one function whose Handler is ``<handler_module>.<entry>``."""
    resources: dict[str, Any] = template.get("Resources", {})
    token = function_target((resources.get(resource_id, {}).get("Properties") or {}).get("ServiceToken"))
    function = None
    framework = resources.get(token or "", {})
    if framework.get("Type") == _FUNCTION:
        variables = ((framework.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        function = function_target(variables.get(_FRAMEWORK_VARIABLE[entry])) if variables else (
            token if entry == "on_event" else None)
    if function is None or resources.get(function, {}).get("Type") != _FUNCTION:
        wanted = f"{handler_module}.{entry}"
        found = [k for k, v in resources.items()
                 if v.get("Type") == _FUNCTION and (v.get("Properties") or {}).get("Handler") == wanted]
        function = found[0] if len(found) == 1 else None
    return None if function is None else function_role(template, function)


def function_role(template: dict[str, Any], function: str) -> RoleRef | None:
    """The role Lambda function ``function`` (a logical id) runs as, and its Handler; None when the template does not
    name a role of its own (a Role from elsewhere)."""
    resources: dict[str, Any] = template.get("Resources", {})
    if resources.get(function, {}).get("Type") != _FUNCTION:
        return None
    props = resources[function].get("Properties") or {}
    role = function_target(props.get("Role"))
    if role is None or resources.get(role, {}).get("Type") != _ROLE:
        return None
    return RoleRef(role, function, str(props.get("Handler", "")))


def role_arn(account: str, stack_name: str, logical_id: str, props: dict[str, Any]) -> str:
    """The ARN CloudFormation gives the role: its RoleName, else ``<stack>-<logical id>-<suffix>`` (64 at most)."""
    name = props.get("RoleName")
    if not isinstance(name, str) or not name:
        suffix = hashlib.sha256(f"{account}/{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
        name = f"{stack_name[:25]}-{logical_id[:25]}-{suffix}"
    path = props.get("Path") if isinstance(props.get("Path"), str) else "/"
    return f"arn:aws:iam::{account}:role{path}{name}"


def role_policy_documents(template: dict[str, Any], role_id: str) -> list[Any]:
    """Every policy document attached to ``role_id`` in ``template`` (inline and ``AWS::IAM::Policy``), unresolved.
    Managed policies are refused: they are not in the template, so the rehearsal cannot evaluate them."""
    resources: dict[str, Any] = template.get("Resources", {})
    role = resources[role_id].get("Properties") or {}
    if role.get("ManagedPolicyArns"):
        raise ValueError(f"role {role_id} has managed policies, which the rehearsal cannot read from the template")
    documents = [p.get("PolicyDocument") for p in role.get("Policies") or []]
    for resource in resources.values():
        if resource.get("Type") == "AWS::IAM::Policy" and \
                {"Ref": role_id} in ((resource.get("Properties") or {}).get("Roles") or []):
            documents.append(resource["Properties"]["PolicyDocument"])
    return [d for d in documents if d]
