"""The reference pipeline synthesizes from a clean checkout, as its CodeBuild Synth step does (issue 15 item 7).

The checkout holds only the files git tracks (or would track): no demo/, no cdk.out, no .venv of its own. What
``bash scripts/setup.sh`` makes in CodeBuild (.venv, node_modules) is the repository's, linked in: running
setup.sh here could reinstall the shared .venv's editable package from the temporary folder. PYTHONPATH points
at the checkout's source, as setup.sh's editable install does in CodeBuild, so a module git does not track fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Stage, assertions
from aws_cdk import aws_cloudwatch as cloudwatch
from cryptography import x509

from certfleet.reference import SYNTH_COMMANDS, build

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
MIN_DAYS_LEFT = 180
REGENERATE = ".venv/bin/python -P scripts/reference_material.py (then commit reference/)"
PROD_REGIONS = {"us-east-1", "ap-northeast-1", "eu-west-1", "us-west-2"}  # the fleet's regions and the edge


def tracked_files() -> list[str]:
    """What a clean checkout holds: tracked files and new ones not ignored (this change's, before its commit)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("checkout")
    for name in tracked_files():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, folder / name)
    assert not (folder / "demo").exists(), "demo/ is git-ignored: a clean checkout has none"
    for made_by_setup in (".venv", "node_modules"):
        (folder / made_by_setup).symlink_to(ROOT / made_by_setup, target_is_directory=True)
    return folder


def clean_path() -> str:
    """The caller's PATH without the virtual environment: CodeBuild starts with none."""
    keep = [p for p in os.environ["PATH"].split(os.pathsep) if p and Path(p).resolve() != VENV_BIN.resolve()]
    return os.pathsep.join(keep)


@pytest.fixture(scope="module")
def pipeline_out(checkout: Path) -> Path:
    """Run the Synth step's commands in the checkout (all but setup.sh, whose results are linked in)."""
    assert SYNTH_COMMANDS[0] == "bash scripts/setup.sh" and (checkout / "scripts" / "setup.sh").is_file()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(PATH=clean_path(), PYTHONPATH=str(checkout / "constructs"), CDK_DISABLE_VERSION_CHECK="1",
               NODE_NO_WARNINGS="1")
    for command in SYNTH_COMMANDS[1:]:
        result = subprocess.run(["bash", "-c", command + " --quiet --no-notices --no-version-reporting"],
                                cwd=checkout, env=env, capture_output=True, text=True, check=False, timeout=900)
        assert result.returncode == 0, f"{command}: {result.stderr[-3000:]}"
    return checkout / "cdk.out"


def _manifest(assembly: Path) -> dict[str, Any]:
    return dict(json.loads((assembly / "manifest.json").read_text()))


def _stacks(assembly: Path) -> dict[str, dict[str, Any]]:
    """Stack artifacts of one (nested) cloud assembly, by stack name."""
    return {a["properties"].get("stackName", name): a for name, a in _manifest(assembly)["artifacts"].items()
            if a["type"] == "aws:cloudformation:stack"}


def _stage(cdk_out: Path, stage: str) -> Path:
    return cdk_out / f"assembly-CertfleetPipeline-{stage}"


def _build_commands(cdk_out: Path) -> list[list[str]]:
    """The build commands of every CodeBuild project of the pipeline stack."""
    template = json.loads((cdk_out / "CertfleetPipeline.template.json").read_text())
    return [json.loads(r["Properties"]["Source"]["BuildSpec"])["phases"]["build"]["commands"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::CodeBuild::Project" and "BuildSpec" in r["Properties"].get("Source", {})]


def test_the_synth_step_runs_what_was_tested(pipeline_out: Path) -> None:
    synth = [c for c in _build_commands(pipeline_out) if any("cdk synth" in line for line in c)]
    assert synth == [list(SYNTH_COMMANDS)]


def test_the_pipeline_turns_on_prod_termination_protection_after_deploying(pipeline_out: Path) -> None:
    """CodePipeline's CloudFormation actions ignore the flag (aws/aws-cdk#17871): a post step sets it."""
    protect = [c for c in _build_commands(pipeline_out) if any("update-termination-protection" in x for x in c)]
    assert len(protect) == 1
    protected = {line.split("--stack-name ")[1].split()[0] for line in protect[0] if "--stack-name" in line}
    assert protected == set(_stacks(_stage(pipeline_out, "prod")))
    roles = {line.split()[-1] for line in protect[0] if ".role_arn " in line}
    assert roles == {f"arn:aws:iam::333333333333:role/cdk-hnb659fds-deploy-role-333333333333-{r}" for r in PROD_REGIONS}
    template = assertions.Template.from_json(json.loads((pipeline_out / "CertfleetPipeline.template.json").read_text()))
    template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": assertions.Match.array_with([
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Resource": assertions.Match.array_with(sorted(roles))},
    ])}})


def test_prod_stacks_are_termination_protected_and_the_others_not(pipeline_out: Path) -> None:
    prod = _stacks(_stage(pipeline_out, "prod"))
    assert len(prod) >= 10 and {"prod-Alerts", "prod-Certificates-us-east-1"} <= set(prod)
    unprotected = [n for n, a in prod.items() if a["properties"].get("terminationProtection") is not True]
    assert unprotected == []
    for stage in ("dev", "staging"):
        stacks = _stacks(_stage(pipeline_out, stage))
        assert stacks and not any(a["properties"].get("terminationProtection") for a in stacks.values())


def test_prod_alarms_reach_an_encrypted_topic_in_a_stack_of_its_own(pipeline_out: Path) -> None:
    assembly = _stage(pipeline_out, "prod")
    templates = {name: json.loads((assembly / a["properties"]["templateFile"]).read_text())
                 for name, a in _stacks(assembly).items()}
    alerts = assertions.Template.from_json(templates["prod-Alerts"])
    alerts.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": assertions.Match.any_value()})
    alerts.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    alerts.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email",
                                                              "Endpoint": "certificates@example.com"})
    alarmed = {}
    for name, body in templates.items():
        for resource in body["Resources"].values():
            if resource["Type"] == "AWS::CloudWatch::Alarm":
                props = resource["Properties"]
                assert props["MetricName"] == "DaysToExpiry" and props["Threshold"] == 30, (name, props)
                alarmed[name.removeprefix("prod-Certificates-")] = props
    assert set(alarmed) == PROD_REGIONS
    for stage in ("dev", "staging"):
        other = _stage(pipeline_out, stage)
        assert not any('"AWS::CloudWatch::Alarm"' in (other / a["properties"]["templateFile"]).read_text()
                       for a in _stacks(other).values())


def _dev_folder(tmp_path: Path) -> Path:
    """cdk.json and the committed reference/ material; no demo/."""
    shutil.copy(ROOT / "cdk.json", tmp_path / "cdk.json")
    shutil.copytree(ROOT / "reference", tmp_path / "reference")
    return tmp_path


def test_env_dev_reads_no_other_environment(tmp_path: Path) -> None:
    root = _dev_folder(tmp_path)
    context = json.loads((root / "cdk.json").read_text())["context"]
    context["certfleet"]["environments"]["staging"] = {"certificate": "nowhere.pem"}  # broken, and not asked for
    app = App(outdir=str(tmp_path / "cdk.out"), context={**context, "env": "dev"})
    build(app, root)  # the demo environment's files (demo/) do not exist here
    names = {c.stack_name for c in app.node.find_all() if isinstance(c, Stack)}
    assert {"Certificates-us-east-1", "cloudfront-alb-ap-northeast-1", "http-api-eu-west-1"} <= names


def test_the_pipeline_reads_only_the_environments_it_deploys(tmp_path: Path) -> None:
    root = _dev_folder(tmp_path)
    context = json.loads((root / "cdk.json").read_text())["context"]
    context["certfleet"]["environments"]["staging"] = {"certificate": "nowhere.pem"}  # broken, and not deployed
    app = App(context={**context, "pipeline": "true", "pipeline_order": "dev, prod"})  # as `-c` gives it: a string
    build(app, root)  # no demo/ here either
    stages = {c.stage_name for c in app.node.find_all() if isinstance(c, Stage) and c is not app}
    assert stages == {"dev", "prod"}


def test_the_environment_asked_for_still_needs_its_files(tmp_path: Path) -> None:
    root = _dev_folder(tmp_path)
    context = json.loads((root / "cdk.json").read_text())["context"]
    with pytest.raises(ValueError, match=r"environments\.demo: .*demo/private\.key\.sealed does not exist.*demo\.sh"):
        build(App(context={**context, "env": "demo"}), root)
    with pytest.raises(ValueError, match=r"no environment 'qa' in cdk\.json .*have: demo, dev, staging, prod"):
        build(App(context={**context, "env": "qa"}), root)


def test_env_prod_alone_is_protected_and_monitored(tmp_path: Path) -> None:
    root = _dev_folder(tmp_path)
    context = json.loads((root / "cdk.json").read_text())["context"]
    app = App(outdir=str(tmp_path / "cdk.out"), context={**context, "env": "prod"})
    build(app, root)
    stacks = [c for c in app.node.find_all() if isinstance(c, Stack)]
    assert len(stacks) >= 10 and all(s.termination_protection for s in stacks)
    alarms = [c for c in app.node.find_all() if isinstance(c, cloudwatch.Alarm)]
    assert {Stack.of(a).region for a in alarms} == PROD_REGIONS


@pytest.mark.parametrize("alerts", [{"days": 30}, {"region": "us-east-1", "days": 0},
                                    {"region": "us-east-1", "emails": "ops@example.com"}])
def test_a_bad_expiry_alerts_entry_names_itself(tmp_path: Path, alerts: dict[str, Any]) -> None:
    root = _dev_folder(tmp_path)
    context = json.loads((root / "cdk.json").read_text())["context"]
    context["certfleet"]["environments"]["prod"]["expiry_alerts"] = alerts
    with pytest.raises(ValueError, match=r"environments\.prod\.expiry_alerts"):
        build(App(context={**context, "env": "prod"}), root)


def test_the_committed_reference_material_is_far_from_expiry() -> None:
    now = dt.datetime.now(dt.UTC)
    for name in ("certificate.pem", "chain.pem"):
        for cert in x509.load_pem_x509_certificates((ROOT / "reference" / name).read_bytes()):
            left = (cert.not_valid_after_utc - now).days
            assert left >= MIN_DAYS_LEFT, (
                f"reference/{name}: {cert.subject.rfc4514_string()} expires in {left} days "
                f"({cert.not_valid_after_utc:%Y-%m-%d}); renew the example material: {REGENERATE}")
