"""An ACME fleet (us-east-1 + 2 regions) rehearsed end to end against moto_server + StrictAWS with IAM enforced, pebble
as the CA and pebble-challtestsrv serving what Route 53 holds: the first deploy issues and imports everywhere; the
daily schedule renews in the window with no deploy (same ARNs); a later update never imports the older pinned
certificate; a CA outage leaves the certificate serving and fails the run the alarm watches; EAB refused fails the
first deploy, naming EAB.

The tests of this module share one deployed fleet and run in file order, each on the state the previous left (a
deployment's life: deploy, redeploy, renew, update, outage); each asserts one stage."""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from acme_e2e_support import (
    ACCOUNT,
    PRIMARY,
    REGIONS,
    TOPIC,
    ZONE,
    ConcurrentOrder,
    Eab,
    Held,
    held,
    material,
    material_secret,
    moment,
    primary_template,
    synth_acme_fleet,
)
from acme_support import ChallTestSrv, Pebble, new_eab_key
from aws_cdk import Duration
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from route53_bridge import Route53Bridge, bare_zone_id

from certfleet._lambda.certfleet_contract import ACME_CERTIFICATE_TYPE, ACME_RENEWER, CERTIFICATE_TYPE
from certfleet.testing import MotoServer, StrictAWS
from certfleet.testing.assembly import _acme_handler_dir, _default_handler_dir, load_handler
from certfleet.testing.rehearsal import Rehearsal, RehearsalError, RehearsalWarning

FLEET = "Acme"
EAB_FLEET = "AcmeEab"
DOMAINS = ("www.example.com", "example.com")
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": PRIMARY,
       "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
       "CERTFLEET_SECRET_WAIT_SECONDS": "30"}
HANDLER_ENV = {"CERTFLEET_INSYNC_POLL_SECONDS": "0.05"}
"""The renewer polls Route 53 every 5 s in AWS; StrictAWS answers INSYNC on the second read."""

pytestmark = pytest.mark.slow  # three synths, deployments in three regions, orders at pebble


@dataclass
class World:
    """One account's moto state for the whole module: the zone, the CA, the assemblies and the rehearsal."""

    aws: StrictAWS
    ca: Pebble
    cdk_out: Path
    updated: Path
    eab_out: Path
    rehearsal: Rehearsal
    acm: dict[str, Any]
    sm: dict[str, Any]
    route53: Any
    zone_id: str
    figures: dict[str, float] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)
    """What a stage leaves for the next (the certificates held after it)."""

    def held(self) -> dict[str, Held]:
        return held(self.rehearsal, self.acm, FLEET)

    def another_order(self, domain: str) -> ConcurrentOrder:
        return ConcurrentOrder(self.aws, self.route53, self.zone_id, f"_acme-challenge.{domain}")

    def imports(self) -> dict[str, int]:
        return {r: self.aws.calls("acm", "ImportCertificate", region=r) for r in REGIONS}


@pytest.fixture(scope="module")
def world(challtestsrv: ChallTestSrv, eab_pebble: Pebble, tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("acme-e2e")
    moto = MotoServer.shared()
    moto.reset()
    bundle = folder / "ca-bundle.pem"
    with mock.patch.dict(os.environ, {**ENV, "REQUESTS_CA_BUNDLE": str(bundle)}), \
            StrictAWS(moto.url) as aws, Pebble(folder / "pebble", challtestsrv.dns_address) as ca:
        bundle.write_bytes(ca.ca_bundle.read_bytes() + eab_pebble.ca_bundle.read_bytes())
        route53 = boto3.client("route53", endpoint_url=aws.url, region_name=PRIMARY)
        zone = bare_zone_id(route53.create_hosted_zone(Name=ZONE, CallerReference="acme-e2e")["HostedZone"]["Id"])
        sm = {r: boto3.client("secretsmanager", endpoint_url=aws.url, region_name=r) for r in REGIONS}
        wrong = sm[PRIMARY].create_secret(Name="acme-e2e/eab-hmac", SecretString=new_eab_key())["ARN"]
        kid = next(iter(eab_pebble.eab_keys))
        with Route53Bridge(aws, challtestsrv, [zone]):
            common = {"zone_id": zone}
            world = World(
                aws=aws, ca=ca,
                cdk_out=synth_acme_fleet(folder / "v1", fleet=FLEET, directory_url=ca.directory_url,
                                         domains=DOMAINS, **common),
                updated=synth_acme_fleet(folder / "v2", fleet=FLEET, directory_url=ca.directory_url,
                                         domains=DOMAINS, delete_timeout=Duration.minutes(20), **common),
                eab_out=synth_acme_fleet(folder / "eab", fleet=EAB_FLEET, directory_url=eab_pebble.directory_url,
                                         domains=("eab.example.com",), regions=(), eab=Eab(kid, wrong), **common),
                rehearsal=Rehearsal(aws.url, environment=HANDLER_ENV),
                acm={r: boto3.client("acm", endpoint_url=aws.url, region_name=r) for r in REGIONS}, sm=sm,
                route53=route53, zone_id=zone,
            )
            yield world
    print("\nACME rehearsal figures: " + ", ".join(f"{k} {v:.1f} s" for k, v in world.figures.items()))


def _secret_in(world: World, region: str) -> tuple[str, Any]:
    """(version id, certificate) of AWSCURRENT of the fleet's material secret as ``region`` reads it (a replica)."""
    arn = material_secret(world.rehearsal, FLEET)
    name = arn.split(":secret:", 1)[1].rsplit("-", 1)[0]
    return material(world.sm[region], arn if region == PRIMARY else name)


def test_the_first_deploy_orders_at_the_ca_and_imports_the_leaf_in_every_region(world: World) -> None:
    """GIVEN an ACME fleet in us-east-1 + 2 regions WHEN it is first deployed THEN the issuer ordered at pebble and ACM
    holds pebble's leaf for both domains, EC P-256, in every region; the material secret holds it, replicas too. The
    challenge records are withdrawn, another order's value in the same record set kept."""
    with world.another_order("www.example.com") as other:
        started = time.monotonic()
        events = world.rehearsal.deploy(world.cdk_out)
        world.figures["first deploy (order + import in 3 regions)"] = time.monotonic() - started
        assert other.values() == [f'"{other.VALUE}"']

    created = {(e.region, e.action) for e in events if e.logical_id and e.action == "create"}
    assert (PRIMARY, "create") in created
    kinds = {k[3]: d.type for k, d in world.rehearsal.resources.items()}
    assert ACME_CERTIFICATE_TYPE in kinds.values()
    now = world.held()
    assert sorted(now) == sorted(REGIONS)
    leaves = {h.leaf.fingerprint(hashes.SHA256()) for h in now.values()}
    assert len(leaves) == 1, "every region holds the same leaf"
    for region, cert in now.items():
        assert cert.key_algorithm == "EC_prime256v1", region
        names = cert.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
        assert sorted(names) == sorted(DOMAINS), region
        assert "Pebble" in cert.leaf.issuer.rfc4514_string(), region
        _, stored = _secret_in(world, region)
        assert stored == cert.leaf, f"{region}: the material secret (replica) holds what ACM holds"
    world.seen["first"] = now


def test_a_second_deploy_with_no_change_runs_no_custom_resource(world: World) -> None:
    """GIVEN the deployed fleet WHEN the same assembly is deployed again THEN no resource changes and ACM imports
    nothing."""
    before = world.imports()
    assert world.rehearsal.deploy(world.cdk_out) == []
    assert world.imports() == before


def test_the_daily_run_before_the_renewal_window_writes_and_imports_nothing(world: World) -> None:
    """GIVEN the fresh certificate WHEN the renewer's schedule runs today THEN it does not renew, imports nothing, and
    says when it will."""
    before, version = world.imports(), _secret_in(world, PRIMARY)[0]
    runs = world.rehearsal.run_schedules(datetime.datetime.now(datetime.UTC))
    assert [(r.handler, r.error) for r in runs] == [(ACME_RENEWER, "")]
    result = runs[0].result
    assert result["Renewed"] is False and result["Imported"] == {}
    assert world.imports() == before and _secret_in(world, PRIMARY)[0] == version
    world.seen["due"] = moment(result["Due"])


def test_in_the_renewal_window_the_schedule_renews_and_reimports_with_no_deploy(world: World) -> None:
    """GIVEN the clock moved into the renewal window WHEN the schedule runs THEN a new leaf with a new key of the same
    type is in every region under the same ARN (one import per region), AWSCURRENT holds it (replicas too), and
    CloudFormation saw nothing; another order's challenge value in the same record set is kept."""
    first: dict[str, Held] = world.seen["first"]
    imports, events, version = world.imports(), len(world.rehearsal.events), _secret_in(world, PRIMARY)[0]
    with world.another_order("example.com") as other:
        started = time.monotonic()
        runs = world.rehearsal.run_schedules(world.seen["due"] + datetime.timedelta(minutes=1))
        world.figures["renewal (order + import in 3 regions)"] = time.monotonic() - started
        assert other.values() == [f'"{other.VALUE}"'], "the renewer withdrew its own challenge values only"

    assert [r.error for r in runs] == [""]
    assert runs[0].result["Renewed"] is True
    assert sorted(runs[0].result["Imported"]) == sorted(REGIONS)
    now = world.held()
    for region in REGIONS:
        assert now[region].arn == first[region].arn, f"{region}: same ARN"
        assert now[region].leaf.not_valid_after_utc > first[region].leaf.not_valid_after_utc, region
        assert now[region].public_key != first[region].public_key, f"{region}: a new key"
        assert now[region].key_algorithm == first[region].key_algorithm, f"{region}: the same key type"
        assert world.imports()[region] == imports[region] + 1, f"{region}: one import"
        assert _secret_in(world, region)[1] == now[region].leaf, f"{region}: AWSCURRENT holds the renewed leaf"
    assert _secret_in(world, PRIMARY)[0] != version
    assert len(world.rehearsal.events) == events, "no CloudFormation event: renewal needs no deploy"
    world.seen["renewed"] = now


def test_a_later_stack_update_never_imports_the_older_pinned_certificate(world: World) -> None:
    """GIVEN the renewed certificate (CloudFormation still pins the first issuance) WHEN a change to the importer's
    properties (delete_timeout) is deployed THEN every region's importer runs and ACM still holds the renewed leaf."""
    renewed: dict[str, Held] = world.seen["renewed"]
    events = world.rehearsal.deploy(world.updated)
    updated = {e.region for e in events if e.action == "update" and
               world.rehearsal.resources.get((ACCOUNT, e.region, e.stack, e.logical_id)) is not None and
               world.rehearsal.resources[(ACCOUNT, e.region, e.stack, e.logical_id)].type == CERTIFICATE_TYPE}
    assert updated == set(REGIONS), events
    assert not [e for e in events if e.action == "update" and
                world.rehearsal.resources[(ACCOUNT, e.region, e.stack, e.logical_id)].type == ACME_CERTIFICATE_TYPE]
    now = world.held()
    for region in REGIONS:
        assert (now[region].arn, now[region].leaf) == (renewed[region].arn, renewed[region].leaf), region


def test_a_ca_outage_leaves_the_certificate_serving_and_fails_the_run_the_alarm_watches(world: World) -> None:
    """GIVEN the CA is down WHEN the schedule runs in the renewal window THEN the run fails naming the CA, every region
    still serves the renewed certificate, and the fleet's alarm on the renewer's Lambda Errors notifies the expiry
    topic."""
    renewed: dict[str, Held] = world.seen["renewed"]
    world.ca.stop()
    later = max(h.leaf.not_valid_after_utc for h in renewed.values()) - datetime.timedelta(days=1)
    runs = world.rehearsal.run_schedules(later)
    assert len(runs) == 1 and runs[0].error, runs
    assert world.ca.directory_url in runs[0].error or "ACME" in runs[0].error, runs[0].error
    assert {r: (h.arn, h.leaf) for r, h in world.held().items()} == {r: (h.arn, h.leaf) for r, h in renewed.items()}

    template = primary_template(world.cdk_out, FLEET)
    alarms = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"
              and r["Properties"].get("Namespace") == "AWS/Lambda" and r["Properties"].get("MetricName") == "Errors"]
    assert len(alarms) == 1, alarms
    (dimension,) = alarms[0]["Dimensions"]
    assert dimension["Name"] == "FunctionName" and dimension["Value"] == {"Ref": runs[0].function}
    assert TOPIC in alarms[0]["AlarmActions"]


def test_eab_refused_fails_the_first_deploy_with_an_error_naming_eab(world: World) -> None:
    """GIVEN a CA requiring External Account Binding and the wrong HMAC key in the EAB secret WHEN the fleet is first
    deployed THEN the deploy fails at the ACME issuer with an error naming EAB."""
    with pytest.raises(RehearsalError) as caught:
        Rehearsal(world.aws.url, environment=HANDLER_ENV).deploy(world.eab_out)
    message = str(caught.value)
    assert ACME_CERTIFICATE_TYPE in message, message
    assert "the CA refused the External Account Binding (EAB key id" in message, message
    assert "check the EAB key id and the HMAC key" in message, message



def test_a_stale_asset_is_refused_and_the_handler_loads_from_certfleets_sources(tmp_path: Path) -> None:
    """GIVEN an asset folder shipping the ACME handler modules WHEN one differs from certfleet's sources THEN loading
    its handler fails, saying to synthesize again (the rehearsal's way: a RehearsalWarning, noted once, and the
    sources run); the same sources load from lambda_acme/, the contract beside them."""
    sources = _acme_handler_dir()
    asset = tmp_path / "asset"
    asset.mkdir()
    for name in ("certfleet_acme_handler.py", "certfleet_acme.py", "certfleet_acme_dns.py"):
        (asset / name).write_bytes((sources / name).read_bytes())
    (asset / "certfleet_contract.py").write_bytes((_default_handler_dir() / "certfleet_contract.py").read_bytes())
    folders = (_default_handler_dir(), sources)
    loaded = load_handler("certfleet_acme_handler", asset, folders)
    assert Path(loaded.__file__).read_bytes() == (sources / "certfleet_acme_handler.py").read_bytes()
    (asset / "certfleet_acme.py").write_text("# edited after synth\n")
    with pytest.raises(RehearsalError, match=r"certfleet_acme\.py differs .*synthesize the app again"):
        load_handler("certfleet_acme_handler", asset, folders)
    noted: list[str] = []
    for _ in range(2):
        with pytest.warns(RehearsalWarning, match="synthesize the app again") if not noted else nullcontext():
            assert load_handler("certfleet_acme_handler", asset, folders, noted) is loaded
    assert len(noted) == 1
