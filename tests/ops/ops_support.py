"""Test kit for tests/ops: a TLS server on 127.0.0.1 serving certificates made at test time, and AWS seeding."""

from __future__ import annotations

import collections
import contextlib
import signal
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType

import pytest

from certfleet.material.demo import Issued
from certfleet.material.keys import write_secret_file
from certfleet.testing import StrictAWS
from certfleet.testing.strict import AWSRefusal
from certfleet.testing.strict_http import _error, _Request, _Response

#: The 17 regions every AWS account has without opting in: the seed's loop, and the acceptance's "17 regions".
REGIONS_17 = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ap-south-1",
)


class TLSServer:
    """A TLS server on 127.0.0.1 or ``host`` (a thread): serves ``leaf`` + ``chain``, or per-SNI-name other pairs.

    Each connection gets a full handshake and is then closed; failed handshakes (a client that refuses the
    chain) are ignored, as a real server would.
    """

    def __init__(
        self, leaf: Issued, chain: Sequence[Issued] = (), *,
        sni: dict[str, tuple[Issued, Sequence[Issued]]] | None = None, host: str = "127.0.0.1",
    ) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="certfleet-tls-")
        self.context = self._context(leaf, chain, "default")
        self.by_name = {name: self._context(c, ch, name) for name, (c, ch) in (sni or {}).items()}
        if self.by_name:
            self.context.sni_callback = self._pick
        self.seen_names: list[str | None] = []
        self.host = host
        self._sock = socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="TLSServer", daemon=True)

    def _context(self, leaf: Issued, chain: Sequence[Issued], label: str) -> ssl.SSLContext:
        folder = Path(self._folder.name)
        cert = folder / f"{label}.pem"
        key = folder / f"{label}.key"
        cert.write_bytes(leaf.pem() + b"".join(c.pem() for c in chain))
        write_secret_file(key, leaf.key_pem(), overwrite=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        return context

    def _pick(self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.seen_names.append(name)
        if name in self.by_name:
            sock.context = self.by_name[name]

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(OSError), conn:
                conn.settimeout(5)
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)  # until the client closes

    def __enter__(self) -> TLSServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=5)
        self._folder.cleanup()

    @property
    def target(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def require_client_certificate(self, ca: Issued, *, tls13: bool) -> None:
        """Mutual TLS: refuse clients without a certificate from ``ca`` (TLS 1.2 only, or up to TLS 1.3)."""
        for context in (self.context, *self.by_name.values()):
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=ca.pem().decode())
            context.maximum_version = ssl.TLSVersion.TLSv1_3 if tls13 else ssl.TLSVersion.TLSv1_2


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections (the kernel's backlog) and never says a word: a TLS timeout."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield int(sock.getsockname()[1])


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail the test if the block still runs after ``seconds`` (a hard stop for a hang, not a speed claim)."""

    def expired(_signum: int, _frame: FrameType | None) -> None:
        pytest.fail(f"still running after {seconds} s: stopped")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class RefusingAWS(StrictAWS):
    """StrictAWS that answers every request of some regions with an error, as an opted-out or denied region does."""

    def __init__(self, upstream: str, **kwargs: object) -> None:
        super().__init__(upstream, **kwargs)  # type: ignore[arg-type]
        self.refuse: dict[tuple[str, str], tuple[str, str]] = {}  # (service, region) -> (code, message)

    def handle(self, request: _Request) -> _Response:
        refusal = self.refuse.get((request.service, request.region))
        if refusal is None:
            return super().handle(request)
        code, message = refusal
        if request.service != "ec2":
            return _error(AWSRefusal(code, message))
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code>"  # EC2's shape
                f"<Message>{message}</Message></Error></Errors><RequestID>refused</RequestID></Response>").encode()
        return _Response(403, [("Content-Type", "text/xml")], body)




#: ACM's request rates per account and region (requests per second), as the ACM quotas page lists them.
ACM_READ_RATES = {"ListCertificates": 1.0, "DescribeCertificate": 10.0, "ListTagsForCertificate": 10.0}


class SlowAWS(RefusingAWS):
    """RefusingAWS far away and busy: a fixed latency on every request, ACM's request rates, in-flight counts.

    ``latency``: seconds added to every request (one round trip to a distant region).
    ``rates``: ACM operation -> requests allowed in any one second per region; above it, ``ThrottlingException``
    (refused requests do not count toward the rate, as with a token bucket).
    ``refuse_operation[(operation, region)] = (code, message)``: that one ACM operation answers with that error.
    ``peak_in_flight[region]``: the most ACM requests of that region that were under way at once; ``peak_total``:
    the most in all regions together; ``span(region)``: seconds from its first ACM request's arrival to its last
    answer (the round trips a region cost, whatever the client's start-up).
    """

    def __init__(self, upstream: str, *, latency: float = 0.0, rates: dict[str, float] | None = None,
                 **kwargs: object) -> None:
        super().__init__(upstream, **kwargs)
        self.latency = latency
        self.rates = dict(rates or {})
        self.refuse_operation: dict[tuple[str, str], tuple[str, str]] = {}
        self.throttled: collections.Counter[tuple[str, str]] = collections.Counter()  # (operation, region)
        self.peak_in_flight: collections.Counter[str] = collections.Counter()
        self.peak_total = 0
        self._first: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._arrivals: dict[tuple[str, str], collections.deque[float]] = collections.defaultdict(collections.deque)
        self._slow_lock = threading.Lock()

    def forget_peaks(self) -> None:
        """Start counting in-flight peaks and throttles afresh."""
        with self._slow_lock:
            self.peak_in_flight.clear()
            self.peak_total = 0
            self.throttled.clear()
            self._first.clear()
            self._last.clear()

    def span(self, region: str) -> float:
        """Seconds from the first ACM request of ``region`` (since :meth:`forget_peaks`) to its last answer."""
        with self._slow_lock:
            return self._last.get(region, 0.0) - self._first.get(region, 0.0)

    def handle(self, request: _Request) -> _Response:
        if request.service != "acm":
            time.sleep(self.latency)
            return super().handle(request)
        region = request.region
        with self._slow_lock:
            self._first.setdefault(region, time.monotonic())
            self._in_flight[region] += 1
            self.peak_in_flight[region] = max(self.peak_in_flight[region], self._in_flight[region])
            self.peak_total = max(self.peak_total, sum(self._in_flight.values()))
            refused = not self._admit(request.operation, region)
        try:
            time.sleep(self.latency)
            if refused:
                return _error(AWSRefusal("ThrottlingException", "Rate exceeded"))
            refusal = self.refuse_operation.get((request.operation, region))
            if refusal is not None:
                return _error(AWSRefusal(*refusal))
            return super().handle(request)
        finally:
            with self._slow_lock:
                self._in_flight[region] -= 1
                self._last[region] = time.monotonic()

    def _admit(self, operation: str, region: str) -> bool:
        """Whether one more ``operation`` request in ``region`` stays within its rate (caller holds the lock)."""
        rate = self.rates.get(operation)
        if rate is None:
            return True
        now = time.monotonic()
        arrivals = self._arrivals[(operation, region)]
        while arrivals and now - arrivals[0] >= 1.0:
            arrivals.popleft()
        if len(arrivals) >= max(1, int(rate)):
            self.throttled[(operation, region)] += 1
            return False
        arrivals.append(now)
        return True
