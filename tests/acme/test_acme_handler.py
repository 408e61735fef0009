"""lambda_acme/certfleet_acme_handler.py: the issuer (onEvent + isComplete) and the renewer, against pebble (DNS-01
through challtestsrv) and moto_server behind StrictAWS."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from acme_handler_support import (
    CERT_ID,
    REGION,
    ChallDns,
    current,
    fingerprint_of,
    held,
    import_in,
    issuer_props,
    new_secret,
    version_count,
)
from acme_support import ChallTestSrv, Pebble, new_eab_key
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from handler_support import LambdaContext, Resource, boto
from route53_bridge import Route53Bridge

import certfleet_acme as ca
import certfleet_acme_handler as handler
from certfleet._lambda.certfleet_contract import (
    ACME_CERTIFICATE_TYPE,
    ACME_SOURCE,
    FLEET_TAG,
    ID_TAG,
    MANAGED_BY,
    MANAGED_BY_TAG,
    SOURCE_TAG,
    AcmeCertificateProperties,
    AcmeRenewInput,
)
from certfleet.material.demo import DemoPKI
from certfleet.testing import MotoServer, StrictAWS

OTHER_REGION = "us-east-1"
RENEWER_SECONDS = 60.0
"""The renewer's Lambda timeout in these tests (its remaining time bounds the inline order)."""


@pytest.fixture(scope="module")
def challtestsrv(pebble_tools: None) -> Iterator[ChallTestSrv]:
    """This module's own DNS and CAs."""
    with ChallTestSrv() as server:
        yield server


@pytest.fixture(scope="module")
def pebble(challtestsrv: ChallTestSrv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    with Pebble(tmp_path_factory.mktemp("pebble"), challtestsrv.dns_address) as ca_server:
        yield ca_server


@pytest.fixture(scope="module")
def eab_pebble(challtestsrv: ChallTestSrv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    keys = {"kid-1": new_eab_key()}
    with Pebble(tmp_path_factory.mktemp("pebble-eab"), challtestsrv.dns_address, eab_keys=keys) as ca_server:
        yield ca_server


@pytest.fixture
def aws(moto_server: MotoServer, strict_aws: StrictAWS, monkeypatch: pytest.MonkeyPatch) -> StrictAWS:
    """A clean AWS for one test (moto and the strict layer reset), the environment pointed at it."""
    moto_server.reset()
    strict_aws.reset()
    strict_aws.import_rate = 1.0
    strict_aws.list_page_size = None
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": strict_aws.url, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "CERTFLEET_ACME_SECONDS": "60", "CERTFLEET_INSYNC_POLL_SECONDS": "0.05", "CERTFLEET_LAMBDA_MARGIN_SECONDS": "5",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("CERTFLEET_NOW", raising=False)
    return strict_aws


@pytest.fixture
def dns(challtestsrv: ChallTestSrv, monkeypatch: pytest.MonkeyPatch) -> ChallDns:
    """The test DNS both entry points publish through (Route 53's place)."""
    test_dns = ChallDns(challtestsrv)
    monkeypatch.setattr(handler, "dns_for", lambda props: test_dns)
    return test_dns


@pytest.fixture
def issuer(aws: StrictAWS) -> Resource:
    return Resource(handler, ACME_CERTIFICATE_TYPE, "AcmeCert")


def _renew(event: dict[str, Any], *, now: datetime.datetime) -> dict[str, Any]:
    """The renewer as its schedule runs it, with RENEWER_SECONDS of Lambda time and the clock at `now`."""
    return handler.renew(cast("AcmeRenewInput", event), LambdaContext(RENEWER_SECONDS), now=now)


def _is_complete(merged: dict[str, Any]) -> dict[str, Any]:
    return handler.is_complete(cast("handler.AcmeEvent", merged))


def _key_body(pem: str) -> str:
    return "".join(pem.strip().splitlines()[1:-1])


def test_first_issuance_runs_through_on_event_and_is_complete(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource) -> None:
    props = issuer_props(pebble.directory_url, ["shop.example.com", "*.shop.example.com"], "ec-p256")
    answer = issuer.create(props)

    material, version = current(props["MaterialSecretId"])
    assert set(material) == {"certificate", "chain", "private_key", "key_type", "not_after", "names", "fleet"}
    assert material["names"] == ["*.shop.example.com", "shop.example.com"] and material["fleet"] == props["Fleet"]
    leaf = x509.load_pem_x509_certificate(material["certificate"].encode())
    assert datetime.datetime.fromisoformat(material["not_after"]) == leaf.not_valid_after_utc
    ca.check_material(material["certificate"], material["chain"], material["private_key"],
                           domains=props["Domains"], key_type="ec-p256", now=ca.utcnow())
    assert isinstance(serialization.load_pem_private_key(material["private_key"].encode(), None),
                      ec.EllipticCurvePrivateKey)
    assert answer["PhysicalResourceId"] == props["MaterialSecretId"]
    assert answer["Data"]["VersionId"] == version
    assert answer["Data"]["Fingerprint"] == fingerprint_of(material["certificate"])
    assert dns.asked["C1"] == 2, "isComplete waited once for INSYNC"
    assert dns.published == dns.withdrawn and list(dns.published[0]) == ["_acme-challenge.shop.example.com"]
    account, _ = current(props["AccountSecretId"])
    assert account["url"].startswith("https://") and "PRIVATE KEY" in account["key"]
    assert _key_body(material["private_key"]) not in json.dumps(answer)


def test_first_issuance_with_eab_reads_the_hmac_secret(
        eab_pebble: Pebble, monkeypatch: pytest.MonkeyPatch, dns: ChallDns, issuer: Resource) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(eab_pebble.ca_bundle))
    kid, hmac_key = next(iter(eab_pebble.eab_keys.items()))
    props = issuer_props(eab_pebble.directory_url, ["eab.example.com"], "rsa-2048", EabKeyId=kid,
                         EabHmacSecretId=new_secret("eab", hmac_key))
    answer = issuer.create(props)
    material, version = current(props["MaterialSecretId"])
    assert (answer["Data"]["VersionId"], material["key_type"]) == (version, "rsa-2048")
    public = x509.load_pem_x509_certificate(material["certificate"].encode()).public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048


def test_eab_refused_by_the_ca_is_a_clear_error_and_stores_no_account(
        eab_pebble: Pebble, monkeypatch: pytest.MonkeyPatch, dns: ChallDns, issuer: Resource) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(eab_pebble.ca_bundle))
    kid, real_key = next(iter(eab_pebble.eab_keys.items()))
    wrong = "B" * len(real_key)
    props = issuer_props(eab_pebble.directory_url, ["eab.example.com"], EabKeyId=kid,
                         EabHmacSecretId=new_secret("eab", wrong))
    with pytest.raises(ca.AcmeError) as raised:
        issuer.create(props)
    message = str(raised.value)
    assert message.startswith("ACME registration for the account failed: the CA refused the External Account Binding")
    assert "(the CA said: unauthorized" in message
    assert wrong not in message and real_key not in message
    assert version_count(props["MaterialSecretId"]) == version_count(props["AccountSecretId"]) == 0
    assert dns.published == []


def test_eab_required_and_not_configured_says_what_to_give(
        eab_pebble: Pebble, monkeypatch: pytest.MonkeyPatch, dns: ChallDns, issuer: Resource) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(eab_pebble.ca_bundle))
    with pytest.raises(ca.AcmeError, match="this CA requires External Account Binding"):
        issuer.create(issuer_props(eab_pebble.directory_url, ["eab.example.com"]))


def test_a_failing_withdrawal_is_logged_and_the_issuance_stands(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, *, issuer: Resource, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def refuse(records: object) -> None:
        raise RuntimeError("AccessDenied: route53:ListResourceRecordSets")

    monkeypatch.setattr(dns, "withdraw_records", refuse)
    props = issuer_props(pebble.directory_url, ["leftover.example.com"])
    answer = issuer.create(props)
    assert answer["Data"]["VersionId"] == current(props["MaterialSecretId"])[1]
    assert ("could not withdraw the dns-01 TXT records _acme-challenge.leftover.example.com: RuntimeError: "
            "AccessDenied: route53:ListResourceRecordSets") in caplog.text


def test_retry_and_no_change_update_order_nothing(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource) -> None:
    props = issuer_props(pebble.directory_url, ["again.example.com"])
    first = issuer.create(props)
    retried = issuer.create(props)  # CloudFormation retried the Create
    updated = issuer.update(dict(props))
    assert len(dns.published) == 1
    assert version_count(props["MaterialSecretId"]) == 1
    assert first["Data"]["VersionId"] == retried["Data"]["VersionId"] == updated["Data"]["VersionId"]


def test_update_without_a_domain_orders_again(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource) -> None:
    props = issuer_props(pebble.directory_url, ["keep.example.com", "drop.example.com"])
    first = issuer.create(props)
    updated = issuer.update({**props, "Domains": ["keep.example.com"]})
    assert first["Data"]["VersionId"] != updated["Data"]["VersionId"] and len(dns.published) == 2
    leaf = x509.load_pem_x509_certificate(current(props["MaterialSecretId"])[0]["certificate"].encode())
    assert ca.certificate_names(leaf) == ["keep.example.com"]


def test_update_with_a_new_domain_orders_again(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource) -> None:
    props = issuer_props(pebble.directory_url, ["one.example.com"])
    first = issuer.create(props)
    updated = issuer.update({**props, "Domains": ["one.example.com", "two.example.com"]})
    assert first["Data"]["VersionId"] != updated["Data"]["VersionId"]
    material, _ = current(props["MaterialSecretId"])
    ca.check_material(material["certificate"], material["chain"], material["private_key"],
                           domains=["one.example.com", "two.example.com"], key_type="ec-p256", now=ca.utcnow())


def test_a_new_directory_registers_a_new_account_and_orders_again(
        pebble: Pebble, eab_pebble: Pebble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, dns: ChallDns,
        issuer: Resource) -> None:
    """Moving to another CA (here: one requiring EAB) is an update: its own account, a new order, a new version."""
    both = tmp_path / "both-cas.pem"
    both.write_bytes(pebble.ca_bundle.read_bytes() + eab_pebble.ca_bundle.read_bytes())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(both))
    props = issuer_props(pebble.directory_url, ["move.example.com"])
    first = issuer.create(props)
    first_account, _ = current(props["AccountSecretId"])
    kid, hmac_key = next(iter(eab_pebble.eab_keys.items()))
    moved = {**props, "DirectoryUrl": eab_pebble.directory_url, "EabKeyId": kid,
             "EabHmacSecretId": new_secret("eab", hmac_key)}
    second = issuer.update(moved)
    account, _ = current(props["AccountSecretId"])
    assert account["directory"] == eab_pebble.directory_url and account["key"] != first_account["key"]
    assert first["Data"]["VersionId"] != second["Data"]["VersionId"] and len(dns.published) == 2


def test_is_complete_comes_back_while_validation_is_pending(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource, monkeypatch: pytest.MonkeyPatch) -> None:
    """An isComplete out of time before the CA validated leaves the records up; the next one picks the order up."""
    props = issuer_props(pebble.directory_url, ["pending.example.com"])
    merged = issuer.on_event(issuer.event("Create", props))
    monkeypatch.setenv("CERTFLEET_ACME_SECONDS", "0")
    assert _is_complete(merged) == {"IsComplete": False}  # not in sync yet
    assert _is_complete(merged) == {"IsComplete": False}  # in sync, answered, no time left to wait
    assert dns.withdrawn == [] and version_count(props["MaterialSecretId"]) == 0
    monkeypatch.setenv("CERTFLEET_ACME_SECONDS", "60")
    done = _is_complete(merged)
    assert done["IsComplete"] is True and done["Data"]["VersionId"] == current(props["MaterialSecretId"])[1]
    assert dns.withdrawn == dns.published and len(dns.published) == 1


def test_an_order_finalized_by_a_lost_invocation_is_a_clear_error_and_a_retry_orders_anew(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource) -> None:
    props = issuer_props(pebble.directory_url, ["lost.example.com"])
    merged = issuer.on_event(issuer.event("Create", props))
    acme = handler.account_client(cast("AcmeCertificateProperties", props), boto("secretsmanager"), register=False)
    orderr = ca.fetch_order(acme, merged["Data"]["OrderUrl"])
    ca.answer_dns01(acme, orderr)
    ca.finish_order(acme, orderr, "ec-p256", datetime.datetime.now() + datetime.timedelta(seconds=30))
    _is_complete(merged)  # not in sync yet
    with pytest.raises(ca.AcmeError, match="was finalized by an invocation that did not finish: its key is gone"):
        _is_complete(merged)
    assert version_count(props["MaterialSecretId"]) == 0 and dns.withdrawn == dns.published
    retried = issuer.create(props)
    assert retried["Data"]["VersionId"] == current(props["MaterialSecretId"])[1]


def test_delete_touches_nothing(pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource) -> None:
    props = issuer_props(pebble.directory_url, ["gone.example.com"])
    issuer.create(props)
    answer = issuer.delete()
    assert answer["PhysicalResourceId"] == props["MaterialSecretId"]
    assert version_count(props["MaterialSecretId"]) == 1 and len(dns.published) == 1


# --- Route 53 (certfleet_acme_dns) as the DNS, served to pebble by the bridge --------------------------------------

@pytest.fixture
def route53_zone(aws: StrictAWS, challtestsrv: ChallTestSrv,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A hosted zone example.com, served to pebble from what Route 53 holds once INSYNC (two PENDING reads first)."""
    monkeypatch.setattr(aws, "route53_pending_reads", 2)
    zone = boto("route53").create_hosted_zone(Name="example.com", CallerReference=str(uuid.uuid4()))["HostedZone"]
    with Route53Bridge(aws, challtestsrv, [zone["Id"]]) as bridge:
        yield {"Id": str(zone["Id"]), "Name": str(zone["Name"])}
        assert bridge.served == {}, "every challenge record was withdrawn"


def _txt_sets(zone_id: str) -> list[str]:
    sets = boto("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return [s["Name"] for s in sets if s["Type"] == "TXT"]


def _route53_calls(aws: StrictAWS, before: dict[str, int] | None = None) -> dict[str, int]:
    """Route 53 requests per operation (since ``before``): what the construct must grant each entry point."""
    counts: dict[str, int] = {}
    for call, n in aws.call_counts.items():
        if call.service == "route53":
            counts[call.operation] = counts.get(call.operation, 0) + n
    return {op: n - (before or {}).get(op, 0) for op, n in counts.items() if n != (before or {}).get(op, 0)}


def test_issuer_publishes_in_route53_and_waits_for_insync(
        pebble: Pebble, trust_pebble: Path, route53_zone: dict[str, str], issuer: Resource, aws: StrictAWS) -> None:
    """onEvent reads each TXT set (to keep another order's values) and writes it; isComplete polls GetChange until
    INSYNC (twice PENDING here), then deletes exactly what was written: no other Route 53 call."""
    props = {**issuer_props(pebble.directory_url, ["r53.example.com", "*.r53.example.com"]),
             "HostedZones": [route53_zone]}
    before = _route53_calls(aws)
    merged = issuer.on_event(issuer.event("Create", props))
    assert _route53_calls(aws, before) == {"ListResourceRecordSets": 1, "ChangeResourceRecordSets": 1}
    before = _route53_calls(aws)
    answer = _is_complete(merged)
    for _ in range(10):
        if answer["IsComplete"]:
            break
        answer = _is_complete(merged)
    assert answer["Data"]["VersionId"] == current(props["MaterialSecretId"])[1]
    assert _route53_calls(aws, before) == {"GetChange": 3, "ChangeResourceRecordSets": 1}, \
        "isComplete came back until Route 53 said INSYNC, then withdrew"
    assert _txt_sets(route53_zone["Id"]) == []


def test_renewer_publishes_in_route53_inline(
        pebble: Pebble, trust_pebble: Path, route53_zone: dict[str, str], issuer: Resource, aws: StrictAWS) -> None:
    props = {**issuer_props(pebble.directory_url, ["www.example.com"]), "HostedZones": [route53_zone]}
    issuer.create(props)
    material, _ = current(props["MaterialSecretId"])
    arns = import_in([REGION], material)
    event = {**props, "Regions": [REGION], "CertificateId": CERT_ID}
    before = _route53_calls(aws)
    summary = _renew(event, now=_years_later(4))
    assert summary["Renewed"] is True and summary["Imported"] == arns
    assert _route53_calls(aws, before) == {"ListResourceRecordSets": 1, "ChangeResourceRecordSets": 2, "GetChange": 3}
    assert held(arns[REGION]) == fingerprint_of(current(props["MaterialSecretId"])[0]["certificate"])
    assert _txt_sets(route53_zone["Id"]) == []


# --- the renewer -----------------------------------------------------------------------------------------------------

def _deployed(directory_url: str, issuer: Resource) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """A first deploy: the issuer's material, imported in two regions. (renewer input, ARNs, material)."""
    props = issuer_props(directory_url, ["www.example.com", "example.com"], "ec-p384")
    issuer.create(props)
    material, _ = current(props["MaterialSecretId"])
    arns = import_in([REGION, OTHER_REGION], material)
    return {**props, "Regions": [REGION, OTHER_REGION], "CertificateId": CERT_ID}, arns, material


def _imports(aws: StrictAWS) -> dict[str, int]:
    return {region: aws.calls("acm", "ImportCertificate", region) for region in (REGION, OTHER_REGION)}


def _years_later(years: int) -> datetime.datetime:
    return ca.utcnow() + datetime.timedelta(days=365 * years)


def test_renewer_before_the_window_writes_and_imports_nothing(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource, aws: StrictAWS) -> None:
    event, arns, material = _deployed(pebble.directory_url, issuer)
    before = _imports(aws)
    summary = _renew(event, now=ca.utcnow() + datetime.timedelta(days=1))
    assert summary["Renewed"] is False and summary["Imported"] == {}
    assert summary["Reason"].startswith("a third of the lifetime will be left at")  # pebble 2.4 offers no ARI
    assert _imports(aws) == before and version_count(event["MaterialSecretId"]) == 1
    assert {held(arn) for arn in arns.values()} == {fingerprint_of(material["certificate"])}
    assert len(dns.published) == 1


def test_renewer_in_the_window_renews_and_reimports_the_same_arns(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource, aws: StrictAWS) -> None:
    event, arns, old = _deployed(pebble.directory_url, issuer)
    before = _imports(aws)
    summary = _renew(event, now=_years_later(4))  # pebble: 5-year certificates

    new, version = current(event["MaterialSecretId"])
    assert summary["Renewed"] is True and summary["VersionId"] == version
    assert version_count(event["MaterialSecretId"]) == 2
    assert new["key_type"] == "ec-p384" and new["private_key"] != old["private_key"]
    assert new["certificate"] != old["certificate"]
    assert summary["Imported"] == arns
    assert {r: n - before[r] for r, n in _imports(aws).items()} == {REGION: 1, OTHER_REGION: 1}
    assert {held(arn) for arn in arns.values()} == {fingerprint_of(new["certificate"])}
    assert _key_body(new["private_key"]) not in json.dumps(summary)

    again = _renew(event, now=_years_later(1))  # the new one is not due
    assert (again["Renewed"], again["Imported"], version_count(event["MaterialSecretId"])) == (False, {}, 2)


def test_renewer_reimports_where_a_region_still_holds_the_old_leaf(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource, aws: StrictAWS) -> None:
    """A run whose import failed in one region (the secret moved on) is finished by the next, not-due, run."""
    event, arns, old = _deployed(pebble.directory_url, issuer)
    _renew(event, now=_years_later(4))
    aws.import_rate = 100.0  # the test's own re-import of the old leaf, just after the renewer's
    chain = {"CertificateChain": old["chain"].encode()}
    boto("acm", OTHER_REGION).import_certificate(
        CertificateArn=arns[OTHER_REGION], Certificate=old["certificate"].encode(),
        PrivateKey=old["private_key"].encode(), **chain)
    summary = _renew(event, now=_years_later(1))
    assert summary["Renewed"] is False and summary["Imported"] == {OTHER_REGION: arns[OTHER_REGION]}
    assert held(arns[OTHER_REGION]) == fingerprint_of(current(event["MaterialSecretId"])[0]["certificate"])


def test_a_region_without_the_certificate_fails_the_run_after_every_other_region_is_done(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource, aws: StrictAWS) -> None:
    event, arns, _ = _deployed(pebble.directory_url, issuer)
    with pytest.raises(ca.AcmeError) as raised:
        _renew({**event, "Regions": ["ap-northeast-1", REGION, OTHER_REGION]}, now=_years_later(4))
    assert "could not import it everywhere: ap-northeast-1: 0 certificates tagged certfleet:fleet=Certs" in str(
        raised.value)
    assert f"{SOURCE_TAG}={ACME_SOURCE} (expected one: deploy the fleet)" in str(raised.value)
    new, _ = current(event["MaterialSecretId"])
    assert {held(arn) for arn in arns.values()} == {fingerprint_of(new["certificate"])}


def test_renewer_reimports_only_a_certificate_of_the_acme_source(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource, aws: StrictAWS) -> None:
    """A certificate with the fleet's and the id's tags but not the ACME source's (imported from files under the same
    construct path) is not the renewer's to re-import: the run fails for its region and leaves it as it was."""
    event, arns, old = _deployed(pebble.directory_url, issuer)
    boto("acm", OTHER_REGION).remove_tags_from_certificate(
        CertificateArn=arns[OTHER_REGION], Tags=[{"Key": SOURCE_TAG, "Value": ACME_SOURCE}])
    with pytest.raises(ca.AcmeError, match=f"{OTHER_REGION}: 0 certificates tagged {FLEET_TAG}=Certs, "
                                            f"{ID_TAG}={CERT_ID}, {SOURCE_TAG}={ACME_SOURCE}"):
        _renew(event, now=_years_later(4))
    new, _ = current(event["MaterialSecretId"])
    assert held(arns[REGION]) == fingerprint_of(new["certificate"])
    assert held(arns[OTHER_REGION]) == fingerprint_of(old["certificate"])
    tags = {t["Key"]: t["Value"] for t in boto("acm", OTHER_REGION).list_tags_for_certificate(
        CertificateArn=arns[OTHER_REGION])["Tags"]}
    assert tags[MANAGED_BY_TAG] == MANAGED_BY and SOURCE_TAG not in tags


def test_ca_outage_raises_and_leaves_the_old_certificate_everywhere(
        challtestsrv: ChallTestSrv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, dns: ChallDns,
        issuer: Resource, aws: StrictAWS) -> None:
    with Pebble(tmp_path / "pebble", challtestsrv.dns_address) as short_lived:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(short_lived.ca_bundle))
        event, arns, old = _deployed(short_lived.directory_url, issuer)
        _, version = current(event["MaterialSecretId"])
    before = _imports(aws)
    with pytest.raises(ca.AcmeError) as raised:
        _renew(event, now=_years_later(4))
    assert "cannot reach the CA" in str(raised.value) and short_lived.directory_url in str(raised.value)
    assert current(event["MaterialSecretId"])[1] == version and version_count(event["MaterialSecretId"]) == 1
    assert _imports(aws) == before
    assert {held(arn) for arn in arns.values()} == {fingerprint_of(old["certificate"])}


def test_renewer_out_of_time_waiting_for_dns_raises_and_withdraws(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource, aws: StrictAWS) -> None:
    """The inline order is bounded by the Lambda's remaining time (here 1 s after the 5 s margin)."""
    event, arns, old = _deployed(pebble.directory_url, issuer)
    dns.lag = 10**6  # never in sync
    with pytest.raises(ca.AcmeError, match="were not in sync before the renewer's time ran out: the next run retries"):
        handler.renew(cast("AcmeRenewInput", event), LambdaContext(6.0), now=_years_later(4))
    assert len(dns.published) == len(dns.withdrawn) == 2 and version_count(event["MaterialSecretId"]) == 1
    assert {held(arn) for arn in arns.values()} == {fingerprint_of(old["certificate"])}


def test_material_failing_a_check_is_never_stored_or_imported(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, *, issuer: Resource, aws: StrictAWS,
        monkeypatch: pytest.MonkeyPatch, ec_pki: DemoPKI) -> None:
    """The CA hands back a chain whose intermediate did not sign the certificate."""
    event, arns, old = _deployed(pebble.directory_url, issuer)
    real_finalize = ca.finalize

    def wrong_chain(*args: Any, **kwargs: Any) -> ca.Issued:
        issued = real_finalize(*args, **kwargs)
        return ca.Issued(issued.certificate_pem, ec_pki.chain_pem().decode(), issued.private_key_pem,
                         issued.not_before, issued.not_after)

    monkeypatch.setattr(ca, "finalize", wrong_chain)
    before = _imports(aws)
    with pytest.raises(ca.MaterialError) as raised:
        _renew(event, now=_years_later(4))
    assert "the chain does not link" in str(raised.value) and "Nothing was stored or imported" in str(raised.value)
    assert version_count(event["MaterialSecretId"]) == 1 and _imports(aws) == before
    assert {held(arn) for arn in arns.values()} == {fingerprint_of(old["certificate"])}
    assert dns.published == dns.withdrawn


def test_the_account_key_round_trips_through_its_secret_text() -> None:
    key = ca.new_account_key()
    assert ca.account_key_from_pem(ca.account_key_pem(key)) == key


# --- material checks (no CA) -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "name", "covered"), [
    ("www.example.com", "WWW.example.com.", True),
    ("*.example.com", "a.example.com", True),
    ("*.example.com", "a.b.example.com", False),      # one label only
    ("*.example.com", "example.com", False),          # not the base name
    ("*.example.com", "*.example.com", True),
    ("a.example.com", "*.example.com", False),        # a declared wildcard needs the wildcard
])
def test_names_cover_as_acm_matches(pattern: str, name: str, covered: bool) -> None:
    assert ca.covers(pattern, name) is covered


def test_check_material_lists_every_problem(ec_pki: DemoPKI) -> None:
    leaf = ec_pki.leaf(("www.example.com",), key_type="ec-p256")
    other = ec_pki.leaf(("www.example.com",), key_type="ec-p256")
    good = (leaf.pem().decode(), ec_pki.chain_pem().decode(), leaf.key_pem().decode())
    ca.check_material(*good, domains=["www.example.com"], key_type="ec-p256", now=ca.utcnow())
    with pytest.raises(ca.MaterialError) as raised:
        ca.check_material(leaf.pem().decode(), ec_pki.root.pem().decode(), other.key_pem().decode(),
                               domains=["www.example.com", "api.example.com"], key_type="ec-p384", now=ca.utcnow())
    message = str(raised.value)
    for problem in ("do not cover api.example.com", "the chain does not link", "the private key does not match",
                    "the key type is ec-p256, not ec-p384"):
        assert problem in message
    assert _key_body(other.key_pem().decode()) not in message


def test_renewer_refuses_a_key_type_change_before_ordering(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource, aws: StrictAWS) -> None:
    event, _, _ = _deployed(pebble.directory_url, issuer)
    with pytest.raises(ca.AcmeError, match="ACM re-imports only the same key type"):
        _renew({**event, "KeyType": "ec-p256"}, now=_years_later(4))
    assert len(dns.published) == 1


def test_a_region_not_deployed_yet_is_skipped_by_a_run_soon_after_the_issuance(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource, aws: StrictAWS) -> None:
    """The schedule starts with the primary stack: a daily run before a regional stack is deployed does not fail (that
    stack's first import takes the newest material); two days later the same gap fails the run."""
    event, _, _ = _deployed(pebble.directory_url, issuer)
    later = {**event, "Regions": ["ap-northeast-1", REGION, OTHER_REGION]}
    summary = _renew(later, now=ca.utcnow())
    assert (summary["Renewed"], summary["Imported"]) == (False, {})
    with pytest.raises(ca.AcmeError, match="ap-northeast-1: 0 certificates tagged"):
        _renew(later, now=ca.utcnow() + datetime.timedelta(hours=49))


class _LateValidation:
    """Stands in for ca.wait_validated: validates for real, then moves the handler's clock so that only `left`
    seconds of `budget` remain (a validation that ended just before the deadline)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, budget: float, left: float) -> None:
        self.real = ca.wait_validated
        self.skew = 0.0
        self.budget, self.left = budget, left
        self.calls = 0
        real_clock = handler.clock
        monkeypatch.setattr(handler, "clock", lambda: real_clock() + self.skew)
        monkeypatch.setattr(ca, "wait_validated", self)

    def __call__(self, *args: Any) -> Any:
        validated = self.real(*args)
        self.calls += 1
        self.skew += self.budget - self.left
        return validated


def test_is_complete_finalizes_only_with_time_left_and_the_next_poll_finalizes_the_ready_order(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource, monkeypatch: pytest.MonkeyPatch) -> None:
    props = issuer_props(pebble.directory_url, ["late.example.com"])
    merged = issuer.on_event(issuer.event("Create", props))
    assert _is_complete(merged) == {"IsComplete": False}  # not in sync yet
    late = _LateValidation(monkeypatch, budget=60, left=1)

    assert _is_complete(merged) == {"IsComplete": False}  # validated with 1 s left: no CSR sent

    assert late.calls == 1 and dns.withdrawn == [] and version_count(props["MaterialSecretId"]) == 0
    acme = handler.account_client(cast("AcmeCertificateProperties", props), boto("secretsmanager"), register=False)
    assert ca.fetch_order(acme, merged["Data"]["OrderUrl"]).body.status.name == "ready"
    monkeypatch.setattr(ca, "wait_validated", late.real)
    done = _is_complete(merged)
    assert done["IsComplete"] is True and done["Data"]["VersionId"] == current(props["MaterialSecretId"])[1]
    assert dns.withdrawn == dns.published


def test_renewer_validated_too_late_to_finalize_raises_before_sending_a_csr(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, *, issuer: Resource, aws: StrictAWS,
        monkeypatch: pytest.MonkeyPatch) -> None:
    event, arns, old = _deployed(pebble.directory_url, issuer)
    finalized: list[object] = []
    real_finalize = ca.finalize

    def counted(*args: Any) -> ca.Issued:
        finalized.append(args)
        return real_finalize(*args)

    monkeypatch.setattr(ca, "finalize", counted)
    late = _LateValidation(monkeypatch, budget=RENEWER_SECONDS - 5, left=1)

    with pytest.raises(ca.AcmeError, match="nothing was finalized; the next run retries"):
        _renew(event, now=_years_later(4))

    assert late.calls == 1 and finalized == [] and version_count(event["MaterialSecretId"]) == 1
    assert len(dns.withdrawn) == len(dns.published) == 2
    assert {held(arn) for arn in arns.values()} == {fingerprint_of(old["certificate"])}
    monkeypatch.setattr(ca, "wait_validated", late.real)
    assert _renew(event, now=_years_later(4))["Renewed"] is True and len(finalized) == 1


def test_renewer_renews_when_the_certificates_names_differ_from_the_declared_domains(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource, aws: StrictAWS) -> None:
    event, arns, _ = _deployed(pebble.directory_url, issuer)  # www.example.com + example.com
    summary = _renew({**event, "Domains": ["WWW.example.com."]}, now=ca.utcnow() + datetime.timedelta(days=1))
    assert summary["Renewed"] is True
    assert summary["Reason"] == "the certificate's names differ from the declared domains"
    new, _ = current(event["MaterialSecretId"])
    assert new["names"] == ["www.example.com"] and summary["Imported"] == arns
    again = _renew({**event, "Domains": ["www.example.com"]}, now=ca.utcnow() + datetime.timedelta(days=1))
    assert again["Renewed"] is False


def test_renewer_refuses_another_fleets_material_and_imports_nothing(
        pebble: Pebble, trust_pebble: Path, dns: ChallDns, issuer: Resource, aws: StrictAWS) -> None:
    event, arns, old = _deployed(pebble.directory_url, issuer)
    before = _imports(aws)
    with pytest.raises(ca.AcmeError, match="holds the material of fleet 'Certs', not of 'Other'"):
        _renew({**event, "Fleet": "Other"}, now=_years_later(4))
    assert _imports(aws) == before and version_count(event["MaterialSecretId"]) == 1 and len(dns.published) == 1
    assert {held(arn) for arn in arns.values()} == {fingerprint_of(old["certificate"])}
