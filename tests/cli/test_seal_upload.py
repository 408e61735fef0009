"""`certfleet seal` and `certfleet upload` against a real moto_server behind StrictAWS."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from cryptography.hazmat.primitives import serialization

from certfleet.material.bundle import spki_sha256
from certfleet.material.demo import DemoPKI, Issued
from certfleet.material.keys import private_pem, write_secret_file
from certfleet.material.sealed import SealedKey
from certfleet.testing import MotoServer, StrictAWS

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))


@dataclass
class Aws:
    url: str
    env: dict[str, str]

    def client(self, service: str, region: str = "us-east-1") -> object:
        return boto3.client(service, endpoint_url=self.url, region_name=region, aws_access_key_id="testing",
                            aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    moto = MotoServer.shared()
    with StrictAWS(moto.url) as strict:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent",
               "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
        env.pop("AWS_PROFILE", None)
        yield Aws(strict.url, env)


@pytest.fixture
def material(tmp_path: Path, pki: DemoPKI, leaf: Issued) -> Path:
    (tmp_path / "cert.pem").write_bytes(leaf.pem())
    (tmp_path / "chain.pem").write_bytes(pki.chain_pem())
    write_secret_file(tmp_path / "private.key", leaf.key_pem())
    return tmp_path


def _run(aws: Aws, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([CERTFLEET, *args], cwd=cwd, capture_output=True, text=True, env=aws.env, check=False)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def _assert_no_key(text: str, issued: Issued) -> None:
    body = "".join(issued.key_pem().decode().splitlines()[1:-1])
    assert "PRIVATE KEY" not in text
    assert not any(body[i : i + 40] in text for i in range(0, len(body) - 40, 40))


@pytest.mark.slow
def test_seal_writes_a_file_kms_can_open_only_with_its_context(aws: Aws, material: Path, leaf: Issued) -> None:
    kms = aws.client("kms")
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]  # type: ignore[attr-defined]
    result = _run(aws, "seal", "--key", "private.key", "--certificate", "cert.pem", "--chain", "chain.pem",
                  "--kms-key", key_arn, "--name", "www.example.com", "--out", "www.sealed", "--endpoint-url",
                  aws.url, cwd=material)
    assert result.returncode == 0, result.stderr
    _assert_no_key(result.stdout + result.stderr, leaf)
    sealed = SealedKey.from_file(material / "www.sealed")
    assert sealed.kms_key_arn == key_arn and sealed.region == "us-east-1"
    assert sealed.encryption_context == {"certfleet:certificate": "www.example.com"}
    assert sealed.spki_sha256 == spki_sha256(leaf.key.public_key())
    assert sealed.key_algorithm == "RSA_2048"
    text = (material / "www.sealed").read_text()
    _assert_no_key(text, leaf)
    opened = kms.decrypt(CiphertextBlob=sealed.ciphertext,  # type: ignore[attr-defined]
                         EncryptionContext={"certfleet:certificate": "www.example.com"})
    assert b"-----" not in opened["Plaintext"]  # DER PKCS#8, not PEM
    with pytest.raises(Exception, match="InvalidCiphertext"):
        kms.decrypt(CiphertextBlob=sealed.ciphertext,  # type: ignore[attr-defined]
                    EncryptionContext={"certfleet:certificate": "api.example.com"})
    again = _run(aws, "seal", "--key", "private.key", "--kms-key", key_arn, "--name", "www.example.com",
                 "--out", "www.sealed", "--endpoint-url", aws.url, cwd=material)
    assert again.returncode == 1 and "already exists" in again.stderr and "--force" in again.stderr


def test_seal_refuses_a_key_that_does_not_match(aws: Aws, material: Path, pki: DemoPKI) -> None:
    stranger = pki.leaf(("www.example.com",))
    (material / "other.pem").write_bytes(stranger.pem())
    result = _run(aws, "seal", "--key", "private.key", "--certificate", "other.pem", "--kms-key",
                  "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
                  "--name", "www.example.com", "--out", "x.sealed", "--endpoint-url", aws.url, cwd=material)
    assert result.returncode == 1
    assert "key-mismatch" in result.stdout + result.stderr
    assert not (material / "x.sealed").exists()


def test_seal_with_an_unknown_kms_key_is_one_sentence(aws: Aws, material: Path) -> None:
    result = _run(aws, "seal", "--key", "private.key", "--kms-key", "alias/does-not-exist", "--name", "www",
                  "--out", "x.sealed", "--region", "us-east-1", "--endpoint-url", aws.url, cwd=material)
    assert result.returncode == 1
    assert "KMS Encrypt: AWS answered" in result.stderr and "NotFound" in result.stderr


@pytest.mark.slow
def test_upload_creates_then_updates_then_leaves_alone(aws: Aws, material: Path, leaf: Issued, pki: DemoPKI) -> None:
    name = f"production/ssl/private-key-{os.getpid()}"
    first = _run(aws, "upload", "--secret-name", name, "--key", "private.key", "--certificate", "cert.pem",
                 "--replica-region", "eu-west-1", "--replica-region", "ap-northeast-1", "--endpoint-url", aws.url,
                 cwd=material)
    assert first.returncode == 0, first.stderr
    _assert_no_key(first.stdout + first.stderr, leaf)
    assert "secret created: arn:aws:secretsmanager:us-east-1:" in first.stdout
    version = first.stdout.split("version id: ")[1].split()[0]
    sm = aws.client("secretsmanager")
    stored = sm.get_secret_value(SecretId=name)  # type: ignore[attr-defined]
    assert stored["VersionId"] == version
    assert stored["SecretString"] == private_pem(leaf.key).decode()
    regions = {r["Region"] for r in sm.describe_secret(SecretId=name)["ReplicationStatus"]}  # type: ignore[attr-defined]
    assert regions == {"eu-west-1", "ap-northeast-1"}

    same = _run(aws, "upload", "--secret-name", name, "--key", "private.key", "--endpoint-url", aws.url,
                cwd=material)
    assert same.returncode == 0 and "unchanged" in same.stdout and f"version id: {version}" in same.stdout

    renewed = pki.leaf(("www.example.com",))
    write_secret_file(material / "new.key", renewed.key_pem())
    updated = _run(aws, "upload", "--secret-name", name, "--key", "new.key", "--replica-region", "us-west-2",
                   "--endpoint-url", aws.url, cwd=material)
    assert updated.returncode == 0 and "secret updated" in updated.stdout
    assert sm.get_secret_value(SecretId=name)["SecretString"] == private_pem(renewed.key).decode()  # type: ignore[attr-defined]
    regions = {r["Region"] for r in sm.describe_secret(SecretId=name)["ReplicationStatus"]}  # type: ignore[attr-defined]
    assert regions == {"eu-west-1", "ap-northeast-1", "us-west-2"}


def test_upload_without_credentials_says_so(material: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
               AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    result = subprocess.run([CERTFLEET, "upload", "--secret-name", "x", "--key", "private.key",
                             "--endpoint-url", "http://127.0.0.1:9"], cwd=material, capture_output=True, text=True,
                            env=env, check=False)
    assert result.returncode == 1
    assert "no AWS credentials" in result.stderr and "Traceback" not in result.stderr


def test_sealed_json_round_trips_and_rejects_tampering(tmp_path: Path, leaf: Issued) -> None:
    sealed = SealedKey("arn:aws:kms:eu-west-1:123456789012:key/abc-123", "eu-west-1",
                       {"certfleet:certificate": "www"}, spki_sha256(leaf.key.public_key()), "RSA_2048", b"\x01" * 32)
    assert SealedKey.from_json(sealed.to_json()) == sealed
    data = json.loads(sealed.to_json())
    data["region"] = "us-east-1"
    with pytest.raises(Exception, match="does not match the KMS key's region"):
        SealedKey.from_json(json.dumps(data))
    data = json.loads(sealed.to_json())
    data["ciphertext"] = base64.b64encode(b"x").decode() + "!"
    with pytest.raises(Exception, match="not base64"):
        SealedKey.from_json(json.dumps(data))


# ------------------------------------------------------------------------------------- issue 10 and 15 defects
def test_seal_never_writes_through_a_link(aws: Aws, material: Path) -> None:
    key_arn = aws.client("kms").create_key()["KeyMetadata"]["Arn"]  # type: ignore[attr-defined]
    (material / "www.sealed").symlink_to(material / "elsewhere.json")  # dangling
    result = _run(aws, "seal", "--key", "private.key", "--kms-key", key_arn, "--name", "www",
                  "--out", "www.sealed", "--force", "--endpoint-url", aws.url, cwd=material)
    assert result.returncode == 1
    assert "[output-is-link]" in result.stderr
    assert not (material / "elsewhere.json").exists()


def _json_secret(aws: Aws, name: str, key_text: str, leaf: Issued, pki: DemoPKI, **kwargs: str) -> str:
    value = json.dumps({"private_key": key_text, "certificate": leaf.pem().decode(), "chain": pki.chain_pem().decode(),
                        "owner": "team-web"})
    sm = aws.client("secretsmanager")
    return str(sm.create_secret(Name=name, SecretString=value, **kwargs)["VersionId"])  # type: ignore[attr-defined]


def test_upload_of_the_same_key_leaves_a_json_secret_alone(aws: Aws, material: Path, leaf: Issued,
                                                           pki: DemoPKI) -> None:
    name = f"json/same-{os.getpid()}"
    traditional = leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption()).decode()  # PKCS#1: same key, other text
    version = _json_secret(aws, name, traditional, leaf, pki)
    before = aws.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]  # type: ignore[attr-defined]
    result = _run(aws, "upload", "--secret-name", name, "--key", "private.key", "--endpoint-url", aws.url,
                  cwd=material)
    assert result.returncode == 0, result.stderr
    assert "unchanged" in result.stdout and f"version id: {version}" in result.stdout
    stored = aws.client("secretsmanager").get_secret_value(SecretId=name)  # type: ignore[attr-defined]
    assert stored["VersionId"] == version and stored["SecretString"] == before


def test_upload_of_a_new_key_keeps_the_json_shape_and_fields(aws: Aws, material: Path, leaf: Issued,
                                                            pki: DemoPKI) -> None:
    name = f"json/renew-{os.getpid()}"
    _json_secret(aws, name, private_pem(leaf.key).decode(), leaf, pki)
    renewed = pki.leaf(("www.example.com",))
    write_secret_file(material / "new.key", renewed.key_pem())
    (material / "new.pem").write_bytes(renewed.pem())
    result = _run(aws, "upload", "--secret-name", name, "--key", "new.key", "--certificate", "new.pem", "--chain",
                  "chain.pem", "--endpoint-url", aws.url, cwd=material)
    assert result.returncode == 0, result.stderr
    assert "secret updated" in result.stdout
    _assert_no_key(result.stdout + result.stderr, renewed)
    stored = json.loads(aws.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])  # type: ignore[attr-defined]
    assert list(stored) == ["private_key", "certificate", "chain", "owner"]
    assert stored["private_key"] == private_pem(renewed.key).decode()
    assert stored["certificate"] == renewed.pem().decode() and stored["owner"] == "team-web"


@pytest.mark.slow
def test_upload_refuses_a_kms_key_the_secret_does_not_use(aws: Aws, material: Path) -> None:
    kms = aws.client("kms")
    first = kms.create_key()["KeyMetadata"]["Arn"]  # type: ignore[attr-defined]
    other = kms.create_key()["KeyMetadata"]["Arn"]  # type: ignore[attr-defined]
    alias = f"alias/upload-{os.getpid()}"
    kms.create_alias(AliasName=alias, TargetKeyId=first)  # type: ignore[attr-defined]
    name = f"kms/secret-{os.getpid()}"
    created = _run(aws, "upload", "--secret-name", name, "--key", "private.key", "--kms-key", first,
                   "--endpoint-url", aws.url, cwd=material)
    assert created.returncode == 0, created.stderr
    wrong = _run(aws, "upload", "--secret-name", name, "--key", "private.key", "--kms-key", other,
                 "--endpoint-url", aws.url, cwd=material)
    assert wrong.returncode == 1
    assert "[secret-kms-key-differs]" in wrong.stderr and f"not --kms-key {other}" in wrong.stderr
    same = _run(aws, "upload", "--secret-name", name, "--key", "private.key", "--kms-key", alias,
                "--endpoint-url", aws.url, cwd=material)
    assert same.returncode == 0 and "unchanged" in same.stdout  # the alias names the secret's own key


def test_upload_to_a_secret_scheduled_for_deletion_says_restore_it(aws: Aws, material: Path) -> None:
    name = f"deleted/secret-{os.getpid()}"
    sm = aws.client("secretsmanager")
    sm.create_secret(Name=name, SecretString="placeholder")  # type: ignore[attr-defined]
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)  # type: ignore[attr-defined]
    result = _run(aws, "upload", "--secret-name", name, "--key", "private.key", "--endpoint-url", aws.url,
                  cwd=material)
    assert result.returncode == 1
    assert "[secret-scheduled-for-deletion]" in result.stderr and "restore-secret" in result.stderr
    assert "permissions" not in result.stderr
