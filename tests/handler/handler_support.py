"""Helpers for handler tests: events shaped as the CDK Provider sends them, key secrets, ACM look-ups."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certfleet.material.demo import DemoPKI, Issued

HANDLERS = Path(__file__).resolve().parents[2] / "constructs" / "certfleet" / "_lambda"
LAMBDA = Path(os.environ.get("CERTFLEET_LAMBDA_DIR") or HANDLERS)
"""The handler modules under test: HANDLERS, or a mutated copy (bench/mutation.py sets CERTFLEET_LAMBDA_DIR)."""
if str(LAMBDA) not in sys.path:
    sys.path.insert(0, str(LAMBDA))  # as /var/task is in Lambda: handler modules import each other by name

REGION = "eu-west-1"
STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/Certs/5f5b1a40-0000-0000-0000-000000000000"
RESPONSE_LIMIT = 4096
"""CloudFormation's limit on a custom resource's response body, in bytes."""


def framework_response(event: dict[str, Any], result: dict[str, Any]) -> bytes:
    """The body aws-cdk-lib's Provider framework PUTs to CloudFormation for ``result`` (Data merged in as is)."""
    return json.dumps({
        "Status": "SUCCESS", "Reason": "SUCCESS",
        "StackId": event["StackId"], "RequestId": event["RequestId"], "LogicalResourceId": event["LogicalResourceId"],
        "PhysicalResourceId": result.get("PhysicalResourceId") or event.get("PhysicalResourceId") or event["RequestId"],
        "NoEcho": bool(result.get("NoEcho", False)),
        "Data": result.get("Data") or {},
    }).encode()


class LambdaContext:
    """What the Lambda runtime passes as ``context``: here only the time left before the function's timeout."""

    def __init__(self, timeout: float) -> None:
        self.ends = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.ends - time.monotonic()) * 1000))


def boto(service: str, region: str = REGION) -> Any:
    """A plain boto3 client on the strict layer (AWS_ENDPOINT_URL), as a test's own eyes."""
    make: Any = boto3.client  # typed per literal service name; ``service`` is any
    return make(service, region_name=region)


def acm_algorithm(issued: Issued) -> str:
    key = issued.certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA_{key.key_size}"
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return {"secp256r1": "EC_prime256v1", "secp384r1": "EC_secp384r1"}[key.curve.name]


def fingerprint(issued: Issued) -> str:
    return issued.certificate.fingerprint(hashes.SHA256()).hex()


def key_body(issued: Issued) -> str:
    """The base64 body of the key's PEM, to assert it appears nowhere."""
    return "".join(issued.key_pem().decode().strip().splitlines()[1:-1])


class Secret:
    """A key secret in a primary region, optionally replicated."""

    def __init__(self, region: str = REGION, replicas: tuple[str, ...] = ()) -> None:
        self.region = region
        self.client = boto("secretsmanager", region)
        extra: dict[str, Any] = {"AddReplicaRegions": [{"Region": r} for r in replicas]} if replicas else {}
        answer = self.client.create_secret(
            Name=f"certfleet/test/{uuid.uuid4().hex[:8]}", SecretString="placeholder", **extra,
        )
        self.arn: str = answer["ARN"]

    def put(self, value: str | bytes) -> str:
        text = value.decode() if isinstance(value, bytes) else value
        return str(self.client.put_secret_value(SecretId=self.arn, SecretString=text)["VersionId"])

    def arn_in(self, region: str) -> str:
        return self.arn.replace(f":{self.region}:", f":{region}:")


def certificate_props(
    issued: Issued, pki: DemoPKI, secret_arn: str, version: str = "", *, cert_id: str = "Certs/Www", **extra: str,
) -> dict[str, Any]:
    """ResourceProperties as ImportedCertificate synthesizes them (every value a string)."""
    return {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:Certs-Provider",
        "Certificate": issued.pem().decode(),
        "CertificateChain": pki.chain_pem().decode(),
        "Fingerprint": fingerprint(issued),
        "KeyAlgorithm": acm_algorithm(issued),
        "KeySecretId": secret_arn,
        "KeySecretVersionId": version,
        "Tags": [
            {"Key": "certfleet:managed-by", "Value": "certfleet"},
            {"Key": "certfleet:fleet", "Value": "Certs"},
            {"Key": "certfleet:id", "Value": cert_id},
        ],
        "RemovalPolicy": "destroy",
        "DeleteTimeoutSeconds": "1500",
        **extra,
    }


class Resource:
    """One custom resource driven like aws-cdk-lib's custom_resources.Provider drives its handlers."""

    def __init__(self, module: Any, resource_type: str, logical_id: str = "Cert") -> None:
        self.module = module
        self.resource_type = resource_type
        self.logical_id = logical_id
        self.physical_id: str | None = None
        self.props: dict[str, Any] | None = None
        self.data: dict[str, Any] = {}

    def event(self, kind: str, props: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "RequestType": kind, "ServiceToken": props.get("ServiceToken", "token"),
            "ResponseURL": "https://cloudformation-custom-resource-response.example/...",
            "StackId": STACK_ID, "RequestId": str(uuid.uuid4()), "LogicalResourceId": self.logical_id,
            "ResourceType": self.resource_type, "ResourceProperties": props,
        }
        if kind != "Create":
            event["PhysicalResourceId"] = self.physical_id
        if kind == "Update":
            event["OldResourceProperties"] = old if old is not None else self.props
        return event

    def on_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """onEvent, then the framework's merge: what isComplete receives."""
        result = self.module.on_event(event, None)
        assert len(framework_response(event, result)) < RESPONSE_LIMIT
        physical = result.get("PhysicalResourceId") or event.get("PhysicalResourceId") or event["RequestId"]
        return {**event, **result, "PhysicalResourceId": physical}

    def run(self, event: dict[str, Any], *, poll: float = 0.05, polls: int = 200) -> dict[str, Any]:
        """onEvent + isComplete polling; returns the final response the framework would send."""
        merged = self.on_event(event)
        if hasattr(self.module, "is_complete"):
            for _ in range(polls):
                answer = self.module.is_complete(merged, None)
                if answer["IsComplete"]:
                    merged = {**merged, "Data": {**(merged.get("Data") or {}), **(answer.get("Data") or {})}}
                    break
                assert set(answer) == {"IsComplete"}, "Data is not allowed when IsComplete is False"
                time.sleep(poll)
            else:
                raise AssertionError("isComplete never completed")
        assert len(framework_response(event, merged)) < RESPONSE_LIMIT
        if event["RequestType"] != "Delete":
            self.physical_id = merged["PhysicalResourceId"]
            self.props = event["ResourceProperties"]
            self.data = merged.get("Data") or {}
        return merged

    def create(self, props: dict[str, Any]) -> dict[str, Any]:
        return self.run(self.event("Create", props))

    def update(self, props: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.run(self.event("Update", props, old))

    def delete(self, physical_id: str | None = None, props: dict[str, Any] | None = None) -> dict[str, Any]:
        event = self.event("Delete", props or self.props or {})
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        return self.run(event)


def all_certificates(region: str = REGION) -> list[dict[str, Any]]:
    """Every certificate in the region, whatever its key type."""
    keys = ["RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1"]
    pages = boto("acm", region).get_paginator("list_certificates").paginate(Includes={"keyTypes": keys})
    return [s for page in pages for s in page["CertificateSummaryList"]]


def leaf_in_acm(arn: str) -> str:
    """The sha256 fingerprint of the leaf ACM holds at ``arn``."""
    pem = boto("acm", arn.split(":")[3]).get_certificate(CertificateArn=arn)["Certificate"]
    return x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()


def der_pkcs8(issued: Issued) -> bytes:
    return issued.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    )


#: The encryption context `certfleet seal` binds a key to, for www.example.com.
CONTEXT = {"certfleet:certificate": "www.example.com"}


class Sealed:
    """What `certfleet seal` produces: a KMS ciphertext of the DER PKCS#8 key, bound to an encryption context."""

    def __init__(self, issued: Issued, region: str = "us-east-1", context: dict[str, str] | None = None) -> None:
        self.kms = boto("kms", region)
        self.key_arn: str = self.kms.create_key(Description="certfleet test sealing key")["KeyMetadata"]["Arn"]
        self.context = dict(context or CONTEXT)
        self.issued = issued

    def ciphertext(self) -> str:
        blob = self.kms.encrypt(KeyId=self.key_arn, Plaintext=der_pkcs8(self.issued), EncryptionContext=self.context)
        return base64.b64encode(blob["CiphertextBlob"]).decode()

    def props(self, secret_arn: str, ciphertext: str | None = None, **extra: Any) -> dict[str, Any]:
        return {
            "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:Certs-KeyWriter",
            "Ciphertext": ciphertext or self.ciphertext(),
            "KmsKeyId": self.key_arn,
            "EncryptionContext": dict(self.context),
            "SecretId": secret_arn,
            "SpkiSha256": "informative",
            **extra,
        }
