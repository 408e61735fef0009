"""A local ACME CA for rehearsals and tests: Debian's pebble, validating DNS-01 against pebble-challtestsrv on free
ports, and a bridge that makes challtestsrv serve what Route 53 (moto behind StrictAWS) holds.

Nothing is committed: pebble's HTTPS certificate is made at start-up by a throwaway CA whose file the client trusts
(``REQUESTS_CA_BUNDLE``, for the acme library). Needs the Debian package ``pebble`` (scripts/setup.sh installs it).
"""

from __future__ import annotations

import base64
import collections
import datetime
import ipaddress
import json
import os
import secrets
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certfleet.testing.moto import free_port
from certfleet.testing.strict import StrictAWS
from certfleet.testing.strict_route53 import Event, Route53Change, txt_strings

__all__ = ["CHALLTESTSRV", "HOST", "PEBBLE", "ChallTestSrv", "Pebble", "Route53Bridge", "bare_zone_id",
           "missing_tools", "new_eab_key", "write_tls_material"]

PEBBLE = "pebble"
CHALLTESTSRV = "pebble-challtestsrv"
HOST = "127.0.0.1"


def missing_tools() -> list[str]:
    """The pebble executables not on PATH (Debian package `pebble`)."""
    return [tool for tool in (PEBBLE, CHALLTESTSRV) if shutil.which(tool) is None]


def _run(command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
         ) -> tuple[subprocess.Popen[bytes], collections.deque[bytes]]:
    """Start a server with its output read as it comes (a pipe nobody reads fills after some 250 requests and
    blocks the server on its next log line); the last 64 KiB are kept for error messages."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    tail: collections.deque[bytes] = collections.deque(maxlen=16)
    stream = process.stdout
    if stream is not None:
        threading.Thread(target=lambda: tail.extend(iter(lambda: stream.read(4096), b"")), daemon=True).start()
    return process, tail


def _wait(check: str, probe: object, process: subprocess.Popen[bytes], tail: collections.deque[bytes],
          timeout: float = 20.0) -> None:
    """Poll `probe()` until it returns without raising; fail with the process's output if it exits or times out."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            process.wait()
            output = b"".join(tail).decode(errors="replace")
            raise RuntimeError(f"{check} exited with {process.returncode} before answering:\n{output[-2000:]}")
        try:
            probe()  # type: ignore[operator]
            return
        except (OSError, urllib.error.URLError) as error:
            last = error
            time.sleep(0.1)
    raise RuntimeError(f"{check} did not answer within {timeout:.0f} s: {last}")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def write_tls_material(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a localhost/127.0.0.1 server certificate signed by it: (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certfleet test pebble TLS CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


class ChallTestSrv:
    """pebble-challtestsrv serving DNS only, with its management API to set and clear TXT records."""

    def __init__(self) -> None:
        self.dns_port = free_port()
        self.management_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def dns_address(self) -> str:
        return f"{HOST}:{self.dns_port}"

    def _post(self, path: str, body: dict[str, str]) -> None:
        request = urllib.request.Request(
            f"http://{HOST}:{self.management_port}{path}", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - its own http URL
            response.read()

    def publish(self, name: str, values: list[str]) -> None:
        """Serve `values` as the TXT record set of `name` (replacing what was there)."""
        self.withdraw(name)
        for value in values:
            self._post("/set-txt", {"host": f"{name.rstrip('.')}.", "value": value})

    def withdraw(self, name: str) -> None:
        """Stop serving TXT records for `name`."""
        self._post("/clear-txt", {"host": f"{name.rstrip('.')}."})

    def start(self) -> ChallTestSrv:
        self._process, tail = _run(
            [CHALLTESTSRV, "-dns01", self.dns_address, "-management", f"{HOST}:{self.management_port}",
             "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv6", ""])
        _wait(CHALLTESTSRV, lambda: self.withdraw("probe.invalid"), self._process, tail)
        return self

    def stop(self) -> None:
        _stop(self._process)

    def __enter__(self) -> ChallTestSrv:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class Pebble:
    """One pebble CA on free ports; `eab_keys` (kid -> base64url HMAC key) makes External Account Binding required."""

    def __init__(self, folder: Path, dns_address: str, *, eab_keys: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.dns_address = dns_address
        self.eab_keys = dict(eab_keys or {})
        self.port = free_port()
        self.management_port = free_port()
        self.ca_bundle = folder / "ca.pem"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def directory_url(self) -> str:
        return f"https://{HOST}:{self.port}/dir"

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_bundle))

    def get_json(self, url: str) -> dict[str, object]:
        """GET a JSON document from pebble over its tested TLS."""
        with urllib.request.urlopen(url, timeout=10, context=self._context()) as response:  # noqa: S310
            document: dict[str, object] = json.loads(response.read())
            return document

    def issuer_pem(self) -> bytes:
        """The PEM of pebble's current root (its management API), to check chains against."""
        url = f"https://{HOST}:{self.management_port}/roots/0"
        with urllib.request.urlopen(url, timeout=10, context=self._context()) as response:
            body: bytes = response.read()
            return body

    def start(self) -> Pebble:
        self.folder.mkdir(parents=True, exist_ok=True)
        _, cert, key = write_tls_material(self.folder)  # ca.pem is self.ca_bundle
        config = {"pebble": {
            "listenAddress": f"{HOST}:{self.port}", "managementListenAddress": f"{HOST}:{self.management_port}",
            "certificate": str(cert), "privateKey": str(key),
            "httpPort": free_port(), "tlsPort": free_port(), "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(self.eab_keys), "externalAccountMACKeys": self.eab_keys,
        }}
        config_path = self.folder / "pebble-config.json"
        config_path.write_text(json.dumps(config))
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
        self._process, tail = _run([PEBBLE, "-config", str(config_path), "-dnsserver", self.dns_address],
                                   env=env, cwd=self.folder)
        _wait(PEBBLE, lambda: self.get_json(self.directory_url), self._process, tail)
        return self

    def stop(self) -> None:
        _stop(self._process)

    def __enter__(self) -> Pebble:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def new_eab_key() -> str:
    """A fresh base64url HMAC key, as a commercial CA hands out with its key id."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def bare_zone_id(zone_id: str) -> str:
    """``Z123`` from ``/hostedzone/Z123`` or ``Z123``."""
    return zone_id.rsplit("/", 1)[-1]


class Route53Bridge:
    """Feeds ``dns`` from the changes ``strict`` accepts in the ``delegated`` hosted zones (ids).

    Like Route 53's name servers, it serves a change's TXT records once Route 53 reports the change INSYNC
    (GetChange), so code that answers a challenge before waiting for INSYNC fails validation here as it may in AWS.
    Deletions stop being served as soon as they are submitted. Only the delegated zones are served: a record written
    in a zone nobody delegated to (a stale duplicate zone) is never seen by the CA, as in DNS.
    """

    def __init__(self, strict: StrictAWS, dns: ChallTestSrv, delegated: Iterable[str]) -> None:
        self.strict = strict
        self.dns = dns
        self.delegated = {bare_zone_id(z) for z in delegated}
        self.served: dict[str, list[str]] = {}
        """What the DNS serves now, per record name (unquoted values)."""
        self.history: list[tuple[Event, Route53Change]] = []
        """Every change heard, in every zone, delegated or not."""
        self._stop: object = None

    def _on_change(self, event: Event, change: Route53Change) -> None:
        self.history.append((event, change))
        if change.zone_id not in self.delegated:
            return
        for record in change.changes:
            if record.type != "TXT":
                continue
            if record.action == "DELETE" and event == "submitted":
                self.served.pop(record.name, None)
                self.dns.withdraw(record.name)
            elif record.action != "DELETE" and event == "insync":
                values = ["".join(txt_strings(v) or [v]) for v in record.values]
                self.served[record.name] = values
                self.dns.publish(record.name, values)

    def start(self) -> Route53Bridge:
        self._stop = self.strict.observe_route53(self._on_change)
        return self

    def stop(self) -> None:
        stop, self._stop = self._stop, None
        if callable(stop):
            stop()
        for name in list(self.served):
            self.dns.withdraw(name)
        self.served.clear()

    def __enter__(self) -> Route53Bridge:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
