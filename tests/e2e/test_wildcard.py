"""Wildcard-first certificates ("*.example.com" first) deploy end to end in the rehearsal against moto_server +
StrictAWS (which refuses a secret name with '*', as Secrets Manager does): with a sealed key and with
``KeySource.secret``, in a standalone CertificateFleet and in a FleetGroup."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import boto3
import pytest
from aws_cdk import App
from sealing_support import seal_with_kms

from certfleet import CertificateBundle, CertificateFleet, FleetGroup, KeySource
from certfleet.key_source import KeySource as KeySourceType
from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import MotoServer, StrictAWS
from certfleet.testing.rehearsal import Rehearsal

ACCOUNT = "123456789012"
NAMES = ("*.example.com", "example.com")
REGIONS = ["us-east-1", "eu-west-1"]
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
       "CERTFLEET_SECRET_WAIT_SECONDS": "30"}


pytestmark = pytest.mark.slow  # synth and deployments against moto_server: seconds each


@pytest.fixture
def aws() -> Iterator[StrictAWS]:
    moto = MotoServer.shared()
    moto.reset()
    with mock.patch.dict(os.environ, ENV), StrictAWS(moto.url) as strict:
        yield strict


@pytest.fixture(scope="module")
def wildcard(pki: DemoPKI) -> Issued:
    return pki.leaf(NAMES, days=200)


def sealed_key(aws: StrictAWS, leaf: Issued, folder: Path) -> KeySourceType:
    """The key sealed with moto's KMS, as ``certfleet seal --name wildcard.example.com`` writes it (the sealed-key
    name refuses '*': material/sealed.py)."""
    kms = boto3.client("kms", endpoint_url=aws.url, region_name="us-east-1")
    return KeySource.sealed(seal_with_kms(kms, leaf, folder / "wildcard.key.sealed", name="wildcard.example.com",
                                          why="wildcard e2e"))


def secret_key(aws: StrictAWS, leaf: Issued, folder: Path) -> KeySourceType:
    """The key as the seed stores it: ``aws secretsmanager create-secret --secret-string file://private.key``,
    replicated to the fleet's other region."""
    sm = boto3.client("secretsmanager", endpoint_url=aws.url, region_name="us-east-1")
    sm.create_secret(Name="production/ssl/wildcard-key", SecretString=leaf.key_pem().decode(),
                     AddReplicaRegions=[{"Region": "eu-west-1"}])
    return KeySource.secret("production/ssl/wildcard-key")


def standalone(app: App, bundle: CertificateBundle, key: KeySourceType) -> None:
    CertificateFleet(app, "Certificates", bundle=bundle, key=key, account=ACCOUNT, regions=["eu-west-1"])


def grouped(app: App, bundle: CertificateBundle, key: KeySourceType) -> None:
    group = FleetGroup(app, "Certs", account=ACCOUNT, regions=["eu-west-1"])
    group.add_fleet("Wild", bundle=bundle, key=key)


Key = Callable[[StrictAWS, Issued, Path], KeySourceType]
Layout = Callable[[App, CertificateBundle, KeySourceType], None]


@pytest.mark.parametrize("layout", [standalone, grouped], ids=["fleet", "group"])
@pytest.mark.parametrize("key", [sealed_key, secret_key], ids=["sealed", "secret"])
def test_a_wildcard_first_certificate_deploys_and_destroys(
    aws: StrictAWS, pki: DemoPKI, wildcard: Issued, tmp_path: Path, *, layout: Layout, key: Key,
) -> None:
    """GIVEN a certificate for ("*.example.com", "example.com") WHEN its fleet is rehearsed THEN ACM holds it once in
    us-east-1 and once in eu-west-1, wildcard name first, and every secret the deploy made has a name Secrets Manager
    accepts; destroy empties ACM."""
    bundle = CertificateBundle.from_pem(wildcard.pem().decode(), pki.chain_pem().decode())
    app = App(outdir=str(tmp_path / "cdk.out"))
    layout(app, bundle, key(aws, wildcard, tmp_path))
    app.synth()

    rehearsal = Rehearsal(aws.url)
    rehearsal.deploy(tmp_path / "cdk.out")
    held = rehearsal.inventory(REGIONS)
    assert {region: len(rows) for region, rows in held.items()} == dict.fromkeys(REGIONS, 1)
    for region, (row,) in held.items():
        assert row["domain"] == "*.example.com", region
        assert set(row["names"]) == set(NAMES), region
    assert len(rehearsal.certificate_arns()) == len(REGIONS)

    rehearsal.destroy()
    assert rehearsal.inventory(REGIONS) == {region: [] for region in REGIONS}
