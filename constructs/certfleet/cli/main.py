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
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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
    return parser


def _aws_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="AWS region (default: the profile's, or the KMS key ARN's)")
    parser.add_argument("--profile", help="AWS named profile")
    parser.add_argument("--endpoint-url", metavar="URL", help="custom endpoint (LocalStack, moto_server)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("certfleet")
    except PackageNotFoundError:
        return "unknown"


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
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
