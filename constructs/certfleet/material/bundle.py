"""Sort loaded objects into leaf, chain (leaf → root) and key, and say what had to change."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from certfleet.material.findings import Finding, MaterialError, error, warning
from certfleet.material.loader import KeyItem, LoadedFile
from certfleet.material.names import escaped

MAX_CERTIFICATES = 256
"""Different certificates considered from all files together: a leaf and its chain are a handful, and a whole
trust store (Mozilla's holds about 150) still fits; more is refused with a sentence, never worked through."""
MAX_CANDIDATES = 8
"""Candidate issuers (of the right name) whose signature is checked, per certificate."""
MAX_SIGNATURE_CHECKS = 500
"""Signatures checked in all to sort the certificates: a real chain with cross-signed copies needs a few dozen."""


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, as colon-free lowercase hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def spki_sha256(public_key: PublicKeyTypes) -> str:
    """SHA-256 of the SubjectPublicKeyInfo: proves a key pair without ever touching the private half."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def name_of(cert: x509.Certificate) -> str:
    """The subject as RFC 4514 text, control characters escaped (a name may come from a hostile file)."""
    return escaped(cert.subject.rfc4514_string()) or "(empty subject)"


def issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """True when ``parent``'s name and key signed ``child``."""
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # cryptography refuses some algorithms here (SHA-1, which old roots and cross-signs still use;
        # DSA): check the signature with the public key primitives instead.
        return _signature_valid(child, parent)
    return True


def _signature_valid(child: x509.Certificate, parent: x509.Certificate) -> bool:
    key = parent.public_key()
    signature, data = child.signature, child.tbs_certificate_bytes
    try:
        digest = child.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and digest is not None:
            params = child.signature_algorithm_parameters
            if not isinstance(params, padding.PKCS1v15 | padding.PSS):
                return False
            key.verify(signature, data, params, digest)
        elif isinstance(key, ec.EllipticCurvePublicKey) and digest is not None:
            key.verify(signature, data, ec.ECDSA(digest))
        elif isinstance(key, dsa.DSAPublicKey) and digest is not None:
            key.verify(signature, data, digest)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


@functools.lru_cache(maxsize=1024)
def is_self_signed(cert: x509.Certificate) -> bool:
    """True when ``cert`` names itself as issuer and its own key signed it (cached: checks ask often)."""
    return cert.issuer == cert.subject and issued_by(cert, cert)


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


@dataclass
class Material:
    """A leaf, its chain ordered leaf → root, and its key (if one was given)."""

    leaf: x509.Certificate
    chain: list[x509.Certificate]
    key: PrivateKeyTypes | None = None
    key_item: KeyItem | None = None
    unrelated: list[x509.Certificate] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    sources: list[LoadedFile] = field(default_factory=list)


def assemble(files: list[LoadedFile], *, now: dt.datetime | None = None) -> Material:
    """Build ``Material`` from everything in ``files``: find the leaf, link the chain, pick the key.

    ``now`` (default: the current time) decides between two copies of an issuer when one has expired.
    """
    now = now or dt.datetime.now(dt.UTC)
    certs: list[x509.Certificate] = []
    seen: set[str] = set()
    changes: list[str] = []
    findings: list[Finding] = []
    for loaded in files:
        for cert in loaded.certificates:
            fp = fingerprint(cert)
            if fp in seen:
                changes.append(f"dropped a repeated copy of {name_of(cert)}")
                continue
            seen.add(fp)
            certs.append(cert)
    keys = [k for loaded in files for k in loaded.keys]
    where = files[0].path if files else ""
    if not certs:
        raise MaterialError(error(
            "no-certificate", "no certificate was found, only a private key",
            "name the certificate file with --certificate", where,
        ))
    if len(certs) > MAX_CERTIFICATES:
        raise MaterialError(error(
            "too-many-certificates",
            f"the files hold {len(certs):,} different certificates; certfleet considers at most "
            f"{MAX_CERTIFICATES} (a leaf and its chain are a handful)",
            "pass only the certificate and the chain the CA sent with it, not a whole trust store", where,
        ))
    issuers = _Issuers(certs, where)
    key_item = _pick_key(keys, certs)
    leaf = _pick_leaf(certs, key_item, issuers)
    pool = [c for c in certs if c is not leaf]
    chooser = _Chooser(issuers, now)
    chain = chooser.above(leaf)
    in_chain = {id(c) for c in chain}
    left_out = [c for c in pool if id(c) not in in_chain]
    if certs[0] is not leaf:
        changes.append(f"moved the leaf {name_of(leaf)} to the front")
    if [c for c in pool if id(c) in in_chain] != chain:
        changes.append("reordered the chain leaf → root")
    reachable = chooser.reached
    unrelated: list[x509.Certificate] = []
    for cert in left_out:
        if id(cert) in reachable:
            changes.append(f"left out {name_of(cert)} (issued by {escaped(cert.issuer.rfc4514_string())}): "
                           + _why_left_out(cert, leaf, chain, chooser))
            continue
        unrelated.append(cert)
        changes.append(f"left out {name_of(cert)}: it does not certify this leaf")
        findings.append(warning(
            "unrelated-certificate", f"{name_of(cert)} is not part of this leaf's chain and was left out",
            "remove it from the bundle, or check that you were given the right chain", name_of(cert),
        ))
    findings.extend(_broken(leaf, chain, pool))
    if len(keys) > 1:
        changes.append(f"used the key that matches the leaf, out of {len(keys)} keys")
    return Material(
        leaf=leaf, chain=chain, key=key_item.key if key_item else None, key_item=key_item,
        unrelated=unrelated, changes=changes, findings=findings, sources=files,
    )


def _pick_key(keys: list[KeyItem], certs: list[x509.Certificate]) -> KeyItem | None:
    if not keys:
        return None
    hashes_of_certs = {spki_sha256(c.public_key()) for c in certs}
    for item in keys:
        if item.key is not None and spki_sha256(item.key.public_key()) in hashes_of_certs:
            return item
    return keys[0]


def _pick_leaf(certs: list[x509.Certificate], key_item: KeyItem | None, issuers: _Issuers) -> x509.Certificate:
    """The certificate of the key; else the end-entity certificate that issued none of the others."""
    if key_item is not None and key_item.key is not None:
        want = spki_sha256(key_item.key.public_key())
        for cert in certs:
            if spki_sha256(cert.public_key()) == want:
                return cert
    end_entities = [c for c in certs if not is_ca(c)]
    if len(end_entities) == 1:
        return end_entities[0]
    for group in (end_entities, certs):
        for cert in group:
            if not issuers.issues_any(cert):
                return cert
    return certs[0]


class _Issuers:
    """Who signed whom, with names indexed and each signature checked at most once.

    A certificate's candidate issuers are those that bear its issuer name, the ones whose key id matches its
    authority key id first, at most ``MAX_CANDIDATES`` of them; and no more than ``MAX_SIGNATURE_CHECKS``
    signatures are checked in all: hostile input (hundreds of certificates of one name) is refused with a
    sentence after a bounded amount of work, never worked through pair by pair.
    """

    def __init__(self, certs: list[x509.Certificate], where: str) -> None:
        self._by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        self._by_issuer: dict[x509.Name, list[x509.Certificate]] = {}
        for cert in certs:
            self._by_subject.setdefault(cert.subject, []).append(cert)
            self._by_issuer.setdefault(cert.issuer, []).append(cert)
        self._of: dict[int, list[x509.Certificate]] = {}
        self._signed: dict[tuple[int, int], bool] = {}
        self._where = where

    def of(self, child: x509.Certificate) -> list[x509.Certificate]:
        """The certificates whose key signed ``child`` (``child`` itself excluded), in file order."""
        found = self._of.get(id(child))
        if found is None:
            named = [p for p in self._by_subject.get(child.issuer, []) if p is not child]
            wanted = _authority_key_id(child)
            if wanted is not None:
                named.sort(key=lambda p: _subject_key_id(p) != wanted)  # stable: file order otherwise
            found = [p for p in named[:MAX_CANDIDATES] if self.signed(child, p)]
            self._of[id(child)] = found
        return found

    def issues_any(self, parent: x509.Certificate) -> bool:
        """True when ``parent`` signed another of the certificates (among the first that bear its name)."""
        children = [c for c in self._by_issuer.get(parent.subject, []) if c is not parent]
        return any(self.signed(c, parent) for c in children[:MAX_CANDIDATES])

    def signed(self, child: x509.Certificate, parent: x509.Certificate) -> bool:
        pair = (id(child), id(parent))
        if pair not in self._signed:
            if len(self._signed) >= MAX_SIGNATURE_CHECKS:
                raise MaterialError(error(
                    "too-many-certificates",
                    f"the files hold too many certificates named alike ({name_of(parent)}...): telling which "
                    f"signed which takes more than {MAX_SIGNATURE_CHECKS} signature checks",
                    "pass only the certificate and the chain the CA sent with it", self._where,
                ))
            self._signed[pair] = issued_by(child, parent)
        return self._signed[pair]


class _Chooser:
    """Picks, at each step up from the leaf, the issuer that is valid now, reaches a root, and lasts longest."""

    def __init__(self, issuers: _Issuers, now: dt.datetime) -> None:
        self.issuers = issuers
        self.now = now
        self.reached: set[int] = set()
        """Every issuer met on the way up: the certificates that certify the leaf through some path."""
        self._memo: dict[int, list[x509.Certificate]] = {}

    def above(self, cert: x509.Certificate, path: frozenset[int] = frozenset()) -> list[x509.Certificate]:
        """The best chain above ``cert``, nearest issuer first (empty for a self-signed certificate).

        Each certificate is worked out once (remembered), so a lattice of cross-signed copies costs one
        visit per certificate, not one per path.
        """
        if id(cert) in self._memo:
            return self._memo[id(cert)]
        best: list[x509.Certificate] = []
        if not is_self_signed(cert):
            path = path | {id(cert)}
            best_rank: tuple[bool, bool, dt.datetime] | None = None
            for parent in self.issuers.of(cert):
                self.reached.add(id(parent))
                if id(parent) in path:
                    continue  # certificates cross-signed by each other
                rest = self.above(parent, path)
                cut = next((i for i, c in enumerate(rest) if id(c) in path), len(rest))
                candidate = [parent, *rest[:cut]]
                rank = self.rank(candidate)
                if best_rank is None or rank > best_rank:
                    best, best_rank = candidate, rank
        self._memo[id(cert)] = best
        return best

    def rank(self, chain: list[x509.Certificate]) -> tuple[bool, bool, dt.datetime]:
        """Valid now, then ends at a self-signed root, then the latest NotAfter (of the nearest issuer)."""
        return valid_at(chain[0], self.now), is_self_signed(chain[-1]), chain[0].not_valid_after_utc


def valid_at(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _why_left_out(
    cert: x509.Certificate, leaf: x509.Certificate, chain: list[x509.Certificate], chooser: _Chooser,
) -> str:
    """Why a certificate that does certify the leaf (through some path) is not in the chosen chain."""
    issuers, now = chooser.issuers, chooser.now
    path = [leaf, *chain]
    child = next((c for c in path if any(p is cert for p in issuers.of(c))), None)
    if child is None:
        return "it certifies this leaf only through a certificate that was left out"
    position = path.index(child)
    if position == len(chain):
        return f"the chain already ends at {name_of(child)}"
    kept = chain[position]
    if not valid_at(cert, now):
        state = "expired on" if now > cert.not_valid_after_utc else "is not valid until"
        when = cert.not_valid_after_utc if now > cert.not_valid_after_utc else cert.not_valid_before_utc
        return f"another copy of this issuer, which {state} {when:%Y-%m-%d}; the chain uses one valid now"
    above = chooser.above(cert)
    if is_self_signed(chain[-1]) and not (is_self_signed(cert) or (above and is_self_signed(above[-1]))):
        return ("another copy of this issuer, whose path does not reach a root in the files; "
                "the chain uses one that does")
    if kept.not_valid_after_utc > cert.not_valid_after_utc:
        return (f"another copy of this issuer, valid until {cert.not_valid_after_utc:%Y-%m-%d}; the chain uses one "
                f"valid until {kept.not_valid_after_utc:%Y-%m-%d}")
    return "another copy of this issuer, equally good; the chain uses the one given first"


def _broken(leaf: x509.Certificate, chain: list[x509.Certificate], pool: list[x509.Certificate]) -> list[Finding]:
    """An error when the chain given does not certify the leaf: an issuer with another key, or none at all."""
    top = chain[-1] if chain else leaf
    if is_self_signed(top):
        return []
    used = {id(c) for c in chain}
    impostor = next((p for p in pool if id(p) not in used and p.subject == top.issuer), None)
    if impostor is not None:
        return [error(
            "chain-broken",
            f"{name_of(impostor)} has the right name to have issued {name_of(top)}, but its key did not sign it",
            "the chain belongs to another issuance (an old or cross-signed intermediate): "
            "download the chain that came with this certificate",
            name_of(top),
        )]
    if chain or not pool:
        return []
    issuer = escaped(leaf.issuer.rfc4514_string())
    given = ", ".join(name_of(c) for c in pool[:3]) + (f" and {len(pool) - 3} more" if len(pool) > 3 else "")
    roots = [c for c in pool if is_self_signed(c)]
    root = f"; it holds the root {name_of(roots[0])}, but not the intermediate that signed the leaf" if roots else ""
    return [error(
        "chain-missing-issuer",
        f"no certificate given issued this leaf: its issuer {issuer} is missing from the chain ({given}){root}",
        f"add the certificate of {issuer} (from the CA's download page, or the CA Issuers URL in the leaf) "
        "at the start of the chain",
        name_of(leaf),
    )]


def _authority_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except (x509.ExtensionNotFound, ValueError):
        return None


def _subject_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, ValueError):
        return None
