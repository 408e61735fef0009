"""One importer and one key writer per stack, whatever the number of certificates (singleton providers)."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr
from constructs import Construct

IMPORTER_ID = "CertfleetImporter"
KEY_WRITER_ID = "CertfleetKeyWriter"
MANAGED_BY_TAG = "certfleet:managed-by"
FLEET_TAG = "certfleet:fleet"
ID_TAG = "certfleet:id"
MANAGED_BY = "certfleet"
_ASSET_EXCLUDES = ["__pycache__", "*.pyc", "*.pyo", ".*"]


def handler_code_dir() -> Path:
    """The folder with the Lambda handler modules: inside the wheel, or lambda/ in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_lambda", here.parent.parent / "lambda"):
        if (candidate / "certfleet_import.py").is_file():
            return candidate
    raise FileNotFoundError(
        "certfleet's Lambda handler code is missing (looked in certfleet/_lambda and lambda/): reinstall certfleet",
    )


def _function(scope: Construct, id: str, handler: str, description: str, timeout: Duration) -> lambda_.Function:
    return lambda_.Function(
        scope, id,
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler=handler,
        code=lambda_.Code.from_asset(str(handler_code_dir()), exclude=_ASSET_EXCLUDES),
        timeout=timeout,
        memory_size=256,
        description=description,
    )


class ImporterProvider(Construct):
    """The stack's ACM importer: onEvent + isComplete functions behind a CDK Provider."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.on_event = _function(
            self, "OnEvent", "certfleet_import.on_event",
            "certfleet: imports third-party certificates into ACM (re-imports in place on renewal)",
            Duration.minutes(5),
        )
        self.is_complete = _function(
            self, "IsComplete", "certfleet_import.is_complete",
            "certfleet: waits for a certificate still in use to be released before deleting it",
            Duration.minutes(2),
        )
        self.provider = cr.Provider(
            self, "Provider",
            on_event_handler=self.on_event,
            is_complete_handler=self.is_complete,
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

    @classmethod
    def of(cls, scope: Construct) -> ImporterProvider:
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(IMPORTER_ID)
        return existing if isinstance(existing, ImporterProvider) else cls(stack, IMPORTER_ID)

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


class KeyWriterProvider(Construct):
    """The stack's sealed-key writer: KMS Decrypt with one encryption context, PutSecretValue."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.function = _function(
            self, "OnEvent", "certfleet_keywriter.on_event",
            "certfleet: decrypts a sealed private key with KMS and writes it to Secrets Manager",
            Duration.minutes(2),
        )
        self.provider = cr.Provider(self, "Provider", on_event_handler=self.function)

    @classmethod
    def of(cls, scope: Construct) -> KeyWriterProvider:
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(KEY_WRITER_ID)
        return existing if isinstance(existing, KeyWriterProvider) else cls(stack, KEY_WRITER_ID)

    @property
    def service_token(self) -> str:
        return self.provider.service_token

    @property
    def role(self) -> iam.IRole:
        role = self.function.role
        if role is None:  # a Function always has a role unless one was imported; ours never is
            raise RuntimeError(f"{self.node.path}: the key writer function has no role")
        return role
