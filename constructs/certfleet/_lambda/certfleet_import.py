"""Custom::CertfleetCertificate: import a third-party certificate into ACM, re-import in place, adopt, delete.

Without a Certificate property (material mode: an ACME source), the key's secret holds the certificate, chain and key
as JSON (AcmeMaterial), and the newest of its pinned and AWSCURRENT (when it names the same Names) versions is imported,
never one ending before the certificate ACM already holds for the same Names.
The same provider serves Custom::CertfleetSweeper: its events go to certfleet_sweeper."""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

if TYPE_CHECKING:  # checked as part of the certfleet package
    from mypy_boto3_acm import ACMClient

    from certfleet._lambda import certfleet_sweeper
    from certfleet._lambda.certfleet_common import (
        LOG,
        IsCompleteResponse,
        LeafFacts,
        OnEventResponse,
        backoff,
        client,
        code,
        deadline,
        describe,
        dns_names,
        key_in,
        leaf_facts,
        material_in,
        material_names,
        pem_der,
        region,
        seconds,
        secret_text,
        sha256_hex,
        tagged,
        try_delete,
    )
    from certfleet._lambda.certfleet_contract import (
        FLEET_TAG,
        ID_TAG,
        OWNER_TAG,
        RETIRED_TAG,
        SOURCE_TAG,
        SWEEPER_TYPE,
        CertificateProperties,
        CustomResourceEvent,
        Tag,
    )
else:  # the Lambda asset's top level, as /var/task is
    import certfleet_sweeper
    from certfleet_common import (
        LOG,
        IsCompleteResponse,
        LeafFacts,
        OnEventResponse,
        backoff,
        client,
        code,
        deadline,
        describe,
        dns_names,
        key_in,
        leaf_facts,
        material_in,
        material_names,
        pem_der,
        region,
        seconds,
        secret_text,
        sha256_hex,
        tagged,
        try_delete,
    )
    from certfleet_contract import (
        FLEET_TAG,
        ID_TAG,
        OWNER_TAG,
        RETIRED_TAG,
        SOURCE_TAG,
        SWEEPER_TYPE,
        CertificateProperties,
        CustomResourceEvent,
        Tag,
    )

CertificateEvent = CustomResourceEvent[CertificateProperties]
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")
IDENTITY = (FLEET_TAG, ID_TAG)
MAX_TAG_VALUE = 256
_THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
CURRENT = "AWSCURRENT"
_WHAT = "the certificate material"


@dataclass(frozen=True)
class Leaf:
    """What one import sends: certificate and chain (PEM), the leaf's fingerprint, the key secret's version (``""``:
    AWSCURRENT), once read the key (never printed) and, for material, when the certificate ends."""

    certificate: str
    chain: str
    fingerprint: str
    version: str
    key: str = field(default="", repr=False)
    not_after: dt.datetime | None = None


def on_event(event: CertificateEvent, context: object = None) -> OnEventResponse:
    """Create / Update / Delete one imported certificate; PhysicalResourceId is its ARN."""
    if event.get("ResourceType") == SWEEPER_TYPE:
        return certfleet_sweeper.on_event(cast("certfleet_sweeper.SweeperEvent", event), context)
    kind = event["RequestType"]
    props: CertificateProperties = event["ResourceProperties"]
    until = deadline(context, "CERTFLEET_IMPORT_RETRY_SECONDS", 120)
    if kind == "Create":
        return _adopt_or_import(props, _wanted(props, until), kind, event, until)
    if kind == "Update":
        return _update(event, props, until)
    if kind == "Delete":
        return _delete(event.get("PhysicalResourceId", ""), props, event)
    raise ValueError(f"unknown RequestType {kind!r}")


def is_complete(event: CertificateEvent, context: object = None) -> IsCompleteResponse:
    """Create/Update are complete at once; a Delete refused while in use is retried until its deadline."""
    if event.get("ResourceType") == SWEEPER_TYPE:
        return certfleet_sweeper.is_complete(cast("certfleet_sweeper.SweeperEvent", event), context)
    data = event.get("Data") or {}
    if event["RequestType"] != "Delete" or data.get("DeletePending") != "true":
        return {"IsComplete": True}
    arn = event["PhysicalResourceId"]
    if try_delete(arn):
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


def _update(event: CertificateEvent, props: CertificateProperties, until: float) -> OnEventResponse:
    arn = event.get("PhysicalResourceId", "")
    old: CertificateProperties = event.get("OldResourceProperties") or cast("CertificateProperties", {})
    _refuse_identity_change(arn, props, old)
    leaf = _wanted(props, until)
    if not _ACM_ARN.match(arn) or props["KeyAlgorithm"] != old.get("KeyAlgorithm"):
        return _adopt_or_import(props, leaf, "Update (new key type)", event, until)
    if _tag(props, SOURCE_TAG) != _tag(old, SOURCE_TAG):  # tags come with an import only: the renewer finds its by them
        return _adopt_or_import(props, leaf, "Update (new source)", event, until)
    acm: ACMClient = client("acm")
    try:
        held = _fingerprint(acm, arn)
    except ClientError as exc:
        if code(exc) != "ResourceNotFoundException":
            raise
        return _adopt_or_import(props, leaf, "Update (certificate gone)", event, until)
    # what ACM holds: the leaf (its fingerprint), the chain and the key type (compared above); not the key's secret
    # or version: a leaf has one key, which ACM checked, so the same leaf with its key in another secret (a FleetGroup
    # fleet that moved shards) imports nothing. Material mode: the chain comes with the leaf, from the same version
    same_chain = _material_mode(props) or props.get("CertificateChain", "") == old.get("CertificateChain", "")
    if held == leaf.fingerprint and same_chain:
        LOG.info("Update %s: already holds %s, nothing imported", arn, held)
        return _result(acm, arn, props, leaf)
    if _acm_ends_later(acm, arn, props, old, leaf):
        return _result(acm, arn, props, replace(leaf, fingerprint=held, version=""))
    leaf = _keyed(props, leaf, until)
    try:
        _import(props, leaf, arn, until)
    except ClientError as exc:
        if code(exc) != "ResourceNotFoundException":
            raise
        return _adopt_or_import(props, leaf, "Update (certificate gone)", event, until)
    LOG.info("Update %s: re-imported %s, key %s version %s", arn, leaf.fingerprint, props["KeySecretId"], leaf.version)
    return _result(acm, arn, props, leaf)


def _acm_ends_later(
    acm: ACMClient, arn: str, props: CertificateProperties, old: CertificateProperties, leaf: Leaf,
) -> bool:
    """Material mode, Names unchanged: whether ACM's certificate ends after ``leaf`` (the renewer re-imported a newer
    one from the primary while this region's replica lags, or its replication failed), so importing ``leaf`` would
    downgrade it. New Names import the material even when it ends earlier: a new order's lifetime may be shorter."""
    if leaf.not_after is None or dns_names(props.get("Names") or ()) != dns_names(old.get("Names") or ()):
        return False
    held = acm.describe_certificate(CertificateArn=arn)["Certificate"].get("NotAfter")
    if held is None or held <= leaf.not_after:
        return False
    LOG.info("Update %s: ACM holds a certificate ending %s, after %s version %s (ending %s): nothing imported", arn,
             held.astimezone(dt.UTC).isoformat(), props["KeySecretId"], leaf.version, leaf.not_after.isoformat())
    return True


def _tag(props: CertificateProperties, key: str) -> str:
    return next((t.get("Value", "") for t in props.get("Tags") or [] if t.get("Key") == key), "")


def _identity(tags: list[Tag] | None) -> dict[str, str]:
    """The identity tags (fleet, id) among ``tags`` (the Tags property: a list of {Key, Value})."""
    found = {str(t.get("Key")): str(t.get("Value", "")) for t in tags or [] if isinstance(t, dict)}
    return {k: found.get(k, "") for k in IDENTITY}


def _refuse_identity_change(arn: str, props: CertificateProperties, old: CertificateProperties) -> None:
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


def _owner_value(event: CertificateEvent) -> str:
    """This resource as the owner tag records it: ``<StackId>/<LogicalResourceId>``, hashed when over 256 chars."""
    stack_id, logical = str(event.get("StackId", "")), str(event.get("LogicalResourceId", ""))
    if not stack_id:
        return ""
    value = f"{stack_id}/{logical}" if logical else stack_id
    return value if len(value) <= MAX_TAG_VALUE else f"sha256:{sha256_hex(value.encode())}"


def _adopt_or_import(
    props: CertificateProperties, leaf: Leaf, why: str, event: CertificateEvent, until: float,
) -> OnEventResponse:
    acm: ACMClient = client("acm")
    found = _find(acm, props, leaf.fingerprint)
    if found:
        arn, tags = found
        _take_over(acm, arn, tags, _owner_value(event))
        LOG.info("%s: adopted %s (already imported with these tags and fingerprint), key %s version %s", why, arn,
                 props["KeySecretId"], leaf.version or CURRENT)
        return _result(acm, arn, props, leaf)
    leaf = _keyed(props, leaf, until)
    arn = _import(props, leaf, None, until)
    LOG.info("%s: imported %s, key %s version %s", why, arn, props["KeySecretId"], leaf.version)
    return _result(acm, arn, props, leaf)


def _find(acm: ACMClient, props: CertificateProperties, fingerprint: str) -> tuple[str, dict[str, str]] | None:
    """A certificate carrying every identity tag and the wanted fingerprint (a retried Create, a rollback, a
    certificate a FleetGroup reshard moves between stacks): a live one first, else a retired one."""
    wanted = {t["Key"]: t.get("Value", "") for t in props.get("Tags") or []}
    retired = None
    for arn, tags in tagged(acm, frozenset(props.get("Names") or ())):
        if all(tags.get(k) == v for k, v in wanted.items()) and _fingerprint(acm, arn) == fingerprint:
            if RETIRED_TAG not in tags:
                return arn, tags
            retired = retired or (arn, tags)
    return retired


def _take_over(acm: ACMClient, arn: str, tags: dict[str, str], owner: str) -> None:
    """Make an adopted certificate this resource's: no longer retired, and owned by ``owner`` (so that the resource
    it moved away from, in another stack or the same one, leaves it in place when it is deleted)."""
    if RETIRED_TAG in tags:
        acm.remove_tags_from_certificate(CertificateArn=arn, Tags=[{"Key": RETIRED_TAG, "Value": tags[RETIRED_TAG]}])
        LOG.info("Adopt %s: no longer retired", arn)
    if owner and tags.get(OWNER_TAG) != owner:
        acm.add_tags_to_certificate(CertificateArn=arn, Tags=[{"Key": OWNER_TAG, "Value": owner}])


def _import(props: CertificateProperties, leaf: Leaf, arn: str | None, until: float) -> str:
    """ImportCertificate (re-import when ``arn``), retried while throttled until ``until``; errors quote ACM, never
    the request. The retries of many concurrent handlers keep ACM's one import per second busy: full jitter, capped
    at a few import intervals (CERTFLEET_IMPORT_INTERVAL_SECONDS, 1 s: ACM's rate; benches scale it)."""
    args: dict[str, Any] = {"Certificate": leaf.certificate.encode(), "PrivateKey": leaf.key.encode()}
    if leaf.chain.strip():
        args["CertificateChain"] = leaf.chain.encode()
    if arn:
        args["CertificateArn"] = arn
    else:
        args["Tags"] = props.get("Tags") or []
    acm: ACMClient = client("acm", retry=False)
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
        hint = (f" (secret {props['KeySecretId']} version {leaf.version or CURRENT} must hold this certificate's "
                "unencrypted private key)") if "key" in describe(exc).lower() else ""
        raise RuntimeError(
            f"ACM refused to import certificate {leaf.fingerprint[:16]}... into {arn or 'a new certificate'} "
            f"in {region()}: {describe(exc)}{hint}",
        ) from None


def _throttled(exc: ClientError) -> bool:
    return code(exc) in _THROTTLED or (code(exc) == "LimitExceededException" and "rate" in describe(exc).lower())


def _material_mode(props: CertificateProperties) -> bool:
    """No Certificate property: the key's secret holds the material (an ACME source)."""
    return not props.get("Certificate")


def _wanted(props: CertificateProperties, until: float) -> Leaf:
    """The certificate this resource asks for: its properties' (the key read only when imported), or in material mode
    the newest material of the key's secret, key included."""
    certificate = props.get("Certificate")
    if not certificate:
        return _material(props, until)
    fingerprint = props.get("Fingerprint") or sha256_hex(pem_der(certificate))
    return Leaf(certificate, props.get("CertificateChain", ""), fingerprint, props.get("KeySecretVersionId", ""))


def _keyed(props: CertificateProperties, leaf: Leaf, until: float) -> Leaf:
    """``leaf`` with its key, read from the pinned version when not read yet."""
    if leaf.key:
        return leaf
    key, version = _read_key(props, until)
    return replace(leaf, key=key, version=version)


def _read_key(props: CertificateProperties, until: float) -> tuple[str, str]:
    """The PEM private key at the pinned version (plain PEM, or JSON with "private_key") and the version read."""
    text, version = secret_text(props["KeySecretId"], props.get("KeySecretVersionId", ""), until, "the private key")
    return key_in(text, f"secret {props['KeySecretId']} version {version}"), version


def _material(props: CertificateProperties, until: float) -> Leaf:
    """Material mode: the material at the pinned version (waiting out replica lag) or at AWSCURRENT, whichever
    certificate ends later. The scheduled renewer moves AWSCURRENT (and ACM) ahead of CloudFormation's pin, so a stack
    update must not import the pinned one back; AWSCURRENT that is not such material (a replica still holding the
    placeholder, another key type) or does not name this resource's Names (as a set; older material names none) is
    passed over, logged: the pinned version is what CloudFormation asked for."""
    pinned = props.get("KeySecretVersionId", "")
    leaf, facts = _parse_material(props, *secret_text(props["KeySecretId"], pinned, until, _WHAT))
    if not pinned:
        return leaf
    try:
        text, version = secret_text(props["KeySecretId"], "", until, _WHAT, wait=False)
    except ClientError:  # a lagging replica without AWSCURRENT yet: the pinned version it does have
        return leaf
    if version == leaf.version:
        return leaf
    try:
        current, current_facts = _parse_material(props, text, version)
    except ValueError as exc:
        LOG.info("Material %s: AWSCURRENT not used: %s", props["KeySecretId"], exc)
        return leaf
    names, wanted = material_names(text), dns_names(props.get("Names") or ())
    if names != wanted:
        LOG.info("Material %s: AWSCURRENT %s not used: it names %s, this resource's Names are %s", props["KeySecretId"],
                 version, sorted(names) if names is not None else "nothing (older material)", sorted(wanted))
        return leaf
    if current_facts.not_after <= facts.not_after:
        return leaf
    LOG.info("Material %s: AWSCURRENT %s (not after %s) is newer than the pinned %s (not after %s): imported instead",
             props["KeySecretId"], version, current_facts.not_after.isoformat(), pinned, facts.not_after.isoformat())
    return current


def _parse_material(props: CertificateProperties, text: str, version: str) -> tuple[Leaf, LeafFacts]:
    """One version's AcmeMaterial as a Leaf (key included) with its certificate's facts; ValueError naming the secret
    and what is wrong (never a value) when it is not material for this resource's key type."""
    where = f"secret {props['KeySecretId']} version {version}"
    certificate, chain, key = material_in(text, where)
    try:
        der = pem_der(certificate)
        facts = leaf_facts(der)
    except ValueError as exc:
        raise ValueError(f'{where}: its "certificate" is not a PEM X.509 certificate ({exc})') from None
    if facts.key_type != props["KeyAlgorithm"]:
        raise ValueError(
            f"{where} holds a certificate of key type {facts.key_type or 'none ACM imports'}, but this resource's "
            f"KeyAlgorithm is {props['KeyAlgorithm']}: ACM keeps one key type per certificate. Deploy the fleet with "
            "the key type its ACME source orders (the issuer writes a new version when the key type changes).",
        )
    return Leaf(certificate, chain, sha256_hex(der), version, key, facts.not_after), facts


def _fingerprint(acm: ACMClient, arn: str) -> str:
    return sha256_hex(pem_der(acm.get_certificate(CertificateArn=arn)["Certificate"]))


def _result(acm: ACMClient, arn: str, props: CertificateProperties, leaf: Leaf) -> OnEventResponse:
    not_after = acm.describe_certificate(CertificateArn=arn)["Certificate"].get("NotAfter")
    return {"PhysicalResourceId": arn, "Data": {
        "CertificateArn": arn,
        "NotAfter": not_after.astimezone(dt.UTC).isoformat() if not_after else "",
        "KeyAlgorithm": props["KeyAlgorithm"],
        "KeyVersionId": leaf.version,
        "Fingerprint": leaf.fingerprint,
    }}


def _delete(arn: str, props: CertificateProperties, event: CertificateEvent) -> OnEventResponse:
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
    if try_delete(arn):
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


def _successor(arn: str, props: CertificateProperties) -> str | None:
    """Another certificate of the same resource (same certfleet:id): this Delete is a replacement's cleanup."""
    ident = {t["Key"]: t.get("Value", "") for t in props.get("Tags") or []}.get(ID_TAG)
    if not ident:
        return None
    acm: ACMClient = client("acm", arn.split(":")[3])
    for other, tags in tagged(acm):
        if other != arn and tags.get(ID_TAG) == ident and RETIRED_TAG not in tags:
            return other
    return None


def _adopted_by_another(owner: str, event: CertificateEvent) -> bool:
    """Whether the owner tag names another resource than the one this Delete is for (no tag: the importer owns it;
    a bare StackId, as older certfleet wrote it: any resource of that stack)."""
    stack_id = str(event.get("StackId", ""))
    if not owner or not stack_id:
        return False
    return owner not in (_owner_value(event), stack_id)


def _owner(arn: str) -> str:
    """The resource that adopted ``arn`` last (its owner tag; empty: the resource that imported it)."""
    acm: ACMClient = client("acm", arn.split(":")[3])
    try:
        tags = acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]
    except ClientError as exc:
        if code(exc) == "ResourceNotFoundException":
            return ""
        raise
    return next((str(t.get("Value", "")) for t in tags if t["Key"] == OWNER_TAG), "")


def _retire(arn: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    client("acm", arn.split(":")[3]).add_tags_to_certificate(
        CertificateArn=arn, Tags=[{"Key": RETIRED_TAG, "Value": stamp}],
    )
