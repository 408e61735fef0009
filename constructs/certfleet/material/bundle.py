"""Sort loaded objects into leaf, chain (leaf → root) and key, and say what had to change."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from certfleet.material.findings import Finding, MaterialError, error, warning
from certfleet.material.loader import KeyItem, LoadedFile


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, as colon-free lowercase hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def spki_sha256(public_key: PublicKeyTypes) -> str:
    """SHA-256 of the SubjectPublicKeyInfo: proves a key pair without ever touching the private half."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def name_of(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


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


def is_self_signed(cert: x509.Certificate) -> bool:
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


def assemble(files: list[LoadedFile]) -> Material:
    """Build ``Material`` from everything in ``files``: find the leaf, link the chain, pick the key."""
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
    if not certs:
        raise MaterialError(error(
            "no-certificate", "no certificate was found, only a private key",
            "name the certificate file with --certificate", files[0].path if files else "",
        ))
    key_item = _pick_key(keys, certs)
    leaf = _pick_leaf(certs, key_item)
    chain, broken = _link(leaf, [c for c in certs if c is not leaf])
    unrelated = [c for c in certs if c is not leaf and c not in chain]
    if certs[0] is not leaf:
        changes.append(f"moved the leaf {name_of(leaf)} to the front")
    given = [c for c in certs if c is not leaf and c in chain]
    if given != chain:
        changes.append("reordered the chain leaf → root")
    for cert in unrelated:
        changes.append(f"left out {name_of(cert)}: it does not certify this leaf")
        findings.append(warning(
            "unrelated-certificate", f"{name_of(cert)} is not part of this leaf's chain and was left out",
            "remove it from the bundle, or check that you were given the right chain", name_of(cert),
        ))
    findings.extend(broken)
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


def _pick_leaf(certs: list[x509.Certificate], key_item: KeyItem | None) -> x509.Certificate:
    if key_item is not None and key_item.key is not None:
        want = spki_sha256(key_item.key.public_key())
        for cert in certs:
            if spki_sha256(cert.public_key()) == want:
                return cert
    issuers = {id(p) for p in certs for c in certs if c is not p and issued_by(c, p)}
    candidates = [c for c in certs if id(c) not in issuers]
    end_entities = [c for c in candidates if not is_ca(c)] or candidates or certs
    return end_entities[0]


def _link(
    leaf: x509.Certificate, pool: list[x509.Certificate],
) -> tuple[list[x509.Certificate], list[Finding]]:
    chain: list[x509.Certificate] = []
    findings: list[Finding] = []
    current = leaf
    while not is_self_signed(current):
        parent = next((p for p in pool if p not in chain and issued_by(current, p)), None)
        if parent is None:
            impostor = next((p for p in pool if p not in chain and p.subject == current.issuer), None)
            if impostor is not None:
                findings.append(error(
                    "chain-broken",
                    f"{name_of(impostor)} has the right name to have issued {name_of(current)}, "
                    "but its key did not sign it",
                    "the chain belongs to another issuance (an old or cross-signed intermediate): "
                    "download the chain that came with this certificate",
                    name_of(current),
                ))
            break
        chain.append(parent)
        current = parent
    return chain, findings
