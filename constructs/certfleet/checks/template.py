"""Readers of CloudFormation template JSON that never raise: a missing or odd value reads as empty."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The resource type of a certfleet certificate and the tags that name its fleet and itself.
from certfleet._lambda.certfleet_contract import CERTIFICATE_TYPE as CERTFLEET_TYPE
from certfleet._lambda.certfleet_contract import FLEET_TAG, ID_TAG


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON array (anything else in it reads as an empty object)."""
    return [as_dict(item) for item in as_list(value)]


def is_literal(value: Any) -> bool:
    """A literal string: not an unresolved CDK token, not a dynamic reference."""
    return isinstance(value, str) and "${Token[" not in value and not value.startswith("{{resolve:")


def literal_names(*values: Any) -> tuple[str, ...]:
    """The non-empty literal strings among ``values``."""
    return tuple(str(v) for v in values if is_literal(v) and v)


def tag_value(props: Mapping[str, Any], key: str) -> str | None:
    """The literal value of tag ``key`` in a resource's ``Tags`` list."""
    for tag in dicts(props.get("Tags")):
        if tag.get("Key") == key and is_literal(tag.get("Value")):
            return str(tag["Value"])
    return None


def resources(template: Mapping[str, Any]) -> dict[str, Any]:
    """A template's Resources section (logical id -> resource)."""
    return as_dict(template.get("Resources"))


def properties(resource: Any) -> dict[str, Any]:
    """A resource's Properties."""
    return as_dict(as_dict(resource).get("Properties"))


__all__ = [
    "CERTFLEET_TYPE", "FLEET_TAG", "ID_TAG", "as_dict", "as_list", "dicts", "is_literal", "literal_names", "properties",
    "resources", "tag_value",
]
