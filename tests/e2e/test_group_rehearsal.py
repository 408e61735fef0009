"""A FleetGroup's shards played against moto_server + StrictAWS: a fleet removed makes a later one move shards,
and its certificate keeps its ARN (adopted, not re-imported); the emptied shard's deletion leaves it in place."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import boto3
import pytest
from aws_cdk import App
from cryptography.hazmat.primitives import serialization
from e2e_support import cfn_lint_errors

from certfleet import CertificateBundle, FleetGroup, KeySource
from certfleet.material.bundle import spki_sha256
from certfleet.material.checks import key_algorithm
from certfleet.material.demo import DemoPKI, Issued
from certfleet.material.sealed import SealedKey, encryption_context
from certfleet.testing import MotoServer, StrictAWS
from certfleet.testing.rehearsal import Rehearsal

ACCOUNT = "123456789012"
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
       "CERTFLEET_SECRET_WAIT_SECONDS": "30"}


pytestmark = pytest.mark.slow  # FleetGroup deployments against moto_server: minutes


@dataclass
class Site:
    id: str
    bundle: CertificateBundle
    sealed: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, ec_pki: DemoPKI) -> Iterator[tuple[StrictAWS, list[Site]]]:
    moto = MotoServer.shared()
    moto.reset()
    folder = tmp_path_factory.mktemp("group-e2e")
    with mock.patch.dict(os.environ, ENV), StrictAWS(moto.url) as aws:
        kms = boto3.client("kms", endpoint_url=aws.url, region_name="us-east-1")
        kms_key = kms.create_key(Description="certfleet sealing (group e2e)")["KeyMetadata"]["Arn"]
        yield aws, [_site(kms, kms_key, ec_pki, name, folder) for name in ("A", "B", "C")]

def _site(kms: object, kms_key: str, pki: DemoPKI, id: str, folder: Path) -> Site:
    """A certificate and its key sealed with moto's KMS, as ``certfleet seal`` writes it."""
    name = f"{id.lower()}.example.com"
    leaf: Issued = pki.leaf((name,), key_type="ec-p256")
    der = leaf.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    blob = kms.encrypt(KeyId=kms_key, Plaintext=der, EncryptionContext=encryption_context(name))  # type: ignore[attr-defined]
    sealed = SealedKey(kms_key_arn=kms_key, region="us-east-1", encryption_context=encryption_context(name),
                       spki_sha256=spki_sha256(leaf.key.public_key()), key_algorithm=key_algorithm(
                           leaf.key.public_key()), ciphertext=bytes(blob["CiphertextBlob"]))
    path = folder / f"{id}.sealed"
    path.write_text(sealed.to_json(), encoding="utf-8")
    return Site(id, CertificateBundle.from_pem(leaf.pem().decode(), pki.chain_pem().decode()), path)


def _synth(sites: list[Site], out: Path) -> FleetGroup:
    """Two outputs reserved per fleet in us-east-1 (its ARN, its key version): max_outputs=4 puts two fleets
    in each us-east-1 shard."""
    app = App(outdir=str(out))
    group = FleetGroup(app, "Certs", account=ACCOUNT, regions=["eu-west-1"], max_outputs=4)
    for site in sites:
        group.add_fleet(site.id, bundle=site.bundle, key=KeySource.sealed(site.sealed))
    app.synth()
    return group


def _by_fleet(rehearsal: Rehearsal) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for region, rows in rehearsal.inventory(["us-east-1", "eu-west-1"]).items():
        for row in rows:
            found.setdefault((row["tags"].get("certfleet:fleet", "?"), region), []).append(row["arn"])
    return found


def test_a_fleet_that_moves_shards_keeps_its_certificate(
    world: tuple[StrictAWS, list[Site]], tmp_path: Path,
) -> None:
    aws, sites = world
    rehearsal = Rehearsal(aws.url)
    first = _synth(sites, tmp_path / "v1")
    assert [[s.fleets for s in first.shards(r)] for r in first.regions] == [[["A", "B"], ["C"]], [["A", "B", "C"]]]
    assert cfn_lint_errors(sorted((tmp_path / "v1").glob("*.template.json"))) == []
    rehearsal.deploy(tmp_path / "v1")
    before = _by_fleet(rehearsal)
    assert sorted(before) == sorted((f"Certs/{s.id}", r) for s in sites for r in ("us-east-1", "eu-west-1"))
    assert all(len(arns) == 1 for arns in before.values())
    c_edge = before[("Certs/C", "us-east-1")][0]
    aws.mark_in_use(c_edge)  # CloudFront serves C's certificate throughout
    imports = aws.calls("acm", "ImportCertificate")

    second = _synth(sites[1:], tmp_path / "v2")  # A is removed: C now fits in the first us-east-1 shard
    assert [[s.fleets for s in second.shards(r)] for r in second.regions] == [[["B", "C"]], [["B", "C"]]]
    events = rehearsal.deploy(tmp_path / "v2")
    assert aws.calls("acm", "ImportCertificate") == imports, "nothing re-imported"
    after = _by_fleet(rehearsal)
    assert {k: v for k, v in after.items() if k[0] != "Certs/A"} == {k: v for k, v in before.items()
                                                                      if k[0] != "Certs/A"}
    assert ("Certs/A", "us-east-1") not in after and ("Certs/A", "eu-west-1") not in after, "A's are deleted"
    assert any(e.stack == "Certs-us-east-1" and e.action == "create" and e.physical_id == c_edge for e in events)

    # cdk deploy leaves the emptied shard; deleting it (cdk destroy Certs-us-east-1-2) leaves C's certificate
    rehearsal.destroy_stack("Certs-us-east-1-2")
    assert _by_fleet(rehearsal) == after
    tags = {row["arn"]: row["tags"] for row in rehearsal.inventory(["us-east-1"])["us-east-1"]}
    assert "certfleet:retired" not in tags[c_edge]
    assert tags[c_edge]["certfleet:stack"].split("/")[1] == "Certs-us-east-1"
    aws.release(c_edge)
    rehearsal.destroy()
    assert _by_fleet(rehearsal) == {}
