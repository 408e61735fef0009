"""Layouts: where a fleet's stacks are and what its resources are called. ``StackPerRegion`` is a standalone
``CertificateFleet``'s; a ``FleetGroup`` lays its fleets out on shared shard stacks (``certfleet.group``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import CustomResource, Environment, Stack
from constructs import Construct

from certfleet._lambda.certfleet_contract import SWEEPER_TYPE, SweeperProperties
from certfleet.key_source import key_namespace, key_secret_name
from certfleet.naming import check_tag_name, require_stage, stage_scoped
from certfleet.providers import ImporterProvider
from certfleet.source import CertificateSource


@dataclass(frozen=True)
class FleetPlan:
    """What a layout is told about one fleet before its stacks exist."""

    owner: Construct
    """The fleet construct."""
    id: str
    """Its construct id."""
    regions: tuple[str, ...]
    """Its regions, the primary (the key's) first."""
    accounts: Mapping[str, str]
    """The account of each region."""
    source: CertificateSource
    fleet_name: str = ""
    """The ``certfleet:fleet`` tag value (set once the layout named it)."""


class FleetLayout:
    """Everything that differs between a standalone fleet and a FleetGroup member, in one place: stacks, names,
    tags, the IAM scope of the importer and where the key's secret lives."""

    key_namespace: str = ""
    """The key-secret namespace granted at once to the stack's readers (empty: each secret is granted alone)."""
    iam_group: str = ""
    """The FleetGroup whose fleets the importer may touch at once (empty: the fleet alone)."""

    def check_scope(self, scope: Construct, id: str) -> None:
        """Fail when a fleet cannot be created in ``scope`` with this layout."""
        raise NotImplementedError

    def fleet_name(self, plan: FleetPlan) -> str:
        """The fleet's ``certfleet:fleet`` tag value."""
        raise NotImplementedError

    def assign(self, plan: FleetPlan) -> dict[str, Stack]:
        """The stack of each of the fleet's regions."""
        raise NotImplementedError

    def key_secret_name(self, plan: FleetPlan, primary: Stack) -> str:
        """The name of the secret that holds a sealed key in ``primary``."""
        raise NotImplementedError

    def certificate_id(self, plan: FleetPlan) -> str:
        """The construct id of the fleet's certificate in each of its stacks."""
        raise NotImplementedError

    def tag_id(self, plan: FleetPlan) -> str | None:
        """The ``certfleet:id`` tag of the fleet's certificates (None: their construct path)."""
        raise NotImplementedError

    def sweepers(self, plan: FleetPlan, stacks: Mapping[str, Stack]) -> dict[str, Stack]:
        """The sweeper stack of each account the fleet spans, the key's account first."""
        raise NotImplementedError


class StackPerRegion(FleetLayout):
    """A standalone fleet's layout: a stack per region named ``<prefix>-<region>``, a sweeper stack per account."""

    def __init__(
        self, *, fleet_name: str | None = None, stack_name_prefix: str | None = None,
        termination_protection: bool = False,
    ) -> None:
        self.requested_name = fleet_name
        self.stack_name_prefix = stack_name_prefix
        self.termination_protection = termination_protection

    def check_scope(self, scope: Construct, id: str) -> None:
        require_stage(scope, "CertificateFleet", id, "one stack per region")

    def prefix(self, plan: FleetPlan) -> str:
        """The stack name prefix: ``stack_name_prefix`` or the stage-scoped fleet id."""
        return self.stack_name_prefix or stage_scoped(plan.owner, plan.id)

    def fleet_name(self, plan: FleetPlan) -> str:
        return check_tag_name(plan.owner, "fleet_name", self.requested_name or stage_scoped(plan.owner, plan.id))

    def assign(self, plan: FleetPlan) -> dict[str, Stack]:
        prefix = self.prefix(plan)
        return {
            region: Stack(
                plan.owner, region,
                stack_name=f"{prefix}-{region}",
                env=Environment(account=plan.accounts[region], region=region),
                description=f"certfleet: {plan.source.primary_name} in {region} (fleet {plan.fleet_name})",
                termination_protection=self.termination_protection,
            )
            for region in plan.regions
        }

    def key_secret_name(self, plan: FleetPlan, primary: Stack) -> str:
        return key_secret_name(key_namespace("fleet", primary.stack_name), plan.source.primary_name)

    def certificate_id(self, plan: FleetPlan) -> str:
        return "Certificate"

    def tag_id(self, plan: FleetPlan) -> str | None:
        return None

    def sweepers(self, plan: FleetPlan, stacks: Mapping[str, Stack]) -> dict[str, Stack]:
        key_account = plan.accounts[plan.regions[0]]
        prefix = self.prefix(plan)
        found: dict[str, Stack] = {}
        for account in dict.fromkeys(plan.accounts[r] for r in plan.regions):
            own = account == key_account
            regions = [r for r in plan.regions if plan.accounts[r] == account]
            stack, _ = sweeper_stack(
                plan.owner, "sweeper" if own else f"sweeper-{account}",
                stack_name=f"{prefix}-sweeper" if own else f"{prefix}-sweeper-{account}",
                account=account, regions=regions,
                description=f"certfleet: deletes retired certificates of fleet {plan.fleet_name}"
                            + ("" if own else f" in account {account}"),
                termination_protection=self.termination_protection,
                fleets=plan.fleet_name, fleet=plan.fleet_name,
                generation="/".join(plan.source.generation),
            )
            for fleet_stack in stacks.values():
                if fleet_stack.account == account:
                    stack.add_stack_dependency(fleet_stack, "certfleet: sweeps after the certificates are updated")
            found[account] = stack
        return found


def sweeper_stack(
    scope: Construct, id: str, *, stack_name: str, account: str, regions: Sequence[str], description: str,
    termination_protection: bool, fleets: str, fleet: str = "", fleet_prefix: str = "", generation: str,
) -> tuple[Stack, CustomResource]:
    """A last stack that deletes the retired certificates of ``fleets`` (a fleet tag, or ``<group>/*``) in
    ``regions`` of ``account`` once their consumers have moved on (see the README's "Key-type upgrades"): those of
    fleet ``fleet``, or of every fleet whose name starts with ``fleet_prefix`` (a FleetGroup's)."""
    stack = Stack(scope, id, stack_name=stack_name, env=Environment(account=account, region=regions[0]),
                  description=description, termination_protection=termination_protection)
    provider = ImporterProvider.of(stack)
    provider.allow_sweep(fleets)
    properties = (SweeperProperties(FleetPrefix=fleet_prefix, Regions=list(regions)) if fleet_prefix
                  else SweeperProperties(Fleet=fleet, Regions=list(regions)))
    properties["Generation"] = generation
    properties["WaitSeconds"] = "600"
    sweeper = CustomResource(
        stack, "Sweeper",
        service_token=provider.service_token,
        resource_type=SWEEPER_TYPE,
        properties=properties,
    )
    return stack, sweeper
