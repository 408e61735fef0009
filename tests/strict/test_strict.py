"""StrictAWS refuses, through a plain boto3 client, what real ACM refuses and moto accepts; valid calls pass."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from certfleet.material.demo import DemoPKI, Issued, issue
from certfleet.testing import MotoServer, StrictAWS

Client = Callable[..., Any]
REGION = "eu-west-1"


def refused(code: str, call: Callable[..., Any], **kwargs: Any) -> str:
    """Assert that ``call(**kwargs)`` fails with AWS error ``code``; return the message."""
    with pytest.raises(ClientError) as failure:
        call(**kwargs)
    error = failure.value.response["Error"]
    assert error["Code"] == code, error
    assert failure.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(error["Message"])


def importing(leaf: Issued, pki: DemoPKI | None = None, **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"Certificate": leaf.pem(), "PrivateKey": leaf.key_pem(), **extra}
    if pki is not None:
        args["CertificateChain"] = pki.chain_pem()
    return args


# ------------------------------------------------------------------------------------------------ a. key match
def test_key_that_does_not_match_the_certificate_is_refused(client: Client, pki: DemoPKI, leaf: Issued) -> None:
    """GIVEN a certificate and another one's key WHEN imported THEN ValidationException; the right key passes."""
    acm = client("acm")
    stranger = pki.leaf(("other.example.com",))
    message = refused("ValidationException", acm.import_certificate,
                      **importing(leaf, pki, PrivateKey=stranger.key_pem()))
    assert "does not match" in message
    assert acm.import_certificate(**importing(leaf, pki))["CertificateArn"].startswith("arn:aws:acm:eu-west-1:")


# --------------------------------------------------------------------------------------- b./c. re-import rules
def test_reimport_that_changes_key_type_is_refused(
    client: Client, pki: DemoPKI, ec_pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN an RSA-2048 certificate in ACM WHEN an EC P-256 certificate is re-imported into its ARN
    THEN ValidationException naming both algorithms; an RSA-2048 renewal re-imports into the same ARN."""
    acm = client("acm")
    arn = acm.import_certificate(**importing(leaf, pki))["CertificateArn"]
    ec_leaf = ec_pki.leaf(("www.example.com",), key_type="ec-p256")
    message = refused("ValidationException", acm.import_certificate, **importing(ec_leaf, ec_pki, CertificateArn=arn))
    assert "EC_prime256v1" in message and "RSA_2048" in message
    bigger = pki.leaf(("www.example.com",), key_type="rsa-3072")
    refused("ValidationException", acm.import_certificate, **importing(bigger, pki, CertificateArn=arn))
    renewed = pki.leaf(("www.example.com",), days=200)
    assert acm.import_certificate(**importing(renewed, pki, CertificateArn=arn))["CertificateArn"] == arn


def test_reimport_with_tags_is_refused_and_reimport_keeps_the_tags(client: Client, pki: DemoPKI, leaf: Issued) -> None:
    """GIVEN a tagged certificate WHEN re-imported with Tags THEN ValidationException ("Tagging is not permitted on
    re-import"); without Tags it passes and, as in ACM (unlike moto), the certificate keeps its tags."""
    acm = client("acm")
    tags = [{"Key": "certfleet:id", "Value": "Certs/Www"}]
    arn = acm.import_certificate(**importing(leaf, pki, Tags=tags))["CertificateArn"]
    renewed = pki.leaf(("www.example.com",), days=200)
    message = refused("ValidationException", acm.import_certificate,
                      **importing(renewed, pki, CertificateArn=arn, Tags=tags))
    assert message == "Tagging is not permitted on re-import."
    acm.import_certificate(**importing(renewed, pki, CertificateArn=arn))
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == tags


def test_tag_keys_with_the_aws_prefix_are_refused(client: Client, leaf: Issued) -> None:
    """GIVEN a tag key starting with aws: WHEN imported THEN InvalidTagException."""
    refused("InvalidTagException", client("acm").import_certificate,
            **importing(leaf, Tags=[{"Key": "aws:cloudformation:stack-name", "Value": "x"}]))


# --------------------------------------------------------------------------------------------------- d. chain
def test_chain_where_a_certificate_does_not_certify_the_one_before_is_refused(
    client: Client, pki: DemoPKI, ec_pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN chains in the wrong order, from another CA, or holding the leaf WHEN imported THEN ValidationException;
    intermediate+root, and the intermediate alone, pass."""
    acm = client("acm")
    intermediate, root = pki.intermediate.pem(), pki.root.pem()
    for chain in (root + intermediate, ec_pki.chain_pem(), intermediate + ec_pki.root.pem()):
        message = refused("ValidationException", acm.import_certificate, **importing(leaf, CertificateChain=chain))
        assert "does not directly certify" in message
    message = refused("ValidationException", acm.import_certificate,
                      **importing(leaf, CertificateChain=leaf.pem() + intermediate + root))
    assert "end-entity" in message
    acm.import_certificate(**importing(leaf, CertificateChain=intermediate + root))
    acm.import_certificate(**importing(leaf, CertificateChain=intermediate))


# --------------------------------------------------------------------------------- e. formats, algorithms, sizes
def test_key_algorithms_acm_cannot_import_are_refused(client: Client) -> None:
    """GIVEN Ed25519 and secp256k1 certificates WHEN imported THEN ValidationException; EC P-384 passes."""
    acm = client("acm")
    for key in (ed25519.Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256K1())):
        odd = issue("odd.example.com", key=key)
        assert "cannot import" in refused("ValidationException", acm.import_certificate, **importing(odd))
    acm.import_certificate(**importing(issue("p384.example.com", key_type="ec-p384")))


def test_der_certificate_and_two_certificates_are_refused(client: Client, pki: DemoPKI, leaf: Issued) -> None:
    """GIVEN a DER certificate, or two PEM certificates in the Certificate field WHEN imported
    THEN ValidationException; the one PEM certificate passes."""
    acm = client("acm")
    der = leaf.certificate.public_bytes(serialization.Encoding.DER)
    assert "PEM" in refused("ValidationException", acm.import_certificate, **importing(leaf, Certificate=der))
    refused("ValidationException", acm.import_certificate, **importing(leaf, Certificate=leaf.pem() + leaf.pem()))
    acm.import_certificate(**importing(leaf))


def test_encrypted_private_key_is_refused(client: Client, leaf: Issued) -> None:
    """GIVEN the key encrypted with a passphrase WHEN imported THEN ValidationException; unencrypted passes."""
    encrypted = leaf.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    acm = client("acm")
    assert "encrypted" in refused("ValidationException", acm.import_certificate,
                                  **importing(leaf, PrivateKey=encrypted))
    acm.import_certificate(**importing(leaf))


def test_size_limits_are_enforced(client: Client, leaf: Issued) -> None:
    """GIVEN a Certificate over 32,768 bytes or a PrivateKey over 5,120 bytes WHEN imported THEN ValidationException."""
    acm = client("acm")
    big_certificate = leaf.pem() + b"\n" * (32_769 - len(leaf.pem()))
    assert "32768" in refused("ValidationException", acm.import_certificate,
                              **importing(leaf, Certificate=big_certificate))
    big_key = leaf.key_pem() + b"\n" * (5_121 - len(leaf.key_pem()))
    assert "5120" in refused("ValidationException", acm.import_certificate, **importing(leaf, PrivateKey=big_key))
    acm.import_certificate(**importing(leaf, Certificate=leaf.pem() + b"\n" * (32_768 - len(leaf.pem()))))


# ---------------------------------------------------------------------------------------- f. rate and quota
def test_more_than_one_import_per_second_per_region_is_throttled(aws: StrictAWS, client: Client, leaf: Issued) -> None:
    """GIVEN AWS's 1 ImportCertificate/s per region WHEN two imports arrive at once in one region
    THEN the second gets ThrottlingException; another region is not affected; a second later it passes. (The refusal
    is shown at one import per 10 s, so that a loaded machine's slow first import cannot open the window.)"""
    aws.import_rate = 0.1
    acm, other = client("acm"), client("acm", "ap-northeast-1")
    acm.import_certificate(**importing(leaf))
    assert refused("ThrottlingException", acm.import_certificate, **importing(leaf)) == "Rate exceeded"
    other.import_certificate(**importing(leaf))
    aws.import_rate = 1.0
    time.sleep(1.05)
    acm.import_certificate(**importing(leaf))
    assert aws.calls("acm", "ImportCertificate", REGION) == 3


def test_import_quota_when_set(aws: StrictAWS, client: Client, leaf: Issued) -> None:
    """GIVEN an import quota of 1 WHEN a second certificate is imported THEN LimitExceededException."""
    aws.import_quota = 1
    acm = client("acm")
    acm.import_certificate(**importing(leaf))
    refused("LimitExceededException", acm.import_certificate, **importing(leaf))


# ------------------------------------------------------------------------------------------------- g. in use
def test_delete_of_a_certificate_in_use_is_refused_until_released(aws: StrictAWS, client: Client, leaf: Issued) -> None:
    """GIVEN a certificate marked in use by a distribution WHEN deleted THEN ResourceInUseException naming it,
    and DescribeCertificate lists the user; after release the delete passes."""
    acm = client("acm")
    arn = acm.import_certificate(**importing(leaf))["CertificateArn"]
    aws.mark_in_use(arn, by="arn:aws:cloudfront::123456789012:distribution/E2EXAMPLE")
    assert arn in refused("ResourceInUseException", acm.delete_certificate, CertificateArn=arn)
    described = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert described["InUseBy"] == ["arn:aws:cloudfront::123456789012:distribution/E2EXAMPLE"]
    aws.release(arn)
    acm.delete_certificate(CertificateArn=arn)
    refused("ResourceNotFoundException", acm.describe_certificate, CertificateArn=arn)


# ------------------------------------------------------------------------------------- listing as ACM lists
def test_list_certificates_defaults_to_rsa_1024_and_2048_and_pages(
    aws: StrictAWS, client: Client, ec_pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN an RSA-2048 and two EC certificates WHEN listed without Includes.keyTypes THEN only the RSA one
    (as ACM, unlike moto); with every key type and a page size of 1 THEN three pages joined by NextToken."""
    acm = client("acm")
    acm.import_certificate(**importing(leaf))
    for name in ("a.example.com", "b.example.com"):
        acm.import_certificate(**importing(ec_pki.leaf((name,), key_type="ec-p256")))
    assert [c["KeyAlgorithm"] for c in acm.list_certificates()["CertificateSummaryList"]] == ["RSA_2048"]
    aws.list_page_size = 1
    every = {"keyTypes": ["RSA_2048", "EC_prime256v1"]}
    pages = list(acm.get_paginator("list_certificates").paginate(Includes=every))
    assert [len(p["CertificateSummaryList"]) for p in pages] == [1, 1, 1]
    assert refused("InvalidArgsException", acm.list_certificates, NextToken="not-a-token")


def test_list_summaries_carry_in_use_and_names_as_acm_does(aws: StrictAWS, client: Client, leaf: Issued) -> None:
    """GIVEN a certificate for www.example.com and example.com WHEN listed THEN its summary says InUse and its
    names, as ACM's does (moto's lack them), and InUse follows mark_in_use / release."""
    acm = client("acm")
    arn = acm.import_certificate(**importing(leaf))["CertificateArn"]
    (summary,) = acm.list_certificates()["CertificateSummaryList"]
    assert summary["SubjectAlternativeNameSummaries"] == ["www.example.com", "example.com"]
    assert summary["HasAdditionalSubjectAlternativeNames"] is False
    assert summary["InUse"] is False
    aws.mark_in_use(arn)
    assert acm.list_certificates()["CertificateSummaryList"][0]["InUse"] is True
    aws.release(arn)
    assert acm.list_certificates()["CertificateSummaryList"][0]["InUse"] is False


# ---------------------------------------------------------------------------------------- h. replica lag
def test_replica_lag_hides_new_versions_from_replica_regions(aws: StrictAWS, client: Client) -> None:
    """GIVEN a secret in us-east-1 replicated to eu-west-1 and a 1 s replica lag WHEN a version is fresh
    THEN the replica answers ResourceNotFoundException for it (and serves the previous AWSCURRENT),
    the primary answers at once, and after the lag the replica has it."""
    aws.replica_lag = 1.0
    primary, replica = client("secretsmanager", "us-east-1"), client("secretsmanager", REGION)
    created = primary.create_secret(Name="certfleet/lag", SecretString="v1", AddReplicaRegions=[{"Region": REGION}])
    replica_arn = created["ARN"].replace(":us-east-1:", f":{REGION}:")
    refused("ResourceNotFoundException", replica.get_secret_value, SecretId=replica_arn)
    time.sleep(1.05)
    assert replica.get_secret_value(SecretId=replica_arn)["SecretString"] == "v1"
    version = primary.put_secret_value(SecretId=created["ARN"], SecretString="v2")["VersionId"]
    assert primary.get_secret_value(SecretId=created["ARN"], VersionId=version)["SecretString"] == "v2"
    refused("ResourceNotFoundException", replica.get_secret_value, SecretId=replica_arn, VersionId=version)
    assert replica.get_secret_value(SecretId=replica_arn)["SecretString"] == "v1"
    time.sleep(1.05)
    assert replica.get_secret_value(SecretId=replica_arn, VersionId=version)["SecretString"] == "v2"
    assert replica.get_secret_value(SecretId="certfleet/lag")["SecretString"] == "v2"


def test_moto_replicas_share_versions_instantly_without_lag(client: Client) -> None:
    """GIVEN no lag (moto's own behaviour) WHEN a version is put in the primary THEN the replica has it at once,
    under the replica ARN, and ReplicateSecretToRegions adds replicas the same way."""
    primary, replica = client("secretsmanager", "us-east-1"), client("secretsmanager", REGION)
    created = primary.create_secret(Name="certfleet/nolag", SecretString="v1")
    primary.replicate_secret_to_regions(SecretId=created["ARN"], AddReplicaRegions=[{"Region": REGION}])
    version = primary.put_secret_value(SecretId=created["ARN"], SecretString="v2")["VersionId"]
    answer = replica.get_secret_value(SecretId="certfleet/nolag", VersionId=version)
    assert answer["SecretString"] == "v2" and f":{REGION}:" in answer["ARN"]


# --------------------------------------------------------------------------------------- counting, forwarding
def test_every_service_is_forwarded_and_counted(aws: StrictAWS, client: Client, leaf: Issued) -> None:
    """GIVEN calls to STS, KMS, CloudFormation and ACM WHEN made through the proxy THEN they reach moto unchanged and
    are counted per (service, operation, region), refused calls included."""
    assert client("sts").get_caller_identity()["Account"] == "123456789012"
    key = client("kms", "us-east-1").create_key()["KeyMetadata"]["KeyId"]
    assert client("kms", "us-east-1").describe_key(KeyId=key)["KeyMetadata"]["KeyId"] == key
    assert client("cloudformation").list_stacks()["StackSummaries"] == []
    refused("ValidationException", client("acm").import_certificate, **importing(leaf, PrivateKey=b"nope"))
    assert aws.calls("sts", "GetCallerIdentity", REGION) == 1
    assert aws.calls("kms", region="us-east-1") == 2
    assert aws.calls("cloudformation", "ListStacks") == 1
    assert aws.calls("acm", "ImportCertificate") == 1
    assert aws.calls("acm", "ImportCertificate", "us-east-1") == 0


def test_moto_server_starts_and_stops_from_a_script() -> None:
    """GIVEN a MotoServer used as a context manager WHEN it runs THEN it answers HTTP; after exit the port is closed."""
    with MotoServer() as moto:
        conn = http.client.HTTPConnection("127.0.0.1", moto.port, timeout=5)
        conn.request("GET", "/moto-api/")
        assert conn.getresponse().status == 200
        port = moto.port
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()


def test_replica_lag_in_reads_refuses_the_newest_version_a_counted_number_of_times(
    aws: StrictAWS, client: Client,
) -> None:
    """GIVEN replica lag of two reads WHEN a new version is put THEN the replica refuses the first two reads of it by
    VersionId and answers AWSCURRENT with the previous version meanwhile, then has it; the primary has it at once;
    an older version is there all along."""
    aws.replica_lag_reads = 2
    primary, replica = client("secretsmanager", "us-east-1"), client("secretsmanager", REGION)
    created = primary.create_secret(Name="certfleet/lag-reads", SecretString="v1",
                                    AddReplicaRegions=[{"Region": REGION}])
    replica_arn = created["ARN"].replace(":us-east-1:", f":{REGION}:")
    first = created["VersionId"]
    refused("ResourceNotFoundException", replica.get_secret_value, SecretId=replica_arn)
    refused("ResourceNotFoundException", replica.get_secret_value, SecretId=replica_arn, VersionId=first)
    assert replica.get_secret_value(SecretId=replica_arn)["SecretString"] == "v1"
    version = primary.put_secret_value(SecretId=created["ARN"], SecretString="v2")["VersionId"]
    assert primary.get_secret_value(SecretId=created["ARN"], VersionId=version)["SecretString"] == "v2"
    refused("ResourceNotFoundException", replica.get_secret_value, SecretId=replica_arn, VersionId=version)
    assert replica.get_secret_value(SecretId=replica_arn)["SecretString"] == "v1"
    assert replica.get_secret_value(SecretId=replica_arn, VersionId=first)["SecretString"] == "v1"
    assert replica.get_secret_value(SecretId=replica_arn, VersionId=version)["SecretString"] == "v2"
    assert replica.get_secret_value(SecretId=replica_arn)["SecretString"] == "v2"


# ---------------------------------------------------------------------------------------- i. version stages
def test_get_secret_value_without_a_stage_answers_awscurrent_after_a_stage_move(client: Client) -> None:
    """GIVEN a secret whose AWSCURRENT was moved back to its first version (UpdateSecretVersionStage) WHEN a plain
    GetSecretValue names neither VersionId nor VersionStage THEN it answers AWSCURRENT's value, in the primary and in
    a replica, as Secrets Manager does (moto answers the version written last)."""
    primary, replica = client("secretsmanager", "us-east-1"), client("secretsmanager", REGION)
    created = primary.create_secret(Name="certfleet/stages", SecretString="v1", AddReplicaRegions=[{"Region": REGION}])
    first = created["VersionId"]
    second = primary.put_secret_value(SecretId=created["ARN"], SecretString="v2")["VersionId"]
    assert primary.get_secret_value(SecretId=created["ARN"])["SecretString"] == "v2"
    primary.update_secret_version_stage(SecretId=created["ARN"], VersionStage="AWSCURRENT", MoveToVersionId=first,
                                        RemoveFromVersionId=second)
    answer = primary.get_secret_value(SecretId=created["ARN"])
    assert (answer["SecretString"], answer["VersionId"]) == ("v1", first) and "AWSCURRENT" in answer["VersionStages"]
    assert replica.get_secret_value(SecretId="certfleet/stages")["SecretString"] == "v1"
    assert primary.get_secret_value(SecretId=created["ARN"], VersionStage="AWSPREVIOUS")["SecretString"] == "v2"
    assert primary.get_secret_value(SecretId=created["ARN"], VersionId=second)["SecretString"] == "v2"


def test_a_secret_without_a_value_still_answers_as_secrets_manager_does(client: Client) -> None:
    """GIVEN a secret created with no value WHEN read without a stage THEN ResourceNotFoundException that names the
    AWSCURRENT staging label (not "can't find the specified secret")."""
    primary = client("secretsmanager", "us-east-1")
    primary.create_secret(Name="certfleet/empty")
    with pytest.raises(ClientError) as failure:
        primary.get_secret_value(SecretId="certfleet/empty")
    error = failure.value.response["Error"]
    assert error["Code"] == "ResourceNotFoundException" and "staging label: AWSCURRENT" in error["Message"], error


def test_replica_lag_holds_back_a_stage_move_as_it_holds_back_a_write(aws: StrictAWS, client: Client) -> None:
    """GIVEN two versions, each read in the replica once it got there, and a replica lag of two reads WHEN AWSCURRENT
    is moved back to the first version THEN the replica answers the second for two reads of AWSCURRENT, then the
    first; the primary answers the first at once; reads by VersionId are not held back by the move."""
    aws.replica_lag_reads = 2
    primary, replica = client("secretsmanager", "us-east-1"), client("secretsmanager", REGION)
    created = primary.create_secret(Name="certfleet/stage-lag", SecretString="v1",
                                    AddReplicaRegions=[{"Region": REGION}])
    replica_arn = created["ARN"].replace(":us-east-1:", f":{REGION}:")
    first = created["VersionId"]
    for _ in range(2):
        refused("ResourceNotFoundException", replica.get_secret_value, SecretId=replica_arn)
    assert replica.get_secret_value(SecretId=replica_arn)["SecretString"] == "v1"
    second = primary.put_secret_value(SecretId=created["ARN"], SecretString="v2")["VersionId"]
    seen = [replica.get_secret_value(SecretId=replica_arn)["SecretString"] for _ in range(3)]
    assert seen == ["v1", "v1", "v2"]
    primary.update_secret_version_stage(SecretId=created["ARN"], VersionStage="AWSCURRENT", MoveToVersionId=first,
                                        RemoveFromVersionId=second)
    assert primary.get_secret_value(SecretId=created["ARN"])["SecretString"] == "v1"
    assert replica.get_secret_value(SecretId=replica_arn, VersionId=first)["SecretString"] == "v1"
    seen = [replica.get_secret_value(SecretId=replica_arn)["SecretString"] for _ in range(4)]
    assert seen == ["v2", "v2", "v1", "v1"]
