"""FleetGroup: many certificates in shared region stacks, with a new shard stack wherever a limit would be crossed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import jsii
from aws_cdk import (
    CfnResource,
    Duration,
    Environment,
    IResolveContext,
    IStringProducer,
    Lazy,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_sns as sns
from constructs import Construct, IConstruct

from certfleet.acme import ACME_HANDLERS_ID
from certfleet.acme_order import ACME_POLICY_BYTES
from certfleet.certificate_bundle import CertificateBundle
from certfleet.fleet import CertificateFleet
from certfleet.key_source import KeySource, key_namespace, key_secret_name
from certfleet.layout import FleetLayout, FleetPlan, sweeper_stack
from certfleet.monitoring import ACCOUNT_CONFIG_ID, relay_id, validate_days
from certfleet.naming import check_tag_name, checked_regions, require_stage, stage_scoped
from certfleet.placement_plugin import PlacementChecks
from certfleet.providers import IMPORTER_ID, KEY_WRITER_ID
from certfleet.rules import EDGE_REGION
from certfleet.source import CertificateSource, text_bytes

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
SECRET_NAME_USES = 3
"""Where a key secret's name appears per region: ``KeySecretId``, the secret's ``Name``, the key writer's input."""


@dataclass(frozen=True)
class ShardCost:
    """What a fleet adds to one stack: resources, outputs (reserved: its ARN for consumers, its key version for
    replicas) and template bytes (estimated before it is built, from its PEM and ciphertext sizes)."""

    resources: int
    outputs: int
    template_bytes: int
    resource_bytes: int = RESOURCE_BYTES
    """What each of its resources adds beyond the payloads (grows with the length of its construct path)."""
    policy_bytes: int = 0
    """What it adds to each of the stack's shared ACME roles' policies (an ACME source's primary only)."""


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
    policy_bytes: int = 0
    """The ACME fleets' grants in the shard's shared ACME roles, counted (at most ACME_POLICY_BYTES)."""

    def fits(self, cost: ShardCost, limits: ShardLimits) -> bool:
        extra = _overflow_policies(self.policy_bytes + cost.policy_bytes) - _overflow_policies(self.policy_bytes)
        return (self.resources + cost.resources + extra <= limits.resources
                and self.outputs + cost.outputs <= limits.outputs
                and self.template_bytes + cost.template_bytes + extra * PROVIDER_RESOURCE_BYTES <= limits.template_bytes
                and self.policy_bytes + cost.policy_bytes <= ACME_POLICY_BYTES)


@dataclass(frozen=True)
class ShardLimits:
    """The most a shard stack may hold: resources, outputs, template bytes."""

    resources: int
    outputs: int
    template_bytes: int


class FleetGroup(Construct):
    """Many certificates, one ``CertificateFleet`` each, sharing one stack per region (``<prefix>-<region>``),
    with a shard stack (``-2``, ``-3``...) wherever the next fleet would cross a limit, and one sweeper stack.

    Args:
        scope: the App or Stage.
        id: the construct id; with the stage name, the group name and the default stack name prefix.
        account: the AWS account of every group stack (12 digits).
        regions: regions that get a regional copy of each fleet. Default: none.
        edge: also us-east-1, for CloudFront, edge-optimized API Gateway and Amplify. Default: True.
        stack_name_prefix: stacks are ``<prefix>-<region>[-<n>]`` and ``<prefix>-sweeper``. Default: the group name.
        termination_protection: on every stack of the group. Default: False.
        removal_policy: of every fleet's certificates (DESTROY or RETAIN). Default: DESTROY.
        delete_timeout: how long a delete waits for consumers to let go of a certificate. Default: 25 minutes.
        max_resources: resources per shard stack (CloudFormation allows 500). Default: 450.
        max_outputs: outputs per shard stack (CloudFormation allows 200). Default: 180.
        max_template_bytes: estimated template bytes per shard stack (CloudFormation allows 1,000,000).
            Default: 800,000.
        expiry_topic: expiry monitoring for every fleet, to this topic. Default: None, no monitoring.
        expiry_days: the alarm's threshold in days left. Default: 30.
        days_before_expiry_event: the account's ``DaysBeforeExpiry`` in each group region (1-45). Default: 45.
        configure_account_expiry_events: declare that account setting in the group's stacks. Default: True.
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
        self.group_name = check_tag_name(self, "FleetGroup name", stage_scoped(self, id), 100)
        self.prefix = stack_name_prefix or self.group_name
        self.key_namespace = key_namespace("group", self.prefix)
        """Where the group's key secrets live, ``certfleet/group/<prefix>/<fleet>/<shard>/<name>/key``."""
        self._fleets: dict[str, CertificateFleet] = {}
        self.sweeper_stack, _ = sweeper_stack(
            self, "sweeper", stack_name=f"{self.prefix}-sweeper", account=account, regions=self.regions,
            description=f"certfleet: deletes retired certificates of FleetGroup {self.group_name}",
            termination_protection=termination_protection, fleets=f"{self.group_name}/*",
            fleet_prefix=f"{self.group_name}/", generation=Lazy.uncached_string(_Generation(self)),
        )
        self.layout = ShardLayout(self, ShardLimits(max_resources, max_outputs, max_template_bytes))
        """Where the group's fleets are: the shards of each region."""
        PlacementChecks.enable(self)

    def add_fleet(
        self,
        id: str,
        *,
        bundle: CertificateBundle | None = None,
        key: KeySource | None = None,
        source: CertificateSource | None = None,
        regions: Sequence[str] | None = None,
        edge: bool | None = None,
        configure_account_expiry_events: bool | None = None,
    ) -> CertificateFleet:
        """One more certificate, in the last shard of each of its regions or in a new shard where it would not fit.

        Args:
            id: the fleet's id in the group (in its tags, secret names and construct ids).
            bundle: the certificate; short for ``source=CertificateSource.imported(bundle, key)``.
                Default: None, ``source`` is given.
            key: where the private key comes from (with ``bundle``). Default: None, ``source`` is given.
            source: where the certificate comes from. Default: ``CertificateSource.imported(bundle, key)``.
            regions: a subset of the group's regions. Default: every group region but us-east-1.
            edge: also us-east-1. Default: the group's ``edge``.
            configure_account_expiry_events: with the group's ``expiry_topic``, declare the account's expiry setting.
                Default: the group's.
        """
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
            self, id, bundle=bundle, key=key, source=source, account=self.account,
            regions=[r for r in wanted if r != EDGE_REGION], edge=EDGE_REGION in wanted,
            removal_policy=self.removal_policy, delete_timeout=self.delete_timeout, layout=self.layout,
        )
        if self.expiry_topic is not None:
            configure = (self.configure_account_expiry_events if configure_account_expiry_events is None
                         else configure_account_expiry_events)
            fleet.add_expiry_monitoring(topic=self.expiry_topic, days=self.expiry_days,
                                        days_before_expiry_event=self.days_before_expiry_event,
                                        configure_account_expiry_events=configure)
        self._fleets[id] = fleet
        self.layout.measure(fleet)
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
        return [s.stack for region in self.regions for s in self.layout.shards(region)]

    def shards(self, region: str) -> list[Shard]:
        """The shards of ``region`` in order, with the fleets each holds and its counted size."""
        return self.layout.shards(region)

    def generation(self) -> str:
        """A digest of every fleet's certificate, key type and stacks: the sweeper runs when it changes."""
        state = [
            [id, *fleet.source.generation, [Stack.of(c).stack_name for c in fleet.certificates.values()]]
            for id, fleet in self._fleets.items()
        ]
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:32]


class ShardLayout(FleetLayout):
    """A FleetGroup's layout: each fleet assigned to the last shard of each of its regions, or to a new shard where
    it would cross the limits; names, tags, IAM scope and key secrets shared by the group."""

    def __init__(self, group: FleetGroup, limits: ShardLimits) -> None:
        self.group = group
        self.limits = limits
        self.key_namespace = group.key_namespace
        self.iam_group = group.group_name
        self._path = group.node.path
        self._shards: dict[str, list[Shard]] = {r: [] for r in group.regions}
        self._assigned: dict[str, list[tuple[Shard, ShardCost]]] = {}
        self._measured: dict[tuple[str, bool], ShardCost] = {}

    def check_scope(self, scope: Construct, id: str) -> None:
        if scope is not self.group:
            raise ValueError(
                f"fleet {id!r} of FleetGroup {self._path} is made by the group: group.add_fleet({id!r}, ...)",
            )

    def fleet_name(self, plan: FleetPlan) -> str:
        return f"{self.group.group_name}/{check_tag_name(plan.owner, 'fleet id', plan.id, 155)}"

    def key_secret_name(self, plan: FleetPlan, primary: Stack) -> str:
        # the shard too: a fleet that moves gets a new secret, not the retained one's name
        shard = primary.stack_name.removeprefix(f"{self.group.prefix}-")
        return key_secret_name(self.key_namespace, plan.id, shard, plan.source.primary_name)

    def certificate_id(self, plan: FleetPlan) -> str:
        return plan.id

    def tag_id(self, plan: FleetPlan) -> str | None:
        return f"{self._path}/{plan.id}"

    def sweepers(self, plan: FleetPlan, stacks: Mapping[str, Stack]) -> dict[str, Stack]:
        return {self.group.account: self.group.sweeper_stack}

    def shards(self, region: str) -> list[Shard]:
        """The shards of ``region`` in order."""
        if region not in self._shards:
            raise ValueError(f"{self._path} has no stack in {region} (its regions: {', '.join(self.group.regions)})")
        return list(self._shards[region])

    def assign(self, plan: FleetPlan) -> dict[str, Stack]:
        """The stack of each of the fleet's regions: the region's last shard if the fleet fits, else a new one."""
        assigned: dict[str, Stack] = {}
        record: list[tuple[Shard, ShardCost]] = []
        path = plan.owner.node.path
        for index, region in enumerate(plan.regions):
            cost = self._estimate(plan, path, region, index == 0)
            self._refuse_oversized(plan, path, region, cost)
            shards = self._shards[region]
            shard = shards[-1] if shards else None
            if shard is None or (shard.fleets and not shard.fits(cost, self.limits)):
                shard = self._open(region)
            shard.fleets.append(plan.id)
            assigned[region] = shard.stack
            record.append((shard, cost))
        self._assigned[plan.id] = record
        return assigned

    def _estimate(self, plan: FleetPlan, path: str, region: str, primary: bool) -> ShardCost:
        """What a fleet will add to a stack of ``region``, at most: the resources and outputs the last fleet assigned
        there in the same role actually added, and bytes from every text of the fleet that reaches the template
        (its source's payload, key secret name, tags, descriptions, construct paths)."""
        seen = self._measured.get((region, primary))
        resources = seen.resources if seen else (8 if primary else 2) + (6 if self.group.expiry_topic else 0)
        outputs = 1 + (1 if primary and len(plan.regions) > 1 else 0)
        secret_name = key_secret_name(self.key_namespace, plan.id, f"{plan.regions[0]}-{10 ** 6}",
                                      plan.source.primary_name)  # its shard is not known yet: the longest it may be
        payload = plan.source.template_bytes(primary) + SECRET_NAME_USES * text_bytes(secret_name) \
            + 2 * text_bytes(plan.fleet_name) + 2 * text_bytes(path)
        per_resource = RESOURCE_BYTES + PATH_USES * len(path)
        per_output = OUTPUT_BYTES + PATH_USES * len(path)
        return ShardCost(resources, outputs, payload + resources * per_resource + outputs * per_output, per_resource,
                         plan.source.policy_bytes if primary else 0)

    def _refuse_oversized(self, plan: FleetPlan, path: str, region: str, cost: ShardCost) -> None:
        """A fleet that would take even a new shard of its own past the limits cannot be assigned: say so (an ACME
        source's grants are bounded when the source is made)."""
        empty = Shard(region, 0, self.group.sweeper_stack, resources=SHARED_RESOURCES,
                      template_bytes=SHARD_BASE_BYTES + SHARED_RESOURCES * PROVIDER_RESOURCE_BYTES)
        if not empty.fits(cost, self.limits):
            raise ValueError(
                f"{path}: the certificate does not fit in a stack of its own in {region}: about "
                f"{cost.template_bytes + empty.template_bytes:,} template bytes and {cost.resources + empty.resources} "
                f"resources, over the group's max_template_bytes={self.limits.template_bytes:,} / "
                f"max_resources={self.limits.resources} (CloudFormation allows {TEMPLATE_BYTES_LIMIT:,} bytes and "
                f"{RESOURCES_LIMIT} resources; the certificate, its chain ({plan.source.chain_bytes:,} bytes) and "
                "its names are written into every stack): send a shorter chain (the root is not needed), fewer "
                "names, or raise max_template_bytes",
            )

    def measure(self, fleet: CertificateFleet) -> None:
        """Count what ``fleet`` really added to each of its shards, and each shard's shared constructs once."""
        topic = self.group.expiry_topic
        for index, (shard, estimate) in enumerate(self._assigned[fleet.node.id]):
            primary = index == 0
            stack = shard.stack
            mine: list[IConstruct] = [fleet.certificates[shard.region]]
            store = fleet.key_store if primary else None
            if store is not None and Stack.of(store) is stack and store.node.path not in shard.counted:
                shard.counted.add(store.node.path)
                mine.append(store)
            resources = sum(_cfn_resources(c) for c in mine)
            self._measured[(shard.region, primary)] = ShardCost(resources, estimate.outputs, 0)
            shard.resources += resources
            shard.outputs += estimate.outputs
            if estimate.policy_bytes:  # the ACME roles' statements beyond their inline policy become managed ones
                before = _overflow_policies(shard.policy_bytes)
                shard.policy_bytes += estimate.policy_bytes
                added = _overflow_policies(shard.policy_bytes) - before
                shard.resources += added
                shard.template_bytes += added * PROVIDER_RESOURCE_BYTES
            shard.template_bytes += estimate.template_bytes + (resources - estimate.resources) * estimate.resource_bytes
            # what this fleet may have brought to the shard: the importer; the key writer or the ACME functions with
            # its key (primary); the expiry setting and relay with the group's monitoring
            monitoring = [ACCOUNT_CONFIG_ID, relay_id(topic)] if topic is not None else []
            for shared in (IMPORTER_ID, *([KEY_WRITER_ID, ACME_HANDLERS_ID] if primary else []), *monitoring):
                child = stack.node.try_find_child(shared) if shared not in shard.counted else None
                if child is not None:
                    shard.counted.add(shared)
                    count = _cfn_resources(child)
                    shard.resources += count
                    shard.template_bytes += count * PROVIDER_RESOURCE_BYTES

    def _open(self, region: str) -> Shard:
        group = self.group
        shards = self._shards[region]
        number = len(shards) + 1
        suffix = "" if number == 1 else f"-{number}"
        stack = Stack(
            group, f"{region}{suffix}",
            stack_name=f"{group.prefix}-{region}{suffix}",
            env=Environment(account=group.account, region=region),
            description=f"certfleet: certificates of FleetGroup {group.group_name} in {region}, shard {number}",
            termination_protection=group.termination_protection,
        )
        group.sweeper_stack.add_stack_dependency(stack, "certfleet: sweeps after the certificates are updated")
        shard = Shard(region, number, stack, template_bytes=SHARD_BASE_BYTES)
        shards.append(shard)
        return shard


def _overflow_policies(policy_bytes: int) -> int:
    """The managed policies the CDK adds to the shard's three ACME roles (issuer onEvent and isComplete, renewer)
    once their statements outgrow a role's 10,240 bytes of inline policy (each holds up to 6,144; counted at 5,000
    for the CDK's packing)."""
    return 3 * -(-max(policy_bytes - 10_240, 0) // 5_000)


def _cfn_resources(scope: IConstruct) -> int:
    return sum(1 for c in scope.node.find_all() if isinstance(c, CfnResource))


@jsii.implements(IStringProducer)
class _Generation:
    """The sweeper's generation, computed at synth once every fleet has been added."""

    def __init__(self, group: FleetGroup) -> None:
        self._group = group

    def produce(self, context: IResolveContext) -> str:
        return self._group.generation()
