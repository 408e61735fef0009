"""Loading a cloud assembly (``cdk.out``): every stack with its name, environment, template and construct paths."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certfleet.checks.template import as_dict, dicts, is_literal, resources


@dataclass(frozen=True)
class StackTemplate:
    """One synthesized stack: its name, where it deploys, and its template."""

    stack_name: str
    construct_path: str
    account: str | None
    region: str | None
    template: dict[str, Any]
    template_path: str
    #: logical id -> construct path, from the assembly's ``aws:cdk:logicalId`` metadata (when known)
    construct_paths: Mapping[str, str] = field(default_factory=dict)
    #: the construct path of the Stage whose nested assembly holds the stack ("" at the top level)
    stage: str = ""

    def path_of(self, logical_id: str) -> str:
        """A resource's construct path: its ``aws:cdk:path`` metadata, else the assembly's metadata, else ""."""
        path = as_dict(as_dict(resources(self.template).get(logical_id)).get("Metadata")).get("aws:cdk:path")
        return str(path) if is_literal(path) else self.construct_paths.get(logical_id, "")


def load_cloud_assembly(cdk_out: str | Path) -> list[StackTemplate]:
    """Every stack of a cloud assembly (``cdk.out``), nested assemblies of Stages included."""
    return list(_load_assembly(Path(cdk_out), recursive=True, seen=set(), stage=""))


def read_assembly_stacks(directory: str | Path) -> list[StackTemplate]:
    """The stacks of one assembly directory only (no nested Stage assemblies)."""
    return list(_load_assembly(Path(directory), recursive=False, seen=set(), stage=""))


def parse_environment(env: str) -> tuple[str | None, str | None]:
    """``aws://ACCOUNT/REGION`` -> (account, region); ``unknown-account``/``unknown-region`` -> None."""
    if not env.startswith("aws://"):
        return None, None
    account, _, region = env[len("aws://"):].partition("/")
    return (
        None if not account or account.startswith("unknown") else account,
        None if not region or region.startswith("unknown") else region,
    )


def _load_assembly(directory: Path, *, recursive: bool, seen: set[Path], stage: str) -> Iterator[StackTemplate]:
    directory = directory.resolve()
    if directory in seen:
        return
    seen.add(directory)
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    for artifact_id, artifact in (manifest.get("artifacts") or {}).items():
        kind = artifact.get("type")
        props = artifact.get("properties") or {}
        if kind == "aws:cloudformation:stack":
            template_path = directory / props["templateFile"]
            account, region = parse_environment(str(artifact.get("environment", "")))
            yield StackTemplate(
                stack_name=str(props.get("stackName") or artifact_id),
                construct_path=str(artifact.get("displayName") or artifact_id),
                account=account,
                region=region,
                template=json.loads(template_path.read_text(encoding="utf-8")),
                template_path=str(template_path),
                construct_paths=_logical_paths(directory, artifact),
                stage=stage,
            )
        elif kind == "cdk:cloud-assembly" and recursive and props.get("directoryName"):
            nested = str(artifact.get("displayName") or props.get("displayName") or artifact_id)
            yield from _load_assembly(directory / props["directoryName"], recursive=True, seen=seen, stage=nested)


def _logical_paths(directory: Path, artifact: Mapping[str, Any]) -> dict[str, str]:
    """logical id -> construct path, from the artifact's metadata and its additional metadata file."""
    metadata = dict(as_dict(artifact.get("metadata")))
    extra = artifact.get("additionalMetadataFile")
    if isinstance(extra, str) and (directory / extra).is_file():
        metadata.update(as_dict(json.loads((directory / extra).read_text(encoding="utf-8"))))
    paths: dict[str, str] = {}
    for path, entries in metadata.items():
        for entry in dicts(entries):
            if entry.get("type") == "aws:cdk:logicalId" and isinstance(entry.get("data"), str):
                paths[entry["data"]] = path.lstrip("/")
    return paths


__all__ = ["StackTemplate", "load_cloud_assembly", "parse_environment", "read_assembly_stacks"]
