"""StrictAWS's Route 53 rules: each refused through a plain boto3 client as Route 53 refuses it (moto 5 accepts them),
and the valid call passing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from certfleet.testing import StrictAWS
from certfleet.testing.authorize import ALLOWED, Check, Principal, new_access_key_id
from certfleet.testing.strict_http import _Request
from certfleet.testing.strict_route53 import Route53Change, route53_operation, route53_params, txt_strings


@pytest.fixture
def route53(client: Callable[..., Any], aws: StrictAWS, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A Route 53 client on the strict layer; changes report INSYNC on their first GetChange unless a test says."""
    monkeypatch.setattr(aws, "route53_pending_reads", 0)
    return client("route53", "us-east-1")


@pytest.fixture
def zone(route53: Any) -> str:
    answer = route53.create_hosted_zone(Name="example.com", CallerReference=str(uuid.uuid4()))
    return str(answer["HostedZone"]["Id"])


def _txt(name: str, values: list[str], ttl: int = 60) -> dict[str, Any]:
    return {"Name": name, "Type": "TXT", "TTL": ttl, "ResourceRecords": [{"Value": v} for v in values]}


def _change(route53: Any, zone: str, *changes: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    answer: dict[str, Any] = route53.change_resource_record_sets(
        HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": a, "ResourceRecordSet": s} for a, s in changes]})
    return answer


def _refused(route53: Any, zone: str, *changes: tuple[str, dict[str, Any]]) -> str:
    with pytest.raises(ClientError) as caught:
        _change(route53, zone, *changes)
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidChangeBatch", error
    return str(error["Message"])


def _values(route53: Any, zone: str, name: str) -> list[str] | None:
    sets = route53.list_resource_record_sets(HostedZoneId=zone, StartRecordName=name, StartRecordType="TXT",
                                             MaxItems="1")["ResourceRecordSets"]
    found = [s for s in sets if s["Name"] == name and s["Type"] == "TXT"]
    return sorted(r["Value"] for r in found[0]["ResourceRecords"]) if found else None


def test_a_txt_value_must_be_quoted(route53: Any, zone: str) -> None:
    name = "_acme-challenge.example.com."
    assert "InvalidTXTRDATA" in _refused(route53, zone, ("UPSERT", _txt(name, ["token"])))
    assert "InvalidTXTRDATA" in _refused(route53, zone, ("UPSERT", _txt(name, ['"open'])))
    _change(route53, zone, ("UPSERT", _txt(name, ['"token"', '"a" "b"'])))
    assert _values(route53, zone, name) == ['"a" "b"', '"token"']


def test_a_txt_string_holds_at_most_255_characters(route53: Any, zone: str) -> None:
    name = "_acme-challenge.example.com."
    assert "TXTRDATATooLong" in _refused(route53, zone, ("UPSERT", _txt(name, ['"' + "a" * 256 + '"'])))
    _change(route53, zone, ("UPSERT", _txt(name, ['"' + "a" * 255 + '" "' + "b" * 255 + '"'])))


def test_a_record_set_holds_at_most_400_values(route53: Any, zone: str) -> None:
    name = "many.example.com."
    assert "at most 400" in _refused(route53, zone, ("CREATE", _txt(name, [f'"{i}"' for i in range(401)])))
    _change(route53, zone, ("CREATE", _txt(name, [f'"{i}"' for i in range(400)])))


def test_a_batch_holds_at_most_1000_records_an_upsert_counting_twice(route53: Any, zone: str) -> None:
    sets = [_txt(f"r{n}.example.com.", [f'"{i}"' for i in range(251)]) for n in range(2)]
    assert "1004 ResourceRecord" in _refused(route53, zone, *[("UPSERT", s) for s in sets])
    _change(route53, zone, *[("CREATE", s) for s in sets])


def test_a_batch_holds_at_most_32000_characters_of_values_an_upsert_counting_twice(route53: Any, zone: str) -> None:
    values = ['"' + f"{i:03d}" + "v" * 247 + '"' for i in range(65)]  # 65 x 252 = 16,380 characters
    assert "32760 characters" in _refused(route53, zone, ("UPSERT", _txt("big.example.com.", values)))
    _change(route53, zone, ("CREATE", _txt("big.example.com.", values)))


def test_create_of_an_existing_record_set_is_refused(route53: Any, zone: str) -> None:
    name = "_acme-challenge.example.com."
    _change(route53, zone, ("CREATE", _txt(name, ['"one"'])))
    assert "already exists" in _refused(route53, zone, ("CREATE", _txt(name, ['"two"'])))
    assert _values(route53, zone, name) == ['"one"']


def test_delete_must_match_the_current_record_set_exactly(route53: Any, zone: str) -> None:
    name = "_acme-challenge.example.com."
    _change(route53, zone, ("UPSERT", _txt(name, ['"one"', '"two"'])))
    assert "do not match" in _refused(route53, zone, ("DELETE", _txt(name, ['"one"'])))
    assert "do not match" in _refused(route53, zone, ("DELETE", _txt(name, ['"one"', '"two"'], ttl=300)))
    assert _values(route53, zone, name) == ['"one"', '"two"']
    _change(route53, zone, ("DELETE", _txt(name, ['"one"', '"two"'])))  # moto compares in order; Route 53 need not
    assert _values(route53, zone, name) is None


def test_delete_of_a_missing_record_set_is_refused(route53: Any, zone: str) -> None:
    assert "was not found" in _refused(route53, zone, ("DELETE", _txt("_acme-challenge.example.com.", ['"x"'])))


def test_changes_of_a_batch_apply_in_order(route53: Any, zone: str) -> None:
    name = "_acme-challenge.example.com."
    _change(route53, zone, ("UPSERT", _txt(name, ['"one"'])))
    assert "was not found" in _refused(route53, zone, ("DELETE", _txt(name, ['"one"'])),
                                       ("DELETE", _txt(name, ['"one"'])))
    _change(route53, zone, ("DELETE", _txt(name, ['"one"'])), ("CREATE", _txt(name, ['"two"'])))
    assert _values(route53, zone, name) == ['"two"']


def test_get_change_of_an_unknown_id_is_no_such_change(route53: Any, zone: str) -> None:
    with pytest.raises(ClientError) as caught:
        route53.get_change(Id="/change/CNEVERRETURNED")
    assert caught.value.response["Error"]["Code"] == "NoSuchChange"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_change_is_pending_for_the_first_reads_then_insync(route53: Any, zone: str, aws: StrictAWS,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws, "route53_pending_reads", 2)
    first = _change(route53, zone, ("UPSERT", _txt("a.example.com.", ['"a"'])))["ChangeInfo"]
    second = _change(route53, zone, ("UPSERT", _txt("b.example.com.", ['"b"'])))["ChangeInfo"]
    assert first["Status"] == "PENDING" and first["Id"] != second["Id"]
    statuses = [route53.get_change(Id=first["Id"])["ChangeInfo"]["Status"] for _ in range(3)]
    assert statuses == ["PENDING", "PENDING", "INSYNC"]
    assert route53.get_change(Id=second["Id"])["ChangeInfo"]["Status"] == "PENDING"


def test_observers_hear_a_change_when_submitted_and_when_insync(route53: Any, zone: str, aws: StrictAWS) -> None:
    heard: list[tuple[str, Route53Change]] = []
    stop = aws.observe_route53(lambda event, change: heard.append((event, change)))
    try:
        change_id = _change(route53, zone, ("UPSERT", _txt("_acme-challenge.example.com", ['"v"'])))["ChangeInfo"]["Id"]
        assert [e for e, _ in heard] == ["submitted"]
        route53.get_change(Id=change_id)
        route53.get_change(Id=change_id)
    finally:
        stop()
    assert [e for e, _ in heard] == ["submitted", "insync"]
    change = heard[-1][1]
    assert change.id == change_id and change.zone_id == zone.rsplit("/", 1)[-1]
    assert [(c.action, c.name, c.values) for c in change.changes] == [
        ("UPSERT", "_acme-challenge.example.com.", ('"v"',))]


def test_hosted_zone_changes_are_known_and_route53_operations_are_named(route53: Any, aws: StrictAWS) -> None:
    created = route53.create_hosted_zone(Name="other.example", CallerReference=str(uuid.uuid4()))
    assert route53.get_change(Id=created["ChangeInfo"]["Id"])["ChangeInfo"]["Status"] == "INSYNC"
    assert aws.calls("route53", "CreateHostedZone") == 1 and aws.calls("route53", "GetChange") == 1
    assert route53_operation("POST", "/2013-04-01/hostedzone/Z1/rrset/") == "ChangeResourceRecordSets"
    assert route53_operation("GET", "/2013-04-01/hostedzone/Z1/rrset?name=a") == "ListResourceRecordSets"


def test_txt_strings_reads_route53s_format() -> None:
    assert txt_strings('"a b" "c\\"d" "\\344"') == ["a b", 'c"d', "\xe4"]
    assert txt_strings("plain") is None
    assert txt_strings('"open') is None


def test_route53_params_names_what_an_iam_check_needs() -> None:
    body = (b'<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch>'
            b"<Changes><Change><Action>UPSERT</Action><ResourceRecordSet><Name>_ACME-challenge.Example.com.</Name>"
            b"<Type>TXT</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>\"v\"</Value></ResourceRecord>"
            b"</ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>")
    change = _Request("POST", "/2013-04-01/hostedzone/Z1/rrset/", {}, body, "route53", "ChangeResourceRecordSets",
                      "us-east-1")
    assert route53_params(change) == {"HostedZoneId": "Z1", "ChangeBatch": {"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": "_acme-challenge.example.com", "Type": "TXT"}}]}}
    get = _Request("GET", "/2013-04-01/change/C9", {}, b"", "route53", "GetChange", "us-east-1")
    assert route53_params(get) == {"Id": "C9"}


def test_a_role_refused_by_iam_gets_route53s_xml_error_naming_the_action(
        route53: Any, zone: str, aws: StrictAWS, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Check] = []

    class DenyChanges:
        def decide(self, check: Check) -> str:
            asked.append(check)
            return "ImplicitlyDenied" if check.action == "route53:ChangeResourceRecordSets" else ALLOWED

    monkeypatch.setattr(aws.iam, "authorizer", DenyChanges())
    principal = Principal(new_access_key_id(), "arn:aws:iam::123456789012:role/probe", "123456789012", (), "probe")
    aws.register(principal)
    role = boto3.client("route53", region_name="us-east-1", endpoint_url=aws.url,
                        aws_access_key_id=principal.access_key_id, aws_secret_access_key="x",
                        config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as caught:
        _change(role, zone, ("UPSERT", _txt("_acme-challenge.example.com.", ['"v"'])))
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert "route53:ChangeResourceRecordSets" in caught.value.response["Error"]["Message"]
    assert [c.action for c in asked] == ["route53:ChangeResourceRecordSets"]
