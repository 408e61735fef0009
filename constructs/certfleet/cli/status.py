"""`certfleet status`: every ACM certificate of every enabled region, queried in parallel, sorted by days left.

The seed's answer to "what expires soon?" is a shell loop of ``aws acm list-certificates`` over a hard-coded
list of regions, with a hard-coded date. This asks every region at once (one thread and one client per region,
from one botocore Session), pages through everything, asks for every key type (ListCertificates returns only
RSA_1024 and RSA_2048 certificates unless told otherwise) and says which certificates certfleet manages.

Exit status, for cron (``certfleet status --expiring-within 30 || alert``): 0 when every region answered and,
with ``--expiring-within``, nothing expires that soon; 1 when ``--expiring-within`` found a certificate, when a
region could not be read (the answer would be incomplete), when no region could be read at all, or on an AWS
problem; 2 on a usage error. Regions found automatically that are not enabled or that deny access (a service
control policy) are skipped with a warning, as long as one region answers; a region named with ``--region`` must
answer.

Speed: from a workstation each request is a round trip (50-250 ms to a distant region). Every region is listed at
once; within a region the per-certificate reads (tags, and DescribeCertificate where the summary lacks something)
run together, at most ``READS_PER_REGION`` at a time and within ACM's documented request rates (``ACM_RATES``), on
one pool of ``MAX_READS`` for all regions. A small region costs two round trips; a large one, what ACM's rates allow.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from certfleet.cli.output import emit_json, err, out, table

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from certfleet.material.findings import Finding

# Only the standard library at import time: cryptography and botocore are imported by the functions that use them.

#: Every key algorithm ACM knows; ListCertificates must be asked for each (its default is RSA_1024/RSA_2048).
ACM_KEY_TYPES = ("RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1")
# The tags the importer puts on every certificate it imports (certfleet.providers; that module imports aws_cdk).
MANAGED_BY_TAG = "certfleet:managed-by"
FLEET_TAG = "certfleet:fleet"
ID_TAG = "certfleet:id"
MANAGED_BY = "certfleet"

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_NOT_ENABLED = {"UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure", "OptInRequired",
                "SubscriptionRequiredException"}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
_ENABLED = {"opt-in-not-required", "opted-in"}
MAX_THREADS = 32
#: ACM's request rates per account and region, per second (ACM user guide, Quotas: API rate quotas).
ACM_RATES = {"ListCertificates": 1, "DescribeCertificate": 10, "ListTagsForCertificate": 10}
RATE_WINDOW = 1.0  # seconds: ACM's rates are per second
READS_PER_REGION = 16  # per-certificate reads under way at once in one region
MAX_READS = 64  # ... and in all regions together
PAGE_SIZE = 1000  # ListCertificates' largest page: it is allowed once a second
#: How long one read keeps retrying throttled answers (on top of botocore's own attempts) before the region fails.
THROTTLE_BUDGET = 120.0
THROTTLED = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"})
_PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-isob-", "aws-iso-b"), ("us-isof-", "aws-iso-f"),
               ("eu-isoe-", "aws-iso-e"), ("us-iso-", "aws-iso"), ("eusc-", "aws-eusc"))



def region_name(value: str) -> str:
    """argparse type for --region: a region name such as eu-west-1 (a typo is a usage error, exit 2)."""
    name = value.strip().lower()
    if not _REGION.match(name):
        raise argparse.ArgumentTypeError(f"{value!r} is not a region name (such as eu-west-1)")
    return name


def days(value: str) -> int:
    """argparse type for --expiring-within: a whole number of days, 0 or more."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days") from None
    if number < 0:
        raise argparse.ArgumentTypeError("the number of days must be 0 or more")
    return number


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
                and _days_left(not_after, now) > self.expiring_within:
            return False
        names = summary.get("SubjectAlternativeNameSummaries")
        if self.domain is not None and names and not summary.get("HasAdditionalSubjectAlternativeNames", True):
            from certfleet.material.names import matches

            return any(matches(n, self.domain) for n in names)
        return True


def _days_left(not_after: dt.datetime, now: dt.datetime) -> int:
    return (not_after.astimezone(dt.UTC) - now).days


# ------------------------------------------------------------------------------------------------- command
def status(args: argparse.Namespace) -> int:
    filters = Filters(args.expiring_within, args.domain, args.managed)
    now = dt.datetime.now(dt.UTC)
    explicit = list(dict.fromkeys(args.region))
    notes: list[str] = []
    try:
        session, config = _session(args)
        if session.get_credentials() is None:
            from botocore.exceptions import NoCredentialsError

            raise NoCredentialsError
        regions = explicit or _enabled_regions(session, config, args.endpoint_url, notes)
    except Exception as exc:
        _as_sentence(exc)
    progress = Progress(len(regions), enabled=not args.json and sys.stderr.isatty())
    try:
        results = query_regions(session, config, args.endpoint_url, regions, explicit=bool(explicit),
                                filters=filters, now=now, progress=progress)
    finally:
        progress.close()
    nothing = nothing_answered(results)
    rows = sort_certificates(c for r in results for c in r.certificates if filters.keep(c))
    failed = [r for r in results if r.outcome == "error"]
    expiring = filters.expiring_within is not None and bool(rows)
    code = 1 if nothing or failed or expiring else 0
    for note in notes:
        err(f"note: {note}")
    if nothing is not None:  # one sentence for the whole run, not one per region
        err(f"certfleet: {nothing}")
    else:
        for result in results:
            if result.outcome != "ok":
                word = "warning: skipped" if result.outcome == "skipped" else "error:"
                err(f"{word} {result.message}\n    fix: {result.fix}")
    if args.json:
        emit_json({
            "ok": code == 0,
            "filters": {"expiring_within": filters.expiring_within, "domain": filters.domain,
                        "managed": filters.managed},
            "regions": [r.to_dict() for r in results],
            "notes": notes,
            "warnings": [_skip_warning(r).to_dict() for r in results if r.outcome == "skipped"],
            "error": nothing.to_dict() if nothing is not None else None,
            "certificates": [c.to_dict() for c in rows],
        })
        return code
    if nothing is None:
        _print(rows, results, filters)
    return code


def _as_sentence(exc: Exception) -> NoReturn:
    """A botocore failure as one sentence (aws_errors, exit 1); anything else as it is."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, BotoCoreError | ClientError):
        from certfleet.cli.aws_commands import aws_errors  # imported on failure only: it loads cryptography

        with aws_errors("certfleet status"):
            raise exc
    raise exc


def _session(args: argparse.Namespace) -> tuple[Any, Any]:
    """One botocore Session (what boto3.Session wraps, without boto3's import of s3transfer: 0.3 s of start-up)."""
    from botocore.config import Config
    from botocore.session import Session

    # DescribeCertificate is limited to 10 requests per second per region: retry throttling, unless the user's
    # own AWS_MAX_ATTEMPTS says otherwise.
    retries = Config(retries={"mode": "standard"}) if os.environ.get("AWS_MAX_ATTEMPTS") \
        else Config(retries={"mode": "standard", "max_attempts": 6})
    config = retries.merge(Config(connect_timeout=10, read_timeout=30, max_pool_connections=READS_PER_REGION + 1))
    return Session(profile=args.profile), config


def _enabled_regions(session: Any, config: Any, endpoint_url: str | None, notes: list[str]) -> list[str]:
    """The regions enabled for the account (EC2 DescribeRegions), or botocore's ACM regions when not permitted."""
    from botocore.exceptions import ClientError

    home = session.get_config_variable("region") or "us-east-1"
    home_partition = partition(home)
    ec2 = session.create_client("ec2", region_name=home, endpoint_url=endpoint_url, config=config)
    try:
        answer = ec2.describe_regions(AllRegions=False)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in _DENIED:
            raise
        notes.append("ec2:DescribeRegions is not permitted, so every ACM region botocore knows is asked; "
                     "allow ec2:DescribeRegions or pass --region to ask only yours")
        return sorted(session.get_available_regions("acm", home_partition))
    regions = [
        str(r["RegionName"]) for r in answer.get("Regions", [])
        if r.get("OptInStatus", "opt-in-not-required") in _ENABLED and partition(str(r["RegionName"])) == home_partition
    ]
    return sorted(regions)


def partition(region: str) -> str:
    """The AWS partition of a region name, without loading botocore's endpoint data (a quarter of a second)."""
    for prefix, name in _PARTITIONS:
        if region.startswith(prefix):
            return name
    return "aws"


def query_regions(
    session: Any, config: Any, endpoint_url: str | None, regions: list[str], *, explicit: bool,
    filters: Filters, now: dt.datetime, progress: Progress | None = None,
) -> list[RegionResult]:
    """Ask every region at once (one thread and one ACM client each, from ``session``); reads share one pool."""
    lock = threading.Lock()  # creating clients from one Session is not thread-safe; using them is

    def one(region: str) -> RegionResult:
        result = RegionResult(region, explicit)
        try:
            with lock:
                acm = session.create_client("acm", region_name=region, endpoint_url=endpoint_url, config=config)
            Pacer(ACM_RATES).install(acm)
            _certificates(acm, result, filters, now, reads, progress=progress)
        except Exception as exc:  # a region's failure is reported for that region, never a traceback
            _classify(result, exc)
        if progress is not None:
            progress.region_done()
        return result

    from concurrent.futures import ThreadPoolExecutor

    if not regions:
        return []
    with ThreadPoolExecutor(max_workers=MAX_READS, thread_name_prefix="status-read") as reads, \
            ThreadPoolExecutor(max_workers=min(MAX_THREADS, len(regions)), thread_name_prefix="status") as pool:
        return list(pool.map(one, regions))


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


def _certificates(acm: Any, result: RegionResult, filters: Filters, now: dt.datetime, reads: ThreadPoolExecutor,
                  *, progress: Progress | None = None) -> None:
    """Page through every certificate of the region; read the tags (and details) of those the filters may keep.

    The reads of a region run together on ``reads``, at most ``READS_PER_REGION`` at a time; they start while
    later pages are still being listed.
    """
    slots = threading.BoundedSemaphore(READS_PER_REGION)
    pending: list[tuple[dict[str, Any], Future[Any] | None, Future[Any]]] = []

    def submit(call: Callable[..., Any], arn: str, *, counted: bool = False) -> Future[Any]:
        slots.acquire()
        future = reads.submit(patiently, call, CertificateArn=arn)
        future.add_done_callback(lambda _done: slots.release())
        if counted and progress is not None:
            future.add_done_callback(lambda _done: progress.certificate_read())
        return future

    try:
        token: dict[str, Any] = {}
        while True:
            page = patiently(acm.list_certificates, Includes={"keyTypes": list(ACM_KEY_TYPES)}, MaxItems=PAGE_SIZE,
                             **token)
            for summary in page.get("CertificateSummaryList", []):
                result.listed += 1
                if not filters.may_keep(summary, now):
                    continue
                arn = summary["CertificateArn"]
                described = submit(acm.describe_certificate, arn) if needs_describe(summary) else None
                pending.append((summary, described, submit(acm.list_tags_for_certificate, arn, counted=True)))
            if not page.get("NextToken"):
                break
            token = {"NextToken": str(page["NextToken"])}
        for summary, described, tagged in pending:
            detail = described.result()["Certificate"] if described is not None else summary_as_detail(summary)
            result.certificates.append(_certificate(result.region, summary, detail,
                                                    tagged.result().get("Tags", []), now))
    except BaseException:
        for _summary, described, tagged in pending:
            tagged.cancel()
            if described is not None:
                described.cancel()
        raise


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


def _certificate(region: str, summary: dict[str, Any], detail: dict[str, Any], tags: list[dict[str, Any]],
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
        days_left=_days_left(not_after, now) if not_after else None,
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


def _classify(result: RegionResult, exc: Exception) -> None:
    """Say why a region gave no answer, and whether that is an error (exit 1) or a skip (a warning)."""
    from botocore.exceptions import BotoCoreError, ClientError

    region = result.region
    if isinstance(exc, ClientError):
        info = exc.response.get("Error", {})
        code, message = str(info.get("Code", "?")), str(info.get("Message", ""))
        result.code = code
        if code in _NOT_ENABLED:
            result.message = f"{region} did not accept the credentials ({code}): the region is probably not " \
                             "enabled for this account"
            result.fix = "enable the region (Account settings) or leave it out of --region"
        elif code in _DENIED:
            result.message = f"{region} denied access ({code}: {message})"
            result.fix = "allow acm:ListCertificates, acm:DescribeCertificate and acm:ListTagsForCertificate, " \
                         "or leave the region out"
        else:
            result.message = f"{region}: AWS answered {code}: {message}"
            result.fix = "try again; if it persists, check the region's service health"
        skippable = code in _NOT_ENABLED | _DENIED
    elif isinstance(exc, BotoCoreError):
        result.code = "unreachable"
        result.message = f"{region}: {exc}"
        result.fix = "check --endpoint-url, the network and the region name"
        skippable = False
    else:
        result.code = type(exc).__name__
        result.message = f"{region}: unexpected {type(exc).__name__}: {exc}"
        result.fix = "this is a bug in certfleet; please report it with the command you ran"
        skippable = False
    result.outcome = "skipped" if skippable and not result.explicit else "error"


def nothing_answered(results: list[RegionResult]) -> Finding | None:
    """Why no region could be read (every one skipped or failed, or none to ask); None when one answered.

    An empty answer must never pass for "nothing expires": a role that ACM denies everywhere lists nothing.
    """
    if any(r.outcome == "ok" for r in results):
        return None
    from certfleet.material.findings import error  # only now: it loads cryptography (a tenth of a second or more)

    if not results:
        return error("aws-no-regions", "there was no region to ask: ec2:DescribeRegions listed none enabled",
                     "pass --region for each region to ask")
    groups: dict[str, list[RegionResult]] = {}
    for result in results:
        groups.setdefault(result.code, []).append(result)
    first = results[0]
    if len(groups) == 1:
        more = f" (and the same in all {len(results)} regions)" if len(results) > 1 else ""
        return error(f"aws-{first.code}", f"no region could be read: {first.message}{more}", first.fix)
    largest = max(groups.values(), key=len)
    parts = [f"{len(g)} answered {code}" for code, g in sorted(groups.items(), key=lambda item: -len(item[1]))]
    return error("aws-no-region-answered",
                 f"no region could be read ({', '.join(parts)}); for example {largest[0].message}",
                 largest[0].fix)


def _skip_warning(result: RegionResult) -> Finding:
    """A region left out of the answer (not enabled, or access denied), as a warning ``--json`` carries."""
    from certfleet.material.findings import warning

    return warning(f"region-skipped-{'denied' if result.code in _DENIED else 'not-enabled'}",
                   f"skipped {result.message}", result.fix, result.region)


def sort_certificates(certs: Iterable[Certificate]) -> list[Certificate]:
    """Soonest expiry first; certificates with no expiry (pending validation) last."""
    return sorted(certs, key=lambda c: (c.days_left is None, c.days_left if c.days_left is not None else 0,
                                        c.not_after or dt.datetime.max.replace(tzinfo=dt.UTC),
                                        c.region, c.domain, c.arn))


# ------------------------------------------------------------------------------------------------- output
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


def _print(rows: list[Certificate], results: list[RegionResult], filters: Filters) -> None:
    answered = [r for r in results if r.outcome == "ok"]
    if rows:
        out(table([
            ["REGION", "ID", "DOMAIN", "TYPE", "KEY", "NOT AFTER", "DAYS", "IN USE BY", "MANAGED"],
            *[[c.region, c.short_id, _domain(c), _type(c), c.key_algorithm,
               c.not_after.strftime("%Y-%m-%d %H:%M") if c.not_after else "-", _days(c), _in_use(c), _managed(c)]
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
