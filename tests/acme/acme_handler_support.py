"""Helpers for the ACME handler tests: a test DNS with Route 53's shape (publish, insync, withdraw) on challtestsrv,
the issuer's secrets and properties, and the fleet's certificate imported per region as the importer does."""

from __future__ import annotations

import collections
import json
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from acme_support import ChallTestSrv
from cryptography import x509
from cryptography.hazmat.primitives import hashes

_ROOT = Path(__file__).resolve().parents[2]
for _folder in (_ROOT / "tests" / "handler", _ROOT / "constructs" / "certfleet" / "_lambda"):
    if str(_folder) not in sys.path:  # handler_support; certfleet_contract, at the top level as the ACME asset has it
        sys.path.insert(0, str(_folder))

from handler_support import REGION, boto  # noqa: E402 - needs tests/handler on sys.path

from certfleet._lambda.certfleet_contract import (  # noqa: E402 - after the handlers' folders, as the others
    ACME_SOURCE,
    FLEET_TAG,
    ID_TAG,
    MANAGED_BY,
    MANAGED_BY_TAG,
    SOURCE_TAG,
)

FLEET = "Certs"
CERT_ID = "Certs/Www"
TAGS = [{"Key": MANAGED_BY_TAG, "Value": MANAGED_BY}, {"Key": FLEET_TAG, "Value": FLEET},
        {"Key": ID_TAG, "Value": CERT_ID}, {"Key": SOURCE_TAG, "Value": ACME_SOURCE}]
"""The tags the construct gives an ACME source's certificate in every region."""


class ChallDns:
    """The handlers' Dns (Route53Dns's shape) on challtestsrv: each publish is one change, in sync after `lag`
    insync questions."""

    def __init__(self, server: ChallTestSrv, lag: int = 1) -> None:
        self.server = server
        self.lag = lag
        self.published: list[dict[str, list[str]]] = []
        self.withdrawn: list[dict[str, list[str]]] = []
        self.asked: collections.Counter[str] = collections.Counter()

    def publish_records(self, records: Mapping[str, Sequence[str]]) -> list[str]:
        self.published.append({name: list(values) for name, values in records.items()})
        for name, values in records.items():
            self.server.publish(name, list(values))
        return [f"C{len(self.published)}"]

    def insync(self, change_ids: Sequence[str]) -> bool:
        for change in change_ids:
            self.asked[change] += 1
        return all(self.asked[change] > self.lag for change in change_ids)

    def withdraw_records(self, records: Mapping[str, Sequence[str]]) -> None:
        self.withdrawn.append({name: list(values) for name, values in records.items()})
        for name in records:
            self.server.withdraw(name)


def new_secret(label: str, value: str | None = None) -> str:
    """A secret in the test region, created empty (as the construct creates the account secret) or with `value`."""
    extra = {"SecretString": value} if value is not None else {}
    return str(boto("secretsmanager").create_secret(Name=f"certfleet/acme/test/{label}-{uuid.uuid4().hex[:8]}",
                                                    **extra)["ARN"])


def issuer_props(directory_url: str, domains: list[str], key_type: str = "ec-p256", **extra: str) -> dict[str, Any]:
    """ResourceProperties of Custom::CertfleetAcmeCertificate with fresh material and account secrets."""
    return {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:Certs-AcmeIssuer",
        "DirectoryUrl": directory_url, "Domains": domains, "KeyType": key_type,
        "HostedZones": [{"Id": "Z0TEST", "Name": "example.com."}],
        "MaterialSecretId": new_secret("material"), "AccountSecretId": new_secret("account"),
        "Fleet": FLEET, "Contact": "mailto:ops@example.com", **extra,
    }


def current(secret_id: str) -> tuple[dict[str, Any], str]:
    """AWSCURRENT of a secret: its JSON and version id."""
    answer = boto("secretsmanager").get_secret_value(SecretId=secret_id)
    return json.loads(answer["SecretString"]), str(answer["VersionId"])


def version_count(secret_id: str) -> int:
    return len(boto("secretsmanager").list_secret_version_ids(SecretId=secret_id)["Versions"])


def fingerprint_of(pem: str) -> str:
    return x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()


def import_in(regions: Sequence[str], material: dict[str, Any]) -> dict[str, str]:
    """The fleet's certificate imported and tagged in each region, as the importer does at the first deploy."""
    arns = {}
    for region in regions:
        arns[region] = str(boto("acm", region).import_certificate(
            Certificate=material["certificate"].encode(), PrivateKey=material["private_key"].encode(),
            CertificateChain=material["chain"].encode(), Tags=TAGS)["CertificateArn"])
    return arns


def held(arn: str) -> str:
    """The SHA-256 fingerprint of the leaf ACM holds at `arn`."""
    return fingerprint_of(boto("acm", arn.split(":")[3]).get_certificate(CertificateArn=arn)["Certificate"])


__all__ = ["CERT_ID", "FLEET", "REGION", "TAGS", "ChallDns", "current", "fingerprint_of", "held",
           "import_in", "issuer_props", "new_secret", "version_count"]
