"""Every environment of the reference app synthesizes (demo through the real CDK CLI) and passes cfn-lint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import App
from e2e_support import cfn_lint_errors

from certfleet.checks.assembly import load_cloud_assembly
from certfleet.checks.graph import consumers
from certfleet.material.demo import DemoPKI, Issued
from certfleet.reference import build
from certfleet.rules import RULES, Service
from certfleet.testing.leaks import scan_tree
from certfleet.testing.synth import write_synth_only_sealed_key

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CDK = ROOT / "node_modules" / ".bin" / "cdk"
NAMES = ("www.example.com", "example.com", "*.example.com")
_KEYS: dict[Path, Issued] = {}


pytestmark = pytest.mark.slow  # synth of every environment and the real CDK CLI: minutes


@pytest.fixture(scope="module")
def app_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like the repository's: cdk.json, demo material (the key sealed, never plain) and the
    committed reference material the other environments use."""
    folder = tmp_path_factory.mktemp("app")
    shutil.copy(ROOT / "cdk.json", folder / "cdk.json")
    shutil.copytree(ROOT / "reference", folder / "reference")
    pki = DemoPKI.create(label="environments")
    leaf = pki.leaf(NAMES, days=200)
    _KEYS[folder] = leaf
    (folder / "demo").mkdir()
    (folder / "demo" / "certificate.pem").write_bytes(leaf.pem())
    (folder / "demo" / "chain.pem").write_bytes(pki.chain_pem())
    write_synth_only_sealed_key(folder / "demo" / "private.key.sealed", leaf.key)
    return folder


def _templates(cdk_out: Path) -> list[Path]:
    return sorted(p for p in cdk_out.rglob("*.template.json"))


def test_demo_environment_through_the_real_cdk_cli(app_folder: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
           "CDK_DISABLE_VERSION_CHECK": "1", "NODE_NO_WARNINGS": "1"}
    result = subprocess.run(
        [str(CDK), "synth", "--app", f"python -P {ROOT / 'app.py'}", "-c", "env=demo", "--output", "cdk.out",
         "--quiet", "--no-notices", "--no-version-reporting"],
        cwd=app_folder, capture_output=True, text=True, env=env, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    templates = _templates(app_folder / "cdk.out")
    names = {p.name.removesuffix(".template.json") for p in templates}
    assert {"cloudfront-alb-ap-northeast-1", "edge-api-ap-northeast-1", "http-api-eu-west-1",
            "dr-us-west-2", "amplify-us-west-2", "transfer-ftps-eu-west-1", "beanstalk-ap-northeast-1"} <= names
    assert sum(1 for n in names if n.startswith("Certificates") and "sweeper" not in n) == 4
    assert sum(1 for n in names if n.startswith("Certificatessweeper")) == 1
    assert cfn_lint_errors(templates) == []
    assert scan_tree(app_folder / "cdk.out", _KEYS[app_folder].key) == {}
    _assert_every_consumer_reads_the_right_region(app_folder / "cdk.out")


EXPECTED_SERVICES = {
    "cloudfront-alb-ap-northeast-1": {Service.CLOUDFRONT, Service.ALB},
    "cloudfront-regional-api-eu-west-1": {Service.CLOUDFRONT, Service.API_GATEWAY_REGIONAL},
    "edge-api-ap-northeast-1": {Service.API_GATEWAY_EDGE},
    "http-api-eu-west-1": {Service.API_GATEWAY_V2},
    "dr-us-east-1": {Service.ALB}, "dr-us-west-2": {Service.ALB}, "dr-eu-west-1": {Service.ALB},
    "dr-ap-northeast-1": {Service.ALB},
    "amplify-us-west-2": {Service.AMPLIFY},
    "transfer-ftps-eu-west-1": {Service.TRANSFER_FAMILY},
    "beanstalk-ap-northeast-1": {Service.ELASTIC_BEANSTALK},
}


def _assert_every_consumer_reads_the_right_region(cdk_out: Path) -> None:
    """Each architecture's consumer gets the certificate of the region its service needs, from that stack."""
    found: dict[str, set[Service]] = {}
    for consumer in consumers(load_cloud_assembly(cdk_out)):
        assert consumer.region is not None and consumer.certificate is not None, consumer
        needed = RULES[consumer.service].region_for(consumer.region)
        assert consumer.certificate.region == needed, consumer
        assert consumer.certificate.stack == f"Certificates-{needed}", consumer
        assert consumer.certificate.fleet == "Certificates" and consumer.certificate.strong == "", consumer
        found.setdefault(consumer.stack, set()).add(consumer.service)
    assert found == EXPECTED_SERVICES


@pytest.mark.parametrize("context", [{"env": "dev"}, {"env": "staging"}, {"env": "prod"}, {"pipeline": "true"}])
def test_other_environments_and_the_pipeline_pass_cfn_lint(app_folder: Path, tmp_path: Path,
                                                            context: dict[str, str]) -> None:
    base = json.loads((app_folder / "cdk.json").read_text())["context"]
    app = App(outdir=str(tmp_path / "cdk.out"), context={**base, **context})
    build(app, app_folder)
    app.synth()
    templates = _templates(tmp_path / "cdk.out")
    assert len(templates) >= 4
    assert cfn_lint_errors(templates) == []
    assert scan_tree(tmp_path / "cdk.out", _KEYS[app_folder].key) == {}
