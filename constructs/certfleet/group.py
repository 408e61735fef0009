"""FleetGroup: many certificates in shared region stacks, with a new shard stack wherever a limit would be crossed.

A ``CertificateFleet`` on its own creates a stack per region for one certificate; a hundred certificates would be
a hundred stacks per region. A ``FleetGroup`` puts the fleets it holds into one stack per region (one importer,
one key writer, one sweeper for all of them) and opens ``<prefix>-<region>-2``, ``-3``... when the next fleet would
take a stack past ``max_resources``, ``max_outputs`` or ``max_template_bytes``: CloudFormation refuses a template
over 500 resources, 200 outputs or 1 MB. Fleets are placed in the order they are added, each into the last shard of
its region, so adding fleets never moves one already placed. A fleet that does move (one removed or grown before
it) keeps its ACM certificate: its new stack adopts it by its tags, and the old stack's delete leaves it alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import jsii
from aws_cdk import Aspects, CfnResource, CustomResource, Duration, Environment, IAspect, RemovalPolicy, Stack, Stage
from aws_cdk import aws_sns as sns
from constructs import Construct, IConstruct

from certfleet.certificate_bundle import CertificateBundle
from certfleet.fleet import CertificateFleet, check_tag_name, checked_regions, require_stage
from certfleet.key_source import KeySource, SealedKeySource, key_namespace, key_secret_name
from certfleet.monitoring import ACCOUNT_CONFIG_ID, relay_id, validate_days
from certfleet.placement_plugin import PlacementChecks
from certfleet.providers import IMPORTER_ID, KEY_WRITER_ID, ImporterProvider
from certfleet.rules import EDGE_REGION

RESOURCES_LIMIT, OUTPUTS_LIMIT, TEMPLATE_BYTES_LIMIT = 500, 200, 1_000_000
"""CloudFormation's per-template quotas (a template uploaded through S3, as the CDK uploads every template)."""

RESOURCE_BYTES = 1_400
"""What one resource other than the certificate payloads adds to a template, at most (measured: 0.6-1.3 KB
with the CDK's indentation and metadata; bench/scale.py and a test hold the estimate above the real size)."""
PATH_USES = 3
"""How often a resource spells its construct path (logical id, ``aws:cdk:path``, a reference): a long fleet id
or group id is paid per resource."""
OUTPUT_BYTES = 600
PROVIDER_RESOURCE_BYTES = 2_000
SHARD_BASE_BYTES = 4_000
"""A shard's template before any resource: parameters, rules, conditions and the CDK's metadata."""
"""A resource of the importer / key writer / Provider framework (functions, roles, policies, the waiter)."""
SHARED_RESOURCES = 30
"""The shared constructs a shard adds with its first fleet, at most: importer (16), key writer (7), account
expiry setting (1), expiry relay (5). Counted before the first fleet, so a lone fleet that cannot fit is refused."""
LIST_ITEM_BYTES = 12
"""Indentation, quotes, comma and newline around one string of a list (``Names``) in the CDK's template."""
NAME_USES = 6
"""Descriptions that repeat a certificate's primary name: the alarm, the event rule and their two relays."""
SECRET_NAME_USES = 3
"""Where a key secret's name appears per region: ``KeySecretId``, the secret's ``Name``, the key writer's input."""


def _text(value: str) -> int:
    """Bytes of ``value`` as a JSON string in a template."""
    return len(json.dumps(value))


@dataclass(frozen=True)
class ShardCost:
    """What a fleet adds to one stack: resources, outputs (reserved: its ARN for consumers, its key version for
    replicas) and template bytes (estimated before it is built, from its PEM and ciphertext sizes)."""

    resources: int
    outputs: int
    template_bytes: int
    resource_bytes: int = RESOURCE_BYTES
    """What each of its resources adds beyond the payloads (grows with the length of its construct path)."""


@dataclass
class Shard:
    """One stack of the group in one region, and what it holds so far."""

    region: str
    number: int
    stack: Stack
    fleets: list[str] = field(default_factory=list)
    resources: int = 0
    outputs: int = 0
    template_bytes: int = 0
    counted: set[str] = field(default_factory=set)

    def fits(self, cost: ShardCost, group: FleetGroup) -> bool:
        return (self.resources + cost.resources <= group.max_resources
                and self.outputs + cost.outputs <= group.max_outputs
                and self.template_bytes + cost.template_bytes <= group.max_template_bytes)


class FleetGroup(Construct):
    """Many third-party certificates (one ``CertificateFleet`` each) sharing one stack per region, sharded
    automatically below CloudFormation's limits.

    ``group.add_fleet("Www", bundle=..., key=...)`` returns a ``CertificateFleet`` whose ``certificate_for``,
    ``edge_certificate``, ``grant_key_read`` and friends work as for a standalone fleet. One ``<prefix>-sweeper``
    stack deletes the group's retired certificates. ``expiry_topic``: every fleet gets expiry monitoring as it is
    added (so that its alarms are counted where it is placed), and each group region declares the account's
    ``AWS::CertificateManager::Account`` (``days_before_expiry_event``) unless ``configure_account_expiry_events``
    is False: pass False when another stack or app in the account owns that setting.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        account: str,
        regions: Sequence[str] = (),
        edge: bool = True,
        stack_name_prefix: str | None = None,
        termination_protection: bool = False,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        delete_timeout: Duration | None = None,
        max_resources: int = 450,
        max_outputs: int = 180,
        max_template_bytes: int = 800_000,
        expiry_topic: sns.ITopic | None = None,
        expiry_days: int = 30,
        days_before_expiry_event: int = 45,
        configure_account_expiry_events: bool = True,
    ) -> None:
        super().__init__(scope, id)
        require_stage(scope, "FleetGroup", id, "its own stacks")
        self.regions: tuple[str, ...] = checked_regions(self, account, regions, edge)
        for name, value, limit in (("max_resources", max_resources, RESOURCES_LIMIT),
                                   ("max_outputs", max_outputs, OUTPUTS_LIMIT),
                                   ("max_template_bytes", max_template_bytes, TEMPLATE_BYTES_LIMIT)):
            if not 0 < value <= limit:
                raise ValueError(
                    f"{self.node.path}: {name}={value} must be between 1 and CloudFormation's limit {limit:,} (lower "
                    "leaves room for what you add to the group's stacks yourself)",
                )
        if expiry_topic is not None:
            validate_days(self.node.path, expiry_days, days_before_expiry_event)
        self.account = account
        self.edge = edge
        self.max_resources, self.max_outputs, self.max_template_bytes = max_resources, max_outputs, max_template_bytes
        self.removal_policy, self.delete_timeout = removal_policy, delete_timeout
        self.expiry_topic, self.expiry_days = expiry_topic, expiry_days
        self.days_before_expiry_event = days_before_expiry_event
        self.configure_account_expiry_events = configure_account_expiry_events
        self.termination_protection = termination_protection
        stage = Stage.of(self)
        stage_name = stage.stage_name if stage is not None else ""
        self.group_name = check_tag_name(self, "FleetGroup name", f"{stage_name}-{id}" if stage_name else id, 100)
        self.prefix = stack_name_prefix or self.group_name
        self.key_namespace = key_namespace("group", self.prefix)
        """Where the group's key secrets live, ``certfleet/group/<prefix>/<fleet>/<shard>/<name>/key``: the group's
        stacks, ``<prefix>-<region>``, make the prefix unique in the account wherever a secret or replica of the group
        is; the shard (``us-east-1-2``) keeps a fleet that moves from meeting its old, retained secret's name."""
        self._shards: dict[str, list[Shard]] = {r: [] for r in self.regions}
        self._fleets: dict[str, CertificateFleet] = {}
        self._placed: dict[str, list[tuple[Shard, ShardCost]]] = {}
        self._measured: dict[tuple[str, bool], ShardCost] = {}
        self.sweeper_stack = self._sweeper()
        PlacementChecks.enable(self)

    # -- public ----------------------------------------------------------------------------------------------

    def add_fleet(
        self,
        id: str,
        *,
        bundle: CertificateBundle,
        key: KeySource,
        regions: Sequence[str] | None = None,
        edge: bool | None = None,
        configure_account_expiry_events: bool | None = None,
    ) -> CertificateFleet:
        """One more certificate, in the group's regions (or the subset ``edge`` / ``regions`` name), placed in the
        last stack of each region, or in a new shard when it would not fit.

        ``configure_account_expiry_events`` (default: the group's) with the group's ``expiry_topic``: False leaves
        the account's ``AWS::CertificateManager::Account`` to the stack or app that owns it."""
        if id in self._fleets:
            raise ValueError(f"{self.node.path}: a fleet named {id!r} is already in the group: give each its own id")
        use_edge = self.edge if edge is None else edge
        wanted = tuple(dict.fromkeys(([EDGE_REGION] if use_edge else []) + list(
            regions if regions is not None else [r for r in self.regions if r != EDGE_REGION])))
        outside = [r for r in wanted if r not in self.regions]
        if outside:
            raise ValueError(
                f"{self.node.path}: fleet {id!r} wants {', '.join(outside)}, which the group does not cover "
                f"({', '.join(self.regions)}): add it to the FleetGroup's regions=[...] (or edge=True)",
            )
        fleet = CertificateFleet(
            self, id, bundle=bundle, key=key, account=self.account,
            regions=[r for r in wanted if r != EDGE_REGION], edge=EDGE_REGION in wanted,
            removal_policy=self.removal_policy, delete_timeout=self.delete_timeout, _group=self,
        )
        if self.expiry_topic is not None:
            configure = (self.configure_account_expiry_events if configure_account_expiry_events is None
                         else configure_account_expiry_events)
            fleet.add_expiry_monitoring(topic=self.expiry_topic, days=self.expiry_days,
                                        days_before_expiry_event=self.days_before_expiry_event,
                                        configure_account_expiry_events=configure)
        self._fleets[id] = fleet
        self._account_for(fleet)
        return fleet

    def fleet(self, id: str) -> CertificateFleet:
        """The fleet added as ``id``."""
        found = self._fleets.get(id)
        if found is None:
            raise ValueError(f"{self.node.path} has no fleet {id!r} (it has {', '.join(self._fleets) or 'none'})")
        return found

    @property
    def fleets(self) -> dict[str, CertificateFleet]:
        """Every fleet of the group, in the order added."""
        return dict(self._fleets)

    @property
    def stacks(self) -> list[Stack]:
        """Every shard stack, region by region (not the sweeper)."""
        return [s.stack for region in self.regions for s in self._shards[region]]

    def shards(self, region: str) -> list[Shard]:
        """The shards of ``region`` in order, with the fleets each holds and its counted size."""
        if region not in self._shards:
            raise ValueError(f"{self.node.path} has no stack in {region} (its regions: {', '.join(self.regions)})")
        return list(self._shards[region])

    # -- placement (called by CertificateFleet) --------------------------------------------------------------

    def _place(self, fleet: CertificateFleet) -> dict[str, Stack]:
        """The stack of each of ``fleet``'s regions: the region's last shard if the fleet fits, else a new one."""
        placed: dict[str, Stack] = {}
        record: list[tuple[Shard, ShardCost]] = []
        for index, region in enumerate(fleet.regions):
            cost = self._estimate(fleet, region, index == 0)
            self._refuse_oversized(fleet, region, cost)
            shards = self._shards[region]
            shard = shards[-1] if shards else None
            if shard is None or (shard.fleets and not shard.fits(cost, self)):
                shard = self._open(region)
            shard.fleets.append(fleet.node.id)
            placed[region] = shard.stack
            record.append((shard, cost))
        self._placed[fleet.node.id] = record
        return placed

    def _estimate(self, fleet: CertificateFleet, region: str, primary: bool) -> ShardCost:
        """What ``fleet`` will add to a stack of ``region``, at most: the resources and outputs the last fleet placed
        there in the same role actually added, and bytes from every text of the fleet that reaches the template
        (certificate, chain, ``Names``, key secret name, tags, descriptions, construct paths, sealed key)."""
        seen = self._measured.get((region, primary))
        resources = seen.resources if seen else (8 if primary else 2) + (6 if self.expiry_topic else 0)
        outputs = 1 + (1 if primary and len(fleet.regions) > 1 else 0)
        bundle = fleet.bundle
        names = list(bundle.names)
        secret_name = key_secret_name(self.key_namespace, fleet.node.id, f"{fleet.regions[0]}-{10 ** 6}",
                                      bundle.primary_name)  # its shard is not known yet: the longest it may be
        payload = _text(bundle.certificate_pem) + _text(bundle.chain_pem) + len(json.dumps(names)) \
            + LIST_ITEM_BYTES * len(names) + NAME_USES * _text(bundle.primary_name) \
            + SECRET_NAME_USES * _text(secret_name) + 2 * _text(fleet.fleet_name) \
            + 2 * _text(fleet.node.path)
        if primary and isinstance(fleet.key, SealedKeySource):
            sealed = fleet.key.sealed_key
            payload += 4 * len(sealed.ciphertext) // 3 + 8 + 2 * _text(sealed.name)
        per_resource = RESOURCE_BYTES + PATH_USES * len(fleet.node.path)
        per_output = OUTPUT_BYTES + PATH_USES * len(fleet.node.path)
        return ShardCost(resources, outputs, payload + resources * per_resource + outputs * per_output, per_resource)

    def _refuse_oversized(self, fleet: CertificateFleet, region: str, cost: ShardCost) -> None:
        """A fleet that would take even a new shard of its own past the limits cannot be placed: say so."""
        empty = Shard(region, 0, Stack.of(self.sweeper_stack), resources=SHARED_RESOURCES,
                      template_bytes=SHARD_BASE_BYTES + SHARED_RESOURCES * PROVIDER_RESOURCE_BYTES)
        if not empty.fits(cost, self):
            raise ValueError(
                f"{fleet.node.path}: the certificate does not fit in a stack of its own in {region}: about "
                f"{cost.template_bytes + empty.template_bytes:,} template bytes and {cost.resources + empty.resources} "
                f"resources, over the group's max_template_bytes={self.max_template_bytes:,} / "
                f"max_resources={self.max_resources} (CloudFormation allows {TEMPLATE_BYTES_LIMIT:,} bytes and "
                f"{RESOURCES_LIMIT} resources; the certificate, its chain ({len(fleet.bundle.chain_pem):,} bytes) and "
                "its names are written into every stack): send a shorter chain (the root is not needed), fewer "
                "names, or raise max_template_bytes",
            )

    def _account_for(self, fleet: CertificateFleet) -> None:
        """Count what ``fleet`` really added to each of its shards, and the shard's shared constructs once."""
        for index, (shard, estimate) in enumerate(self._placed[fleet.node.id]):
            primary = index == 0
            stack = shard.stack
            mine: list[IConstruct] = [fleet.certificates[shard.region]]
            store = fleet._primary_binding.store if primary else None
            if store is not None and Stack.of(store) is stack and store.node.path not in shard.counted:
                shard.counted.add(store.node.path)
                mine.append(store)
            resources = sum(_cfn_resources(c) for c in mine)
            self._measured[(shard.region, primary)] = ShardCost(resources, estimate.outputs, 0)
            shard.resources += resources
            shard.outputs += estimate.outputs
            shard.template_bytes += estimate.template_bytes + (resources - estimate.resources) * estimate.resource_bytes
            relays = [relay_id(self.expiry_topic)] if self.expiry_topic is not None else []
            for shared in (IMPORTER_ID, KEY_WRITER_ID, ACCOUNT_CONFIG_ID, *relays):
                child = stack.node.try_find_child(shared) if shared not in shard.counted else None
                if child is not None:
                    shard.counted.add(shared)
                    count = _cfn_resources(child)
                    shard.resources += count
                    shard.template_bytes += count * PROVIDER_RESOURCE_BYTES

    def _open(self, region: str) -> Shard:
        shards = self._shards[region]
        number = len(shards) + 1
        suffix = "" if number == 1 else f"-{number}"
        stack = Stack(
            self, f"{region}{suffix}",
            stack_name=f"{self.prefix}-{region}{suffix}",
            env=Environment(account=self.account, region=region),
            description=f"certfleet: certificates of FleetGroup {self.group_name} in {region}, shard {number}",
            termination_protection=self.termination_protection,
        )
        self.sweeper_stack.add_stack_dependency(stack, "certfleet: sweeps after the certificates are updated")
        shard = Shard(region, number, stack, template_bytes=SHARD_BASE_BYTES)
        shards.append(shard)
        return shard

    def _sweeper(self) -> Stack:
        """The stack that deletes the group's retired certificates (every fleet's) once released; see
        ``CertificateFleet._sweeper``. Its generation changes with any fleet's certificate or region set."""
        stack = Stack(self, "sweeper", stack_name=f"{self.prefix}-sweeper",
                      env=Environment(account=self.account, region=self.regions[0]),
                      description=f"certfleet: deletes retired certificates of FleetGroup {self.group_name}",
                      termination_protection=self.termination_protection)
        provider = ImporterProvider.of(stack)
        provider.allow_sweep(f"{self.group_name}/*")
        sweeper = CustomResource(
            stack, "Sweeper",
            service_token=provider.service_token,
            resource_type="Custom::CertfleetSweeper",
            properties={
                "FleetPrefix": f"{self.group_name}/",
                "Regions": list(self.regions),
                "Generation": "",
                "WaitSeconds": "600",
            },
        )
        Aspects.of(stack).add(_Generation(self, sweeper))
        return stack

    def generation(self) -> str:
        """A digest of every fleet's certificate, key type and stacks: the sweeper runs when it changes."""
        state = [
            [id, fleet.bundle.fingerprint, fleet.bundle.key_algorithm, [Stack.of(c).stack_name for c in
                                                                        fleet.certificates.values()]]
            for id, fleet in self._fleets.items()
        ]
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:32]


def _cfn_resources(scope: IConstruct) -> int:
    return sum(1 for c in scope.node.find_all() if isinstance(c, CfnResource))



@jsii.implements(IAspect)
class _Generation:
    """Sets the sweeper's generation at synth, once every fleet has been added."""

    def __init__(self, group: FleetGroup, sweeper: CustomResource) -> None:
        self._group = group
        self._sweeper = sweeper

    def visit(self, node: IConstruct) -> None:
        if node is self._sweeper:
            child = self._sweeper.node.default_child
            if isinstance(child, CfnResource):
                child.add_property_override("Generation", self._group.generation())
