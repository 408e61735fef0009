"""ImportedCertificate, KeySource and the singleton providers, asserted on the synthesized template."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Environment, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk.assertions import Match, Template
from construct_support import ACCOUNT, SEALING_KEY_ARN, Files, write_sealed

from certfleet import CertificateBundle, ImportedCertificate, KeySource
from certfleet.certificate_bundle import CertificateBundleError
from certfleet.material.demo import DemoPKI

PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\s*\n(?:[A-Za-z0-9+/=]{40,}\s*\n){2}")
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:production/ssl/private-key-AbCdEf"


def _stack(app: App | None = None, region: str = "us-east-1", name: str = "Certs") -> Stack:
    return Stack(app or App(), name, env=Environment(account=ACCOUNT, region=region))


def _logical_id(stack: Stack, cert: ImportedCertificate) -> str:
    return stack.get_logical_id(cert._resource.node.default_child)  # type: ignore[arg-type]


def _ref(stack: Stack, cert: ImportedCertificate) -> dict[str, str]:
    return {"Ref": _logical_id(stack, cert)}


def test_resource_carries_public_material_tags_and_pinned_version(bundle: CertificateBundle, sealed_path: Path) -> None:
    stack = _stack()
    ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.sealed(sealed_path))
    template = Template.from_stack(stack)
    template.has_resource_properties("Custom::CertfleetCertificate", {
        "Certificate": bundle.certificate_pem,
        "CertificateChain": bundle.chain_pem,
        "Fingerprint": bundle.fingerprint,
        "KeyAlgorithm": "RSA_2048",
        "KeySecretVersionId": {"Fn::GetAtt": [Match.any_value(), "VersionId"]},
        "Tags": [
            {"Key": "certfleet:managed-by", "Value": "certfleet"},
            {"Key": "certfleet:fleet", "Value": "Certs"},
            {"Key": "certfleet:id", "Value": "Certs/Cert"},
        ],
        "RemovalPolicy": "destroy",
    })
    template.has_resource_properties("Custom::CertfleetSealedKey", {
        "KmsKeyId": SEALING_KEY_ARN,
        "EncryptionContext": {"certfleet:certificate": "www.example.com"},
        "SecretId": {"Ref": Match.any_value()},
    })


def test_two_certificates_share_one_handler(bundle: CertificateBundle, pki: DemoPKI, tmp_path: Path) -> None:
    other = pki.leaf(("api.example.com",))
    (tmp_path / "api.pem").write_bytes(other.pem())
    other_bundle = CertificateBundle.from_files(tmp_path / "api.pem", chain=None)
    stack = _stack()
    ImportedCertificate(stack, "Www", bundle=bundle, key=KeySource.secret(SECRET_ARN))
    ImportedCertificate(stack, "Api", bundle=other_bundle, key=KeySource.secret("production/ssl/api-key"))
    template = Template.from_stack(stack)
    template.resource_count_is("Custom::CertfleetCertificate", 2)
    template.resource_properties_count_is("AWS::Lambda::Function", {"Handler": "certfleet_import.on_event"}, 1)
    template.resource_properties_count_is("AWS::Lambda::Function", {"Handler": "certfleet_import.is_complete"}, 1)
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "certfleet_import.on_event", "Runtime": "python3.14",
    })


def _statements(template: Template) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::IAM::Policy")
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_importer_may_import_only_tagged_and_touch_only_its_own(bundle: CertificateBundle) -> None:
    stack = _stack()
    ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.secret(SECRET_ARN), fleet_name="web")
    statements = _statements(Template.from_stack(stack))
    new = [s for s in statements if "aws:RequestTag/certfleet:managed-by" in json.dumps(s.get("Condition", {}))]
    assert len(new) == 1
    assert new[0]["Condition"]["StringEquals"] == {
        "aws:RequestTag/certfleet:managed-by": "certfleet", "aws:RequestTag/certfleet:fleet": "web",
    }
    assert set(new[0]["Action"]) == {"acm:ImportCertificate", "acm:AddTagsToCertificate"}
    own = [s for s in statements if "aws:ResourceTag/certfleet:fleet" in json.dumps(s.get("Condition", {}))]
    assert own and all(s["Condition"]["StringEquals"]["aws:ResourceTag/certfleet:fleet"] == "web" for s in own)
    assert all("acm:DeleteCertificate" not in _actions(s) for s in statements if s not in own)
    untagged_writes = [s for s in statements if {"acm:ImportCertificate", "acm:DeleteCertificate"} & set(_actions(s))
                       and "Condition" not in s]
    assert untagged_writes == []


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_importer_reads_only_its_own_secret(bundle: CertificateBundle) -> None:
    stack = _stack()
    ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.secret("production/ssl/private-key"))
    reads = [s for s in _statements(Template.from_stack(stack)) if "secretsmanager:GetSecretValue" in _actions(s)]
    assert reads
    for statement in reads:
        assert "production/ssl/private-key-??????" in json.dumps(statement["Resource"])


def test_sealed_key_writer_decrypts_only_with_its_context(bundle: CertificateBundle, sealed_path: Path) -> None:
    stack = _stack()
    ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.sealed(sealed_path))
    template = Template.from_stack(stack)
    decrypts = [s for s in _statements(template) if s["Resource"] == SEALING_KEY_ARN]
    assert len(decrypts) == 1
    assert decrypts[0]["Action"] == "kms:Decrypt"
    assert decrypts[0]["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:certfleet:certificate": "www.example.com"},
    }
    secrets = template.find_resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 1
    (secret,) = secrets.values()
    assert secret["DeletionPolicy"] == "Retain"
    assert "KmsKeyId" in secret["Properties"]
    keys = template.find_resources("AWS::KMS::Key")
    assert all(k["DeletionPolicy"] == "Retain" for k in keys.values())
    assert any(k["Properties"].get("EnableKeyRotation") for k in keys.values())


def test_sealed_key_for_another_certificate_fails_synth_naming_the_construct(
    bundle: CertificateBundle, pki: DemoPKI, tmp_path: Path,
) -> None:
    stranger = pki.leaf(("www.example.com",))
    sealed = write_sealed(tmp_path / "other.sealed", stranger)
    stack = _stack()
    with pytest.raises(ValueError, match=r"Certs/Cert: .*key-mismatch.*does not belong to the certificate"):
        ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.sealed(sealed))


def test_sealed_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sealed"
    broken.write_text("not json")
    with pytest.raises(ValueError, match=r"KeySource\.sealed: .*not a valid certfleet sealed-key file"):
        KeySource.sealed(broken)


def test_expired_certificate_is_refused_with_the_finding(pki: DemoPKI, tmp_path: Path) -> None:
    import datetime as dt

    old = pki.leaf(("www.example.com",), not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), days=30)
    (tmp_path / "old.pem").write_bytes(old.pem())
    with pytest.raises(CertificateBundleError, match=r"\[expired\]"):
        CertificateBundle.from_files(tmp_path / "old.pem")


def test_retain_and_delete_budget_reach_the_handler(bundle: CertificateBundle) -> None:
    stack = _stack()
    ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.secret(SECRET_ARN),
                        removal_policy=RemovalPolicy.RETAIN, delete_timeout=Duration.minutes(10))
    Template.from_stack(stack).has_resource_properties("Custom::CertfleetCertificate", {
        "RemovalPolicy": "retain", "DeleteTimeoutSeconds": "600",
    })


def test_snapshot_removal_policy_is_refused(bundle: CertificateBundle) -> None:
    with pytest.raises(ValueError, match="Certs/Cert: removal_policy must be"):
        ImportedCertificate(_stack(), "Cert", bundle=bundle, key=KeySource.secret(SECRET_ARN),
                            removal_policy=RemovalPolicy.SNAPSHOT)


def test_bundle_warning_becomes_a_synth_annotation(pki: DemoPKI, tmp_path: Path) -> None:
    soon = pki.leaf(("www.example.com",), days=10)
    (tmp_path / "soon.pem").write_bytes(soon.pem() + pki.chain_pem())
    stack = _stack()
    ImportedCertificate(stack, "Cert", bundle=CertificateBundle.from_files(tmp_path / "soon.pem"),
                        key=KeySource.secret(SECRET_ARN))
    from aws_cdk.assertions import Annotations

    Annotations.from_stack(stack).has_warning("/Certs/Cert", Match.string_like_regexp(r"expires-soon"))


def test_metric_days_to_expiry_comes_from_the_certificate_region(bundle: CertificateBundle) -> None:
    stack = _stack(region="eu-west-1")
    cert = ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.secret(SECRET_ARN))
    metric = cert.metric_days_to_expiry()
    assert metric.namespace == "AWS/CertificateManager"
    assert metric.metric_name == "DaysToExpiry"
    assert metric.region == "eu-west-1"
    assert metric.statistic == "Minimum"
    assert metric.period.to_seconds() == 86400


def test_consumers_accept_it_unchanged(bundle: CertificateBundle) -> None:
    stack = _stack()
    cert = ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.secret(SECRET_ARN))
    ref = _ref(stack, cert)
    cloudfront.Distribution(
        stack, "Cdn", default_behavior=cloudfront.BehaviorOptions(origin=origins.HttpOrigin("origin.example.com")),
        domain_names=["www.example.com"], certificate=cert,
        minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
    )
    apigateway.DomainName(stack, "EdgeDomain", domain_name="example.com", certificate=cert,
                          endpoint_type=apigateway.EndpointType.EDGE)
    apigateway.DomainName(stack, "RegionalDomain", domain_name="www.example.com", certificate=cert,
                          endpoint_type=apigateway.EndpointType.REGIONAL)
    apigwv2.DomainName(stack, "HttpDomain", domain_name="www.example.com", certificate=cert)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    alb = elbv2.ApplicationLoadBalancer(stack, "Alb", vpc=vpc, internet_facing=True)
    listener = alb.add_listener("Https", port=443, certificates=[cert],
                                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                                default_action=elbv2.ListenerAction.fixed_response(200))
    listener.add_certificates("Extra", [elbv2.ListenerCertificate.from_certificate_manager(cert)])
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::CloudFront::Distribution", {
        "DistributionConfig": Match.object_like({"ViewerCertificate": Match.object_like({"AcmCertificateArn": ref})}),
    })
    template.has_resource_properties("AWS::ApiGateway::DomainName", {"CertificateArn": ref})
    template.has_resource_properties("AWS::ApiGateway::DomainName", {"RegionalCertificateArn": ref})
    template.has_resource_properties("AWS::ApiGatewayV2::DomainName", {
        "DomainNameConfigurations": [Match.object_like({"CertificateArn": ref})],
    })
    template.has_resource_properties("AWS::ElasticLoadBalancingV2::Listener", {
        "Certificates": [{"CertificateArn": ref}],
    })
    template.has_resource_properties("AWS::ElasticLoadBalancingV2::ListenerCertificate", {
        "Certificates": [{"CertificateArn": ref}],
    })


def _synth_to(outdir: Path, files: Files, sealed_path: Path) -> Path:
    app = App(outdir=str(outdir))
    stack = _stack(app)
    ImportedCertificate(stack, "FromCombinedFile", bundle=CertificateBundle.from_files(files.combined),
                        key=KeySource.sealed(sealed_path))
    ImportedCertificate(stack, "FromSecret", bundle=CertificateBundle.from_files(files.certificate, chain=files.chain),
                        key=KeySource.secret(SECRET_ARN))
    app.synth()
    return outdir


def test_no_plaintext_key_anywhere_in_cdk_out(tmp_path: Path, files: Files, sealed_path: Path) -> None:
    """The bundle was read from a file that also held the key: nothing of it may reach cdk.out."""
    outdir = _synth_to(tmp_path / "cdk.out", files, sealed_path)
    body = "".join(files.leaf.key_pem().decode().strip().splitlines()[1:-1])
    der = base64.b64decode(body)
    needles = [body[i : i + 40].encode() for i in range(0, len(body) - 40, 40)]
    planted = files.combined.read_bytes()  # the scan finds the key where it is
    assert PEM_PRIVATE_KEY.search(planted) and any(n in planted for n in needles)
    scanned = 0
    for path in outdir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            scanned += 1
            assert not PEM_PRIVATE_KEY.search(data), path
            if path.suffix == ".json":  # templates, manifests, tree: not even the label
                assert b"PRIVATE KEY" not in data, path
            assert not any(n in data for n in needles), path
            assert der[40:80] not in data, path
    assert scanned >= 4
    assets = [p for p in outdir.glob("asset.*") if p.is_dir() and (p / "certfleet_import.py").exists()]
    assert assets, "the handler asset is in cdk.out"


def test_two_synths_are_byte_identical(tmp_path: Path, files: Files, sealed_path: Path) -> None:
    first = _synth_to(tmp_path / "one", files, sealed_path)
    second = _synth_to(tmp_path / "two", files, sealed_path)
    templates = sorted(p.name for p in first.glob("*.template.json"))
    assert templates
    for name in templates:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert re.search(r'"Custom::CertfleetCertificate"', (first / templates[0]).read_text())
