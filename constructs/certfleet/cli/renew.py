"""`certfleet renew`: order a certificate over ACME (DNS-01 through Route 53) and write it into a folder kept in git.

The ACME steps are the renewer's own (certfleet_acme: registration with optional EAB, the order, a fresh key, the
checks on issued material); the DNS steps are its Route 53 publisher (certfleet_acme_dns). This module only wires
them to files: the account key file, the EAB HMAC from an environment variable, the hosted zones, and the outputs
(cert.pem, chain.pem and private.key 0400, or with --seal a KMS-sealed key and no plaintext key at all).

Everything that can be checked locally is checked before the CA is asked: the output paths, the account file, the
EAB variable, the sealing name. `acme` is imported only here, and only when the command runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from certfleet.cli.files import Output, refuse_link_or_special, write_outputs
from certfleet.cli.output import emit_json, err, out
from certfleet.cli.status_model import next_renewal
from certfleet.material.findings import MaterialError, error

INSTALL_HINT = "pip install 'certfleet[acme]'"
ORDER_TIMEOUT = 300.0
"""Seconds for the whole order by default: Route 53 INSYNC (typically under a minute) plus the CA's validation."""
POLL_INTERVAL = 2.0
"""Seconds between Route 53 GetChange polls."""
_FILE_NAME = re.compile(r"[^A-Za-z0-9._@+=-]")


@dataclass(frozen=True)
class Libraries:
    """The renewer's ACME client and Route 53 publisher, and the acme library's messages."""

    ca: Any
    dns: Any
    messages: Any


def libraries() -> Libraries:
    """certfleet_acme and certfleet_acme_dns, from the wheel (certfleet/_lambda_acme) or a source checkout.

    An editable install maps no package folder without ``__init__.py``, and the folder must not hold one for the
    renewer's asset (its modules import each other at the top level, as in /var/task); so a source checkout's
    lambda_acme/ is loaded by file, under the same package name. Raises MaterialError when `acme` is missing.
    """
    try:
        from acme import messages
    except ImportError:
        raise MaterialError(error(
            "acme-not-installed", "certfleet renew needs the ACME client library (acme, josepy), not installed here",
            INSTALL_HINT)) from None
    return Libraries(_library("certfleet_acme"), _library("certfleet_acme_dns"), messages)


def _library(name: str) -> ModuleType:
    import importlib
    import importlib.util
    import sys

    qualified = f"certfleet._lambda_acme.{name}"
    try:
        return importlib.import_module(qualified)
    except ModuleNotFoundError as exc:
        if exc.name not in ("certfleet._lambda_acme", qualified):
            raise
    if qualified in sys.modules:
        return sys.modules[qualified]
    path = Path(__file__).resolve().parents[3] / "lambda_acme" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(qualified, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise MaterialError(error("acme-client-missing", f"certfleet's ACME client ({name}.py) is missing",
                                  "reinstall certfleet"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module  # before it runs: dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[qualified]
        raise
    return module


# ------------------------------------------------------------------------------------------------ the plan
@dataclass(frozen=True)
class Plan:
    """What the run will write, checked before the CA is asked."""

    folder: Path
    certificate: Path
    chain: Path
    private_key: Path | None
    sealed: Path | None
    seal_context: dict[str, str] | None
    eab_hmac: str | None

    def outputs(self) -> list[Path]:
        return [p for p in (self.certificate, self.chain, self.private_key, self.sealed) if p is not None]


def seal_file_name(name: str) -> str:
    """``<name>.key.sealed`` with a wildcard's ``*`` spelled ``wildcard`` and anything else unsafe as ``_``."""
    return _FILE_NAME.sub("_", name.replace("*", "wildcard", 1)) + ".key.sealed"


def plan(args: argparse.Namespace) -> Plan:
    """Check the local inputs (output folder and files, EAB variable, sealing name) and name every output."""
    folder = Path(args.out)
    if folder.exists() and not folder.is_dir():
        raise MaterialError(error("output-not-a-folder", "--out must be a folder", "choose another --out folder",
                                  str(folder)))
    eab_hmac = None
    if args.eab_hmac_env:
        eab_hmac = os.environ.get(args.eab_hmac_env, "").strip()
        if not eab_hmac:
            raise MaterialError(error(
                "eab-hmac-missing", f"the environment variable {args.eab_hmac_env} (--eab-hmac-env) is not set or "
                "empty: it must hold the EAB HMAC key your CA gave with the key id",
                f"export {args.eab_hmac_env}=<HMAC key> (from your CA account; never on the command line)"))
    sealed = context = None
    if args.seal:
        from certfleet.material.sealed import encryption_context

        name = args.name or args.domain[0].strip().lower().rstrip(".")
        try:
            context = encryption_context(name)
        except ValueError as exc:
            raise MaterialError(error("bad-name", str(exc), "pass --name with a simple name such as "
                                      "www.example.com")) from None
        sealed = folder / seal_file_name(name)
    result = Plan(folder, folder / "cert.pem", folder / "chain.pem",
                  None if args.seal else folder / "private.key", sealed, context, eab_hmac)
    for path in result.outputs():
        refuse_link_or_special(path, replace=True, fix="")
    if args.account_key:
        account = Path(args.account_key)
        refuse_link_or_special(account, replace=True, fix="")
    return result


# ------------------------------------------------------------------------------------------------ the run
def renew(args: argparse.Namespace) -> int:
    work = plan(args)
    libs = libraries()
    ca, dns = libs.ca, libs.dns
    with _acme_errors(libs), _ca_bundle(args.ca_bundle):
        names = ca.order_names(args.domain)
        session = _session(args)
        route53 = session.client("route53", endpoint_url=args.endpoint_url)
        zones = _hosted_zones(route53, names, args.hosted_zone_id, dns)
        if work.seal_context is not None:
            _check_kms(args, work.seal_context)
        client, account = _account(args, libs, work)
        until = time.monotonic() + args.timeout
        publish, withdraw = dns.Route53Dns(zones, client=route53, poll_interval=POLL_INTERVAL).callbacks(until)
        issued = ca.order_certificate(client, names, args.key_type, publish, withdraw, timeout=args.timeout)
        ca.check_material(issued.certificate_pem, issued.chain_pem, issued.private_key_pem.decode("ascii"),
                          domains=names, key_type=args.key_type, now=dt.datetime.now(dt.UTC))
    outputs = [Output(work.certificate, issued.certificate_pem.encode("ascii")),
               Output(work.chain, issued.chain_pem.encode("ascii"))]
    sealed_arn = None
    if work.private_key is not None:
        outputs.append(Output(work.private_key, issued.private_key_pem, mode=0o400))
    elif work.sealed is not None and work.seal_context is not None:
        from cryptography.hazmat.primitives import serialization

        from certfleet.cli.aws_commands import kms_seal

        key = serialization.load_pem_private_key(issued.private_key_pem, password=None)
        sealed = kms_seal(args, key, work.seal_context)
        sealed_arn = sealed.kms_key_arn
        outputs.append(Output(work.sealed, sealed.to_json().encode("utf-8")))
    work.folder.mkdir(parents=True, exist_ok=True)
    write_outputs(outputs, replace=True, fix="")
    _report(args, work, issued, account, sealed_arn)
    return 0


def _report(args: argparse.Namespace, work: Plan, issued: Any, account: dict[str, Any],
            sealed_arn: str | None) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    leaf = x509.load_pem_x509_certificate(issued.certificate_pem.encode("ascii"))
    renew_by = next_renewal(issued.not_before, issued.not_after)
    stale = work.folder / "private.key"
    stale_key = work.sealed is not None and stale.exists()
    if args.json:
        emit_json({
            "ok": True,
            "directory_url": args.directory_url,
            "domains": [str(d) for d in issued_names(leaf)],
            "key_type": args.key_type,
            "serial": format(leaf.serial_number, "x"),
            "fingerprint_sha256": leaf.fingerprint(hashes.SHA256()).hex(),
            "not_before": issued.not_before.isoformat(),
            "not_after": issued.not_after.isoformat(),
            "renew_by": renew_by.isoformat(),
            "account": account,
            "files": {"certificate": str(work.certificate), "chain": str(work.chain),
                      "private_key": str(work.private_key) if work.private_key else None,
                      "sealed_key": str(work.sealed) if work.sealed else None},
            "kms_key_arn": sealed_arn,
            "warnings": [_stale_warning(stale)] if stale_key else [],
        })
        return
    if account.get("registered"):
        where = f", kept in {account['file']}" if account.get("file") else " (not kept: pass --account-key FILE "
        "to reuse it next time)"
        out(f"registered ACME account {account['url']}{where}")
    out(f"issued {args.key_type} certificate for {', '.join(issued_names(leaf))}: valid "
        f"{issued.not_before:%Y-%m-%d %H:%M} to {issued.not_after:%Y-%m-%d %H:%M} UTC")
    out(f"wrote {work.certificate}")
    out(f"wrote {work.chain}")
    if work.private_key is not None:
        out(f"wrote {work.private_key} (mode 0400, unencrypted PKCS#8: do not commit it; seal it with "
            "`certfleet seal`, or rerun with --seal)")
    else:
        out(f"wrote {work.sealed}: sealed with {sealed_arn}, safe to commit; no plaintext key was written")
        out(f"next: KeySource.sealed({str(work.sealed)!r}) in your app, commit, deploy")
    if stale_key:
        err(f"warning: {_stale_warning(stale)['message']}\n    fix: {_stale_warning(stale)['fix']}")
    out(f"renew by {renew_by:%Y-%m-%d} at the latest (two thirds of the lifetime)")


def issued_names(leaf: Any) -> list[str]:
    from cryptography import x509

    try:
        return [str(n) for n in leaf.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        return []


def _stale_warning(path: Path) -> dict[str, str]:
    from certfleet.material.findings import warning

    return warning("stale-private-key", f"{path} holds the previous key, which does not match the new certificate",
                   f"delete {path} (the sealed key replaces it)", str(path)).to_dict()


# ---------------------------------------------------------------------------------------------- the pieces
def _session(args: argparse.Namespace, region: str | None = None) -> Any:
    import boto3

    return boto3.Session(profile_name=args.profile, region_name=region or args.region)


def _check_kms(args: argparse.Namespace, context: dict[str, str]) -> None:
    """Encrypt a few bytes as sealing will, before the CA is asked: a wrong key, region or grant must not cost an
    order (CAs limit duplicate certificates per week)."""
    from certfleet.cli.aws_commands import arn_region, aws_errors

    region = args.region or arn_region(args.kms_key)
    with aws_errors("KMS Encrypt (checked before ordering)"):
        kms = _session(args, region).client("kms", endpoint_url=args.endpoint_url)
        kms.encrypt(KeyId=args.kms_key, Plaintext=b"certfleet renew", EncryptionContext=context)


@contextmanager
def _ca_bundle(path: str | None) -> Iterator[None]:
    """Trust ``path`` for the CA's HTTPS (the acme library's requests read REQUESTS_CA_BUNDLE); AWS calls are not
    affected (botocore reads AWS_CA_BUNDLE)."""
    if path is None:
        yield
        return
    if not Path(path).is_file():
        raise MaterialError(error("ca-bundle-missing", f"--ca-bundle {path} is not a file",
                                  "pass the PEM file of the CA certificates to trust", path))
    before = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = path
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = before


@contextmanager
def _acme_errors(libs: Libraries) -> Iterator[None]:
    """The ACME client's, Route 53's and AWS's failures as one sentence with a fix (exit 1)."""
    from certfleet.cli.aws_commands import aws_errors

    try:
        with aws_errors("Route 53"):
            yield
    except libs.ca.MaterialError as exc:
        raise MaterialError(error("acme-material-refused", str(exc),
                                  "nothing was written; report the CA's answer to the CA")) from None
    except libs.ca.AcmeError as exc:
        raise MaterialError(error("acme-failed", str(exc),
                                  "check --directory-url, the domains, the hosted zones and the CA account")) from None
    except libs.dns.DnsError as exc:
        raise MaterialError(error("route53-failed", str(exc),
                                  "check --hosted-zone-id and the Route 53 permissions of your AWS identity")) \
            from None


def _hosted_zones(route53: Any, names: list[str], zone_ids: list[str], dns: Any) -> list[Any]:
    """The zones given by id (GetHostedZone), else each name's public zone (ListHostedZonesByName, longest suffix
    first); every name must fall in one of them."""
    if zone_ids:
        zones = []
        for zone_id in dict.fromkeys(zone_ids):
            zone = route53.get_hosted_zone(Id=zone_id)["HostedZone"]
            zones.append(dns.HostedZone(str(zone["Id"]), str(zone["Name"])))
    else:
        found: dict[str, Any] = {}
        for name in names:
            zone = _public_zone(route53, name.removeprefix("*."), dns)
            found.setdefault(zone.id, zone)
        zones = list(found.values())
    for name in names:
        dns.zone_for(dns.challenge_name(name), zones)  # DnsError: no zone holds it
    return zones


def _public_zone(route53: Any, name: str, dns: Any) -> Any:
    labels = name.rstrip(".").split(".")
    for start in range(len(labels) - 1):
        suffix = ".".join(labels[start:]) + "."
        listed = route53.list_hosted_zones_by_name(DNSName=suffix, MaxItems="10")["HostedZones"]
        public = [z for z in listed if str(z["Name"]).lower() == suffix
                  and not z.get("Config", {}).get("PrivateZone", False)]
        if len(public) > 1:
            ids = ", ".join(str(z["Id"]).rsplit("/", 1)[-1] for z in public)
            raise MaterialError(error(
                "hosted-zone-ambiguous", f"Route 53 holds {len(public)} public hosted zones named {suffix} ({ids})",
                "pass --hosted-zone-id with the one your domain's registrar delegates to", name))
        if public:
            return dns.HostedZone(str(public[0]["Id"]), str(public[0]["Name"]))
    raise MaterialError(error(
        "hosted-zone-not-found", f"no public Route 53 hosted zone of this account holds {name}",
        "pass --hosted-zone-id, or create the zone and delegate the domain to it", name))


def _account(args: argparse.Namespace, libs: Libraries, work: Plan) -> tuple[Any, dict[str, Any]]:
    """A client signing as the account kept in --account-key (registered at this directory before), or a newly
    registered account (EAB when given), kept in --account-key when given (0600): (client, summary for output)."""
    ca = libs.ca
    path = Path(args.account_key) if args.account_key else None
    if path is not None and path.exists():
        stored = _read_account(path)
        if stored["directory"] != args.directory_url:
            raise MaterialError(error(
                "account-other-directory", f"{path} holds an ACME account at {stored['directory']}, not at "
                f"{args.directory_url}", "pass another --account-key file for this CA", str(path)))
        client = ca.open_client(args.directory_url, ca.account_key_from_pem(stored["key"].encode("ascii")))
        client.net.account = libs.messages.RegistrationResource(body=libs.messages.Registration(),
                                                                uri=stored["url"])
        if args.eab_key_id:
            err(f"note: the account in {path} is registered already: --eab-key-id is not needed")
        return client, {"url": stored["url"], "file": str(path), "registered": False}
    key = ca.new_account_key()
    client = ca.open_client(args.directory_url, key)
    if args.eab_key_id is None and client.external_account_required():
        raise MaterialError(error(
            "eab-required", f"the CA at {args.directory_url} requires External Account Binding (EAB) to register an "
            "account", "pass --eab-key-id ID --eab-hmac-env VAR with the EAB credentials from your CA account "
            "(the HMAC key in the environment variable VAR)"))
    registration = ca.register(client, contact=args.contact, eab_key_id=args.eab_key_id,
                               eab_hmac_key=work.eab_hmac)
    if path is not None:
        document = {"key": ca.account_key_pem(key).decode("ascii"), "url": registration.uri,
                    "directory": args.directory_url}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_outputs([Output(path, json.dumps(document, indent=1).encode("ascii"), mode=0o600)], replace=False,
                      fix="pass another --account-key file")
    return client, {"url": registration.uri, "file": str(path) if path else None, "registered": True}


def _read_account(path: Path) -> dict[str, str]:
    """The account file written by an earlier run: {key, url, directory}. Never prints its content."""
    mode = os.lstat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        err(f"warning: {path} (an ACME account key) is readable by others (mode {stat.S_IMODE(mode):04o}): "
            f"chmod 600 {path}")
    try:
        document = json.loads(path.read_text(encoding="ascii"))
        stored = {field: str(document[field]) for field in ("key", "url", "directory")}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise MaterialError(error(
            "account-file-unreadable", f"{path} is not an ACME account file written by certfleet renew",
            "pass another --account-key file (a missing one is created)", str(path))) from None
    return stored
