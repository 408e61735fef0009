"""EC2 direct use: grants of exactly the key secret, user data that fetches the key at boot, an nginx block."""

from __future__ import annotations

import base64
import json
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

NAME = "certfleet/Certificates/www.example.com"


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
    assert _actions(read) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
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
    assert (f"aws secretsmanager get-secret-value --region eu-west-1 --secret-id '{NAME}' --query SecretString "
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
    assert "ssl_certificate     /etc/nginx/ssl/fullchain.pem;" in block
    assert "ssl_certificate_key /etc/nginx/ssl/private.key;" in block
    assert "server_name www.example.com example.com;" in block
    assert "proxy_pass http://127.0.0.1:8080;" in block
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
    assert f"--secret-id '{arn}'" in "\n".join(tls.commands)


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
