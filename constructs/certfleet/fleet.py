"""CertificateFleet: one stack per region, the key in the primary, an ImportedCertificate everywhere."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from aws_cdk import CfnOutput, CustomResource, Duration, Environment, RemovalPolicy, Stack, Stage, Token
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from certfleet.certificate_bundle import CertificateBundle
from certfleet.imported_certificate import CertificateBase, ImportedCertificate, check_expiry
from certfleet.key_source import (
    KeyBinding,
    KeySource,
    SealedKeySource,
    SealedKeyStore,
    grant_key_read,
    key_namespace,
    key_secret_name,
)
from certfleet.placement_plugin import PlacementChecks
from certfleet.providers import ImporterProvider
from certfleet.references import weak_reference
from certfleet.rules import EDGE_REGION, RULES, Service

if TYPE_CHECKING:  # pragma: no cover
    from certfleet.group import FleetGroup
    from certfleet.monitoring import ExpiryMonitoring

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_ACCOUNT = re.compile(r"^\d{12}$")
_TAG_NAME = re.compile(r"[\w.:=+@ -]+")
"""A fleet or group name: ACM tag value characters, minus ``/`` (it separates a FleetGroup from its fleets) and
anything IAM reads as a wildcard or a variable (``*``, ``?``, ``$``)."""


def check_tag_name(owner: Construct, what: str, name: str, limit: int = 256) -> str:
    """``name`` (in the ``certfleet:fleet`` tag, which IAM conditions match), refused unless it is a plain name of
    at most ``limit`` characters (ACM tag values: 256)."""
    if not _TAG_NAME.fullmatch(name) or len(name) > limit:
        raise ValueError(
            f"{owner.node.path}: {what} {name!r} must be 1-{limit} letters, digits, spaces and _.:=+@- (no '/', "
            "'*', '?' or '$': it becomes the certfleet:fleet tag that the importer's IAM conditions match, and '/' "
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
    if not Token.is_unresolved(account) and not _ACCOUNT.match(account):
        raise ValueError(f"{owner.node.path}: account {account!r} must be a 12-digit AWS account id")
    bad = [r for r in regions if not _REGION.match(r)]
    if bad:
        raise ValueError(f"{owner.node.path}: {', '.join(bad)} is not an AWS region name (e.g. eu-west-1)")
    wanted = tuple(dict.fromkeys(([EDGE_REGION] if edge else []) + list(regions)))
    if not wanted:
        raise ValueError(f"{owner.node.path}: no region: set edge=True (us-east-1) and/or regions=[...]")
    return wanted


class FleetCertificateReference(CertificateBase):
    """A fleet certificate as another stack sees it: its ARN read weakly (``Fn::GetStackOutput``)."""

    def __init__(self, scope: Construct, id: str, *, source: ImportedCertificate) -> None:
        super().__init__(scope, id)
        self.source = source
        self._arn = weak_reference(source, "CertificateArn", source.certificate_arn, self)

    @property
    def certificate_arn(self) -> str:
        return self._arn

    @property
    def region(self) -> str:
        """Where the certificate lives (not the consuming stack's region)."""
        return self.source.region

    @property
    def bundle(self) -> CertificateBundle:
        return self.source.bundle


class CertificateFleet(Construct):
    """One third-party certificate in every region a set of services needs it, from one bundle and one key.

    Creates a stack per region (us-east-1 when ``edge``, plus each of ``regions``). The key's secret lives in
    the primary stack (us-east-1 when ``edge``, else the first region) and is replicated to the others,
    where each ``ImportedCertificate`` reads its local replica.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bundle: CertificateBundle,
        key: KeySource,
        account: str,
        regions: Sequence[str] = (),
        edge: bool = True,
        fleet_name: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        delete_timeout: Duration | None = None,
        stack_name_prefix: str | None = None,
        termination_protection: bool = False,
        accounts: Mapping[str, str] | None = None,
        _group: FleetGroup | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.group = _group
        if _group is None:
            require_stage(scope, "CertificateFleet", id, "one stack per region")
        self.regions: tuple[str, ...] = checked_regions(self, account, regions, edge)
        accounts = dict(accounts or {})
        for where, other in accounts.items():
            if not _ACCOUNT.match(other):
                raise ValueError(f"{self.node.path}: accounts[{where!r}] = {other!r} must be a 12-digit AWS account id")
        unknown = sorted(set(accounts) - set(self.regions))
        if unknown:
            raise ValueError(
                f"{self.node.path}: accounts= names {', '.join(unknown)}, which is not a fleet region "
                f"({', '.join(self.regions)}): add it to regions=[...] or remove it from accounts",
            )
        self.accounts: dict[str, str] = {r: accounts.get(r, account) for r in self.regions}
        self.bundle = bundle
        self.key = key
        self.account = account
        self.edge = edge
        stage = Stage.of(self)
        stage_name = stage.stage_name if stage is not None else ""
        stage_prefix = f"{stage_name.replace('/', '-')}-" if stage_name else ""
        if _group is not None:
            self.fleet_name = f"{_group.group_name}/{check_tag_name(self, 'fleet id', id, 155)}"
        else:
            self.fleet_name = check_tag_name(self, "fleet_name", fleet_name or f"{stage_prefix}{id}")
        prefix = stack_name_prefix or f"{stage_prefix}{id}"
        key.check(bundle, self.node.path)
        check_expiry(self, bundle)
        self._stacks: dict[str, Stack] = {}
        if _group is not None:
            self._stacks = _group._place(self)
        for region in self.regions if _group is None else ():
            self._stacks[region] = Stack(
                self, region,
                stack_name=f"{prefix}-{region}",
                env=Environment(account=self.accounts[region], region=region),
                description=f"certfleet: {bundle.primary_name} in {region} (fleet {self.fleet_name})",
                termination_protection=termination_protection,
            )
        group_name = _group.group_name if _group is not None else ""
        primary = self._stacks[self.regions[0]]
        self.key_account = self.accounts[self.regions[0]]
        remote = [r for r in self.regions if self.accounts[r] != self.key_account]
        if _group is not None:  # the shard too: a fleet that moves gets a new secret, not the retained one's name
            shard = primary.stack_name.removeprefix(f"{_group.prefix}-")
            secret_name = key_secret_name(_group.key_namespace, id, shard, bundle.primary_name)
        else:
            secret_name = key_secret_name(key_namespace("fleet", primary.stack_name), bundle.primary_name)
        primary_binding = key.bind(
            primary, bundle,
            secret_name=secret_name,
            replica_regions=[r for r in self.regions[1:] if r not in remote],
            group_namespace=_group.key_namespace if _group is not None else "",
        )
        self._primary_binding = primary_binding
        self._shared: dict[str, _KeyShare] = {}
        if remote and isinstance(key, SealedKeySource):
            self.share_key_with(sorted({self.accounts[r] for r in remote}))
        self._certificates: dict[str, ImportedCertificate] = {}
        for region, stack in self._stacks.items():
            if stack is primary:
                binding = primary_binding
            elif region in remote:
                binding = key.bind_remote(stack, primary_binding)
            else:
                binding = key.bind_replica(stack, primary_binding)
            self._certificates[region] = ImportedCertificate(
                stack, id if _group is not None else "Certificate",
                bundle=bundle, key=key, key_binding=binding, fleet_name=self.fleet_name,
                removal_policy=removal_policy, delete_timeout=delete_timeout,
                tag_id=f"{_group.node.path}/{id}" if _group is not None else None, group=group_name or None,
            )
        self.sweeper_stack = (_group.sweeper_stack if _group is not None
                              else self._sweeper(prefix, termination_protection, self.key_account))
        self.sweeper_stacks: dict[str, Stack] = {self.key_account: self.sweeper_stack}
        """The sweeper of each account the fleet spans (a sweeper deletes only in its own account)."""
        for other in dict.fromkeys(self.accounts[r] for r in remote):
            self.sweeper_stacks[other] = self._sweeper(prefix, termination_protection, other)
        PlacementChecks.enable(self)  # every synth of this app checks each consumer of the certificate

    def _sweeper(self, prefix: str, termination_protection: bool, account: str) -> Stack:
        """A last stack that deletes the fleet's retired certificates of ``account`` once their consumers have
        moved on.

        A key-type upgrade replaces each certificate; CloudFormation deletes the old one in the fleet stack's
        cleanup, while consumer stacks (deployed after it) still use it. The importer then retires it (a tag)
        instead of failing, and this stack, deployed after every consumer of that account that asked
        certificate_for, deletes what is released, in every fleet region of ``account``: one per account, since
        a sweeper can list and delete certificates of its own account only.
        """
        regions = [r for r in self.regions if self.accounts[r] == account]
        own = account == self.key_account
        stack = Stack(self, "sweeper" if own else f"sweeper-{account}",
                      stack_name=f"{prefix}-sweeper" if own else f"{prefix}-sweeper-{account}",
                      env=Environment(account=account, region=regions[0]),
                      description=f"certfleet: deletes retired certificates of fleet {self.fleet_name}"
                                  + ("" if own else f" in account {account}"),
                      termination_protection=termination_protection)
        provider = ImporterProvider.of(stack)
        provider.allow_sweep(self.fleet_name)
        for fleet_stack in self._stacks.values():
            if fleet_stack.account == account:
                stack.add_stack_dependency(fleet_stack, "certfleet: sweeps after the certificates are updated")
        CustomResource(
            stack, "Sweeper",
            service_token=provider.service_token,
            resource_type="Custom::CertfleetSweeper",
            properties={
                "Fleet": self.fleet_name,
                "Regions": regions,
                "Generation": f"{self.bundle.fingerprint}/{self.bundle.key_algorithm}",
                "WaitSeconds": "600",
            },
        )
        return stack

    def _consumed_by(self, stack: Stack, region: str) -> None:
        """The sweeper of the account that holds the certificate of ``region`` runs only after ``stack`` (a consumer,
        of any account) has moved to the new certificate."""
        sweeper = self.sweeper_stacks[self.accounts[region]]
        if stack is not sweeper and Stage.of(stack) is Stage.of(sweeper):
            sweeper.add_stack_dependency(stack, "certfleet: sweeps after consumers move on")

    @property
    def primary_region(self) -> str:
        """The region of the key's secret (its replicas are in every other fleet region)."""
        return self.regions[0]

    @property
    def certificates(self) -> dict[str, ImportedCertificate]:
        """Every certificate of the fleet by region."""
        return dict(self._certificates)

    @property
    def edge_certificate(self) -> ImportedCertificate:
        """The certificate in us-east-1, for CloudFront, edge-optimized API Gateway and Amplify."""
        cert = self._certificates.get(EDGE_REGION)
        if cert is None:
            raise ValueError(
                f"{self.node.path} has no us-east-1 certificate (edge=False): CloudFront, edge-optimized API "
                "Gateway and Amplify need one. Set edge=True on the fleet.",
            )
        return cert

    def stack_for(self, region: str) -> Stack:
        """The fleet's stack in ``region``."""
        stack = self._stacks.get(region)
        if stack is None:
            raise ValueError(self._missing(region, f"stack_for({region!r})"))
        return stack

    def certificate_for(self, scope: Construct, service: Service | None = None) -> acm.ICertificate:
        """The certificate ``scope``'s stack should use: in its own region, or in us-east-1 for edge services.

        From another stack the ARN is read with ``Fn::GetStackOutput`` (a weak reference), so that a key-type
        upgrade, which replaces the certificate and its ARN, never blocks a deploy.
        """
        stack = self._pinned(scope, "hand it the certificate of its region")
        region = stack.region
        if service is not None:
            rule = RULES[service]
            if not rule.accepts_imported:
                raise ValueError(f"{scope.node.path}: {rule.refusal}")
            region = rule.region_for(stack.region) or stack.region
        cert = self._certificates.get(region)
        if cert is None:
            raise ValueError(self._missing(region, f"{stack.node.path} (in {stack.region})"))
        if Stack.of(cert) is stack:
            return cert
        id = "".join(ch for ch in f"{self.node.id}{region.title()}Certificate" if ch.isalnum())
        existing = stack.node.try_find_child(id)
        if isinstance(existing, FleetCertificateReference):
            return existing
        self._consumed_by(stack, region)
        return FleetCertificateReference(stack, id, source=cert)

    def add_expiry_monitoring(
        self,
        *,
        topic: sns.ITopic,
        days: int = 30,
        days_before_expiry_event: int = 45,
        configure_account_expiry_events: bool = True,
        account_topics: Mapping[str, sns.ITopic] | None = None,
    ) -> dict[str, ExpiryMonitoring]:
        """In every fleet region: an alarm at ``days`` days left (or once expired) and ACM's daily expiry events,
        both delivered to ``topic``, wherever it is.

        A topic in another region than a certificate is reached through an EventBridge event bus relay in the
        topic's region (CloudWatch alarm actions and EventBridge SNS targets work only within a region): in the
        topic's own stack, or in the fleet's stack of that region for a topic imported elsewhere.
        ``days_before_expiry_event`` (1-45) sets ``AWS::CertificateManager::Account`` ``DaysBeforeExpiry`` in
        each fleet region; that is one setting per account and region, so if another stack or app already owns it
        pass ``configure_account_expiry_events=False``. A fleet spanning accounts (``accounts=``) notifies, for
        the certificates of each other account, the topic ``account_topics`` names for that account (a topic in
        that account; default: ``topic``, which must then be in that account): certfleet sets up no cross-account
        delivery.
        """
        from certfleet.monitoring import validate_days

        validate_days(self.node.path, days, days_before_expiry_event)
        topics = dict(account_topics or {})
        spanned = set(self.accounts.values())
        unknown = sorted(set(topics) - spanned)
        if unknown:
            raise ValueError(
                f"{self.node.path}: account_topics names account {', '.join(unknown)}, where the fleet has no "
                f"certificate (its accounts: {', '.join(sorted(spanned))})",
            )
        for region, account in self.accounts.items():
            chosen = topics.get(account, topic)
            where = chosen.env.account
            if not Token.is_unresolved(where) and where != account:
                fix = (f"use a topic of account {account} (subscribe the other account's endpoints to it)"
                       if account == self.key_account else
                       f"pass account_topics={{{account!r}: <an sns.Topic in a stack of account {account}>}}")
                raise ValueError(
                    f"{self.node.path}: the expiry topic {chosen.node.path} is in account {where}, the certificate "
                    f"in {region} in account {account}: alarms and expiry rules notify a topic of their own account "
                    f"(certfleet sets up no cross-account delivery): {fix}",
                )

        def relay_stacks(account: str) -> Callable[[str], Stack | None]:
            return lambda region: next((s for s in self._stacks.values()
                                        if s.region == region and s.account == account), None)

        return {
            region: cert._monitor(topics.get(self.accounts[region], topic), days, days_before_expiry_event,
                                  configure_account_expiry_events, relay_stacks(self.accounts[region]))
            for region, cert in self._certificates.items()
        }

    @property
    def key_secret_arn(self) -> str:
        """The full ARN of the key's primary secret (a token of the primary stack; sealed keys only)."""
        return self._store("key_secret_arn").secret.secret_arn

    @property
    def key_encryption_key_arn(self) -> str:
        """The ARN of the customer-managed KMS key that encrypts the primary secret (sealed keys only)."""
        return self._store("key_encryption_key_arn").encryption_key.key_arn

    def share_key_with(self, account_ids: Sequence[str], *, principal_arns: Sequence[str] = ()) -> None:
        """Let other accounts read the private key: the primary secret's resource policy and its KMS key's policy.

        Secrets Manager needs both sides: this resource policy (``GetSecretValue``) and, in the other account, an
        identity policy; the key's policy allows ``kms:Decrypt`` only through Secrets Manager in the primary
        region. Replicas are encrypted with aws/secretsmanager, which no other account may use, so readers in
        other accounts read the PRIMARY secret, by its full ARN, in the primary region, whatever their own
        region: ``KeySource.secret(<key_secret_arn>, encryption_key_arn=<key_encryption_key_arn>)`` in an
        ``ImportedCertificate``, or a fleet that lists that account in ``accounts=``. ``principal_arns`` narrows
        the grant to those roles (``aws:PrincipalArn``, wildcards allowed): one statement per account, whose
        narrowing a later call replaces (widening back to the whole account is refused). Both ARNs are stack
        outputs of the primary stack. Sealed keys only: a key of ``KeySource.secret`` lives in a secret certfleet
        does not own.
        """
        store = self._store("share_key_with")
        accounts = [a for a in dict.fromkeys(account_ids) if a != self.key_account]
        bad = [a for a in accounts if not _ACCOUNT.match(a)]
        if bad:
            raise ValueError(f"{self.node.path}: share_key_with: {', '.join(bad)} is not a 12-digit AWS account id")
        if not accounts:
            return
        narrow = list(dict.fromkeys(principal_arns))
        for account in accounts:
            share = self._shared.get(account)
            if share is None:
                self._shared[account] = self._share(store, account, narrow)
            elif narrow:
                share.narrow(narrow)
            elif share.principal_arns:
                raise ValueError(
                    f"{self.node.path}: share_key_with([{account!r}]) would widen a grant already narrowed to "
                    f"principal_arns={share.principal_arns}: certfleet never widens silently; pass the roles that "
                    f"need the key as principal_arns (e.g. 'arn:aws:iam::{account}:role/*')",
                )
        primary = self._stacks[self.primary_region]
        if primary.node.try_find_child("CertfleetSharedKeySecretArn") is None:
            CfnOutput(primary, "CertfleetSharedKeySecretArn", value=store.secret.secret_arn,
                      description="certfleet: the key's primary secret, for KeySource.secret(...) in other accounts")
            CfnOutput(primary, "CertfleetSharedKeyEncryptionKeyArn", value=store.encryption_key.key_arn,
                      description="certfleet: its KMS key, for KeySource.secret(..., encryption_key_arn=...)")

    def _share(self, store: SealedKeyStore, account: str, principal_arns: list[str]) -> _KeyShare:
        """One statement for ``account`` in the secret's policy and one in its KMS key's policy (Sid per account)."""
        principal = iam.AccountPrincipal(account)
        secret = iam.PolicyStatement(
            sid=f"CertfleetShareKey{account}", principals=[principal],
            actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], resources=["*"],
        )
        kms = iam.PolicyStatement(
            sid=f"CertfleetShareKey{account}", principals=[principal],
            actions=["kms:Decrypt", "kms:DescribeKey"], resources=["*"],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{self.primary_region}.amazonaws.com"}},
        )
        share = _KeyShare((secret, kms))
        if principal_arns:
            share.narrow(principal_arns)
        store.secret.add_to_resource_policy(secret)
        store.encryption_key.add_to_resource_policy(kms)
        return share

    def key_binding_for(self, scope: Construct) -> KeyBinding:
        """The key's secret as ``scope``'s stack should read it: the replica of its region in the fleet's account,
        else the primary (by name in the key's account, by full ARN from another account, where the fleet
        must have shared it with ``share_key_with``)."""
        stack = self._pinned(scope, "tell it where to read the key")
        primary = self._primary_binding
        same_account = Token.is_unresolved(stack.account) or stack.account == self.key_account
        store = primary.store
        if not same_account:
            if isinstance(store, SealedKeyStore) and stack.account not in self._shared:
                raise ValueError(
                    f"{stack.node.path} (account {stack.account}) reads the key of {self.node.path}, which is not "
                    f"shared with that account: fleet.share_key_with([{stack.account!r}])",
                )
            return self.key.bind_remote(stack, primary)
        if stack.region in self.regions and stack.region != self.primary_region:
            return self.key.bind_replica(stack, primary)
        # the primary, from its own region or from a region without a replica
        cmk = ""
        if isinstance(store, SealedKeyStore):
            cmk = weak_reference(store, "KeyEncryptionKeyArn", store.encryption_key.key_arn, stack)
        else:
            cmk = getattr(self.key, "encryption_key_arn", "")
        secret_id = primary.secret_name or primary.secret_id
        return KeyBinding(primary.secret, "", primary.secret_name, store, secret_id=secret_id,
                          encryption_key_arn=cmk, region=self.primary_region)

    def grant_key_read(self, grantee: iam.IGrantable, scope: Construct | None = None) -> KeyBinding:
        """Let ``grantee`` (an instance role, a task role...) read exactly the key's secret from ``scope``'s stack
        (default: the grantee's own), plus ``kms:Decrypt`` through Secrets Manager when that secret is encrypted
        with a customer-managed key. Returns where to read it (``secret_id``, ``region``)."""
        where = scope if scope is not None else _construct_of(grantee, self.node.path)
        binding = self.key_binding_for(where)
        grant_key_read(grantee, binding, where)
        holder = Stack.of(where)
        key_stack = self._stacks[self.primary_region]
        if holder is not key_stack and key_stack not in holder.dependencies:
            holder.add_stack_dependency(key_stack, f"certfleet: reads the key of {self.node.path}")
        return binding

    def _pinned(self, scope: Construct, purpose: str) -> Stack:
        """``scope``'s stack, which must name its region for the fleet to ``purpose``."""
        stack = Stack.of(scope)
        if Token.is_unresolved(stack.region):
            raise ValueError(
                f"{stack.node.path} is environment-agnostic: give it env=Environment(account=..., region=...) so "
                f"that {self.node.path} can {purpose}",
            )
        return stack

    def _store(self, what: str) -> SealedKeyStore:
        store = self._primary_binding.store
        if not isinstance(store, SealedKeyStore):
            raise ValueError(
                f"{self.node.path}: {what} needs a key certfleet stores (KeySource.sealed); with "
                "KeySource.secret the secret is yours: add its resource policy and KMS key policy where it is "
                "defined",
            )
        return store

    def edge_certificate_for(self, scope: Construct) -> acm.ICertificate:
        """The us-east-1 certificate as ``scope``'s stack may reference it, whatever that stack's region."""
        return self.certificate_for(scope, Service.CLOUDFRONT)

    def _missing(self, region: str, who: str) -> str:
        have = ", ".join(self.regions)
        if region == EDGE_REGION:
            fix = f"set edge=True on CertificateFleet '{self.node.id}'"
        else:
            fix = f"add {region!r} to regions=[...] of CertificateFleet '{self.node.id}'"
        return (
            f"{who} needs the certificate in {region}, but fleet {self.node.path} has it only in {have}: {fix}"
        )



class _KeyShare:
    """The two statements that share the key with one account; narrowing replaces their principal condition."""

    def __init__(self, statements: tuple[iam.PolicyStatement, iam.PolicyStatement]) -> None:
        self.statements = statements
        self.principal_arns: list[str] = []

    def narrow(self, principal_arns: list[str]) -> None:
        self.principal_arns = principal_arns
        for statement in self.statements:
            statement.add_condition("ArnLike", {"aws:PrincipalArn": principal_arns})


def _construct_of(grantee: iam.IGrantable, owner: str) -> Construct:
    principal = grantee.grant_principal
    if isinstance(principal, Construct):
        return principal
    if isinstance(grantee, Construct):
        return grantee
    raise ValueError(f"{owner}: grant_key_read: pass scope= (a construct of the stack that holds {principal})")
