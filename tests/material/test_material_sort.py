"""Sorting out leaf, chain and key, whatever order and files they come in; normalizing is idempotent."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from material_support import NOW, cli, key_pem, leaf, other_pki, pem, rsa_key, rsa_pki, seed_leaf, write

from certfleet.certificate_bundle import CertificateBundle
from certfleet.material import assemble, check_material, load_bytes, load_material, normalize
from certfleet.material.bundle import fingerprint, spki_sha256
from certfleet.material.demo import Issued, issue

KEY = rsa_key(2048, 0)
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def long_chain() -> list[Issued]:
    """leaf → three intermediates → root: [leaf, int3, int2, int1, root]."""
    root = issue("chain Root CA", key=rsa_key(2048, 300), ca=True, days=3650)
    chain = [root]
    for depth in (1, 2, 3):
        chain.append(issue(f"chain Intermediate {depth}", issuer=chain[-1], key=rsa_key(2048, 300 + depth),
                           ca=True, days=1825))
    end = issue("www.example.com", issuer=chain[-1], key=rsa_key(2048, 0), names=("www.example.com",))
    return [end, *reversed(chain)]


def _fps(certs: list[x509.Certificate]) -> list[str]:
    return [fingerprint(c) for c in certs]


def test_leaf_picked_and_chain_ordered_leaf_to_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki = rsa_pki()
    path = write(tmp_path / "jumbled.pem", pem(pki.root, seed_leaf(), pki.intermediate))
    material = load_material(path)
    assert fingerprint(material.leaf) == fingerprint(seed_leaf().certificate)
    assert material.chain == [pki.intermediate.certificate, pki.root.certificate]
    assert any("moved the leaf" in c for c in material.changes)
    assert "reordered the chain leaf → root" in material.changes
    run = cli(capsys, "verify", "--certificate", path)
    assert run.code == 0, run.text
    assert "changed: moved the leaf CN=www.example.com,O=certfleet demo to the front" in run.out
    assert "changed: reordered the chain leaf → root" in run.out


def test_chain_file_given_root_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki = rsa_pki()
    cert = write(tmp_path / "cert.pem", pem(seed_leaf()))
    chain = write(tmp_path / "chain.pem", pem(pki.root, pki.intermediate))
    material = load_material(cert, chain)
    assert material.chain == [pki.intermediate.certificate, pki.root.certificate]
    assert material.changes == ["reordered the chain leaf → root"]
    run = cli(capsys, "verify", "--certificate", cert, "--chain", chain, "--json")
    assert run.code == 0
    assert run.json()["changes"] == ["reordered the chain leaf → root"]
    assert [c["subject"] for c in run.json()["chain"]] == [
        "CN=test Intermediate CA,O=certfleet demo", "CN=test Root CA,O=certfleet demo"]


def test_ordered_input_reports_no_change(tmp_path: Path) -> None:
    pki = rsa_pki()
    material = load_material(write(tmp_path / "ok.pem", pem(seed_leaf(), pki.intermediate, pki.root)))
    assert material.changes == []


def test_leaf_repeated_in_chain_is_dropped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki = rsa_pki()
    cert = write(tmp_path / "cert.pem", pem(seed_leaf()))
    chain = write(tmp_path / "chain.pem", pem(seed_leaf(), pki.intermediate, pki.root))
    material = load_material(cert, chain)
    assert material.chain == [pki.intermediate.certificate, pki.root.certificate]
    assert seed_leaf().certificate not in material.chain
    assert material.changes == ["dropped a repeated copy of CN=www.example.com,O=certfleet demo"]
    run = cli(capsys, "verify", "--certificate", cert, "--chain", chain)
    assert run.code == 0
    assert "changed: dropped a repeated copy of CN=www.example.com" in run.out
    assert normalize(material).chain == pem(pki.intermediate, pki.root).decode()


def test_key_picks_the_leaf_among_several_end_entities(tmp_path: Path) -> None:
    other = leaf(("other.example.com",), key=rsa_key(2048, 2))
    data = pem(other) + pem(seed_leaf()) + pem(rsa_pki().intermediate) + key_pem(KEY)
    material = assemble([load_bytes(data)])
    assert fingerprint(material.leaf) == fingerprint(seed_leaf().certificate)
    assert material.key is not None


def test_key_matching_the_leaf_is_chosen_among_several_keys() -> None:
    data = key_pem(rsa_key(2048, 5)) + pem(seed_leaf(), rsa_pki().intermediate) + key_pem(KEY)
    material = assemble([load_bytes(data)])
    assert material.key is not None
    assert spki_sha256(material.key.public_key()) == spki_sha256(KEY.public_key())
    assert "used the key that matches the leaf, out of 2 keys" in material.changes


def test_certificates_of_another_chain_are_left_out(tmp_path: Path) -> None:
    data = pem(seed_leaf(), other_pki().intermediate, rsa_pki().intermediate, rsa_pki().root)
    material = assemble([load_bytes(data)])
    assert material.chain == [rsa_pki().intermediate.certificate, rsa_pki().root.certificate]
    assert material.unrelated == [other_pki().intermediate.certificate]
    assert [f.code for f in material.findings] == ["unrelated-certificate"]


# ---------------------------------------------------------------- properties

@PROPERTY
@given(data=st.data())
def test_any_permutation_across_files_is_ordered_back(data: st.DataObject) -> None:
    certs = [c.certificate for c in long_chain()]
    order = data.draw(st.permutations(certs), label="order")
    files = data.draw(st.integers(min_value=1, max_value=4), label="files")
    owner = data.draw(st.lists(st.integers(0, files - 1), min_size=len(order), max_size=len(order)), label="file")
    repeat_leaf = data.draw(st.booleans(), label="leaf repeated in a chain file")
    with_key = data.draw(st.booleans(), label="key in a file")
    blobs = [b"" for _ in range(files)]
    for cert, index in zip(order, owner, strict=True):
        blobs[index] += pem(cert)
    if repeat_leaf:
        blobs[-1] += pem(certs[0])
    if with_key:
        blobs[0] = key_pem(KEY) + blobs[0]
    loaded = [load_bytes(blob, f"file{i}") for i, blob in enumerate(blobs) if blob]
    material = assemble(loaded)
    assert fingerprint(material.leaf) == fingerprint(certs[0])
    assert _fps(material.chain) == _fps(certs[1:])
    assert material.unrelated == []
    assert material.findings == []
    if repeat_leaf:
        assert any(c.startswith("dropped a repeated copy") for c in material.changes)
    flat = [c for blob in loaded for c in blob.certificates]
    if _fps(flat[: len(certs)]) != _fps(certs):
        assert material.changes, "a reordering must be reported"


_NOISE = st.sampled_from(["none", "crlf", "bom", "blank-lines", "text-around", "trailing-spaces"])


def _noisy(text: str, noise: str) -> bytes:
    if noise == "crlf":
        return text.replace("\n", "\r\n").encode()
    if noise == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    if noise == "blank-lines":
        return text.replace("-----\n", "-----\n\n").encode()
    if noise == "text-around":
        return ("Your certificate is below.\n" + text + "\n-- \nThe CA\n").encode()
    if noise == "trailing-spaces":
        return text.replace("\n", "  \n").encode()
    return text.encode()


@PROPERTY
@given(data=st.data())
def test_normalize_of_loaded_normal_form_is_the_normal_form(data: st.DataObject) -> None:
    certs = [c.certificate for c in long_chain()]
    depth = data.draw(st.integers(0, len(certs) - 1), label="chain length")
    given_certs = data.draw(st.permutations(certs[: depth + 1]), label="order")
    with_key = data.draw(st.booleans(), label="with key")
    first = normalize(assemble([load_bytes(b"".join(pem(c) for c in given_certs)
                                           + (key_pem(KEY, "traditional") if with_key else b""))]))
    text = first.certificate + first.chain + (first.private_key or "")
    second = normalize(assemble([load_bytes(_noisy(text, data.draw(_NOISE, label="noise")))]))
    assert second == first
    assert first.certificate == pem(certs[0]).decode()
    assert first.chain == "".join(pem(c).decode() for c in certs[1 : depth + 1])
    assert (first.private_key is not None) is with_key
    if first.private_key is not None:
        assert first.private_key.startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS#8, as ACM takes it
    assert "<redacted>" in repr(first) if with_key else "key=None" in repr(first)


# ---------------------------------------------------------------- cross-signed issuers: the chain that works wins

def _cross(subject: Issued, issuer: Issued, **kwargs: Any) -> Issued:
    """Another certificate for ``subject``'s name and key, signed by ``issuer`` (what CAs call a cross-sign)."""
    name = subject.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return issue(str(name), issuer=issuer, key=subject.key, ca=True, **kwargs)


def _old_root() -> Issued:
    return issue("legacy Root CA", key=rsa_key(2048, 320), ca=True, days=3650)


def test_expired_cross_signed_intermediate_listed_first_is_left_out(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    pki = rsa_pki()
    expired = _cross(pki.intermediate, _old_root(), not_before=NOW - dt.timedelta(days=400),
                     not_after=NOW - dt.timedelta(days=1))
    path = write(tmp_path / "bundle.pem", pem(seed_leaf(), expired, pki.intermediate, pki.root))
    material = load_material(path)
    assert material.chain == [pki.intermediate.certificate, pki.root.certificate]
    assert material.unrelated == []
    (note,) = [c for c in material.changes if c.startswith("left out")]
    assert "CN=test Intermediate CA" in note and "expired on" in note and "does not certify" not in note
    assert [f.code for f in check_material(material)] == []
    bundle = CertificateBundle.from_files(path)
    assert bundle.chain_pem == pem(pki.intermediate, pki.root).decode()
    run = cli(capsys, "convert", path, "--out", str(tmp_path / "out"))
    assert run.code == 0, run.text
    assert (tmp_path / "out" / "chain.pem").read_bytes() == pem(pki.intermediate, pki.root)


def test_cross_signed_root_listed_before_the_self_signed_one(tmp_path: Path) -> None:
    pki = rsa_pki()
    cross_root = _cross(pki.root, _old_root(), days=365)
    material = load_material(write(tmp_path / "b.pem", pem(seed_leaf(), pki.intermediate, cross_root, pki.root)))
    assert material.chain == [pki.intermediate.certificate, pki.root.certificate]
    assert [f.code for f in check_material(material)] == []  # no chain-incomplete
    (note,) = [c for c in material.changes if c.startswith("left out")]
    assert "issued by CN=legacy Root CA" in note and "does not reach a root" in note


def test_valid_cross_sign_listed_first_gives_no_false_incomplete_chain(tmp_path: Path) -> None:
    pki = rsa_pki()
    cross = _cross(pki.intermediate, _old_root(), days=365)  # its issuer is not in the files
    material = load_material(write(tmp_path / "b.pem", pem(seed_leaf(), cross, pki.intermediate, pki.root)))
    assert material.chain == [pki.intermediate.certificate, pki.root.certificate]
    assert "chain-incomplete" not in [f.code for f in check_material(material)]


def test_complete_cross_signed_path_is_kept_when_it_is_the_only_one(tmp_path: Path) -> None:
    pki, old = rsa_pki(), _old_root()
    cross = _cross(pki.intermediate, old, days=365)
    material = load_material(write(tmp_path / "b.pem", pem(seed_leaf(), old, cross)))
    assert material.chain == [cross.certificate, old.certificate]
    assert material.changes == ["reordered the chain leaf → root"]


def test_of_two_valid_copies_the_one_valid_longer_is_chosen(tmp_path: Path) -> None:
    pki = rsa_pki()
    short = _cross(pki.intermediate, pki.root, days=30)
    long = _cross(pki.intermediate, pki.root, days=900)
    material = load_material(write(tmp_path / "b.pem", pem(seed_leaf(), short, long, pki.root)))
    assert material.chain == [long.certificate, pki.root.certificate]
    (note,) = [c for c in material.changes if c.startswith("left out")]
    assert "valid until" in note


def test_certificates_cross_signed_by_each_other_end(tmp_path: Path) -> None:
    a_root = issue("A Root CA", key=rsa_key(2048, 330), ca=True, days=3650)
    b_root = issue("B Root CA", key=rsa_key(2048, 331), ca=True, days=3650)
    a_by_b, b_by_a = _cross(a_root, b_root), _cross(b_root, a_root)
    end = issue("www.example.com", issuer=a_by_b, key=KEY, names=("www.example.com",))
    material = load_material(write(tmp_path / "b.pem", pem(end, a_by_b, b_by_a)))
    assert material.chain == [a_by_b.certificate, b_by_a.certificate]
