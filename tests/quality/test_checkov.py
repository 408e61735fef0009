"""checkov over certfleet's synthesized templates: every environment of the reference app, and a FleetGroup with
expiry monitoring relayed to another region, certificate files for EC2 and a sealing key.

Gate: no failed check on any resource (certfleet's constructs, its stacks, the CDK Provider inside them, and the
reference app's architectures and pipeline around them), and every skip (``Metadata.checkov.skip``, written with
``certfleet.gates.skip_checkov``) carries a one-line reason. checkov runs from ``.venv-checkov`` (its pins fight
moto's and boto3's in .venv); missing, the test fails in CI (``CI`` set) and is skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnResource, Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import IConstruct

from certfleet import CertificateBundle, FleetGroup, KeySource
from certfleet.ec2 import CertificateFiles
from certfleet.material.demo import DemoPKI
from certfleet.reference import build
from certfleet.sealing import SealingKey
from certfleet.testing.synth import write_reference_app, write_synth_only_sealed_key

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
ENVIRONMENTS: dict[str, dict[str, str] | None] = {
    "demo": {"env": "demo"},
    "dev": {"env": "dev"},
    "staging": {"env": "staging"},
    "prod": {"env": "prod"},
    "pipeline": {"pipeline": "true"},
    "group": None,
}
# The checks the reference app (architectures and pipeline) skips, each reasoned where it is skipped and listed in
# the README's Quality gates: a new kind of skip is a decision for review, not a silent addition.
REFERENCE_SKIPS = frozenset({
    "CKV_AWS_18", "CKV_AWS_21", "CKV_AWS_59", "CKV_AWS_68", "CKV_AWS_111", "CKV_AWS_115", "CKV_AWS_116",
    "CKV_AWS_117", "CKV_AWS_120", "CKV_AWS_158",
})


def checkov() -> Path:
    """The checkov executable: .venv-checkov's, else one beside this Python. Missing: fail in CI, skip elsewhere."""
    for candidate in (ROOT / ".venv-checkov" / "bin" / "checkov", Path(sys.executable).with_name("checkov")):
        if candidate.is_file():
            return candidate
    message = ("checkov is not installed: python3.11 -m venv .venv-checkov && .venv-checkov/bin/pip install "
               "checkov (scripts/setup.sh does it)")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Scan:
    """checkov's verdicts on one synthesized app, split by who made the resource."""

    name: str
    certfleet: set[tuple[str, str]]
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str, str, str]] = field(default_factory=list)
    resources: int = 0

    def failed_by(self, certfleet: bool) -> list[str]:
        return sorted(f"{check} {template}:{logical}" for check, template, logical in self.failed
                      if ((template, logical) in self.certfleet) is certfleet)


def _made_by_certfleet(node: IConstruct) -> bool:
    """Whether a certfleet construct (not the reference app's architectures) made ``node``, at any depth."""
    for scope in node.node.scopes:
        module = type(scope).__module__
        if module.startswith("certfleet.") and not module.startswith("certfleet.reference"):
            return True
    return False


def _certfleet_resources(app: App) -> set[tuple[str, str]]:
    """(template file name, logical id) of every CloudFormation resource certfleet made in ``app``."""
    found = set()
    for node in app.node.find_all():
        if isinstance(node, CfnResource) and _made_by_certfleet(node):
            stack = Stack.of(node)
            found.add((stack.template_file, str(stack.resolve(node.logical_id))))
    return found


def scan(name: str, app: App, outdir: Path) -> Scan:
    """Synthesize ``app`` and run checkov over each of its templates (nested stage assemblies included)."""
    app.synth()
    result = Scan(name, _certfleet_resources(app))
    templates = sorted(str(p.relative_to(outdir)) for p in outdir.rglob("*.template.json"))
    assert templates, f"{name}: nothing synthesized"
    command = [str(checkov()), "--framework", "cloudformation", "--output", "json", "--compact", "--skip-download"]
    for template in templates:
        command += ["--file", template]
    done = subprocess.run(command, cwd=outdir, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode in (0, 1), f"checkov failed to run ({done.returncode}): {done.stderr[-3000:]}"
    data: Any = json.loads(done.stdout)
    for report in data if isinstance(data, list) else [data]:
        if report.get("check_type") not in (None, "cloudformation"):
            continue
        result.resources += int(report["summary"]["resource_count"])
        assert report["summary"]["parsing_errors"] == 0, f"{name}: checkov could not parse a template"
        for check in report["results"]["failed_checks"]:
            result.failed.append((check["check_id"], Path(check["file_path"]).name, check["resource"].split(".")[-1]))
        for check in report["results"]["skipped_checks"]:
            result.skipped.append((check["check_id"], Path(check["file_path"]).name, check["resource"].split(".")[-1],
                                   str(check["check_result"].get("suppress_comment") or "")))
    return result


@pytest.fixture(scope="module")
def app_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like the repository's (cdk.json, demo material with the key sealed, reference/)."""
    folder = tmp_path_factory.mktemp("checkov-app")
    write_reference_app(folder, ROOT, label="checkov")
    return folder


def _group_app(outdir: Path, folder: Path) -> App:
    """A FleetGroup of three fleets whose expiry alerts go to an encrypted topic in another region, certificate
    files for an EC2 role, and a sealing key: every certfleet construct the reference app does not use."""
    app = App(outdir=str(outdir))
    ops = Stack(app, "Ops", env=Environment(account=ACCOUNT, region="eu-west-1"))
    topic = sns.Topic(ops, "Topic", enforce_ssl=True, master_key=kms.Key(ops, "TopicKey", enable_key_rotation=True))
    group = FleetGroup(app, "Group", account=ACCOUNT, regions=["eu-west-1"], max_outputs=4, expiry_topic=topic)
    pki = DemoPKI.create("ec-p256", label="checkov group")
    for i in range(3):
        leaf = pki.leaf((f"site{i}.example.com",), key_type="ec-p256", days=200)
        sealed = write_synth_only_sealed_key(folder / f"site{i}.sealed", leaf.key, f"site{i}.example.com")
        bundle = CertificateBundle.from_pem(leaf.pem().decode(), pki.chain_pem().decode())
        fleet = group.add_fleet(f"Site{i}", bundle=bundle, key=KeySource.sealed(sealed))
    web = Stack(app, "Web", env=Environment(account=ACCOUNT, region="eu-west-1"))
    role = iam.Role(web, "Instance", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    CertificateFiles(web, "Files", source=fleet, role=role)
    SealingKey(web, "Sealing", sealers=[role])
    return app


@pytest.fixture(scope="module", params=list(ENVIRONMENTS))
def scanned(request: pytest.FixtureRequest, app_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Scan:
    name = str(request.param)
    checkov()
    outdir = tmp_path_factory.mktemp(f"checkov-{name}")
    context = ENVIRONMENTS[name]
    if context is None:
        app = _group_app(outdir, app_folder)
    else:
        app = App(outdir=str(outdir), context={**json.loads((app_folder / "cdk.json").read_text())["context"],
                                               **context})
        build(app, app_folder)
    return scan(name, app, outdir)


@pytest.mark.slow
def test_certfleet_resources_pass_checkov_and_every_skip_is_reasoned(scanned: Scan) -> None:
    """GIVEN an environment of the reference app (or the FleetGroup app) WHEN checkov scans its templates THEN no
    check fails on a resource certfleet made, and each skip names its reason on one line"""
    assert scanned.resources > 0 and scanned.certfleet, f"{scanned.name}: nothing of certfleet's was scanned"
    assert scanned.failed_by(certfleet=True) == []
    ours = [s for s in scanned.skipped if (s[1], s[2]) in scanned.certfleet]
    assert {s[0] for s in ours} >= {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117"}, (
        "positive control: certfleet's Metadata.checkov.skip entries are read")
    for check, template, logical, comment in scanned.skipped:
        assert comment.strip() and "\n" not in comment and len(comment) <= 200, (
            f"{check} skipped on {template}:{logical} without a one-line reason: {comment!r}")


@pytest.mark.slow
def test_the_rest_of_the_app_passes_checkov(scanned: Scan) -> None:
    """GIVEN an environment of the reference app (or the FleetGroup app) WHEN checkov scans its templates THEN what
    the app builds around certfleet (the seed's architectures, the CDK pipeline, the group app's topic, key and role)
    fails no check, and skips only the reviewed checks"""
    assert scanned.failed_by(certfleet=False) == []
    theirs = {s[0] for s in scanned.skipped if (s[1], s[2]) not in scanned.certfleet}
    assert theirs <= REFERENCE_SKIPS, f"{scanned.name}: unreviewed checkov skips {sorted(theirs - REFERENCE_SKIPS)}"


def test_a_missing_checkov_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """CI must not pass the gate by not running it: without checkov the test fails when ``CI`` is set."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="checkov is not installed"):
        checkov()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="checkov is not installed"):
        checkov()
