"""What an extractor reads from one consumer resource: certificate uses and TLS settings, judged elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from certfleet.checks.assembly import StackTemplate
from certfleet.checks.finding import Site
from certfleet.checks.template import as_dict, is_literal
from certfleet.rules import Service


@dataclass(frozen=True)
class Resource:
    """One resource of a consumer type in one stack."""

    stack: StackTemplate
    logical_id: str
    body: dict[str, Any]

    @property
    def props(self) -> dict[str, Any]:
        return as_dict(self.body.get("Properties"))

    @property
    def construct_path(self) -> str:
        return self.stack.path_of(self.logical_id)

    def name(self) -> str:
        """How messages name the resource: its construct path (or logical id), stack and region."""
        region = f", {self.stack.region}" if self.stack.region else ""
        return f"{self.construct_path or self.logical_id} in stack {self.stack.stack_name}{region}"

    def site(self, location: str, service: Service) -> Site:
        return Site(self.stack.stack_name, self.logical_id, self.construct_path, self.stack.template_path, location,
                    service.value)


@dataclass(frozen=True)
class CertificateUse:
    """One certificate value of one consumer, with what the consumer serves."""

    service: Service
    value: Any  # the template value: a literal ARN, Ref, Fn::GetAtt, Fn::GetStackOutput...
    location: str  # property path, e.g. "Properties/CertificateArn"
    what: str = ""  # e.g. "api.example.com", "HTTPS listener"
    domains: tuple[str, ...] = ()  # the names the consumer serves (literal ones)
    domains_from: str = ""  # where those names are written, for the fix


@dataclass(frozen=True)
class TlsSetting:
    """A consumer's TLS policy setting: a literal policy, or None when the setting is absent."""

    service: Service
    policy: str | None
    location: str


@dataclass(frozen=True)
class Extracted:
    """Everything an extractor found in one resource."""

    uses: tuple[CertificateUse, ...] = ()
    tls: tuple[TlsSetting, ...] = ()


Extractor = Callable[[Resource], Extracted]


def tls_setting(service: Service, value: Any, location: str) -> tuple[TlsSetting, ...]:
    """The setting when it is absent or literal; an unresolved token cannot be judged and gives nothing."""
    if value is None or is_literal(value):
        return (TlsSetting(service, None if value is None else str(value), location),)
    return ()
