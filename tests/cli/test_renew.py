"""`certfleet renew` against pebble (the CA), moto's Route 53 behind StrictAWS (DNS-01, fed to pebble-challtestsrv by
route53_bridge) and moto's KMS (--seal)."""

from __future__ import annotations

import os
import stat
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from acme_support import ChallTestSrv, Pebble
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from material_support import Run, assert_clean, cli
from route53_bridge import Route53Bridge

from certfleet.material.bundle import spki_sha256
from certfleet.material.sealed import SealedKey
from certfleet.testing import MotoServer, StrictAWS

ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}


@dataclass
class Renewal:
    """One test's world: a hosted zone for a fresh domain, served to the CA through the bridge."""

    aws: StrictAWS
    ca: Pebble
    zone_id: str
    domain: str
    folder: Path

    def args(self, *extra: str, domains: tuple[str, ...] = ()) -> list[str]:
        names = [a for d in (domains or (f"www.{self.domain}", self.domain)) for a in ("--domain", d)]
        return ["renew", "--directory-url", self.ca.directory_url, *names, "--dns", "route53",
                "--key-type", "ec-p256", "--out", str(self.folder / "certs"), "--endpoint-url", self.aws.url,
                "--ca-bundle", str(self.ca.ca_bundle), *extra]

    def run(self, capsys: pytest.CaptureFixture[str], *extra: str) -> Run:
        return cli(capsys, *self.args(*extra))

    def client(self, service: str) -> Any:
        make: Any = boto3.client
        return make(service, endpoint_url=self.aws.url, region_name="us-east-1")


def _world(*, aws: StrictAWS, moto: MotoServer, dns: ChallTestSrv, ca: Pebble, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Renewal]:
    moto.reset()
    aws.reset()
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    domain = f"renew-{uuid.uuid4().hex[:8]}.example.com"
    route53 = boto3.client("route53", endpoint_url=aws.url, region_name="us-east-1")
    zone = route53.create_hosted_zone(Name=domain, CallerReference=str(uuid.uuid4()))["HostedZone"]
    with Route53Bridge(aws, dns, [zone["Id"]]):
        yield Renewal(aws, ca, str(zone["Id"]), domain, tmp_path)


@pytest.fixture
def world(*, strict_aws: StrictAWS, moto_server: MotoServer, challtestsrv: ChallTestSrv, pebble: Pebble,
          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Renewal]:
    yield from _world(aws=strict_aws, moto=moto_server, dns=challtestsrv, ca=pebble, tmp_path=tmp_path,
                      monkeypatch=monkeypatch)


@pytest.fixture
def eab_world(*, strict_aws: StrictAWS, moto_server: MotoServer, challtestsrv: ChallTestSrv, eab_pebble: Pebble,
              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Renewal]:
    yield from _world(aws=strict_aws, moto=moto_server, dns=challtestsrv, ca=eab_pebble, tmp_path=tmp_path,
                      monkeypatch=monkeypatch)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _names(certificate: x509.Certificate) -> list[str]:
    return sorted(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                  .get_values_for_type(x509.DNSName))


# ---------------------------------------------------------------------------------------------------- orders
def test_a_plain_order_writes_certificate_chain_and_a_0400_key(world: Renewal, capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    account = world.folder / "config" / "account.json"  # its folder is created too
    run = world.run(capsys, "--account-key", str(account), "--contact", "mailto:ops@example.com", "--json")

    assert run.code == 0, run.text
    certs = world.folder / "certs"
    assert sorted(p.name for p in certs.iterdir()) == ["cert.pem", "chain.pem", "private.key"]
    assert _mode(certs / "private.key") == 0o400 and _mode(account) == 0o600
    assert not _mode(certs / "cert.pem") & 0o111
    leaf = x509.load_pem_x509_certificate((certs / "cert.pem").read_bytes())
    chain = x509.load_pem_x509_certificates((certs / "chain.pem").read_bytes())
    key = serialization.load_pem_private_key((certs / "private.key").read_bytes(), password=None)
    assert _names(leaf) == sorted([world.domain, f"www.{world.domain}"])
    assert spki_sha256(key.public_key()) == spki_sha256(leaf.public_key())
    leaf.verify_directly_issued_by(chain[0])
    summary = run.json()
    assert summary["ok"] is True and summary["key_type"] == "ec-p256"
    assert summary["files"] == {"certificate": str(certs / "cert.pem"), "chain": str(certs / "chain.pem"),
                                "private_key": str(certs / "private.key"), "sealed_key": None}
    assert summary["account"]["registered"] is True and summary["account"]["file"] == str(account)
    assert summary["not_after"] == leaf.not_valid_after_utc.isoformat()
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert summary["renew_by"] == (leaf.not_valid_before_utc + lifetime * 2 / 3).isoformat()
    assert_clean(run.text, [key])
    # the challenge records are gone once the order is done
    sets = world.client("route53").list_resource_record_sets(HostedZoneId=world.zone_id)["ResourceRecordSets"]
    assert [s for s in sets if s["Type"] == "TXT"] == []

    again = world.run(capsys, "--account-key", str(account))  # a rerun reuses the account and replaces the files

    assert again.code == 0, again.text
    assert "registered ACME account" not in again.out
    assert "wrote" in again.out and "renew by" in again.out and "at the latest" in again.out
    renewed = x509.load_pem_x509_certificate((certs / "cert.pem").read_bytes())
    assert renewed.serial_number != leaf.serial_number
    new_key = serialization.load_pem_private_key((certs / "private.key").read_bytes(), password=None)
    assert spki_sha256(new_key.public_key()) == spki_sha256(renewed.public_key()) != spki_sha256(key.public_key())
    assert _mode(certs / "private.key") == 0o400
    assert_clean(again.text, [key, new_key])


def test_zones_are_found_by_name_and_a_missing_one_is_a_sentence(world: Renewal,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, *world.args(domains=("www.other-domain.example.org",)))

    assert run.code == 1, run.text
    assert "no public Route 53 hosted zone of this account holds www.other-domain.example.org" in run.err
    assert "--hosted-zone-id" in run.err
    assert not (world.folder / "certs").exists()


def test_seal_writes_a_kms_sealed_key_and_no_plaintext(world: Renewal, capsys: pytest.CaptureFixture[str]) -> None:
    kms = world.client("kms")
    key_arn = kms.create_key(Description="certfleet renew test")["KeyMetadata"]["Arn"]

    run = world.run(capsys, "--seal", "--kms-key", key_arn, "--hosted-zone-id", world.zone_id, "--json")

    assert run.code == 0, run.text
    certs = world.folder / "certs"
    sealed_name = f"www.{world.domain}.key.sealed"
    assert sorted(p.name for p in certs.iterdir()) == ["cert.pem", "chain.pem", sealed_name]
    leaf = x509.load_pem_x509_certificate((certs / "cert.pem").read_bytes())
    sealed = SealedKey.from_json((certs / sealed_name).read_text())
    assert sealed.kms_key_arn == key_arn and sealed.encryption_context == {"certfleet:certificate":
                                                                            f"www.{world.domain}"}
    assert sealed.spki_sha256 == spki_sha256(leaf.public_key()) and sealed.key_algorithm == "EC_prime256v1"
    plaintext = kms.decrypt(CiphertextBlob=sealed.ciphertext, EncryptionContext=sealed.encryption_context)
    key = serialization.load_der_private_key(plaintext["Plaintext"], password=None)
    assert spki_sha256(key.public_key()) == sealed.spki_sha256
    assert run.json()["files"]["private_key"] is None and run.json()["kms_key_arn"] == key_arn
    assert_clean(run.text, [key])
    for path in (p for p in world.folder.rglob("*") if p.is_file()):  # no plaintext key anywhere
        assert b"PRIVATE KEY" not in path.read_bytes(), path


def test_eab_required_and_missing_exits_1_with_a_sentence(eab_world: Renewal,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    run = eab_world.run(capsys)

    assert run.code == 1, run.text
    assert "requires External Account Binding" in run.err and "--eab-key-id" in run.err and "--eab-hmac-env" in run.err
    assert not (eab_world.folder / "certs").exists()


def test_eab_from_the_environment_registers_once(eab_world: Renewal, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (kid, hmac_key), = eab_world.ca.eab_keys.items()
    account = eab_world.folder / "account.json"
    monkeypatch.setenv("TEST_EAB_HMAC", hmac_key)

    first = eab_world.run(capsys, "--eab-key-id", kid, "--eab-hmac-env", "TEST_EAB_HMAC", "--account-key",
                          str(account))
    monkeypatch.delenv("TEST_EAB_HMAC")
    second = eab_world.run(capsys, "--account-key", str(account))  # the kept account needs no EAB

    assert first.code == 0, first.text
    assert hmac_key not in first.text
    assert second.code == 0, second.text
    assert "registered ACME account" in first.out and "registered ACME account" not in second.out


def test_eab_variable_unset_is_a_sentence_before_the_ca_is_asked(eab_world: Renewal,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    run = eab_world.run(capsys, "--eab-key-id", "kid-1", "--eab-hmac-env", "NO_SUCH_VARIABLE_SET")

    assert run.code == 1, run.text
    assert "NO_SUCH_VARIABLE_SET" in run.err and "is not set" in run.err
    assert eab_world.aws.calls("route53", "ListHostedZonesByName") == 0


# ------------------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("target", ["private.key", "cert.pem"])
def test_a_symlinked_output_is_refused_before_ordering(world: Renewal, capsys: pytest.CaptureFixture[str],
                                                       target: str) -> None:
    certs = world.folder / "certs"
    certs.mkdir()
    elsewhere = world.folder / "elsewhere"
    elsewhere.write_text("not yours\n")
    (certs / target).symlink_to(elsewhere)

    run = world.run(capsys)

    assert run.code == 1, run.text
    assert "symbolic link" in run.err and target in run.err
    assert elsewhere.read_text() == "not yours\n" and (certs / target).is_symlink()
    assert world.aws.calls("route53", "ListHostedZonesByName") == 0  # refused before anything is asked


@pytest.mark.parametrize("argv", [
    ["--key-type", "ed25519"],
    ["--key-type", "rsa-1024"],
    ["--dns", "cloudflare"],
    ["--eab-key-id", "kid-1"],  # without --eab-hmac-env
    ["--seal"],  # without --kms-key
    ["--kms-key", "alias/x"],  # without --seal
])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]) -> None:
    base = {"--directory-url": "https://127.0.0.1:1/dir", "--domain": "www.example.com", "--dns": "route53",
            "--key-type": "ec-p256", "--out": str(tmp_path / "certs")}
    for flag in argv[::2]:  # the option under test replaces the valid one
        base.pop(flag, None)
    args = [a for pair in base.items() for a in pair]
    run = cli(capsys, "renew", *args, *argv)

    assert run.code == 2, run.text
    assert "usage: certfleet renew" in run.err
    assert not (tmp_path / "certs").exists()


def test_without_the_acme_extra_says_what_to_install(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "acme", None)  # `import acme` fails as if it were not installed
    run = cli(capsys, "renew", "--directory-url", "https://127.0.0.1:1/dir", "--domain", "www.example.com",
              "--dns", "route53", "--key-type", "ec-p256", "--out", str(tmp_path / "certs"))

    assert run.code == 1, run.text
    assert "pip install 'certfleet[acme]'" in run.err


def test_help_names_every_option_and_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "renew", "--help")

    assert run.code == 0
    flat = " ".join(run.out.split())
    for option in ("--directory-url", "--domain", "--dns", "--hosted-zone-id", "--key-type", "--eab-key-id",
                   "--eab-hmac-env", "--contact", "--account-key", "--out", "--seal", "--kms-key", "--name",
                   "--region", "--profile", "--endpoint-url", "--ca-bundle", "--json", "exit status: 0"):
        assert option in flat, option
    assert "ec-p256" in flat and "rsa-4096" in flat


def test_seal_with_a_key_kms_refuses_fails_before_ordering(world: Renewal, capsys: pytest.CaptureFixture[str]) -> None:
    run = world.run(capsys, "--seal", "--kms-key", "alias/no-such-key", "--region", "eu-west-1")

    assert run.code == 1, run.text
    assert "KMS Encrypt (checked before ordering)" in run.err and "alias/no-such-key" in run.err
    assert world.aws.calls("route53", "ChangeResourceRecordSets") == 0  # no challenge published: no order placed
    assert not (world.folder / "certs").exists()
