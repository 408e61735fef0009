"""The rehearsal's IAM side: an access key per role it runs a handler as, registered with the StrictAWS endpoint.

Each role (per stack) gets a fresh access key id; its policies are read from the template and resolved for the
stack's account and region as the role is used, and registered again whenever they change (an update). Each role
also gets its own boto3 session and its own handler client cache: in AWS each function is its own process, and a
cache shared between roles would sign one role's calls with another's key.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from certfleet.testing.assembly import StackArtifact
from certfleet.testing.authorize import Principal, new_access_key_id
from certfleet.testing.roles import Entry, RoleRef, function_role, role_arn, role_policy_documents, running_role


class Rehearsing(Protocol):
    """What the identities need of the rehearsal that owns them."""

    endpoint_url: str
    warnings: list[str]

    def resolve_for_iam(self, artifact: StackArtifact, value: Any) -> Any: ...

__all__ = ["Identities"]

_HANDLER_COMMON = "certfleet_common"
"""The handlers' shared module; its ``_CLIENTS`` cache is per process in Lambda, so per role here."""


@dataclass
class _Sandbox:
    session: Any = None
    clients: dict[Any, Any] | None = None


class Identities:
    """Principals of one rehearsal: ``for_handler`` names the access key a handler entry runs with."""

    def __init__(self, rehearsal: Rehearsing) -> None:
        self._rehearsal = rehearsal
        self._keys: dict[tuple[tuple[str, str, str], str], str] = {}
        self._registered: dict[str, Principal] = {}
        self._sandboxes: dict[str, _Sandbox] = {}
        self._shared_loader: Any = None

    @property
    def principals(self) -> list[Principal]:
        """Every role registered so far, with the policies registered last."""
        return list(self._registered.values())

    def for_handler(self, artifact: StackArtifact, logical_id: str, entry: Entry, module: str) -> str | None:
        """The access key id of the role that runs ``entry`` of custom resource ``logical_id`` (registered with the
        endpoint with its current policies); None, with a warning, when the template does not say which role."""
        found = running_role(artifact.template, logical_id, entry, module)
        if found is None:
            if entry == "on_event" or _function_exists(artifact.template, f"{module}.{entry}"):
                message = (f"{artifact.where}/{logical_id}: the template does not say which role runs {module}.{entry}"
                           " (its ServiceToken is not a Provider framework function of the stack): run unchecked")
                self._rehearsal.warnings.append(message)
                warnings.warn(message, UserWarning, stacklevel=3)
            return None
        return self._key(artifact, found)

    def for_function(self, artifact: StackArtifact, function: str) -> str | None:
        """The access key id of the role Lambda function ``function`` (a logical id: a schedule's target) runs as,
        registered with its current policies; None, with a warning, when the template names no role of its own."""
        found = function_role(artifact.template, function)
        if found is None:
            message = f"{artifact.where}/{function}: the template names no role of the stack for it: run unchecked"
            self._rehearsal.warnings.append(message)
            warnings.warn(message, UserWarning, stacklevel=3)
            return None
        return self._key(artifact, found)

    def _key(self, artifact: StackArtifact, found: RoleRef) -> str:
        resource = artifact.template["Resources"][found.role]
        try:
            documents = role_policy_documents(artifact.template, found.role)
        except ValueError as exc:
            raise RuntimeError(f"{artifact.where}: {exc}; the rehearsal cannot enforce its IAM") from None
        policies = tuple(self._rehearsal.resolve_for_iam(artifact, d) for d in documents)
        key = self._keys.setdefault((artifact.key, found.role), new_access_key_id())
        principal = Principal(key, role_arn(artifact.account, artifact.stack_name, found.role,
                                            resource.get("Properties") or {}),
                              artifact.account, policies, found.handler)
        if self._registered.get(key) != principal:
            self._register(principal)
            self._registered[key] = principal
        return key

    def _register(self, principal: Principal) -> None:
        url = f"{self._rehearsal.endpoint_url}/_strict/principals"
        request = urllib.request.Request(  # noqa: S310 - the rehearsal's own http endpoint
            url, data=json.dumps(principal.to_json()).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - the rehearsal's own endpoint
                answer.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(
                f"{self._rehearsal.endpoint_url} did not take the role {principal.arn} (HTTP {exc.code}): IAM is "
                "enforced only by a StrictAWS endpoint; point the rehearsal at one, or pass Rehearsal(iam=False)",
            ) from None
        except (urllib.error.URLError, OSError):
            pass  # nothing listens there: every call of the handler fails the same way, and none goes unchecked

    def _loader(self) -> Any:
        """One botocore data loader for every role's session (its cache holds the parsed service models)."""
        if self._shared_loader is None:
            import botocore.loaders

            self._shared_loader = botocore.loaders.create_loader()
        return self._shared_loader

    @contextmanager
    def sandbox(self, key: str) -> Iterator[None]:
        """Run with ``key``'s own boto3 default session and handler client cache (callers hold the env lock)."""
        import boto3
        import botocore.session

        box = self._sandboxes.setdefault(key, _Sandbox(clients={}))
        if box.session is None:  # its own credentials, the service models loaded once for every role
            core = botocore.session.get_session()
            core.register_component("data_loader", self._loader())
            box.session = boto3.session.Session(botocore_session=core)
        common = sys.modules.get(_HANDLER_COMMON)
        saved_session = boto3.DEFAULT_SESSION
        saved_clients = getattr(common, "_CLIENTS", None)
        boto3.DEFAULT_SESSION = box.session
        if common is not None and saved_clients is not None:
            setattr(common, "_CLIENTS", box.clients)  # noqa: B010 - per process in Lambda: per role here
        try:
            yield
        finally:
            boto3.DEFAULT_SESSION = saved_session
            if common is not None and saved_clients is not None:
                setattr(common, "_CLIENTS", saved_clients)  # noqa: B010


def _function_exists(template: dict[str, Any], handler: str) -> bool:
    return any(v.get("Type") == "AWS::Lambda::Function" and (v.get("Properties") or {}).get("Handler") == handler
               for v in template.get("Resources", {}).values())
