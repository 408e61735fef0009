"""What ``certfleet status`` draws: a progress line on a terminal while it reads, and the table at the end."""

from __future__ import annotations

import sys
import threading
from typing import Any

from certfleet._lambda.certfleet_contract import FLEET_TAG
from certfleet.cli.output import out, table
from certfleet.cli.status_model import Certificate, Filters, RegionResult


class Progress:
    """``regions done / total`` on stderr, once a run has taken a second, on a terminal only; erased at the end."""

    DELAY = 1.0

    def __init__(self, total: int, *, enabled: bool, stream: Any = None) -> None:
        self.total = total
        self.done = 0
        self.read = 0
        self._stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()
        self._shown = False
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        if enabled and total:
            self._thread = threading.Thread(target=self._run, name="status-progress", daemon=True)
            self._thread.start()

    def region_done(self) -> None:
        with self._lock:
            self.done += 1

    def certificate_read(self) -> None:
        with self._lock:
            self.read += 1

    def _run(self) -> None:
        if self._closed.wait(self.DELAY):
            return
        while True:
            with self._lock:
                line = f"certfleet status: {self.done}/{self.total} regions, {self.read} certificates read"
                self._stream.write(f"\r{line}\x1b[K")
                self._stream.flush()
                self._shown = True
            if self._closed.wait(0.2):
                return

    def close(self) -> None:
        """Stop drawing and erase the line, before anything else is printed."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join()
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


def _type(cert: Certificate) -> str:
    return {"IMPORTED": "imported", "AMAZON_ISSUED": "amazon", "PRIVATE": "private"}.get(cert.type, cert.type.lower())


def _days(cert: Certificate) -> str:
    if cert.days_left is None:
        return cert.status.lower() or "-"
    return f"{cert.days_left} EXPIRED" if cert.days_left < 0 or cert.status == "EXPIRED" else str(cert.days_left)


def _user(arn: str) -> str:
    """``arn:aws:cloudfront::1:distribution/E2`` -> ``cloudfront distribution/E2``."""
    parts = arn.split(":", 5)
    return f"{parts[2]} {parts[5]}" if len(parts) == 6 else arn


def _in_use(cert: Certificate) -> str:
    if not cert.in_use_by:
        return "-"
    more = f" (+{len(cert.in_use_by) - 1})" if len(cert.in_use_by) > 1 else ""
    return f"{_user(cert.in_use_by[0])}{more}"


def _domain(cert: Certificate) -> str:
    others = [n for n in cert.names if n != cert.domain]
    return f"{cert.domain} (+{len(others)})" if others else cert.domain


def _managed(cert: Certificate) -> str:
    if not cert.managed:
        return "-"
    fleet = cert.tags.get(FLEET_TAG)
    return f"certfleet {fleet}" if fleet else "certfleet"


def _renewal(cert: Certificate) -> str:
    renewal = cert.next_renewal
    return renewal.strftime("%Y-%m-%d") if renewal is not None else "-"


def print_table(rows: list[Certificate], results: list[RegionResult], filters: Filters) -> None:
    answered = [r for r in results if r.outcome == "ok"]
    if rows:
        out(table([
            ["REGION", "ID", "DOMAIN", "TYPE", "KEY", "NOT AFTER", "DAYS", "IN USE BY", "MANAGED", "SOURCE",
             "RENEWS BY"],
            *[[c.region, c.short_id, _domain(c), _type(c), c.key_algorithm,
               c.not_after.strftime("%Y-%m-%d %H:%M") if c.not_after else "-", _days(c), _in_use(c), _managed(c),
               c.source or "-", _renewal(c)]
              for c in rows],
        ], indent=""))
    total = sum(r.listed for r in results)
    chosen = []
    if filters.managed:
        chosen.append("managed by certfleet")
    if filters.domain:
        chosen.append(f"serving {filters.domain}")
    if filters.expiring_within is not None:
        chosen.append(f"expiring within {filters.expiring_within} days")
    scope = f"{len(answered)} of {len(results)} region(s)" if len(answered) != len(results) \
        else f"{len(results)} region(s)"
    expired = sum(1 for c in rows if c.days_left is not None and c.days_left < 0)
    tail = f" ({expired} expired)" if expired else ""
    if chosen:
        out(f"{len(rows)} of {total} certificate(s) in {scope} {', '.join(chosen)}{tail}")
    else:
        out(f"{total} certificate(s) in {scope}{tail}")
