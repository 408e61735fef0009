"""Route 53 DNS-01 for the ACME client: write `_acme-challenge` TXT records in the fleet's hosted zones, wait until
Route 53 reports them INSYNC, and delete exactly what was written.

Standard library and boto3 only. `Route53Dns.callbacks` gives the `publish`/`withdraw` pair that
`certfleet_acme.order_certificate` takes; `publish_records` + `insync` serve a custom resource that publishes in one
invocation and polls in the next (the Provider framework's isComplete).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError

__all__ = ["CHALLENGE_PREFIX", "DEFAULT_TTL", "DnsError", "HostedZone", "Route53Dns", "challenge_name",
           "quote_txt", "zone_for"]

CHALLENGE_PREFIX = "_acme-challenge."
DEFAULT_TTL = 60
"""Seconds resolvers may cache a challenge record: short, so a retried order is not answered from a stale cache."""
MAX_TXT_STRING = 255
"""Route 53: one quoted TXT string holds at most 255 characters; a longer value is split into several strings."""
MAX_TXT_VALUES = 400
"""Route 53: one record set holds at most 400 values."""
_NOT_FOUND = "but it was not found"
_MISMATCH = "do not match the current values"


class DnsError(Exception):
    """A Route 53 step for a challenge record failed: the message names the record, the zone and what to do."""


class Route53Client(Protocol):
    """The part of boto3's Route 53 client used here."""

    def change_resource_record_sets(self, **kwargs: Any) -> Any: ...

    def get_change(self, **kwargs: Any) -> Any: ...

    def list_resource_record_sets(self, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class HostedZone:
    """A hosted zone the fleet may write challenge records in: its id (``Z...`` or ``/hostedzone/Z...``) and name."""

    id: str
    name: str

    @classmethod
    def from_property(cls, item: Mapping[str, str]) -> HostedZone:
        """From the issuer's ``HostedZones`` property item ``{"Id": ..., "Name": ...}``."""
        return cls(str(item["Id"]), str(item["Name"]))

    @property
    def zone_id(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def domain(self) -> str:
        return _fqdn(self.name)


def _fqdn(name: str) -> str:
    return name.strip().lower().rstrip(".") + "."


def challenge_name(domain: str) -> str:
    """``_acme-challenge.<domain>`` for a certificate name; a wildcard ``*.a.example.com`` shares its base's name."""
    base = domain.strip().lower().rstrip(".").removeprefix("*.")
    return CHALLENGE_PREFIX + base


def zone_for(name: str, zones: Iterable[HostedZone]) -> HostedZone:
    """The hosted zone whose name is the longest suffix of ``name`` (a delegated subdomain's zone wins)."""
    fqdn = _fqdn(name)
    candidates = [z for z in zones if fqdn == z.domain or fqdn.endswith("." + z.domain)]
    if not candidates:
        known = ", ".join(sorted({z.domain for z in zones})) or "none"
        raise DnsError(f"no hosted zone of the fleet holds {fqdn} (hosted zones: {known}): give the fleet the Route 53 "
                       "zone that serves this name")
    return max(candidates, key=lambda z: len(z.domain))


def quote_txt(value: str) -> str:
    """A TXT value as Route 53 takes it: quoted strings of at most 255 characters, ``"`` and ``\\`` escaped,
    characters outside printable ASCII as ``\\ooo`` octal escapes."""
    chunks = [value[i:i + MAX_TXT_STRING] for i in range(0, len(value), MAX_TXT_STRING)] or [""]
    return " ".join('"' + "".join(_escape(c) for c in chunk) + '"' for chunk in chunks)


def _escape(character: str) -> str:
    if character in '"\\':
        return "\\" + character
    if " " <= character <= "~":
        return character
    return "".join(f"\\{byte:03o}" for byte in character.encode())


@dataclass(frozen=True)
class _Written:
    zone: HostedZone
    ttl: int
    values: tuple[str, ...]  # quoted, as sent


class Route53Dns:
    """Publishes and withdraws the ``_acme-challenge`` TXT records of one order in the fleet's hosted zones.

    Args:
        zones: The hosted zones the fleet may write in.
        client: A boto3 Route 53 client. Default: ``boto3.client("route53")``.
        ttl: The records' TTL in seconds. Default: 60.
        clock: Monotonic seconds, for the wait's deadline. Default: ``time.monotonic``.
        sleep: Waits between GetChange polls. Default: ``time.sleep``.
        poll_interval: Seconds between GetChange polls. Default: 5.
    """

    def __init__(self, zones: Sequence[HostedZone], *, client: Route53Client | None = None, ttl: int = DEFAULT_TTL,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 poll_interval: float = 5.0) -> None:
        if not zones:
            raise DnsError("Route 53 DNS-01 needs at least one hosted zone")
        if client is None:
            client = boto3.client("route53")
        self.zones = tuple(zones)
        self.client: Route53Client = client
        self.ttl = ttl
        self.clock = clock
        self.sleep = sleep
        self.poll_interval = poll_interval
        self.written: dict[str, _Written] = {}
        """What this instance wrote, per record name (what `withdraw` deletes)."""

    # ------------------------------------------------------------------------------------------ publish
    def publish_records(self, records: Mapping[str, Sequence[str]]) -> list[str]:
        """Add each name's values to its TXT record set, keeping the values already there (another order's token for
        the same name: two fleets of one name order in parallel); one ChangeResourceRecordSets per zone; the change
        ids.

        Each set is read (ListResourceRecordSets) and the union UPSERTed: existing values first, ours last, each once.
        A set that would exceed Route 53's MAX_TXT_VALUES drops its oldest (first listed) other values, never ours.
        Residual race: Route 53 has no conditional write, so an order UPSERTing the same name between our read and our
        write loses its value (its validation fails and its next run orders again).
        """
        merged: dict[str, dict[str, None]] = {}  # one record set per name, however the name was spelled
        for name, values in records.items():
            if not values:
                raise DnsError(f"no TXT value to publish for {_fqdn(name)}")
            merged.setdefault(_fqdn(name), {}).update(dict.fromkeys(quote_txt(v) for v in values))
        batches: dict[HostedZone, list[tuple[str, tuple[str, ...]]]] = {}
        for fqdn, quoted in merged.items():
            if len(quoted) > MAX_TXT_VALUES:
                raise DnsError(f"{len(quoted)} TXT values for {fqdn}: Route 53 holds at most {MAX_TXT_VALUES} in one "
                               "record set; order fewer names that share it")
            zone = zone_for(fqdn, self.zones)
            existing = self._read(zone, fqdn)
            others = [v for v in (existing.values if existing else ()) if v not in quoted]
            keep = others[max(0, len(others) + len(quoted) - MAX_TXT_VALUES):]
            batches.setdefault(zone, []).append((fqdn, (*keep, *quoted)))
        change_ids = []
        for zone, sets in batches.items():
            changes = [{"Action": "UPSERT", "ResourceRecordSet": self._record_set(name, values)}
                       for name, values in sets]
            answer = self._change(zone, changes, "publishing")
            for name, values in sets:
                self.written[name] = _Written(zone, self.ttl, values)
            change_ids.append(str(answer["ChangeInfo"]["Id"]))
        return change_ids

    def _record_set(self, name: str, values: Sequence[str], ttl: int | None = None) -> dict[str, Any]:
        return {"Name": name, "Type": "TXT", "TTL": self.ttl if ttl is None else ttl,
                "ResourceRecords": [{"Value": v} for v in values]}

    def _change(self, zone: HostedZone, changes: list[dict[str, Any]], step: str) -> Any:
        try:
            return self.client.change_resource_record_sets(
                HostedZoneId=zone.zone_id,
                ChangeBatch={"Comment": "certfleet ACME dns-01", "Changes": changes})
        except ClientError as error:
            names = ", ".join(str(c["ResourceRecordSet"]["Name"]) for c in changes)
            raise DnsError(f"Route 53 refused {step} TXT {names} in hosted zone {zone.domain} ({zone.zone_id}): "
                           f"{_aws_error(error)}") from None

    # ------------------------------------------------------------------------------------------- insync
    def insync(self, change_ids: Iterable[str]) -> bool:
        """Whether Route 53 reports every change INSYNC (served by all its DNS servers)."""
        for change_id in change_ids:
            try:
                status = self.client.get_change(Id=change_id)["ChangeInfo"]["Status"]
            except ClientError as error:
                raise DnsError(f"Route 53 GetChange {change_id}: {_aws_error(error)}") from None
            if status != "INSYNC":
                return False
        return True

    def wait_insync(self, change_ids: Sequence[str], until: float) -> None:
        """Poll GetChange until every change is INSYNC; DnsError once ``clock()`` reaches ``until``."""
        while not self.insync(change_ids):
            left = until - self.clock()
            if left <= 0:
                raise DnsError(f"Route 53 changes {', '.join(change_ids)} were not INSYNC in time: the records are "
                               "written but not yet served everywhere; retry later")
            self.sleep(min(self.poll_interval, left))

    # ----------------------------------------------------------------------------------------- withdraw
    def withdraw_records(self, records: Mapping[str, Sequence[str]]) -> list[str]:
        """Remove these values (unquoted, as published) from their names' TXT sets; the change ids.

        A set holding only these values is deleted; other values in it (another order's) are kept; a set already
        gone is fine. A DELETE must match the set exactly: it is first tried as written (this instance's memory, else
        these values with this TTL), and only a mismatch reads the set (ListResourceRecordSets) and retries once.
        """
        change_ids = []
        for name, values in records.items():
            fqdn = _fqdn(name)
            quoted = tuple(dict.fromkeys(quote_txt(v) for v in values))
            written = self.written.get(fqdn)
            zone = written.zone if written else zone_for(fqdn, self.zones)
            ours = set(quoted)
            current: _Written | None = written if written and set(written.values) == ours \
                else _Written(zone, self.ttl, quoted)
            for attempt in range(2):
                if current is None:
                    current = self._read(zone, fqdn)
                if current is None:
                    break
                kept = tuple(v for v in current.values if v not in ours)
                if kept == current.values:
                    break
                change = {"Action": "DELETE", "ResourceRecordSet": self._record_set(fqdn, current.values,
                                                                                    current.ttl)}
                if kept:
                    change = {"Action": "UPSERT", "ResourceRecordSet": self._record_set(fqdn, kept, current.ttl)}
                try:
                    answer = self.client.change_resource_record_sets(
                        HostedZoneId=zone.zone_id,
                        ChangeBatch={"Comment": "certfleet ACME dns-01 cleanup", "Changes": [change]})
                except ClientError as error:
                    message = _aws_error(error)
                    if _NOT_FOUND in message:
                        break
                    if _MISMATCH in message and attempt == 0:
                        current = None
                        continue
                    raise DnsError(f"Route 53 refused withdrawing TXT {fqdn} in hosted zone {zone.domain} "
                                   f"({zone.zone_id}): {message}") from None
                change_ids.append(str(answer["ChangeInfo"]["Id"]))
                break
            self.written.pop(fqdn, None)
        return change_ids

    def _read(self, zone: HostedZone, fqdn: str) -> _Written | None:
        """The TXT record set of ``fqdn`` as Route 53 holds it now, or None."""
        try:
            answer = self.client.list_resource_record_sets(
                HostedZoneId=zone.zone_id, StartRecordName=fqdn, StartRecordType="TXT", MaxItems="1")
        except ClientError as error:
            raise DnsError(f"Route 53 ListResourceRecordSets {fqdn} in hosted zone {zone.domain}: "
                           f"{_aws_error(error)}") from None
        for record_set in answer.get("ResourceRecordSets") or []:
            if _fqdn(str(record_set.get("Name", ""))) == fqdn and record_set.get("Type") == "TXT":
                values = tuple(str(r["Value"]) for r in record_set.get("ResourceRecords") or [])
                return _Written(zone, int(record_set.get("TTL", self.ttl)), values)
        return None

    # ------------------------------------------------------------------------------------------ callbacks
    def callbacks(self, until: float) -> tuple[Callable[[str, list[str]], None], Callable[[str], None]]:
        """``(publish, withdraw)`` for ``certfleet_acme.order_certificate``: publish waits (until ``until`` on
        ``clock``) for INSYNC, since the CA may look as soon as the challenge is answered."""
        published: dict[str, list[str]] = {}

        def publish(name: str, values: list[str]) -> None:
            published[_fqdn(name)] = list(values)
            self.wait_insync(self.publish_records({name: values}), until)

        def withdraw(name: str) -> None:
            values = published.pop(_fqdn(name), None)
            if values is not None:
                self.withdraw_records({name: values})

        return publish, withdraw


def _aws_error(error: ClientError) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Code', 'Error')}: {details.get('Message', '')}"
