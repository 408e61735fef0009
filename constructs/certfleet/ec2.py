"""The certificate, chain and key as files on EC2 instances (nginx, Apache, HAProxy...), for services without ACM.

How the key reaches the instance, and why names are quoted: docs/design/ec2.md.
"""

from __future__ import annotations

import ipaddress
import re
import shlex

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from certfleet.fleet import CertificateFleet
from certfleet.imported_certificate import ImportedCertificate
from certfleet.key_source import KeyBinding, SealedKeyStore, grant_key_read
from certfleet.material.names import name_problem, printable
from certfleet.references import weak_reference

_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_DIRECTORY = re.compile(r"^/[A-Za-z0-9._/-]+$")
_HEREDOC = "CERTFLEET_PEM"
# What nginx config may carry of a host name: LDH labels, a leading "*." wildcard, or the catch-all "_". Nothing
# that nginx reads as syntax (; { } quotes \ $ # whitespace) nor a leading "~" (a regex) can match.
_NGINX_NAME = re.compile(r"(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|_")
_PEM_TEXT = re.compile(r"(-----(BEGIN|END) [A-Z0-9 ]+-----\n|[A-Za-z0-9+/=]*\n)*(-----END [A-Z0-9 ]+-----)?")
_NGINX_URL = re.compile(r"(https?://|unix:/)[A-Za-z0-9._~:/?\[\]@!&()*+,=%$-]+")

# Mozilla's "intermediate" TLS 1.2 suites (TLS 1.3 suites are not configurable in nginx and are all modern).
MODERN_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
])

__all__ = ["MODERN_CIPHERS", "CertificateFiles"]


class CertificateFiles(Construct):
    """The certificate, chain and key of a fleet (or of one ``ImportedCertificate``) as files on EC2 instances.

    Add ``commands`` to the instance's user data (``files.add_to(instance.user_data)``); the instance needs the AWS
    CLI, openssl and python3 (Amazon Linux 2023 has all three).

    Args:
        source: The fleet or the certificate whose files are written.
        role: The instance role, allowed to read exactly the key's secret (and ``kms:Decrypt`` through Secrets
            Manager when the secret has a customer-managed key).
        directory: The absolute path the files are written to. Default: ``"/etc/ssl/certfleet"``.
        owner: The user that owns the files (the key is ``0400``). Default: ``"root"``.
        group: The group that owns the files. Default: ``"root"``.
        attempts: How many times, 10 s apart, the instance tries to read a key that matches the certificate.
            Default: 30.
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
        """The leaf certificate's path, ``<directory>/cert.pem``."""
        return f"{self.directory}/cert.pem"

    @property
    def chain_path(self) -> str:
        """The chain's path, ``<directory>/chain.pem`` (intermediates and root)."""
        return f"{self.directory}/chain.pem"

    @property
    def fullchain_path(self) -> str:
        """The certificate and chain's path, ``<directory>/fullchain.pem`` (nginx's ``ssl_certificate``)."""
        return f"{self.directory}/fullchain.pem"

    @property
    def key_path(self) -> str:
        """The private key's path, ``<directory>/private.key`` (``0400``, owned by ``owner``)."""
        return f"{self.directory}/private.key"

    def add_to(self, user_data: ec2.UserData) -> None:
        """Append the commands to an instance's (or launch template's) Linux user data."""
        user_data.add_commands(*self.commands)

    def nginx_server_block(self, server_name: str | None = None, *, proxy_pass: str | None = None) -> str:
        """An nginx ``server`` block for these files: TLS 1.2 and 1.3 only, modern ciphers, the full chain sent.

        Args:
            server_name: Space-separated host names; one that nginx would read as syntax fails synth.
                Default: the certificate's DNS names.
            proxy_pass: The URL requests are passed to (``http://``, ``https://`` or ``unix:/``).
                Default: None (files served from ``/usr/share/nginx/html``).
        """
        if server_name is not None:
            names = server_name.split()
            for name in names:
                if not _NGINX_NAME.fullmatch(name):
                    raise ValueError(
                        f"{self.node.path}: server_name {printable(name)} cannot go into nginx config: use host "
                        "names (www.example.com), wildcards (*.example.com) or _",
                    )
        else:
            names = [n for n in self.bundle.names if not _is_ip(n)]
            for name in names:
                problem = name_problem(name)
                if problem or not _NGINX_NAME.fullmatch(name):
                    raise ValueError(
                        f"{self.node.path}: the certificate {self.bundle.fingerprint[:16]}... names "
                        f"{printable(name)}, which cannot go into nginx config ({problem or 'not a host name'}): "
                        "pass server_name='www.example.com ...' with the names this server answers",
                    )
        if proxy_pass is not None and not _NGINX_URL.fullmatch(proxy_pass):
            raise ValueError(
                f"{self.node.path}: proxy_pass {printable(proxy_pass)} cannot go into nginx config: give an "
                "http://, https:// or unix:/ URL without spaces, quotes, backslashes, ';', '#', '{' or '}'",
            )
        listed = " ".join(f'"{n}"' for n in names) or '"_"'
        location = f'        proxy_pass "{proxy_pass}";\n' if proxy_pass else "        root /usr/share/nginx/html;\n"
        return (
            "server {\n"
            "    listen 443 ssl;\n"
            "    listen [::]:443 ssl;\n"
            f"    server_name {listed};\n"
            "\n"
            f'    ssl_certificate     "{self.fullchain_path}";\n'
            f'    ssl_certificate_key "{self.key_path}";\n'
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
        """The user-data lines. Every value is one shell word through ``shlex.quote``, the certificate's names
        included (they only ever appear inside quotes, never in a comment or unquoted); PEM text travels in a
        quoted here-document, which the shell does not expand."""
        q = shlex.quote
        d, owner = q(self.directory), q(f"{self.owner}:{self.group}")
        cert, chain, full, key = (q(p) for p in (self.certificate_path, self.chain_path, self.fullchain_path,
                                                  self.key_path))
        new = q(f"{self.directory}/private.key.certfleet-new")
        # a token (a weak reference to the secret's ARN) is quoted as a whole: the ARN it resolves to has no quote
        fetch = (
            f"aws secretsmanager get-secret-value --region {q(self.region)} --secret-id {q(self.key.id_for_handler)} "
            f"--query SecretString --output text > {new}"
        )
        unwrap_program = (  # a secret may hold JSON {"private_key": PEM} (KeySource.secret); the sealed writer: PEM
            'import json,sys;p=sys.argv[1];t=open(p).read();'
            't=json.loads(t)["private_key"] if t.lstrip().startswith("{") else t;'
            'open(p,"w").write(t.strip()+"\\n")'
        )
        unwrap = f"python3 -c {q(unwrap_program)} {new}"
        digest = f"$(openssl pkey -in {new} -pubout -outform DER | sha256sum | cut -d' ' -f1)"
        matches = f'[ "{digest}" = {q(self.bundle.spki_sha256)} ]'
        failure = (
            f"certfleet: could not read the private key of {printable(self.bundle.primary_name)} from Secrets "
            f"Manager in {self.region} (or it does not match the certificate)"
        )
        return [
            f"# certfleet: TLS files for the certificate sha256 {self.bundle.fingerprint[:16]}...; the private key is "
            "read from Secrets Manager at boot, never carried in user data",
            f"install -d -m 0755 -o root -g root {d}",
            *_write(self.node.path, cert, self.bundle.certificate_pem),
            *_write(self.node.path, chain, self.bundle.chain_pem),
            f"cat {cert} {chain} > {full}",
            f"chown {owner} {cert} {chain} {full}",
            f"chmod 0644 {cert} {chain} {full}",
            "(",
            "  umask 077",
            f"  for attempt in $(seq 1 {int(attempts)}); do",
            f"    if {fetch} && {unwrap} && {matches}; then break; fi",
            f"    rm -f {new}; sleep 10",
            "  done",
            f"  [ -s {new} ] && {matches} || exit 1",
            f"  chown {owner} {new} && chmod 0400 {new} && mv -f {new} {key} || exit 1",
            f") || {{ printf '%s\\n' {q(failure)} >&2; rm -f {new}; exit 1; }}",
        ]


def _write(where: str, quoted_path: str, pem: str) -> list[str]:
    """Lines that write ``pem`` to the (already quoted) path through a quoted here-document."""
    if not pem.strip():
        return [f": > {quoted_path}"]
    if _HEREDOC in pem or not _PEM_TEXT.fullmatch(pem):  # never: normalized PEM is headers, base64 and newlines
        raise ValueError(f"{where}: a PEM block holds more than PEM headers and base64; it cannot go into user data")
    return [f"cat > {quoted_path} <<'{_HEREDOC}'", pem.rstrip("\n"), _HEREDOC]


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


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
