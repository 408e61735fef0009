"""The constructs of an ACME source (``CertificateSource.acme``, checked in ``certfleet.acme_order``): ``AcmeIssuer``
orders the certificate at the first deploy into the fleet's material secret and schedules the renewer, which renews it
when due with no deploy; ``AcmeHandlers`` holds the stack's issuer and renewer functions (README: "ACME source")."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct

from certfleet._lambda.certfleet_contract import (
    ACME_CERTIFICATE_TYPE,
    ACME_ISSUER_IS_COMPLETE,
    ACME_ISSUER_ON_EVENT,
    ACME_RENEWER,
    ACME_SOURCE,
    FLEET_TAG,
    ID_TAG,
    MANAGED_BY,
    MANAGED_BY_TAG,
    SOURCE_TAG,
    AcmeRenewInput,
)
from certfleet.acme_asset import LAMBDA_PYTHON, LAMBDA_RUNTIME, acme_code
from certfleet.acme_order import AcmeOrder, FleetTarget, challenge_record_name
from certfleet.gates import acknowledge, skip_checkov, wildcard_finding
from certfleet.key_source import retained_secret
from certfleet.monitoring import RenewalMonitoring
from certfleet.providers import (
    framework_provider,
    function_log_group,
    handler_function,
    minutes,
    seconds,
    stack_singleton,
    statement_id,
)

__all__ = ["ACME_HANDLERS_ID", "AcmeHandlers", "AcmeIssuer", "fleet_statement_id"]

ACME_HANDLERS_ID = "CertfleetAcme"
"""The stack's ACME issuer and renewer functions (one per stack, whatever the number of ACME fleets)."""
PLACEHOLDER = "certfleet: the ACME issuer replaces this value with the certificate, chain and key at deploy time"
ACCOUNT_PLACEHOLDER = "certfleet: the ACME issuer stores the ACME account key here when it registers"
RENEWAL_SCHEDULE = "rate(1 day)"
RENEWAL_RETRY_ATTEMPTS = 10
"""EventBridge Scheduler's delivery retries of one daily run (within RENEWAL_EVENT_AGE_SECONDS)."""
RENEWAL_EVENT_AGE_SECONDS = 6 * 3600
RENEWER_ASYNC_RETRIES = 2
"""Lambda's own retries of a failed run (Scheduler invokes asynchronously); the next day's run retries again."""
ROUTE53_NAMES = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
ROUTE53_TYPES = "route53:ChangeResourceRecordSetsRecordTypes"
ROUTE53_ACTIONS = "route53:ChangeResourceRecordSetsActions"
ISSUER_ENVIRONMENT = {"CERTFLEET_LAMBDA_MARGIN_SECONDS": "15"}
RENEWER_ENVIRONMENT = {"CERTFLEET_LAMBDA_MARGIN_SECONDS": "30", "CERTFLEET_INSYNC_POLL_SECONDS": "5"}


def fleet_statement_id(fleet_name: str) -> str:
    """The part of a statement id naming one fleet: its letters and digits (50 at most) and 8 hex characters of its
    name's hash, so that fleets whose names differ only in punctuation (``www-a``, ``www_a``) or past the 50th
    character never give a role two statements of one Sid (IAM refuses such a policy)."""
    digest = hashlib.sha256(fleet_name.encode()).hexdigest()[:8]
    return statement_id(fleet_name, 50, "Fleet") + digest


class AcmeHandlers(Construct):
    """The stack's ACME functions: the issuer (onEvent + isComplete behind a Provider) and the scheduled renewer,
    with the role EventBridge Scheduler invokes the renewer with. Each ACME fleet of the stack adds its grants."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.log_group = function_log_group(self)
        code = acme_code()  # one Code per stack (a Code binds to one stack); the asset is built once

        def make(id: str, handler: str, description: str, timeout: Duration,
                 environment: dict[str, str]) -> tuple[lambda_.Function, iam.Role]:
            return handler_function(self, id, handler, description, timeout, log_group=self.log_group, code=code,
                                    runtime=LAMBDA_RUNTIME, memory_size=512, environment=dict(environment))

        self.on_event, self.on_event_role = make(
            "IssuerOnEvent", ACME_ISSUER_ON_EVENT,
            "certfleet: orders a certificate over ACME and publishes its dns-01 records",
            minutes(2), ISSUER_ENVIRONMENT,
        )
        self.is_complete, self.is_complete_role = make(
            "IssuerIsComplete", ACME_ISSUER_IS_COMPLETE,
            "certfleet: waits for the ACME order's validation and stores the certificate, chain and a fresh key",
            minutes(3), ISSUER_ENVIRONMENT,
        )
        self.provider = framework_provider(self, self.log_group, self.on_event, self.is_complete,
                                           query_interval=seconds(15), total_timeout=minutes(45))
        self.renewer, self.renewer_role = make(
            "Renewer", ACME_RENEWER,
            "certfleet: renews ACME certificates when due and re-imports them into the same ARNs in every region",
            minutes(15), RENEWER_ENVIRONMENT,
        )
        self.renewer.configure_async_invoke(retry_attempts=RENEWER_ASYNC_RETRIES)
        for function in (self.on_event, self.is_complete, self.renewer):
            acknowledge(function, "AwsSolutions-L1",
                        f"the ACME asset's wheels (cryptography's Rust core) are built for Python "
                        f"{LAMBDA_PYTHON}: the runtime moves with the pinned wheels")
        skip_checkov(self.renewer, "CKV_AWS_173", "the renewer's environment holds two timing settings, no secret")
        for function in (self.on_event, self.is_complete):
            skip_checkov(function, "CKV_AWS_173", "the issuer's environment holds a timing setting, no secret")
        self.scheduler_role = iam.Role(
            self, "SchedulerRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com", conditions={
                "StringEquals": {"aws:SourceAccount": stack.account}}),
            description="certfleet: EventBridge Scheduler invokes the ACME renewer with this role",
        )
        self.scheduler_role.add_to_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[self.renewer.function_arn]))
        self._service_token = ""
        self._stack = stack
        self._acknowledged: set[str] = set()

    @classmethod
    def of(cls, scope: Construct) -> AcmeHandlers:
        """The stack's ACME functions, created on first use."""
        return stack_singleton(cls, scope, ACME_HANDLERS_ID)

    @property
    def service_token(self) -> str:
        if not self._service_token:
            self._service_token = self.provider.service_token
        return self._service_token

    def allow(self, issuer: AcmeIssuer, order: AcmeOrder, target: FleetTarget) -> None:
        """Grant the issuer's and the renewer's roles what they call for one fleet, and nothing beyond it."""
        material, account = issuer.secret.secret_arn, issuer.account_secret.secret_arn
        sid = fleet_statement_id(target.fleet_name)
        # each reads both (the material, the account's key); onEvent registers the account, isComplete and the
        # renewer store the material
        writes = ((self.on_event_role, account), (self.is_complete_role, material), (self.renewer_role, material))
        for role, written in writes:
            role.add_to_policy(iam.PolicyStatement(
                sid=f"AcmeReadSecretsOf{sid}", actions=["secretsmanager:GetSecretValue"],
                resources=[material, account]))
            role.add_to_policy(iam.PolicyStatement(
                sid=f"AcmeWriteSecretOf{sid}", actions=["secretsmanager:PutSecretValue"], resources=[written]))
        via = {"StringEquals": {"kms:ViaService": f"secretsmanager.{self._stack.region}.amazonaws.com"}}
        for role in (self.on_event_role, self.is_complete_role, self.renewer_role):
            role.add_to_policy(iam.PolicyStatement(
                sid=f"AcmeKeyOf{sid}", actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[issuer.encryption_key.key_arn], conditions=via))
            self._route53(role, order, sid, follow=role is not self.on_event_role)
        hmac = order.account.eab_hmac_secret
        if hmac is not None:  # read when registering: onEvent only
            # a secret imported by name has no full ARN: Secrets Manager appends six random characters to it
            eab = hmac.secret_full_arn or f"{hmac.secret_arn}-??????"
            self.on_event_role.add_to_policy(iam.PolicyStatement(
                sid=f"AcmeEabOf{sid}", actions=["secretsmanager:GetSecretValue"], resources=[eab]))
            if not hmac.secret_full_arn:
                self._acknowledge(self.on_event_role, eab, "-?????? is the random suffix Secrets Manager adds to a "
                                                           "secret's ARN: that one secret")
            if hmac.encryption_key is not None:
                self.on_event_role.add_to_policy(iam.PolicyStatement(
                    sid=f"AcmeEabKeyOf{sid}", actions=["kms:Decrypt"],
                    resources=[hmac.encryption_key.key_arn], conditions=via))
        self._acm(target, sid)

    def _route53(self, role: iam.Role, order: AcmeOrder, sid: str, *, follow: bool) -> None:
        """Change only the TXT ``_acme-challenge`` records of the source's domains (UPSERT, DELETE) and read the
        zones' record sets (publishing UPSERTs the union with the current TXT set, so that two orders for one name
        keep each other's tokens; withdrawing removes only its own); with ``follow`` (isComplete, the renewer), also
        follow the changes to INSYNC. onEvent only publishes (and deletes what a failed publish left)."""
        for index, zone in enumerate(order.zones):
            names = sorted({challenge_record_name(d) for d in zone.domains})
            role.add_to_policy(iam.PolicyStatement(
                sid=f"AcmeChallengeRecords{index}Of{sid}"[:100],
                actions=["route53:ChangeResourceRecordSets"], resources=[zone.zone.hosted_zone_arn],
                conditions={
                    "ForAllValues:StringEquals": {ROUTE53_TYPES: ["TXT"], ROUTE53_ACTIONS: ["UPSERT", "DELETE"]},
                    "ForAllValues:StringLike": {ROUTE53_NAMES: names},
                    "Null": {ROUTE53_TYPES: "false", ROUTE53_ACTIONS: "false", ROUTE53_NAMES: "false"},
                }))
            role.add_to_policy(iam.PolicyStatement(
                sid=f"AcmeReadZone{index}Of{sid}"[:100],
                actions=["route53:ListResourceRecordSets"], resources=[zone.zone.hosted_zone_arn]))
        if not follow:
            return
        changes = self._stack.format_arn(service="route53", region="", account="", resource="change",
                                         resource_name="*")
        role.add_to_policy(iam.PolicyStatement(sid="AcmeFollowChanges", actions=["route53:GetChange"],
                                               resources=[changes]))
        self._acknowledge(role, changes, "Route 53 change ids are made per request: GetChange cannot name them")

    def _acm(self, target: FleetTarget, sid: str) -> None:
        """The renewer finds the fleet's certificate in each region by its tags and re-imports into it; only a
        certificate tagged as this fleet's, this id's, certfleet's and an ACME source's (as the renewer filters)."""
        role = self.renewer_role
        role.add_to_policy(iam.PolicyStatement(sid="AcmListCertificates", actions=["acm:ListCertificates"],
                                               resources=["*"]))
        self._acknowledge(role, "*", "acm:ListCertificates has no resource-level permission")
        certificates = [self._stack.format_arn(service="acm", region=r, resource="certificate", resource_name="*")
                        for r in target.regions]
        role.add_to_policy(iam.PolicyStatement(sid=f"AcmReadTagsOf{sid}", actions=["acm:ListTagsForCertificate"],
                                               resources=certificates))
        role.add_to_policy(iam.PolicyStatement(
            sid=f"AcmReimportOnlyOwn{sid}", actions=["acm:ImportCertificate"], resources=certificates,
            conditions={"StringEquals": {
                f"aws:ResourceTag/{MANAGED_BY_TAG}": MANAGED_BY,
                f"aws:ResourceTag/{FLEET_TAG}": target.fleet_name,
                f"aws:ResourceTag/{ID_TAG}": target.certificate_id,
                f"aws:ResourceTag/{SOURCE_TAG}": ACME_SOURCE,
            }}))
        for arn in certificates:
            self._acknowledge(role, arn, "ACM chooses certificate ARNs: re-imports need the fleet's tags "
                                         "(aws:ResourceTag); tag reads are how the renewer finds them")

    def _acknowledge(self, role: iam.Role, resource: str, reason: str) -> None:
        key = f"{role.node.path}|{resource}"
        if key not in self._acknowledged:
            self._acknowledged.add(key)
            acknowledge(role, wildcard_finding(role, resource), reason)

    def errors_metric(self) -> cloudwatch.Metric:
        """The renewer's failed runs (Lambda ``Errors``, summed over a day)."""
        return self.renewer.metric_errors(period=Duration.days(1), statistic="Sum")


class AcmeIssuer(Construct):
    """The primary stack's part of an ACME fleet: a customer-managed KMS key, the material secret (retained,
    replicated to the fleet's other regions), the ACME account secret, the ``Custom::CertfleetAcmeCertificate``
    that orders at the first deploy (its ``VersionId`` pins the material every region imports) and the daily
    schedule of the renewer."""

    def __init__(
        self, scope: Construct, id: str, *, order: AcmeOrder, secret_name: str, replica_regions: tuple[str, ...],
        target: FleetTarget,
    ) -> None:
        super().__init__(scope, id)
        self.order = order
        self.secret_name = secret_name
        self.target = target
        name = order.domains[0]
        self.encryption_key = kms.Key(
            self, "MaterialKey",
            description=f"certfleet: encrypts the ACME certificate, key and account of {name} in Secrets Manager",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.secret = retained_secret(
            self, "Material", self.encryption_key, secret_name=secret_name, placeholder=PLACEHOLDER,
            description=f"certfleet: certificate, chain and private key of {name} (written by the ACME issuer and "
                        "renewer)",
            replica_regions=replica_regions,
            no_rotation="the ACME renewer writes a new certificate and key when the CA's renewal window opens; a "
                        "Secrets Manager rotation schedule would only race it",
        )
        self.account_secret = retained_secret(  # retained: with EAB, a new account may need a new binding from the CA
            self, "Account", self.encryption_key, placeholder=ACCOUNT_PLACEHOLDER,
            description=f"certfleet: the ACME account key that orders {name} (written by the ACME issuer)",
            no_rotation="an ACME account key is registered once at the CA; rotating it would need the CA's key change",
        )
        self.handlers = AcmeHandlers.of(self)
        self.handlers.allow(self, order, target)
        self.properties = order.issuer_properties(material_secret=self.secret.secret_arn,
                                                  account_secret=self.account_secret.secret_arn,
                                                  fleet_name=target.fleet_name)
        self.resource = CustomResource(
            self, "Resource",
            service_token=self.handlers.service_token,
            resource_type=ACME_CERTIFICATE_TYPE,
            properties=dict(self.properties),
        )
        renew_input = AcmeRenewInput(**self.properties, Regions=list(target.regions),
                                     CertificateId=target.certificate_id)
        self.renew_input = renew_input
        self.schedule = scheduler.CfnSchedule(
            self, "Renewal",
            description=f"certfleet: renews {name} over ACME when due and re-imports it in every fleet region",
            schedule_expression=RENEWAL_SCHEDULE,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.handlers.renewer.function_arn,
                role_arn=self.handlers.scheduler_role.role_arn,
                input=Stack.of(self).to_json_string(dict(renew_input)),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=RENEWAL_RETRY_ATTEMPTS,
                    maximum_event_age_in_seconds=RENEWAL_EVENT_AGE_SECONDS,
                ),
            ),
        )
        self.schedule.node.add_dependency(self.resource)  # renew only what the first deploy issued

    @classmethod
    def of(cls, stack: Stack, order: AcmeOrder, *, secret_name: str, replica_regions: tuple[str, ...],
           target: FleetTarget) -> AcmeIssuer:
        """The issuer of ``order`` in ``stack`` for the material secret ``secret_name`` (created on first use)."""
        id = "CertfleetAcme" + hashlib.sha256(secret_name.encode()).hexdigest()[:8]
        existing = stack.node.try_find_child(id)
        if isinstance(existing, AcmeIssuer):
            if existing.order is not order:
                raise ValueError(f"{stack.node.path}: two ACME sources would share the material secret "
                                 f"{secret_name}: give each fleet its own id")
            return existing
        return cls(stack, id, order=order, secret_name=secret_name, replica_regions=replica_regions,
                   target=target)

    @property
    def version_id(self) -> str:
        """The material version the first deploy (or a deploy that changed the order) stored: what importers pin."""
        return self.resource.get_att_string("VersionId")

    @property
    def renewer(self) -> lambda_.Function:
        """The stack's renewer function (shared by the stack's ACME fleets)."""
        return self.handlers.renewer

    def monitor_renewals(self, topic: sns.ITopic, relay_stacks: Callable[[str], Stack | None] | None = None) -> None:
        """Alarm ``topic`` when the stack's renewer fails (once per stack: its renewer serves every ACME fleet there).

        Args:
            topic: the fleet's expiry topic, in the stack's account.
            relay_stacks: a stack of the app in a given region, for the relay to a topic of another region.
        """
        if self.handlers.node.try_find_child("RenewalMonitoring") is None:
            RenewalMonitoring(self.handlers, "RenewalMonitoring", alarm=self.renewal_alarm(), topic=topic,
                              relay_stacks=relay_stacks)

    def renewal_alarm(self) -> cloudwatch.Alarm:
        """An alarm when the stack's renewer fails in a day (one per stack; notifications are added by the caller)."""
        handlers = self.handlers
        existing = handlers.node.try_find_child("RenewerErrors")
        if isinstance(existing, cloudwatch.Alarm):
            return existing
        return cloudwatch.Alarm(
            handlers, "RenewerErrors",
            metric=handlers.errors_metric(),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=(
                f"certfleet: the ACME renewer in {Stack.of(self).region} failed at least once in a day (CA, DNS or "
                "import): the certificates keep serving; read the renewer's log group and fix the cause before "
                "they expire (the renewer retries daily)"
            ),
        )

