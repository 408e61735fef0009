"""Handler tests run the Lambda modules against a real moto_server behind StrictAWS, as the CDK Provider would."""

from __future__ import annotations

import itertools

import pytest
from handler_support import REGION, Resource, Secret

from certfleet.testing import MotoServer, StrictAWS

_ids = itertools.count(1)


@pytest.fixture
def aws(moto_server: MotoServer, strict_aws: StrictAWS, monkeypatch: pytest.MonkeyPatch) -> StrictAWS:
    """A clean AWS for one test: moto and the strict layer reset (1 import/s/region, no lag), env pointed at it."""
    moto_server.reset()
    strict_aws.reset()
    strict_aws.import_rate = 1.0
    strict_aws.replica_lag = 0.0
    strict_aws.replica_lag_reads = 0
    strict_aws.list_page_size = None
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": strict_aws.url, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "CERTFLEET_SECRET_WAIT_SECONDS": "10", "CERTFLEET_IMPORT_RETRY_SECONDS": "30",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return strict_aws


@pytest.fixture
def certificate(aws: StrictAWS) -> Resource:
    import certfleet_import

    return Resource(certfleet_import, "Custom::CertfleetCertificate", f"Cert{next(_ids)}")


@pytest.fixture
def sealed_key(aws: StrictAWS) -> Resource:
    import certfleet_keywriter

    return Resource(certfleet_keywriter, "Custom::CertfleetSealedKey", f"Key{next(_ids)}")


@pytest.fixture
def secret(aws: StrictAWS) -> Secret:
    """A fresh key secret in the test region."""
    return Secret()
