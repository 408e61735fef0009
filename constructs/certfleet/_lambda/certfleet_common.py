"""Helpers shared by certfleet's custom-resource handlers: standard library and boto3 only."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import random
import re
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:  # checked as part of the certfleet package
    from mypy_boto3_acm import ACMClient

    from certfleet._lambda.certfleet_contract import ACM_KEY_TYPES
else:  # the Lambda asset's top level, as /var/task is
    from certfleet_contract import ACM_KEY_TYPES

T = TypeVar("T")
LOG = logging.getLogger("certfleet")
LOG.setLevel(logging.INFO)
for _chatty in ("boto3", "botocore", "urllib3"):  # their DEBUG lines print request and response bodies: keys
    logging.getLogger(_chatty).setLevel(logging.WARNING)
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.+?)-----END \1-----", re.S)
_CLIENTS: dict[tuple[str, str, bool, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()
_POOL = 256
"""Connections a shared client keeps: one Lambda invocation uses one, but tests and benches run many handlers as
threads of one process, and a smaller pool would open (and drop) a connection per request."""


class OnEventResponse(TypedDict):
    """What an onEvent handler returns to the Provider framework."""

    PhysicalResourceId: str
    Data: NotRequired[dict[str, str]]


class IsCompleteResponse(TypedDict):
    """What an isComplete handler returns to the Provider framework."""

    IsComplete: bool


def region() -> str:
    """The function's own region (Lambda sets AWS_REGION)."""
    return os.environ.get("AWS_REGION") or os.environ["AWS_DEFAULT_REGION"]


def client(service: str, region_name: str | None = None, *, retry: bool = True) -> Any:
    """A boto3 client, made once per service, region, retry mode and endpoint (boto3 clients are thread-safe, making
    one is not); ``retry=False`` leaves every retry to the caller's own loop."""
    place = region_name or region()
    key = (service, place, retry, os.environ.get("AWS_ENDPOINT_URL", ""))
    with _CLIENTS_LOCK:
        made = _CLIENTS.get(key)
        if made is None:
            retries: Any = {"mode": "standard", "max_attempts": 5} if retry else {"total_max_attempts": 1}
            make: Callable[..., Any] = boto3.client
            config = Config(retries=retries, max_pool_connections=_POOL)
            made = _CLIENTS[key] = make(service, region_name=place, config=config)
    return made


def code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def describe(exc: ClientError) -> str:
    """'Code: message' of a ClientError (AWS messages never echo request values such as keys)."""
    return f"{code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"


def seconds(name: str, default: float) -> float:
    """A time budget from the environment (tests shorten them), else ``default``."""
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def deadline(context: object, fallback: str, default: float) -> float:
    """When this invocation must stop retrying (``time.monotonic()``): Lambda's remaining time less a margin for the
    work after the last retry (CERTFLEET_LAMBDA_MARGIN_SECONDS, default 15); without a Lambda context (tests, the
    rehearsal), the budget in environment variable ``fallback``, else ``default`` seconds."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        return time.monotonic() + float(remaining()) / 1000 - seconds("CERTFLEET_LAMBDA_MARGIN_SECONDS", 15)
    return time.monotonic() + seconds(fallback, default)


def backoff(
    action: Callable[[], T], retry_if: Callable[[ClientError], bool], until: float, what: str,
    *, base: float = 0.5, cap: float = 8.0,
) -> T:
    """Run ``action``; while ``retry_if``, retry it after a full-jitter delay (``base`` doubling per attempt, at most
    ``cap``) until ``until`` (``time.monotonic()``): the last attempt is made at the deadline, not skipped."""
    attempt = 0
    while True:
        try:
            return action()
        except ClientError as exc:
            left = until - time.monotonic()
            if not retry_if(exc) or left <= 0:
                raise
            delay = min(left, random.uniform(0, min(cap, base * 2**attempt)))  # noqa: S311 - jitter, not crypto
            if attempt % 10 == 0:
                LOG.info("%s: %s; retrying (attempt %d, %.0f s left)", what, code(exc), attempt + 1, left)
            time.sleep(delay)
            attempt += 1


def pem_der(pem: str) -> bytes:
    """The DER of the first PEM block in ``pem``."""
    match = _PEM.search(pem)
    if match is None:
        raise ValueError("no PEM block found")
    return base64.b64decode("".join(match.group(2).split()))


def der_pem(der: bytes, label: str) -> str:
    """PEM text for ``der`` under ``label``, 64-column lines, as OpenSSL writes it."""
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def tagged(acm: ACMClient, names: frozenset[str] = frozenset()) -> Iterator[tuple[str, dict[str, str]]]:
    """Every certificate of every key type in the client's region, with its tags; with ``names``, only those whose
    listed names include one of them (a FleetGroup region holds hundreds: one ListTags each would be slow)."""
    for page in acm.get_paginator("list_certificates").paginate(Includes={"keyTypes": list(ACM_KEY_TYPES)}):
        for summary in page.get("CertificateSummaryList", []):
            listed = [n for n in [summary.get("DomainName"), *summary.get("SubjectAlternativeNameSummaries", [])] if n]
            if names and listed and names.isdisjoint(listed):
                continue
            arn = str(summary["CertificateArn"])
            tags = {t["Key"]: t.get("Value", "") for t in acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]}
            yield arn, tags


def try_delete(arn: str, acm: ACMClient | None = None) -> bool:
    """DeleteCertificate (with ``acm``, a client of the certificate's region); True when gone, False while in use."""
    acm = acm or client("acm", arn.split(":")[3])
    try:
        acm.delete_certificate(CertificateArn=arn)
    except ClientError as exc:
        if code(exc) == "ResourceInUseException":
            return False
        if code(exc) != "ResourceNotFoundException":
            raise RuntimeError(f"cannot delete ACM certificate {arn}: {describe(exc)}") from None
    LOG.info("Delete %s: deleted", arn)
    return True
