"""One importer and one key writer per stack, whatever the number of certificates (singleton providers)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from aws_cdk import ArnFormat, CfnResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from certfleet._lambda.certfleet_contract import (
    FLEET_TAG,
    ID_TAG,
    IMPORTER_IS_COMPLETE,
    IMPORTER_ON_EVENT,
    KEY_WRITER_ON_EVENT,
    MANAGED_BY,
    MANAGED_BY_TAG,
    OWNER_TAG,
    RETIRED_TAG,
    SOURCE_TAG,
)
from certfleet.gates import acknowledge, skip_checkov, wildcard_finding

IMPORTER_ID = "CertfleetImporter"
KEY_WRITER_ID = "CertfleetKeyWriter"
IMPORT_TAGS = [MANAGED_BY_TAG, FLEET_TAG, ID_TAG, SOURCE_TAG]
"""The tags the importer puts on a certificate it imports, and the only ones it may put on one."""
MARK_TAGS = [OWNER_TAG, RETIRED_TAG]
"""The tags the importer adds to its own fleet's certificates afterwards (_take_over, _retire)."""
UNMARK_TAGS = [RETIRED_TAG]
"""The tags the importer removes from its own fleet's certificates (an adopted certificate is no longer retired)."""
OWN_CERTIFICATE_ACTIONS = ["acm:ImportCertificate", "acm:DeleteCertificate", "acm:DescribeCertificate",
                           "acm:GetCertificate"]
"""What the importer may do to a certificate tagged as its fleet's, besides marking it (MARK_TAGS, UNMARK_TAGS)."""
WAITER_ACTIONS = ["acm:DeleteCertificate", "acm:DescribeCertificate"]
"""What the delete waiter (isComplete) calls on its fleet's certificate: delete again, describe its users at the end."""
_ASSET_EXCLUDES = ["__pycache__", "*.pyc", "*.pyo", ".*", "__init__.py"]
_PYTHON = lambda_.Runtime.PYTHON_3_14
LOG_RETENTION = logs.RetentionDays.ONE_YEAR
"""How long the importer's and key writer's logs (handlers, Provider framework, waiter) are kept."""


def handler_code_dir() -> Path:
    """The folder with the Lambda handler modules (the asset): the package's own ``_lambda``."""
    here = Path(__file__).resolve().parent / "_lambda"
    if (here / "certfleet_import.py").is_file():
        return here
    raise FileNotFoundError(f"certfleet's Lambda handler code is missing from {here}: reinstall certfleet")


NO_RESERVED_CONCURRENCY = (
    "no reserved concurrency: Lambda refuses a reservation that leaves under 100 unreserved (new accounts have 10), "
    "and ACM's 1 import/s is per account and region, not per function"
)
NO_DEAD_LETTER_QUEUE = (
    "a custom-resource handler: a failure is reported to CloudFormation, which fails or rolls back the deploy; "
    "a dead-letter queue would hold events nobody replays"
)
NO_VPC = "calls only AWS APIs (ACM, Secrets Manager, KMS, Lambda, Step Functions): no VPC, NAT gateway or endpoint"
PLAIN_ENVIRONMENT = (
    "the CDK Provider framework's environment holds only function and state machine ARNs, no secret; Lambda "
    "encrypts it at rest"
)
LOGS_WITHOUT_CMK = (
    "log lines carry no key material (leak-scanned in tests); no customer key is opened to CloudWatch Logs for them"
)
_FUNCTION_SKIPS = {"CKV_AWS_115": NO_RESERVED_CONCURRENCY, "CKV_AWS_116": NO_DEAD_LETTER_QUEUE, "CKV_AWS_117": NO_VPC}


def function_log_group(scope: Construct) -> logs.LogGroup:
    group = logs.LogGroup(scope, "Logs", retention=LOG_RETENTION)
    skip_checkov(group, "CKV_AWS_158", LOGS_WITHOUT_CMK)
    return group


@cache
def lambda_principal() -> iam.ServicePrincipal:
    """Lambda's service principal, made once (a principal holds no state; each role gets its assume-role policy)."""
    return iam.ServicePrincipal("lambda.amazonaws.com")


minutes, seconds = cache(Duration.minutes), cache(Duration.seconds)
"""Durations made once per value (immutable): each ``Duration.minutes(...)`` is a jsii round trip."""


def lambda_role(scope: Construct, id: str, log_group: logs.ILogGroup, description: str) -> iam.Role:
    """A Lambda execution role that may write to ``log_group`` only (no AWSLambdaBasicExecutionRole, which lets a
    function create and write any log group of the account)."""
    role = iam.Role(scope, id, assumed_by=lambda_principal(), description=description)
    log_group.grant_write(role)
    return role


def skip_function_checks(function: lambda_.Function, *, framework: bool = False) -> None:
    resource = function.node.default_child  # looked up once, not by skip_checkov for every check
    target = resource if isinstance(resource, CfnResource) else function
    for check, comment in _FUNCTION_SKIPS.items():
        skip_checkov(target, check, comment)
    if framework:
        skip_checkov(target, "CKV_AWS_173", PLAIN_ENVIRONMENT)


def handler_function(
    scope: Construct, id: str, handler: str, description: str, timeout: Duration, *, log_group: logs.ILogGroup,
    code: lambda_.Code | None = None, runtime: lambda_.Runtime | None = None, memory_size: int = 256,
    environment: dict[str, str] | None = None,
) -> tuple[lambda_.Function, iam.Role]:
    """A handler function (code, runtime: the importer's by default) and its role, kept (a jsii round trip)."""
    role = lambda_role(scope, f"{id}Role", log_group, f"certfleet: runs {handler}")
    function = lambda_.Function(
        scope, id, runtime=runtime or _PYTHON, handler=handler, timeout=timeout, memory_size=memory_size,
        description=description, role=role, log_group=log_group, environment=environment,
        code=code or lambda_.Code.from_asset(str(handler_code_dir()), exclude=_ASSET_EXCLUDES),
    )
    skip_function_checks(function)
    return function, role


def allow_invoke(role: iam.Role, function: lambda_.IFunction) -> None:
    """What the Provider framework calls on a certfleet handler: Invoke on its unqualified ARN, and GetFunction
    while it waits for a new function to become active (outbound.js waitUntilFunctionActiveV2)."""
    role.add_to_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction", "lambda:GetFunction"],
                                           resources=[function.function_arn]))


def framework_provider(
    scope: Construct, log_group: logs.ILogGroup, on_event: lambda_.Function,
    is_complete: lambda_.Function | None = None, **options: Any,
) -> cr.Provider:
    """A CDK Provider whose framework functions and waiter log to ``log_group`` through roles certfleet owns.

    The Provider grants every framework role the invoke of every handler, and of their versions (``<fn>:*``): the
    roles are handed to it closed to policy updates, and get only what each framework function calls (onEvent:
    the onEvent handler and the waiter's StartExecution; isComplete/onTimeout: the isComplete handler)."""
    on_event_role = lambda_role(scope, "FrameworkOnEventRole", log_group, "certfleet: Provider framework onEvent")
    waiter_role = (lambda_role(scope, "FrameworkWaiterRole", log_group,
                                "certfleet: Provider framework isComplete and onTimeout")
                   if is_complete is not None else None)
    provider = cr.Provider(
        scope, "Provider",
        on_event_handler=on_event,
        is_complete_handler=is_complete,
        framework_on_event_role=on_event_role.without_policy_updates(),
        framework_complete_and_timeout_role=waiter_role.without_policy_updates() if waiter_role else None,
        log_group=log_group,
        disable_waiter_state_machine_logging=False if is_complete is not None else None,
        waiter_state_machine_log_options=cr.LogOptions(
            destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False,
        ) if is_complete is not None else None,
        **options,
    )
    allow_invoke(on_event_role, on_event)
    node = provider.node  # each ``.node`` is a jsii round trip
    framework = [node.find_child("framework-onEvent")]
    if is_complete is not None and waiter_role is not None:
        allow_invoke(waiter_role, is_complete)
        waiting = [node.find_child(n) for n in ("framework-isComplete", "framework-onTimeout")]
        framework += waiting
        waiter = node.find_child("waiter-state-machine")
        waiter_node = waiter.node
        state_machine = waiter_node.default_child
        if isinstance(state_machine, CfnResource):
            on_event_role.add_to_policy(iam.PolicyStatement(
                actions=["states:StartExecution"], resources=[state_machine.ref]))
        for fn in waiting:
            if isinstance(fn, lambda_.Function):
                acknowledge(waiter, wildcard_finding(waiter, f"{fn.function_arn}:*"),
                            "the Provider's waiter invokes its own framework function and its versions (<fn>:*)")
        acknowledge(waiter, "AwsSolutions-IAM5[Resource::*]",
                    "Step Functions log delivery (logs:CreateLogDelivery and friends) has no resource-level permission")
        acknowledge(waiter, "AwsSolutions-SF2",
                    "the CDK Provider's waiter has no X-Ray option; every run is logged (level ALL) instead")
        waiter_role_construct = waiter_node.try_find_child("Role")
        waiter_policy = waiter_role_construct.node.try_find_child("DefaultPolicy") if waiter_role_construct else None
        if waiter_policy is not None:
            skip_checkov(waiter_policy, "CKV_AWS_111",
                         "Step Functions log delivery (logs:CreateLogDelivery and friends) has no resource-level "
                         "permission: AWS documents Resource '*' for it")
    for fn in framework:  # each still depends on its role, DefaultPolicy included (through the closed wrapper)
        if isinstance(fn, lambda_.Function):
            skip_function_checks(fn, framework=True)
    return provider


_P = TypeVar("_P", bound=Construct)
_SINGLETONS: WeakKeyDictionary[Stack, dict[str, Construct]] = WeakKeyDictionary()
"""Each stack's singletons by id, found without a jsii round trip after the first lookup."""


def stack_singleton(cls: type[_P], scope: Construct, id: str) -> _P:
    """The construct ``id`` of ``scope``'s stack, created on first use: one per stack."""
    stack = scope if isinstance(scope, Stack) else Stack.of(scope)
    found = _SINGLETONS.setdefault(stack, {}).get(id)
    if not isinstance(found, cls):
        existing = stack.node.try_find_child(id)
        found = _SINGLETONS[stack][id] = existing if isinstance(existing, cls) else cls(stack, id)
    return found


class ImporterProvider(Construct):
    """The stack's ACM importer: onEvent + isComplete functions behind a CDK Provider.

    onEvent imports, re-imports, adopts, retires and deletes; isComplete (the delete waiter) only deletes again and
    describes. In a sweeper stack both sweep: list, and delete retired certificates (``allow_sweep``)."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self._stack = scope if isinstance(scope, Stack) else Stack.of(scope)
        self.log_group = function_log_group(self)
        self.on_event, self._on_event_role = handler_function(
            self, "OnEvent", IMPORTER_ON_EVENT,
            "certfleet: imports third-party certificates into ACM (re-imports in place on renewal)",
            # Lambda's maximum: a shard's concurrent imports share ACM's 1/s, and the handler retries while it has time
            minutes(15), log_group=self.log_group,
        )
        self.is_complete, self._is_complete_role = handler_function(
            self, "IsComplete", IMPORTER_IS_COMPLETE,
            "certfleet: waits for a certificate still in use to be released before deleting it",
            minutes(2), log_group=self.log_group,
        )
        self.provider = framework_provider(self, self.log_group, self.on_event, self.is_complete,
                                  query_interval=seconds(30), total_timeout=minutes(30))
        self._service_token = self._stack_region = ""
        self._arns: dict[str, str] = {}
        self._findings: dict[str, str] = {}
        self._fleets: set[str] = set()
        self._swept: set[str] = set()
        self._namespaces: set[str] = set()
        self._listing: set[str] = set()

    @classmethod
    def of(cls, scope: Construct) -> ImporterProvider:
        """The stack's one importer, created on first use."""
        return stack_singleton(cls, scope, IMPORTER_ID)

    @property
    def service_token(self) -> str:
        if not self._service_token:
            self._service_token = self.provider.service_token
        return self._service_token

    @property
    def roles(self) -> list[iam.IRole]:
        """The roles that read private keys: onEvent's alone (the delete waiter never imports)."""
        return [self._on_event_role]

    def allow_fleet(self, fleet: str) -> None:
        """Let the importer create certificates tagged for ``fleet`` and touch only those afterwards.

        ``fleet`` may be a pattern with ``*`` (``<group>/*``: every fleet of a FleetGroup). Tagging on import is
        allowed only on a certificate that carries no certfleet managed-by tag, so that another fleet's certificate
        cannot be tagged into this one; the fleet's own certificates may get only the owner and retired tags.
        """
        if fleet in self._fleets:
            return
        self._fleets.add(fleet)
        sid = statement_id(fleet, 50, "Fleet")
        own = tag_conditions("ResourceTag", fleet)
        certificates = self._certificates()
        self._list(self.on_event, self._region)
        self._allow(self.on_event, dict(
            sid=f"ImportNewOnlyTagged{sid}",
            actions=["acm:ImportCertificate", "acm:AddTagsToCertificate"],
            resources=["*"],
            conditions={
                **tag_conditions("RequestTag", fleet),
                "ForAllValues:StringEquals": {"aws:TagKeys": IMPORT_TAGS},
                "Null": {f"aws:ResourceTag/{MANAGED_BY_TAG}": "true"},
            },
        ), "acm:ListCertificates has no resource-level permission, nor a first import (no ARN yet): it needs "
           "certfleet's request tags")
        self._allow(self.on_event, dict(
            sid=f"ReimportDeleteOnlyOwn{sid}", actions=OWN_CERTIFICATE_ACTIONS, resources=[certificates],
            conditions=own,
        ))
        self._allow(self.on_event, _marking(f"RetireAdoptOnlyOwn{sid}", "acm:AddTagsToCertificate", MARK_TAGS,
                                            certificates, own))
        self._allow(self.on_event, _marking(f"UnretireOnlyOwn{sid}", "acm:RemoveTagsFromCertificate", UNMARK_TAGS,
                                            certificates, own))
        self._allow(self.is_complete, dict(
            sid=f"WaitDeleteOnlyOwn{sid}", actions=WAITER_ACTIONS, resources=[certificates], conditions=own,
        ))

    def allow_group(self, group: str) -> None:
        """``allow_fleet`` for every fleet of the FleetGroup ``group`` (fleet tags ``<group>/<fleet>``): a fixed
        number of statements however many fleets share the stack, so that IAM's policy size limits never decide
        how many certificates fit in a stack."""
        self.allow_fleet(f"{group}/*")

    def allow_sweep(self, fleet: str) -> None:
        """Make this the sweeper's provider: delete, in every region of the account, the certificates of ``fleet``
        (``<group>/*`` for a FleetGroup) that carry the ``certfleet:retired`` tag, and nothing else.

        Both functions sweep (onEvent, then isComplete until released): each lists certificates and their tags and
        calls only ``acm:DeleteCertificate``; a live certificate of the fleet is out of their reach."""
        if fleet in self._swept:
            return
        self._swept.add(fleet)
        own = tag_conditions("ResourceTag", fleet)
        for function in (self.on_event, self.is_complete):
            self._list(function, "*")
            self._allow(function, dict(
                sid=f"SweepOnlyOwnRetired{statement_id(fleet, 60, 'Fleet')}",
                actions=["acm:DeleteCertificate"],
                resources=[self._certificates("*")],
                conditions={**own, "Null": {f"aws:ResourceTag/{RETIRED_TAG}": "false"}},
            ))

    def allow_key_namespace(self, namespace: str) -> None:
        """Let the importer read every key secret in a FleetGroup's ``namespace`` (``certfleet/group/<prefix>/``) of
        this region, and ``kms:Decrypt`` through Secrets Manager for those secrets only: one pair of statements for
        the group's whole stack."""
        if namespace in self._namespaces:
            return
        self._namespaces.add(namespace)
        stack = self._stack
        sid = statement_id(_owner_of(namespace), 50, "Group")
        secrets = key_namespace_arn(stack, namespace)
        self._allow(self.on_event, dict(
            sid=f"ReadOnlyKeysOf{sid}", actions=["secretsmanager:GetSecretValue"], resources=[secrets],
        ), f"the private keys of this FleetGroup's fleets: secrets named {namespace}*, read only")
        self._allow(self.on_event, dict(
            sid=f"DecryptOnlyKeysOf{sid}", actions=["kms:Decrypt"],
            resources=[stack.format_arn(service="kms", resource="key", resource_name="*")],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{self._region}.amazonaws.com"},
                        "StringLike": {"kms:EncryptionContext:SecretARN": secrets}},
        ), "kms:Decrypt through Secrets Manager only, for the group's key secrets only (kms:ViaService and the "
           "SecretARN encryption context)")

    def _list(self, function: lambda_.Function, region: str) -> None:
        """Let ``function`` list the certificates of ``region`` (``*``: every region) and read their tags: how the
        importer finds a certificate to adopt and the sweeper finds retired ones."""
        key = f"{id(function)}:{region}"
        if key in self._listing:
            return
        self._listing.add(key)
        self._allow(function, dict(
            sid="ListCertificates", actions=["acm:ListCertificates"], resources=["*"],
        ), "acm:ListCertificates has no resource-level permission")
        self._allow(function, dict(
            sid="ReadCertificateTags" + ("EveryRegion" if region == "*" else ""),
            actions=["acm:ListTagsForCertificate"], resources=[self._certificates(region)],
        ))

    def _allow(self, function: lambda_.Function, statement: dict[str, Any],
               reason: str = "ACM chooses certificate ARNs: writes need certfleet's managed-by and fleet tags "
                             "(aws:ResourceTag); tag reads are how handlers find them") -> None:
        """Add ``statement`` (PolicyStatement's arguments: its resources are not read back from jsii) to
        ``function``'s role, and acknowledge cdk-nag's finding for each wildcard resource."""
        role = self._on_event_role if function is self.on_event else self._is_complete_role
        role.add_to_policy(iam.PolicyStatement(**statement))
        for resource in statement["resources"]:
            if "*" in resource:
                if resource not in self._findings:
                    self._findings[resource] = wildcard_finding(role, resource)
                acknowledge(role, self._findings[resource], reason)

    @property
    def _region(self) -> str:
        if not self._stack_region:
            self._stack_region = self._stack.region
        return self._stack_region

    def _certificates(self, region: str | None = None) -> str:
        """Every ACM certificate of this stack's account in ``region`` (default: the stack's; ``*``: every region)."""
        key = region or ""
        if key not in self._arns:
            self._arns[key] = self._stack.format_arn(service="acm", region=region or None, resource="certificate",
                                                     resource_name="*")
        return self._arns[key]


def _marking(sid: str, action: str, keys: list[str], certificates: str,
             own: dict[str, dict[str, str]]) -> dict[str, Any]:
    """``action`` (add or remove tags) on the fleet's own certificates, for the tag ``keys`` only."""
    return dict(sid=sid, actions=[action], resources=[certificates], conditions={
        **own, "ForAllValues:StringEquals": {"aws:TagKeys": keys}, "Null": {"aws:TagKeys": "false"},
    })


class KeyWriterProvider(Construct):
    """The stack's sealed-key writer: KMS Decrypt with one encryption context, PutSecretValue."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.log_group = function_log_group(self)
        self.function, self._role = handler_function(
            self, "OnEvent", KEY_WRITER_ON_EVENT,
            "certfleet: decrypts a sealed private key with KMS and writes it to Secrets Manager",
            minutes(2), log_group=self.log_group,
        )
        self.provider = framework_provider(self, self.log_group, self.function)
        self._service_token = ""
        self._groups: dict[str, _GroupKeys] = {}

    @classmethod
    def of(cls, scope: Construct) -> KeyWriterProvider:
        """The stack's one key writer, created on first use."""
        return stack_singleton(cls, scope, KEY_WRITER_ID)

    @property
    def service_token(self) -> str:
        if not self._service_token:
            self._service_token = self.provider.service_token
        return self._service_token

    def allow_group_key(self, namespace: str, kms_key_arn: str, encryption_context: dict[str, str]) -> None:
        """Let the writer decrypt one more sealed key of a FleetGroup and fill the key secrets of its ``namespace``:
        one statement per purpose whose lists grow (sealing keys, encryption-context values) instead of a
        statement per key, so that many fleets' keys fit in one role's policy."""
        state = self._groups.get(namespace)
        if state is None:
            state = self._groups[namespace] = self._group_statements(namespace, kms_key_arn)
        if kms_key_arn not in state.kms_keys:
            state.kms_keys.add(kms_key_arn)
            if len(state.kms_keys) > 1:
                state.decrypt.add_resources(kms_key_arn)
        for name, value in encryption_context.items():
            values = state.context.setdefault(name, set())
            values.add(value)
            state.decrypt.add_condition("StringEquals", {f"kms:EncryptionContext:{name}": sorted(values)})

    def _group_statements(self, namespace: str, first_kms_key: str) -> _GroupKeys:
        stack = Stack.of(self)
        sid = "Group" + statement_id(_owner_of(namespace), 50, "Fleets")
        secrets = key_namespace_arn(stack, namespace)
        decrypt = iam.PolicyStatement(sid=f"DecryptOnlySealedKeysOf{sid}", actions=["kms:Decrypt"],
                                      resources=[first_kms_key])
        self._role.add_to_policy(decrypt)
        self._role.add_to_policy(iam.PolicyStatement(
            sid=f"WriteOnlyKeysOf{sid}",
            actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret",
                     "secretsmanager:PutSecretValue",
                     "secretsmanager:UpdateSecretVersionStage"],  # a reverted key is made AWSCURRENT again
            resources=[secrets],
        ))
        keys = stack.format_arn(service="kms", resource="key", resource_name="*")
        through_secrets_manager = iam.PolicyStatement(
            sid=f"EncryptOnlyKeysOf{sid}", actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=[keys],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"},
                        "StringLike": {"kms:EncryptionContext:SecretARN": secrets}},
        )
        self._role.add_to_policy(through_secrets_manager)
        acknowledge(self.role, wildcard_finding(self.role, secrets),
                    f"the private keys of this FleetGroup's fleets: secrets named {namespace}*")
        acknowledge(self.role, wildcard_finding(self.role, keys),
                    "KMS through Secrets Manager only, for the group's key secrets only (kms:ViaService and the "
                    "SecretARN encryption context)")
        return _GroupKeys(decrypt)

    @property
    def role(self) -> iam.IRole:
        """The key writer function's execution role."""
        return self._role


def tag_conditions(kind: str, fleet: str) -> dict[str, dict[str, str]]:
    """certfleet's managed-by tag and the fleet tag (``kind``: RequestTag or ResourceTag); a fleet with a ``*`` is a
    pattern (every fleet of a FleetGroup), matched with StringLike."""
    managed = {f"aws:{kind}/{MANAGED_BY_TAG}": MANAGED_BY}
    fleet_tag = {f"aws:{kind}/{FLEET_TAG}": fleet}
    if "*" in fleet:
        return {"StringEquals": managed, "StringLike": fleet_tag}
    return {"StringEquals": {**managed, **fleet_tag}}


class _GroupKeys:
    """The sealing keys and encryption contexts of one FleetGroup's sealed keys in one stack, and the statement
    that lists them."""

    def __init__(self, decrypt: iam.PolicyStatement) -> None:
        self.decrypt = decrypt
        self.kms_keys: set[str] = set()
        self.context: dict[str, set[str]] = {}


def key_namespace_arn(stack: Stack, namespace: str, region: str | None = None) -> str:
    """Every key secret of a key ``namespace`` (ending in ``/``) in ``region`` (default: the stack's), as an IAM
    resource pattern."""
    return stack.format_arn(service="secretsmanager", resource="secret", resource_name=f"{namespace}*",
                            region=region, arn_format=ArnFormat.COLON_RESOURCE_NAME)


def _owner_of(namespace: str) -> str:
    """The owner part of ``certfleet/<kind>/<owner>/`` (for statement ids)."""
    return namespace.rstrip("/").rsplit("/", 1)[-1]


def statement_id(name: str, limit: int, default: str) -> str:
    return "".join(ch for ch in name.title() if ch.isalnum())[:limit] or default

