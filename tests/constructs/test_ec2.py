"""EC2 direct use: grants of exactly the key secret, user data that fetches the key at boot, an nginx block."""

from __future__ import annotations

import base64
import dataclasses
import grp
import json
import os
import pwd
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template
from construct_support import ACCOUNT, Files

from certfleet import CertificateBundle, CertificateFleet, ImportedCertificate, KeySource
from certfleet.ec2 import CertificateFiles
from certfleet.material.names import printable

NAME = "certfleet/fleet/Certificates-us-east-1/www.example.com/key"  # the fleet key secret (keys.py naming)


def _setup(sealed_path: Path, bundle: CertificateBundle, region: str) -> tuple[App, CertificateFleet, Stack, iam.Role]:
    app = App()
    fleet = CertificateFleet(app, "Certificates", bundle=bundle, key=KeySource.sealed(sealed_path), account=ACCOUNT,
                             regions=["eu-west-1"])
    web = Stack(app, "Web", env=Environment(account=ACCOUNT, region=region))
    role = iam.Role(web, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    return app, fleet, web, role


def _statements(stack: Stack) -> list[dict[str, Any]]:
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_replica_region_reads_its_replica_by_name_without_kms(bundle: CertificateBundle, sealed_path: Path) -> None:
    _, _fleet, web, role = _setup(sealed_path, bundle, "eu-west-1")
    files = CertificateFiles(web, "Tls", source=_fleet, role=role)
    statements = _statements(web)
    (read,) = [s for s in statements if "secretsmanager:GetSecretValue" in _actions(s)]
    assert _actions(read) == {"secretsmanager:GetSecretValue"}  # the boot script calls nothing else
    assert f":secretsmanager:eu-west-1:{ACCOUNT}:secret:{NAME}-??????" in json.dumps(read["Resource"])
    assert not [s for s in statements if "kms:Decrypt" in _actions(s)], "replicas use aws/secretsmanager"
    assert files.region == "eu-west-1"
    assert "Certificates-us-east-1" in {d.stack_name for d in web.dependencies}


def test_primary_region_also_decrypts_through_secrets_manager_only(bundle: CertificateBundle,
                                                                   sealed_path: Path) -> None:
    _, fleet, web, role = _setup(sealed_path, bundle, "sa-east-1")  # no replica there: reads the primary
    files = CertificateFiles(web, "Tls", source=fleet, role=role)
    statements = _statements(web)
    (read,) = [s for s in statements if "secretsmanager:GetSecretValue" in _actions(s)]
    assert f":secretsmanager:us-east-1:{ACCOUNT}:secret:{NAME}-??????" in json.dumps(read["Resource"])
    (decrypt,) = [s for s in statements if "kms:Decrypt" in _actions(s)]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
    assert "Fn::GetStackOutput" in decrypt["Resource"]
    assert "--region us-east-1" in "\n".join(files.commands)


def test_user_data_writes_public_files_and_fetches_the_key(bundle: CertificateBundle, sealed_path: Path,
                                                           files: Files) -> None:
    _, fleet, web, role = _setup(sealed_path, bundle, "eu-west-1")
    tls = CertificateFiles(web, "Tls", source=fleet, role=role, directory="/etc/nginx/ssl", owner="nginx",
                           group="nginx")
    user_data = ec2.UserData.for_linux()
    tls.add_to(user_data)
    script = user_data.render()
    assert bundle.certificate_pem.strip() in script and bundle.chain_pem.strip() in script
    assert "cat /etc/nginx/ssl/cert.pem /etc/nginx/ssl/chain.pem > /etc/nginx/ssl/fullchain.pem" in script
    assert "chmod 0644 /etc/nginx/ssl/cert.pem /etc/nginx/ssl/chain.pem /etc/nginx/ssl/fullchain.pem" in script
    assert script.index("umask 077") < script.index("aws secretsmanager get-secret-value")
    assert (f"aws secretsmanager get-secret-value --region eu-west-1 --secret-id {NAME} --query SecretString "
            "--output text") in script
    assert bundle.spki_sha256 in script, "the key is kept only when it matches the certificate"
    assert "chown nginx:nginx /etc/nginx/ssl/private.key.certfleet-new && chmod 0400" in script
    assert "mv -f /etc/nginx/ssl/private.key.certfleet-new /etc/nginx/ssl/private.key" in script
    _assert_no_key(script, files)
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_the_key_never_appears_in_the_synthesized_app(bundle: CertificateBundle, sealed_path: Path, files: Files,
                                                      tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    fleet = CertificateFleet(app, "Certificates", bundle=bundle, key=KeySource.sealed(sealed_path), account=ACCOUNT,
                             regions=["eu-west-1"])
    web = Stack(app, "Web", env=Environment(account=ACCOUNT, region="eu-west-1"))
    vpc = ec2.Vpc(web, "Vpc", max_azs=1, nat_gateways=0,
                  subnet_configuration=[ec2.SubnetConfiguration(name="pub", subnet_type=ec2.SubnetType.PUBLIC)])
    instance = ec2.Instance(web, "Nginx", vpc=vpc, instance_type=ec2.InstanceType("t3.micro"),
                            machine_image=ec2.MachineImage.generic_linux({"eu-west-1": "ami-12345678"}))
    CertificateFiles(web, "Tls", source=fleet, role=instance.role).add_to(instance.user_data)
    app.synth()
    template = (tmp_path / "Web.template.json").read_text()
    user_data = json.loads(template)["Resources"]
    (props,) = [r["Properties"] for r in user_data.values() if r["Type"] == "AWS::EC2::Instance"]
    assert "get-secret-value" in json.dumps(props["UserData"])
    for path in tmp_path.rglob("*.json"):
        _assert_no_key(path.read_text(), files)


def _assert_no_key(text: str, files: Files) -> None:
    body = "".join(files.leaf.key_pem().decode().strip().splitlines()[1:-1])
    assert "PRIVATE KEY-----" not in text
    flat = "".join(text.split()).replace("\\n", "")
    assert all(body[i:i + 40] not in flat for i in range(0, len(body) - 40, 40))
    assert base64.b64decode(body)[40:80].hex() not in text


def test_nginx_block_is_tls_12_13_with_the_full_chain(bundle: CertificateBundle, sealed_path: Path) -> None:
    _, fleet, web, role = _setup(sealed_path, bundle, "eu-west-1")
    block = CertificateFiles(web, "Tls", source=fleet, role=role, directory="/etc/nginx/ssl").nginx_server_block(
        proxy_pass="http://127.0.0.1:8080")
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in block
    assert 'ssl_certificate     "/etc/nginx/ssl/fullchain.pem";' in block
    assert 'ssl_certificate_key "/etc/nginx/ssl/private.key";' in block
    assert 'server_name "www.example.com" "example.com";' in block
    assert 'proxy_pass "http://127.0.0.1:8080";' in block
    ciphers = block.split("ssl_ciphers ", 1)[1].split(";", 1)[0].split(":")
    assert all(c.startswith("ECDHE-") and ("GCM" in c or "CHACHA20" in c) for c in ciphers)


def test_single_imported_certificate_with_a_secret_key(bundle: CertificateBundle) -> None:
    app = App()
    certs = Stack(app, "Certs", env=Environment(account=ACCOUNT, region="eu-west-1"))
    arn = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:production/ssl/private-key-AbCdEf"
    cmk = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    cert = ImportedCertificate(certs, "Cert", bundle=bundle, key=KeySource.secret(arn, encryption_key_arn=cmk))
    role = iam.Role(certs, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    tls = CertificateFiles(certs, "Tls", source=cert, role=role)
    statements = [s for s in _statements(certs) if s.get("Resource") in (arn, cmk)]
    role_statements = [s for s in statements if "kms:Decrypt" in _actions(s) or "secretsmanager:GetSecretValue"
                       in _actions(s)]
    assert {json.dumps(s["Resource"]) for s in role_statements} == {json.dumps(arn), json.dumps(cmk)}
    assert f"--secret-id {arn} " in "\n".join(tls.commands)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"directory": "etc/ssl"}, "must be an absolute path"),
    ({"owner": "root; rm -rf /"}, "is not a user or group name"),
    ({"attempts": 0}, "attempts=0 must be between 1 and 360"),
])
def test_bad_options_are_refused(bundle: CertificateBundle, sealed_path: Path, kwargs: dict[str, Any],
                                 message: str) -> None:
    _, fleet, web, role = _setup(sealed_path, bundle, "eu-west-1")
    with pytest.raises(ValueError, match=rf"^Web/Tls: .*{message}"):
        CertificateFiles(web, "Tls", source=fleet, role=role, **kwargs)


# Names a CA may sign (ACM and `certfleet verify` judged the certificate, not the names' fitness for shell or nginx).
HOSTILE = [
    "www.example.com\ntouch {marker} #'",
    "$(touch {marker}).example.com",
    "`touch {marker}`.example.com",
    "'; touch {marker}; echo '",
    '"; touch {marker}; echo "',
    "a\\'$(touch {marker})\\",
    "${{IFS}}touch${{IFS}}{marker}",
]
SECRET_ARN = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:production/ssl/private-key-AbCdEf"


def _hostile_files(bundle: CertificateBundle, name: str, directory: Path) -> CertificateFiles:
    """CertificateFiles of a certificate whose first DNS name is ``name`` (the bundle's checks are bypassed)."""
    hostile = dataclasses.replace(bundle, names=(name, "example.com"))
    stack = Stack(App(), "Certs", env=Environment(account=ACCOUNT, region="eu-west-1"))
    cert = ImportedCertificate(stack, "Cert", bundle=hostile, key=KeySource.secret(SECRET_ARN))
    role = iam.Role(stack, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    me, my_group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    return CertificateFiles(stack, "Tls", source=cert, role=role, directory=str(directory), owner=me, group=my_group,
                            attempts=1)


def _run_user_data(
    files: CertificateFiles, tmp_path: Path, secret_text: bytes | None,
) -> subprocess.CompletedProcess[str]:
    """Run the rendered user data with ``aws`` answering ``secret_text`` (None: failing) and ``sleep`` instant."""
    user_data = ec2.UserData.for_linux()
    files.add_to(user_data)
    script = tmp_path / "user-data.sh"
    script.write_text(user_data.render())
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    answer = tmp_path / "secret-string"
    if secret_text is not None:
        fd = os.open(answer, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret_text)
    (bin_dir / "aws").write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@" > "$CERTFLEET_TEST_ARGS"\n'
        + ('cat "$CERTFLEET_TEST_SECRET"\n' if secret_text is not None else "exit 254\n"),
    )
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CERTFLEET_TEST_ARGS": str(tmp_path / "args"),
           "CERTFLEET_TEST_SECRET": str(answer)}
    return subprocess.run(["bash", str(script)], check=False, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_certificate_names_never_run_as_commands_in_user_data(bundle: CertificateBundle, files: Files,
                                                                     tmp_path: Path, template: str) -> None:
    marker = tmp_path / "injected"
    name = template.format(marker=marker)
    tls = _hostile_files(bundle, name, tmp_path / "ssl")
    done = _run_user_data(tls, tmp_path, files.leaf.key_pem())
    assert not marker.exists(), "a certificate name ran as a shell command"
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "args").read_text().splitlines()[4:6] == ["--secret-id", SECRET_ARN]
    key = tmp_path / "ssl" / "private.key"
    assert key.stat().st_mode & 0o777 == 0o400
    assert key.read_bytes().strip() == files.leaf.key_pem().strip()
    assert (tmp_path / "ssl" / "fullchain.pem").read_text() == bundle.certificate_pem + bundle.chain_pem


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_certificate_names_stay_text_in_the_failure_message(bundle: CertificateBundle, tmp_path: Path,
                                                                   template: str) -> None:
    marker = tmp_path / "injected"
    name = template.format(marker=marker)
    tls = _hostile_files(bundle, name, tmp_path / "ssl")
    failed = _run_user_data(tls, tmp_path, None)
    assert not marker.exists(), "a certificate name ran as a shell command"
    assert failed.returncode == 1
    (message,) = failed.stderr.splitlines()
    assert message.startswith("certfleet: could not read the private key of ")
    assert printable(name) in message, "the name is shown escaped, on one line"
    assert not (tmp_path / "ssl" / "private.key").exists()


def test_user_data_never_holds_a_raw_name_and_each_line_is_balanced_shell(bundle: CertificateBundle,
                                                                          tmp_path: Path) -> None:
    name = "www.example.com\n$(id) `id` ' \" ; | & > < #"
    lines = _hostile_files(bundle, name, tmp_path / "ssl").commands
    assert name not in "\n".join(lines), "only the escaped form of a name is written"
    pem = {*bundle.certificate_pem.splitlines(), *bundle.chain_pem.splitlines(), "CERTFLEET_PEM"}
    for line in lines:
        if line not in pem:
            shlex.split(line, comments=True)  # raises on a quote left open (a value spilling onto the next line)


@pytest.mark.parametrize("template", [*HOSTILE[:4], "~^(?<x>.+)$", "example.com;", "*.*.example.com"])
def test_names_nginx_cannot_carry_fail_the_server_block_naming_the_construct(bundle: CertificateBundle,
                                                                           tmp_path: Path, template: str) -> None:
    tls = _hostile_files(bundle, template.format(marker=tmp_path / "injected"), tmp_path / "ssl")
    with pytest.raises(ValueError, match=r"^Certs/Tls: the certificate [0-9a-f]{16}\.\.\. names .* cannot go into "
                                         r"nginx config .*pass server_name="):
        tls.nginx_server_block()
    assert 'server_name "www.example.com";' in tls.nginx_server_block("www.example.com")


def test_nginx_block_quotes_wildcards_and_leaves_out_ip_addresses(bundle: CertificateBundle, tmp_path: Path) -> None:
    stack = Stack(App(), "Certs", env=Environment(account=ACCOUNT, region="eu-west-1"))
    names = dataclasses.replace(bundle, names=("*.example.com", "3com.example.com", "192.0.2.1", "2001:db8::1"))
    cert = ImportedCertificate(stack, "Cert", bundle=names, key=KeySource.secret(SECRET_ARN))
    role = iam.Role(stack, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    block = CertificateFiles(stack, "Tls", source=cert, role=role).nginx_server_block()
    assert 'server_name "*.example.com" "3com.example.com";' in block


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"server_name": "www.example.com; include /etc/passwd"}, r"server_name 'www.example.com;' cannot go into nginx"),
    ({"server_name": "~^.*$"}, r"server_name '~\^\.\*\$' cannot go into nginx"),
    ({"proxy_pass": "http://127.0.0.1:8080; }"}, r"proxy_pass .* cannot go into nginx config"),
    ({"proxy_pass": "http://a\"b"}, r"proxy_pass .* cannot go into nginx config"),
    ({"proxy_pass": "file:///etc/passwd"}, r"proxy_pass .* cannot go into nginx config"),
])
def test_server_block_arguments_nginx_cannot_carry_are_refused(bundle: CertificateBundle, sealed_path: Path,
                                                              kwargs: dict[str, str], message: str) -> None:
    _, fleet, web, role = _setup(sealed_path, bundle, "eu-west-1")
    with pytest.raises(ValueError, match=rf"^Web/Tls: {message}"):
        CertificateFiles(web, "Tls", source=fleet, role=role).nginx_server_block(**kwargs)


@pytest.mark.parametrize("junk", ["CERTFLEET_PEM\ntouch /tmp/x\n", "Subject: www.example.com\n"])
def test_pem_text_that_is_more_than_armor_and_base64_is_refused(bundle: CertificateBundle, tmp_path: Path,
                                                               junk: str) -> None:
    pem = bundle.certificate_pem.replace("-----END", junk + "-----END", 1)
    stack = Stack(App(), "Certs", env=Environment(account=ACCOUNT, region="eu-west-1"))
    cert = ImportedCertificate(stack, "Cert", bundle=dataclasses.replace(bundle, certificate_pem=pem),
                               key=KeySource.secret(SECRET_ARN))
    role = iam.Role(stack, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    with pytest.raises(ValueError, match=r"^Certs/Tls: a PEM block holds more than PEM headers and base64"):
        CertificateFiles(stack, "Tls", source=cert, role=role)
