"""What the Rehearsal models, played against moto_server + StrictAWS: stacks named alike in two accounts stay two
stacks, nested stacks are played, a value it had to invent fails the run, the Provider framework's response is held to
CloudFormation's limits, and destroy follows dependencies, not template order."""

from __future__ import annotations

import json
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from aws_cdk import App, CfnOutput, Environment, NestedStack, Stack, Stage
from aws_cdk import aws_ssm as ssm
from sealing_support import seal_with_kms

from certfleet import CertificateBundle, ImportedCertificate, KeySource
from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import MotoServer, StrictAWS
from certfleet.testing.rehearsal import CERTIFICATE, Rehearsal, RehearsalError, RehearsalWarning

DEV, PROD = "111111111111", "222222222222"
ACCOUNT, REGION = "123456789012", "eu-west-1"
SECRET = "prod/ssl/private-key"
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
       "CERTFLEET_SECRET_WAIT_SECONDS": "30"}


pytestmark = pytest.mark.slow  # deployments played against moto_server: seconds each


@pytest.fixture
def aws() -> Iterator[StrictAWS]:
    moto = MotoServer.shared()
    moto.reset()
    with mock.patch.dict(os.environ, ENV), StrictAWS(moto.url) as strict:
        yield strict


def _bundle(pki: DemoPKI, leaf: Issued) -> CertificateBundle:
    return CertificateBundle.from_pem(leaf.pem().decode(), pki.chain_pem().decode())


def _store_key(aws: StrictAWS, account: str, leaf: Issued) -> None:
    """The key as ``aws secretsmanager create-secret --secret-string file://private.key`` leaves it, in ``account``."""
    sm = boto3.client("secretsmanager", endpoint_url=aws.url_for(account), region_name=REGION)
    sm.create_secret(Name=SECRET, SecretString=leaf.key_pem().decode())


def _stack(scope: App | Stage, account: str, name: str = "Web") -> Stack:
    return Stack(scope, name, stack_name=name, env=Environment(account=account, region=REGION))


# ------------------------------------------------------------------------------------------ 18 A.4: accounts
def test_a_stack_named_alike_in_two_accounts_is_two_stacks(aws: StrictAWS, pki: DemoPKI, tmp_path: Path) -> None:
    """GIVEN Stack(dev_stage, "Web", stack_name="Web") in account 111... and the same in a prod stage in 222...
    WHEN deployed, then prod alone renewed THEN certificate_arns() has one certificate per account, each in its own
    account's ACM, and prod's renewal leaves dev's certificate as it was."""
    leaf = pki.leaf(("www.example.com",), days=100)
    for account in (DEV, PROD):
        _store_key(aws, account, leaf)

    def synth(out: Path, prod_leaf: Issued) -> Path:
        app = App(outdir=str(out))
        for stage_id, account, issued in (("Dev", DEV, leaf), ("Prod", PROD, prod_leaf)):
            stage = Stage(app, stage_id, env=Environment(account=account, region=REGION))
            ImportedCertificate(_stack(stage, account), "Cert", bundle=_bundle(pki, issued),
                                key=KeySource.secret(SECRET))
        app.synth()
        return out

    rehearsal = Rehearsal(aws.url)
    rehearsal.deploy(synth(tmp_path / "v1", leaf))
    arns = rehearsal.certificate_arns()
    assert sorted(k[:3] for k in arns) == [(DEV, REGION, "Web"), (PROD, REGION, "Web")]
    by_account = {k[0]: arn for k, arn in arns.items()}
    assert by_account[DEV].split(":")[4] == DEV and by_account[PROD].split(":")[4] == PROD
    dev_before = rehearsal.inventory([REGION], account=DEV)[REGION]
    assert [row["arn"] for row in dev_before] == [by_account[DEV]]

    renewed = pki.leaf(("www.example.com",), days=300)
    prod_secrets = boto3.client("secretsmanager", endpoint_url=aws.url_for(PROD), region_name=REGION)
    prod_secrets.put_secret_value(SecretId=SECRET, SecretString=renewed.key_pem().decode())
    events = rehearsal.deploy(synth(tmp_path / "v2", renewed))
    assert {e.account for e in events} == {PROD}, "only prod's stack runs anything (its key version pin, its import)"
    assert [e.action for e in events if e.physical_id == by_account[PROD]] == ["update"]
    assert rehearsal.inventory([REGION], account=DEV)[REGION] == dev_before, "dev's certificate is untouched"
    (prod_now,) = rehearsal.inventory([REGION], account=PROD)[REGION]
    assert prod_now["arn"] == by_account[PROD] and prod_now["not_after"] > dev_before[0]["not_after"]
    rehearsal.destroy()
    assert rehearsal.inventory([REGION], account=DEV)[REGION] == []
    assert rehearsal.inventory([REGION], account=PROD)[REGION] == []


def test_two_stacks_of_one_name_in_one_account_and_region_are_refused(pki: DemoPKI, tmp_path: Path) -> None:
    """GIVEN two Stages whose stacks share name, account and region WHEN loaded THEN RehearsalError naming both
    (CloudFormation would deploy them as one stack)."""
    leaf = pki.leaf(("www.example.com",))
    app = App(outdir=str(tmp_path))
    for stage_id in ("Blue", "Green"):
        stage = Stage(app, stage_id)
        ImportedCertificate(_stack(stage, ACCOUNT), "Cert", bundle=_bundle(pki, leaf), key=KeySource.secret(SECRET))
    app.synth()
    with pytest.raises(RehearsalError, match=r"both Web \(123456789012/eu-west-1\)"):
        Rehearsal("http://127.0.0.1:9").deploy(tmp_path)


# ---------------------------------------------------------------------------------------- 18 A.5: nested stacks
def test_a_certificate_in_a_nested_stack_is_played(aws: StrictAWS, pki: DemoPKI, tmp_path: Path) -> None:
    """GIVEN an ImportedCertificate inside a NestedStack, its ARN a parent output WHEN deployed THEN the certificate is
    imported (an event in the nested stack) and the parent's output is its ARN; destroy deletes it."""
    leaf = pki.leaf(("www.example.com",))
    _store_key(aws, ACCOUNT, leaf)
    app = App(outdir=str(tmp_path))
    parent = _stack(app, ACCOUNT)
    inner = NestedStack(parent, "Inner")
    cert = ImportedCertificate(inner, "Cert", bundle=_bundle(pki, leaf), key=KeySource.secret(SECRET))
    CfnOutput(parent, "Arn", value=cert.certificate_arn)
    app.synth()

    rehearsal = Rehearsal(aws.url)
    events = rehearsal.deploy(tmp_path)
    created = [e for e in events if e.stack.startswith("Web-Inner") and e.action == "create"
               and e.physical_id.startswith("arn:aws:acm:")]
    assert len(created) == 1
    (row,) = rehearsal.inventory([REGION])[REGION]
    assert created[0].physical_id == row["arn"]
    assert rehearsal.outputs[(ACCOUNT, REGION, "Web")]["Arn"] == row["arn"]
    assert [e.action for e in rehearsal.destroy() if e.physical_id == row["arn"]] == ["delete"]
    assert rehearsal.inventory([REGION])[REGION] == []


# ------------------------------------------------------------------------------------- 18 A.5: invented values
def _from_parameter(tmp_path: Path, pki: DemoPKI) -> Path:
    """A certificate whose key secret's name comes from an SSM parameter (a resource the rehearsal does not model)."""
    leaf = pki.leaf(("www.example.com",))
    app = App(outdir=str(tmp_path))
    stack = _stack(app, ACCOUNT)
    name = ssm.StringParameter(stack, "KeyName", string_value=SECRET).string_value
    ImportedCertificate(stack, "Cert", bundle=_bundle(pki, leaf), key=KeySource.secret(name))
    app.synth()
    return tmp_path


def test_a_certfleet_resource_on_an_invented_value_fails_the_run(aws: StrictAWS, pki: DemoPKI, tmp_path: Path) -> None:
    """GIVEN a certificate whose KeySecretId is an SSM parameter's value WHEN rehearsed THEN RehearsalError naming the
    invented value, before any import; with invented="warn" a RehearsalWarning, and the play goes on (here to fail
    reading a secret of that made-up name, as it must)."""
    assembly = _from_parameter(tmp_path, pki)
    with pytest.raises(RehearsalError, match=r"had to invent: Web/KeyName\w*\.Value"):
        Rehearsal(aws.url).deploy(assembly)
    assert aws.calls("acm") == 0 and aws.calls("secretsmanager") == 0
    with pytest.warns(RehearsalWarning, match="had to invent"), pytest.raises(RehearsalError, match="failed"):
        # iam=False: this play fails on purpose on a made-up secret, and must not count as a refused handler call
        # in the session's IAM verdict (test_iam_enforced's session-end checks)
        Rehearsal(aws.url, invented="warn", iam=False,
                  environment={"CERTFLEET_SECRET_WAIT_SECONDS": "1"}).deploy(assembly)


# ------------------------------------------------------------------------- the Provider framework's response
@pytest.fixture
def one_certificate(pki: DemoPKI, tmp_path: Path) -> Path:
    leaf = pki.leaf(("www.example.com",))
    app = App(outdir=str(tmp_path))
    ImportedCertificate(_stack(app, ACCOUNT), "Cert", bundle=_bundle(pki, leaf), key=KeySource.secret(SECRET))
    app.synth()
    return tmp_path


def _handler(monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any], on_delete: dict[str, Any] | None = None,
             ) -> None:
    """An importer that answers ``answer`` (``on_delete`` to a Delete): what it returns is what is under test. The
    stack's key version pin (Custom::CertfleetKeyVersion, served by the key writer) answers as the real one does,
    without AWS: these tests play against no endpoint."""
    pin = types.ModuleType("certfleet_keywriter")

    def pin_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        if event["RequestType"] == "Delete":
            return {"PhysicalResourceId": event["PhysicalResourceId"]}
        return {"PhysicalResourceId": f"{SECRET}#pinned", "Data": {"VersionId": "00000000-0000-0000-0000-00000000v001"}}

    pin.on_event = pin_event  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "certfleet_keywriter", pin)
    module = types.ModuleType("certfleet_import")

    def on_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        if event["RequestType"] == "Delete":
            return on_delete if on_delete is not None else {"PhysicalResourceId": event["PhysicalResourceId"]}
        return answer

    def is_complete(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        return {"IsComplete": True}

    module.on_event = on_event  # type: ignore[attr-defined]
    module.is_complete = is_complete  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "certfleet_import", module)


def test_a_response_over_4096_bytes_fails_the_resource(
    monkeypatch: pytest.MonkeyPatch, one_certificate: Path,
) -> None:
    """GIVEN onEvent Data that makes the framework's response (Status, Reason, StackId, RequestId, PhysicalResourceId,
    LogicalResourceId, Data) over 4,096 bytes WHEN played through the Provider framework THEN RehearsalError "Response
    object is too long", naming the Data field, as CloudFormation fails the resource; a small response passes. (The
    exact boundary, 4,096 bytes passing and 4,097 failing, is tested in test_provider_framework.py.)"""
    template = json.loads((one_certificate / "Web.template.json").read_text())
    (logical_id,) = [k for k, r in template["Resources"].items() if r["Type"] == CERTIFICATE]
    _handler(monkeypatch, {"PhysicalResourceId": "arn:x", "Data": {"Big": "x" * 4_000}})
    with pytest.raises(RehearsalError, match=r"Response object is too long \(\d+ bytes, CloudFormation takes 4096\)"
                                             r".*Big \(4002 bytes\)"):
        Rehearsal("http://127.0.0.1:9").deploy(one_certificate)
    _handler(monkeypatch, {"PhysicalResourceId": "arn:x", "Data": {"Big": "x" * 2_000}})
    rehearsal = Rehearsal("http://127.0.0.1:9")
    assert [e.action for e in rehearsal.deploy(one_certificate) if e.logical_id == logical_id] == ["create"]


def test_physical_id_rules_are_cloudformations(monkeypatch: pytest.MonkeyPatch, one_certificate: Path) -> None:
    """GIVEN a PhysicalResourceId of 1,025 bytes, or a Delete that answers another id WHEN played THEN RehearsalError;
    1,024 bytes pass; no id on Create takes the RequestId, as the framework does."""
    _handler(monkeypatch, {"PhysicalResourceId": "p" * 1_025})
    with pytest.raises(RehearsalError, match="PhysicalResourceId is 1025 bytes"):
        Rehearsal("http://127.0.0.1:9").deploy(one_certificate)
    _handler(monkeypatch, {"PhysicalResourceId": "p" * 1_024}, on_delete={"PhysicalResourceId": "other"})
    rehearsal = Rehearsal("http://127.0.0.1:9")
    rehearsal.deploy(one_certificate)
    with pytest.raises(RehearsalError, match="DELETE: cannot change the physical resource ID"):
        rehearsal.destroy()
    _handler(monkeypatch, {})
    played = Rehearsal("http://127.0.0.1:9").deploy(one_certificate)
    (event,) = [e for e in played if e.physical_id != f"{SECRET}#pinned"]
    assert len(event.physical_id) == 36, "the framework's default: the RequestId"


# ------------------------------------------------------------------------------- destroy in dependency order
def _sealed(aws: StrictAWS, leaf: Issued, folder: Path) -> Path:
    kms = boto3.client("kms", endpoint_url=aws.url, region_name=REGION)
    return seal_with_kms(kms, leaf, folder / "www.sealed", why="rehearsal model")


def test_destroy_follows_dependencies_not_template_order(aws: StrictAWS, pki: DemoPKI, tmp_path: Path) -> None:
    """GIVEN a sealed-key certificate whose template lists the certificate before the key writer it depends on
    WHEN destroyed THEN the certificate is deleted first, then the key writer (reverse dependency order, as
    CloudFormation does), not the other way round (reverse template order)."""
    leaf = pki.leaf(("www.example.com",))
    app = App(outdir=str(tmp_path / "out"))
    ImportedCertificate(_stack(app, ACCOUNT), "Cert", bundle=_bundle(pki, leaf),
                        key=KeySource.sealed(_sealed(aws, leaf, tmp_path)))
    app.synth()
    template_file = tmp_path / "out" / "Web.template.json"
    template = json.loads(template_file.read_text())
    resources = template["Resources"]
    first = [k for k, r in resources.items() if r["Type"] == CERTIFICATE]
    template["Resources"] = {**{k: resources[k] for k in first}, **{k: v for k, v in resources.items()
                                                                   if k not in first}}
    template_file.write_text(json.dumps(template))

    rehearsal = Rehearsal(aws.url)
    rehearsal.deploy(tmp_path / "out")
    played = [(e.logical_id, e.action) for e in rehearsal.destroy() if e.action == "delete"]
    kinds = [resources[logical_id]["Type"] for logical_id, _ in played]
    assert kinds == [CERTIFICATE, "Custom::CertfleetSealedKey"]
