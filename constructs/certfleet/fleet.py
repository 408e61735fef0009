"""CertificateFleet: one stack per region, the key in the primary, an ImportedCertificate everywhere."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack, Stage, Token
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from certfleet.acme import AcmeIssuer
from certfleet.acme_order import FleetTarget
from certfleet.certificate_bundle import CertificateBundle
from certfleet.imported_certificate import CertificateBase, ImportedCertificate, tag_value
from certfleet.key_source import KeyBinding, KeySource, SealedKeyStore, grant_key_read
from certfleet.layout import FleetLayout, FleetPlan, StackPerRegion
from certfleet.naming import ACCOUNT, checked_regions
from certfleet.placement_plugin import PlacementChecks
from certfleet.references import weak_reference
from certfleet.rules import EDGE_REGION, RULES, Service
from certfleet.source import CertificateSource, ImportedSource

if TYPE_CHECKING:  # pragma: no cover
    from certfleet.monitoring import ExpiryMonitoring


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
    """One certificate in every region its services need it: an ``ImportedCertificate`` per region, the key's
    secret in the primary region (us-east-1 with ``edge``, else the first) and replicated to the others.

    Args:
        scope: the App or Stage (standalone), or what ``layout`` requires (a FleetGroup for its fleets).
        id: the construct id; with the stage name, the default fleet name and stack name prefix.
        bundle: the certificate, chain and names; short for ``source=CertificateSource.imported(bundle, key)``.
            Default: None, ``source`` is given.
        key: where the private key comes from (with ``bundle``). Default: None, ``source`` is given.
        source: where the certificate comes from. Default: ``CertificateSource.imported(bundle, key)``.
        account: the AWS account of every fleet stack (12 digits).
        regions: regions that get a regional copy. Default: none.
        edge: also us-east-1, first, for CloudFront, edge-optimized API Gateway and Amplify. Default: True.
        fleet_name: the ``certfleet:fleet`` tag that scopes the importer's IAM. Default: ``<stage>-<id>``.
        removal_policy: DESTROY deletes the ACM certificates with the stack, RETAIN keeps them. Default: DESTROY.
        delete_timeout: how long a delete waits for consumers to let go of a certificate. Default: 25 minutes.
        stack_name_prefix: stacks are ``<prefix>-<region>`` and ``<prefix>-sweeper``. Default: ``<stage>-<id>``.
        termination_protection: on every stack of the fleet. Default: False.
        accounts: another account for some regions (``{region: account}``). Default: ``account`` everywhere.
        layout: where the fleet's stacks are and what they are called. Default:
            ``StackPerRegion(fleet_name=, stack_name_prefix=, termination_protection=)``; a FleetGroup passes its own.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bundle: CertificateBundle | None = None,
        key: KeySource | None = None,
        source: CertificateSource | None = None,
        account: str,
        regions: Sequence[str] = (),
        edge: bool = True,
        fleet_name: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        delete_timeout: Duration | None = None,
        stack_name_prefix: str | None = None,
        termination_protection: bool = False,
        accounts: Mapping[str, str] | None = None,
        layout: FleetLayout | None = None,
    ) -> None:
        super().__init__(scope, id)
        if layout is None:
            layout = StackPerRegion(fleet_name=fleet_name, stack_name_prefix=stack_name_prefix,
                                    termination_protection=termination_protection)
        elif fleet_name is not None or stack_name_prefix is not None or termination_protection:
            raise ValueError(
                f"{self.node.path}: fleet_name, stack_name_prefix and termination_protection belong to the layout "
                "when layout= is given (a FleetGroup's fleets take the group's): leave them out",
            )
        layout.check_scope(scope, id)
        self.layout = layout
        self.source: CertificateSource = _source_of(self, bundle, key, source)
        self.regions: tuple[str, ...] = checked_regions(self, account, regions, edge)
        accounts = dict(accounts or {})
        for where, other in accounts.items():
            if not ACCOUNT.match(other):
                raise ValueError(f"{self.node.path}: accounts[{where!r}] = {other!r} must be a 12-digit AWS account id")
        unknown = sorted(set(accounts) - set(self.regions))
        if unknown:
            raise ValueError(
                f"{self.node.path}: accounts= names {', '.join(unknown)}, which is not a fleet region "
                f"({', '.join(self.regions)}): add it to regions=[...] or remove it from accounts",
            )
        self.accounts: dict[str, str] = {r: accounts.get(r, account) for r in self.regions}
        self.account = account
        self.edge = edge
        plan = FleetPlan(self, id, self.regions, self.accounts, self.source)
        self.fleet_name = layout.fleet_name(plan)
        plan = FleetPlan(self, id, self.regions, self.accounts, self.source, self.fleet_name)
        self.source.check(self)
        self._stacks = layout.assign(plan)
        primary = self._stacks[self.regions[0]]
        self.key_account = self.accounts[self.regions[0]]
        remote = [r for r in self.regions if self.accounts[r] != self.key_account]
        if remote and self.source.fleet_wide_id:
            raise ValueError(
                f"{self.node.path}: an ACME source renews and re-imports from the primary account "
                f"({self.key_account}, {self.regions[0]}) only, and accounts= puts {', '.join(remote)} in another "
                "account: make one fleet per account (each with its own CertificateSource.acme), or drop accounts=",
            )
        cert_id, tag_id = layout.certificate_id(plan), layout.tag_id(plan)
        if tag_id is None and self.source.fleet_wide_id:
            tag_id = self.node.path  # one certfleet:id in every region: the renewer finds each region's by it
        target = FleetTarget(self.fleet_name, self.regions, tag_value(tag_id)) if tag_id is not None else None
        primary_binding = self.source.bind_key(
            primary, secret_name=layout.key_secret_name(plan, primary),
            replica_regions=[r for r in self.regions[1:] if r not in remote], key_namespace=layout.key_namespace,
            target=target,
        )
        self._primary_binding = primary_binding
        self._shared: dict[str, _KeyShare] = {}
        if remote and isinstance(self.key_store, SealedKeyStore):
            self.share_key_with(sorted({self.accounts[r] for r in remote}))
        self._certificates: dict[str, ImportedCertificate] = {}
        for region, stack in self._stacks.items():
            if stack is primary:
                binding = primary_binding
            elif region in remote:
                binding = self.source.bind_key_remote(stack, primary_binding)
            else:
                binding = self.source.bind_key_replica(stack, primary_binding)
            self._certificates[region] = ImportedCertificate(
                stack, cert_id, source=self.source, key_binding=binding, fleet_name=self.fleet_name,
                removal_policy=removal_policy, delete_timeout=delete_timeout, tag_id=tag_id,
                group=layout.iam_group or None,
            )
        self.sweeper_stacks: dict[str, Stack] = layout.sweepers(plan, self._stacks)
        """The sweeper of each account the fleet spans (a sweeper deletes only in its own account)."""
        self.sweeper_stack = self.sweeper_stacks[self.key_account]
        """The sweeper of the key's account."""
        PlacementChecks.enable(self)  # every synth of this app checks each consumer of the certificate

    @property
    def bundle(self) -> CertificateBundle:
        """The certificate's bundle (a fleet of ``CertificateSource.imported``)."""
        return self._imported("bundle").bundle

    @property
    def key(self) -> KeySource:
        """Where the private key comes from (a fleet of ``CertificateSource.imported``)."""
        return self._imported("key").key

    @property
    def key_store(self) -> Construct | None:
        """The construct that holds the key's secret in the primary stack (None when certfleet stores no key)."""
        return self._primary_binding.store

    def _imported(self, what: str) -> ImportedSource:
        if not isinstance(self.source, ImportedSource):
            raise ValueError(
                f"{self.node.path}: {what} is for fleets of CertificateSource.imported (files and a key you hold); "
                "this fleet's certificate is ordered and renewed over ACME (CertificateSource.acme), so there is none "
                "at synth: read fleet.source.names / fleet.source.key_type instead",
            )
        return self.source

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
        """The certificate ``scope``'s stack should use: in its own region, or in us-east-1 for edge services; from
        another stack its ARN is read weakly (``Fn::GetStackOutput``).

        Args:
            scope: a construct of the consuming stack (its region must be concrete).
            service: the service that will use it (picks the region and refuses what it cannot take). Default: None,
                the stack's region.
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
        """In every fleet region: an alarm at ``days`` days left (or once expired) and ACM's daily expiry events, to
        ``topic`` wherever it is (through an EventBridge relay in the topic's region when needed); an ACME fleet's
        renewer failing (any error in a day) alarms the same topic.

        Args:
            topic: where alarms and expiry events go; in the key's account.
            days: the alarm's threshold in days left. Default: 30.
            days_before_expiry_event: the account's ``DaysBeforeExpiry`` in each fleet region (1-45). Default: 45.
            configure_account_expiry_events: declare that per-account setting in the fleet's stacks. Default: True.
            account_topics: the topic of each other account the fleet spans (``{account: topic}``). Default: ``topic``.
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
            region: cert.add_expiry_monitoring(
                topic=topics.get(self.accounts[region], topic), days=days,
                days_before_expiry_event=days_before_expiry_event,
                configure_account_expiry_events=configure_account_expiry_events,
                relay_stacks=relay_stacks(self.accounts[region]),
            )
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
        """Let other accounts read the private key (sealed keys only): the primary secret's resource policy and its
        KMS key's policy, one statement per account; readers use ``key_secret_arn`` / ``key_encryption_key_arn``.

        Args:
            account_ids: the accounts that may read the key.
            principal_arns: narrow the grant to these roles (``aws:PrincipalArn``, wildcards allowed); a later call
                may narrow again but never widen. Default: the whole account.
        """
        store = self._store("share_key_with")
        accounts = [a for a in dict.fromkeys(account_ids) if a != self.key_account]
        bad = [a for a in accounts if not ACCOUNT.match(a)]
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
            return self.source.bind_key_remote(stack, primary)
        if stack.region in self.regions and stack.region != self.primary_region:
            return self.source.bind_key_replica(stack, primary)
        # the primary, from its own region or from a region without a replica
        cmk = ""
        if isinstance(store, (SealedKeyStore, AcmeIssuer)):
            cmk = weak_reference(store, "KeyEncryptionKeyArn", store.encryption_key.key_arn, stack)
        else:
            cmk = primary.encryption_key_arn
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


def _source_of(
    owner: Construct, bundle: CertificateBundle | None, key: KeySource | None, source: CertificateSource | None,
) -> CertificateSource:
    """``source``, or the short form ``bundle=``/``key=``: exactly one of the two."""
    if source is not None and bundle is None and key is None:
        return source
    if source is None and bundle is not None and key is not None:
        if not isinstance(bundle, CertificateBundle):
            raise TypeError(
                f"{owner.node.path}: bundle must be a CertificateBundle (CertificateBundle.from_files(...))",
            )
        if not isinstance(key, KeySource):
            raise TypeError(
                f"{owner.node.path}: key must be a KeySource (KeySource.sealed(...) or KeySource.secret(...))",
            )
        return CertificateSource.imported(bundle, key)
    raise ValueError(
        f"{owner.node.path}: give bundle= and key= (or source=CertificateSource.imported(bundle, key)), not both "
        "and not neither",
    )
