"""A consumer: one certificate use of one resource, located, with the certificate it resolves to."""

from __future__ import annotations

from dataclasses import dataclass

from certfleet.checks.extract.base import CertificateUse, Resource
from certfleet.checks.finding import Site
from certfleet.checks.resolve import ResolvedCertificate
from certfleet.rules import RULES, Service


@dataclass(frozen=True)
class Consumer:
    """One service that uses a certificate, and the certificate it resolves to (None when the templates cannot tell)."""

    stack: str
    region: str | None
    logical_id: str
    construct_path: str
    template_path: str
    service: Service
    what: str  # e.g. "edge-optimized domain name api.example.com", "HTTPS listener"
    location: str  # property path of the certificate value
    domains: tuple[str, ...]  # the names it serves (literal ones), which the certificate must cover
    domains_from: str  # where those names are written
    certificate: ResolvedCertificate | None

    @classmethod
    def of(cls, resource: Resource, use: CertificateUse, certificate: ResolvedCertificate | None) -> Consumer:
        st = resource.stack
        return cls(st.stack_name, st.region, resource.logical_id, resource.construct_path, st.template_path,
                   use.service, use.what, use.location, use.domains, use.domains_from, certificate)

    def name(self) -> str:
        """Its construct path (or logical id), stack and region."""
        region = f", {self.region}" if self.region else ""
        return f"{self.construct_path or self.logical_id} in stack {self.stack}{region}"

    def subject(self) -> str:
        """How messages name it: the service, what it serves, and where it is."""
        what = f" {self.what}" if self.what else ""
        return f"{RULES[self.service].title}{what} ({self.name()})"

    def site(self) -> Site:
        return Site(self.stack, self.logical_id, self.construct_path, self.template_path, self.location,
                    self.service.value)


__all__ = ["Consumer"]
