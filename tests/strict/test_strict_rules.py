"""StrictAWS refuses, through a plain boto3 client, the tag, secret and KMS rules that real AWS enforces and moto
does not; each valid call passes. Sources: /tmp/notes FACTS proposals (botocore models, AWS API references)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from certfleet.material.demo import Issued
from certfleet.testing import StrictAWS

Client = Callable[..., Any]
REGION = "eu-west-1"


def refused(code: str, call: Callable[..., Any], **kwargs: Any) -> str:
    """Assert that ``call(**kwargs)`` fails with AWS error ``code``; return the message."""
    with pytest.raises(ClientError) as failure:
        call(**kwargs)
    error = failure.value.response["Error"]
    assert error["Code"] == code, error
    return str(error["Message"])


def tags(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in pairs]


# ------------------------------------------------------------------------------------------------- ACM tags
@pytest.mark.parametrize("bad", [
    tags(("certfleet:names", "*.example.com")),           # '*' is outside ACM's tag pattern
    tags(("certfleet:id", "Certs/Www?")),
    tags(("k" * 129, "v")),
    tags(("certfleet:id", "v" * 257)),
])
def test_acm_tag_characters_and_lengths_are_refused_on_import(client: Client, leaf: Issued,
                                                              bad: list[dict[str, str]]) -> None:
    """GIVEN a tag with a character outside [\\p{L}\\p{Z}\\p{N}_.:/=+-@], a key over 128, a value over 256
    (botocore itself refuses an empty key) WHEN imported with it THEN ValidationException."""
    acm = client("acm")
    refused("ValidationException", acm.import_certificate, Certificate=leaf.pem(), PrivateKey=leaf.key_pem(), Tags=bad)
    assert acm.list_certificates(Includes={"keyTypes": ["RSA_2048"]})["CertificateSummaryList"] == []


def test_acm_valid_tags_pass_letters_spaces_numbers_and_punctuation(client: Client, leaf: Issued) -> None:
    """GIVEN tags at the limits, with unicode letters, a space and every allowed punctuation mark WHEN imported
    THEN ACM keeps them."""
    acm = client("acm")
    good = tags(("k" * 128, "v" * 256), ("certfleet:stack", "arn:aws:cloudformation:eu-west-1:1:stack/W-1/x"),
                ("Ünïcode name", "_.:/=+-@ 42"), ("empty", ""))
    arn = acm.import_certificate(Certificate=leaf.pem(), PrivateKey=leaf.key_pem(), Tags=good)["CertificateArn"]
    assert {t["Key"] for t in acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]} == {t["Key"] for t in good}


def test_acm_more_than_50_tags_are_refused(client: Client, leaf: Issued) -> None:
    """GIVEN 51 tags on import, or tags that would take a certificate past 50 WHEN sent THEN TooManyTagsException;
    50 pass."""
    acm = client("acm")
    many = tags(*((f"k{i}", "v") for i in range(51)))
    refused("TooManyTagsException", acm.import_certificate,
            Certificate=leaf.pem(), PrivateKey=leaf.key_pem(), Tags=many)
    arn = acm.import_certificate(Certificate=leaf.pem(), PrivateKey=leaf.key_pem(), Tags=many[:50])["CertificateArn"]
    refused("TooManyTagsException", acm.add_tags_to_certificate, CertificateArn=arn, Tags=tags(("one-more", "v")))
    acm.add_tags_to_certificate(CertificateArn=arn, Tags=tags(("k0", "replaced")))  # same key: still 50


def test_acm_add_tags_refuses_bad_characters_and_the_aws_prefix(client: Client, leaf: Issued) -> None:
    """GIVEN an imported certificate WHEN AddTagsToCertificate brings a '*' or an aws: key THEN refused as ACM does;
    a valid tag is added."""
    acm = client("acm")
    arn = acm.import_certificate(Certificate=leaf.pem(), PrivateKey=leaf.key_pem())["CertificateArn"]
    refused("ValidationException", acm.add_tags_to_certificate, CertificateArn=arn, Tags=tags(("n", "*.example.com")))
    refused("InvalidTagException", acm.add_tags_to_certificate, CertificateArn=arn, Tags=tags(("aws:x", "v")))
    acm.add_tags_to_certificate(CertificateArn=arn, Tags=tags(("certfleet:retired", "2026-12-02T13:00:00Z")))
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == tags(("certfleet:retired",
                                                                              "2026-12-02T13:00:00Z"))


# ------------------------------------------------------------------------------------- Secrets Manager names
@pytest.mark.parametrize("name", ["certfleet/Certificates/*.example.com", "with space", "x" * 513, "tab\tname",
                                  "certfleet/é"])
def test_secret_names_outside_the_allowed_characters_or_length_are_refused(client: Client, name: str) -> None:
    """GIVEN a secret name with '*', a space, a non-ASCII letter or over 512 characters WHEN created
    THEN ValidationException (moto accepts them) and no secret exists."""
    sm = client("secretsmanager")
    refused("ValidationException", sm.create_secret, Name=name, SecretString="x")
    assert sm.list_secrets()["SecretList"] == []


def test_secret_names_of_every_allowed_character_pass(client: Client) -> None:
    """GIVEN names of A-Za-z0-9/_+=.@- at 1 and 512 characters WHEN created THEN they exist."""
    sm = client("secretsmanager")
    for name in ("certfleet/Certs/_.wildcard_.example.com+=@-1", "a", "b" * 512):
        assert sm.create_secret(Name=name, SecretString="x")["Name"] == name


# -------------------------------------------------------------------------------------- Secrets Manager tags
@pytest.mark.parametrize("bad", [
    tags(("aws:owner", "x")), tags(("k" * 128, "v")), tags(("k", "v" * 256)), tags(("names", "*.example.com")),
])
def test_secret_tags_are_refused_as_secrets_manager_refuses_them(client: Client, bad: list[dict[str, str]]) -> None:
    """GIVEN an aws: key, a key over 127 characters, a value over 255, a '*' WHEN a secret is created or tagged with
    it THEN ValidationException; the same secret with valid tags passes."""
    sm = client("secretsmanager")
    refused("ValidationException", sm.create_secret, Name="certfleet/tagged", SecretString="x", Tags=bad)
    arn = sm.create_secret(Name="certfleet/tagged", SecretString="x",
                           Tags=tags(("k" * 127, "v" * 255), ("certfleet:fleet", "Certs/A b")))["ARN"]
    refused("ValidationException", sm.tag_resource, SecretId=arn, Tags=bad)


def test_more_than_50_secret_tags_are_refused(client: Client) -> None:
    """GIVEN a secret with 50 tags WHEN a 51st key is added THEN ValidationException; re-tagging a key passes."""
    sm = client("secretsmanager")
    refused("ValidationException", sm.create_secret, Name="certfleet/many", SecretString="x",
            Tags=tags(*((f"k{i}", "v") for i in range(51))))
    arn = sm.create_secret(Name="certfleet/many", SecretString="x",
                           Tags=tags(*((f"k{i}", "v") for i in range(50))))["ARN"]
    refused("ValidationException", sm.tag_resource, SecretId=arn, Tags=tags(("k50", "v")))
    sm.tag_resource(SecretId=arn, Tags=tags(("k0", "again")))


def test_secret_string_over_65536_bytes_is_refused(client: Client) -> None:
    """GIVEN a SecretString of 65,537 bytes WHEN created or put THEN ValidationException; 65,536 bytes pass."""
    sm = client("secretsmanager")
    refused("ValidationException", sm.create_secret, Name="certfleet/big", SecretString="x" * 65_537)
    arn = sm.create_secret(Name="certfleet/big", SecretString="x" * 65_536)["ARN"]
    refused("ValidationException", sm.put_secret_value, SecretId=arn, SecretString="é" * 32_769)
    sm.put_secret_value(SecretId=arn, SecretString="y" * 65_536)


# ------------------------------------------------------------------------- PutSecretValue with a known token
def test_put_secret_value_with_a_known_token_is_ignored_and_does_not_move_awscurrent(
    aws: StrictAWS, client: Client,
) -> None:
    """GIVEN versions A then B of a secret WHEN A is put again with A's ClientRequestToken THEN the request is ignored:
    AWSCURRENT stays B in the primary and, after replica lag, in the replica too; a known token with another value is
    refused. moto already behaves so: this test keeps it (and the proxy's replica-lag bookkeeping) honest."""
    aws.replica_lag = 0.5
    primary, replica = client("secretsmanager", "us-east-1"), client("secretsmanager", REGION)
    token_a, token_b = str(uuid.uuid4()), str(uuid.uuid4())
    arn = primary.create_secret(Name="certfleet/tokens", SecretString="A", ClientRequestToken=token_a,
                                AddReplicaRegions=[{"Region": REGION}])["ARN"]
    primary.put_secret_value(SecretId=arn, SecretString="B", ClientRequestToken=token_b)
    again = primary.put_secret_value(SecretId=arn, SecretString="A", ClientRequestToken=token_a)
    assert again["VersionId"] == token_a
    assert primary.get_secret_value(SecretId=arn)["SecretString"] == "B"
    assert primary.get_secret_value(SecretId=arn)["VersionId"] == token_b
    refused("ResourceExistsException", primary.put_secret_value, SecretId=arn, SecretString="C",
            ClientRequestToken=token_a)
    time.sleep(0.6)
    replica_arn = arn.replace(":us-east-1:", f":{REGION}:")
    assert replica.get_secret_value(SecretId=replica_arn)["SecretString"] == "B"


# ------------------------------------------------------------------------------------ KMS encryption context
def test_kms_encryption_context_over_8192_bytes_is_refused(client: Client) -> None:
    """GIVEN an encryption context whose keys and values add up to 8,193 bytes WHEN Encrypt or Decrypt is called
    THEN ValidationException (a conservative, unverified limit); 8,192 bytes round-trip."""
    kms = client("kms", "us-east-1")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    big = {"certfleet:name": "x" * (8_193 - len("certfleet:name"))}
    refused("ValidationException", kms.encrypt, KeyId=key, Plaintext=b"k", EncryptionContext=big)
    fits = {"certfleet:name": "x" * (8_192 - len("certfleet:name"))}
    blob = kms.encrypt(KeyId=key, Plaintext=b"k", EncryptionContext=fits)["CiphertextBlob"]
    refused("ValidationException", kms.decrypt, CiphertextBlob=blob, EncryptionContext=big)
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=fits)["Plaintext"] == b"k"


def test_kms_plaintext_over_4096_bytes_is_refused(client: Client) -> None:
    """GIVEN 4,097 bytes of plaintext WHEN encrypted THEN ValidationException (moto enforces it; kept as proof)."""
    kms = client("kms", "us-east-1")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    refused("ValidationException", kms.encrypt, KeyId=key, Plaintext=b"k" * 4_097)
    kms.encrypt(KeyId=key, Plaintext=b"k" * 4_096)


# ---------------------------------------------------------------------------------------------------- accounts
def test_url_for_an_account_keeps_accounts_apart(aws: StrictAWS, leaf: Issued) -> None:
    """GIVEN two accounts reached through strict.url_for WHEN each creates a secret of one name and one imports a
    certificate THEN each sees only its own, under ARNs of its own account; url is moto's default account."""
    import boto3

    def make(service: str, account: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=aws.url_for(account))

    for account in ("111111111111", "222222222222"):
        arn = make("secretsmanager", account).create_secret(Name="certfleet/same", SecretString=account)["ARN"]
        assert arn.split(":")[4] == account
    assert make("secretsmanager", "111111111111").get_secret_value(SecretId="certfleet/same")["SecretString"] \
        == "111111111111"
    cert = make("acm", "111111111111").import_certificate(Certificate=leaf.pem(), PrivateKey=leaf.key_pem())
    assert cert["CertificateArn"].split(":")[4] == "111111111111"
    assert make("acm", "222222222222").list_certificates()["CertificateSummaryList"] == []
    default = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws.url)
    assert default.list_secrets()["SecretList"] == []
    with pytest.raises(ValueError, match="12 digits"):
        aws.url_for("dev")
