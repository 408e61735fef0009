"""Each certfleet role, evaluated as AWS would: it may call what its handler calls, on its own fleet only.

What each role's handler calls (certfleet/_lambda): the importer's onEvent lists certificates and their tags,
reads its fingerprint (GetCertificate), imports with tags or re-imports, describes, adds the owner tag on adoption
(_take_over) and the retired tag on a Delete still in use (_retire), removes the retired tag on adoption,
deletes, and reads its key. The delete waiter (is_complete) deletes again and describes the certificate's users.
The sweeper (certfleet_sweeper) lists certificates and their tags in every region and deletes retired ones.
The Provider framework functions invoke one handler each (onEvent also starts the waiter).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template
from iam_support import ALLOWED, SEALING_KEY, IamEvaluator, Request, Resolved

from certfleet import CertificateBundle, CertificateFleet, FleetGroup, KeySource
from certfleet.providers import IMPORT_TAGS, MARK_TAGS, UNMARK_TAGS, handler_code_dir

ACCOUNT = "123456789012"
REGION = "eu-west-1"
CERT = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/11111111-2222-3333-4444-555555555555"
IMPORTER = "certfleet: runs certfleet_import.on_event"
WAITER = "certfleet: runs certfleet_import.is_complete"
KEY_WRITER = "certfleet: runs certfleet_keywriter.on_event"
FRAMEWORK_ON_EVENT = "certfleet: Provider framework onEvent"
FRAMEWORK_WAITER = "certfleet: Provider framework isComplete and onTimeout"
DEFAULT_KEY_POLICY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}]}


@dataclass(frozen=True)
class Fleet:
    """A fleet's synthesized stacks, resolved: a regional certificate stack and the sweeper."""

    regional: Resolved
    sweeper: Resolved
    tags: dict[str, str]

    def policies(self, description: str, *, sweeper: bool = False) -> list[dict[str, Any]]:
        where = self.sweeper if sweeper else self.regional
        return where.role_policies(where.role(description))


def _resolved(stack: Stack) -> Resolved:
    return Resolved(dict(Template.from_stack(stack).to_json()), account=ACCOUNT, region=stack.region)


def _tags(resolved: Resolved) -> dict[str, str]:
    (certificate, *_) = [v for v in resolved.resources.values() if v["Type"] == "Custom::CertfleetCertificate"]
    return {t["Key"]: t["Value"] for t in certificate["Properties"]["Tags"]}


@pytest.fixture(scope="module")
def fleet(material: tuple[CertificateBundle, Path]) -> Fleet:
    bundle, sealed = material
    made = CertificateFleet(App(), "Certificates", bundle=bundle, key=KeySource.sealed(sealed), account=ACCOUNT,
                            regions=[REGION])
    regional = _resolved(made.stack_for(REGION))
    return Fleet(regional, _resolved(made.sweeper_stack), _tags(regional))


@pytest.fixture(scope="module")
def group(material: tuple[CertificateBundle, Path]) -> tuple[Fleet, Resolved, str]:
    """A FleetGroup's regional stack and sweeper, its us-east-1 stack (key writer), and its key namespace."""
    bundle, sealed = material
    made = FleetGroup(App(), "Group", account=ACCOUNT, regions=[REGION])
    site = made.add_fleet("Site", bundle=bundle, key=KeySource.sealed(sealed))
    regional = _resolved(site.stack_for(REGION))
    return (Fleet(regional, _resolved(made.sweeper_stack), _tags(regional)), _resolved(site.stack_for("us-east-1")),
            made.key_namespace)


def _request_tags(tags: dict[str, str]) -> dict[str, Any]:
    return {**{f"aws:RequestTag/{k}": v for k, v in tags.items()}, "aws:TagKeys": list(tags)}


def _resource_tags(tags: dict[str, str]) -> dict[str, Any]:
    return {f"aws:ResourceTag/{k}": v for k, v in tags.items()}


def _other_fleet(tags: dict[str, str], name: str = "SomeoneElse") -> dict[str, str]:
    return {**tags, "certfleet:fleet": name}


Context = dict[str, str | list[str]]


def _decide(iam: IamEvaluator, policies: list[dict[str, Any]], action: str, resource: str = CERT, /,
            **context: Any) -> bool:
    return iam.decide(Request(action, resource, context=context), policies) == ALLOWED


def test_the_tag_keys_in_the_policies_are_the_ones_the_handler_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The importer's tag statements name exactly the tags certfleet_import writes and removes."""
    monkeypatch.syspath_prepend(str(handler_code_dir()))  # as /var/task is in Lambda
    handler = importlib.import_module("certfleet_import")
    assert sorted(MARK_TAGS) == sorted([handler.OWNER_TAG, handler.RETIRED_TAG])
    assert UNMARK_TAGS == [handler.RETIRED_TAG]
    assert {handler.FLEET_TAG, handler.ID_TAG} < set(IMPORT_TAGS)


def test_the_importer_tags_on_import_only_a_certificate_no_fleet_manages(iam: IamEvaluator, fleet: Fleet) -> None:
    """GIVEN the importer's policies WHEN it tags a certificate with its own fleet's tags THEN that is allowed only
    where the certificate carries no certfleet managed-by tag: another fleet's (or a FleetGroup's) certificate cannot
    be claimed, nor one a person marked as not certfleet's"""
    policies = fleet.policies(IMPORTER)
    claim = _request_tags(fleet.tags)
    assert _decide(iam, policies, "acm:ImportCertificate", **claim), "positive control: a first import"
    assert _decide(iam, policies, "acm:AddTagsToCertificate", **claim), "positive control: tags on import"
    for held in (_other_fleet(fleet.tags), _other_fleet(fleet.tags, "Group/Site"),
                 {"certfleet:managed-by": "certfleet"}, {"certfleet:managed-by": "none"}, fleet.tags):
        assert not _decide(iam, policies, "acm:AddTagsToCertificate", **claim, **_resource_tags(held)), held


def test_iam_cannot_tell_tagging_on_import_from_tagging_an_untagged_certificate(iam: IamEvaluator,
                                                                               fleet: Fleet) -> None:
    """The limit the README states: ImportCertificate with Tags is authorized as AddTagsToCertificate too, and a
    certificate a person imported without tags looks, to IAM, like the one being imported. The importer's role may
    therefore tag it into its fleet (and then re-import over it or delete it); a certfleet:managed-by tag of any
    other value on that certificate (the README's mitigation) closes it."""
    policies = fleet.policies(IMPORTER)
    claim = _request_tags(fleet.tags)
    assert _decide(iam, policies, "acm:AddTagsToCertificate", **claim, **_resource_tags({"team": "payments"}))
    assert not _decide(iam, policies, "acm:AddTagsToCertificate", **claim,
                       **_resource_tags({"team": "payments", "certfleet:managed-by": "people"}))


def test_the_importer_marks_its_own_certificates_only_with_the_owner_and_retired_tags(iam: IamEvaluator,
                                                                                    fleet: Fleet) -> None:
    policies = fleet.policies(IMPORTER)
    own, other = _resource_tags(fleet.tags), _resource_tags(_other_fleet(fleet.tags))
    for key in MARK_TAGS:
        mark = _request_tags({key: "value"})
        assert _decide(iam, policies, "acm:AddTagsToCertificate", **mark, **own), key
        assert not _decide(iam, policies, "acm:AddTagsToCertificate", **mark, **other), key
        assert not _decide(iam, policies, "acm:AddTagsToCertificate", **mark), f"{key} on an untagged certificate"
    for key, value in (("certfleet:fleet", "SomeoneElse"), ("certfleet:managed-by", "people"), ("team", "x")):
        assert not _decide(iam, policies, "acm:AddTagsToCertificate", **_request_tags({key: value}), **own), key
    unretire = {"aws:TagKeys": ["certfleet:retired"]}
    assert _decide(iam, policies, "acm:RemoveTagsFromCertificate", **unretire, **own)
    assert not _decide(iam, policies, "acm:RemoveTagsFromCertificate", **unretire, **other)
    for key in ("certfleet:managed-by", "certfleet:fleet", "certfleet:stack"):
        assert not _decide(iam, policies, "acm:RemoveTagsFromCertificate", **{"aws:TagKeys": [key]}, **own), key


@pytest.mark.parametrize("action", ["acm:ImportCertificate", "acm:DeleteCertificate", "acm:GetCertificate",
                                    "acm:DescribeCertificate", "acm:ListTagsForCertificate"])
def test_the_importer_acts_only_on_its_own_fleets_certificates(iam: IamEvaluator, fleet: Fleet, action: str) -> None:
    policies = fleet.policies(IMPORTER)
    assert _decide(iam, policies, action, **_resource_tags(fleet.tags))
    if action != "acm:ListTagsForCertificate":  # tags are how it finds its own: read on every certificate
        assert not _decide(iam, policies, action, **_resource_tags(_other_fleet(fleet.tags)))
        assert not _decide(iam, policies, action), "an untagged (a person's) certificate"
    assert not _decide(iam, policies, action, CERT.replace(REGION, "us-west-2"), **_resource_tags(fleet.tags))


def test_the_delete_waiter_only_deletes_and_describes_its_fleets_certificates(iam: IamEvaluator,
                                                                             fleet: Fleet) -> None:
    policies = fleet.policies(WAITER)
    own = _resource_tags(fleet.tags)
    assert _decide(iam, policies, "acm:DeleteCertificate", **own)
    assert _decide(iam, policies, "acm:DescribeCertificate", **own)
    assert not _decide(iam, policies, "acm:DeleteCertificate", **_resource_tags(_other_fleet(fleet.tags)))
    assert not _decide(iam, policies, "acm:ImportCertificate", **_request_tags(fleet.tags)), "the waiter imports"
    for action in ("acm:ImportCertificate", "acm:GetCertificate", "acm:AddTagsToCertificate",
                   "acm:RemoveTagsFromCertificate", "acm:ListTagsForCertificate"):
        assert not _decide(iam, policies, action, **own, **{"aws:TagKeys": ["certfleet:retired"]}), action
    assert not _decide(iam, policies, "acm:ListCertificates", "*")
    importer = fleet.policies(IMPORTER)
    (secret,) = {s["Resource"] for p in importer for s in p["Statement"]
                 if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])}
    assert _decide(iam, importer, "secretsmanager:GetSecretValue", secret), "positive control: the importer reads"
    assert not _decide(iam, policies, "secretsmanager:GetSecretValue", secret), "the waiter reads no key"


@pytest.mark.parametrize("description", [IMPORTER, WAITER])
def test_the_sweeper_deletes_only_retired_certificates_of_its_fleet(iam: IamEvaluator, fleet: Fleet,
                                                                   description: str) -> None:
    policies = fleet.policies(description, sweeper=True)
    retired = {**fleet.tags, "certfleet:retired": "2026-12-02T00:00:00Z"}
    for region in (REGION, "us-east-1", "ap-northeast-1"):
        arn = CERT.replace(REGION, region)
        assert _decide(iam, policies, "acm:DeleteCertificate", arn, **_resource_tags(retired)), region
        assert _decide(iam, policies, "acm:ListTagsForCertificate", arn), region
    assert _decide(iam, policies, "acm:ListCertificates", "*")
    assert not _decide(iam, policies, "acm:DeleteCertificate", **_resource_tags(fleet.tags)), "a live certificate"
    assert not _decide(iam, policies, "acm:DeleteCertificate", **_resource_tags(_other_fleet(retired)))
    assert not _decide(iam, policies, "acm:DeleteCertificate", **_resource_tags({"certfleet:retired": "x"}))
    assert not _decide(iam, policies, "acm:ImportCertificate", **_request_tags(fleet.tags)), "a first import"
    for action in ("acm:ImportCertificate", "acm:AddTagsToCertificate", "acm:RemoveTagsFromCertificate",
                   "acm:GetCertificate", "acm:DescribeCertificate"):
        assert not _decide(iam, policies, action, **_resource_tags(retired),
                           **{"aws:TagKeys": ["certfleet:retired"]}), action


def _function_arn(resolved: Resolved, handler: str) -> str:
    (found,) = [k for k, v in resolved.resources.items() if v["Type"] == "AWS::Lambda::Function"
                and v["Properties"].get("Handler") == handler]
    return resolved.arn(found)


def _framework_arn(resolved: Resolved, entry: str) -> str:
    (found,) = [k for k, v in resolved.resources.items() if v["Type"] == "AWS::Lambda::Function"
                and v["Properties"].get("Handler") == f"framework.{entry}"]
    return resolved.arn(found)


def test_the_provider_framework_roles_only_invoke_their_own_handler(iam: IamEvaluator, fleet: Fleet) -> None:
    """framework-onEvent invokes the onEvent handler and starts the waiter; framework-isComplete/onTimeout invoke
    the isComplete handler; neither invokes the other's handler, a version of it, or any certfleet API."""
    stack = fleet.regional
    on_event, is_complete = (_function_arn(stack, f"certfleet_import.{h}") for h in ("on_event", "is_complete"))
    (machine,) = [k for k, v in stack.resources.items() if v["Type"] == "AWS::StepFunctions::StateMachine"]
    # Resolved names a state machine by a placeholder ARN; put a real one in its place (Ref of one is its ARN)
    machine_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{machine}"
    framework, waiter = ([json.loads(json.dumps(p).replace(json.dumps(stack.arn(machine)), json.dumps(machine_arn)))
                          for p in stack.role_policies(stack.role(description))]
                         for description in (FRAMEWORK_ON_EVENT, FRAMEWORK_WAITER))
    for action in ("lambda:InvokeFunction", "lambda:GetFunction"):
        assert _decide(iam, framework, action, on_event)
        assert _decide(iam, waiter, action, is_complete)
        assert not _decide(iam, framework, action, is_complete)
        assert not _decide(iam, waiter, action, on_event)
        assert not _decide(iam, framework, action, f"{on_event}:1"), "a version of the handler"
        assert not _decide(iam, framework, action, _framework_arn(stack, "isComplete"))
    assert _decide(iam, framework, "states:StartExecution", machine_arn)
    assert not _decide(iam, waiter, "states:StartExecution", machine_arn)
    assert not _decide(iam, framework, "states:StartExecution", machine_arn + "x")
    for policies in (framework, waiter):
        granted = {a for p in policies for s in p["Statement"]
                   for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
        assert granted <= {"lambda:InvokeFunction", "lambda:GetFunction", "states:StartExecution",
                           "logs:CreateLogStream", "logs:PutLogEvents"}, granted


def test_a_groups_importer_acts_only_on_its_groups_certificates(iam: IamEvaluator,
                                                               group: tuple[Fleet, Resolved, str]) -> None:
    """The group's `<group>/*` pattern: its fleets' certificates, not another group's whose name starts the same,
    nor a plain fleet named like the group."""
    site, _, _ = group
    policies = site.policies(IMPORTER)
    assert site.tags["certfleet:fleet"] == "Group/Site"
    own = _resource_tags(site.tags)
    assert _decide(iam, policies, "acm:DeleteCertificate", **own)
    assert _decide(iam, policies, "acm:DeleteCertificate", **_resource_tags(_other_fleet(site.tags, "Group/Other")))
    for name in ("Group2/Site", "Group", "GroupSite", "Other/Group/Site"):
        other = _other_fleet(site.tags, name)
        assert not _decide(iam, policies, "acm:DeleteCertificate", **_resource_tags(other)), name
        assert not _decide(iam, policies, "acm:AddTagsToCertificate", **_request_tags(site.tags),
                           **_resource_tags(other)), f"claim {name}"
        assert not _decide(iam, policies, "acm:ImportCertificate", **_request_tags(other)), f"import as {name}"
    assert _decide(iam, policies, "acm:ImportCertificate", **_request_tags(site.tags))
    waiter = site.policies(WAITER)
    assert _decide(iam, waiter, "acm:DeleteCertificate", **own)
    assert not _decide(iam, waiter, "acm:ImportCertificate", **_request_tags(site.tags))
    sweep = site.policies(IMPORTER, sweeper=True)
    retired = {**site.tags, "certfleet:retired": "x"}
    assert _decide(iam, sweep, "acm:DeleteCertificate", **_resource_tags(retired))
    assert not _decide(iam, sweep, "acm:DeleteCertificate", **_resource_tags(site.tags))
    assert not _decide(iam, sweep, "acm:DeleteCertificate", **_resource_tags({**retired, "certfleet:fleet": "G/x"}))


def test_a_groups_importer_reads_only_its_groups_keys(iam: IamEvaluator,
                                                     group: tuple[Fleet, Resolved, str]) -> None:
    site, _, namespace = group
    policies = site.policies(IMPORTER)
    own = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{namespace}Site/key-AbCdEf"
    assert _decide(iam, policies, "secretsmanager:GetSecretValue", own)
    others = [own.replace(namespace, namespace.rstrip("/") + "x/"), own.replace("/group/", "/fleet/"),
              f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:production/ssl/private-key-AbCdEf",
              own.replace(REGION, "us-west-2")]
    for other in others:
        assert not _decide(iam, policies, "secretsmanager:GetSecretValue", other), other
    for action in ("secretsmanager:PutSecretValue", "secretsmanager:DescribeSecret"):
        assert not _decide(iam, policies, action, own), action
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/abcd"
    through: Context = {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com",
                        "kms:EncryptionContext:SecretARN": own}
    assert iam.decide(Request("kms:Decrypt", key, context=through), policies, DEFAULT_KEY_POLICY) == ALLOWED
    contexts: list[Context] = [{**through, "kms:EncryptionContext:SecretARN": others[0]},
                               {**through, "kms:ViaService": "s3.eu-west-1.amazonaws.com"},
                               {"kms:EncryptionContext:SecretARN": own}]
    for context in contexts:
        assert iam.decide(Request("kms:Decrypt", key, context=context), policies, DEFAULT_KEY_POLICY) != ALLOWED
    assert not _decide(iam, site.policies(WAITER), "secretsmanager:GetSecretValue", own), "the waiter reads no key"


def test_a_groups_key_writer_writes_only_its_groups_keys(iam: IamEvaluator,
                                                         group: tuple[Fleet, Resolved, str]) -> None:
    _, primary, namespace = group
    policies = primary.role_policies(primary.role(KEY_WRITER))
    own = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{namespace}Site/us-east-1-1000000/key-AbCdEf"
    for action in ("secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
                   "secretsmanager:DescribeSecret", "secretsmanager:UpdateSecretVersionStage"):
        assert _decide(iam, policies, action, own), action
        assert not _decide(iam, policies, action, own.replace(namespace, namespace.rstrip("/") + "x/")), action
    assert not _decide(iam, policies, "secretsmanager:UpdateSecret", own), "never called by the key writer"
    right: Context = {"kms:EncryptionContext:certfleet:certificate": "www.example.com",
                      "kms:EncryptionContextKeys": ["certfleet:certificate"]}
    assert iam.decide(Request("kms:Decrypt", SEALING_KEY, context=right), policies, DEFAULT_KEY_POLICY) == ALLOWED
    wrong: Context = {**right, "kms:EncryptionContext:certfleet:certificate": "api.example.com"}
    assert iam.decide(Request("kms:Decrypt", SEALING_KEY, context=wrong), policies, DEFAULT_KEY_POLICY) != ALLOWED
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/abcd"
    through: Context = {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
                        "kms:EncryptionContext:SecretARN": own}
    assert iam.decide(Request("kms:GenerateDataKey", key, context=through), policies, DEFAULT_KEY_POLICY) == ALLOWED
    assert iam.decide(Request("kms:Encrypt", key, context=through), policies, DEFAULT_KEY_POLICY) != ALLOWED
