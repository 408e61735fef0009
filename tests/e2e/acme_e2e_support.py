"""Helpers for the ACME rehearsal: the ACME fleet app as a user writes it, and what ACM and Secrets Manager hold."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Duration, Environment, Stack
from aws_cdk import aws_cloudformation as cloudformation
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certfleet import AcmeAccount, CertificateFleet, CertificateSource
from certfleet._lambda.certfleet_contract import ACME_CERTIFICATE_TYPE, FLEET_TAG
from certfleet.testing import StrictAWS
from certfleet.testing.rehearsal import Rehearsal
from certfleet.testing.strict_route53 import Route53Change

ACCOUNT = "123456789012"
PRIMARY = "us-east-1"
OTHERS = ("eu-west-1", "ap-southeast-2")
REGIONS = (PRIMARY, *OTHERS)
ZONE = "example.com"
TOPIC = f"arn:aws:sns:{PRIMARY}:{ACCOUNT}:certfleet-expiry"
CURRENT = "AWSCURRENT"


@dataclass(frozen=True)
class Eab:
    """External Account Binding as a CA hands it out: a key id, and the secret (its ARN) holding the HMAC key."""

    key_id: str
    hmac_secret_arn: str


def synth_acme_fleet(out: Path, *, fleet: str, directory_url: str, zone_id: str, domains: tuple[str, ...],
                     regions: tuple[str, ...] = OTHERS, eab: Eab | None = None,
                     delete_timeout: Duration | None = None) -> Path:
    """Synthesize an app with one ACME fleet (us-east-1 + ``regions``), its Route 53 zone and expiry topic imported
    from a stack of their own; the cloud assembly's folder."""
    app = App(outdir=str(out))
    shared = Stack(app, f"{fleet}Dns", env=Environment(account=ACCOUNT, region=PRIMARY))
    cloudformation.CfnWaitConditionHandle(shared, "Nothing")  # a stack needs a resource; the zone is imported
    zone = route53.HostedZone.from_hosted_zone_attributes(shared, "Zone", hosted_zone_id=zone_id, zone_name=ZONE)
    account = AcmeAccount(contact="mailto:ops@example.com")
    if eab is not None:
        hmac = secretsmanager.Secret.from_secret_complete_arn(shared, "EabHmac", eab.hmac_secret_arn)
        account = AcmeAccount(contact="mailto:ops@example.com", eab_key_id=eab.key_id, eab_hmac_secret=hmac)
    source = CertificateSource.acme(directory_url=directory_url, domains=list(domains), hosted_zone=zone,
                                    key_type="ec-p256", account=account)
    certificates = CertificateFleet(app, fleet, source=source, account=ACCOUNT, regions=list(regions),
                                    **({"delete_timeout": delete_timeout} if delete_timeout else {}))
    certificates.add_expiry_monitoring(topic=sns.Topic.from_topic_arn(shared, "Expiry", TOPIC))
    app.synth()
    return out


def primary_template(cdk_out: Path, fleet: str) -> dict[str, Any]:
    """The fleet's us-east-1 stack's template (the one holding the ACME issuer)."""
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    for artifact in manifest["artifacts"].values():
        if artifact.get("type") != "aws:cloudformation:stack" or not artifact["environment"].endswith(PRIMARY):
            continue
        template: dict[str, Any] = json.loads((cdk_out / artifact["properties"]["templateFile"]).read_text())
        if any(r["Type"] == ACME_CERTIFICATE_TYPE and r["Properties"].get("Fleet") == fleet
               for r in template["Resources"].values()):
            return template
    raise AssertionError(f"no us-east-1 stack of {cdk_out} holds the ACME issuer of {fleet}")


@dataclass(frozen=True)
class Held:
    """What ACM holds of a fleet in one region: ARN, the leaf, its key type (ACM's name) and expiry."""

    arn: str
    leaf: x509.Certificate
    key_algorithm: str
    not_after: str

    @property
    def public_key(self) -> bytes:
        return self.leaf.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def held(rehearsal: Rehearsal, acm: dict[str, Any], fleet: str) -> dict[str, Held]:
    """Per region, the fleet's one certificate in ACM (``acm``: a client per region, the test's own)."""
    found: dict[str, Held] = {}
    for region, rows in rehearsal.inventory(list(REGIONS)).items():
        mine = [r for r in rows if r["tags"].get(FLEET_TAG) == fleet]
        if not mine:
            continue
        assert len(mine) == 1, f"{region}: {len(mine)} certificates of {fleet}"
        pem = acm[region].get_certificate(CertificateArn=mine[0]["arn"])["Certificate"]
        found[region] = Held(mine[0]["arn"], x509.load_pem_x509_certificate(pem.encode()), mine[0]["key_algorithm"],
                             mine[0]["not_after"])
    return found


def material_secret(rehearsal: Rehearsal, fleet: str) -> str:
    """The ARN of the fleet's material secret, as its ACME issuer was told."""
    for deployed in rehearsal.resources.values():
        if deployed.type == ACME_CERTIFICATE_TYPE and deployed.properties.get("Fleet") == fleet:
            return str(deployed.properties["MaterialSecretId"])
    raise AssertionError(f"no ACME issuer of {fleet} was deployed")


def material(sm: Any, secret_id: str) -> tuple[str, x509.Certificate]:
    """(AWSCURRENT's version id, its certificate) of a material secret (never the key: it is not returned)."""
    answer = sm.get_secret_value(SecretId=secret_id, VersionStage=CURRENT)
    value = json.loads(answer["SecretString"])
    return str(answer["VersionId"]), x509.load_pem_x509_certificate(str(value["certificate"]).encode())


def moment(text: str) -> datetime.datetime:
    """An ISO-8601 time the renewer returned, as an aware datetime."""
    parsed = datetime.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


class ConcurrentOrder:
    """Another ACME client's challenge value, added to ``name``'s TXT set (the test's own Route 53 calls) the moment a
    change of the set's is first reported INSYNC, as a second order of the same name would: the handler's withdrawal
    then finds the set changed since it published, and must keep the other value."""

    VALUE = "another-order-of-the-same-name"

    def __init__(self, aws: StrictAWS, route53: Any, zone_id: str, name: str) -> None:
        self.aws, self.route53, self.zone_id, self.name = aws, route53, zone_id, name.rstrip(".") + "."
        self.armed = True
        self._stop: Callable[[], None] | None = None

    def _heard(self, event: str, change: Route53Change) -> None:
        if not self.armed or event != "insync" or not any(c.name == self.name and c.type == "TXT"
                                                          for c in change.changes):
            return
        self.armed = False
        (current,) = [c for c in change.changes if c.name == self.name and c.type == "TXT"]
        values = [*current.values, f'"{self.VALUE}"']
        self.route53.change_resource_record_sets(HostedZoneId=self.zone_id, ChangeBatch={"Changes": [
            {"Action": "UPSERT", "ResourceRecordSet": {"Name": self.name, "Type": "TXT", "TTL": current.ttl or 60,
                                                       "ResourceRecords": [{"Value": v} for v in values]}}]})

    def values(self) -> list[str]:
        """The TXT values (quoted) Route 53 holds at the name now."""
        sets = self.route53.list_resource_record_sets(HostedZoneId=self.zone_id, StartRecordName=self.name,
                                                      StartRecordType="TXT", MaxItems="1")["ResourceRecordSets"]
        return [r["Value"] for s in sets if s["Name"] == self.name and s["Type"] == "TXT" for r in s["ResourceRecords"]]

    def __enter__(self) -> ConcurrentOrder:
        self._stop = self.aws.observe_route53(self._heard)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._stop()
        left = self.values()
        if left:  # the other order is done too: leave the zone as it was
            self.route53.change_resource_record_sets(HostedZoneId=self.zone_id, ChangeBatch={"Changes": [
                {"Action": "DELETE", "ResourceRecordSet": {"Name": self.name, "Type": "TXT", "TTL": 60,
                                                           "ResourceRecords": [{"Value": v} for v in left]}}]})
