"""Reading ACM within its request rates: a pacer hooked to botocore's events, and patient retries of throttled calls.

ACM allows ListCertificates once a second and DescribeCertificate / ListTagsForCertificate ten times a second per
region; ``certfleet status`` reads many certificates at once, so each region's client is paced (``Pacer``) and a
read that is throttled anyway is retried for a while (``patiently``) rather than failing its region.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

RATE_WINDOW = 1.0  # seconds: ACM's rates are per second
#: How long one read keeps retrying throttled answers (on top of botocore's own attempts) before the region fails.
THROTTLE_BUDGET = 120.0
THROTTLED = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"})


class Pacer:
    """Keeps one region's requests within ACM's rates: an operation allowed N per second starts a request only
    while fewer than N others were answered less than ``window`` seconds ago or are still under way.

    Counting from the answer, not the send, is what makes it hold at ACM whatever the network's jitter: a request
    reaches ACM between its send and its answer. Hooked to botocore's ``before-send`` and ``needs-retry``, so
    retries and further pages are paced too. A throttled answer (another tool spending the same quota, or an account
    with lower limits) halves that operation's limit; each answer that is not throttled wins a tenth back.
    """

    STALE = 120.0  # an entry with no answer after this long (a request that died unseen) stops counting

    def __init__(self, rates: dict[str, int], window: float = RATE_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rates = rates
        self.limit: dict[str, float] = {operation: float(rate) for operation, rate in rates.items()}
        self._window = window
        self._clock = clock
        self._recent: dict[str, list[list[float]]] = {operation: [] for operation in rates}  # [sent, answered]
        self._mine = threading.local()  # operation -> the entry of the request this thread is sending
        self._changed = threading.Condition()

    def install(self, client: Any) -> None:
        """Pace every request ``client`` sends, and learn from every answer it gets."""
        client.meta.events.register("before-send.acm", self.before_send)
        client.meta.events.register("needs-retry.acm", self.after_answer)

    def wait(self, operation: str) -> None:
        """Return when one more ``operation`` request may be sent; it counts from now until :meth:`answered`."""
        with self._changed:
            while (delay := self.admit(operation)) != 0.0:
                self._changed.wait(delay)

    def admit(self, operation: str) -> float | None:
        """0.0 when the request may go (and is counted); else seconds to wait, or None: until an answer comes."""
        if operation not in self.limit:
            return 0.0
        with self._changed:
            now = self._clock()
            recent = self._recent[operation]
            recent[:] = [e for e in recent if (now - e[1] < self._window if e[1] else now - e[0] < self.STALE)]
            if len(recent) < max(1, int(self.limit[operation])):
                entry = [now, 0.0]
                recent.append(entry)
                self._mine.__dict__[operation] = entry
                return 0.0
            answered = [e[1] for e in recent if e[1]]
            return self._window - (now - min(answered)) if answered else None

    def answered(self, operation: str, *, throttled: bool) -> None:
        """The request this thread sent was answered: its slot frees ``window`` seconds from now; learn the rate."""
        if operation not in self.limit:
            return
        with self._changed:
            entry = self._mine.__dict__.pop(operation, None)
            if entry is not None:
                entry[1] = max(self._clock(), 1e-9)
            current = self.limit[operation]
            self.limit[operation] = max(1.0, current / 2) if throttled \
                else min(float(self._rates[operation]), current + 0.1)
            self._changed.notify_all()

    def before_send(self, event_name: str = "", **_kwargs: Any) -> None:
        """botocore ``before-send.acm.<Operation>`` handler (returns None: the request is sent)."""
        self.wait(event_name.rsplit(".", 1)[-1])

    def after_answer(self, event_name: str = "", response: Any = None, **_kwargs: Any) -> None:
        """botocore ``needs-retry.acm.<Operation>`` handler (returns None: botocore's retry policy decides)."""
        parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else None
        code = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        self.answered(event_name.rsplit(".", 1)[-1], throttled=code in THROTTLED)


def patiently(call: Callable[..., Any], *, budget: float = THROTTLE_BUDGET, **params: Any) -> Any:
    """``call(**params)``, retried with backoff while ACM keeps answering throttled, for up to ``budget`` seconds.

    botocore already retried a few times; under a shared quota that can run out, and a slow answer beats a
    region reported as failed.
    """
    import random

    from botocore.exceptions import ClientError

    deadline = time.monotonic() + budget
    attempt = 0
    while True:
        try:
            return call(**params)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in THROTTLED or time.monotonic() >= deadline:
                raise
        attempt += 1
        time.sleep(random.uniform(0.5, 1.0) * min(8.0, 0.5 * 2 ** attempt))  # noqa: S311 (jitter, not a secret)
