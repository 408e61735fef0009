"""The certificate, chain and key as files on EC2 instances (nginx, Apache, HAProxy...), for services without ACM.

How the key reaches the instance, and why names are quoted: docs/design/ec2.md.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import shlex
from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from certfleet.acme import AcmeIssuer
from certfleet.certificate_bundle import CertificateBundle
from certfleet.fleet import CertificateFleet
from certfleet.imported_certificate import ImportedCertificate
from certfleet.key_source import KeyBinding, SealedKeyStore, grant_key_read
from certfleet.material.names import name_problem, printable
from certfleet.references import weak_reference
from certfleet.source import AcmeSource

_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_DIRECTORY = re.compile(r"^/[A-Za-z0-9._/-]+$")
_HEREDOC = "CERTFLEET_PEM"
_FILE_END = "CERTFLEET_FILE"
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

REFRESH_SCRIPT_PATH = "/usr/local/libexec/certfleet/certfleet-refresh"
"""Where the refresh script is installed on the instance (one copy, shared by every CertificateFiles there)."""
_CONFIG_DIRECTORY, _STATE_DIRECTORY, _UNIT_DIRECTORY = "/etc/certfleet", "/var/lib/certfleet", "/etc/systemd/system"
# A reload command's program: a plain name (found on systemd's PATH) or an absolute path; each argument: printable.
_PROGRAM = re.compile(r"(/(?!\.\.?(/|$))[A-Za-z0-9._+-]+)+|[A-Za-z0-9_+-][A-Za-z0-9._+-]*")

__all__ = ["MODERN_CIPHERS", "REFRESH_SCRIPT", "REFRESH_SCRIPT_PATH", "CertificateFiles"]


class CertificateFiles(Construct):
    """The certificate, chain and key of a fleet (or of one ``ImportedCertificate``) as files on EC2 instances.

    Add ``commands`` to the instance's user data (``files.add_to(instance.user_data)``); the instance needs the AWS
    CLI, openssl and python3 (Amazon Linux 2023 has all three). A certificate that renews without a deploy
    (``CertificateSource.acme``) is read from its material secret at boot and then daily by a systemd timer
    (``<unit>.timer``), which rewrites the files and runs ``reload_command`` only when the certificate changed.

    Args:
        source: The fleet or the certificate whose files are written.
        role: The instance role, allowed to read exactly the key's secret (and ``kms:Decrypt`` through Secrets
            Manager when the secret has a customer-managed key).
        directory: The absolute path the files are written to. Default: ``"/etc/ssl/certfleet"``.
        owner: The user that owns the files (the key is ``0400``). Default: ``"root"``.
        group: The group that owns the files. Default: ``"root"``.
        attempts: How many times, 10 s apart, the instance tries at boot to read a key that matches the
            certificate. Default: 30.
        reload_command: What the timer runs once it has replaced the files (``CertificateSource.acme`` only), as a
            list of arguments run without a shell (``["systemctl", "reload", "nginx"]``); a string is split as a
            shell would split it (``"systemctl reload nginx"``) but never run by one. Default: None (the server
            reads the new files when it next starts).
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
        reload_command: str | Sequence[str] | None = None,
    ) -> None:
        super().__init__(scope, id)
        if not _DIRECTORY.match(directory) or ".." in directory.split("/"):
            raise ValueError(
                f"{self.node.path}: directory {printable(directory)} must be an absolute path of letters, digits "
                "and ._- (e.g. /etc/nginx/ssl): no spaces or quotes",
            )
        for what, name in (("owner", owner), ("group", group)):
            if not _NAME.match(name):
                raise ValueError(
                    f"{self.node.path}: {what} {name!r} is not a user or group name (e.g. 'root', 'nginx')",
                )
        if not 1 <= attempts <= 360:
            raise ValueError(f"{self.node.path}: attempts={attempts} must be between 1 and 360 (10 s apart)")
        self.source = source.source
        self.reload_command: list[str] | None = _reload_argv(self.node.path, reload_command)
        renews = isinstance(self.source, AcmeSource)  # certificate, chain and key in one secret, renewed with no deploy
        if self.reload_command and not renews:
            raise ValueError(f"{self.node.path}: reload_command needs a certificate that renews without a deploy "
                             "(CertificateSource.acme); an imported one changes with the user data: refresh instances")
        self.bundle = None if renews else source.bundle  # None: read from the material secret at boot
        self.directory = directory.rstrip("/") or "/"
        self.owner, self.group = owner, group
        if isinstance(source, CertificateFleet):
            self.key = source.grant_key_read(role, self)
        else:
            self.key = _certificate_key(source, self)
            grant_key_read(role, self.key, self)
        self.region = self.key.region or Stack.of(self).region
        self.unit: str | None = _unit_name(self.directory) if renews else None
        """The systemd ``<unit>.service`` and ``<unit>.timer`` that refresh the files (None: nothing renews)."""
        self.commands = self._render_renewing(attempts) if self.bundle is None else self._render(self.bundle, attempts)

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
            names = [n for n in self.source.names if not _is_ip(n)]
            which = f"{self.bundle.fingerprint[:16]}..." if self.bundle else "(CertificateSource.acme)"
            for name in names:
                problem = name_problem(name)
                if problem or not _NGINX_NAME.fullmatch(name):
                    raise ValueError(
                        f"{self.node.path}: the certificate {which} names "
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

    def _render(self, bundle: CertificateBundle, attempts: int) -> list[str]:
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
        matches = f'[ "{digest}" = {q(bundle.spki_sha256)} ]'
        failure = (
            f"certfleet: could not read the private key of {printable(bundle.primary_name)} from Secrets "
            f"Manager in {self.region} (or it does not match the certificate)"
        )
        return [
            f"# certfleet: TLS files for the certificate sha256 {bundle.fingerprint[:16]}...; the private key is "
            "read from Secrets Manager at boot, never carried in user data",
            f"install -d -m 0755 -o root -g root {d}",
            *_write(self.node.path, cert, bundle.certificate_pem),
            *_write(self.node.path, chain, bundle.chain_pem),
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

    def _render_renewing(self, attempts: int) -> list[str]:
        """The lines for a certificate that renews: the refresh script, its settings (JSON: every value stays data, the
        reload command an argument list run without a shell), its units, a first run that waits, then the timer."""
        q, unit = shlex.quote, f"{self.unit}"
        config_path = f"{_CONFIG_DIRECTORY}/{unit}.json"
        config = json.dumps({
            "region": self.region, "secret_id": self.key.id_for_handler, "directory": self.directory,
            "paths": {"cert": self.certificate_path, "chain": self.chain_path, "fullchain": self.fullchain_path,
                      "key": self.key_path},
            "owner": self.owner, "group": self.group, "attempts": attempts, "retry_seconds": 10,
            "reload": self.reload_command, "state": f"{_STATE_DIRECTORY}/{unit}.reloaded",
        }, sort_keys=True)
        service = (
            f"[Unit]\nDescription=certfleet: refresh the TLS files in {self.directory}\n"
            "Wants=network-online.target\nAfter=network-online.target\n\n"
            f"[Service]\nType=oneshot\nExecStart=/usr/bin/python3 {REFRESH_SCRIPT_PATH} {config_path}\n"
        )
        timer = (
            f"[Unit]\nDescription=certfleet: refresh the TLS files in {self.directory} daily and at boot\n\n"
            "[Timer]\nOnBootSec=5min\nOnCalendar=daily\nRandomizedDelaySec=1h\nPersistent=true\n\n"
            "[Install]\nWantedBy=timers.target\n"
        )
        failure = (
            f"certfleet: could not write the TLS files of {printable(self.source.primary_name)} from Secrets Manager "
            f"in {self.region}; {unit}.timer tries again now and daily (journalctl -u {unit})"
        )
        folders = (self.directory, REFRESH_SCRIPT_PATH.rsplit("/", 1)[0], _CONFIG_DIRECTORY, _STATE_DIRECTORY)
        return [
            f"# certfleet: TLS files read from Secrets Manager at boot and refreshed daily by {unit}.timer; the "
            "private key is never carried in user data",
            f"install -d -m 0755 -o root -g root {' '.join(q(f) for f in folders)}",
            *_file(REFRESH_SCRIPT_PATH, REFRESH_SCRIPT, "0755"),
            *_file(config_path, config, "0644"),
            *_file(f"{_UNIT_DIRECTORY}/{unit}.service", service, "0644"),
            *_file(f"{_UNIT_DIRECTORY}/{unit}.timer", timer, "0644"),
            f"systemctl daemon-reload && systemctl enable {q(unit + '.timer')}",
            f"/usr/bin/python3 {q(REFRESH_SCRIPT_PATH)} --boot {q(config_path)} || "
            f"{{ printf '%s\\n' {q(failure)} >&2; systemctl start {q(unit + '.timer')}; exit 1; }}",
            f"systemctl start {q(unit + '.timer')}",
        ]


def _file(path: str, text: str, mode: str) -> list[str]:
    """Lines that write ``text`` to ``path`` through a quoted here-document (the shell expands nothing in it)."""
    if _FILE_END in text.splitlines():  # never: the texts are certfleet's own, or JSON on one line
        raise ValueError(f"certfleet: the text of {path} holds the line {_FILE_END}; it cannot go into user data")
    quoted = shlex.quote(path)
    return [f"cat > {quoted} <<'{_FILE_END}'", text.rstrip("\n"), _FILE_END, f"chmod {mode} {quoted}"]


def _unit_name(directory: str) -> str:
    """``certfleet-<directory>-<digest>``: readable, never shared by two directories (/etc/a-b, /etc/a/b)."""
    slug = directory.strip("/").replace("/", "-")[:64] or "root"
    return f"certfleet-{slug}-{hashlib.sha256(directory.encode()).hexdigest()[:6]}"


def _reload_argv(where: str, command: str | Sequence[str] | None) -> list[str] | None:
    """``command`` as the argument list the refresh script runs (never through a shell), or None."""
    if command is None:
        return None
    parts = [command] if isinstance(command, str) else list(command)
    for part in parts:
        if not isinstance(part, str) or not part.isprintable():
            raise ValueError(
                f"{where}: reload_command {printable(str(part))} holds a newline or another control character: give "
                "one command, e.g. ['systemctl', 'reload', 'nginx']",
            )
    argv = parts
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError:
            raise ValueError(f"{where}: reload_command {printable(command)} leaves a quote open") from None
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)  # ; & | < > ( ) as tokens of their own
        lexer.whitespace_split = True
        operators = [w for w in argv if "$(" in w or "`" in w] + [t for t in lexer if set(t) <= set("();<>|&")]
        if operators:
            raise ValueError(
                f"{where}: reload_command runs without a shell, so {printable(operators[0])} would be a plain "
                "argument: give one command, or ['/bin/sh', '-c', '...'] to run a shell on purpose",
            )
    if not argv or not _PROGRAM.fullmatch(argv[0]):
        raise ValueError(
            f"{where}: reload_command must start with a program name or an absolute path (e.g. 'systemctl reload "
            f"nginx'), not {printable(argv[0] if argv else '')}",
        )
    return argv


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
    if isinstance(store, SealedKeyStore | AcmeIssuer) and binding.secret is store.secret:  # the primary, with a CMK
        cmk = weak_reference(store, "KeyEncryptionKeyArn", store.encryption_key.key_arn, reader)
    elif not secret_id:
        secret_id = weak_reference(cert, "KeySecretArn", binding.secret.secret_arn, reader)
    return KeyBinding(binding.secret, "", binding.secret_name, store, secret_id=secret_id, encryption_key_arn=cmk,
                      region=binding.region or cert.region)


REFRESH_SCRIPT = r'''#!/usr/bin/python3
"""certfleet: write one certificate's TLS files from its material secret (AWSCURRENT) and reload the server when the
certificate changed. Usage: certfleet-refresh [--boot] CONFIG.json. Needs python3 (3.9+), the AWS CLI and openssl."""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


class Refusal(Exception):
    """What went wrong, in words that hold no secret value."""


def read_material(config: dict[str, Any]) -> dict[str, str]:
    """The files' texts by kind (cert, chain, fullchain, key), from the secret's AWSCURRENT version."""
    where = f"the secret {config['secret_id']} in {config['region']}"
    done = subprocess.run(
        ["aws", "secretsmanager", "get-secret-value", "--region", config["region"], "--secret-id",
         config["secret_id"], "--version-stage", "AWSCURRENT", "--query", "SecretString", "--output", "text"],
        stdout=subprocess.PIPE, check=False,
    )
    if done.returncode != 0:
        raise Refusal(f"could not read {where} (aws exited {done.returncode})")
    try:
        material = json.loads(done.stdout)
    except ValueError:
        material = None
    if not isinstance(material, dict):
        raise Refusal(f"{where} does not hold certificate material (JSON with certificate, chain, private_key)")
    text = {field: material.get(field, "") for field in ("certificate", "chain", "private_key")}
    for field, value in text.items():
        if not isinstance(value, str) or (field != "chain" and not value.strip()):
            raise Refusal(f"{where} holds no {field} as text: it is not certificate material, or not yet")
    cert, key = text["certificate"].strip() + "\n", text["private_key"].strip() + "\n"
    chain = text["chain"].strip() + "\n" if text["chain"].strip() else ""
    if public_key(["x509", "-noout", "-pubkey"], cert) != public_key(["pkey", "-pubout"], key):
        raise Refusal(f"{where} holds a private key that does not match its certificate (or either is not PEM)")
    return {"cert": cert, "chain": chain, "fullchain": cert + chain, "key": key}


def public_key(command: list[str], pem: str) -> bytes | None:
    """The public key openssl reads from ``pem`` (given on stdin, never on a command line or disk)."""
    done = subprocess.run(["openssl", *command], input=pem.encode(), stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, check=False)
    return done.stdout if done.returncode == 0 and done.stdout else None


def replace(path: str, text: str, mode: int, uid: int, gid: int) -> None:
    """Write ``path`` whole or not at all: a private temporary file in the same folder, then a rename."""
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".certfleet-")
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def current(path: str) -> bytes | None:
    return Path(path).read_bytes() if os.path.exists(path) else None


def refresh(config: dict[str, Any], boot: bool) -> int:
    directory, paths = config["directory"], config["paths"]
    attempts = int(config["attempts"]) if boot else 1
    for attempt in range(1, attempts + 1):
        try:
            files = read_material(config)
            break
        except Refusal as refusal:
            last = attempt == attempts
            sys.stderr.write(f"certfleet: {directory}: {refusal}; " + ("nothing was written\n" if last else
                             f"trying again ({attempt}/{attempts})\n"))
            if last:
                return 1
            time.sleep(float(config["retry_seconds"]))
    digest = hashlib.sha256(files["cert"].encode()).hexdigest()
    changed = current(paths["cert"]) != files["cert"].encode() or not all(os.path.exists(p) for p in paths.values())
    if changed:
        uid, gid = pwd.getpwnam(config["owner"]).pw_uid, grp.getgrnam(config["group"]).gr_gid
        os.makedirs(directory, 0o755, exist_ok=True)
        for kind in ("key", "chain", "fullchain", "cert"):  # cert.pem last: it tells whether the rest is current
            replace(paths[kind], files[kind], 0o400 if kind == "key" else 0o644, uid, gid)
        print(f"certfleet: {directory}: wrote the certificate sha256 {digest[:16]}... and its key")
    reload, state = config.get("reload"), config["state"]
    if not reload or current(state) == digest.encode():
        if not changed:
            print(f"certfleet: {directory}: unchanged (sha256 {digest[:16]}...)")
        return 0
    if not boot:  # at boot the server has not read the files yet: it starts with these
        done = subprocess.run(reload, check=False)
        if done.returncode != 0:
            sys.stderr.write(f"certfleet: {directory}: the files are current but {reload[0]} exited "
                             f"{done.returncode}; the next run tries the reload again\n")
            return 1
        print(f"certfleet: {directory}: reloaded with {reload[0]}")
    os.makedirs(os.path.dirname(state), 0o755, exist_ok=True)
    replace(state, digest, 0o644, os.getuid(), os.getgid())
    return 0


def main(argv: list[str]) -> int:
    configs = [a for a in argv if a != "--boot"]
    if len(configs) != 1:
        sys.stderr.write("usage: certfleet-refresh [--boot] CONFIG.json\n")
        return 2
    return refresh(json.loads(Path(configs[0]).read_text(encoding="utf-8")), "--boot" in argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''
"""The script at REFRESH_SCRIPT_PATH (AL2023's python3 is 3.9), reading AcmeMaterial; tests/handler/test_ec2_reload."""
