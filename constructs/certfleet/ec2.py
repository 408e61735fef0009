"""EC2 direct use (nginx, Apache, HAProxy...): no ACM, the certificate and key as files on the instance.

``CertificateFiles`` grants the instance role read of exactly the key's secret and renders the user data that
writes, at boot::

    <directory>/cert.pem        the certificate                 0644
    <directory>/chain.pem       the intermediates (and root)    0644
    <directory>/fullchain.pem   certificate + chain             0644   <- nginx ssl_certificate
    <directory>/private.key     the private key                 0400   owned by ``owner``

The certificate and chain are public and travel inside the user data. The key never does: the instance reads
it from Secrets Manager at boot (the replica of its region, or the primary), under ``umask 077``, and keeps it
only once its public half matches the certificate (the SHA-256 of the SubjectPublicKeyInfo, known at synth):
that also waits out replica lag and a renewal whose new key has not been written yet. A renewal changes the
certificate in the user data, so the instance is updated with it (for an Auto Scaling group, refresh it).

The seed's nginx example gives the leaf as ``ssl_certificate`` and the chain as ``ssl_trusted_certificate``:
nginx then sends no intermediate, and clients without it fail. ``ssl_certificate`` must be the full chain.
"""

from __future__ import annotations

import re

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from certfleet.fleet import CertificateFleet
from certfleet.imported_certificate import ImportedCertificate
from certfleet.key_source import KeyBinding, SealedKeyStore, grant_key_read
from certfleet.references import weak_reference

_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_DIRECTORY = re.compile(r"^/[A-Za-z0-9._/-]+$")
_HEREDOC = "CERTFLEET_PEM"

# Mozilla's "intermediate" TLS 1.2 suites (TLS 1.3 suites are not configurable in nginx and are all modern).
MODERN_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
])


class CertificateFiles(Construct):
    """The certificate, chain and key of a fleet (or of one ``ImportedCertificate``) as files on EC2 instances.

    ``role`` (the instance role) may read exactly the key's secret, and ``kms:Decrypt`` through Secrets Manager
    when that secret is encrypted with a customer-managed key. Add ``commands`` to the instance's user data
    (``files.add_to(instance.user_data)``); the instance needs the AWS CLI, openssl and python3 (Amazon Linux
    2023 has all three).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        source: CertificateFleet | ImportedCertificate,
        role: iam.IGrantable,
        directory: str = "/etc/ssl/certfleet",
        owner: str = "root",
        group: str = "root",
        attempts: int = 30,
    ) -> None:
        super().__init__(scope, id)
        if not _DIRECTORY.match(directory) or ".." in directory.split("/"):
            raise ValueError(
                f"{self.node.path}: directory {directory!r} must be an absolute path (e.g. /etc/nginx/ssl)",
            )
        for what, name in (("owner", owner), ("group", group)):
            if not _NAME.match(name):
                raise ValueError(
                    f"{self.node.path}: {what} {name!r} is not a user or group name (e.g. 'root', 'nginx')",
                )
        if not 1 <= attempts <= 360:
            raise ValueError(f"{self.node.path}: attempts={attempts} must be between 1 and 360 (10 s apart)")
        self.bundle = source.bundle
        self.directory = directory.rstrip("/") or "/"
        self.owner, self.group = owner, group
        if isinstance(source, CertificateFleet):
            self.key = source.grant_key_read(role, self)
        else:
            self.key = _certificate_key(source, self)
            grant_key_read(role, self.key, self)
        self.region = self.key.region or Stack.of(self).region
        self.commands: list[str] = self._render(attempts)

    @property
    def certificate_path(self) -> str:
        return f"{self.directory}/cert.pem"

    @property
    def chain_path(self) -> str:
        return f"{self.directory}/chain.pem"

    @property
    def fullchain_path(self) -> str:
        return f"{self.directory}/fullchain.pem"

    @property
    def key_path(self) -> str:
        return f"{self.directory}/private.key"

    def add_to(self, user_data: ec2.UserData) -> None:
        """Append the commands to an instance's (or launch template's) Linux user data."""
        user_data.add_commands(*self.commands)

    def nginx_server_block(self, server_name: str | None = None, *, proxy_pass: str | None = None) -> str:
        """An nginx ``server`` block for these files: TLS 1.2 and 1.3 only, modern ciphers, the full chain sent."""
        names = server_name or " ".join(n for n in self.bundle.names if not n[:1].isdigit()) or "_"
        location = f"        proxy_pass {proxy_pass};\n" if proxy_pass else "        root /usr/share/nginx/html;\n"
        return (
            "server {\n"
            "    listen 443 ssl;\n"
            "    listen [::]:443 ssl;\n"
            f"    server_name {names};\n"
            "\n"
            f"    ssl_certificate     {self.fullchain_path};\n"
            f"    ssl_certificate_key {self.key_path};\n"
            "    ssl_protocols TLSv1.2 TLSv1.3;\n"
            f"    ssl_ciphers {MODERN_CIPHERS};\n"
            "    ssl_prefer_server_ciphers off;\n"
            "    ssl_session_timeout 1d;\n"
            "    ssl_session_cache shared:certfleet:10m;\n"
            "    ssl_session_tickets off;\n"
            "\n"
            "    location / {\n"
            f"{location}"
            "    }\n"
            "}\n"
        )

    def _render(self, attempts: int) -> list[str]:
        d, owner = self.directory, f"{self.owner}:{self.group}"
        new = f"{d}/private.key.certfleet-new"
        spki = self.bundle.spki_sha256
        fetch = (
            f"aws secretsmanager get-secret-value --region {self.region} --secret-id '{self.key.id_for_handler}' "
            f"--query SecretString --output text > {new}"
        )
        unwrap = (  # a secret may hold JSON {"private_key": PEM} (KeySource.secret); the sealed writer stores PEM
            "python3 -c 'import json,sys;p=sys.argv[1];t=open(p).read();"
            "t=json.loads(t)[\"private_key\"] if t.lstrip().startswith(\"{\") else t;"
            f"open(p,\"w\").write(t.strip()+\"\\n\")' {new}"
        )
        matches = f'[ "$(openssl pkey -in {new} -pubout -outform DER | sha256sum | cut -d" " -f1)" = "{spki}" ]'
        commands = [
            f"# certfleet: TLS files for {self.bundle.primary_name} (sha256 {self.bundle.fingerprint[:16]}...); "
            "the private key is read from Secrets Manager at boot, never carried in user data",
            f"install -d -m 0755 -o root -g root {d}",
            *_write(self.certificate_path, self.bundle.certificate_pem),
            *_write(self.chain_path, self.bundle.chain_pem),
            f"cat {self.certificate_path} {self.chain_path} > {self.fullchain_path}",
            f"chown {owner} {self.certificate_path} {self.chain_path} {self.fullchain_path}",
            f"chmod 0644 {self.certificate_path} {self.chain_path} {self.fullchain_path}",
            "(",
            "  umask 077",
            f"  for attempt in $(seq 1 {attempts}); do",
            f"    if {fetch} && {unwrap} && {matches}; then break; fi",
            f"    rm -f {new}; sleep 10",
            "  done",
            f"  [ -s {new} ] && {matches} || exit 1",
            f"  chown {owner} {new} && chmod 0400 {new} && mv -f {new} {self.key_path} || exit 1",
            f") || {{ echo 'certfleet: could not read the private key of {self.bundle.primary_name} from Secrets "
            f"Manager in {self.region} (or it does not match the certificate)' >&2; rm -f {new}; exit 1; }}",
        ]
        return commands


def _write(path: str, pem: str) -> list[str]:
    if not pem.strip():
        return [f": > {path}"]
    if _HEREDOC in pem:  # never: PEM is base64 and dashes
        raise ValueError("certfleet: a PEM block holds the here-document marker")
    return [f"cat > {path} <<'{_HEREDOC}'", pem.rstrip("\n"), _HEREDOC]


def _certificate_key(cert: ImportedCertificate, reader: Construct) -> KeyBinding:
    """The key of one ImportedCertificate as ``reader``'s stack reads it: the secret that certificate reads."""
    binding = cert.key_binding
    store = binding.store
    cmk = binding.encryption_key_arn
    secret_id = binding.secret_name or binding.secret_id
    if isinstance(store, SealedKeyStore) and binding.secret is store.secret:  # the primary, CMK-encrypted
        cmk = weak_reference(store, "KeyEncryptionKeyArn", store.encryption_key.key_arn, reader)
    elif not secret_id:
        secret_id = weak_reference(cert, "KeySecretArn", binding.secret.secret_arn, reader)
    return KeyBinding(binding.secret, "", binding.secret_name, store, secret_id=secret_id, encryption_key_arn=cmk,
                      region=binding.region or cert.region)
