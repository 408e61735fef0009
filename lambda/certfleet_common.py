"""Helpers shared by certfleet's custom-resource handlers: standard library and boto3 only."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import random
import re
import textwrap
import time
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

T = TypeVar("T")
LOG = logging.getLogger("certfleet")
LOG.setLevel(logging.INFO)
for _chatty in ("boto3", "botocore", "urllib3"):  # their DEBUG lines print request and response bodies: keys
    logging.getLogger(_chatty).setLevel(logging.WARNING)
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.+?)-----END \1-----", re.S)


def region() -> str:
    """The function's own region (Lambda sets AWS_REGION)."""
    return os.environ.get("AWS_REGION") or os.environ["AWS_DEFAULT_REGION"]


def client(service: str, region_name: str | None = None, *, retry: bool = True) -> Any:
    """A boto3 client made now; ``retry=False`` leaves every retry to the caller's own loop."""
    retries: Any = {"mode": "standard", "max_attempts": 5} if retry else {"total_max_attempts": 1}
    make: Callable[..., Any] = boto3.client
    return make(service, region_name=region_name or region(), config=Config(retries=retries))


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


def backoff(action: Callable[[], T], retry_if: Callable[[ClientError], bool], budget: float, what: str) -> T:
    """Run ``action``; retry it with exponential backoff and full jitter while ``retry_if`` and within ``budget``."""
    deadline = time.monotonic() + budget
    attempt = 0
    while True:
        try:
            return action()
        except ClientError as exc:
            delay = random.uniform(0, min(8.0, 0.5 * 2**attempt))  # noqa: S311 - jitter, not cryptography
            if not retry_if(exc) or time.monotonic() + delay > deadline:
                raise
            LOG.info("%s: %s; retrying in %.1f s", what, code(exc), delay)
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
