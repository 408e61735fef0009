"""Entry point of the `certfleet` command: argument parsing and the exit-code contract.

Exit 0: fine (warnings allowed). 1: the input has a problem, told in plain words. 2: usage error.
Never a traceback, never key material.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from certfleet.cli.output import err

PASSWORD_HELP = "read the passphrase from this environment variable (never from the command line)"  # noqa: S105


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        err(f"certfleet: {message}")
        raise SystemExit(2)


def _password_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password-env", metavar="VAR", help=PASSWORD_HELP)
    group.add_argument("--password-file", metavar="FILE", help="read the passphrase from the first line of FILE")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="certfleet",
        description="Check, convert and deploy third-party TLS certificates for AWS (ACM, CloudFront, ELB, ...).",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("inspect", help="what is in each file: format, subject, SANs, issuer, validity, key type")
    p.add_argument("files", nargs="+", metavar="FILE")
    _password_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("convert", help="DER / PKCS#7 / PKCS#12 / bundles -> cert.pem, chain.pem, private.key")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for cert.pem, chain.pem, private.key")
    p.add_argument("--force", action="store_true", help="replace files that already exist in DIR")
    _password_options(p)

    p = sub.add_parser("verify", help="check certificate, chain and key against ACM and each service")
    p.add_argument("--certificate", required=True, metavar="FILE")
    p.add_argument("--chain", metavar="FILE")
    p.add_argument("--key", metavar="FILE")
    _password_options(p)
    p.add_argument("--domain", action="append", default=[], metavar="NAME", help="a name that must be covered")
    p.add_argument("--service", action="append", default=[], metavar="NAME",
                   help="a service that will use it (cloudfront, alb, nlb, apigateway-edge, ...)")
    p.add_argument("--warn-days", type=int, default=30, metavar="DAYS", help="warn when expiring sooner")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 1)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("keygen", help="generate a private key (file created 0400)")
    p.add_argument("--type", required=True, choices=["rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384"])
    p.add_argument("--out", required=True, metavar="FILE")

    p = sub.add_parser("csr", help="create a certificate signing request, without prompts")
    p.add_argument("--key", required=True, metavar="FILE")
    _password_options(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="FILE", help="a TOML file: common_name, sans, [subject] fields")
    source.add_argument("--common-name", metavar="NAME")
    p.add_argument("--san", action="append", default=[], metavar="NAME", help="a subjectAltName (repeat)")
    p.add_argument("--organization", metavar="ORG")
    p.add_argument("--country", metavar="CC")
    p.add_argument("--out", required=True, metavar="FILE")

    p = sub.add_parser("seal", help="encrypt a private key with KMS into a file that is safe to commit (AWS)")
    p.add_argument("--key", required=True, metavar="FILE")
    p.add_argument("--kms-key", required=True, metavar="KEY", help="KMS key id, ARN or alias (alias/certfleet-sealing)")
    p.add_argument("--name", required=True, help="the certificate's name, bound into the KMS encryption context")
    p.add_argument("--certificate", metavar="FILE", help="check the key against this certificate first")
    p.add_argument("--chain", metavar="FILE")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--force", action="store_true", help="replace an existing sealed file")
    _password_options(p)
    _aws_options(p)

    p = sub.add_parser("upload", help="store a private key in Secrets Manager, with replicas (AWS)")
    p.add_argument("--secret-name", required=True, metavar="NAME")
    p.add_argument("--key", required=True, metavar="FILE")
    p.add_argument("--certificate", metavar="FILE", help="check the key against this certificate first")
    p.add_argument("--chain", metavar="FILE")
    p.add_argument("--replica-region", action="append", default=[], metavar="REGION")
    p.add_argument("--kms-key", metavar="KEY", help="customer-managed KMS key for the secret (needed cross-account)")
    p.add_argument("--description", default="TLS private key (certfleet upload)")
    _password_options(p)
    _aws_options(p)

    _renew_parser(sub)
    _status_parser(sub)
    _probe_parser(sub)
    _map_parser(sub)
    return parser


STATUS_EXIT = (
    "exit status: 0 when every region answered (and, with --expiring-within, nothing expires that soon); "
    "1 when --expiring-within found certificates, when a region could not be read, when no region at all "
    "could be read (every one denied or not enabled), or on an AWS problem; 2 on a usage error. So "
    "`certfleet status --expiring-within 30 || alert` works in cron. Regions found automatically that are not "
    "enabled or deny access are skipped with a warning (in --json too), as long as one region answers; a "
    "--region must answer."
)
PROBE_EXIT = (
    "exit status: 0 when the server's certificate is one a client accepts (valid now, covers the name, "
    "validates against --ca-file or the system store) and, with --certificate, is that very certificate; "
    "1 when it is not (so `certfleet probe www.example.com --certificate new.pem || echo not live yet` works), "
    "or when the server cannot be reached; 2 on a usage error. Expiring within --warn-days is a warning (exit 0)."
)


def _lazy_type(module: str, name: str) -> Callable[[str], object]:
    """An argparse type that imports its command's module only when the command is used (keeps --help fast)."""

    def convert(value: str) -> object:
        from importlib import import_module

        converter: Callable[[str], object] = getattr(import_module(f"certfleet.cli.{module}"), name)
        return converter(value)

    convert.__name__ = name
    return convert


RENEW_EXIT = (
    "exit status: 0 when the certificate was issued, checked and written; 1 when the CA, Route 53, KMS or the "
    "files refused (told in one sentence, nothing half-written; `acme` missing: pip install 'certfleet[acme]'); "
    "2 on a usage error. The EAB HMAC key is read from the environment variable --eab-hmac-env names, never "
    "from the command line; no key is ever printed."
)


def _renew_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    from certfleet._lambda.certfleet_contract import ACME_KEY_TYPES

    p = sub.add_parser(
        "renew", help="order a certificate over ACME (DNS-01 through Route 53) into a folder: cert, chain, key",
        description="Order a certificate for each --domain from an ACME CA with a fresh key, answering DNS-01 "
                    "through Route 53, check it, and write DIR/cert.pem, DIR/chain.pem and DIR/private.key "
                    "(0400) - or, with --seal, DIR/NAME.key.sealed and no plaintext key. For teams that keep "
                    "certificates in git: run it, commit, deploy.",
        epilog=RENEW_EXIT,
    )
    p.add_argument("--directory-url", required=True, metavar="URL", help="the CA's ACME directory")
    p.add_argument("--domain", required=True, action="append", metavar="NAME",
                   help="a name of the certificate (repeat; wildcards allowed); the first names the sealed file")
    p.add_argument("--dns", required=True, choices=["route53"], help="how DNS-01 is answered: route53")
    p.add_argument("--hosted-zone-id", action="append", default=[], metavar="ID",
                   help="a Route 53 hosted zone to write _acme-challenge records in (repeat); default: each "
                        "name's public zone, found by name")
    p.add_argument("--key-type", required=True, choices=list(ACME_KEY_TYPES),
                   help="the certificate's key: a fresh one every time (a fleet keeps one type)")
    p.add_argument("--eab-key-id", metavar="ID", help="External Account Binding key id (commercial CAs)")
    p.add_argument("--eab-hmac-env", metavar="VAR", help="read the EAB HMAC key from this environment variable")
    p.add_argument("--contact", metavar="URI", help="the account's contact, such as mailto:ops@example.com")
    p.add_argument("--account-key", metavar="FILE",
                   help="keep the ACME account here (created 0600 when missing) so reruns reuse it; "
                        "default: a new account each run")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for cert.pem, chain.pem and the key")
    p.add_argument("--seal", action="store_true", help="write the key sealed with KMS (NAME.key.sealed), never in "
                   "plaintext")
    p.add_argument("--kms-key", metavar="KEY", help="with --seal: KMS key id, ARN or alias")
    p.add_argument("--name", help="with --seal: the name bound into the KMS encryption context (default: the "
                   "first --domain)")
    p.add_argument("--ca-bundle", metavar="FILE", help="trust these CA certificates for the ACME directory's HTTPS")
    p.add_argument("--timeout", type=_lazy_type("probe", "seconds"), default=300.0, metavar="S",
                   help="seconds for the whole order (default 300)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    _aws_options(p)
    p.set_defaults(check_usage=lambda args: _check_renew_usage(p, args))


def _check_renew_usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The option pairs argparse cannot express (exit 2)."""
    if (args.eab_key_id is None) != (args.eab_hmac_env is None):
        parser.error("--eab-key-id and --eab-hmac-env go together")
    if args.seal and not args.kms_key:
        parser.error("--seal needs --kms-key")
    if not args.seal and (args.kms_key or args.name):
        parser.error("--kms-key and --name only go with --seal")


def _status_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "status", help="every ACM certificate in every region, in parallel, soonest expiry first (AWS)",
        description="List the ACM certificates of every enabled region (or each --region), queried in parallel, "
                    "sorted by days left, with the services using them and whether certfleet manages them.",
        epilog=STATUS_EXIT,
    )
    p.add_argument("--region", action="append", default=[], type=_lazy_type("status", "region_name"),
                   metavar="REGION",
                   help="ask only this region (repeat); default: every region enabled for the account")
    p.add_argument("--expiring-within", type=_lazy_type("status", "days"), metavar="DAYS",
                   help="only certificates with at most DAYS days left, expired ones included; exit 1 if any")
    p.add_argument("--domain", metavar="NAME", help="only certificates valid for NAME (wildcards as TLS clients match)")
    p.add_argument("--managed", action="store_true", help="only certificates imported by certfleet")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--profile", help="AWS named profile")
    p.add_argument("--endpoint-url", metavar="URL", help="custom endpoint (LocalStack, moto_server)")


def _probe_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "probe", help="connect to a TLS server: served chain, expiry, name match, is the renewal live?",
        description="Open a TLS connection to HOST[:PORT] (default port 443) and report the protocol, cipher, "
                    "served chain, the leaf's expiry and names, whether it validates, and - with --certificate - "
                    "whether the server already serves that certificate.",
        epilog=PROBE_EXIT,
    )
    p.add_argument("target", type=_lazy_type("probe", "target"), metavar="HOST[:PORT]")
    p.add_argument("--servername", type=_lazy_type("probe", "servername"), metavar="NAME",
                   help="the name sent in SNI and checked (default: HOST)")
    p.add_argument("--certificate", metavar="FILE", help="the certificate that should be served (any format)")
    p.add_argument("--chain", metavar="FILE", help="its chain, to compare with the served chain")
    p.add_argument("--ca-file", metavar="FILE", help="trust these CA certificates instead of the system store")
    p.add_argument("--timeout", type=_lazy_type("probe", "seconds"), default=10.0, metavar="S",
                   help="seconds to connect and handshake (default 10)")
    p.add_argument("--warn-days", type=int, default=30, metavar="DAYS", help="warn when the leaf expires sooner")
    p.add_argument("--json", action="store_true", help="print JSON")


MAP_EXIT = (
    "exit status: 0 when no edge has an error finding (warnings allowed); 1 when one has, or when the assembly "
    "cannot be read or the output written; 2 on a usage error."
)


def _map_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "map", help="draw which certificate each consumer gets, in which region (Mermaid, DOT, JSON, SVG)",
        description="Read a cloud assembly (cdk.out, nested stages included) and draw region -> certificate -> "
                    "consumers, with each template-check finding's code on its edge.",
        epilog=MAP_EXIT,
    )
    p.add_argument("cdk_out", nargs="?", default="cdk.out", metavar="CDK_OUT", help="the assembly (default cdk.out)")
    p.add_argument("--format", choices=("mermaid", "dot", "json", "svg"), help="mermaid (default), dot, json, svg")
    p.add_argument("--json", action="store_true", help="print JSON (the same as --format json)")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of printing (FILE.md: a markdown page)")
    p.add_argument("--stage", metavar="NAME", help="only the stacks of this Stage (its name or construct path)")


def _aws_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="AWS region (default: the profile's, or the KMS key ARN's)")
    parser.add_argument("--profile", help="AWS named profile")
    parser.add_argument("--endpoint-url", metavar="URL", help="custom endpoint (LocalStack, moto_server)")


class _VersionAction(argparse.Action):
    """--version, looked up only when asked (importlib.metadata costs tens of milliseconds at start-up)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        sys.stdout.write(f"certfleet {_version()}\n")
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("certfleet")
    except PackageNotFoundError:
        return "unknown"


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    if command == "status":
        from certfleet.cli import status

        return status.status
    if command == "renew":
        from certfleet.cli import renew

        return renew.renew
    if command == "probe":
        from certfleet.cli import probe

        return probe.probe
    if command == "map":
        from certfleet.cli import map as map_command

        return map_command.run
    if command in ("seal", "upload"):
        from certfleet.cli import aws_commands

        return aws_commands.seal if command == "seal" else aws_commands.upload
    from certfleet.cli import material_commands

    return {
        "inspect": material_commands.inspect,
        "convert": material_commands.convert,
        "verify": material_commands.verify,
        "keygen": material_commands.keygen,
        "csr": material_commands.csr,
    }[command]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    check_usage = getattr(args, "check_usage", None)
    if check_usage is not None:
        check_usage(args)
    try:
        return _handler(args.command)(args)
    except BrokenPipeError:  # the reader (head, less) went away: nothing left to say
        sys.stderr = sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    except KeyboardInterrupt:
        err("certfleet: interrupted")
        return 130
    except Exception as exc:  # the contract: a sentence, never a traceback
        from certfleet.material.findings import MaterialError

        if isinstance(exc, MaterialError):
            err(f"certfleet: {exc.finding}")
            return 1
        if isinstance(exc, OSError):
            where = f" {exc.filename}" if exc.filename else ""
            err(f"certfleet: cannot access{where}: {exc.strerror or exc}")
            return 1
        err(f"certfleet: unexpected {type(exc).__name__}: {exc}\n"
            "This is a bug in certfleet; please report it with the command you ran.")
        return 1


if __name__ == "__main__":
    sys.exit(main())
