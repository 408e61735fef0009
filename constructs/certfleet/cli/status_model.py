"""What ``certfleet status`` reports: one ACM certificate, one region's answer, the filters, and how ACM's
ListCertificates summaries and DescribeCertificate details become a ``Certificate``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from certfleet._lambda.certfleet_contract import ACME_SOURCE, FLEET_TAG, ID_TAG, MANAGED_BY, MANAGED_BY_TAG, SOURCE_TAG

# The tags the importer puts on every certificate it imports (certfleet.providers; that module imports aws_cdk).


@dataclass
class Certificate:
    """What status reports about one ACM certificate (public facts only)."""

    region: str
    arn: str
    domain: str
    names: list[str]
    type: str
    status: str
    key_algorithm: str
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    days_left: int | None
    in_use_by: list[str]
    tags: dict[str, str]

    @property
    def managed(self) -> bool:
        return self.tags.get(MANAGED_BY_TAG) == MANAGED_BY

    @property
    def source(self) -> str | None:
        """Where a managed certificate comes from: "acme" (ordered and renewed by certfleet) or "imported" (files);
        None for a certificate certfleet does not manage. Read from the tags status reads anyway (no extra call)."""
        if not self.managed:
            return None
        return ACME_SOURCE if self.tags.get(SOURCE_TAG) == ACME_SOURCE else "imported"

    @property
    def next_renewal(self) -> dt.datetime | None:
        """When the renewer renews an ACME certificate at the latest (an ARI window may bring it forward); None for
        the others, which renew only when someone imports new files."""
        if self.source != ACME_SOURCE or self.not_before is None or self.not_after is None:
            return None
        return next_renewal(self.not_before, self.not_after)

    @property
    def short_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1][:8]

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "arn": self.arn,
            "domain": self.domain,
            "names": self.names,
            "type": self.type,
            "status": self.status,
            "key_algorithm": self.key_algorithm,
            "not_before": self.not_before.isoformat() if self.not_before else None,
            "not_after": self.not_after.isoformat() if self.not_after else None,
            "days_left": self.days_left,
            "in_use": bool(self.in_use_by),
            "in_use_by": self.in_use_by,
            "managed": self.managed,
            "fleet": self.tags.get(FLEET_TAG) if self.managed else None,
            "certfleet_id": self.tags.get(ID_TAG) if self.managed else None,
            "source": self.source,
            "next_renewal": renewal.isoformat() if (renewal := self.next_renewal) else None,
            "tags": self.tags,
        }


@dataclass
class RegionResult:
    """The answer of one region: its certificates, or why there are none."""

    region: str
    explicit: bool
    certificates: list[Certificate] = field(default_factory=list)
    listed: int = 0  # every certificate ListCertificates returned, before filters
    outcome: str = "ok"  # ok | skipped (not enabled, denied, found automatically) | error
    code: str = ""
    message: str = ""
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"region": self.region, "status": self.outcome, "certificates": self.listed}
        if self.outcome != "ok":
            data.update(code=self.code, message=self.message, fix=self.fix)
        return data


@dataclass
class Filters:
    expiring_within: int | None = None
    domain: str | None = None
    managed: bool = False

    def keep(self, cert: Certificate) -> bool:
        if self.managed and not cert.managed:
            return False
        if self.expiring_within is not None and (cert.days_left is None or cert.days_left > self.expiring_within):
            return False
        if self.domain is None:
            return True
        from certfleet.material.names import matches  # cryptography: only when --domain asks for it

        return any(matches(n, self.domain) for n in cert.names or [cert.domain])

    def may_keep(self, summary: dict[str, Any], now: dt.datetime) -> bool:
        """False only when the ListCertificates summary alone proves the certificate is filtered out."""
        not_after = summary.get("NotAfter")
        if self.expiring_within is not None and isinstance(not_after, dt.datetime) \
                and days_left(not_after, now) > self.expiring_within:
            return False
        names = summary.get("SubjectAlternativeNameSummaries")
        if self.domain is not None and names and not summary.get("HasAdditionalSubjectAlternativeNames", True):
            from certfleet.material.names import matches

            return any(matches(n, self.domain) for n in names)
        return True


def days_left(not_after: dt.datetime, now: dt.datetime) -> int:
    return (not_after.astimezone(dt.UTC) - now).days


def certificate_from(region: str, summary: dict[str, Any], detail: dict[str, Any], tags: list[dict[str, Any]],
                 now: dt.datetime) -> Certificate:
    not_after = detail.get("NotAfter")
    not_before = detail.get("NotBefore")
    return Certificate(
        region=region,
        arn=str(summary["CertificateArn"]),
        domain=str(detail.get("DomainName", summary.get("DomainName", ""))),
        names=[str(n) for n in detail.get("SubjectAlternativeNames", [])],
        type=str(detail.get("Type", summary.get("Type", ""))),
        status=str(detail.get("Status", "")),
        key_algorithm=str(detail.get("KeyAlgorithm", summary.get("KeyAlgorithm", ""))),
        not_before=not_before.astimezone(dt.UTC) if not_before else None,
        not_after=not_after.astimezone(dt.UTC) if not_after else None,
        days_left=days_left(not_after, now) if not_after else None,
        in_use_by=[str(u) for u in detail.get("InUseBy", [])],
        tags={str(t["Key"]): str(t.get("Value", "")) for t in tags},
    )


_SUMMARY_FIELDS = ("DomainName", "SubjectAlternativeNameSummaries", "Status", "Type", "KeyAlgorithm")


def needs_describe(summary: dict[str, Any]) -> bool:
    """Whether the ListCertificates summary lacks something status shows, so DescribeCertificate must be asked.

    ACM's summaries carry the dates, key, type, status and up to 100 names; not who uses the certificate. Skipping
    DescribeCertificate (10 requests per second per region) for the rest halves the calls in a large region.
    """
    if summary.get("InUse") is not False or summary.get("HasAdditionalSubjectAlternativeNames") is not False:
        return True
    if any(name not in summary for name in _SUMMARY_FIELDS):
        return True
    return "NotAfter" not in summary and summary.get("Status") in ("ISSUED", "EXPIRED", "REVOKED", "INACTIVE")


def summary_as_detail(summary: dict[str, Any]) -> dict[str, Any]:
    """A complete summary in DescribeCertificate's shape."""
    return {**summary, "SubjectAlternativeNames": list(summary.get("SubjectAlternativeNameSummaries", [])),
            "InUseBy": []}


def sort_certificates(certs: Iterable[Certificate]) -> list[Certificate]:
    """Soonest expiry first; certificates with no expiry (pending validation) last."""
    return sorted(certs, key=lambda c: (c.days_left is None, c.days_left if c.days_left is not None else 0,
                                        c.not_after or dt.datetime.max.replace(tzinfo=dt.UTC),
                                        c.region, c.domain, c.arn))


def next_renewal(not_before: dt.datetime, not_after: dt.datetime) -> dt.datetime:
    """When an ACME certificate is renewed at the latest: two thirds into its lifetime (the renewer's rule when the CA
    offers no ARI window, certfleet_acme.should_renew; an ARI window may bring it forward)."""
    return not_after - (not_after - not_before) / 3
