"""Custom::CertfleetCertificate in material mode (an ACME source: no Certificate property; the key's secret holds the
certificate, chain and key as JSON) on moto_server behind StrictAWS: the newest of the pinned and the AWSCURRENT
material (when it names the resource's Names) is imported, never an older one than ACM holds for the same Names; key
types are checked; no key reaches a log or an exception."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from handler_support import (
    REGION,
    Resource,
    Secret,
    acm_algorithm,
    all_certificates,
    boto,
    certificate_props,
    fingerprint,
    key_body,
    leaf_in_acm,
)

from certfleet._lambda.certfleet_common import leaf_facts
from certfleet._lambda.certfleet_contract import ACME_KEY_TYPES, ACME_SOURCE, SOURCE_TAG, AcmeMaterial
from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import StrictAWS

PRIMARY = "us-east-1"
NAMES = ("www.example.com", "example.com")


def material(
    issued: Issued, pki: DemoPKI, key_type: str = "rsa-2048", *, names: Sequence[str] | None = None,
    named: bool = True,
) -> str:
    """One version of the material secret, as the ACME issuer writes it: ``names`` the certificate's DNS names unless
    given; ``named=False`` as the issuer wrote it before materials named their names (no names, no fleet)."""
    value = AcmeMaterial(
        certificate=issued.pem().decode(), chain=pki.chain_pem().decode(), private_key=issued.key_pem().decode(),
        key_type=key_type, not_after=issued.certificate.not_valid_after_utc.isoformat(),
    )
    if named:
        listed = issued.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        value["names"] = list(names if names is not None else listed.get_values_for_type(x509.DNSName))
        value["fleet"] = "Certs"
    return json.dumps(value)


def material_props(issued: Issued, pki: DemoPKI, secret_arn: str, version: str = "", **extra: str) -> dict[str, Any]:
    """ResourceProperties of an ACME source's certificate: no Certificate, CertificateChain nor Fingerprint; Names
    and the source tag set."""
    props = certificate_props(issued, pki, secret_arn, version, **extra)
    for name in ("Certificate", "CertificateChain", "Fingerprint"):
        del props[name]
    props["Tags"] = [*props["Tags"], {"Key": SOURCE_TAG, "Value": ACME_SOURCE}]
    props["Names"] = list(NAMES)
    return props


def test_create_imports_the_pinned_material_with_its_fingerprint(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """GIVEN a material secret holding certificate, chain and key WHEN the resource is created without a Certificate
    THEN the certificate is imported once with its chain and tags, Data carries its fingerprint (SHA-256 of the DER),
    NotAfter and the version read; a retried Create adopts it; no key in any log line."""
    caplog.set_level(logging.DEBUG)
    version = secret.put(material(leaf, pki))
    props = material_props(leaf, pki, secret.arn, version)
    response = certificate.create(props)
    arn = response["PhysicalResourceId"]
    assert response["Data"] == {
        "CertificateArn": arn, "NotAfter": leaf.certificate.not_valid_after_utc.isoformat(), "KeyAlgorithm": "RSA_2048",
        "KeyVersionId": version, "Fingerprint": fingerprint(leaf),
    }
    assert leaf_in_acm(arn) == fingerprint(leaf)
    held = boto("acm").get_certificate(CertificateArn=arn)
    assert pki.intermediate.pem().decode().strip() in held["CertificateChain"]
    tags = {t["Key"]: t["Value"] for t in boto("acm").list_tags_for_certificate(CertificateArn=arn)["Tags"]}
    assert tags[SOURCE_TAG] == ACME_SOURCE
    assert certificate.create(props)["PhysicalResourceId"] == arn
    assert aws.calls("acm", "ImportCertificate") == 1 and len(all_certificates()) == 1
    assert "PRIVATE KEY" not in caplog.text and key_body(leaf) not in caplog.text


def test_without_a_pinned_version_awscurrent_is_imported(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN no KeySecretVersionId WHEN the resource is created THEN AWSCURRENT's material is imported."""
    version = secret.put(material(leaf, pki))
    response = certificate.create(material_props(leaf, pki, secret.arn))
    assert response["Data"]["KeyVersionId"] == version
    assert leaf_in_acm(response["PhysicalResourceId"]) == fingerprint(leaf)


def test_a_pinned_old_version_imports_the_newer_awscurrent(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN a certificate imported from the pinned version, then a renewal stored as a new AWSCURRENT (later notAfter)
    that ACM does not hold yet WHEN CloudFormation creates another resource, and updates the first, with the OLD pin
    THEN both import the renewed material (one import each), never the pinned older one."""
    aws.import_rate = None  # one call per import
    old_version = secret.put(material(leaf, pki))
    props = material_props(leaf, pki, secret.arn, old_version)
    arn = certificate.create(props)["PhysicalResourceId"]
    renewed = pki.leaf(NAMES, days=180)
    new_version = secret.put(material(renewed, pki))

    other = Resource(certificate.module, certificate.resource_type, "Other")
    created = other.create(material_props(leaf, pki, secret.arn, old_version, cert_id="Certs/Other"))
    assert leaf_in_acm(created["PhysicalResourceId"]) == fingerprint(renewed)
    assert created["Data"]["KeyVersionId"] == new_version

    imports = aws.calls("acm", "ImportCertificate")
    updated = certificate.update({**props, "DeleteTimeoutSeconds": "900"})  # any update, the pin unchanged
    assert updated["PhysicalResourceId"] == arn
    assert leaf_in_acm(arn) == fingerprint(renewed)
    assert updated["Data"]["Fingerprint"] == fingerprint(renewed) and updated["Data"]["KeyVersionId"] == new_version
    assert updated["Data"]["NotAfter"] == renewed.certificate.not_valid_after_utc.isoformat()
    assert aws.calls("acm", "ImportCertificate") == imports + 1


def test_a_newer_pin_wins_over_an_older_awscurrent(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN AWSCURRENT moved back to an older certificate (UpdateSecretVersionStage) WHEN the resource is created
    with the newer version pinned THEN the pinned, later-ending certificate is imported."""
    renewed = pki.leaf(NAMES, days=180)
    old_version = secret.put(material(leaf, pki))
    new_version = secret.put(material(renewed, pki))
    secret.client.update_secret_version_stage(SecretId=secret.arn, VersionStage="AWSCURRENT",
                                              MoveToVersionId=old_version, RemoveFromVersionId=new_version)
    response = certificate.create(material_props(renewed, pki, secret.arn, new_version))
    assert leaf_in_acm(response["PhysicalResourceId"]) == fingerprint(renewed)
    assert response["Data"]["KeyVersionId"] == new_version


def test_an_update_while_acm_holds_the_newest_imports_nothing(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN the renewer stored a newer version and re-imported it into ACM itself WHEN CloudFormation updates the
    resource (pin unchanged, or pinning the newest) THEN nothing is imported and Data describes what ACM holds."""
    old_version = secret.put(material(leaf, pki))
    props = material_props(leaf, pki, secret.arn, old_version)
    arn = certificate.create(props)["PhysicalResourceId"]
    renewed = pki.leaf(NAMES, days=180)
    new_version = secret.put(material(renewed, pki))
    aws.import_rate = None
    boto("acm").import_certificate(CertificateArn=arn, Certificate=renewed.pem(), PrivateKey=renewed.key_pem(),
                                   CertificateChain=pki.chain_pem())
    imports = aws.calls("acm", "ImportCertificate")
    for pin in (old_version, new_version):
        updated = certificate.update(material_props(leaf, pki, secret.arn, pin))
        assert updated["PhysicalResourceId"] == arn
        assert updated["Data"]["Fingerprint"] == fingerprint(renewed) and updated["Data"]["KeyVersionId"] == new_version
    assert aws.calls("acm", "ImportCertificate") == imports
    assert leaf_in_acm(arn) == fingerprint(renewed)


def test_a_certificate_moving_from_files_to_an_acme_source_is_replaced(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN a certificate imported from files WHEN the same construct is given an ACME source (same key type) THEN a
    new certificate is imported with the source tag (ACM takes tags on the first import only, and the renewer finds
    the certificate by them), and CloudFormation's Delete of the old one leaves only the new."""
    files_props = certificate_props(leaf, pki, secret.arn, secret.put(leaf.key_pem()))
    old_arn = certificate.create(files_props)["PhysicalResourceId"]
    renewed = pki.leaf(NAMES, days=120)
    updated = certificate.update(material_props(renewed, pki, secret.arn, secret.put(material(renewed, pki))))
    new_arn = updated["PhysicalResourceId"]
    assert new_arn != old_arn and leaf_in_acm(new_arn) == fingerprint(renewed)
    tags = {t["Key"]: t["Value"] for t in boto("acm").list_tags_for_certificate(CertificateArn=new_arn)["Tags"]}
    assert tags[SOURCE_TAG] == ACME_SOURCE
    certificate.delete(old_arn, files_props)
    assert [c["CertificateArn"] for c in all_certificates()] == [new_arn]


def test_a_lagging_replica_waits_for_the_pinned_version(
    certificate: Resource, pki: DemoPKI, leaf: Issued, aws: StrictAWS, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN the material secret in us-east-1 replicated to eu-west-1, and a renewal there lagging (the replica
    refuses the new version's first two reads and answers AWSCURRENT with the old one) WHEN eu-west-1's resource is
    updated to the new pin THEN it waits for the replica and imports the new certificate into the same ARN."""
    secret = Secret(PRIMARY, replicas=(REGION,))
    first = secret.put(material(leaf, pki))
    arn = certificate.create(material_props(leaf, pki, secret.arn_in(REGION), first))["PhysicalResourceId"]
    renewed = pki.leaf(NAMES, days=150)
    aws.replica_lag_reads = 2
    second = secret.put(material(renewed, pki))
    reads = aws.calls("secretsmanager", "GetSecretValue", REGION)
    updated = certificate.update(material_props(renewed, pki, secret.arn_in(REGION), second))
    assert aws.calls("secretsmanager", "GetSecretValue", REGION) > reads + 2, "eu-west-1 waited for its replica"
    assert updated["PhysicalResourceId"] == arn and updated["Data"]["KeyVersionId"] == second
    assert leaf_in_acm(arn) == fingerprint(renewed)


def test_awscurrent_still_the_placeholder_is_passed_over(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, caplog: pytest.LogCaptureFixture,
) -> None:
    """GIVEN the pinned material, and AWSCURRENT moved back to the construct's placeholder WHEN the resource is
    created THEN the pinned material is imported and the log says why AWSCURRENT was not used."""
    caplog.set_level(logging.INFO)
    placeholder = str(boto("secretsmanager").describe_secret(SecretId=secret.arn)["VersionIdsToStages"].popitem()[0])
    version = secret.put(material(leaf, pki))
    secret.client.update_secret_version_stage(SecretId=secret.arn, VersionStage="AWSCURRENT",
                                              MoveToVersionId=placeholder, RemoveFromVersionId=version)
    response = certificate.create(material_props(leaf, pki, secret.arn, version))
    assert leaf_in_acm(response["PhysicalResourceId"]) == fingerprint(leaf)
    assert "AWSCURRENT not used" in caplog.text and "is not certificate material" in caplog.text


def test_material_of_another_key_type_is_refused(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, ec_pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN EC P-256 material WHEN the resource asks for RSA_2048 THEN the error names the secret, both key types and
    what to do, and nothing is imported."""
    ec_leaf = ec_pki.leaf(NAMES, key_type="ec-p256")
    version = secret.put(material(ec_leaf, ec_pki, "ec-p256"))
    expected = (r"holds a certificate of key type EC_prime256v1, but this resource's KeyAlgorithm is RSA_2048: ACM "
                r"keeps one key type per certificate\. Deploy the fleet with the key type its ACME source orders")
    with pytest.raises(ValueError, match=expected) as failure:
        certificate.create(material_props(leaf, pki, secret.arn, version))
    assert secret.arn in str(failure.value) and version in str(failure.value)
    assert aws.calls("acm", "ImportCertificate") == 0


def test_each_acme_key_type_is_read_from_the_certificate(
    certificate: Resource, secret: Secret, ec_pki: DemoPKI, pki: DemoPKI,
) -> None:
    """GIVEN material of each ACME key type WHEN imported with the contract's KeyAlgorithm for it THEN ACM holds it."""
    for key_type, acm_type in ACME_KEY_TYPES.items():
        issuer = ec_pki if key_type.startswith("ec") else pki
        issued = issuer.leaf((f"{key_type}.example.com",), key_type=key_type)
        assert acm_algorithm(issued) == acm_type
        props = {**material_props(issued, issuer, secret.arn, secret.put(material(issued, issuer, key_type)),
                                  cert_id=f"Certs/{key_type}"), "KeyAlgorithm": acm_type}
        resource = Resource(certificate.module, certificate.resource_type, f"Cert{key_type.replace('-', '')}")
        assert leaf_in_acm(resource.create(props)["PhysicalResourceId"]) == fingerprint(issued)


@pytest.mark.parametrize(("value", "message"), [
    ({"chain": "", "private_key": "KEY"}, r'holds JSON with no "certificate" PEM certificate, no "private_key" PEM'),
    ("-----BEGIN PRIVATE KEY-----\nplain\n-----END PRIVATE KEY-----\n", "is not certificate material"),
    ({"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "chain": "",
      "private_key": "-----BEGIN PRIVATE KEY-----\nplain\n-----END PRIVATE KEY-----\n"},
     r'its "certificate" is not a PEM X\.509 certificate'),
])
def test_a_secret_without_material_fails_clearly(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, value: Any, message: str, aws: StrictAWS,
) -> None:
    """GIVEN a key secret that is not certificate material WHEN the resource (no Certificate) is created THEN the
    error names the secret and what is missing, quotes none of the value, and nothing is imported."""
    version = secret.put(value if isinstance(value, str) else json.dumps(value))
    with pytest.raises(ValueError, match=message) as failure:
        certificate.create(material_props(leaf, pki, secret.arn, version))
    assert f"secret {secret.arn} version {version}" in str(failure.value)
    assert "plain" not in str(failure.value) and "KEY\"" not in str(failure.value)
    assert aws.calls("acm", "ImportCertificate") == 0


def test_no_key_in_logs_or_exceptions_when_acm_refuses(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """GIVEN material whose key is another certificate's WHEN ACM refuses the import THEN the error names the secret
    and version to check, and neither it, the logs nor the output carry key material."""
    stranger = pki.leaf(("other.example.com",))
    value = json.loads(material(leaf, pki))
    value["private_key"] = stranger.key_pem().decode()
    version = secret.put(json.dumps(value))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RuntimeError) as failure:
        certificate.create(material_props(leaf, pki, secret.arn, version))
    message = str(failure.value)
    assert "does not match" in message and f"secret {secret.arn} version {version}" in message
    out = capsys.readouterr()
    for text in (message, repr(failure.value), caplog.text, out.out, out.err):
        assert "PRIVATE KEY" not in text and key_body(stranger) not in text and key_body(leaf) not in text
    assert all_certificates() == []


def test_leaf_facts_read_validity_and_key_type_from_der(pki: DemoPKI, ec_pki: DemoPKI) -> None:
    """The importer's own DER reading (no crypto library in its asset) agrees with pyca/cryptography, UTCTime and
    GeneralizedTime (after 2049) alike."""
    for key_type, acm_type in ACME_KEY_TYPES.items():
        issuer = ec_pki if key_type.startswith("ec") else pki
        for days in (90, 12000):
            issued = issuer.leaf(("facts.example.com",), key_type=key_type, days=days)
            facts = leaf_facts(issued.certificate.public_bytes(serialization.Encoding.DER))
            assert facts.not_after == issued.certificate.not_valid_after_utc
            assert facts.not_before == issued.certificate.not_valid_before_utc
            assert facts.key_type == acm_type
    with pytest.raises(ValueError, match=r"not an X\.509 certificate"):
        leaf_facts(b"\x30\x03\x02\x01\x00")


def test_an_update_never_imports_a_lagging_replicas_older_certificate(
    *, certificate: Resource, pki: DemoPKI, leaf: Issued, aws: StrictAWS, caplog: pytest.LogCaptureFixture,
) -> None:
    """GIVEN the material secret in us-east-1 replicated to eu-west-1, a renewal whose replication to eu-west-1 lags
    (the replica keeps answering AWSCURRENT with the old version), and the renewer having re-imported the renewed
    certificate into eu-west-1's ACM from the primary WHEN CloudFormation updates eu-west-1's resource with only its
    RemovalPolicy changed (the Names unchanged) THEN nothing is imported, ACM keeps the renewed certificate, Data
    describes it, and the log says why."""
    caplog.set_level(logging.INFO)
    secret = Secret(PRIMARY, replicas=(REGION,))
    first = secret.put(material(leaf, pki))
    props = material_props(leaf, pki, secret.arn_in(REGION), first)
    arn = certificate.create(props)["PhysicalResourceId"]
    renewed = pki.leaf(NAMES, days=180)
    aws.replica_lag_reads = 1_000_000  # the replica never catches up here
    secret.put(material(renewed, pki))
    aws.import_rate = None
    boto("acm").import_certificate(CertificateArn=arn, Certificate=renewed.pem(), PrivateKey=renewed.key_pem(),
                                   CertificateChain=pki.chain_pem())
    imports = aws.calls("acm", "ImportCertificate")
    updated = certificate.update({**props, "RemovalPolicy": "retain"})
    assert aws.calls("acm", "ImportCertificate") == imports, "the older certificate was imported back"
    assert leaf_in_acm(arn) == fingerprint(renewed)
    assert updated["PhysicalResourceId"] == arn and updated["Data"]["Fingerprint"] == fingerprint(renewed)
    assert updated["Data"]["NotAfter"] == renewed.certificate.not_valid_after_utc.isoformat()
    assert f"ACM holds a certificate ending {renewed.certificate.not_valid_after_utc.isoformat()}" in caplog.text
    assert "nothing imported" in caplog.text


def test_new_names_import_material_that_ends_before_what_acm_holds(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, aws: StrictAWS,
) -> None:
    """GIVEN ACM holding a renewed certificate for the old Names that ends in 180 days WHEN the resource is updated to
    new Names, pinning a new order's material that ends in 30 days (lifetimes shrink) THEN that material is imported
    into the same ARN: a domain change is not a downgrade."""
    props = material_props(leaf, pki, secret.arn, secret.put(material(leaf, pki)))
    arn = certificate.create(props)["PhysicalResourceId"]
    renewed = pki.leaf(NAMES, days=180)
    aws.import_rate = None
    boto("acm").import_certificate(CertificateArn=arn, Certificate=renewed.pem(), PrivateKey=renewed.key_pem(),
                                   CertificateChain=pki.chain_pem())
    names = ("api.example.com", "example.com")
    ordered = pki.leaf(names, days=30)
    version = secret.put(material(ordered, pki))
    updated = certificate.update({**material_props(ordered, pki, secret.arn, version), "Names": list(names)})
    assert updated["PhysicalResourceId"] == arn and updated["Data"]["KeyVersionId"] == version
    assert leaf_in_acm(arn) == fingerprint(ordered)
    assert updated["Data"]["NotAfter"] == ordered.certificate.not_valid_after_utc.isoformat()


@pytest.mark.parametrize(("names", "named", "logged"), [
    (("other.example.com",), True, "it names ['other.example.com'], this resource's Names are"),
    (("www.example.com",), True, "it names ['www.example.com'], this resource's Names are"),
    (("*.example.com", "example.com"), True, "it names ['*.example.com', 'example.com']"),
    (NAMES, False, "it names nothing (older material)"),
])
def test_awscurrent_naming_other_names_is_passed_over(
    *, certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued, names: tuple[str, ...], named: bool,
    logged: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """GIVEN the pinned material for the resource's Names, and a newer AWSCURRENT whose material names other names
    (another set, a subset, a wildcard for www: its own name) or none (written before materials named theirs) WHEN the
    resource is created THEN the pinned material is imported and the log says why AWSCURRENT was not used."""
    caplog.set_level(logging.INFO)
    pinned = secret.put(material(leaf, pki))
    other = pki.leaf(names, days=180)
    current = secret.put(material(other, pki, named=named))
    response = certificate.create(material_props(leaf, pki, secret.arn, pinned))
    assert leaf_in_acm(response["PhysicalResourceId"]) == fingerprint(leaf)
    assert response["Data"]["KeyVersionId"] == pinned
    assert f"AWSCURRENT {current} not used: {logged}" in caplog.text


def test_awscurrent_naming_the_same_names_in_another_case_and_order_is_used(
    certificate: Resource, secret: Secret, pki: DemoPKI, leaf: Issued,
) -> None:
    """GIVEN the resource's Names with a wildcard in mixed case, and a newer AWSCURRENT naming the same names lower
    case in another order WHEN the resource is created with the older version pinned THEN AWSCURRENT is imported."""
    names = ("*.Example.com", "Example.COM")
    first, renewed = pki.leaf(("*.example.com", "example.com")), pki.leaf(("*.example.com", "example.com"), days=180)
    pinned = secret.put(material(first, pki))
    current = secret.put(material(renewed, pki, names=["example.com", "*.example.com"]))
    response = certificate.create({**material_props(first, pki, secret.arn, pinned), "Names": list(names)})
    assert leaf_in_acm(response["PhysicalResourceId"]) == fingerprint(renewed)
    assert response["Data"]["KeyVersionId"] == current
