"""One importer and one key writer per stack, whatever the number of certificates (singleton providers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

IMPORTER_ID = "CertfleetImporter"
KEY_WRITER_ID = "CertfleetKeyWriter"
MANAGED_BY_TAG = "certfleet:managed-by"
FLEET_TAG = "certfleet:fleet"
ID_TAG = "certfleet:id"
MANAGED_BY = "certfleet"
_ASSET_EXCLUDES = ["__pycache__", "*.pyc", "*.pyo", ".*"]
LOG_RETENTION = logs.RetentionDays.ONE_YEAR
"""How long the importer's and key writer's logs (handlers, Provider framework, waiter) are kept."""


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``scope`` and its children: the exact rule id, granular part included
    (``AwsSolutions-IAM5[Resource::*]``), with the one-line reason a reviewer reads in the validation report."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def wildcard_finding(scope: IConstruct, resource: str) -> str:
    """The id of cdk-nag's ``AwsSolutions-IAM5`` finding for ``resource`` (an ARN, tokens allowed) in a policy of
    ``scope``'s stack: references flattened as cdk-nag prints them (``<AWS::Partition>``, ``<LogicalId.Arn>``)."""
    return f"AwsSolutions-IAM5[Resource::{nag_reference(Stack.of(scope).resolve(resource))}]"


def nag_reference(value: Any) -> str:
    """A resolved value as cdk-nag prints it in a finding id (its flattenCfnReference): ``${X}`` and ``Ref`` as
    ``<X>``, ``Fn::GetAtt`` as ``<LogicalId.Attr>``, ``Fn::Join`` joined; anything else as JSON."""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Fn::Join":
            delimiter, items = arg
            return str(delimiter).join(nag_reference(item) for item in items)
        if fn in ("Fn::Sub", "Fn::ImportValue"):
            return nag_reference(arg)
        if fn == "Fn::GetAtt":
            return f"<{nag_reference(arg[0])}.{nag_reference(arg[1])}>"
        if fn == "Ref":
            return f"<{nag_reference(arg)}>"
    return json.dumps(value, separators=(",", ":"))


def handler_code_dir() -> Path:
    """The folder with the Lambda handler modules: inside the wheel, or lambda/ in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_lambda", here.parent.parent / "lambda"):
        if (candidate / "certfleet_import.py").is_file():
            return candidate
    raise FileNotFoundError(
        "certfleet's Lambda handler code is missing (looked in certfleet/_lambda and lambda/): reinstall certfleet",
    )


def _log_group(scope: Construct) -> logs.LogGroup:
    return logs.LogGroup(scope, "Logs", retention=LOG_RETENTION)


def _lambda_role(scope: Construct, id: str, log_group: logs.ILogGroup, description: str) -> iam.Role:
    """A Lambda execution role that may write to ``log_group`` only (no AWSLambdaBasicExecutionRole, which lets a
    function create and write any log group of the account)."""
    role = iam.Role(scope, id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=description)
    log_group.grant_write(role)
    return role


def _function(
    scope: Construct, id: str, handler: str, description: str, timeout: Duration, *, log_group: logs.ILogGroup,
) -> lambda_.Function:
    return lambda_.Function(
        scope, id,
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler=handler,
        code=lambda_.Code.from_asset(str(handler_code_dir()), exclude=_ASSET_EXCLUDES),
        timeout=timeout,
        memory_size=256,
        description=description,
        role=_lambda_role(scope, f"{id}Role", log_group, f"certfleet: runs {handler}"),
        log_group=log_group,
    )


def _provider(
    scope: Construct, log_group: logs.ILogGroup, on_event: lambda_.Function,
    is_complete: lambda_.Function | None = None, **options: Any,
) -> cr.Provider:
    """A CDK Provider whose framework functions and waiter log to ``log_group`` through roles certfleet owns."""
    on_event_role = _lambda_role(scope, "FrameworkOnEventRole", log_group, "certfleet: Provider framework onEvent")
    waiter_role = (_lambda_role(scope, "FrameworkWaiterRole", log_group,
                                "certfleet: Provider framework isComplete and onTimeout")
                   if is_complete is not None else None)
    provider = cr.Provider(
        scope, "Provider",
        on_event_handler=on_event,
        is_complete_handler=is_complete,
        framework_on_event_role=on_event_role,
        framework_complete_and_timeout_role=waiter_role,
        log_group=log_group,
        disable_waiter_state_machine_logging=False if is_complete is not None else None,
        waiter_state_machine_log_options=cr.LogOptions(
            destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False,
        ) if is_complete is not None else None,
        **options,
    )
    # The Provider framework grants lambda:InvokeFunction on each handler and its versions (<fn.Arn>:*).
    handlers = [on_event] + ([is_complete] if is_complete is not None else [])
    for role in filter(None, (on_event_role, waiter_role)):
        for handler in handlers:
            acknowledge(role, wildcard_finding(role, f"{handler.function_arn}:*"),
                        "the CDK Provider framework invokes this certfleet handler and its versions (<fn>:*), no other")
    waiter = provider.node.try_find_child("waiter-state-machine")
    if waiter is not None:
        for name in ("framework-isComplete", "framework-onTimeout"):
            fn = provider.node.find_child(name)
            if isinstance(fn, lambda_.Function):
                acknowledge(waiter, wildcard_finding(waiter, f"{fn.function_arn}:*"),
                            "the Provider's waiter invokes its own framework function and its versions (<fn>:*)")
        acknowledge(waiter, "AwsSolutions-IAM5[Resource::*]",
                    "Step Functions log delivery (logs:CreateLogDelivery and friends) has no resource-level permission")
        acknowledge(waiter, "AwsSolutions-SF2",
                    "the CDK Provider's waiter has no X-Ray option; every run is logged (level ALL) instead")
    return provider


_P = TypeVar("_P", bound=Construct)


def _stack_singleton(cls: type[_P], scope: Construct, id: str) -> _P:
    """The construct ``id`` of ``scope``'s stack, created on first use: one per stack."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child(id)
    return existing if isinstance(existing, cls) else cls(stack, id)


class ImporterProvider(Construct):
    """The stack's ACM importer: onEvent + isComplete functions behind a CDK Provider."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.log_group = _log_group(self)
        self.on_event = _function(
            self, "OnEvent", "certfleet_import.on_event",
            "certfleet: imports third-party certificates into ACM (re-imports in place on renewal)",
            Duration.minutes(5), log_group=self.log_group,
        )
        self.is_complete = _function(
            self, "IsComplete", "certfleet_import.is_complete",
            "certfleet: waits for a certificate still in use to be released before deleting it",
            Duration.minutes(2), log_group=self.log_group,
        )
        self.provider = _provider(
            self, self.log_group, self.on_event, self.is_complete,
            query_interval=Duration.seconds(30),
            total_timeout=Duration.minutes(30),
        )
        self._fleets: set[str] = set()
        self._read_statement = iam.PolicyStatement(
            sid="FindCertificatesToAdopt",
            actions=["acm:ListCertificates", "acm:ListTagsForCertificate"],
            resources=["*"],
        )
        for function in (self.on_event, self.is_complete):
            function.add_to_role_policy(self._read_statement)
        for role in self.roles:
            acknowledge(role, "AwsSolutions-IAM5[Resource::*]",
                        "acm:ListCertificates and the first acm:ImportCertificate have no ARN to scope to; the import "
                        "is allowed only with certfleet's own request tags")

    @classmethod
    def of(cls, scope: Construct) -> ImporterProvider:
        """The stack's one importer, created on first use."""
        return _stack_singleton(cls, scope, IMPORTER_ID)

    @property
    def service_token(self) -> str:
        return self.provider.service_token

    @property
    def roles(self) -> list[iam.IRole]:
        return [r for r in (self.on_event.role, self.is_complete.role) if r is not None]

    def allow_fleet(self, fleet: str, *, any_region: bool = False) -> None:
        """Let the importer create certificates tagged for ``fleet`` and touch only those afterwards.

        ``any_region``: also delete (sweep) the fleet's retired certificates in every region of the account.
        """
        if fleet in self._fleets and not any_region:
            return
        first = fleet not in self._fleets
        self._fleets.add(fleet)
        sid = "".join(ch for ch in fleet.title() if ch.isalnum())[:60] or "Fleet"
        own = {"StringEquals": {
            f"aws:ResourceTag/{MANAGED_BY_TAG}": MANAGED_BY,
            f"aws:ResourceTag/{FLEET_TAG}": fleet,
        }}
        if any_region:
            sweep = iam.PolicyStatement(
                sid=f"SweepOnlyOwnRetired{sid}",
                actions=["acm:DeleteCertificate", "acm:DescribeCertificate"],
                resources=[Stack.of(self).format_arn(service="acm", region="*", resource="certificate",
                                                     resource_name="*")],
                conditions=own,
            )
            self.on_event.add_to_role_policy(sweep)
            self.is_complete.add_to_role_policy(sweep)
            self._acknowledge_own(sweep)
        if not first:
            return
        import_new = iam.PolicyStatement(
            sid=f"ImportOnlyTagged{sid}",
            actions=["acm:ImportCertificate", "acm:AddTagsToCertificate"],
            resources=["*"],
            conditions={
                "StringEquals": {
                    f"aws:RequestTag/{MANAGED_BY_TAG}": MANAGED_BY,
                    f"aws:RequestTag/{FLEET_TAG}": fleet,
                },
                "ForAllValues:StringEquals": {"aws:TagKeys": [MANAGED_BY_TAG, FLEET_TAG, ID_TAG]},
            },
        )
        own_only = iam.PolicyStatement(
            sid=f"ReimportRetireDeleteOnlyOwn{sid}",
            actions=[
                "acm:ImportCertificate", "acm:DeleteCertificate", "acm:DescribeCertificate", "acm:GetCertificate",
                "acm:AddTagsToCertificate",
            ],
            resources=[Stack.of(self).format_arn(service="acm", resource="certificate", resource_name="*")],
            conditions=own,
        )
        self.on_event.add_to_role_policy(import_new)
        self.on_event.add_to_role_policy(own_only)
        self.is_complete.add_to_role_policy(own_only)
        self._acknowledge_own(own_only)

    def _acknowledge_own(self, statement: iam.PolicyStatement) -> None:
        for role in self.roles:
            for resource in statement.resources:
                acknowledge(role, wildcard_finding(role, resource),
                            "certificate ARNs are ACM's to choose: the statement is limited to certificates tagged "
                            "with certfleet's managed-by and fleet tags (aws:ResourceTag)")


class KeyWriterProvider(Construct):
    """The stack's sealed-key writer: KMS Decrypt with one encryption context, PutSecretValue."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.log_group = _log_group(self)
        self.function = _function(
            self, "OnEvent", "certfleet_keywriter.on_event",
            "certfleet: decrypts a sealed private key with KMS and writes it to Secrets Manager",
            Duration.minutes(2), log_group=self.log_group,
        )
        self.provider = _provider(self, self.log_group, self.function)

    @classmethod
    def of(cls, scope: Construct) -> KeyWriterProvider:
        """The stack's one key writer, created on first use."""
        return _stack_singleton(cls, scope, KEY_WRITER_ID)

    @property
    def service_token(self) -> str:
        return self.provider.service_token

    @property
    def role(self) -> iam.IRole:
        role = self.function.role
        if role is None:  # a Function always has a role unless one was imported; ours never is
            raise RuntimeError(f"{self.node.path}: the key writer function has no role")
        return role
