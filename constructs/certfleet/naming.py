"""Names a fleet or a FleetGroup derives from its app: stage-scoped names, tag-safe names, accounts and regions."""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Stage, Token
from constructs import Construct

from certfleet._lambda.certfleet_contract import FLEET_TAG
from certfleet.rules import EDGE_REGION

REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
ACCOUNT = re.compile(r"^\d{12}$")
_TAG_NAME = re.compile(r"[\w.:=+@ -]+")
"""A fleet or group name: ACM tag value characters, minus ``/`` (it separates a FleetGroup from its fleets) and
anything IAM reads as a wildcard or a variable (``*``, ``?``, ``$``)."""


def stage_scoped(construct: Construct, id: str) -> str:
    """``id`` prefixed with the name of ``construct``'s Stage (``prod-Certificates``), so that the same app deployed
    as several stages gets distinct stack names, fleet tags and secret names."""
    stage = Stage.of(construct)
    stage_name = stage.stage_name if stage is not None else ""
    return f"{stage_name.replace('/', '-')}-{id}" if stage_name else id


def check_tag_name(owner: Construct, what: str, name: str, limit: int = 256) -> str:
    """``name`` (in the ``certfleet:fleet`` tag, which IAM conditions match), refused unless it is a plain name of
    at most ``limit`` characters (ACM tag values: 256)."""
    if not _TAG_NAME.fullmatch(name) or len(name) > limit:
        raise ValueError(
            f"{owner.node.path}: {what} {name!r} must be 1-{limit} letters, digits, spaces and _.:=+@- (no '/', "
            f"'*', '?' or '$': it becomes the {FLEET_TAG} tag that the importer's IAM conditions match, and '/' "
            "separates a FleetGroup from its fleets); choose another",
        )
    return name


def require_stage(scope: Construct, kind: str, id: str, why: str) -> None:
    """Fail unless ``scope`` is an App or a Stage: the construct ``kind`` creates its own stacks (``why``)."""
    if not isinstance(scope, Stage):
        raise TypeError(
            f"{kind} '{id}' must be created directly in an App or a Stage (it creates {why}), not inside "
            f"{scope.node.path or 'a construct'}: {kind}(app, '{id}', ...)",
        )


def checked_regions(owner: Construct, account: str, regions: Sequence[str], edge: bool) -> tuple[str, ...]:
    """``owner``'s account checked, and its regions in order: us-east-1 first with ``edge``, each once."""
    if not Token.is_unresolved(account) and not ACCOUNT.match(account):
        raise ValueError(f"{owner.node.path}: account {account!r} must be a 12-digit AWS account id")
    bad = [r for r in regions if not REGION.match(r)]
    if bad:
        raise ValueError(f"{owner.node.path}: {', '.join(bad)} is not an AWS region name (e.g. eu-west-1)")
    wanted = tuple(dict.fromkeys(([EDGE_REGION] if edge else []) + list(regions)))
    if not wanted:
        raise ValueError(f"{owner.node.path}: no region: set edge=True (us-east-1) and/or regions=[...]")
    return wanted
