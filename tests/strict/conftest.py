"""Strict-layer tests: each rule refused through a plain boto3 client, and the same call passing when valid."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config

from certfleet.testing import MotoServer, StrictAWS


@pytest.fixture
def aws(moto_server: MotoServer, strict_aws: StrictAWS, monkeypatch: pytest.MonkeyPatch) -> StrictAWS:
    """Clean state; no import rate limit unless a test turns it on; credentials that reach nothing real."""
    moto_server.reset()
    strict_aws.reset()
    strict_aws.import_rate = None
    strict_aws.replica_lag = 0.0
    strict_aws.replica_lag_reads = 0
    strict_aws.list_page_size = None
    strict_aws.import_quota = None
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return strict_aws


@pytest.fixture
def client(aws: StrictAWS) -> Callable[..., Any]:
    """``client("acm", "eu-west-1")``: a boto3 client on the strict layer that never retries by itself."""

    def make(service: str, region: str = "eu-west-1") -> Any:
        return boto3.client(
            service, region_name=region, endpoint_url=aws.url, config=Config(retries={"total_max_attempts": 1}),
        )

    return make
