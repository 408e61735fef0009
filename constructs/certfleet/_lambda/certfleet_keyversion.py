"""Custom::CertfleetKeyVersion: pin the AWSCURRENT version of a user's key secret once per certificate change.

Every importer of the fleet then reads that exact version (from a lagging replica too), and a rollback restores the
old resource, with its old version, without calling anything: the physical id changes with the certificates."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:  # checked as part of the certfleet package
    from certfleet._lambda.certfleet_common import LOG, OnEventResponse, client, code, describe, region
    from certfleet._lambda.certfleet_contract import KEY_VERSION_TYPE, CustomResourceEvent, KeyVersionProperties
else:  # the Lambda asset's top level, as /var/task is
    from certfleet_common import LOG, OnEventResponse, client, code, describe, region
    from certfleet_contract import KEY_VERSION_TYPE, CustomResourceEvent, KeyVersionProperties

RESOURCE_TYPE = KEY_VERSION_TYPE
KeyVersionEvent = CustomResourceEvent[KeyVersionProperties]
PREFIX = "certfleet-key-version"


def on_event(event: KeyVersionEvent, context: object = None) -> OnEventResponse:
    """Create/Update: AWSCURRENT's VersionId, resolved again only when the secret or the certificates changed.
    Delete: nothing (the secret is the user's)."""
    props: KeyVersionProperties = event["ResourceProperties"]
    secret_id = props["SecretId"]
    pin = _pin(secret_id, props.get("Fingerprints") or [])
    held = str(event.get("PhysicalResourceId") or "")
    if event["RequestType"] == "Delete":
        LOG.info("Delete %s: nothing to do (the secret is not certfleet's)", held)
        return {"PhysicalResourceId": held}
    if event["RequestType"] == "Update" and held.startswith(f"{pin}/"):
        version = held.removeprefix(f"{pin}/")
        LOG.info("Update %s: same secret and certificates, version %s kept", secret_id, version)
    else:
        version = _current(secret_id)
        LOG.info("%s %s: pinned AWSCURRENT version %s", event["RequestType"], secret_id, version)
    return {"PhysicalResourceId": f"{pin}/{version}", "Data": {"VersionId": version}}


def _pin(secret_id: str, fingerprints: list[str]) -> str:
    """What the pinned version belongs to: the secret and the certificates that use its key (a new one of either is a
    new physical id, so that CloudFormation replaces the resource and a rollback brings the old one back)."""
    digest = hashlib.sha256("\n".join([secret_id, *sorted(fingerprints)]).encode()).hexdigest()[:32]
    return f"{PREFIX}/{digest}"


def _current(secret_id: str) -> str:
    """The VersionId that holds AWSCURRENT in the secret's own region (DescribeSecret: no value is read)."""
    home = secret_id.split(":")[3] if secret_id.startswith("arn:") else region()
    try:
        described = client("secretsmanager", home).describe_secret(SecretId=secret_id)
    except ClientError as exc:
        if code(exc) == "ResourceNotFoundException":
            raise RuntimeError(
                f"secret {secret_id} does not exist in {home} (or this function may not describe it): create it with "
                "the certificate's private key, or give KeySource.secret the secret's exact name or ARN",
            ) from None
        raise RuntimeError(f"cannot describe secret {secret_id} in {home}: {describe(exc)}") from None
    if described.get("DeletedDate"):
        raise RuntimeError(
            f"secret {secret_id} in {home} is scheduled for deletion: restore it "
            f"(aws secretsmanager restore-secret --secret-id {secret_id} --region {home}) and deploy again",
        )
    stages: dict[str, list[str]] = described.get("VersionIdsToStages") or {}
    current = next((version for version, labels in stages.items() if "AWSCURRENT" in labels), None)
    if current is None:
        raise RuntimeError(
            f"secret {secret_id} in {home} has no AWSCURRENT version: put the certificate's private key into it "
            f"(aws secretsmanager put-secret-value --secret-id {secret_id} --secret-string file://private.key)",
        )
    return str(current)
