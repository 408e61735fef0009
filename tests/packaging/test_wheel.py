"""The sdist and the wheel: built, checked with twine, each installed into a fresh venv and used from a folder
outside the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

APP = '''
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_cloudfront as cloudfront, aws_cloudfront_origins as origins
import certfleet
from certfleet import CertificateBundle, CertificateFleet, KeySource, Service

app = App(outdir="cdk.out")
bundle = CertificateBundle.from_files("cert.pem", chain="chain.pem")
fleet = CertificateFleet(app, "Certificates", bundle=bundle, account="123456789012", regions=["eu-west-1"],
                         key=KeySource.secret("arn:aws:secretsmanager:us-east-1:123456789012:secret:tls-AbCdEf"))
web = Stack(app, "Web", env=Environment(account="123456789012", region="eu-west-1"))
cloudfront.Distribution(web, "Cdn", default_behavior=cloudfront.BehaviorOptions(
    origin=origins.HttpOrigin("origin.example.com")), domain_names=["www.example.com"],
    certificate=fleet.certificate_for(web, Service.CLOUDFRONT))
from aws_cdk import aws_route53 as route53
from certfleet import CertificateSource
zone = route53.HostedZone.from_hosted_zone_attributes(web, "Zone", hosted_zone_id="Z0EXAMPLE",
                                                      zone_name="example.com")
CertificateFleet(app, "Acme", account="123456789012", regions=["eu-west-1"], source=CertificateSource.acme(
    directory_url="https://acme.example.net/directory", domains=["www.example.com"], hosted_zone=zone))
app.synth()
print(certfleet.__file__)
'''


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build``: the sdist, then the wheel built from that sdist (so a file the sdist lacks breaks both)."""
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("certfleet-*.whl")
    return found


@pytest.fixture(scope="module")
def sdist(dist: Path) -> Path:
    (found,) = dist.glob("certfleet-*.tar.gz")
    return found


def test_twine_check_passes_on_the_sdist_and_the_wheel(wheel: Path, sdist: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert run.stdout.count("PASSED") == 2


def test_the_sdist_carries_the_sources_and_no_tests_or_demo_material(sdist: Path) -> None:
    with tarfile.open(sdist) as archive:
        names = [n.split("/", 1)[1] for n in archive.getnames() if "/" in n]
    for needed in ("README.md", "CHANGELOG.md", "pyproject.toml", "constructs/certfleet/_lambda/certfleet_import.py",
                   "constructs/certfleet/_lambda/certfleet_sweeper.py",
                   "constructs/certfleet/_lambda/certfleet_keywriter.py",
                   "constructs/certfleet/_lambda/certfleet_keyversion.py",
                   "constructs/certfleet/_lambda/certfleet_common.py",
                   "constructs/certfleet/_lambda/certfleet_contract.py",
                   "constructs/certfleet/py.typed",
                   "constructs/certfleet/cli/main.py"):
        assert needed in names, f"the sdist lacks {needed}"
    assert not [n for n in names if n.startswith(("tests/", "demo/", "cdk.out/", "bench/"))]
    assert not [n for n in names if n.endswith((".key", ".sealed", ".pem", ".pfx", ".p12"))]


def test_the_wheel_carries_the_handlers_and_no_tests(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for handler in ("certfleet_import.py", "certfleet_sweeper.py", "certfleet_keywriter.py", "certfleet_keyversion.py",
                    "certfleet_common.py", "certfleet_contract.py", "__init__.py"):
        assert f"certfleet/_lambda/{handler}" in names
    for handler in ("certfleet_acme.py", "certfleet_acme_dns.py", "certfleet_acme_handler.py"):
        assert f"certfleet/_lambda_acme/{handler}" in names
    assert "certfleet/py.typed" in names
    assert "certfleet/testing/framework_server.mjs" in names
    assert not [n for n in names if "node_modules" in n or n.endswith(".js")], "no npm code in the wheel"
    assert any(n.startswith("certfleet/testing/") for n in names)
    assert not any(n.startswith(("tests/", "constructs/")) for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "certfleet = certfleet.cli.main:main" in zipfile.ZipFile(wheel).read(entry).decode()


def _install_and_synthesize(package: Path, tmp_path: Path, leaf: object, pki: object) -> None:
    """``package`` (a wheel or an sdist) installed alone into a fresh venv synthesizes a fleet from another folder."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # The dependencies (aws-cdk-lib is ~60 MB) are borrowed read-only from the development venv through a .pth
    # line, which adds that folder without running its .pth files: its editable certfleet stays invisible.
    site = next((env_dir / "lib").glob("python3*/site-packages"))
    borrowed = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "aws_cdk").is_dir())
    (site / "zz-borrowed-dependencies.pth").write_text(f"{borrowed}\n")
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              "--no-deps", str(package)], capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stderr[-2000:]
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "cert.pem").write_bytes(leaf.pem())  # type: ignore[attr-defined]
    (folder / "chain.pem").write_bytes(pki.chain_pem())  # type: ignore[attr-defined]
    (folder / "app.py").write_text(APP)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    run = subprocess.run([str(python), "-P", "app.py"], cwd=folder, capture_output=True, text=True, env=env,
                         check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert str(env_dir) in run.stdout, "certfleet came from the fresh venv, not the repository"
    manifest = json.loads((folder / "cdk.out" / "manifest.json").read_text())
    assert any(a.get("properties", {}).get("stackName") == "Certificates-eu-west-1"
               for a in manifest["artifacts"].values())
    assets = [p for p in (folder / "cdk.out").glob("asset.*") if (p / "certfleet_import.py").is_file()]
    assert assets, "the Lambda asset holds the handler"
    assert {p.name for p in assets[0].iterdir()} == {
        "certfleet_import.py", "certfleet_sweeper.py", "certfleet_keywriter.py", "certfleet_keyversion.py",
        "certfleet_common.py", "certfleet_contract.py"}
    acme = [p for p in (folder / "cdk.out").glob("asset.*") if (p / "certfleet_acme_handler.py").is_file()]
    assert acme, "the ACME asset holds the issuer's and renewer's handler"
    assert {"certfleet_acme.py", "certfleet_acme_dns.py", "certfleet_contract.py", "acme", "josepy",
            "cryptography"} <= {p.name for p in acme[0].iterdir()}
    cli = subprocess.run([str(env_dir / "bin" / "certfleet"), "inspect", "cert.pem", "--json"], cwd=folder,
                         capture_output=True, text=True, env=env, check=False)
    assert cli.returncode == 0 and json.loads(cli.stdout)[0]["certificates"][0]["names"]


def test_installed_wheel_synthesizes_a_fleet_from_any_folder(wheel: Path, tmp_path: Path, leaf: object,
                                                             pki: object) -> None:
    _install_and_synthesize(wheel, tmp_path, leaf, pki)


def test_installed_sdist_synthesizes_a_fleet_from_any_folder(sdist: Path, tmp_path: Path, leaf: object,
                                                             pki: object) -> None:
    _install_and_synthesize(sdist, tmp_path, leaf, pki)
