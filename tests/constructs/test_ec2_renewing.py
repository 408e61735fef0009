"""EC2 files of a certificate that renews without a deploy (CertificateSource.acme): read from the material secret at
boot, refreshed by a systemd timer, the reload command kept as data; hostile reload commands and paths refused."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_route53 as route53
from aws_cdk.assertions import Template
from construct_support import ACCOUNT

from certfleet import CertificateBundle, CertificateFleet, CertificateSource, ImportedCertificate, KeySource
from certfleet.ec2 import REFRESH_SCRIPT, REFRESH_SCRIPT_PATH, CertificateFiles

MATERIAL = "certfleet/fleet/Certificates-eu-west-1/www.example.com/key"
"""The fleet's material secret (the primary stack's key secret name)."""
SETTINGS = {"region", "secret_id", "directory", "paths", "owner", "group", "attempts", "retry_seconds", "reload",
            "state"}
"""What the refresh script reads from its settings (tests/handler/test_ec2_reload.py writes the same keys)."""


def _acme_fleet(app: App) -> CertificateFleet:
    zones = Stack(app, "Zones", env=Environment(account=ACCOUNT, region="eu-west-1"))
    zone = route53.HostedZone.from_hosted_zone_attributes(zones, "Zone", hosted_zone_id="Z0123456789ABCDEFGHIJ",
                                                          zone_name="example.com")
    source = CertificateSource.acme(directory_url="https://acme.example.com/directory",
                                    domains=["www.example.com", "example.com"], hosted_zone=zone)
    return CertificateFleet(app, "Certificates", source=source, account=ACCOUNT, regions=["eu-west-1", "ap-south-1"],
                            edge=False)


def _files(region: str = "ap-south-1", **kwargs: Any) -> tuple[CertificateFiles, Stack]:
    app = App()
    fleet = _acme_fleet(app)
    web = Stack(app, "Web", env=Environment(account=ACCOUNT, region=region))
    role = iam.Role(web, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    return CertificateFiles(web, "Tls", source=fleet, role=role, **kwargs), web


def _written(files: CertificateFiles) -> dict[str, str]:
    """path -> text of every file the user data writes through a here-document."""
    lines, found = files.commands, {}
    for i, line in enumerate(lines):
        if line.startswith("cat > ") and line.endswith("<<'CERTFLEET_FILE'"):
            found[shlex.split(line)[2]] = lines[i + 1] + "\n"
    return found


def _settings(files: CertificateFiles) -> dict[str, Any]:
    (text,) = [t for p, t in _written(files).items() if p.startswith("/etc/certfleet/")]
    settings: dict[str, Any] = json.loads(text)
    return settings


def _statements(stack: Stack) -> list[dict[str, Any]]:
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_user_data_carries_no_pem_and_installs_the_script_settings_and_timer() -> None:
    files, _ = _files(reload_command="systemctl reload nginx", directory="/etc/nginx/ssl", owner="nginx",
                      group="nginx")
    user_data = ec2.UserData.for_linux()
    files.add_to(user_data)
    script = user_data.render()
    assert "-----BEGIN" not in script, "the certificate renews: it is read from the secret, never in user data"
    written = _written(files)
    assert written[REFRESH_SCRIPT_PATH] == REFRESH_SCRIPT
    unit = files.unit
    assert unit is not None and unit.startswith("certfleet-etc-nginx-ssl-")
    settings = _settings(files)
    assert set(settings) == SETTINGS
    assert settings["secret_id"] == MATERIAL and settings["region"] == "ap-south-1"  # the fleet's replica here
    assert settings["reload"] == ["systemctl", "reload", "nginx"]
    assert settings["paths"] == {"cert": files.certificate_path, "chain": files.chain_path,
                                 "fullchain": files.fullchain_path, "key": files.key_path}
    assert (settings["owner"], settings["group"], settings["directory"]) == ("nginx", "nginx", "/etc/nginx/ssl")
    timer = written[f"/etc/systemd/system/{unit}.timer"]
    for line in ("OnBootSec=5min", "OnCalendar=daily", "RandomizedDelaySec=1h", "Persistent=true",
                 "WantedBy=timers.target"):
        assert line in timer.splitlines()
    service = written[f"/etc/systemd/system/{unit}.service"]
    assert f"ExecStart=/usr/bin/python3 {REFRESH_SCRIPT_PATH} /etc/certfleet/{unit}.json" in service.splitlines()
    assert "Type=oneshot" in service.splitlines()
    enable = script.index(f"systemctl daemon-reload && systemctl enable {unit}.timer\n")
    boot = script.index(f"/usr/bin/python3 {REFRESH_SCRIPT_PATH} --boot /etc/certfleet/{unit}.json || ")
    assert enable < boot < script.index(f"\nsystemctl start {unit}.timer"), "the timer runs after the first run"
    assert f"systemctl start {unit}.timer; exit 1; }}" in script, "and also when the first run fails: it retries"
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    files, _ = _files(reload_command=["systemctl", "reload", "nginx"])
    units = {Path(p).name: t for p, t in _written(files).items() if p.startswith("/etc/systemd/system/")}
    assert sorted(units) == [f"{files.unit}.service", f"{files.unit}.timer"]
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / n) for n in sorted(units))],
                          capture_output=True, text=True, check=False, timeout=60)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


def test_replica_region_reads_its_replica_without_kms_and_primary_decrypts_through_secrets_manager() -> None:
    _, replica = _files("ap-south-1")
    (read,) = [s for s in _statements(replica) if "secretsmanager:GetSecretValue" in s["Action"]]
    assert f":secretsmanager:ap-south-1:{ACCOUNT}:secret:{MATERIAL}-??????" in json.dumps(read["Resource"])
    assert not [s for s in _statements(replica) if "kms:Decrypt" in s["Action"]], "replicas use aws/secretsmanager"
    files, elsewhere = _files("sa-east-1")  # no replica there: the primary, encrypted with the fleet's CMK
    assert _settings(files)["region"] == "eu-west-1"
    (read,) = [s for s in _statements(elsewhere) if "secretsmanager:GetSecretValue" in s["Action"]]
    assert f":secretsmanager:eu-west-1:{ACCOUNT}:secret:{MATERIAL}-??????" in json.dumps(read["Resource"])
    (decrypt,) = [s for s in _statements(elsewhere) if "kms:Decrypt" in s["Action"]]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}}
    assert "Fn::GetStackOutput" in decrypt["Resource"]


def test_without_a_reload_command_the_timer_only_rewrites_the_files() -> None:
    files, _ = _files()
    assert files.reload_command is None and _settings(files)["reload"] is None


def test_each_directory_has_its_own_units() -> None:
    units = {_files(directory=d)[0].unit for d in ("/etc/a-b", "/etc/a/b", "/etc/ssl/certfleet", "/etc/ssl/certfleet/")}
    assert len(units) == 3, units  # a trailing slash is the same directory


def test_the_server_block_names_the_declared_domains() -> None:
    files, _ = _files(directory="/etc/nginx/ssl")
    assert files.bundle is None
    assert 'server_name "www.example.com" "example.com";' in files.nginx_server_block()


def test_quotes_in_a_reload_argument_stay_data_through_the_shell(tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    argv = ["/usr/bin/printf", "%s\\n", f"it's \"quoted\" $(touch {marker}) `touch {marker}` ; && | \\"]
    files, _ = _files(reload_command=argv)
    (config,) = [p for p in _written(files) if p.startswith("/etc/certfleet/")]
    start = files.commands.index(f"cat > {config} <<'CERTFLEET_FILE'")
    here = tmp_path / "settings.json"
    lines = [line.replace(config, str(here)) for line in files.commands[start:start + 4]]
    subprocess.run(["bash", "-c", "\n".join(lines)], check=True, timeout=30)
    assert json.loads(here.read_text())["reload"] == argv, "the shell wrote the settings as they were rendered"
    assert not marker.exists()
    for line in files.commands:
        if "\n" not in line:
            shlex.split(line, comments=True)  # balanced: no value spills onto the next line


@pytest.mark.parametrize(("command", "message"), [
    ("systemctl reload nginx\ntouch /tmp/x", "holds a newline or another control character"),
    (["systemctl", "reload", "nginx\rtouch"], "holds a newline or another control character"),
    ("systemctl reload 'nginx", "leaves a quote open"),
    ("systemctl reload nginx; touch /tmp/x", r"runs without a shell, so ';' would be a plain argument"),
    ("systemctl reload nginx && touch /tmp/x", r"runs without a shell, so '&&' would be a plain argument"),
    ("kill -HUP $(cat /run/nginx.pid)", r"runs without a shell, so '\$\(cat'"),
    ("kill -HUP `cat /run/nginx.pid`", "runs without a shell"),
    ([], "must start with a program name or an absolute path"),
    (["../bin/reload"], "must start with a program name or an absolute path"),
    (["/usr/sbin/../../tmp/x"], "must start with a program name or an absolute path"),
    (["$(id)"], "must start with a program name or an absolute path"),
])
def test_reload_commands_that_cannot_be_one_argument_list_are_refused(command: str | list[str],
                                                                      message: str) -> None:
    with pytest.raises(ValueError, match=rf"^Web/Tls: reload_command .*({message})"):
        _files(reload_command=command)


@pytest.mark.parametrize("directory", ["/etc/ssl/my certs", "/etc/ssl/it's", '/etc/ssl/"x"', "/etc/$(id)",
                                       "/etc/ssl/a\nb", "/etc/ssl/../../tmp"])
def test_paths_with_spaces_quotes_or_parents_are_refused(directory: str) -> None:
    with pytest.raises(ValueError, match=r"^Web/Tls: directory .* must be an absolute path"):
        _files(directory=directory)


@pytest.mark.parametrize(("command", "argv"), [
    ("systemctl reload nginx", ["systemctl", "reload", "nginx"]),
    ("/usr/sbin/apachectl -k graceful", ["/usr/sbin/apachectl", "-k", "graceful"]),
    ("printf 'a; b' \"$(c)\"", None),
    ("/bin/sh -c 'nginx -t && systemctl reload nginx'", ["/bin/sh", "-c", "nginx -t && systemctl reload nginx"]),
])
def test_a_reload_command_string_is_split_as_a_shell_would(command: str, argv: list[str] | None) -> None:
    if argv is None:
        with pytest.raises(ValueError, match=r"runs without a shell"):
            _files(reload_command=command)
        return
    files, _ = _files(reload_command=command)
    assert files.reload_command == argv == _settings(files)["reload"]


def test_a_reload_command_for_an_imported_certificate_is_refused(bundle: CertificateBundle) -> None:
    stack = Stack(App(), "Web", env=Environment(account=ACCOUNT, region="eu-west-1"))
    arn = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:production/ssl/private-key-AbCdEf"
    cert = ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.secret(arn))
    role = iam.Role(stack, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    with pytest.raises(ValueError, match=r"^Web/Tls: reload_command needs a certificate that renews without a "
                                         r"deploy \(CertificateSource.acme\)"):
        CertificateFiles(stack, "Tls", source=cert, role=role, reload_command="systemctl reload nginx")
    assert CertificateFiles(stack, "Tls2", source=cert, role=role).unit is None, "imported: no timer"


def test_one_ordered_certificate_grants_its_material_and_the_cmk_through_secrets_manager() -> None:
    app = App()
    certs = Stack(app, "Certs", env=Environment(account=ACCOUNT, region="eu-west-1"))
    zone = route53.HostedZone.from_hosted_zone_attributes(certs, "Zone", hosted_zone_id="Z0123456789ABCDEFGHIJ",
                                                          zone_name="example.com")
    source = CertificateSource.acme(directory_url="https://acme.example.com/directory", domains=["www.example.com"],
                                    hosted_zone=zone)
    cert = ImportedCertificate(certs, "Cert", source=source)
    web = Stack(app, "Web", env=Environment(account=ACCOUNT, region="eu-west-1"))
    role = iam.Role(web, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    files = CertificateFiles(web, "Tls", source=cert, role=role)
    assert files.unit is not None and _settings(files)["secret_id"] == "certfleet/cert/Certs/www.example.com/key"
    (read,) = [s for s in _statements(web) if "secretsmanager:GetSecretValue" in s["Action"]]
    assert ":secret:certfleet/cert/Certs/www.example.com/key-??????" in json.dumps(read["Resource"])
    (decrypt,) = [s for s in _statements(web) if "kms:Decrypt" in s["Action"]]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}}
    assert "Fn::GetStackOutput" in decrypt["Resource"], "the material's customer-managed key, by weak reference"


def test_the_user_data_leaves_most_of_ec2s_16_kb_to_the_application() -> None:
    files, _ = _files(reload_command="systemctl reload nginx")
    user_data = ec2.UserData.for_linux()
    files.add_to(user_data)
    assert len(user_data.render().encode()) < 10 * 1024, "EC2 takes at most 16 KB of user data (before base64)"
