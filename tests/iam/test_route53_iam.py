"""Route 53 IAM through StrictAWS: the ACME renewer's policy (its zone only, its ``_acme-challenge`` TXT names only,
UPSERT and DELETE only) judged on each request a plain boto3 client signed as that role makes, as AWS judges it.

Each refusal test fails without the Route 53 translation (checked by removing it): a call judged on ``*`` with no
condition keys is allowed, since iam-simulate matches a request resource ``*`` with the policy's zone ARN and
ForAllValues holds for a missing key. Each also makes the allowed change first, as a positive control."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from iam_support import ALLOWED, IamEvaluator, Request, SessionAuthorizer

from certfleet.testing import MotoServer, StrictAWS
from certfleet.testing.authorize import Principal, new_access_key_id, normalized_record_name

ACCOUNT = "123456789012"
NAMES = ["_acme-challenge.example.com", "_acme-challenge.www.example.com"]
NAMES_KEY = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
TYPES_KEY = "route53:ChangeResourceRecordSetsRecordTypes"
ACTIONS_KEY = "route53:ChangeResourceRecordSetsActions"
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "",
       "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


def renewer_policy(zone_id: str, names: list[str] = NAMES) -> dict[str, Any]:
    """The renewer's Route 53 statements as ACME-DESIGN.md states them (zone id without ``/hostedzone/``)."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "route53:ChangeResourceRecordSets",
         "Resource": f"arn:aws:route53:::hostedzone/{zone_id}",
         "Condition": {"ForAllValues:StringEquals": {NAMES_KEY: names, TYPES_KEY: ["TXT"],
                                                     ACTIONS_KEY: ["UPSERT", "DELETE"]}}},
        {"Effect": "Allow", "Action": "route53:ListResourceRecordSets",
         "Resource": f"arn:aws:route53:::hostedzone/{zone_id}"},
        {"Effect": "Allow", "Action": "route53:GetChange", "Resource": "arn:aws:route53:::change/*"},
    ]}


@pytest.fixture(scope="module")
def judge() -> Iterator[SessionAuthorizer]:
    """An evaluator of this module's own: its probe role stays out of the session's granted-versus-called report."""
    authorizer = SessionAuthorizer()
    yield authorizer
    authorizer.close()


@pytest.fixture
def aws(judge: SessionAuthorizer, monkeypatch: pytest.MonkeyPatch) -> Iterator[StrictAWS]:
    moto = MotoServer.shared()
    moto.reset()
    with mock.patch.dict(os.environ, ENV), StrictAWS(moto.url, authorizer=judge, import_rate=None) as strict:
        monkeypatch.setattr(strict, "route53_pending_reads", 0)
        yield strict


def _client(aws: StrictAWS, principal: Principal | None = None) -> Any:
    """A Route 53 client signed with ``principal``'s access key (None: the test's own, unchecked)."""
    make: Callable[..., Any] = boto3.client
    keys = {"aws_access_key_id": principal.access_key_id, "aws_secret_access_key": "x"} if principal else {}
    return make("route53", endpoint_url=aws.url, region_name="us-east-1",
                config=Config(retries={"total_max_attempts": 1}), **keys)


def _zone(aws: StrictAWS, name: str = "example.com") -> str:
    """A new hosted zone's bare id (``Z...``), made with the test's own credentials."""
    answer = _client(aws).create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()))
    return str(answer["HostedZone"]["Id"]).rsplit("/", 1)[-1]


@pytest.fixture
def zone(aws: StrictAWS) -> str:
    return _zone(aws)


@pytest.fixture
def renewer(aws: StrictAWS, zone: str) -> Any:
    """A boto3 Route 53 client signed as a role holding the renewer's policy for ``zone``."""
    principal = Principal(new_access_key_id(), f"arn:aws:iam::{ACCOUNT}:role/acme-renewer", ACCOUNT,
                          (renewer_policy(zone),), "probe")
    aws.register(principal)
    return _client(aws, principal)


def _txt(name: str, value: str = '"token"') -> dict[str, Any]:
    return {"Name": name, "Type": "TXT", "TTL": 60, "ResourceRecords": [{"Value": value}]}


def _a(name: str) -> dict[str, Any]:
    return {"Name": name, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.44"}]}


def _change(client: Any, zone: str, *changes: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    answer: dict[str, Any] = client.change_resource_record_sets(
        HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": a, "ResourceRecordSet": s} for a, s in changes]})
    return answer


def _denied(client: Any, zone: str, *changes: tuple[str, dict[str, Any]]) -> None:
    with pytest.raises(ClientError) as caught:
        _change(client, zone, *changes)
    error = caught.value.response["Error"]
    assert error["Code"] == "AccessDenied", error
    assert "not authorized to perform: route53:ChangeResourceRecordSets" in error["Message"], error["Message"]


def _names(aws: StrictAWS, zone: str) -> set[tuple[str, str]]:
    sets = _client(aws).list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return {(s["Name"], s["Type"]) for s in sets if s["Type"] not in {"NS", "SOA"}}


def _allowed_upsert(renewer: Any, zone: str) -> None:
    """The positive control each refusal test starts with."""
    _change(renewer, zone, ("UPSERT", _txt("_acme-challenge.example.com.")))


def test_the_renewer_may_upsert_and_delete_its_challenge_records(aws: StrictAWS, renewer: Any, zone: str) -> None:
    """GIVEN the renewer's role WHEN it upserts both its TXT records in one batch, lists the zone, reads the change's
    status and deletes them THEN each call is allowed and the records come and go"""
    change = _change(renewer, zone, ("UPSERT", _txt("_acme-challenge.example.com.")),
                     ("UPSERT", _txt("_acme-challenge.www.example.com.")))
    assert _names(aws, zone) == {("_acme-challenge.example.com.", "TXT"), ("_acme-challenge.www.example.com.", "TXT")}
    assert renewer.get_change(Id=change["ChangeInfo"]["Id"])["ChangeInfo"]["Status"] == "INSYNC"
    assert renewer.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    _change(renewer, zone, ("DELETE", _txt("_acme-challenge.example.com.")),
            ("DELETE", _txt("_acme-challenge.www.example.com.")))
    assert _names(aws, zone) == set()


def test_record_names_are_judged_normalized(aws: StrictAWS, renewer: Any, zone: str) -> None:
    """GIVEN the policy's lower-case names without the final dot WHEN the renewer writes its name in capitals
    and without the final dot THEN Route 53's normalized name matches and the change is allowed"""
    _change(renewer, zone, ("UPSERT", _txt("_ACME-Challenge.WWW.example.com")))  # moto 5 matches the zone by case
    assert ("_acme-challenge.www.example.com.", "TXT") in {(n.lower(), t) for n, t in _names(aws, zone)}


def test_an_a_record_at_a_granted_name_is_refused(aws: StrictAWS, renewer: Any, zone: str) -> None:
    _allowed_upsert(renewer, zone)
    _denied(renewer, zone, ("UPSERT", _a("_acme-challenge.example.com.")))
    assert ("_acme-challenge.example.com.", "A") not in _names(aws, zone)


def test_a_txt_record_at_another_name_is_refused(aws: StrictAWS, renewer: Any, zone: str) -> None:
    _allowed_upsert(renewer, zone)
    _denied(renewer, zone, ("UPSERT", _txt("www.example.com.")))
    _denied(renewer, zone, ("UPSERT", _txt("_acme-challenge.mail.example.com.")))
    assert ("www.example.com.", "TXT") not in _names(aws, zone)


def test_a_record_in_another_zone_is_refused(aws: StrictAWS, renewer: Any, zone: str) -> None:
    """GIVEN a second zone of the same name (another team's, say) WHEN the renewer writes its own challenge name
    there THEN the zone ARN is not granted and the change is refused, and listing that zone too"""
    _allowed_upsert(renewer, zone)
    other = _zone(aws)
    _denied(renewer, other, ("UPSERT", _txt("_acme-challenge.example.com.")))
    assert _names(aws, other) == set()
    with pytest.raises(ClientError) as caught:
        renewer.list_resource_record_sets(HostedZoneId=other)
    assert "route53:ListResourceRecordSets" in caught.value.response["Error"]["Message"]


def test_an_action_not_granted_is_refused(aws: StrictAWS, renewer: Any, zone: str) -> None:
    """GIVEN UPSERT and DELETE granted WHEN the renewer CREATEs one of its own names THEN it is refused"""
    _allowed_upsert(renewer, zone)
    _denied(renewer, zone, ("CREATE", _txt("_acme-challenge.www.example.com.")))
    assert ("_acme-challenge.www.example.com.", "TXT") not in _names(aws, zone)


def test_a_batch_mixing_an_allowed_and_a_forbidden_change_is_refused_whole(
        aws: StrictAWS, renewer: Any, zone: str) -> None:
    """GIVEN one change the policy allows and one it does not WHEN both come in one batch THEN every value of each
    multi-valued key must match (ForAllValues): the whole batch is refused and neither record is written"""
    _allowed_upsert(renewer, zone)
    for forbidden in (("UPSERT", _a("_acme-challenge.www.example.com.")), ("UPSERT", _txt("www.example.com.")),
                      ("CREATE", _txt("_acme-challenge.www.example.com."))):
        _denied(renewer, zone, ("UPSERT", _txt("_acme-challenge.www.example.com.")), forbidden)
    assert _names(aws, zone) == {("_acme-challenge.example.com.", "TXT")}


def test_a_wildcard_name_is_judged_in_its_octal_form(aws: StrictAWS, zone: str) -> None:
    """GIVEN a role granted the normalized wildcard name ``\\052.example.com`` WHEN it writes ``*.example.com``
    THEN the name is judged as Route 53 normalizes it (``*`` as ``\\052``): allowed; a plain name is refused"""
    principal = Principal(new_access_key_id(), f"arn:aws:iam::{ACCOUNT}:role/wildcard", ACCOUNT,
                          (renewer_policy(zone, ["\\052.example.com"]),), "probe")
    aws.register(principal)
    role = _client(aws, principal)
    _change(role, zone, ("UPSERT", _txt("*.example.com.")))
    _denied(role, zone, ("UPSERT", _txt("_acme-challenge.example.com.")))


def test_the_null_guard_lets_every_real_batch_through(aws: StrictAWS, zone: str) -> None:
    """GIVEN the renewer's policy with a Null guard on the three keys (README: ForAllValues alone is true when a key
    is missing) WHEN the role changes its records THEN the keys are present on each batch and it is allowed, while the
    guard leaves the refusals as they were"""
    policy = renewer_policy(zone)
    policy["Statement"][0]["Condition"]["Null"] = {NAMES_KEY: "false", TYPES_KEY: "false", ACTIONS_KEY: "false"}
    principal = Principal(new_access_key_id(), f"arn:aws:iam::{ACCOUNT}:role/guarded", ACCOUNT, (policy,), "probe")
    aws.register(principal)
    role = _client(aws, principal)
    _change(role, zone, ("UPSERT", _txt("_acme-challenge.example.com.")))
    _change(role, zone, ("DELETE", _txt("_acme-challenge.example.com.")))
    _denied(role, zone, ("UPSERT", _a("_acme-challenge.example.com.")))


def test_normalized_record_names_follow_route53s_rules() -> None:
    """Lower case, no final dot, characters beyond a-z 0-9 - _ . as a backslash and three octal digits (Route 53
    Developer Guide, 'Normalizing the Route 53 condition key values')."""
    assert normalized_record_name("_ACME-Challenge.Example.COM.") == "_acme-challenge.example.com"
    assert normalized_record_name("*.example.com") == "\\052.example.com"
    assert normalized_record_name("\\052.example.com.") == "\\052.example.com"
    assert normalized_record_name("a b.example.com") == "a\\040b.example.com"


def _decide(iam: IamEvaluator, condition: dict[str, Any], context: dict[str, str | list[str]]) -> bool:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "route53:ChangeResourceRecordSets",
                                                      "Resource": "*", "Condition": condition}]}
    request = Request("route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z1", context=context)
    return iam.decide(request, [policy]) == ALLOWED


def test_the_evaluator_knows_the_keys_and_their_set_operators(iam: IamEvaluator) -> None:
    """iam-simulate takes the three keys as multi-valued (it ignores none) and applies ForAllValues:StringLike, and
    ForAllValues with no values is vacuously true while a Null guard refuses the missing key (as AWS documents)."""
    like = {"ForAllValues:StringLike": {NAMES_KEY: ["_acme-challenge.*"]}}
    assert _decide(iam, like, {NAMES_KEY: NAMES, TYPES_KEY: ["TXT"], ACTIONS_KEY: ["UPSERT"]})
    assert not _decide(iam, like, {NAMES_KEY: [*NAMES, "www.example.com"]})
    assert _decide(iam, like, {}), "ForAllValues on a missing key: true, as AWS documents"
    guarded = {**like, "Null": {NAMES_KEY: "false"}}
    assert _decide(iam, guarded, {NAMES_KEY: NAMES})
    assert not _decide(iam, guarded, {})
