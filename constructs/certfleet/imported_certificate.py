"""ImportedCertificate: a third-party certificate imported into ACM in one stack's region, as an ICertificate."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jsii
from aws_cdk import Annotations, CustomResource, Duration, RemovalPolicy, Resource, Stack, Token
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces import aws_certificatemanager as acm_refs
from constructs import Construct

from certfleet.certificate_bundle import ALLOW_EXPIRED_CONTEXT, CertificateBundle
from certfleet.key_source import KeyBinding, KeySource
from certfleet.providers import FLEET_TAG, ID_TAG, MANAGED_BY, MANAGED_BY_TAG, ImporterProvider

if TYPE_CHECKING:  # pragma: no cover
    from certfleet.monitoring import ExpiryMonitoring

_MAX_TAG_VALUE = 256


@jsii.implements(acm.ICertificate)
class CertificateBase(Resource):
    """What every certfleet certificate gives a consumer: its ARN, a reference, the expiry metric of its region."""

    @property
    def certificate_arn(self) -> str:
        raise NotImplementedError

    @property
    def region(self) -> str:
        """The region the certificate lives in (not necessarily the consuming stack's)."""
        raise NotImplementedError

    @property
    def certificate_ref(self) -> acm_refs.CertificateReference:
        return acm_refs.CertificateReference(certificate_arn=self.certificate_arn)

    def metric_days_to_expiry(self, **options: Any) -> cloudwatch.Metric:
        """``AWS/CertificateManager`` ``DaysToExpiry`` (minimum over a day) from the certificate's own region.

        The metric stops at expiry: alarm on it with missing data treated as breaching.
        """
        return days_to_expiry_metric(self.certificate_arn, self.region, options)


class ImportedCertificate(CertificateBase):
    """A certificate that ACM did not issue, imported by a custom resource and re-imported in place on renewal.

    Accepted as it is by ``cloudfront.Distribution``, ``apigateway.DomainName``, ``apigatewayv2.DomainName``,
    ``elbv2`` listeners and every other construct that takes an ``ICertificate``.

    ``tag_id`` (default: the construct path) is the ``certfleet:id`` tag that identifies the certificate in ACM;
    ``group`` names the FleetGroup whose stack holds it (the ACM statements are then granted once for the group,
    and the key reads once for the group's key namespace when ``key_binding`` carries it). FleetGroup sets both:
    its certificates keep their identity when a stack is resharded.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bundle: CertificateBundle,
        key: KeySource,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        fleet_name: str | None = None,
        delete_timeout: Duration | None = None,
        key_binding: KeyBinding | None = None,
        tag_id: str | None = None,
        group: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        if not isinstance(bundle, CertificateBundle):
            raise TypeError(f"{self.node.path}: bundle must be a CertificateBundle (CertificateBundle.from_files(...))")
        if not isinstance(key, KeySource):
            raise TypeError(
                f"{self.node.path}: key must be a KeySource (KeySource.sealed(...) or KeySource.secret(...))",
            )
        if removal_policy not in (RemovalPolicy.DESTROY, RemovalPolicy.RETAIN):
            raise ValueError(
                f"{self.node.path}: removal_policy must be RemovalPolicy.DESTROY or RemovalPolicy.RETAIN "
                "(an ACM certificate has no snapshot)",
            )
        key.check(bundle, self.node.path)
        check_expiry(self, bundle)
        self.bundle = bundle
        self.key_source = key
        stack = Stack.of(self)
        self.fleet_name = fleet_name or _default_fleet(stack)
        binding = key_binding or key.bind(self, bundle)
        self.key_binding = binding
        provider = ImporterProvider.of(self)
        if group:
            provider.allow_group(group)
        else:
            provider.allow_fleet(self.fleet_name)
        if binding.group_namespace:
            provider.allow_key_namespace(binding.group_namespace)
        for role in provider.roles if not binding.group_namespace else ():
            binding.secret.grant_read(role)
            if binding.encryption_key_arn:  # a customer-managed key certfleet does not own (another account's)
                iam.Grant.add_to_principal(
                    grantee=role, actions=["kms:Decrypt"], resource_arns=[binding.encryption_key_arn],
                    conditions={"StringEquals": {
                        "kms:ViaService": f"secretsmanager.{binding.region or stack.region}.amazonaws.com",
                    }},
                )
        timeout = (delete_timeout or Duration.minutes(25)).to_seconds()
        self._resource = CustomResource(
            self, "Resource",
            service_token=provider.service_token,
            resource_type="Custom::CertfleetCertificate",
            properties={
                "Certificate": bundle.certificate_pem,
                "CertificateChain": bundle.chain_pem,
                "Fingerprint": bundle.fingerprint,
                "KeyAlgorithm": bundle.key_algorithm,
                "KeySecretId": binding.id_for_handler,
                "KeySecretVersionId": binding.version_id,
                "Tags": [
                    {"Key": MANAGED_BY_TAG, "Value": MANAGED_BY},
                    {"Key": FLEET_TAG, "Value": self.fleet_name},
                    {"Key": ID_TAG, "Value": _tag_value(tag_id or self.node.path)},
                ],
                "RemovalPolicy": "retain" if removal_policy is RemovalPolicy.RETAIN else "destroy",
                "DeleteTimeoutSeconds": str(int(timeout)),
                **({"Group": group, "Names": list(bundle.names)} if group else {}),
            },
        )
        self._certificate_arn = self._resource.ref
        for finding in bundle.warnings:
            Annotations.of(self).add_warning_v2(f"certfleet:{finding.code}", str(finding))

    @property
    def certificate_arn(self) -> str:
        """The ACM certificate ARN (kept across renewals with the same key type)."""
        return self._certificate_arn

    @property
    def region(self) -> str:
        """The region the certificate lives in: its stack's."""
        return Stack.of(self).region

    @property
    def not_after(self) -> str:
        """NotAfter as ACM reports it after the import (a deploy-time value)."""
        return self._resource.get_att_string("NotAfter")


    def add_expiry_monitoring(
        self,
        *,
        topic: sns.ITopic,
        days: int = 30,
        days_before_expiry_event: int = 45,
        configure_account_expiry_events: bool = True,
    ) -> ExpiryMonitoring:
        """Alarm at ``days`` days left (or once expired) and forward ACM's daily expiry events, to ``topic``.

        ``days_before_expiry_event`` (1-45) sets the account's ``DaysBeforeExpiry`` in this region: one setting
        per account and region, shared with every certificate there; ``configure_account_expiry_events=False``
        leaves it to whoever owns it. A topic in another region is reached through an EventBridge relay in the
        topic's stack (see ``certfleet.monitoring``).
        """
        return self._monitor(topic, days, days_before_expiry_event, configure_account_expiry_events, None)

    def _monitor(
        self, topic: sns.ITopic, days: int, days_before_expiry_event: int, configure_account_expiry_events: bool,
        relay_stacks: Callable[[str], Stack | None] | None,
    ) -> ExpiryMonitoring:
        from certfleet.monitoring import ExpiryMonitoring

        if self.node.try_find_child("ExpiryMonitoring") is not None:
            raise ValueError(
                f"{self.node.path}: expiry monitoring is already on; call add_expiry_monitoring once (subscribe more "
                "endpoints to its topic instead)",
            )
        return ExpiryMonitoring(
            self, "ExpiryMonitoring",
            certificate_arn=self.certificate_arn,
            certificate_name=self.bundle.primary_name,
            metric=self.metric_days_to_expiry(),
            topic=topic,
            days=days,
            days_before_expiry_event=days_before_expiry_event,
            configure_account_expiry_events=configure_account_expiry_events,
            relay_stacks=relay_stacks,
        )


def check_expiry(construct: Construct, bundle: CertificateBundle) -> None:
    """Refuse an expired certificate at synth, unless this deploy names its fingerprint (break-glass).

    A certificate expiring within 30 days is a warning on the construct (``certfleet:expires-soon``); one that
    has expired (read with ``allow_expired=True``) fails the synth unless the context key
    ``certfleet:allowExpiredCertificate`` holds its SHA-256 fingerprint, which makes it a warning.
    """
    if bundle.expired is None:
        return
    allowed = construct.node.try_get_context(ALLOW_EXPIRED_CONTEXT)
    fingerprints = {
        part.strip().replace(":", "").lower() for part in str(allowed or "").split(",") if part.strip()
    }
    when = f"{bundle.not_after:%Y-%m-%d %H:%M} UTC"
    if bundle.fingerprint in fingerprints:
        Annotations.of(construct).add_warning_v2(
            "certfleet:expired-allowed",
            f"the certificate {bundle.primary_name} ({bundle.source}) expired on {when}; deployed anyway because "
            f"{ALLOW_EXPIRED_CONTEXT} names it. ACM refuses to import an expired certificate, so this deploy works "
            "only while the certificate is unchanged (already imported). Renew it now.",
        )
        return
    raise ValueError(
        f"{construct.node.path}: the certificate {bundle.primary_name} ({bundle.source}, sha256 "
        f"{bundle.fingerprint}) expired on {when}; ACM refuses expired certificates and every client will too. "
        "Fix: renew it with the CA and point CertificateBundle.from_files at the new files. Break-glass (ship "
        f"another change while the renewal is on its way): cdk deploy -c {ALLOW_EXPIRED_CONTEXT}={bundle.fingerprint}",
    )


def days_to_expiry_metric(arn: str, region: str, options: dict[str, Any]) -> cloudwatch.Metric:
    """The ``DaysToExpiry`` metric of one certificate, read in the certificate's region."""
    options = dict(options)
    return cloudwatch.Metric(
        namespace="AWS/CertificateManager",
        metric_name="DaysToExpiry",
        dimensions_map={"CertificateArn": arn, **(options.pop("dimensions_map", None) or {})},
        period=options.pop("period", None) or Duration.days(1),
        statistic=options.pop("statistic", None) or "Minimum",
        region=options.pop("region", None) or region,
        **options,
    )


def _default_fleet(stack: Stack) -> str:
    name = stack.stack_name
    return stack.node.path if Token.is_unresolved(name) else name


def _tag_value(path: str) -> str:
    if len(path) <= _MAX_TAG_VALUE:
        return path
    digest = hashlib.sha256(path.encode()).hexdigest()[:16]
    return f"{path[: _MAX_TAG_VALUE - 17]}#{digest}"
