"""inspect, convert, verify, keygen, csr: the offline commands that work on files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from certfleet.cli.files import Output, refuse_link_or_special, write_outputs
from certfleet.cli.output import emit_json, err, out, table
from certfleet.material import (
    Finding,
    LoadedFile,
    MaterialError,
    assemble,
    check_files,
    check_material,
    load_file,
    normalize,
)
from certfleet.material.bundle import name_of
from certfleet.material.describe import describe_certificate, describe_key
from certfleet.material.findings import error
from certfleet.material.loader import DamagedBlockError, password_from_env, password_from_file
from certfleet.material.names import escaped
from certfleet.rules import RULES, Placement, Service, service_named


def read_password(args: argparse.Namespace) -> bytes | None:
    """The passphrase from --password-env or --password-file, if either was given."""
    if getattr(args, "password_env", None):
        return password_from_env(args.password_env)
    if getattr(args, "password_file", None):
        return password_from_file(args.password_file)
    return None


def inspect(args: argparse.Namespace) -> int:
    password = read_password(args)
    reports: list[dict[str, Any]] = []
    failed = 0
    for path in args.files:
        damage: dict[str, str] | None = None
        try:
            loaded = load_file(path, password)
        except DamagedBlockError as exc:  # show what the good blocks held, then the damaged block's error
            loaded, damage = exc.loaded, exc.finding.to_dict()
        except MaterialError as exc:
            failed += 1
            reports.append({"file": path, "error": exc.finding.to_dict()})
            continue
        report: dict[str, Any] = {
            "file": path,
            "format": loaded.format,
            "certificates": [describe_certificate(c) for c in loaded.certificates],
            "keys": [describe_key(k, loaded.certificates) for k in loaded.keys],
            "notes": loaded.notes,
            "findings": [f.to_dict() for f in check_files([loaded])],
        }
        if damage is not None:
            failed += 1
            report["error"] = damage
        reports.append(report)
    if args.json:
        emit_json(reports)
    else:
        for report in reports:
            _print_inspect(report)
    return 1 if failed else 0


def _print_inspect(report: dict[str, Any]) -> None:
    if "error" in report:
        finding = report["error"]
        fix = f"\n    fix: {finding['fix']}" if finding["fix"] else ""
        err(f"{report['file']}: {finding['message']}{fix}")
        if "format" not in report:
            return
    certs, keys = report["certificates"], report["keys"]
    out(f"{report['file']}: {report['format']}, {len(certs)} certificate(s), {len(keys)} private key(s)")
    for i, cert in enumerate(certs, 1):
        kind = "CA" if cert["ca"] else "end-entity"
        if cert["self_signed"]:
            kind += ", self-signed"
        out(f"  certificate {i} ({kind})")
        out(table([
            ["subject", cert["subject"]],
            ["issuer", cert["issuer"]],
            ["names", escaped(", ".join(cert["names"])) or "-"],
            ["valid", f"{cert['not_before'][:19]} to {cert['not_after'][:19]} UTC "
                      f"({cert['days_left']} days left)"],
            ["key", cert["key_algorithm"]],
            ["signature", cert["signature_algorithm"]],
            ["sha256", cert["sha256"]],
            ["spki sha256", cert["spki_sha256"]],
        ], indent="    "))
    for i, key in enumerate(keys, 1):
        enc = "encrypted" if key["encrypted"] else "unencrypted"
        out(f"  private key {i} ({key['container']}, {enc})")
        rows = [["algorithm", key["algorithm"] or "unknown (encrypted)"]]
        if "spki_sha256" in key:
            rows.append(["spki sha256", key["spki_sha256"]])
            rows.append(["matches", ", ".join(key["matches"]) or "no certificate in this file"])
        out(table(rows, indent="    "))
    for note in report["notes"]:
        out(f"  note: {note}")
    for finding in report["findings"]:
        out(f"  {finding['severity']} [{finding['code']}] {finding['message']}\n    fix: {finding['fix']}")


def _load_all(paths: list[str | None], password: bytes | None) -> list[LoadedFile]:
    return [load_file(p, password) for p in paths if p]


def convert(args: argparse.Namespace) -> int:
    password = read_password(args)
    files = _load_all(args.files, password)
    material = assemble(files)
    findings = check_material(material)
    if material.key_item is not None and material.key is None:
        blocking = [f for f in findings if f.code == "key-encrypted"]
        raise MaterialError(blocking[0])
    mismatch = [f for f in findings if f.code == "key-mismatch"]
    if mismatch:
        raise MaterialError(mismatch[0])
    normalized = normalize(material)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    outputs = [Output(folder / "cert.pem", normalized.certificate.encode("ascii"))]
    if normalized.chain:
        outputs.append(Output(folder / "chain.pem", normalized.chain.encode("ascii")))
    if normalized.private_key is not None:
        outputs.append(Output(folder / "private.key", normalized.private_key.encode("ascii"), mode=0o400))
    stale = folder / "chain.pem"
    if not normalized.chain:  # another leaf's chain.pem must not stay beside this certificate
        refuse_link_or_special(stale, replace=args.force, fix="choose another --out folder, or pass --force")
    write_outputs(outputs, replace=args.force,
                  fix="choose another --out folder, or pass --force to replace it")
    for output in outputs:
        out(f"wrote {output.path}" + (" (mode 0400, unencrypted PKCS#8: what ACM imports)"
                                      if output.mode == 0o400 else ""))
    if not normalized.chain:
        stale.unlink(missing_ok=True)
        out("no chain: the certificate's issuer was not given, so chain.pem was not written")
    for change in material.changes:
        out(f"changed: {change}")
    for finding in findings:
        out(str(finding))
    errors = [f for f in findings if f.is_error]
    if errors:
        out(f"result: FAILED ({len(errors)} error(s)): the files were written, but ACM or a service would refuse "
            "them as they are")
        return 1
    return 0


def verify(args: argparse.Namespace) -> int:
    try:
        services = [service_named(s) for s in args.service]
    except KeyError as exc:
        err(f"certfleet verify: {exc.args[0]}")
        return 2
    password = read_password(args)
    files = _load_all([args.certificate, args.chain, args.key], password)
    material = assemble(files)
    findings = check_material(
        material, domains=args.domain, services=services, warn_days=args.warn_days,
    ) + check_files(files)
    errors = [f for f in findings if f.is_error]
    warnings = [f for f in findings if not f.is_error]
    ok = not errors and not (args.strict and warnings)
    service_rows = [_service_row(s, findings) for s in services]
    if args.json:
        emit_json({
            "ok": ok,
            "certificate": describe_certificate(material.leaf),
            "chain": [describe_certificate(c) for c in material.chain],
            "key": describe_key(material.key_item, [material.leaf]) if material.key_item else None,
            "changes": material.changes,
            "services": service_rows,
            "findings": [f.to_dict() for f in findings],
        })
        return 0 if ok else 1
    leaf = describe_certificate(material.leaf)
    chain = " → ".join(name_of(c) for c in material.chain) or "none given"
    key = "not given"
    if material.key_item is not None:
        key = "encrypted, not checked" if material.key is None else (
            "does NOT match" if any(f.code == "key-mismatch" for f in errors) else "matches the certificate")
    out(table([
        ["certificate", f"{leaf['subject']} ({leaf['key_algorithm']})"],
        ["names", escaped(", ".join(leaf["names"])) or "-"],
        ["valid until", f"{leaf['not_after'][:10]} ({leaf['days_left']} days left)"],
        ["chain", chain],
        ["key", key],
    ], indent=""))
    for change in material.changes:
        out(f"changed: {change}")
    if service_rows:
        out("services:")
        out(table([[r["service"], "ok" if r["ok"] else "NO", r["detail"]] for r in service_rows]))
    for finding in findings:
        out(str(finding))
    verdict = "ok" if ok else "FAILED"
    out(f"result: {verdict} ({len(errors)} error(s), {len(warnings)} warning(s))")
    return 0 if ok else 1


def _service_row(service: Service, findings: list[Finding]) -> dict[str, Any]:
    rule = RULES[service]
    general_errors = [f for f in findings if f.is_error and not f.code.startswith("service-")]
    refused = [f for f in findings if f.is_error and f.subject == service.value]
    if refused:
        detail = refused[0].message
    elif rule.placement is Placement.EDGE:
        detail = "import into us-east-1, whatever the consumer's region"
    elif rule.placement is Placement.LOCAL:
        detail = "import into the same region as the " + rule.title
        if not rule.region_verified:
            detail += " (assumed: AWS documents no region rule)"
    else:
        detail = rule.notes
    return {"service": service.value, "ok": not refused and not general_errors, "detail": detail}


def keygen(args: argparse.Namespace) -> int:
    from certfleet.material.bundle import spki_sha256
    from certfleet.material.checks import key_algorithm
    from certfleet.material.keys import generate_key, private_pem

    never = "choose another --out, or move the old file away first (certfleet never overwrites a key)"
    refuse_link_or_special(Path(args.out), replace=False, fix=never)  # before spending seconds on an RSA key
    key = generate_key(args.type)
    write_outputs([Output(Path(args.out), private_pem(key), mode=0o400)], replace=False, fix=never)
    out(f"wrote {args.out} ({key_algorithm(key.public_key())}, mode 0400)")
    out(f"public key sha256 {spki_sha256(key.public_key())}")
    out(f"next: certfleet csr --key {args.out} --common-name www.example.com --san example.com "
        "--out request.csr")
    return 0


def csr(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    from certfleet.material.keys import CsrConfig, build_csr

    loaded = load_file(args.key, read_password(args))
    if not loaded.keys:
        raise MaterialError(error("no-key", "the file holds no private key", "pass the key file with --key",
                                  args.key))
    key = loaded.keys[0].key
    if key is None:
        raise MaterialError(error("key-encrypted", "the private key is encrypted",
                                  "pass --password-env VAR or --password-file F", args.key))
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
                      | ed448.Ed448PrivateKey | dsa.DSAPrivateKey):
        raise MaterialError(error("unreadable", "this key type cannot sign a CSR", "", args.key))
    if args.config:
        config = CsrConfig.from_toml(args.config)
        if args.san:
            config.sans.extend(args.san)
    else:
        config = CsrConfig(common_name=args.common_name, sans=list(args.san),
                           organization=args.organization, country=args.country)
    target = Path(args.out)
    refuse_link_or_special(target, replace=False, fix="choose another --out")
    request = build_csr(key, config)
    write_outputs([Output(target, request.public_bytes(serialization.Encoding.PEM), mode=0o644)], replace=False,
                  fix="choose another --out")
    out(f"wrote {target}: CN={config.checked_names()[0]}, SANs {', '.join(config.display_names())}")
    out("next: send it to your CA, then `certfleet verify` what it returns")
    return 0
