"""CertificateFleet: one stack per region, the key in the primary, an ImportedCertificate everywhere."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jsii
from aws_cdk import Duration, Environment, RemovalPolicy, Resource, Stack, Stage, Token
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces import aws_certificatemanager as acm_refs
from constructs import Construct

from certfleet.certificate_bundle import CertificateBundle
from certfleet.imported_certificate import ImportedCertificate, check_expiry, days_to_expiry_metric
from certfleet.key_source import KeySource
from certfleet.references import weak_reference
from certfleet.rules import EDGE_REGION, RULES, Service

if TYPE_CHECKING:  # pragma: no cover
    from certfleet.monitoring import ExpiryMonitoring

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_ACCOUNT = re.compile(r"^\d{12}$")


@jsii.implements(acm.ICertificate)
class FleetCertificateReference(Resource):
    """A fleet certificate as another stack sees it: its ARN read weakly (``Fn::GetStackOutput``)."""

    def __init__(self, scope: Construct, id: str, *, source: ImportedCertificate) -> None:
        super().__init__(scope, id)
        self.source = source
        self._arn = weak_reference(source, "CertificateArn", source.certificate_arn, self)

    @property
    def certificate_arn(self) -> str:
        return self._arn

    @property
    def certificate_ref(self) -> acm_refs.CertificateReference:
        return acm_refs.CertificateReference(certificate_arn=self._arn)

    @property
    def region(self) -> str:
        """Where the certificate lives (not the consuming stack's region)."""
        return self.source.region

    @property
    def bundle(self) -> CertificateBundle:
        return self.source.bundle

    def metric_days_to_expiry(self, **options: Any) -> cloudwatch.Metric:
        """``DaysToExpiry`` from the certificate's own region."""
        return days_to_expiry_metric(self._arn, self.source.region, options)


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
    ) -> None:
        super().__init__(scope, id)
        if not isinstance(scope, Stage):
            raise TypeError(
                f"CertificateFleet '{id}' must be created directly in an App or a Stage (it creates one stack per "
                f"region), not inside {scope.node.path or 'a construct'}: CertificateFleet(app, '{id}', ...)",
            )
        if not Token.is_unresolved(account) and not _ACCOUNT.match(account):
            raise ValueError(f"{self.node.path}: account {account!r} must be a 12-digit AWS account id")
        bad = [r for r in regions if not _REGION.match(r)]
        if bad:
            raise ValueError(f"{self.node.path}: {', '.join(bad)} is not an AWS region name (e.g. eu-west-1)")
        wanted = ([EDGE_REGION] if edge else []) + list(regions)
        self.regions: tuple[str, ...] = tuple(dict.fromkeys(wanted))
        if not self.regions:
            raise ValueError(f"{self.node.path}: no region: set edge=True (us-east-1) and/or regions=[...]")
        self.bundle = bundle
        self.key = key
        self.account = account
        self.edge = edge
        stage = Stage.of(self)
        stage_name = stage.stage_name if stage is not None else ""
        stage_prefix = f"{stage_name.replace('/', '-')}-" if stage_name else ""
        self.fleet_name = fleet_name or f"{stage_prefix}{id}"
        prefix = stack_name_prefix or f"{stage_prefix}{id}"
        key.check(bundle, self.node.path)
        check_expiry(self, bundle)
        self._stacks: dict[str, Stack] = {}
        for region in self.regions:
            self._stacks[region] = Stack(
                self, region,
                stack_name=f"{prefix}-{region}",
                env=Environment(account=account, region=region),
                description=f"certfleet: {bundle.primary_name} in {region} (fleet {self.fleet_name})",
                termination_protection=termination_protection,
            )
        primary = self._stacks[self.regions[0]]
        primary_binding = key.bind(
            primary, bundle,
            secret_name=f"certfleet/{self.fleet_name}/{bundle.primary_name}",
            replica_regions=self.regions[1:],
        )
        self._certificates: dict[str, ImportedCertificate] = {}
        for region, stack in self._stacks.items():
            binding = primary_binding if stack is primary else key.bind_replica(stack, primary_binding)
            self._certificates[region] = ImportedCertificate(
                stack, "Certificate",
                bundle=bundle, key=key, key_binding=binding, fleet_name=self.fleet_name,
                removal_policy=removal_policy, delete_timeout=delete_timeout,
            )

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
        stack = Stack.of(scope)
        if Token.is_unresolved(stack.region):
            raise ValueError(
                f"{stack.node.path} is environment-agnostic: give it env=Environment(account=..., region=...) so "
                f"that {self.node.path} can hand it the certificate of its region",
            )
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
        return FleetCertificateReference(stack, id, source=cert)

    def add_expiry_monitoring(
        self,
        *,
        topic: sns.ITopic,
        days: int = 30,
        days_before_expiry_event: int = 45,
        configure_account_expiry_events: bool = True,
    ) -> dict[str, ExpiryMonitoring]:
        """In every fleet region: an alarm at ``days`` days left (or once expired) and ACM's daily expiry events,
        both delivered to ``topic``, wherever it is.

        A topic in another region than a certificate is reached through an EventBridge event bus relay in the
        topic's region (CloudWatch alarm actions and EventBridge SNS targets work only within a region): in the
        topic's own stack, or in the fleet's stack of that region for a topic imported elsewhere.
        ``days_before_expiry_event`` (1-45) sets ``AWS::CertificateManager::Account`` ``DaysBeforeExpiry`` in
        each fleet region; that is one setting per account and region, so if another stack or app already owns it
        pass ``configure_account_expiry_events=False``.
        """
        from certfleet.monitoring import validate_days

        validate_days(self.node.path, days, days_before_expiry_event)
        return {
            region: cert._monitor(topic, days, days_before_expiry_event, configure_account_expiry_events,
                                  self._stacks.get)
            for region, cert in self._certificates.items()
        }

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

