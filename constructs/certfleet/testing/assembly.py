"""A cloud assembly as the rehearsal reads it: its stacks in dependency order, each template's resources in
dependency order, nested stacks' templates, and the Provider framework's response as CloudFormation checks it."""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_RESPONSE_BYTES = 4_096
MAX_PHYSICAL_ID_BYTES = 1_024

StackKey = tuple[str, str, str]
"""(account, region, stack name): what names a stack in CloudFormation."""
ResourceKey = tuple[str, str, str, str]
"""(account, region, stack name, logical id)."""


class RehearsalError(Exception):
    """A resource failed as it would have failed the deploy; the message names stack, resource and cause."""


class RehearsalWarning(UserWarning):
    """A certfleet resource was played with a value the rehearsal had to invent (``invented="warn"``)."""


@dataclass
class StackArtifact:
    """One stack of the cloud assembly (or a nested stack of one)."""

    artifact_id: str
    stack_name: str
    account: str
    region: str
    template: dict[str, Any]
    dependencies: list[str]
    folder: Path = field(default_factory=Path)
    parameters: dict[str, Any] = field(default_factory=dict)
    parent: StackKey | None = None

    @property
    def key(self) -> StackKey:
        return (self.account, self.region, self.stack_name)

    @property
    def where(self) -> str:
        return f"{self.stack_name} ({self.account}/{self.region})"


@dataclass
class Deployed:
    """What the rehearsal remembers of one resource, as CloudFormation does."""

    type: str
    physical_id: str
    properties: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    retain: bool = False
    region: str = ""
    account: str = ""
    nested: StackKey | None = None


@dataclass
class Event:
    """One thing the rehearsal did, for the report."""

    stack: str
    logical_id: str
    action: str
    physical_id: str
    account: str = ""
    region: str = ""


def load_assembly(cdk_out: str | os.PathLike[str]) -> list[StackArtifact]:
    """Every stack of the assembly (nested Stage assemblies included), dependencies before dependents."""
    stacks: dict[str, StackArtifact] = {}
    _collect(Path(cdk_out), stacks)
    named: dict[StackKey, str] = {}
    for artifact in stacks.values():
        if artifact.key in named:
            raise RehearsalError(
                f"two stacks of the assembly ({named[artifact.key]} and {artifact.artifact_id}) are both "
                f"{artifact.where}: CloudFormation would deploy them as one stack; give them different stack names",
            )
        named[artifact.key] = artifact.artifact_id
    return _dependency_order(stacks)


def _dependency_order(stacks: dict[str, StackArtifact]) -> list[StackArtifact]:
    ordered: list[StackArtifact] = []
    seen: set[str] = set()

    def visit(artifact_id: str, path: tuple[str, ...]) -> None:
        if artifact_id in seen or artifact_id not in stacks:
            return
        if artifact_id in path:
            raise RehearsalError(f"dependency cycle between stacks: {' -> '.join((*path, artifact_id))}")
        for dep in stacks[artifact_id].dependencies:
            visit(dep, (*path, artifact_id))
        seen.add(artifact_id)
        ordered.append(stacks[artifact_id])

    for artifact_id in stacks:
        visit(artifact_id, ())
    return ordered


def _collect(folder: Path, into: dict[str, StackArtifact]) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        kind = artifact.get("type")
        if kind == "cdk:cloud-assembly":
            _collect(folder / artifact["properties"]["directoryName"], into)
        elif kind == "aws:cloudformation:stack":
            _, _, account_region = artifact["environment"].partition("aws://")
            account, _, region = account_region.partition("/")
            props = artifact["properties"]
            into[artifact_id] = StackArtifact(
                artifact_id=artifact_id,
                stack_name=props.get("stackName", artifact_id),
                account=account,
                region=region,
                template=json.loads((folder / props["templateFile"]).read_text()),
                dependencies=[d for d in artifact.get("dependencies", []) if not d.endswith(".assets")],
                folder=folder,
            )


def _framework_response(where: str, event: dict[str, Any], result: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The body the CDK Provider framework PUTs to CloudFormation (cfn-response.ts), checked as CloudFormation checks
    it: at most 4,096 bytes, a PhysicalResourceId of 1 to 1,024 bytes, unchanged by a Delete."""
    sent = event.get("PhysicalResourceId")
    physical_id = result.get("PhysicalResourceId") or (sent if event["RequestType"] != "Create" else None) \
        or event["RequestId"]
    if event["RequestType"] == "Delete" and physical_id != sent:
        raise RehearsalError(f"{where}: DELETE cannot change the physical resource ID from {sent!r} to "
                             f"{str(physical_id)[:200]!r}")
    physical_id = str(physical_id)
    data = result.get("Data")
    body: dict[str, Any] = {
        "Status": "SUCCESS", "Reason": "SUCCESS", "StackId": event["StackId"], "RequestId": event["RequestId"],
        "PhysicalResourceId": physical_id, "LogicalResourceId": event["LogicalResourceId"],
    }
    if result.get("NoEcho") is not None:
        body["NoEcho"] = result["NoEcho"]
    if data is not None:
        body["Data"] = data
    size = len(json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if size > MAX_RESPONSE_BYTES:
        fields = ", ".join(f"{k} ({len(json.dumps(v, default=str))} bytes)" for k, v in (data or {}).items())
        raise RehearsalError(f"{where}: Response object is too long: the custom-resource response would be {size} "
                             f"bytes, over CloudFormation's {MAX_RESPONSE_BYTES}; its Data holds {fields or 'nothing'}")
    if not 1 <= len(physical_id.encode()) <= MAX_PHYSICAL_ID_BYTES:
        raise RehearsalError(f"{where}: the PhysicalResourceId is {len(physical_id.encode())} bytes; CloudFormation "
                             f"takes 1 to {MAX_PHYSICAL_ID_BYTES}")
    return physical_id, dict(data or {})


def _stack_id(account: str, region: str, stack_name: str) -> str:
    """The StackId CloudFormation sends in every custom-resource event of the stack (the same for its life)."""
    guid = uuid.uuid5(uuid.NAMESPACE_URL, f"rehearsal:{account}:{region}:{stack_name}")
    return f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/{guid}"


def _nested_template(parent: StackArtifact, logical_id: str, resource: dict[str, Any],
                     props: dict[str, Any]) -> dict[str, Any]:
    """The nested stack's template from the assembly: the file asset whose object key ends its TemplateURL."""
    path = (resource.get("Metadata") or {}).get("aws:asset:path")
    if not path:
        url = str(props.get("TemplateURL", ""))
        object_key = url.rsplit("/", 1)[-1]
        for manifest in parent.folder.glob("*.assets.json"):
            for asset in json.loads(manifest.read_text()).get("files", {}).values():
                if any(d.get("objectKey") == object_key for d in asset.get("destinations", {}).values()):
                    path = asset["source"]["path"]
    if not path or not (parent.folder / path).is_file():
        raise RehearsalError(f"{parent.where}/{logical_id}: the nested stack's template is not in the assembly "
                             f"({parent.folder}); synthesize the app again")
    template: dict[str, Any] = json.loads((parent.folder / path).read_text())
    return template


def code_folder(folder: Path, resource: dict[str, Any], holding: str) -> Path | None:
    """A Lambda function's code folder in the assembly ``folder`` that holds the file ``holding``: its
    aws:asset:path metadata, else the file asset whose object key is its Code.S3Key; None when neither holds it."""
    path = str((resource.get("Metadata") or {}).get("aws:asset:path") or "")
    if path and (folder / path / holding).is_file():
        return folder / path
    key = str(((resource.get("Properties") or {}).get("Code") or {}).get("S3Key", ""))
    digest = key.rsplit("/", 1)[-1].removesuffix(".zip")
    for manifest in folder.glob("*.assets.json"):
        for asset_id, asset in json.loads(manifest.read_text()).get("files", {}).items():
            objects = {str(d.get("objectKey", "")) for d in asset.get("destinations", {}).values()}
            if asset_id == digest or key in objects:
                candidate = folder / str(asset["source"]["path"])
                if (candidate / holding).is_file():
                    return candidate
    return None


def load_handler(module: str, asset: Path | None, folders: tuple[Path, ...], noted: list[str] | None = None) -> Any:
    """Handler module ``module`` as Lambda would load it from ``asset`` (the function's code in the assembly), run on
    this Python: imported from ``folders`` (certfleet's handler sources; their dependencies are this Python's, not
    the asset's wheels, built for Lambda's), after checking that every module the asset ships at its top level is the
    same source there. A mismatch (a stale assembly, or a source edited since the synth) raises; with ``noted``, it
    is a RehearsalWarning, appended there once, and the sources run."""
    shipped = {p.name: p for p in asset.glob("*.py")} if asset is not None else {f"{module}.py": None}
    sources = {name: next((f / name for f in folders if (f / name).is_file()), None) for name in shipped}
    if sources.get(f"{module}.py") is None:
        raise RehearsalError(f"handler module {module} is in none of {', '.join(map(str, folders))}: the rehearsal "
                             "plays only certfleet's own handlers")
    for name, path in shipped.items():
        source = sources[name]
        if path is not None and source is not None and path.read_bytes() != source.read_bytes():
            message = f"the assembly's {path} differs from this certfleet's {source}: synthesize the app again"
            if noted is None:
                raise RehearsalError(message)
            if message not in noted:
                noted.append(message)
                warnings.warn(message, RehearsalWarning, stacklevel=3)
    for source in sources.values():  # the asset's top level is one folder (/var/task); here, those it came from
        if source is not None and str(source.parent) not in sys.path:
            sys.path.insert(0, str(source.parent))
    loaded = importlib.import_module(module)
    given, wanted = Path(str(getattr(loaded, "__file__", "") or "")), sources[f"{module}.py"]
    if given.is_file() and wanted is not None and given.read_bytes() != wanted.read_bytes():
        raise RehearsalError(f"{module} was already imported from {given}, which differs from {wanted}")
    return loaded


def _resource_order(resources: dict[str, Any]) -> list[str]:
    """Logical ids with every resource after those it references or depends on."""
    order: list[str] = []
    seen: set[str] = set()

    def refs(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "Ref" and isinstance(v, str):
                    yield v
                elif k == "Fn::GetAtt" and isinstance(v, list) and v:
                    yield str(v[0])
                elif k == "Fn::GetAtt" and isinstance(v, str):
                    yield v.split(".", 1)[0]
                elif k == "Fn::Sub":
                    text = v if isinstance(v, str) else v[0] if isinstance(v, list) and v else ""
                    yield from (name.split(".", 1)[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", str(text)))
                    yield from refs(v[1:] if isinstance(v, list) else [])
                else:
                    yield from refs(v)
        elif isinstance(value, list):
            for v in value:
                yield from refs(v)

    def visit(logical_id: str, path: frozenset[str]) -> None:
        if logical_id in seen or logical_id not in resources or logical_id in path:
            return
        resource = resources[logical_id]
        depends = resource.get("DependsOn", [])
        for dep in [*([depends] if isinstance(depends, str) else depends), *refs(resource.get("Properties", {}))]:
            visit(dep, path | {logical_id})
        seen.add(logical_id)
        order.append(logical_id)

    for logical_id in resources:
        visit(logical_id, frozenset())
    return order


def _acme_handler_dir() -> Path:
    """lambda_acme/ (the ACME issuer's and renewer's handler sources): in the wheel, or in a source checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_lambda_acme", package.parent.parent / "lambda_acme"):
        if (candidate / "certfleet_acme_handler.py").is_file():
            return candidate
    raise RehearsalError("certfleet's ACME handler code is missing: reinstall certfleet")


def _default_handler_dir() -> Path:
    here = Path(__file__).resolve().parent.parent / "_lambda"
    if (here / "certfleet_import.py").is_file():
        return here
    raise RehearsalError("certfleet's Lambda handler code is missing: reinstall certfleet")
