"""ImportedCertificate: a third-party certificate imported into ACM in one stack's region, as an ICertificate."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import jsii
from aws_cdk import CustomResource, Duration, RemovalPolicy, Resource, Stack, Token
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces import aws_certificatemanager as acm_refs
from constructs import Construct

from certfleet._lambda.certfleet_contract import (
    CERTIFICATE_TYPE,
    FLEET_TAG,
    ID_TAG,
    MANAGED_BY,
    MANAGED_BY_TAG,
    CertificateProperties,
    Tag,
)
from certfleet.acme import AcmeIssuer
from certfleet.acme_order import FleetTarget
from certfleet.certificate_bundle import CertificateBundle
from certfleet.key_source import KeyBinding, KeySource, secret_resource_arn
from certfleet.providers import ImporterProvider
from certfleet.source import CertificateSource, ImportedSource

if TYPE_CHECKING:  # pragma: no cover
    from certfleet.monitoring import ExpiryMonitoring

_MAX_TAG_VALUE = 256
DEFAULT_DELETE_TIMEOUT_SECONDS = 25 * 60
_IMPORTERS: WeakKeyDictionary[Stack, tuple[ImporterProvider, str]] = WeakKeyDictionary()
"""Each stack's importer and its service token, looked up once per stack rather than once per certificate."""


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
        """A reference to the certificate (its ARN), as aws-cdk-lib's own certificates give."""
        return acm_refs.CertificateReference(certificate_arn=self.certificate_arn)

    def metric_days_to_expiry(self, **options: Any) -> cloudwatch.Metric:
        """``AWS/CertificateManager`` ``DaysToExpiry`` (minimum over a day) from the certificate's own region.

        The metric stops at expiry: alarm on it with missing data treated as breaching.
        """
        return days_to_expiry_metric(self.certificate_arn, self.region, options)


class ImportedCertificate(CertificateBase):
    """A certificate ACM did not issue, imported by a custom resource and re-imported in place on renewal; an
    ``ICertificate`` that ``cloudfront.Distribution``, ``elbv2`` listeners and the rest take as it is.

    Args:
        scope: a construct of a stack with a concrete region.
        id: the construct id.
        bundle: the certificate, chain and names; short for ``source=CertificateSource.imported(bundle, key)``.
            Default: None, ``source`` is given.
        key: where the private key comes from (with ``bundle``). Default: None, ``source`` is given.
        source: where the certificate comes from. Default: ``CertificateSource.imported(bundle, key)``.
        removal_policy: DESTROY deletes the ACM certificate with the stack, RETAIN keeps it. Default: DESTROY.
        fleet_name: the ``certfleet:fleet`` tag that scopes the importer's IAM. Default: the stack's name.
        delete_timeout: how long a delete waits for consumers to let go of the certificate. Default: 25 minutes.
        key_binding: where the importer reads the key. Default: the key bound in this stack.
        tag_id: the ``certfleet:id`` tag that identifies the certificate in ACM. Default: the construct path.
        group: the FleetGroup whose fleets the importer may touch at once (and whose key namespace
            ``key_binding`` carries). Default: None, this fleet alone.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bundle: CertificateBundle | None = None,
        key: KeySource | None = None,
        source: CertificateSource | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        fleet_name: str | None = None,
        delete_timeout: Duration | None = None,
        key_binding: KeyBinding | None = None,
        tag_id: str | None = None,
        group: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        if source is None:
            if not isinstance(bundle, CertificateBundle):
                raise TypeError(
                    f"{self.node.path}: bundle must be a CertificateBundle (CertificateBundle.from_files(...))",
                )
            if not isinstance(key, KeySource):
                raise TypeError(
                    f"{self.node.path}: key must be a KeySource (KeySource.sealed(...) or KeySource.secret(...))",
                )
            source = CertificateSource.imported(bundle, key)
        elif bundle is not None or key is not None:
            raise ValueError(f"{self.node.path}: give source= or bundle= and key=, not both")
        if removal_policy not in (RemovalPolicy.DESTROY, RemovalPolicy.RETAIN):
            raise ValueError(
                f"{self.node.path}: removal_policy must be RemovalPolicy.DESTROY or RemovalPolicy.RETAIN "
                "(an ACM certificate has no snapshot)",
            )
        source.check(self)
        self.source = source
        stack = scope if isinstance(scope, Stack) else Stack.of(self)
        self.fleet_name = fleet_name or _default_fleet(stack)
        tag = tag_value(tag_id or self.node.path)
        binding = key_binding or source.bind_key(
            self, target=FleetTarget(self.fleet_name, (stack.region,), tag) if source.fleet_wide_id else None)
        self.key_binding = binding
        provider, service_token = _importer(stack)
        if group:
            provider.allow_group(group)
        else:
            provider.allow_fleet(self.fleet_name)
        if binding.key_namespace:
            provider.allow_key_namespace(binding.key_namespace)
        for role in provider.roles if not binding.key_namespace else ():
            iam.Grant.add_to_principal(  # GetSecretValue only: the importer never describes the secret
                grantee=role, actions=["secretsmanager:GetSecretValue"],
                resource_arns=[secret_resource_arn(stack, binding.id_for_handler, binding.region or stack.region)],
            )
            if binding.secret.encryption_key is not None:  # the primary's own key: decrypt through Secrets Manager
                binding.secret.encryption_key.grant_decrypt(kms.ViaServicePrincipal(
                    f"secretsmanager.{stack.region}.amazonaws.com", role.grant_principal))
            if binding.encryption_key_arn:  # a customer-managed key certfleet does not own (another account's)
                iam.Grant.add_to_principal(
                    grantee=role, actions=["kms:Decrypt"], resource_arns=[binding.encryption_key_arn],
                    conditions={"StringEquals": {
                        "kms:ViaService": f"secretsmanager.{binding.region or stack.region}.amazonaws.com",
                    }},
                )
        timeout = delete_timeout.to_seconds() if delete_timeout is not None else DEFAULT_DELETE_TIMEOUT_SECONDS
        properties: CertificateProperties = source.resource_properties(binding)
        properties["Tags"] = [
            Tag(Key=MANAGED_BY_TAG, Value=MANAGED_BY),
            Tag(Key=FLEET_TAG, Value=self.fleet_name),
            Tag(Key=ID_TAG, Value=tag),
            *source.tags,
        ]
        properties["RemovalPolicy"] = "retain" if removal_policy is RemovalPolicy.RETAIN else "destroy"
        properties["DeleteTimeoutSeconds"] = str(int(timeout))
        if group:
            properties["Group"] = group
            properties["Names"] = list(source.names)
        self._resource = CustomResource(
            self, "Resource", service_token=service_token, resource_type=CERTIFICATE_TYPE, properties=properties,
        )
        self._certificate_arn = self._resource.ref
        source.warn(self)

    @property
    def bundle(self) -> CertificateBundle:
        """The certificate's bundle (a certificate of ``CertificateSource.imported``)."""
        if not isinstance(self.source, ImportedSource):
            raise ValueError(_not_imported(self.node.path, "bundle"))
        return self.source.bundle

    @property
    def key_source(self) -> KeySource:
        """Where the private key comes from (a certificate of ``CertificateSource.imported``)."""
        if not isinstance(self.source, ImportedSource):
            raise ValueError(_not_imported(self.node.path, "key_source"))
        return self.source.key

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
        relay_stacks: Callable[[str], Stack | None] | None = None,
    ) -> ExpiryMonitoring:
        """Alarm at ``days`` days left (or once expired) and forward ACM's daily expiry events, to ``topic``; for an
        ACME source ordered in this stack, also alarm when its renewer fails.

        Args:
            topic: where alarms and expiry events go, in any region of the certificate's account.
            days: the alarm's threshold in days left. Default: 30.
            days_before_expiry_event: the account's ``DaysBeforeExpiry`` in this region (1-45). Default: 45.
            configure_account_expiry_events: declare that account setting here. Default: True.
            relay_stacks: the stack to host an EventBridge relay in a region, for a topic imported from elsewhere.
                Default: the topic's own stack.
        """
        from certfleet.monitoring import ExpiryMonitoring

        if self.node.try_find_child("ExpiryMonitoring") is not None:
            raise ValueError(
                f"{self.node.path}: expiry monitoring is already on; call add_expiry_monitoring once (subscribe more "
                "endpoints to its topic instead)",
            )
        store = self.key_binding.store
        if isinstance(store, AcmeIssuer) and Stack.of(store) is Stack.of(self):  # its renewer's failures too
            store.monitor_renewals(topic, relay_stacks)
        return ExpiryMonitoring(
            self, "ExpiryMonitoring",
            certificate_arn=self.certificate_arn,
            certificate_name=self.source.primary_name,
            metric=self.metric_days_to_expiry(),
            topic=topic,
            days=days,
            days_before_expiry_event=days_before_expiry_event,
            configure_account_expiry_events=configure_account_expiry_events,
            relay_stacks=relay_stacks,
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


def _not_imported(path: str, what: str) -> str:
    return (f"{path}: {what} is for certificates of CertificateSource.imported (files and a key you hold); this one's "
            "source orders and renews it at deploy and run time (CertificateSource.acme), so there is no bundle or "
            "key source at synth: read source.names / source.key_type instead")


def _importer(stack: Stack) -> tuple[ImporterProvider, str]:
    found = _IMPORTERS.get(stack)
    if found is None:
        provider = ImporterProvider.of(stack)
        found = _IMPORTERS[stack] = (provider, provider.service_token)
    return found


def _default_fleet(stack: Stack) -> str:
    name = stack.stack_name
    return stack.node.path if Token.is_unresolved(name) else name


def tag_value(path: str) -> str:
    if len(path) <= _MAX_TAG_VALUE:
        return path
    digest = hashlib.sha256(path.encode()).hexdigest()[:16]
    return f"{path[: _MAX_TAG_VALUE - 17]}#{digest}"
