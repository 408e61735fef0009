"""A test DNS that serves what Route 53 holds: pebble-challtestsrv fed from the Route 53 changes StrictAWS accepts.

Like Route 53's name servers, it serves a change's TXT records once Route 53 reports the change INSYNC (GetChange),
so code that answers a challenge before waiting for INSYNC fails validation here as it may in AWS. Deletions stop
being served as soon as they are submitted. Only the zones named as delegated are served: a record written in a
zone nobody delegated to (a stale duplicate zone) is never seen by the CA, as in DNS.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

from acme_support import ChallTestSrv

from certfleet.testing import StrictAWS
from certfleet.testing.strict_route53 import Event, Route53Change, txt_strings


def bare_zone_id(zone_id: str) -> str:
    """``Z123`` from ``/hostedzone/Z123`` or ``Z123``."""
    return zone_id.rsplit("/", 1)[-1]


class Route53Bridge:
    """Feeds ``dns`` from the changes ``strict`` accepts in the ``delegated`` hosted zones (ids)."""

    def __init__(self, strict: StrictAWS, dns: ChallTestSrv, delegated: Iterable[str]) -> None:
        self.strict = strict
        self.dns = dns
        self.delegated = {bare_zone_id(z) for z in delegated}
        self.served: dict[str, list[str]] = {}
        """What the DNS serves now, per record name (unquoted values)."""
        self.history: list[tuple[Event, Route53Change]] = []
        """Every change heard, in every zone, delegated or not."""
        self._stop: object = None

    def _on_change(self, event: Event, change: Route53Change) -> None:
        self.history.append((event, change))
        if change.zone_id not in self.delegated:
            return
        for record in change.changes:
            if record.type != "TXT":
                continue
            if record.action == "DELETE" and event == "submitted":
                self.served.pop(record.name, None)
                self.dns.withdraw(record.name)
            elif record.action != "DELETE" and event == "insync":
                values = ["".join(txt_strings(v) or [v]) for v in record.values]
                self.served[record.name] = values
                self.dns.publish(record.name, values)

    def start(self) -> Route53Bridge:
        self._stop = self.strict.observe_route53(self._on_change)
        return self

    def stop(self) -> None:
        stop, self._stop = self._stop, None
        if callable(stop):
            stop()
        for name in list(self.served):
            self.dns.withdraw(name)
        self.served.clear()

    def __enter__(self) -> Route53Bridge:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
