"""`certfleet probe HOST[:PORT]`: what a TLS server really serves, and whether the renewal is live yet.

One handshake that validates (against ``--ca-file`` or the system store, as a client would); when validation
fails, a second one that does not, so that the served certificates can still be shown. Names are checked here,
with RFC 6125 rules (certfleet.material.names), so a name mismatch and an untrusted chain are told apart.
The handshake itself is in certfleet.cli.tls_handshake.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
from typing import Any

from certfleet.cli.output import emit_json, out, table
from certfleet.cli.tls_handshake import Handshake, handshake, hostport

# Only the standard library at import time: cryptography and boto3 are imported by the functions that use them.

DEFAULT_PORT = 443


def seconds(value: str) -> float:
    """argparse type for --timeout: a positive number of seconds."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not number > 0 or number > 3600:
        raise argparse.ArgumentTypeError("the timeout must be more than 0 and at most 3600 seconds")
    return number


def parse_target(target: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port``, ``[v6]`` or a bare IPv6 address -> (host, port)."""
    text = target.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0]
    host, port = text, ""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"{target!r}: a '[' without its ']'")
        host, rest = text[1:close], text[close + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{target!r}: expected [ADDRESS]:PORT")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host:
        raise ValueError(f"{target!r}: no host name")
    if not port:
        return host, DEFAULT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{target!r}: {port!r} is not a port number (1-65535)")
    return host, int(port)


def target(value: str) -> tuple[str, int]:
    """argparse type for HOST[:PORT] (a bad host name or port is a usage error, exit 2)."""
    try:
        host, port = parse_target(value)
        return host_name(host, underscores=True), port
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def servername(value: str) -> str:
    """argparse type for --servername: a DNS name (or an IP address), checked before anything connects."""
    try:
        return host_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def host_name(value: str, *, underscores: bool = False) -> str:
    """``value`` as a host name TLS can send (A-labels, no trailing dot), or ValueError saying why it cannot be.

    ``underscores``: allow ``_`` in labels, as DNS records (and container service names) to connect to may hold.
    """
    from certfleet.material.names import name_problem, printable, to_a_label

    name = value.strip()
    if name.endswith(".") and not name.endswith(".."):
        name = name[:-1]  # the root's dot: www.example.com. is www.example.com
    if name.startswith("*"):
        raise ValueError(f"{printable(value)} is a wildcard: name one host, such as www.example.com")
    try:
        name = to_a_label(name)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    problem = name_problem(name.replace("_", "u") if underscores else name, allow_ip=True)
    if problem is not None:
        raise ValueError(f"{printable(value)} is not a host name: {problem}")
    return name


def probe(args: argparse.Namespace) -> int:
    host, port = args.target
    servername = args.servername or host
    expected = _expected(args.certificate, args.chain) if args.certificate else None
    shake = handshake(host, port, servername, args.timeout, args.ca_file)
    report = _report(args, host, port, servername=servername, shake=shake, expected=expected)
    if args.json:
        emit_json(report)
    else:
        _print(report)
    return 0 if report["ok"] else 1


def _expected(certificate: str, chain: str | None) -> Any:
    from certfleet.material import load_material

    return load_material(certificate, chain)


# ------------------------------------------------------------------------------------------------ analysis
def _report(
    args: argparse.Namespace, host: str, port: int, *, servername: str, shake: Handshake, expected: Any,
) -> dict[str, Any]:
    from certfleet.material.bundle import fingerprint, is_self_signed, name_of
    from certfleet.material.describe import describe_certificate
    from certfleet.material.findings import error, warning
    from certfleet.material.names import covers, has_san

    now = dt.datetime.now(dt.UTC)
    leaf = shake.chain[0]
    findings = []
    described = [describe_certificate(c, now) for c in shake.chain]
    info = described[0]
    if leaf.not_valid_after_utc < now:
        findings.append(error("leaf-expired", f"the served certificate expired on {info['not_after'][:10]} "
                              f"({_ago(now - leaf.not_valid_after_utc)})", "deploy the renewed certificate",
                              servername))
    elif leaf.not_valid_before_utc > now:
        findings.append(error("leaf-not-yet-valid", f"the served certificate is valid only from "
                              f"{info['not_before'][:19]} UTC", "check the server's clock and the certificate's "
                              "dates", servername))
    elif info["days_left"] <= args.warn_days:
        findings.append(warning("leaf-expires-soon", f"the served certificate expires in {info['days_left']} days "
                                f"({info['not_after'][:10]})", "renew and deploy it now (CloudFront may take up "
                                "to 24 hours to serve a re-imported certificate)", servername))
    name_ok = has_san(leaf) and covers(leaf, servername)  # browsers match the subjectAltName only (RFC 6125)
    if not has_san(leaf):
        common = ", ".join(info["names"]) or "no name"
        findings.append(error(
            "name-mismatch", f"the served certificate has no subjectAltName, so no browser accepts it for "
            f"{servername}: its Common Name ({common}) is ignored",
            "serve a certificate that lists the name in its subjectAltName (every public CA issues one)", servername,
        ))
    elif not name_ok:
        findings.append(error(
            "name-mismatch", f"the served certificate does not cover {servername} "
            f"(it covers {', '.join(info['names']) or 'no name'})",
            "serve a certificate with this name in its subjectAltName, or check --servername (SNI)", servername,
        ))
    if not shake.verified:
        store = f"--ca-file {args.ca_file}" if args.ca_file else "the system trust store"
        fix = ("if a private CA issued it, pass its root with --ca-file" if not args.ca_file
               else "check that --ca-file holds the root that issued this chain")
        if len(shake.chain) == 1 and not is_self_signed(leaf):
            fix = f"serve the intermediate certificates along with the leaf; {fix}"
        elif "expired" in shake.verify_error:
            fix = "serve a certificate (and chain) that is valid today"
        findings.append(error("untrusted", f"the served chain does not validate against {store}: "
                              f"{shake.verify_error}", fix, servername))
    findings.extend(_chain_findings(shake.chain, servername))
    if shake.chain_source == "served" and len(shake.chain) == 1 and not is_self_signed(leaf):
        findings.append(warning(
            "chain-missing", "the server sends the leaf alone, without its intermediate certificates",
            "configure the chain (ACM: import with --chain; nginx: ssl_certificate with the full chain)", servername,
        ))
    for position, cert in enumerate(shake.chain[1:], 1):
        if cert.not_valid_after_utc < now:
            findings.append(warning("chain-expired", f"served chain certificate {position} ({name_of(cert)}) has "
                                    "expired", "serve the issuer's current intermediate", servername))
    if shake.client_certificate_requested:
        findings.append(warning(
            "client-certificate-requested", "the server asks for a client certificate (mutual TLS); probe sent "
            "none", "clients without a certificate will be refused, as mutual TLS intends", servername,
        ))
    comparison = None
    if expected is not None:
        comparison = _compare(args, leaf, shake, expected, servername=servername, findings=findings)
    errors = [f for f in findings if f.is_error]
    return {
        "ok": not errors,
        "target": {"host": host, "port": port, "servername": servername, "address": shake.address},
        "protocol": shake.protocol,
        "cipher": {"name": shake.cipher, "bits": shake.bits},
        "chain_source": shake.chain_source,
        "depth": len(shake.chain),
        "chain": [
            {"depth": i, "subject": d["subject"], "issuer": d["issuer"], "not_after": d["not_after"],
             "days_left": d["days_left"], "key_algorithm": d["key_algorithm"], "sha256": d["sha256"],
             "ca": d["ca"]}
            for i, d in enumerate(described)
        ],
        "leaf": {**info, "sha256": fingerprint(leaf)},
        "name_match": name_ok,
        "validation": {"ok": shake.verified, "against": args.ca_file or "system", "error": shake.verify_error or None,
                       "trusted_root": shake.trusted_root or None},
        "expected": comparison,
        "findings": [f.to_dict() for f in findings],
    }


def _chain_findings(chain: list[Any], servername: str) -> list[Any]:
    """An unrelated served certificate is ``chain-extra``; the leaf's own issuers out of order are ``chain-order``."""
    from certfleet.material.bundle import issued_by, name_of
    from certfleet.material.findings import warning

    findings = []
    related = [chain[0]]
    for position, cert in enumerate(chain[1:], 1):
        if any(other is not cert and issued_by(other, cert) for other in chain):
            related.append(cert)
            continue
        findings.append(warning(
            "chain-extra", f"served certificate {position} ({name_of(cert)}) issued none of the served "
            "certificates: it does not belong to this chain", "serve only the leaf and its own issuers "
            "(remove it from chain.pem, or from the server's chain file)", servername,
        ))
    for child, parent in itertools.pairwise(related):
        if not issued_by(child, parent):
            findings.append(warning(
                "chain-order", f"served certificate {chain.index(parent)} ({name_of(parent)}) does not issue the "
                f"certificate before it, {chain.index(child)} ({name_of(child)}): the chain is out of order",
                "serve the leaf first, then each issuer in order (cert.pem then chain.pem)", servername,
            ))
            break
    return findings


def _ago(elapsed: dt.timedelta) -> str:
    """How long ago, in whole days counted down (expired 27 hours ago is "1 day ago", not "-2 days")."""
    days = elapsed.days
    if days == 0:
        return "less than a day ago"
    return f"{days} day{'s' if days != 1 else ''} ago"


def _left(days: int, not_after: str) -> str:
    """The days left for the table: what a person reads, with the past said as such."""
    if days >= 0:
        return f"{days} days left"
    elapsed = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(not_after)
    return f"expired {_ago(elapsed)}"


def _compare(
    args: argparse.Namespace, leaf: Any, shake: Handshake, expected: Any, *, servername: str, findings: list[Any],
) -> dict[str, Any]:
    """Is the served leaf the given certificate (the renewal is live), and is its chain the given one?"""
    from certfleet.material.bundle import fingerprint, name_of
    from certfleet.material.findings import error, warning

    want, got = fingerprint(expected.leaf), fingerprint(leaf)
    live = want == got
    if not live:
        older = leaf.not_valid_after_utc < expected.leaf.not_valid_after_utc
        what = "an older certificate" if older else "another certificate"
        findings.append(error(
            "not-the-certificate",
            f"{servername} still serves {what} (expires {leaf.not_valid_after_utc:%Y-%m-%d}, sha256 {got[:16]}...), "
            f"not {args.certificate} (expires {expected.leaf.not_valid_after_utc:%Y-%m-%d}, sha256 {want[:16]}...)",
            "deploy it (re-import into the same ACM ARN); ALB/NLB serve it to new connections at once, "
            "CloudFront can take up to 24 hours", servername,
        ))
    result: dict[str, Any] = {"file": args.certificate, "sha256": want, "served_sha256": got, "live": live}
    if args.chain and live and shake.chain_source == "served":
        served = [fingerprint(c) for c in shake.chain[1:]]
        given = [c for c in expected.chain if c.issuer != c.subject]  # servers need not send the root
        missing = [name_of(c) for c in given if fingerprint(c) not in served]
        result["chain_missing"] = missing
        if missing:
            findings.append(warning(
                "chain-differs", f"the server does not send {', '.join(missing)} from {args.chain}",
                "import the certificate with its chain (certfleet does this from the bundle)", servername,
            ))
    return result


# ------------------------------------------------------------------------------------------------ output
def _print(report: dict[str, Any]) -> None:
    target, leaf = report["target"], report["leaf"]
    sni = f" (servername {target['servername']})" if target["servername"] != target["host"] else ""
    out(f"{hostport(target['host'], target['port'])}{sni} at {target['address']}")
    validation = report["validation"]
    against = "the system store" if validation["against"] == "system" else validation["against"]
    root = f" (root {validation['trusted_root']})" if validation["trusted_root"] else ""
    trust = f"yes, against {against}{root}" if validation["ok"] else f"NO, against {against}: {validation['error']}"
    rows = [
        ["protocol", report["protocol"]],
        ["cipher", f"{report['cipher']['name']} ({report['cipher']['bits']} bits)"],
        ["leaf", f"{leaf['subject']} ({leaf['key_algorithm']})"],
        ["names", ", ".join(leaf["names"]) or "-"],
        ["name match", f"{'yes' if report['name_match'] else 'NO'}, for {target['servername']}"],
        ["valid until", f"{leaf['not_after'][:19]} UTC ({_left(leaf['days_left'], leaf['not_after'])})"],
        ["sha256", leaf["sha256"]],
        ["validates", trust],
    ]
    expected = report["expected"]
    if expected is not None:
        rows.append(["certificate", f"{'yes: the server serves ' if expected['live'] else 'NO: not yet serving '}"
                                    f"{expected['file']}"])
    out(table(rows, indent="  "))
    note = "" if report["chain_source"] == "served" else " (this Python shows only the leaf)"
    out(f"  served chain: {report['depth']} certificate(s){note}")
    out(table([[str(c["depth"]), c["subject"], f"until {c['not_after'][:10]}",
                _left(c["days_left"], c["not_after"]),
                c["key_algorithm"]] for c in report["chain"]], indent="    "))
    for finding in report["findings"]:
        fix = f"\n    fix: {finding['fix']}" if finding["fix"] else ""
        out(f"{finding['severity']} [{finding['code']}] {finding['message']}{fix}")
    errors = sum(1 for f in report["findings"] if f["severity"] == "error")
    warnings = len(report["findings"]) - errors
    out(f"result: {'ok' if report['ok'] else 'FAILED'} ({errors} error(s), {warnings} warning(s))")
