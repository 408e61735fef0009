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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from certfleet._lambda.certfleet_contract import ACM_KEY_TYPES
from certfleet.cli.acm_pacing import Pacer, patiently
from certfleet.cli.output import emit_json, err
from certfleet.cli.status_model import (
    Filters,
    RegionResult,
    certificate_from,
    needs_describe,
    sort_certificates,
    summary_as_detail,
)
from certfleet.cli.status_output import Progress, print_table

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from certfleet.material.findings import Finding

# Only the standard library at import time: cryptography and botocore are imported by the functions that use them.

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_NOT_ENABLED = {"UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure", "OptInRequired",
                "SubscriptionRequiredException"}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
_ENABLED = {"opt-in-not-required", "opted-in"}
MAX_THREADS = 32
#: ACM's request rates per account and region, per second (ACM user guide, Quotas: API rate quotas).
ACM_RATES = {"ListCertificates": 1, "DescribeCertificate": 10, "ListTagsForCertificate": 10}
READS_PER_REGION = 16  # per-certificate reads under way at once in one region
MAX_READS = 64  # ... and in all regions together
PAGE_SIZE = 1000  # ListCertificates' largest page: it is allowed once a second
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
        print_table(rows, results, filters)
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
            result.certificates.append(certificate_from(result.region, summary, detail,
                                                    tagged.result().get("Tags", []), now))
    except BaseException:
        for _summary, described, tagged in pending:
            tagged.cancel()
            if described is not None:
                described.cancel()
        raise


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
