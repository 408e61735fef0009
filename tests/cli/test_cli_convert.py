"""`certfleet convert`: any input -> cert.pem, chain.pem, private.key (0400), and loading them back is lossless."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from material_support import (
    DER,
    PEM,
    cli,
    ec_key,
    ec_pki,
    key_der,
    key_pem,
    leaf,
    pem,
    rsa_key,
    rsa_pki,
    seed_leaf,
    write,
)

from certfleet.material import load_file, load_material, normalize
from certfleet.material.bundle import fingerprint, spki_sha256

KEY = rsa_key(2048, 0)


def _files(kind: str, folder: Path, password: bytes | None) -> list[str]:
    """The seed's material as a CA or a colleague might hand it over."""
    pki = rsa_pki()
    leaf_cert, inter, root = seed_leaf().certificate, pki.intermediate.certificate, pki.root.certificate
    if kind == "pem-files":
        return [write(folder / "cert.crt", pem(leaf_cert)), write(folder / "chain.crt", pem(root, inter)),
                write(folder / "key.pem", key_pem(KEY, "traditional", password), 0o400)]
    if kind == "one-bundle":
        return [write(folder / "all.pem", key_pem(KEY, "pkcs8", password) + pem(inter, leaf_cert, root), 0o400)]
    if kind == "der-and-p7b":
        return [write(folder / "cert.cer", leaf_cert.public_bytes(DER)),
                write(folder / "chain.p7b", pkcs7.serialize_certificates([inter, root], DER)),
                write(folder / "key.der", key_der(KEY, "pkcs8", password), 0o400)]
    if kind == "p7b-pem-and-key":
        return [write(folder / "all.p7b", pkcs7.serialize_certificates([root, leaf_cert, inter], PEM)),
                write(folder / "key.pem", key_pem(KEY, "pkcs8", password), 0o400)]
    if kind == "pkcs12":
        enc: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption())
        data = pkcs12.serialize_key_and_certificates(b"www", KEY, leaf_cert, [root, inter], enc)
        return [write(folder / "bundle.pfx", data, 0o400)]
    raise AssertionError(kind)


KINDS = ["pem-files", "one-bundle", "der-and-p7b", "p7b-pem-and-key", "pkcs12"]


def _convert(capsys: pytest.CaptureFixture[str], files: list[str], out: Path, *extra: str) -> int:
    run = cli(capsys, "convert", *files, "--out", str(out), *extra, keys=[KEY])
    assert run.code == 0, run.text
    return run.code


def _assert_round_trip(out: Path) -> None:
    pki = rsa_pki()
    assert stat.S_IMODE((out / "private.key").stat().st_mode) == 0o400
    material = load_material(out / "cert.pem", out / "chain.pem", out / "private.key")
    assert fingerprint(material.leaf) == fingerprint(seed_leaf().certificate)
    assert [fingerprint(c) for c in material.chain] == [fingerprint(pki.intermediate.certificate),
                                                        fingerprint(pki.root.certificate)]
    assert material.key is not None
    assert spki_sha256(material.key.public_key()) == spki_sha256(KEY.public_key())
    assert material.changes == [] and material.findings == []
    assert (out / "cert.pem").read_bytes() == pem(seed_leaf())
    assert (out / "chain.pem").read_bytes() == pem(pki.intermediate, pki.root)
    assert (out / "private.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert normalize(material).private_key == key_pem(KEY).decode()


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=st.tuples(st.sampled_from(KINDS), st.sampled_from([None, b"pw", "pässwörd".encode()]),
                     st.sampled_from(["env", "file"]), st.sampled_from([0o000, 0o022, 0o077])))
def test_loading_what_convert_wrote_gives_the_same_material(
    case: tuple[str, bytes | None, str, int], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from material_support import umask

    kind, password, via, mask = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = _files(kind, folder, password)
        extra: list[str] = []
        if password is not None and via == "env":
            monkeypatch.setenv("CONVERT_PASS", password.decode())
            extra = ["--password-env", "CONVERT_PASS"]
        elif password is not None:
            extra = ["--password-file", write(folder / "pass", password + b"\n", 0o400)]
        with umask(mask):
            _convert(capsys, files, folder / "out", *extra)
        _assert_round_trip(folder / "out")


def test_convert_reports_what_it_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _files("pem-files", tmp_path, None)
    run = cli(capsys, "convert", *files, "--out", str(tmp_path / "out"), keys=[KEY])
    assert run.code == 0
    assert f"wrote {tmp_path / 'out' / 'private.key'} (mode 0400" in run.out
    assert "changed: reordered the chain leaf → root" in run.out


def test_convert_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _files("one-bundle", tmp_path, None)
    out = tmp_path / "out"
    _convert(capsys, files, out)
    run = cli(capsys, "convert", *files, "--out", str(out), keys=[KEY])
    assert run.code == 1
    assert "[file-exists]" in run.err
    _convert(capsys, files, out, "--force")
    _assert_round_trip(out)
    assert sorted(p.name for p in out.iterdir()) == ["cert.pem", "chain.pem", "private.key"]


def test_convert_without_chain_writes_no_empty_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert = write(tmp_path / "cert.pem", pem(seed_leaf()))
    key = write(tmp_path / "k.pem", key_pem(KEY), 0o400)
    out = tmp_path / "out"
    run = cli(capsys, "convert", cert, key, "--out", str(out), keys=[KEY])
    assert run.code == 0
    assert "chain.pem was not written" in run.out
    assert sorted(p.name for p in out.iterdir()) == ["cert.pem", "private.key"]
    material = load_material(out / "cert.pem", out / "private.key")
    assert fingerprint(material.leaf) == fingerprint(seed_leaf().certificate)


def test_convert_certificates_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p7 = write(tmp_path / "c.p7b", pkcs7.serialize_certificates(
        [rsa_pki().root.certificate, seed_leaf().certificate, rsa_pki().intermediate.certificate], DER))
    out = tmp_path / "out"
    assert cli(capsys, "convert", p7, "--out", str(out)).code == 0
    assert sorted(p.name for p in out.iterdir()) == ["cert.pem", "chain.pem"]
    assert (out / "chain.pem").read_bytes() == pem(rsa_pki().intermediate, rsa_pki().root)


def test_convert_refuses_a_key_that_does_not_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert = write(tmp_path / "cert.pem", pem(seed_leaf()))
    key = write(tmp_path / "k.pem", key_pem(rsa_key(2048, 7)), 0o400)
    out = tmp_path / "out"
    run = cli(capsys, "convert", cert, key, "--out", str(out), keys=[rsa_key(2048, 7)])
    assert run.code == 1
    assert "[key-mismatch]" in run.err
    assert not (out / "private.key").exists()


def test_convert_needs_the_password_of_an_encrypted_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _files("pem-files", tmp_path, b"pw")
    run = cli(capsys, "convert", *files, "--out", str(tmp_path / "out"), keys=[KEY])
    assert run.code == 1
    assert "[key-encrypted]" in run.err
    assert not (tmp_path / "out" / "private.key").exists()


def test_convert_ec_material(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = ec_key("p256", 0)
    issued = leaf(pki=ec_pki(), key=key)
    bundle = write(tmp_path / "b.pem", key_pem(key, "traditional") + pem(issued, ec_pki().intermediate), 0o400)
    out = tmp_path / "out"
    run = cli(capsys, "convert", bundle, "--out", str(out), keys=[key])
    assert run.code == 0
    item = load_file(out / "private.key").keys[0]
    assert item.container == "PKCS#8" and item.key is not None
    assert spki_sha256(item.key.public_key()) == spki_sha256(key.public_key())
    assert "[chain-incomplete]" in run.out  # findings are shown, but conversion still happens


def test_convert_output_holds_no_key_even_in_a_bundle_with_text(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    body = b"Here is your key and certificate:\n" + key_pem(KEY) + pem(seed_leaf()) + b"Regards\n"
    bundle = write(tmp_path / "mail.txt", body, 0o400)
    out = tmp_path / "out"
    run = cli(capsys, "convert", bundle, "--out", str(out), keys=[KEY])  # cli() checks the screen for key bytes
    assert run.code == 0
    assert os.listdir(out)
