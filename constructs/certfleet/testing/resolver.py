"""CloudFormation's intrinsic functions as the rehearsal resolves them, and the same for IAM policies."""

from __future__ import annotations

import base64
from typing import Any, Protocol

from certfleet.testing.assembly import Deployed, RehearsalError, ResourceKey, StackArtifact, StackKey, _stack_id
from certfleet.testing.roles import role_arn


class Deployments(Protocol):
    """What the resolver reads of the rehearsal: what is deployed, each stack's outputs, each region's exports."""

    resources: dict[ResourceKey, Deployed]
    outputs: dict[StackKey, dict[str, Any]]
    exports: dict[tuple[str, str, str], Any]

INVENTED = "rehearsal-invented:"


class Intrinsics:
    """A walk over a CloudFormation value that replaces each intrinsic function by its value: ``Ref`` and ``Fn::X``
    by the subclass's ``_Ref`` and ``_fn_X``; the string functions (Join, Select, Split, Sub, Base64) are shared here.
    Any other one-key map goes to ``_other`` (default: walked as a map)."""

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function in it resolved."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (name, arg), = value.items()
            intrinsic = name == "Ref" or name.startswith("Fn::")
            handler = getattr(self, "_" + name.replace("Fn::", "fn_"), None) if intrinsic else None
            return handler(arg) if handler is not None else self._other(name, arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def _other(self, name: str, arg: Any) -> Any:
        return {name: self.resolve(arg)}

    def _Ref(self, name: str) -> Any:
        raise NotImplementedError

    def _fn_GetAtt(self, arg: Any) -> Any:
        raise NotImplementedError

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


class _Resolver(Intrinsics):
    """CloudFormation's intrinsic functions, as far as certfleet's resources and their outputs use them."""

    def __init__(self, rehearsal: Deployments, artifact: StackArtifact) -> None:
        self.rehearsal = rehearsal
        self.artifact = artifact

    def _invented(self, what: str) -> str:
        return f"{INVENTED}{self.artifact.stack_name}/{what}"

    def _Ref(self, name: str) -> Any:
        account, region, stack_name = self.artifact.key
        pseudo = {
            "AWS::Region": region, "AWS::AccountId": account,
            "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": stack_name,
            "AWS::StackId": _stack_id(account, region, stack_name),
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        deployed = self.rehearsal.resources.get((*self.artifact.key, name))
        if deployed is not None:
            return deployed.physical_id
        if name in self.artifact.parameters:
            return self.artifact.parameters[name]
        parameter = self.artifact.template.get("Parameters", {}).get(name)
        if parameter is not None and "Default" in parameter:
            return parameter["Default"]
        return self._invented(name)

    def _fn_GetAtt(self, arg: Any) -> Any:
        logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
        deployed = self.rehearsal.resources.get((*self.artifact.key, logical_id))
        if deployed is not None and attribute in deployed.data:
            return deployed.data[attribute]
        return self._invented(f"{logical_id}.{attribute}")

    def _fn_GetStackOutput(self, arg: dict[str, Any]) -> Any:
        spec = self.resolve(arg)
        role = str(spec.get("RoleArn") or "")
        account = role.split(":")[4] if role.startswith("arn:") and role.count(":") >= 5 else self.artifact.account
        region = str(spec.get("Region") or self.artifact.region)
        outputs = self.rehearsal.outputs.get((account, region, str(spec["StackName"])))
        if outputs is None or spec["OutputName"] not in outputs:
            raise RehearsalError(
                f"{self.artifact.where}: Fn::GetStackOutput reads {spec['StackName']}.{spec['OutputName']} in "
                f"{account}/{region}, which is not deployed (a missing stack dependency?)",
            )
        return outputs[spec["OutputName"]]

    def _fn_ImportValue(self, arg: Any) -> Any:
        where = (self.artifact.account, self.artifact.region, str(self.resolve(arg)))
        if where not in self.rehearsal.exports:
            raise RehearsalError(f"{self.artifact.where}: no stack in {where[0]}/{where[1]} exports {where[2]!r}")
        return self.rehearsal.exports[where]


class _IamResolver(_Resolver):
    """Resolves policies: a role of the stack by its ARN (Ref: its name), any other resource the rehearsal does not
    model by an ARN that matches nothing real (a log group, a function)."""

    def _invented(self, what: str) -> str:
        logical_id, _, attribute = what.partition(".")
        resource = self.artifact.template.get("Resources", {}).get(logical_id) or {}
        account, region, stack_name = self.artifact.key
        if resource.get("Type") == "AWS::IAM::Role":
            arn = role_arn(account, stack_name, logical_id, resource.get("Properties") or {})
            return arn if attribute == "Arn" else arn.rsplit("/", 1)[-1]
        return f"arn:aws:rehearsal:{region}:{account}:unmodelled/{stack_name}/{what}"
