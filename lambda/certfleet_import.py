"""Custom::CertfleetCertificate: import a third-party certificate into ACM, re-import in place, adopt, delete."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from certfleet_common import LOG, backoff, client, code, deadline, describe, pem_der, region, seconds, sha256_hex

KEY_TYPES = ["RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1"]
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")
_MATERIAL = ("CertificateChain", "KeyAlgorithm")
"""What ACM holds besides the leaf (its fingerprint). Not the key's secret or version: a leaf has one key, which ACM
checked, so the same leaf with its key in another secret (a FleetGroup fleet that moved shards) imports nothing."""
SWEEPER = "Custom::CertfleetSweeper"
ID_TAG, FLEET_TAG, RETIRED_TAG = "certfleet:id", "certfleet:fleet", "certfleet:retired"
OWNER_TAG = "certfleet:stack"
"""Set when a resource adopts a certificate another resource imported (a FleetGroup reshard, a construct moved to a
new logical id): ``<StackId>/<LogicalResourceId>`` of the adopter (a bare StackId: written by earlier certfleet)."""
IDENTITY = (FLEET_TAG, ID_TAG)
MAX_TAG_VALUE = 256
_THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}


def on_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Create / Update / Delete one imported certificate; PhysicalResourceId is its ARN."""
    kind, props = event["RequestType"], event["ResourceProperties"]
    until = deadline(context, "CERTFLEET_IMPORT_RETRY_SECONDS", 120)
    if event.get("ResourceType") == SWEEPER:
        return _sweep(event, props)
    if kind == "Create":
        return _adopt_or_import(props, kind, event, until)
    if kind == "Update":
        return _update(event, props, until)
    if kind == "Delete":
        return _delete(event.get("PhysicalResourceId", ""), props, event)
    raise ValueError(f"unknown RequestType {kind!r}")


def is_complete(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Create/Update are complete at once; a Delete refused while in use is retried until its deadline."""
    data = event.get("Data") or {}
    if event.get("ResourceType") == SWEEPER:
        return _sweep_again(event, data)
    if event["RequestType"] != "Delete" or data.get("DeletePending") != "true":
        return {"IsComplete": True}
    arn = event["PhysicalResourceId"]
    if _try_delete(arn):
        return {"IsComplete": True}
    if time.time() < float(data["DeleteDeadline"]):
        LOG.info("Delete %s: still in use, waiting", arn)
        return {"IsComplete": False}
    certificate = client("acm", arn.split(":")[3]).describe_certificate(CertificateArn=arn)["Certificate"]
    users = certificate.get("InUseBy") or []
    raise RuntimeError(
        f"ACM certificate {arn} is still in use{' by ' + ', '.join(users[:3]) if users else ''} after "
        f"{data.get('DeleteTimeoutSeconds', '?')} s: remove it from the service that uses it and delete again, "
        "or give the certificate removal_policy=RemovalPolicy.RETAIN to leave it in ACM.",
    )


def _update(event: dict[str, Any], props: dict[str, Any], until: float) -> dict[str, Any]:
    arn, old = event.get("PhysicalResourceId", ""), event.get("OldResourceProperties") or {}
    _refuse_identity_change(arn, props, old)
    if not _ACM_ARN.match(arn) or props["KeyAlgorithm"] != old.get("KeyAlgorithm"):
        return _adopt_or_import(props, "Update (new key type)", event, until)
    acm = client("acm")
    try:
        held = _fingerprint(acm, arn)
    except ClientError as exc:
        if code(exc) != "ResourceNotFoundException":
            raise
        return _adopt_or_import(props, "Update (certificate gone)", event, until)
    if held == props["Fingerprint"] and all(props.get(k, "") == old.get(k, "") for k in _MATERIAL):
        LOG.info("Update %s: already holds %s, nothing imported", arn, held)
        return _result(acm, arn, props, props.get("KeySecretVersionId", ""))
    key, version = _read_key(props, until)
    try:
        _import(props, key, arn, until)
    except ClientError as exc:
        if code(exc) != "ResourceNotFoundException":
            raise
        return _adopt_or_import(props, "Update (certificate gone)", event, until)
    LOG.info("Update %s: re-imported %s, key %s version %s", arn, props["Fingerprint"], props["KeySecretId"], version)
    return _result(acm, arn, props, version)


def _identity(tags: Any) -> dict[str, str]:
    """The identity tags (fleet, id) among ``tags`` (the Tags property: a list of {Key, Value})."""
    found = {str(t.get("Key")): str(t.get("Value", "")) for t in tags or [] if isinstance(t, dict)}
    return {k: found.get(k, "") for k in IDENTITY}


def _refuse_identity_change(arn: str, props: dict[str, Any], old: dict[str, Any]) -> None:
    """Fail an Update that renames the fleet (or the certificate's id) before touching anything: the importer's role
    only covers the new name, and ACM's tags are the certificate's identity. A rollback (ACM already carries the
    identity asked for) goes through."""
    new, before = _identity(props.get("Tags")), _identity(old.get("Tags"))
    if new == before or not _ACM_ARN.match(arn):
        return
    try:
        held = _identity(client("acm", arn.split(":")[3]).list_tags_for_certificate(CertificateArn=arn)["Tags"])
    except ClientError as exc:
        if code(exc) != "ResourceNotFoundException":
            raise
        held = before
    if held == new:
        LOG.info("Update %s: already carries identity %s (a rollback), nothing to rename", arn, new)
        return
    raise RuntimeError(
        f"certificate {arn} cannot change its certfleet identity from fleet {before[FLEET_TAG]!r} id "
        f"{before[ID_TAG]!r} to fleet {new[FLEET_TAG]!r} id {new[ID_TAG]!r}: the fleet name (and the construct path) "
        "is part of a certificate's identity in ACM, and the importer may only touch certificates of the new name. "
        "Nothing was changed; CloudFormation rolls back. To rename: add a fleet with the new name, deploy, move the "
        "consumers to it, then remove the old fleet and deploy again.",
    )


def _owner_value(event: dict[str, Any]) -> str:
    """This resource as the owner tag records it: ``<StackId>/<LogicalResourceId>``, hashed when over 256 chars."""
    stack_id, logical = str(event.get("StackId", "")), str(event.get("LogicalResourceId", ""))
    if not stack_id:
        return ""
    value = f"{stack_id}/{logical}" if logical else stack_id
    return value if len(value) <= MAX_TAG_VALUE else f"sha256:{sha256_hex(value.encode())}"


def _adopt_or_import(props: dict[str, Any], why: str, event: dict[str, Any], until: float) -> dict[str, Any]:
    acm = client("acm")
    found = _find(acm, props)
    if found:
        arn, tags = found
        _take_over(acm, arn, tags, _owner_value(event))
        LOG.info("%s: adopted %s (already imported with these tags and fingerprint), key %s version %s", why, arn,
                 props["KeySecretId"], props.get("KeySecretVersionId") or "AWSCURRENT")
        return _result(acm, arn, props, props.get("KeySecretVersionId", ""))
    key, version = _read_key(props, until)
    arn = _import(props, key, None, until)
    LOG.info("%s: imported %s, key %s version %s", why, arn, props["KeySecretId"], version)
    return _result(acm, arn, props, version)


def _find(acm: Any, props: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """A certificate carrying every identity tag and the wanted fingerprint (a retried Create, a rollback, a
    certificate a FleetGroup reshard moves between stacks): a live one first, else a retired one."""
    wanted = {t["Key"]: t.get("Value", "") for t in props.get("Tags") or []}
    retired = None
    for arn, tags in _tagged(acm, frozenset(props.get("Names") or ())):
        if all(tags.get(k) == v for k, v in wanted.items()) and _fingerprint(acm, arn) == props["Fingerprint"]:
            if RETIRED_TAG not in tags:
                return arn, tags
            retired = retired or (arn, tags)
    return retired


def _take_over(acm: Any, arn: str, tags: dict[str, str], owner: str) -> None:
    """Make an adopted certificate this resource's: no longer retired, and owned by ``owner`` (so that the resource
    it moved away from, in another stack or the same one, leaves it in place when it is deleted)."""
    if RETIRED_TAG in tags:
        acm.remove_tags_from_certificate(CertificateArn=arn, Tags=[{"Key": RETIRED_TAG, "Value": tags[RETIRED_TAG]}])
        LOG.info("Adopt %s: no longer retired", arn)
    if owner and tags.get(OWNER_TAG) != owner:
        acm.add_tags_to_certificate(CertificateArn=arn, Tags=[{"Key": OWNER_TAG, "Value": owner}])


def _import(props: dict[str, Any], key: str, arn: str | None, until: float) -> str:
    """ImportCertificate (re-import when ``arn``), retried while throttled until ``until``; errors quote ACM, never
    the request. The retries of many concurrent handlers keep ACM's one import per second busy: full jitter, capped
    at a few import intervals (CERTFLEET_IMPORT_INTERVAL_SECONDS, 1 s: ACM's rate; benches scale it)."""
    args: dict[str, Any] = {"Certificate": props["Certificate"].encode(), "PrivateKey": key.encode()}
    if props.get("CertificateChain"):
        args["CertificateChain"] = props["CertificateChain"].encode()
    if arn:
        args["CertificateArn"] = arn
    else:
        args["Tags"] = props.get("Tags") or []
    acm = client("acm", retry=False)
    interval = seconds("CERTFLEET_IMPORT_INTERVAL_SECONDS", 1.0)
    started = time.monotonic()
    try:
        return str(backoff(lambda: acm.import_certificate(**args), _throttled, until, "ImportCertificate",
                           base=interval / 2, cap=4 * interval)["CertificateArn"])
    except ClientError as exc:
        if code(exc) == "ResourceNotFoundException" and arn:
            raise
        if _throttled(exc):
            raise RuntimeError(
                f"ACM kept throttling ImportCertificate in {region()} for {time.monotonic() - started:.0f} s, until "
                f"this function's time ran out ({describe(exc)}): more imports at once in this region than ACM's one "
                "per second fits in the importer's timeout; deploy again (imported certificates are adopted), or "
                "deploy fewer stacks of this region in parallel",
            ) from None
        hint = (f" (secret {props['KeySecretId']} version {props.get('KeySecretVersionId') or 'AWSCURRENT'} must "
                "hold this certificate's unencrypted private key)") if "key" in describe(exc).lower() else ""
        raise RuntimeError(
            f"ACM refused to import certificate {props['Fingerprint'][:16]}... into {arn or 'a new certificate'} "
            f"in {region()}: {describe(exc)}{hint}",
        ) from None


def _throttled(exc: ClientError) -> bool:
    return code(exc) in _THROTTLED or (code(exc) == "LimitExceededException" and "rate" in describe(exc).lower())


def _read_key(props: dict[str, Any], until: float) -> tuple[str, str]:
    """The PEM private key and the version read, waiting out replica lag; never logs or quotes the value."""
    secret_id, version = props["KeySecretId"], props.get("KeySecretVersionId", "")
    args = {"SecretId": secret_id, **({"VersionId": version} if version else {"VersionStage": "AWSCURRENT"})}
    home = secret_id.split(":")[3] if secret_id.startswith("arn:") else region()  # another account: the primary
    secrets = client("secretsmanager", home)
    budget = seconds("CERTFLEET_SECRET_WAIT_SECONDS", 120)
    try:
        answer = backoff(lambda: secrets.get_secret_value(**args), lambda e: code(e) == "ResourceNotFoundException",
                         min(until, time.monotonic() + budget), f"GetSecretValue {secret_id} {version or 'AWSCURRENT'}")
    except ClientError as exc:
        raise RuntimeError(
            f"cannot read the private key from secret {secret_id} version {version or 'AWSCURRENT'} in {home} "
            f"within {budget:.0f} s: {describe(exc)} (a replica may still be catching up; check its replication "
            "status and that this function may read the secret)",
        ) from None
    text = answer.get("SecretString") or bytes(answer.get("SecretBinary") or b"").decode("utf-8", "replace")
    where = f"secret {secret_id} version {answer.get('VersionId')}"
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise ValueError(f"{where} starts like JSON but is not valid JSON") from None
        text = data.get("private_key") if isinstance(data, dict) else None
        if not isinstance(text, str):
            raise ValueError(f'{where} is JSON without a "private_key" string field')
    if "-----BEGIN" not in text:
        raise ValueError(f'{where} holds neither a PEM private key nor JSON {{"private_key": PEM}}')
    return text, str(answer.get("VersionId", version))


def _fingerprint(acm: Any, arn: str) -> str:
    return sha256_hex(pem_der(acm.get_certificate(CertificateArn=arn)["Certificate"]))


def _result(acm: Any, arn: str, props: dict[str, Any], version: str) -> dict[str, Any]:
    not_after = acm.describe_certificate(CertificateArn=arn)["Certificate"].get("NotAfter")
    return {"PhysicalResourceId": arn, "Data": {
        "CertificateArn": arn,
        "NotAfter": not_after.astimezone(dt.UTC).isoformat() if not_after else "",
        "KeyAlgorithm": props["KeyAlgorithm"],
        "KeyVersionId": version,
        "Fingerprint": props["Fingerprint"],
    }}


def _delete(arn: str, props: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    if not _ACM_ARN.match(arn):
        LOG.info("Delete %s: not an ACM certificate ARN (the create failed), nothing to delete", arn)
        return {"PhysicalResourceId": arn}
    if props.get("RemovalPolicy") == "retain":
        LOG.info("Delete %s: removal policy retain, left in ACM", arn)
        return {"PhysicalResourceId": arn}
    owner = _owner(arn)
    if _adopted_by_another(owner, event):
        LOG.info("Delete %s: adopted by %s (moved there), left to it", arn, owner)
        return {"PhysicalResourceId": arn, "Data": {"MovedTo": owner}}
    if _try_delete(arn):
        return {"PhysicalResourceId": arn}
    successor = _successor(arn, props)
    if successor or props.get("Group"):
        _retire(arn)
        LOG.info("Delete %s: still in use %s: retired; the sweeper deletes it once released", arn,
                 f"while {successor} replaces it" if successor else "(a FleetGroup stack may adopt it)")
        return {"PhysicalResourceId": arn, "Data": {"Retired": "true", "Successor": successor or ""}}
    timeout = props.get("DeleteTimeoutSeconds") or "1500"
    LOG.info("Delete %s: in use, will retry for up to %s s", arn, timeout)
    return {"PhysicalResourceId": arn, "Data": {
        "DeletePending": "true", "DeleteDeadline": str(time.time() + float(timeout)), "DeleteTimeoutSeconds": timeout,
    }}


def _successor(arn: str, props: dict[str, Any]) -> str | None:
    """Another certificate of the same resource (same certfleet:id): this Delete is a replacement's cleanup."""
    ident = {t["Key"]: t.get("Value", "") for t in props.get("Tags") or []}.get(ID_TAG)
    if not ident:
        return None
    acm = client("acm", arn.split(":")[3])
    for other, tags in _tagged(acm):
        if other != arn and tags.get(ID_TAG) == ident and RETIRED_TAG not in tags:
            return other
    return None


def _adopted_by_another(owner: str, event: dict[str, Any]) -> bool:
    """Whether the owner tag names another resource than the one this Delete is for (no tag: the importer owns it;
    a bare StackId, as older certfleet wrote it: any resource of that stack)."""
    stack_id = str(event.get("StackId", ""))
    if not owner or not stack_id:
        return False
    return owner not in (_owner_value(event), stack_id)


def _owner(arn: str) -> str:
    """The resource that adopted ``arn`` last (its owner tag; empty: the resource that imported it)."""
    acm = client("acm", arn.split(":")[3])
    try:
        tags = acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]
    except ClientError as exc:
        if code(exc) == "ResourceNotFoundException":
            return ""
        raise
    return next((str(t.get("Value", "")) for t in tags if t["Key"] == OWNER_TAG), "")


def _tagged(acm: Any, names: frozenset[str] = frozenset()) -> Iterator[tuple[str, dict[str, str]]]:
    """Every certificate of every key type in the client's region, with its tags; with ``names``, only those whose
    listed names include one of them (a FleetGroup region holds hundreds: one ListTags each would be slow)."""
    for page in acm.get_paginator("list_certificates").paginate(Includes={"keyTypes": KEY_TYPES}):
        for summary in page.get("CertificateSummaryList", []):
            listed = [n for n in [summary.get("DomainName"), *summary.get("SubjectAlternativeNameSummaries", [])] if n]
            if names and listed and names.isdisjoint(listed):
                continue
            arn = str(summary["CertificateArn"])
            tags = {t["Key"]: t.get("Value", "") for t in acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]}
            yield arn, tags


def _retire(arn: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    client("acm", arn.split(":")[3]).add_tags_to_certificate(
        CertificateArn=arn, Tags=[{"Key": RETIRED_TAG, "Value": stamp}],
    )


def _sweep(event: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    """Custom::CertfleetSweeper: delete the fleet's retired certificates once no service uses them."""
    physical = f"certfleet-sweeper-{props.get('Fleet') or props.get('FleetPrefix', '')}"
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": physical}
    waiting = _sweep_regions(props)
    timeout = float(props.get("WaitSeconds") or "600")
    if waiting:
        LOG.info("Sweep: %d retired certificates still in use: %s", len(waiting), ", ".join(waiting))
    return {"PhysicalResourceId": physical, "Data": {  # a count: ARNs would outgrow CloudFormation's 4,096 bytes
        "Waiting": str(len(waiting)), "SweepDeadline": str(time.time() + timeout),
    }}


def _sweep_again(event: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    if event["RequestType"] == "Delete" or str(data.get("Waiting") or "0") == "0":
        return {"IsComplete": True}
    waiting = _sweep_regions(event["ResourceProperties"])  # listed again by the retired tag: Data holds no ARNs
    if not waiting:
        return {"IsComplete": True}
    if time.time() < float(data.get("SweepDeadline", "0")):
        LOG.info("Sweep: %s still in use, waiting", ", ".join(waiting))
        return {"IsComplete": False}
    LOG.warning("Sweep: %s still in use; left retired for the next deploy to delete", ", ".join(waiting))
    return {"IsComplete": True}


def _sweep_regions(props: dict[str, Any]) -> list[str]:
    """Delete every retired certificate of the fleet (or of every fleet whose name starts with ``FleetPrefix``: a
    FleetGroup) that is released; the ARNs still in use."""
    fleet, prefix, waiting = props.get("Fleet", ""), props.get("FleetPrefix", ""), []
    for name in props.get("Regions") or []:
        acm = client("acm", name)
        for arn, tags in list(_tagged(acm)):
            mine = tags.get(FLEET_TAG, "").startswith(prefix) if prefix else tags.get(FLEET_TAG) == fleet
            if not mine or RETIRED_TAG not in tags:
                continue
            if _try_delete(arn):
                LOG.info("Sweep: deleted retired %s", arn)
            else:
                waiting.append(arn)
    return waiting


def _try_delete(arn: str) -> bool:
    """DeleteCertificate; True when gone, False while in use."""
    acm = client("acm", arn.split(":")[3])
    try:
        acm.delete_certificate(CertificateArn=arn)
    except ClientError as exc:
        if code(exc) == "ResourceInUseException":
            return False
        if code(exc) != "ResourceNotFoundException":
            raise RuntimeError(f"cannot delete ACM certificate {arn}: {describe(exc)}") from None
    LOG.info("Delete %s: deleted", arn)
    return True
