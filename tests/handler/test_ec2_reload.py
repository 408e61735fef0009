"""The EC2 refresh script (certfleet.ec2.REFRESH_SCRIPT), run as the instance runs it, against moto behind StrictAWS.

The script is written to a file and run by Python without site-packages (``-S``: the standard library only, as on
Amazon Linux 2023), with the real AWS CLI on PATH pointed at the strict layer. Its reload command is a small program
that counts its runs, so "reloaded once" is a line count, never a timing.
"""

from __future__ import annotations

import ast
import grp
import json
import os
import pwd
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_route53 as route53
from handler_support import REGION, boto

from certfleet import CertificateFleet, CertificateSource
from certfleet._lambda.certfleet_contract import AcmeMaterial
from certfleet.ec2 import REFRESH_SCRIPT, CertificateFiles
from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import StrictAWS
from certfleet.testing.leaks import find_leaks

COUNT_RUNS = "import sys; open(sys.argv[1], 'a').write(repr(sys.argv[2:]) + '\\n')"
"""The reload command's program: one line per run, with the arguments it was given."""


def _material(issued: Issued, pki: DemoPKI) -> str:
    material = AcmeMaterial(certificate=issued.pem().decode(), chain=pki.chain_pem().decode(),
                            private_key=issued.key_pem().decode(), key_type="rsa-2048",
                            not_after=issued.certificate.not_valid_after_utc.isoformat())
    return json.dumps(material)


class Instance:
    """One instance's view: the script, its settings, the TLS folder, and what the reload command saw."""

    def __init__(self, root: Path, secret_id: str) -> None:
        self.secret_id = secret_id
        self.script = root / "certfleet-refresh"
        self.script.write_text(REFRESH_SCRIPT)
        self.directory = root / "ssl"
        self.directory.mkdir(mode=0o755)
        self.reloads = root / "reloads"
        self.config = root / "certfleet.json"
        names = {"cert": "cert.pem", "chain": "chain.pem", "fullchain": "fullchain.pem", "key": "private.key"}
        self.paths = {kind: self.directory / name for kind, name in names.items()}
        self.settings: dict[str, Any] = {
            "region": REGION, "secret_id": secret_id, "directory": str(self.directory),
            "paths": {kind: str(path) for kind, path in self.paths.items()},
            "owner": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name,
            "attempts": 2, "retry_seconds": 0, "state": str(root / "state" / "unit.reloaded"),
        }
        self.set_reload([sys.executable, "-c", COUNT_RUNS, str(self.reloads), "nginx"])

    def set_reload(self, argv: list[str] | None) -> None:
        """The settings the construct renders, with ``argv`` as the reload command."""
        self.config.write_text(json.dumps({**self.settings, "reload": argv}))

    def run(self, *flags: str) -> subprocess.CompletedProcess[str]:
        """The script as systemd (or the user data, with ``--boot``) runs it; the AWS CLI of this environment."""
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        done = subprocess.run([sys.executable, "-S", str(self.script), *flags, str(self.config)], env=env,
                              capture_output=True, text=True, check=False, timeout=120)
        assert find_leaks(done.stdout + done.stderr) == [], "the script printed key material"
        return done

    def reload_runs(self) -> list[str]:
        return self.reloads.read_text().splitlines() if self.reloads.exists() else []

    def snapshot(self) -> dict[str, tuple[int, int, bytes]]:
        """Each file's inode, mode and bytes (a rename makes a new inode; an untouched file keeps its own)."""
        return {kind: (p.stat().st_ino, p.stat().st_mode & 0o777, p.read_bytes()) for kind, p in self.paths.items()}

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir() if p.name.startswith(".certfleet-"))


@pytest.fixture
def secret_name(aws: StrictAWS) -> str:
    return f"certfleet/fleet/Certificates-{uuid.uuid4().hex[:8]}/material"


@pytest.fixture
def booted(secret_name: str, tmp_path: Path, pki: DemoPKI, leaf: Issued) -> Instance:
    """An instance after its user data ran the script with ``--boot`` on ``leaf``'s material."""
    _put(secret_name, _material(leaf, pki))
    instance = Instance(tmp_path, secret_name)
    done = instance.run("--boot")
    assert done.returncode == 0, done.stderr
    return instance


def _put(name: str, text: str) -> None:
    client = boto("secretsmanager")
    try:
        client.put_secret_value(SecretId=name, SecretString=text)
    except client.exceptions.ResourceNotFoundException:
        client.create_secret(Name=name, SecretString=text)


def test_the_script_is_python_39_and_reads_only_the_contracts_material_fields() -> None:
    ast.parse(REFRESH_SCRIPT, feature_version=(3, 9))  # AL2023's /usr/bin/python3 is 3.9 for its lifetime
    fields = {n.value for n in ast.walk(ast.parse(REFRESH_SCRIPT)) if isinstance(n, ast.Constant)
              and n.value in {"certificate", "chain", "private_key", "key_type", "not_after"}}
    assert fields == {"certificate", "chain", "private_key"} <= set(AcmeMaterial.__annotations__)


def test_boot_writes_every_file_with_its_mode_and_does_not_reload(booted: Instance, pki: DemoPKI,
                                                                  leaf: Issued) -> None:
    instance = booted
    files = instance.snapshot()
    assert files["cert"][2] == leaf.pem()
    assert files["chain"][2] == pki.chain_pem()
    assert files["fullchain"][2] == leaf.pem() + pki.chain_pem()
    assert files["key"][2].strip() == leaf.key_pem().strip()
    assert {kind: mode for kind, (_, mode, _) in files.items()} == {
        "cert": 0o644, "chain": 0o644, "fullchain": 0o644, "key": 0o400}
    assert instance.reload_runs() == [], "at boot the server has not started: it reads the files as it starts"
    assert instance.leftovers() == []


def test_unchanged_certificate_writes_nothing_and_reloads_nothing(booted: Instance) -> None:
    instance = booted
    before = instance.snapshot()
    for _ in range(2):
        done = instance.run()
        assert done.returncode == 0, done.stderr
        assert "unchanged" in done.stdout
    assert instance.snapshot() == before, "an unchanged certificate rewrites no file (same inodes, modes, bytes)"
    assert instance.reload_runs() == []


def test_renewed_certificate_replaces_the_files_and_reloads_once(booted: Instance, pki: DemoPKI) -> None:
    instance = booted
    before = instance.snapshot()
    renewed = pki.leaf(("www.example.com", "example.com"))  # a new key too, as the ACME renewer orders
    _put(instance.secret_id, _material(renewed, pki))
    done = instance.run()
    assert done.returncode == 0, done.stderr
    after = instance.snapshot()
    assert after["cert"][2] == renewed.pem() and after["key"][2].strip() == renewed.key_pem().strip()
    assert after["fullchain"][2] == renewed.pem() + pki.chain_pem()
    assert all(after[kind][0] != before[kind][0] for kind in after), "each file is replaced by a rename"
    assert {kind: mode for kind, (_, mode, _) in after.items()} == {
        "cert": 0o644, "chain": 0o644, "fullchain": 0o644, "key": 0o400}
    assert instance.reload_runs() == ["['nginx']"]
    assert instance.leftovers() == []
    assert instance.run().returncode == 0
    assert instance.reload_runs() == ["['nginx']"], "the next run finds nothing new: no second reload"


def test_material_without_a_certificate_fails_and_writes_nothing(secret_name: str, tmp_path: Path, pki: DemoPKI,
                                                                 leaf: Issued) -> None:
    material: dict[str, Any] = json.loads(_material(leaf, pki))
    del material["certificate"]
    _put(secret_name, json.dumps(material))
    instance = Instance(tmp_path, secret_name)
    done = instance.run()
    assert done.returncode == 1
    assert done.stderr.startswith(f"certfleet: {instance.directory}: the secret {secret_name} in {REGION} holds no "
                                  "certificate")
    assert "nothing was written" in done.stderr
    assert list(instance.directory.iterdir()) == []
    assert instance.reload_runs() == []


@pytest.mark.parametrize("secret_text", ["certfleet: the issuer replaces this value", '["not", "material"]'])
def test_a_secret_that_is_not_material_fails_at_boot_after_its_attempts(secret_name: str, tmp_path: Path,
                                                                        secret_text: str) -> None:
    _put(secret_name, secret_text)
    instance = Instance(tmp_path, secret_name)
    done = instance.run("--boot")
    assert done.returncode == 1
    assert "does not hold certificate material" in done.stderr
    assert list(instance.directory.iterdir()) == []


def test_a_key_that_does_not_match_the_certificate_is_refused(booted: Instance, pki: DemoPKI, leaf: Issued) -> None:
    instance = booted
    before = instance.snapshot()
    other = pki.leaf(("www.example.com",))
    material = json.loads(_material(other, pki))
    material["private_key"] = leaf.key_pem().decode()  # the old key with the new certificate
    _put(instance.secret_id, json.dumps(material))
    done = instance.run()
    assert done.returncode == 1
    assert "private key that does not match its certificate" in done.stderr
    assert instance.snapshot() == before
    assert instance.reload_runs() == []


def test_an_unreadable_secret_fails_naming_it(secret_name: str, tmp_path: Path) -> None:
    instance = Instance(tmp_path, secret_name)  # never created
    done = instance.run()
    assert done.returncode == 1
    assert f"could not read the secret {secret_name} in {REGION}" in done.stderr
    assert list(instance.directory.iterdir()) == []


def test_a_failed_reload_is_tried_again_by_the_next_run_without_rewriting(booted: Instance, pki: DemoPKI) -> None:
    instance = booted
    instance.set_reload([sys.executable, "-c", "raise SystemExit(3)"])
    _put(instance.secret_id, _material(pki.leaf(("www.example.com",)), pki))
    done = instance.run()
    assert done.returncode == 1
    assert "the files are current but" in done.stderr and "exited 3" in done.stderr
    written = instance.snapshot()
    instance.set_reload([sys.executable, "-c", COUNT_RUNS, str(instance.reloads), "nginx"])
    for _ in range(2):
        assert instance.run().returncode == 0
        assert instance.reload_runs() == ["['nginx']"], "the reload the failed run owed, once"
    assert instance.snapshot() == written, "the files were already current: not written again"


HOSTILE_ARGUMENTS = ["'; touch {marker}; echo '", "$(touch {marker})", "`touch {marker}`", '"; touch {marker} #']


def test_reload_arguments_reach_the_program_as_text_never_through_a_shell(secret_name: str, tmp_path: Path,
                                                                         pki: DemoPKI, leaf: Issued) -> None:
    marker = tmp_path / "injected"
    arguments = [a.format(marker=marker) for a in HOSTILE_ARGUMENTS]
    _put(secret_name, _material(leaf, pki))
    instance = Instance(tmp_path, secret_name)
    instance.set_reload([sys.executable, "-c", COUNT_RUNS, str(instance.reloads), *arguments])
    assert instance.run().returncode == 0
    assert instance.reload_runs() == [repr(arguments)]
    assert not marker.exists(), "a reload argument ran as a shell command"


def test_boot_waits_for_the_material_to_arrive(secret_name: str, tmp_path: Path, pki: DemoPKI, leaf: Issued) -> None:
    _put(secret_name, "certfleet: the issuer replaces this value")  # a replica before the first issuance reached it
    instance = Instance(tmp_path, secret_name)
    instance.settings.update(attempts=600, retry_seconds=0.05)
    instance.set_reload(None)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with subprocess.Popen([sys.executable, "-S", str(instance.script), "--boot", str(instance.config)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as booting:
        assert booting.stderr is not None
        first = booting.stderr.readline()  # the first refusal: the material arrives only after it
        assert "does not hold certificate material" in first and first.endswith("; trying again (1/600)\n")
        _put(secret_name, _material(leaf, pki))
        _, rest = booting.communicate(timeout=120)
    assert booting.returncode == 0, rest
    assert instance.paths["cert"].read_bytes() == leaf.pem()
    assert find_leaks(first + rest) == []


def _rendered_user_data(reload: list[str]) -> tuple[CertificateFiles, str]:
    """The user data of an instance in REGION, a replica region of an ACME fleet, with this user's files."""
    app = App()
    zones = Stack(app, "Zones", env=Environment(account="123456789012", region=REGION))
    zone = route53.HostedZone.from_hosted_zone_attributes(zones, "Zone", hosted_zone_id="Z0123456789ABCDEFGHIJ",
                                                          zone_name="example.com")
    source = CertificateSource.acme(directory_url="https://acme.example.com/directory",
                                    domains=["www.example.com", "example.com"], hosted_zone=zone)
    fleet = CertificateFleet(app, "Certificates", source=source, account="123456789012",
                             regions=["ap-south-1", REGION], edge=False)
    web = Stack(app, "Web", env=Environment(account="123456789012", region=REGION))
    role = iam.Role(web, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    files = CertificateFiles(web, "Tls", source=fleet, role=role, directory="/srv/tls", reload_command=reload,
                             owner=pwd.getpwuid(os.getuid()).pw_name, group=grp.getgrgid(os.getgid()).gr_name)
    user_data = ec2.UserData.for_linux()
    files.add_to(user_data)
    return files, user_data.render()


def test_the_rendered_user_data_installs_the_timer_and_its_service_refreshes(aws: StrictAWS, tmp_path: Path,
                                                                             pki: DemoPKI, leaf: Issued) -> None:
    reloads = tmp_path / "reloads"
    files, script = _rendered_user_data([sys.executable, "-c", COUNT_RUNS, str(reloads), "nginx"])
    assert files.region == REGION and files.unit is not None
    _put(files.key.id_for_handler, _material(leaf, pki))  # the replica the instance reads
    moved = {"/usr/local/libexec/certfleet": tmp_path / "libexec", "/etc/certfleet": tmp_path / "settings",
             "/var/lib/certfleet": tmp_path / "state", "/etc/systemd/system": tmp_path / "units",
             "/srv/tls": tmp_path / "tls", "/usr/bin/python3": f"{sys.executable} -S", "-o root -g root ": ""}
    for path, here in moved.items():
        script = script.replace(path, str(here))
    (tmp_path / "units").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text('#!/bin/sh\necho "$*" >> "$CERTFLEET_TEST_SYSTEMCTL"\n')
    (bin_dir / "systemctl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
           "CERTFLEET_TEST_SYSTEMCTL": str(tmp_path / "systemctl")}
    booted = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert booted.returncode == 0, booted.stderr
    timer = f"{files.unit}.timer"
    assert (tmp_path / "systemctl").read_text().splitlines() == ["daemon-reload", f"enable {timer}", f"start {timer}"]
    assert (tmp_path / "tls" / "cert.pem").read_bytes() == leaf.pem()
    assert (tmp_path / "tls" / "private.key").stat().st_mode & 0o777 == 0o400
    assert not reloads.exists(), "the first run at boot reloads nothing"
    _put(files.key.id_for_handler, _material(pki.leaf(("www.example.com", "example.com")), pki))
    service = (tmp_path / "units" / f"{files.unit}.service").read_text()
    (exec_start,) = [line.split("=", 1)[1] for line in service.splitlines() if line.startswith("ExecStart=")]
    for _ in range(2):  # the timer's runs: the renewal, then nothing new
        done = subprocess.run(exec_start.split(), env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert find_leaks(done.stdout + done.stderr) == []
    assert reloads.read_text().splitlines() == ["['nginx']"]
    assert find_leaks(booted.stdout + booted.stderr) == []
