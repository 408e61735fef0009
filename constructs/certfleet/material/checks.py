"""Every check ACM, CloudFront and the other services would otherwise report at deploy time."""

from __future__ import annotations

import datetime as dt
import os
import re
import struct
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID, SignatureAlgorithmOID

from certfleet._lambda.certfleet_contract import EC_CURVES, RSA_1024
from certfleet.material.bundle import Material, is_self_signed, name_of, spki_sha256
from certfleet.material.findings import Finding, error, warning
from certfleet.material.loader import LoadedFile
from certfleet.material.names import (
    covers,
    dns_names,
    escaped,
    has_san,
    ip_addresses,
    is_hostname,
    name_problem,
    printable,
)
from certfleet.rules import ACM_KEY_ALGORITHMS, RULES, Service

MAX_CERTIFICATE_BYTES = 32_768
MAX_KEY_BYTES = 5_120
MAX_CHAIN_BYTES = 2_097_152
MAX_OCSP_URL = 1_000
DEFAULT_WARN_DAYS = 30

_CHAIN_ERRORS = {"chain-broken", "chain-missing-issuer"}
_SHA1 = {
    SignatureAlgorithmOID.RSA_WITH_SHA1,
    SignatureAlgorithmOID.ECDSA_WITH_SHA1,
    SignatureAlgorithmOID.DSA_WITH_SHA1,
}


def key_algorithm(public_key: PublicKeyTypes) -> str:
    """ACM's name for a key (``RSA_2048``, ``EC_prime256v1``); a descriptive name for the rest."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA_{public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return EC_CURVES.get(public_key.curve.name, f"EC_{public_key.curve.name}")
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ED25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "ED448"
    if isinstance(public_key, dsa.DSAPublicKey):
        return f"DSA_{public_key.key_size}"
    return type(public_key).__name__


def key_family(algorithm: str) -> str:
    return algorithm.split("_", 1)[0]


def signature_family(cert: x509.Certificate) -> str:
    """The key family of the CA that signed ``cert``, read from its signature algorithm."""
    dotted = cert.signature_algorithm_oid.dotted_string
    if dotted.startswith("1.2.840.10045.4"):
        return "EC"
    if dotted.startswith("1.2.840.113549.1.1"):
        return "RSA"
    if dotted.startswith("2.16.840.1.101.3.4.3") or dotted.startswith("1.2.840.10040.4"):
        return "DSA"
    if dotted == "1.3.101.112":
        return "ED25519"
    if dotted == "1.3.101.113":
        return "ED448"
    return dotted


def pem_sizes(material: Material) -> tuple[int, int, int]:
    """The byte sizes ACM counts: certificate PEM, key PEM (PKCS#8), chain PEM."""
    cert = len(material.leaf.public_bytes(serialization.Encoding.PEM))
    chain = sum(len(c.public_bytes(serialization.Encoding.PEM)) for c in material.chain)
    key = 0
    if material.key is not None:
        key = len(material.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
        ))
    return cert, key, chain


def check_material(
    material: Material,
    *,
    domains: Iterable[str] = (),
    services: Iterable[Service] = (),
    now: dt.datetime | None = None,
    warn_days: int = DEFAULT_WARN_DAYS,
) -> list[Finding]:
    """All findings for ``material``: errors block an import, warnings do not."""
    now = now or dt.datetime.now(dt.UTC)
    leaf = material.leaf
    subject = name_of(leaf)
    findings = list(material.findings)
    findings += _key_findings(material)
    if leaf.version is not x509.Version.v3:
        findings.append(error(
            "not-v3", f"the certificate is X.509 {leaf.version.name}; ACM imports only version 3",
            "ask the CA for a v3 certificate (every public CA issues v3)", subject,
        ))
    findings += _validity(leaf, now, warn_days, subject)
    findings += _chain_findings(material, now)
    algorithm = key_algorithm(leaf.public_key())
    if algorithm not in ACM_KEY_ALGORITHMS:
        findings.append(error(
            "key-algorithm-unsupported",
            f"ACM cannot import a {algorithm} key; it takes RSA 1024-4096 and EC P-256/P-384/P-521",
            "generate an RSA 2048 or EC P-256 key (`certfleet keygen`) and have the certificate reissued",
            subject,
        ))
    elif algorithm == RSA_1024:
        findings.append(warning(
            "rsa-1024", "RSA 1024 is importable but weak, and browsers distrust it",
            "reissue with RSA 2048 or EC P-256 (`certfleet keygen --type ec-p256`)", subject,
        ))
    ca_family = signature_family(leaf)
    if not is_self_signed(leaf) and ca_family != key_family(algorithm):
        findings.append(error(
            "ca-algorithm-mismatch",
            f"the leaf has a {key_family(algorithm)} key but was signed by a {ca_family} CA; "
            "ACM requires the two to match",
            f"have it issued by the CA's {key_family(algorithm)} intermediate, or use a {ca_family} key",
            subject,
        ))
    for cert in [leaf, *material.chain]:
        if cert.signature_algorithm_oid in _SHA1 and not is_self_signed(cert):
            findings.append(warning(
                "sha1-signature", f"{name_of(cert)} is signed with SHA-1, which browsers reject",
                "ask the CA to reissue it with SHA-256", name_of(cert),
            ))
    if is_self_signed(leaf):
        findings.append(warning(
            "self-signed-leaf", "the certificate is self-signed: browsers and API clients will not trust it",
            "fine for tests; for production use a certificate from a public or company CA", subject,
        ))
    findings += _name_findings(leaf, subject)
    # Without a SAN, only a Common Name that is a host name counts ("My Company Inc" is not one).
    hostnames = dns_names(leaf) if has_san(leaf) else [n for n in dns_names(leaf) if is_hostname(n)]
    if not hostnames and not ip_addresses(leaf):
        findings.append(error(
            "no-domain-name", "the certificate names no domain or IP address; ACM requires one",
            "reissue it with a subjectAltName (`certfleet csr --san ...`)", subject,
        ))
    elif not has_san(leaf):
        findings.append(warning(
            "cn-only", "the certificate has no subjectAltName; browsers ignore the Common Name",
            "reissue it with the names in subjectAltName (`certfleet csr --san ...`)", subject,
        ))
    findings += _ocsp(leaf, subject)
    findings += _sizes(material, subject)
    for domain in domains:
        if not covers(leaf, domain):
            served = escaped(", ".join(dns_names(leaf) + ip_addresses(leaf))) or "no names"
            findings.append(error(
                "domain-not-covered", f"{domain} is not covered: the certificate is for {served}",
                f"ask the CA for a certificate that lists {domain} (a wildcard covers one label only)",
                subject,
            ))
    for service in services:
        findings += service_findings(service, algorithm)
    return findings


def service_findings(service: Service, algorithm: str) -> list[Finding]:
    """Whether ``service`` takes an imported certificate with this key algorithm (subject: the service)."""
    rule = RULES[service]
    subject = service.value
    if not rule.accepts_imported:
        return [error("service-refuses-imported", rule.refusal, "", subject)]
    verdict = rule.judge_key(algorithm)
    if verdict == "refused":
        good = ", ".join(a for a in ACM_KEY_ALGORITHMS if a in rule.accepted)
        return [error(
            "service-key-refused", f"{rule.title} does not accept a {algorithm} key",
            f"reissue with one of: {good}", subject,
        )]
    if verdict == "unverified":
        return [warning(
            "service-key-unverified",
            f"AWS does not document {algorithm} for {rule.title}; it may be refused at deploy time",
            f"the documented keys are {', '.join(sorted(rule.accepted))}", subject,
        )]
    return []


def _key_findings(material: Material) -> list[Finding]:
    item = material.key_item
    if item is None:
        return []
    if item.key is None:
        return [error(
            "key-encrypted",
            "the private key is encrypted and no passphrase was given; ACM needs it unencrypted",
            "pass --password-env VAR (or --password-file F); "
            "`certfleet convert` writes it unencrypted for ACM",
            item.source,
        )]
    if spki_sha256(item.key.public_key()) != spki_sha256(material.leaf.public_key()):
        return [error(
            "key-mismatch", "the private key does not belong to this certificate",
            "find the key the CSR was made with; if it is lost, generate a new key and CSR and reissue",
            item.source,
        )]
    return []


def _validity(cert: x509.Certificate, now: dt.datetime, warn_days: int, subject: str) -> list[Finding]:
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now > not_after:
        return [error(
            "expired", f"the certificate expired on {not_after:%Y-%m-%d %H:%M} UTC",
            "renew it with the CA and import the new one", subject,
        )]
    if now < not_before:
        return [error(
            "not-yet-valid", f"the certificate is not valid until {not_before:%Y-%m-%d %H:%M} UTC",
            "wait until then, or check the clock of the machine that issued it", subject,
        )]
    days = (not_after - now).days
    if days < warn_days:
        return [warning(
            "expires-soon", f"the certificate expires in {days} days ({not_after:%Y-%m-%d})",
            "renew now: CloudFront may serve the old certificate for up to 24 hours after a re-import",
            subject,
        )]
    return []


def _chain_findings(material: Material, now: dt.datetime) -> list[Finding]:
    findings: list[Finding] = []
    for cert in material.chain:
        if now > cert.not_valid_after_utc:
            root = is_self_signed(cert)
            make = warning if root else error
            findings.append(make(
                "chain-expired",
                f"{name_of(cert)} in the chain expired on {cert.not_valid_after_utc:%Y-%m-%d}",
                "download the CA's current chain" + (" (roots need not be sent at all)" if root else ""),
                name_of(cert),
            ))
    top = material.chain[-1] if material.chain else material.leaf
    if not is_self_signed(top) and not any(f.code in _CHAIN_ERRORS for f in material.findings):
        findings.append(warning(
            "chain-incomplete",
            f"the chain stops at {name_of(top)}, whose issuer {escaped(top.issuer.rfc4514_string())} was not given",
            "fine if that issuer is a root every client trusts; otherwise add it with --chain "
            "(download it from the CA Issuers URL in the certificate)",
            name_of(material.leaf),
        ))
    return findings


def _name_findings(cert: x509.Certificate, subject: str) -> list[Finding]:
    """An error for each name that is not a host name, wildcard or IP address: such a name is refused by CAs
    and browsers, and must never reach a shell script or a server config (certfleet writes names there)."""
    if has_san(cert):
        named = [("DNS name", n, False) for n in dns_names(cert)]
        # browsers ignore the CN of a certificate with SANs ("My Company Inc" passes), not a control character
        named += [("Common Name", n, True) for n in _common_names(cert) if not n.isprintable()]
    else:
        named = [("Common Name", n, True) for n in _common_names(cert) if is_hostname(n) or not n.isprintable()]
    findings = []
    for kind, name, allow_ip in named:
        problem = name_problem(name, allow_ip=allow_ip)  # a control character is never LDH: always a problem
        if problem:
            findings.append(error(
                "name-invalid", f"the {kind} {printable(name)} is not a valid host name: {problem}",
                "have the certificate reissued with host names only (letters, digits, hyphens and dots; "
                "international names as xn-- A-labels)",
                subject,
            ))
    return findings


def _common_names(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _ocsp(cert: x509.Certificate, subject: str) -> list[Finding]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    for desc in aia:
        if desc.access_method == AuthorityInformationAccessOID.OCSP:
            url = str(desc.access_location.value)
            if len(url) > MAX_OCSP_URL:
                return [error(
                    "ocsp-url-too-long", f"the OCSP URL is {len(url)} characters; ACM allows {MAX_OCSP_URL}",
                    "ask the CA to reissue with a shorter OCSP URL", subject,
                )]
    return []


def _sizes(material: Material, subject: str) -> list[Finding]:
    cert, key, chain = pem_sizes(material)
    findings = []
    for code, size, limit, what in (
        ("certificate-too-large", cert, MAX_CERTIFICATE_BYTES, "certificate"),
        ("key-too-large", key, MAX_KEY_BYTES, "private key"),
        ("chain-too-large", chain, MAX_CHAIN_BYTES, "chain"),
    ):
        if size > limit:
            findings.append(error(
                code, f"the {what} is {size:,} bytes as PEM; ACM accepts at most {limit:,}",
                "use a smaller key or fewer extensions; drop certificates the chain does not need", subject,
            ))
    return findings


def check_files(files: Iterable[LoadedFile]) -> list[Finding]:
    """File hygiene for files that hold a private key: permissions and git tracking."""
    findings: list[Finding] = []
    for loaded in files:
        if not loaded.keys:
            continue
        if loaded.mode is not None and loaded.mode & 0o077:
            findings.append(warning(
                "key-file-permissions", f"the key file is readable by others (mode {loaded.mode:04o})",
                f"chmod 400 {loaded.path}", loaded.path,
            ))
        if tracked_by_git(loaded.path):
            findings.append(warning(
                "key-file-tracked-by-git",
                "the key file is tracked by git: everyone with the repository has it",
                "git rm --cached it, add it to .gitignore, rotate the key, and commit a sealed key instead "
                "(`certfleet seal`)",
                loaded.path,
            ))
    return findings


def tracked_by_git(path: str) -> bool:
    """True when ``path`` is tracked in the git work tree that contains it.

    Reads the repository's index file itself instead of running git: git honours the repository's own
    config (``core.fsmonitor`` runs a command on ``git ls-files``), and a key file may sit in a repository
    someone else prepared. Nothing here executes, and an index that cannot be read counts as "not tracked",
    as does a file inside a directory a sparse index keeps as one entry (its tracked files are not on disk).
    """
    file = Path(path).resolve()
    found = _work_tree(file.parent)
    if found is None:
        return False
    root, git_dir = found
    try:
        wanted = os.fsencode(file.relative_to(root).as_posix())
        return any(entry == wanted for entry in _index_entries(git_dir))
    except (OSError, ValueError, IndexError, struct.error):
        return False


def _work_tree(folder: Path) -> tuple[Path, Path] | None:
    """The work tree root and git directory that hold ``folder`` (``.git`` a directory or a ``gitdir:`` file)."""
    for candidate in (folder, *folder.parents):
        dot_git = candidate / ".git"
        try:
            if dot_git.is_dir():
                return candidate, dot_git
            if dot_git.is_file():
                text = dot_git.read_text(encoding="utf-8", errors="replace")[:4096]
                if text.startswith("gitdir:"):
                    return candidate, (candidate / text[len("gitdir:"):].strip()).resolve()
                return None
        except OSError:
            return None
    return None


def _index_entries(git_dir: Path) -> list[bytes]:
    """Every path in the index of ``git_dir``, the shared index of a split index included."""
    common = git_dir
    if (git_dir / "commondir").is_file():  # a linked work tree: config and shared files live in the main one
        common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    config = (common / "config").read_text(encoding="utf-8", errors="replace") if (common / "config").is_file() else ""
    hash_size = 32 if re.search(r"(?im)^\s*objectformat\s*=\s*sha256\s*$", config) else 20
    entries, shared = _parse_index((git_dir / "index").read_bytes(), hash_size)
    if shared is not None:  # split index: entries also live in sharedindex.<hash>
        for folder in (git_dir, common):
            if (folder / f"sharedindex.{shared}").is_file():
                entries += _parse_index((folder / f"sharedindex.{shared}").read_bytes(), hash_size)[0]
                break
    return entries


def _parse_index(data: bytes, hash_size: int) -> tuple[list[bytes], str | None]:
    """The paths of a git index file (versions 2, 3 and 4) and the shared index it links to.

    Format: git's Documentation/gitformat-index.txt. Raises ValueError (or IndexError, struct.error) on
    anything else.
    """
    if data[:4] != b"DIRC":
        raise ValueError("not a git index")
    version, count = struct.unpack(">II", data[4:12])
    if version not in (2, 3, 4):
        raise ValueError(f"index version {version}")
    pos, previous = 12, b""
    entries: list[bytes] = []
    for _ in range(count):
        start = pos
        pos += 40 + hash_size  # ctime, mtime, dev, ino, mode, uid, gid, size: 40 bytes; then the object id
        (flags,) = struct.unpack(">H", data[pos : pos + 2])
        pos += 2
        if version >= 3 and flags & 0x4000:
            pos += 2  # extended flags
        if version == 4:
            strip, pos = _varint(data, pos)
            end = data.index(b"\0", pos)
            if strip > len(previous):
                raise ValueError("bad path compression")
            path = previous[: len(previous) - strip] + data[pos:end]
            pos = end + 1
        else:
            end = data.index(b"\0", pos)
            path = data[pos:end]
            pos = start + (end - start + 8) // 8 * 8  # 1 to 8 NULs pad the entry to a multiple of 8
        entries.append(path)
        previous = path
    shared = None
    while pos + 8 <= len(data) - hash_size:
        signature, size = data[pos : pos + 4], struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        if signature == b"link":
            shared = data[pos + 8 : pos + 8 + hash_size].hex()
        pos += 8 + size
    return entries, shared


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """git's offset varint (varint.c): 7 bits a byte, most significant first, +1 per continuation."""
    byte = data[pos]
    pos += 1
    value = byte & 0x7F
    while byte & 0x80:
        byte = data[pos]
        pos += 1
        value = ((value + 1) << 7) | (byte & 0x7F)
    return value, pos
