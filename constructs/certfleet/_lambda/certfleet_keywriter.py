"""Custom::CertfleetSealedKey: decrypt a sealed private key with KMS and write it to Secrets Manager once.

The same provider serves Custom::CertfleetKeyVersion (certfleet_keyversion): the pinned version of a user's secret."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import TYPE_CHECKING, cast

from botocore.exceptions import ClientError

if TYPE_CHECKING:  # checked as part of the certfleet package
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from certfleet._lambda import certfleet_keyversion
    from certfleet._lambda.certfleet_common import LOG, OnEventResponse, client, code, der_pem, describe, region
    from certfleet._lambda.certfleet_contract import KEY_VERSION_TYPE, CustomResourceEvent, SealedKeyProperties
else:  # the Lambda asset's top level, as /var/task is
    import certfleet_keyversion
    from certfleet_common import LOG, OnEventResponse, client, code, der_pem, describe, region
    from certfleet_contract import KEY_VERSION_TYPE, CustomResourceEvent, SealedKeyProperties

SealedKeyEvent = CustomResourceEvent[SealedKeyProperties]

_WRONG_KEY = {"InvalidCiphertextException", "AccessDeniedException", "IncorrectKeyException"}


def on_event(event: SealedKeyEvent, context: object = None) -> OnEventResponse:
    """Create/Update: make the secret's AWSCURRENT the sealed key, return its VersionId. Delete: keep the secret.

    The version is named after the ciphertext (its ClientRequestToken), so a key deployed again (a revert) gets its
    old version back; Secrets Manager ignores that PutSecretValue, so AWSCURRENT is then moved explicitly."""
    if event.get("ResourceType") == KEY_VERSION_TYPE:
        return certfleet_keyversion.on_event(cast("certfleet_keyversion.KeyVersionEvent", event), context)
    props: SealedKeyProperties = event["ResourceProperties"]
    secret_id = props["SecretId"]
    physical_id = f"{secret_id}#sealed-key"
    if event["RequestType"] == "Delete":
        LOG.info("Delete %s: nothing to do (the secret is retained)", secret_id)
        return {"PhysicalResourceId": event.get("PhysicalResourceId") or physical_id}
    ciphertext = base64.b64decode(props["Ciphertext"])
    pem = der_pem(_decrypt(ciphertext, props["KmsKeyId"], dict(props.get("EncryptionContext") or {})), "PRIVATE KEY")
    secrets = client("secretsmanager", secret_id.split(":")[3] if secret_id.startswith("arn:") else None)
    try:
        current = secrets.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
    except ClientError as exc:
        if code(exc) != "ResourceNotFoundException":
            raise RuntimeError(f"cannot read secret {secret_id}: {describe(exc)}") from None
        current = {}
    if current.get("SecretString", "").strip() == pem.strip():
        version = current["VersionId"]
        LOG.info("%s %s: secret already holds the key (version %s), nothing written", event["RequestType"],
                 secret_id, version)
    else:
        token = str(uuid.UUID(bytes=hashlib.sha256(ciphertext).digest()[:16], version=4))
        try:
            version = secrets.put_secret_value(SecretId=secret_id, SecretString=pem, ClientRequestToken=token)[
                "VersionId"]
        except ClientError as exc:
            raise RuntimeError(f"cannot write the key to secret {secret_id}: {describe(exc)}") from None
        LOG.info("%s %s: wrote the key as version %s", event["RequestType"], secret_id, version)
        _make_current(secrets, secret_id, version)
    return {"PhysicalResourceId": physical_id, "Data": {"VersionId": version}}


def _make_current(secrets: SecretsManagerClient, secret_id: str, version: str) -> None:
    """Move AWSCURRENT to ``version`` unless it is there already (a version written before, a revert: the write was
    ignored), so that readers of AWSCURRENT (EC2 instances) get the key of the deployed certificate."""
    try:
        stages: dict[str, list[str]] = secrets.describe_secret(SecretId=secret_id).get("VersionIdsToStages") or {}
        holder = next((v for v, labels in stages.items() if "AWSCURRENT" in labels), None)
        if holder == version:
            return
        secrets.update_secret_version_stage(
            SecretId=secret_id, VersionStage="AWSCURRENT", MoveToVersionId=version,
            **({"RemoveFromVersionId": holder} if holder else {}),
        )
    except ClientError as exc:
        raise RuntimeError(
            f"cannot make version {version} of secret {secret_id} its AWSCURRENT (the key written earlier): "
            f"{describe(exc)}",
        ) from None
    LOG.info("%s: AWSCURRENT moved from version %s back to %s", secret_id, holder, version)


def _decrypt(ciphertext: bytes, key_id: str, context: dict[str, str]) -> bytes:
    """KMS Decrypt in the key's own region; a clear error when the file was sealed for something else."""
    key_region = key_id.split(":")[3] if key_id.startswith("arn:") else region()
    try:
        plaintext: bytes = client("kms", key_region).decrypt(
            CiphertextBlob=ciphertext, EncryptionContext=context, KeyId=key_id,
        )["Plaintext"]
    except ClientError as exc:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(context.items())) or "(empty)"
        if code(exc) in _WRONG_KEY:
            raise RuntimeError(
                f"KMS cannot decrypt the sealed key with key {key_id} and encryption context {{{shown}}} "
                f"({code(exc)}): the sealed file was made for another encryption context or KMS key, or this "
                "function may not use that key. Re-run `certfleet seal` for this certificate and KMS key.",
            ) from None
        raise RuntimeError(f"KMS Decrypt with key {key_id} failed: {describe(exc)}") from None
    return plaintext
