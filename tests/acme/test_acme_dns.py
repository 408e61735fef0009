"""lambda_acme/certfleet_acme_dns.py: DNS-01 through the Route 53 API (moto behind StrictAWS), validated by pebble
from what Route 53 holds (route53_bridge feeds pebble-challtestsrv)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from acme.client import ClientV2
from acme_support import ChallTestSrv, Pebble
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from route53_bridge import Route53Bridge, bare_zone_id

import certfleet_acme as ca
from certfleet.testing import MotoServer, StrictAWS
from certfleet_acme_dns import DnsError, HostedZone, Route53Dns, challenge_name, quote_txt, zone_for


class FakeClock:
    """Monotonic seconds that move only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def aws(moto_server: MotoServer, strict_aws: StrictAWS, monkeypatch: pytest.MonkeyPatch) -> StrictAWS:
    """Clean moto and StrictAWS; a change stays PENDING for its first two GetChange reads; inert credentials."""
    moto_server.reset()
    strict_aws.reset()
    monkeypatch.setattr(strict_aws, "route53_pending_reads", 2)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return strict_aws


class Route53Env:
    """Route 53 through StrictAWS for one test: a client, hosted zones, publishers on a fake clock, bridges."""

    def __init__(self, aws: StrictAWS, dns_server: ChallTestSrv) -> None:
        self.aws = aws
        self.client: Any = boto3.client("route53", region_name="us-east-1", endpoint_url=aws.url,
                                        config=Config(retries={"total_max_attempts": 1}))
        self.clock = FakeClock()
        self.dns_server = dns_server
        self.bridges: list[Route53Bridge] = []

    def zone(self, name: str) -> HostedZone:
        created = self.client.create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()))["HostedZone"]
        return HostedZone(str(created["Id"]), str(created["Name"]))

    def dns(self, zones: list[HostedZone]) -> Route53Dns:
        return Route53Dns(zones, client=self.client, clock=self.clock, sleep=self.clock.sleep, poll_interval=2.0)

    def bridge(self, delegated: list[HostedZone]) -> Route53Bridge:
        self.bridges.append(Route53Bridge(self.aws, self.dns_server, [z.id for z in delegated]).start())
        return self.bridges[-1]

    def txt_sets(self, zone: HostedZone) -> dict[str, list[str]]:
        sets = self.client.list_resource_record_sets(HostedZoneId=zone.zone_id)["ResourceRecordSets"]
        return {s["Name"]: [r["Value"] for r in s["ResourceRecords"]] for s in sets if s["Type"] == "TXT"}


@pytest.fixture
def r53(aws: StrictAWS, challtestsrv: ChallTestSrv) -> Iterator[Route53Env]:
    env = Route53Env(aws, challtestsrv)
    yield env
    for bridge in env.bridges:
        bridge.stop()


def _registered(pebble: Pebble) -> ClientV2:
    acme = ca.open_client(pebble.directory_url, ca.new_account_key())
    ca.register(acme, contact="mailto:ops@example.com")
    return acme


# ------------------------------------------------------------------------------------------- against pebble
def test_a_wildcard_and_apex_order_is_validated_from_route53(pebble: Pebble, trust_pebble: Path,
                                                             r53: Route53Env) -> None:
    parent, team = r53.zone("example.com"), r53.zone("team.example.com")
    bridge = r53.bridge([parent, team])
    publish, withdraw = r53.dns([parent, team]).callbacks(until=r53.clock() + 120)

    issued = ca.order_certificate(_registered(pebble), ["shop.example.com", "*.shop.example.com",
                                                        "api.team.example.com"], "ec-p256", publish, withdraw)

    leaf = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == ["*.shop.example.com", "api.team.example.com", "shop.example.com"]
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    submitted = [change for event, change in bridge.history if event == "submitted"]
    upserts = {(c.zone_id, r.name): r.values for c in submitted for r in c.changes if r.action == "UPSERT"}
    assert set(upserts) == {(bare_zone_id(parent.id), "_acme-challenge.shop.example.com."),
                            (bare_zone_id(team.id), "_acme-challenge.api.team.example.com.")}
    assert len(upserts[(bare_zone_id(parent.id), "_acme-challenge.shop.example.com.")]) == 2  # wildcard + apex
    assert all(v.startswith('"') and v.endswith('"') for values in upserts.values() for v in values)
    # each publish waited through Route 53's two PENDING reads (the clock moved only by those waits)
    assert r53.aws.calls("route53", "GetChange") == 6 and len(r53.clock.sleeps) == 4
    assert r53.txt_sets(parent) == {} and r53.txt_sets(team) == {}
    assert bridge.served == {}


def test_records_in_a_zone_nobody_delegated_to_fail_validation_naming_the_domain(
        pebble: Pebble, trust_pebble: Path, r53: Route53Env) -> None:
    served, stale = r53.zone("example.com"), r53.zone("example.com")  # a stale duplicate of the zone
    r53.bridge([served])
    publish, withdraw = r53.dns([stale]).callbacks(until=r53.clock() + 120)

    with pytest.raises(ca.AcmeError) as caught:
        ca.order_certificate(_registered(pebble), ["stale.example.com"], "ec-p256", publish, withdraw)

    message = str(caught.value)
    assert message.startswith("ACME validation for stale.example.com failed")
    assert "stale.example.com" in message.split("failed", 1)[1]
    assert r53.txt_sets(stale) == {} and r53.txt_sets(served) == {}


def test_a_name_outside_every_zone_is_refused_before_route53_is_called(pebble: Pebble, trust_pebble: Path,
                                                                       r53: Route53Env) -> None:
    publish, withdraw = r53.dns([r53.zone("example.com")]).callbacks(until=r53.clock() + 120)

    with pytest.raises(ca.AcmeError) as caught:
        ca.order_certificate(_registered(pebble), ["www.example.org"], "ec-p256", publish, withdraw)

    assert "publishing TXT _acme-challenge.www.example.org for www.example.org failed" in str(caught.value)
    assert "no hosted zone of the fleet holds _acme-challenge.www.example.org." in str(caught.value)
    assert r53.aws.calls("route53", "ChangeResourceRecordSets") == 0


def test_the_bridge_serves_a_record_only_once_route53_reports_it_insync(pebble: Pebble, trust_pebble: Path,
                                                                        r53: Route53Env) -> None:
    zone = r53.zone("example.com")
    r53.bridge([zone])
    dns = r53.dns([zone])

    def publish_without_waiting(name: str, values: list[str]) -> None:
        dns.publish_records({name: values})

    with pytest.raises(ca.AcmeError, match=r"ACME validation for hasty\.example\.com failed"):
        ca.order_certificate(_registered(pebble), ["hasty.example.com"], "ec-p256", publish_without_waiting,
                             lambda name: None)


# ---------------------------------------------------------------------------------------- Route 53 only
def test_publish_writes_one_change_per_zone_and_waits_until_insync(r53: Route53Env) -> None:
    parent, team = r53.zone("example.com"), r53.zone("team.example.com")
    dns = r53.dns([parent, team])

    change_ids = dns.publish_records({"_acme-challenge.a.example.com": ["x"], "_acme-challenge.b.example.com": ["y"],
                                      "_acme-challenge.c.team.example.com": ["z", "z"],
                                      "_ACME-challenge.C.team.example.com.": ["w"]})

    assert len(change_ids) == 2 and r53.aws.calls("route53", "ChangeResourceRecordSets") == 2
    assert not dns.insync(change_ids)
    dns.wait_insync(change_ids, until=r53.clock() + 30)
    assert dns.insync(change_ids)
    assert r53.txt_sets(team) == {"_acme-challenge.c.team.example.com.": ['"z"', '"w"']}
    assert sorted(r53.txt_sets(parent)) == ["_acme-challenge.a.example.com.", "_acme-challenge.b.example.com."]


def test_waiting_for_insync_is_bounded(r53: Route53Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(r53.aws, "route53_pending_reads", 10_000)
    dns = r53.dns([r53.zone("example.com")])
    change_ids = dns.publish_records({"_acme-challenge.example.com": ["v"]})

    with pytest.raises(DnsError, match="not INSYNC in time"):
        dns.wait_insync(change_ids, until=r53.clock() + 10)

    assert sum(r53.clock.sleeps) == 10 and r53.aws.calls("route53", "GetChange") == 6


def test_withdraw_deletes_only_its_own_values_and_tolerates_a_record_already_gone(r53: Route53Env) -> None:
    zone = r53.zone("example.com")
    name = "_acme-challenge.example.com."
    ours, theirs = r53.dns([zone]), r53.dns([zone])
    ours.publish_records({name: ["mine"]})
    theirs.publish_records({name: ["mine", "another order's"]})  # a concurrent order UPSERTed both values

    reads = r53.aws.calls("route53", "ListResourceRecordSets")
    ours.withdraw_records({name: ["mine"]})  # the DELETE as written no longer matches: read, keep theirs
    assert r53.aws.calls("route53", "ListResourceRecordSets") == reads + 1
    assert r53.txt_sets(zone) == {name: ['"another order\'s"']}
    theirs.withdraw_records({name: ["another order's"]})
    assert r53.txt_sets(zone) == {}
    ours.withdraw_records({name: ["mine"]})  # already gone: nothing to do, no error
    r53.dns([zone]).publish_records({name: ["left over"]})
    reads = r53.aws.calls("route53", "ListResourceRecordSets")
    r53.dns([zone]).withdraw_records({name: ["left over"]})  # a later invocation that remembers nothing
    assert r53.aws.calls("route53", "ListResourceRecordSets") == reads, "an exact DELETE needs no read"
    assert r53.txt_sets(zone) == {}


def test_a_long_value_is_split_into_quoted_strings_route53_accepts(r53: Route53Env) -> None:
    zone = r53.zone("example.com")
    value = "a" * 300 + 'quote" back\\slash é'
    r53.dns([zone]).publish_records({"_acme-challenge.example.com": [value]})
    stored = r53.txt_sets(zone)["_acme-challenge.example.com."]
    assert stored == ['"' + "a" * 255 + '" "' + "a" * 45 + 'quote\\" back\\\\slash \\303\\251"']


def test_names_and_zones() -> None:
    zones = [HostedZone("/hostedzone/Z1", "example.com."), HostedZone("Z2", "Team.Example.com")]
    assert challenge_name("*.A.example.com.") == "_acme-challenge.a.example.com"
    assert challenge_name("a.example.com") == "_acme-challenge.a.example.com"
    assert zone_for("_acme-challenge.x.team.example.com", zones).zone_id == "Z2"
    assert zone_for("_acme-challenge.steam.example.com", zones).zone_id == "Z1"
    assert zone_for("example.com", zones).zone_id == "Z1"
    with pytest.raises(DnsError, match=r"no hosted zone of the fleet holds a\.example\.net\."):
        zone_for("a.example.net", zones)
    assert HostedZone.from_property({"Id": "Z3", "Name": "b.example."}).domain == "b.example."
    assert quote_txt("abc") == '"abc"'


def test_two_orders_for_one_name_keep_each_others_token(r53: Route53Env) -> None:
    zone = r53.zone("example.com")
    name = "_acme-challenge.example.com."
    ec_fleet, rsa_fleet = r53.dns([zone]), r53.dns([zone])  # e.g. an ec-p256 and an rsa-2048 fleet of one name

    ec_fleet.publish_records({name: ["ec token"]})
    rsa_fleet.publish_records({name: ["rsa token"]})
    assert r53.txt_sets(zone) == {name: ['"ec token"', '"rsa token"']}

    ec_fleet.withdraw_records({name: ["ec token"]})
    assert r53.txt_sets(zone) == {name: ['"rsa token"']}
    rsa_fleet.publish_records({name: ["rsa token"]})  # publishing again adds no duplicate
    assert r53.txt_sets(zone) == {name: ['"rsa token"']}


def test_a_full_record_set_drops_its_oldest_other_values_never_ours(r53: Route53Env) -> None:
    zone = r53.zone("example.com")
    name = "_acme-challenge.example.com."
    r53.dns([zone]).publish_records({name: [f"left over {i:03}" for i in range(400)]})

    r53.dns([zone]).publish_records({name: ["new 1", "new 2"]})

    stored = r53.txt_sets(zone)[name]
    assert len(stored) == 400 and stored[:2] == ['"left over 002"', '"left over 003"']
    assert stored[-2:] == ['"new 1"', '"new 2"']
    with pytest.raises(DnsError, match="at most 400"):
        r53.dns([zone]).publish_records({name: [f"v{i}" for i in range(401)]})
