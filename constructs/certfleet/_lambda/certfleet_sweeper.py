"""Custom::CertfleetSweeper: delete a fleet's (or a FleetGroup's) retired certificates once no service uses them.

Served by the importer's provider: ``certfleet_import.on_event``/``is_complete`` hand a sweeper's events here."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # checked as part of the certfleet package
    from mypy_boto3_acm import ACMClient

    from certfleet._lambda.certfleet_common import LOG, IsCompleteResponse, OnEventResponse, client, tagged, try_delete
    from certfleet._lambda.certfleet_contract import FLEET_TAG, RETIRED_TAG, CustomResourceEvent, SweeperProperties
else:  # the Lambda asset's top level, as /var/task is
    from certfleet_common import LOG, IsCompleteResponse, OnEventResponse, client, tagged, try_delete
    from certfleet_contract import FLEET_TAG, RETIRED_TAG, CustomResourceEvent, SweeperProperties

SweeperEvent = CustomResourceEvent[SweeperProperties]


def on_event(event: SweeperEvent, context: object = None) -> OnEventResponse:
    """Create/Update: delete the released retired certificates, count the rest. Delete: nothing."""
    props: SweeperProperties = event["ResourceProperties"]
    physical = f"certfleet-sweeper-{props.get('Fleet') or props.get('FleetPrefix', '')}"
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": physical}
    waiting = sweep(props)
    timeout = float(props.get("WaitSeconds") or "600")
    if waiting:
        LOG.info("Sweep: %d retired certificates still in use: %s", len(waiting), ", ".join(waiting))
    return {"PhysicalResourceId": physical, "Data": {  # a count: ARNs would outgrow CloudFormation's 4,096 bytes
        "Waiting": str(len(waiting)), "SweepDeadline": str(time.time() + timeout),
    }}


def is_complete(event: SweeperEvent, context: object = None) -> IsCompleteResponse:
    """Complete when nothing retired is left in use, or when the sweep's deadline passed (the next deploy retries)."""
    data = event.get("Data") or {}
    if event["RequestType"] == "Delete" or str(data.get("Waiting") or "0") == "0":
        return {"IsComplete": True}
    waiting = sweep(event["ResourceProperties"])  # listed again by the retired tag: Data holds no ARNs
    if not waiting:
        return {"IsComplete": True}
    if time.time() < float(data.get("SweepDeadline", "0")):
        LOG.info("Sweep: %s still in use, waiting", ", ".join(waiting))
        return {"IsComplete": False}
    LOG.warning("Sweep: %s still in use; left retired for the next deploy to delete", ", ".join(waiting))
    return {"IsComplete": True}


def sweep(props: SweeperProperties) -> list[str]:
    """Delete every retired certificate of the fleet (or of every fleet whose name starts with ``FleetPrefix``: a
    FleetGroup) that is released, with one ACM client per region; the ARNs still in use."""
    fleet, prefix, waiting = props.get("Fleet", ""), props.get("FleetPrefix", ""), []
    for name in props.get("Regions") or []:
        acm: ACMClient = client("acm", name)
        for arn, tags in list(tagged(acm)):
            mine = tags.get(FLEET_TAG, "").startswith(prefix) if prefix else tags.get(FLEET_TAG) == fleet
            if not mine or RETIRED_TAG not in tags:
                continue
            if try_delete(arn, acm):
                LOG.info("Sweep: deleted retired %s", arn)
            else:
                waiting.append(arn)
    return waiting
