"""certfleet's custom resources through aws-cdk-lib's own Provider framework: the Node.js onEvent / isComplete /
onTimeout of the synthesized asset, with Lambda Invoke answered by certfleet's Python handlers against moto_server +
StrictAWS, the waiter run as its synthesized state machine says (waits scaled down), and the response PUT captured."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from aws_cdk import App, Environment, Stack

from certfleet import CertificateBundle, ImportedCertificate, KeySource
from certfleet.material.demo import DemoPKI, Issued, issue
from certfleet.providers import handler_code_dir
from certfleet.testing import MotoServer, StrictAWS
from certfleet.testing.framework import (
    FrameworkHost,
    FrameworkResponse,
    Invoke,
    ProviderFunctions,
    cloudformation_outcome,
    find_provider,
)
from certfleet.testing.leaks import find_leaks

ACCOUNT, REGION = "123456789012", "eu-west-1"
SECRET = "prod/ssl/private-key"
CERTIFICATE, KEY_VERSION = "Custom::CertfleetCertificate", "Custom::CertfleetKeyVersion"
CREATE_FAILED = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"
SCALE = 0.0005
"""The waiter's waits, scaled: its 30 s interval becomes 15 ms."""
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
       "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
       "CERTFLEET_SECRET_WAIT_SECONDS": "5"}
_ACM_ARN = re.compile(rf"^arn:aws:acm:{REGION}:{ACCOUNT}:certificate/[0-9a-f-]+$")


@dataclass
class Assembly:
    folder: Path
    template: dict[str, Any]
    leaf: Issued


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory, pki: DemoPKI) -> Assembly:
    """One stack with one ImportedCertificate (key in a Secrets Manager secret), synthesized once."""
    leaf = pki.leaf(("www.example.com",), days=100)
    folder = tmp_path_factory.mktemp("framework") / "cdk.out"
    app = App(outdir=str(folder))
    stack = Stack(app, "Web", stack_name="Web", env=Environment(account=ACCOUNT, region=REGION))
    ImportedCertificate(stack, "Cert", bundle=CertificateBundle.from_pem(leaf.pem().decode(), pki.chain_pem().decode()),
                        key=KeySource.secret(SECRET))
    app.synth()
    return Assembly(folder, json.loads((folder / "Web.template.json").read_text()), leaf)


@pytest.fixture(scope="module")
def host() -> Iterator[FrameworkHost]:
    """One Node process for the module's every request, as the rehearsal keeps one."""
    with FrameworkHost() as running:
        yield running


@pytest.fixture
def aws(moto_server: MotoServer, strict_aws: StrictAWS) -> Iterator[StrictAWS]:
    moto_server.reset()
    strict_aws.reset()
    with mock.patch.dict(os.environ, ENV):
        yield strict_aws


def lambda_runtime(provider: ProviderFunctions, endpoint: str) -> Invoke:
    """The user functions as Lambda runs them (and as rehearsal._invoke does): the module and function of each one's
    Handler, from the handler folder, in the function's region, against ``endpoint``."""
    folder = str(handler_code_dir())
    if folder not in sys.path:
        sys.path.insert(0, folder)

    def invoke(arn: str, payload: dict[str, Any]) -> Any:
        module, _, function = provider.handlers[arn].rpartition(".")
        region = arn.split(":")[3]
        with mock.patch.dict(os.environ, {"AWS_REGION": region, "AWS_DEFAULT_REGION": region,
                                          "AWS_ENDPOINT_URL": endpoint}):
            return getattr(importlib.import_module(module), function)(payload, None)

    return invoke


Wrap = Callable[[str, str, dict[str, Any], Callable[[], Any]], Any]
"""(handler, request type, payload, run the real handler) → what the function returns."""


@dataclass
class Player:
    """Sends one stack's custom resources through the framework, as CloudFormation sends them."""

    assembly: Assembly
    aws: StrictAWS
    host: FrameworkHost
    deployed: dict[str, FrameworkResponse] = field(default_factory=dict)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    handlers_called: list[str] = field(default_factory=list)
    task_calls: list[str] = field(default_factory=list)

    def logical_id(self, kind: str) -> str:
        (found,) = [str(k) for k, r in self.assembly.template["Resources"].items() if r["Type"] == kind]
        return found

    def provider(self, logical_id: str) -> ProviderFunctions:
        token = self.assembly.template["Resources"][logical_id]["Properties"]["ServiceToken"]
        return find_provider(self.assembly.template, token, assembly_dir=self.assembly.folder, account=ACCOUNT,
                             region=REGION)

    def send(self, kind: str, request: str, *, wrap: Wrap | None = None, change: dict[str, Any] | None = None,
             physical_id: str | None = None) -> FrameworkResponse:
        logical_id = self.logical_id(kind)
        provider = self.provider(logical_id)
        old = self.properties.get(logical_id)
        props = {**self._resolve(self.assembly.template["Resources"][logical_id]["Properties"], provider),
                 **(change or {})}
        event: dict[str, Any] = {
            "RequestType": request, "ServiceToken": props["ServiceToken"], "ResponseURL": "",
            "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Web/{uuid.uuid5(uuid.NAMESPACE_URL, 'Web')}",
            "RequestId": str(uuid.uuid4()), "LogicalResourceId": logical_id, "ResourceType": kind,
            "ResourceProperties": props if request != "Delete" or old is None else old,
        }
        if request != "Create":
            event["PhysicalResourceId"] = physical_id or self.deployed[logical_id]["PhysicalResourceId"]
        if request == "Update" and old is not None:
            event["OldResourceProperties"] = old
        real = lambda_runtime(provider, self.aws.url)

        def invoke(arn: str, payload: dict[str, Any]) -> Any:
            handler = provider.handlers[arn]
            self.handlers_called.append(handler)
            if wrap is None:
                return real(arn, payload)
            return wrap(handler, request, payload, lambda: real(arn, payload))

        framework = provider.framework(time_scale=SCALE, host=self.host)
        response = framework.run(event, invoke)
        self.task_calls = framework.task_calls
        if response["Status"] == "SUCCESS" and request != "Delete":
            self.deployed[logical_id], self.properties[logical_id] = response, props
        return response

    def create_both(self, *, wrap: Wrap | None = None) -> FrameworkResponse:
        assert self.send(KEY_VERSION, "Create")["Status"] == "SUCCESS"
        return self.send(CERTIFICATE, "Create", wrap=wrap)

    def _resolve(self, value: Any, provider: ProviderFunctions) -> Any:
        """ServiceToken's framework ARN; GetAtt/Ref of a custom resource sent before (its Data, its physical id)."""
        if isinstance(value, list):
            return [self._resolve(v, provider) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            if logical_id == provider.logical_id:
                return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id}"
            return self.deployed[logical_id]["Data"][attribute]
        if set(value) == {"Ref"}:
            return self.deployed[value["Ref"]]["PhysicalResourceId"]
        return {k: self._resolve(v, provider) for k, v in value.items()}


def _store_key(key_pem: bytes) -> None:
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name=SECRET, SecretString=key_pem.decode())


@pytest.fixture
def player(aws: StrictAWS, assembly: Assembly, host: FrameworkHost) -> Player:
    os.environ["AWS_ENDPOINT_URL"] = aws.url  # (inside aws's patch.dict: restored after the test)
    return Player(assembly, aws, host)


def _acm() -> Any:
    return boto3.client("acm", region_name=REGION)


# ------------------------------------------------------------------------------------------------------ the path
def test_the_provider_is_found_in_the_template(player: Player) -> None:
    """GIVEN the synthesized stack WHEN the certificate's ServiceToken is followed THEN it leads to the framework's
    onEvent function and asset, the user handlers by their Handler strings, and the waiter as synthesized (30 s
    interval, 60 retries, no backoff: query_interval and total_timeout of the importer's Provider)."""
    provider = player.provider(player.logical_id(CERTIFICATE))
    assert (provider.on_event.asset_dir / "framework.js").is_file()
    assert sorted(provider.handlers.values()) == ["certfleet_import.is_complete", "certfleet_import.on_event"]
    assert set(provider.on_event.environment) == {"USER_ON_EVENT_FUNCTION_ARN", "USER_IS_COMPLETE_FUNCTION_ARN",
                                                  "WAITER_STATE_MACHINE_ARN"}
    assert provider.waiter is not None
    start = provider.waiter.definition["States"][provider.waiter.definition["StartAt"]]
    assert start["Retry"] == [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 30, "MaxAttempts": 60,
                               "BackoffRate": 1}]
    assert sorted(f.entry for f in provider.waiter.tasks.values()) == ["isComplete", "onTimeout"]
    key_writer = player.provider(player.logical_id(KEY_VERSION))
    assert key_writer.waiter is None and "WAITER_STATE_MACHINE_ARN" not in key_writer.on_event.environment


def test_create_update_delete_through_the_framework(
    player: Player, pki: DemoPKI, caplog: pytest.LogCaptureFixture,
) -> None:
    """GIVEN the key in its secret WHEN Create, Update (a renewal, same key) and Delete go through the framework
    THEN each is SUCCESS: Create imports (physical id the ARN, the handler's Data), the waiter asks isComplete once,
    Update re-imports into the same ARN, Delete removes it from ACM; the framework's logs (in logging too) hold no key
    material."""
    leaf = player.assembly.leaf
    _store_key(leaf.key_pem())

    created = player.create_both()
    assert cloudformation_outcome(created) == ("SUCCESS", "SUCCESS")
    arn = created["PhysicalResourceId"]
    assert _ACM_ARN.match(arn)
    assert created["Data"]["CertificateArn"] == arn and created["Data"]["KeyAlgorithm"] == "RSA_2048"
    assert player.task_calls == ["isComplete"]
    assert player.handlers_called[-2:] == ["certfleet_import.on_event", "certfleet_import.is_complete"]

    renewed = issue("www.example.com", issuer=pki.intermediate, key=leaf.key, names=("www.example.com",), days=300)
    bundle = CertificateBundle.from_pem(renewed.pem().decode(), pki.chain_pem().decode())
    imports = player.aws.calls("acm", "ImportCertificate")
    updated = player.send(CERTIFICATE, "Update",
                          change={"Certificate": bundle.certificate_pem, "Fingerprint": bundle.fingerprint})
    assert cloudformation_outcome(updated) == ("SUCCESS", "SUCCESS")
    assert updated["PhysicalResourceId"] == arn
    assert updated["Data"]["NotAfter"] > created["Data"]["NotAfter"]
    assert player.aws.calls("acm", "ImportCertificate") > imports  # throttled attempts (1/s) count too
    described = _acm().describe_certificate(CertificateArn=arn)["Certificate"]
    assert described["NotAfter"].date() == renewed.certificate.not_valid_after_utc.date(), "re-imported in place"

    deleted = player.send(CERTIFICATE, "Delete")
    assert (deleted["Status"], deleted["PhysicalResourceId"]) == ("SUCCESS", arn)
    with pytest.raises(_acm().exceptions.ResourceNotFoundException):
        _acm().describe_certificate(CertificateArn=arn)
    assert any("onEventHandler" in line for line in player.host.logs), "the framework logged the requests"
    assert any(r.name == "certfleet.framework" and "onEventHandler" in r.getMessage() for r in caplog.records), \
        "its lines reach logging, where the suite's leak scan reads them"
    assert [line[:60] for line in player.host.logs if find_leaks(line)] == []


# ------------------------------------------------------------------------------------------- what the framework does
def test_is_complete_data_is_merged_over_on_event_data(player: Player) -> None:
    """GIVEN an isComplete that answers Data when complete WHEN Create goes through THEN the response's Data is
    onEvent's with isComplete's merged over it (isComplete wins a shared key); Data while not complete is FAILED."""
    _store_key(player.assembly.leaf.key_pem())

    def complete_with_data(handler: str, request: str, payload: dict[str, Any], real: Callable[[], Any]) -> Any:
        answer = real()
        if handler.endswith("is_complete"):
            return {**answer, "Data": {"Checked": "yes", "KeyAlgorithm": "from isComplete"}}
        return answer

    response = player.create_both(wrap=complete_with_data)
    data = response["Data"]
    assert response["Status"] == "SUCCESS"
    assert (data["Checked"], data["KeyAlgorithm"]) == ("yes", "from isComplete")
    assert data["CertificateArn"] == response["PhysicalResourceId"], "onEvent's Data is kept"

    def data_while_waiting(handler: str, request: str, payload: dict[str, Any], real: Callable[[], Any]) -> Any:
        answer = real()
        return {"IsComplete": False, "Data": {"Early": "x"}} if handler.endswith("is_complete") else answer

    refused = player.send(CERTIFICATE, "Create", wrap=data_while_waiting)
    assert refused["Status"] == "FAILED"
    assert '"Data" is not allowed if "IsComplete" is "False"' in refused["Reason"]


def test_a_response_over_4096_bytes_fails(player: Player) -> None:
    """GIVEN onEvent Data padded so that the body the framework PUTs is 4,096 bytes, then 4,097 WHEN sent THEN
    CloudFormation takes the first and fails the second: "Response object is too long" (the body is measured as the
    framework serialized it, not as certfleet imagines it)."""
    _store_key(player.assembly.leaf.key_pem())

    def padded(size: int) -> Wrap:
        def wrap(handler: str, request: str, payload: dict[str, Any], real: Callable[[], Any]) -> Any:
            answer = real()
            if handler.endswith("on_event"):
                return {**answer, "Data": {**answer["Data"], "Pad": "x" * size}}
            return answer
        return wrap

    base = player.create_both(wrap=padded(0))
    room = 4_096 - len(base.raw)
    exact = player.send(CERTIFICATE, "Create", wrap=padded(room))
    assert len(exact.raw) == 4_096
    assert cloudformation_outcome(exact) == ("SUCCESS", "SUCCESS")
    over = player.send(CERTIFICATE, "Create", wrap=padded(room + 1))
    assert over["Status"] == "SUCCESS", "the framework itself sends it"
    status, reason = cloudformation_outcome(over)
    assert status == "FAILED" and reason.startswith("Response object is too long (4097 bytes")


def test_a_handler_exception_is_failed_with_its_message(player: Player, pki: DemoPKI) -> None:
    """GIVEN a secret holding another certificate's key WHEN Create goes through THEN FAILED with the importer's own
    message as Reason and the framework's CREATE_FAILED marker as physical id; the Delete CloudFormation then sends
    for that marker is SUCCESS without calling certfleet's handler."""
    _store_key(pki.leaf(("other.example.com",)).key_pem())
    failed = player.create_both()
    assert (failed["Status"], failed["PhysicalResourceId"]) == ("FAILED", CREATE_FAILED)
    assert "ACM refused to import certificate" in failed["Reason"]
    assert "PRIVATE KEY" not in failed["Reason"]
    assert player.task_calls == [], "a failed onEvent starts no waiter"

    called = len(player.handlers_called)
    cleanup = player.send(CERTIFICATE, "Delete", physical_id=CREATE_FAILED)
    assert (cleanup["Status"], cleanup["PhysicalResourceId"]) == ("SUCCESS", CREATE_FAILED)
    assert len(player.handlers_called) == called


def test_a_result_lambda_cannot_serialize_fails_the_resource(player: Player) -> None:
    """GIVEN an onEvent whose Data holds a datetime (as boto3 returns NotAfter) WHEN Create goes through THEN FAILED
    with Lambda's Python runtime error, "Unable to marshal response": never a success with the value turned to text."""
    _store_key(player.assembly.leaf.key_pem())

    def with_datetime(handler: str, request: str, payload: dict[str, Any], real: Callable[[], Any]) -> Any:
        answer = real()
        if handler.endswith("on_event"):
            return {**answer, "Data": {**answer["Data"], "NotAfter": dt.datetime.now(dt.UTC)}}
        return answer

    failed = player.create_both(wrap=with_datetime)
    assert failed["Status"] == "FAILED"
    assert "Unable to marshal response: Object of type datetime is not JSON serializable" in failed["Reason"]


def test_a_delete_that_changes_the_physical_id_fails(player: Player) -> None:
    """GIVEN an onEvent that answers a Delete with another PhysicalResourceId WHEN Delete goes through THEN FAILED
    with the framework's own "DELETE: cannot change the physical resource ID" reason."""
    _store_key(player.assembly.leaf.key_pem())
    arn = player.create_both()["PhysicalResourceId"]

    def other_id(handler: str, request: str, payload: dict[str, Any], real: Callable[[], Any]) -> Any:
        answer = real()
        return {**answer, "PhysicalResourceId": "other"} if handler.endswith("on_event") else answer

    deleted = player.send(CERTIFICATE, "Delete", wrap=other_id)
    assert deleted["Status"] == "FAILED"
    assert f'DELETE: cannot change the physical resource ID from "{arn}" to "other"' in deleted["Reason"]


# ------------------------------------------------------------------------------------------------------ the waiter
def test_the_waiter_polls_is_complete_until_the_certificate_is_released(player: Player) -> None:
    """GIVEN a certificate a service still uses WHEN Delete goes through THEN onEvent answers DeletePending, the waiter
    asks isComplete again after each refusal, the third call (after release) deletes it: SUCCESS, with onEvent's
    Data kept, and the certificate is gone."""
    _store_key(player.assembly.leaf.key_pem())
    arn = player.create_both()["PhysicalResourceId"]
    player.aws.mark_in_use(arn)
    polls: list[int] = []

    def release_on_third_poll(handler: str, request: str, payload: dict[str, Any], real: Callable[[], Any]) -> Any:
        if handler.endswith("is_complete"):
            polls.append(len(polls) + 1)
            if len(polls) == 3:
                player.aws.release(arn)
        return real()

    deleted = player.send(CERTIFICATE, "Delete", wrap=release_on_third_poll)
    assert (deleted["Status"], deleted["PhysicalResourceId"]) == ("SUCCESS", arn)
    assert deleted["Data"]["DeletePending"] == "true"
    assert player.task_calls == ["isComplete"] * 3
    with pytest.raises(_acm().exceptions.ResourceNotFoundException):
        _acm().describe_certificate(CertificateArn=arn)


def test_the_waiter_times_out_through_on_timeout(player: Player) -> None:
    """GIVEN a certificate that stays in use WHEN Delete goes through THEN the waiter asks isComplete 61 times (the
    first call and 60 retries), then its Catch runs the framework's onTimeout: FAILED "Operation timed out", and the
    certificate stays in ACM."""
    _store_key(player.assembly.leaf.key_pem())
    arn = player.create_both()["PhysicalResourceId"]
    player.aws.mark_in_use(arn)

    deleted = player.send(CERTIFICATE, "Delete")
    assert (deleted["Status"], deleted["Reason"]) == ("FAILED", "Operation timed out")
    assert deleted["PhysicalResourceId"] == arn
    assert player.task_calls == ["isComplete"] * 61 + ["onTimeout"]
    assert _acm().describe_certificate(CertificateArn=arn)["Certificate"]["CertificateArn"] == arn
