"""Every way a certificate or key reaches us: each load case through the library and `certfleet inspect`."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from material_support import (
    DER,
    PEM,
    cli,
    der_children,
    der_element,
    der_value,
    ec_key,
    key_der,
    key_pem,
    leaf,
    pem,
    rsa_key,
    rsa_pki,
    seed_leaf,
    subjects,
    write,
)

from certfleet.material import MaterialError, load_bytes, load_file, load_material
from certfleet.material.bundle import fingerprint, spki_sha256
from certfleet.material.demo import issue
from certfleet.material.loader import MAX_CERTIFICATES, DamagedBlockError, password_from_file, read_regular_file

KEY = rsa_key(2048, 0)


def _inspect(capsys: pytest.CaptureFixture[str], path: str, *extra: str) -> Any:
    run = cli(capsys, "inspect", path, "--json", *extra, keys=[KEY])
    assert run.code == 0, run.text
    (report,) = run.json()
    assert "error" not in report
    return report


def _same_leaf(cert: x509.Certificate) -> None:
    assert fingerprint(cert) == fingerprint(seed_leaf().certificate)


# ---------------------------------------------------------------- PEM in all its real-world shapes

def _pem_variant(kind: str) -> bytes:
    base = pem(seed_leaf())
    if kind == "crlf":
        return base.replace(b"\n", b"\r\n")
    if kind == "bom":
        return b"\xef\xbb\xbf" + base
    if kind == "blank-lines":
        lines = base.split(b"\n")
        return b"\n\n" + b"\n\n".join(lines) + b"\n\n\n"
    if kind == "trailing-spaces":
        return b"\n".join(line + b"   \t" for line in base.split(b"\n"))
    if kind == "text-around":
        return (b"subject=CN = www.example.com\nissuer=CN = test Intermediate CA\nBag Attributes: none\n"
                + base + b"\nThis certificate was issued by our CA. Thank you.\n")
    if kind == "indented":
        return b"".join(b"    " + line + b"\n" for line in base.split(b"\n"))
    if kind == "utf16":
        return base.decode().encode("utf-16")
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["crlf", "bom", "blank-lines", "trailing-spaces", "text-around", "indented",
                                  "utf16"])
def test_pem_variants_load(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "cert.pem", _pem_variant(kind))
    loaded = load_file(path)
    assert loaded.format == "PEM"
    (cert,) = loaded.certificates
    _same_leaf(cert)
    if kind == "text-around":
        assert "ignored text outside the PEM blocks" in loaded.notes
    report = _inspect(capsys, path)
    assert [c["sha256"] for c in report["certificates"]] == [fingerprint(seed_leaf().certificate)]
    assert report["certificates"][0]["names"] == ["www.example.com", "example.com"]


def _relabel(data: bytes, label: bytes) -> bytes:
    return data.replace(b"BEGIN CERTIFICATE", b"BEGIN " + label).replace(b"END CERTIFICATE", b"END " + label)


def test_old_x509_certificate_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "old.pem", _relabel(pem(seed_leaf(), rsa_pki().intermediate), b"X509 CERTIFICATE"))
    loaded = load_file(path)
    assert len(loaded.certificates) == 2
    _same_leaf(loaded.certificates[0])
    assert any("X509 CERTIFICATE" in n for n in loaded.notes)
    assert len(_inspect(capsys, path)["certificates"]) == 2


def test_trusted_certificate_with_openssl_aux_block(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # OpenSSL's TRUSTED CERTIFICATE: the DER certificate followed by an X509_CERT_AUX (here: trust serverAuth)
    import base64

    der = seed_leaf().certificate.public_bytes(DER) + bytes.fromhex("300c300a06082b06010505070301")
    body = base64.encodebytes(der).decode()
    data = f"-----BEGIN TRUSTED CERTIFICATE-----\n{body}-----END TRUSTED CERTIFICATE-----\n".encode()
    path = write(tmp_path / "trusted.pem", data)
    (cert,) = load_file(path).certificates
    _same_leaf(cert)
    _inspect(capsys, path)


def test_der_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "cert.cer", seed_leaf().certificate.public_bytes(DER))
    loaded = load_file(path)
    assert loaded.format == "DER"
    _same_leaf(loaded.certificates[0])
    assert _inspect(capsys, path)["format"] == "DER"


# ---------------------------------------------------------------- PKCS#7

@pytest.mark.parametrize("encoding", [PEM, DER], ids=["pem", "der"])
def test_pkcs7_bundle(encoding: serialization.Encoding, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    certs = [seed_leaf().certificate, rsa_pki().intermediate.certificate, rsa_pki().root.certificate]
    path = write(tmp_path / "bundle.p7b", pkcs7.serialize_certificates(certs, encoding))
    loaded = load_file(path)
    assert loaded.format == ("PKCS#7 (PEM)" if encoding is PEM else "PKCS#7 (DER)")
    assert {fingerprint(c) for c in loaded.certificates} == {fingerprint(c) for c in certs}
    material = load_material(path)
    assert fingerprint(material.leaf) == fingerprint(certs[0])
    assert material.chain == certs[1:]
    assert len(_inspect(capsys, path)["certificates"]) == 3


def _openssl_p7b(*certs: x509.Certificate) -> bytes:
    """A .p7b as `openssl crl2pkcs7 -nocrl` writes it: the certificates in file order, not in DER SET order."""
    data_oid = der_element(0x06, bytes.fromhex("2a864886f70d010701"))
    signed = der_element(0x30, der_element(0x02, b"\x01") + der_element(0x31, b"") + der_element(0x30, data_oid)
                         + der_element(0xA0, b"".join(c.public_bytes(DER) for c in certs)) + der_element(0x31, b""))
    return der_element(0x30, der_element(0x06, bytes.fromhex("2a864886f70d010702")) + der_element(0xA0, signed))


def _out_of_set_order() -> list[x509.Certificate]:
    certs = [seed_leaf().certificate, rsa_pki().intermediate.certificate]
    return sorted(certs, key=lambda c: c.public_bytes(DER), reverse=True)  # DER wants them ascending


def _p7b_file(tmp_path: Path, encoding: serialization.Encoding) -> str:
    der = _openssl_p7b(*_out_of_set_order())
    if encoding is DER:
        return write(tmp_path / "openssl.p7b", der)
    body = base64.b64encode(der)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return write(tmp_path / "openssl.p7b", b"\n".join([b"-----BEGIN PKCS7-----", *lines, b"-----END PKCS7-----", b""]))


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("encoding", [PEM, DER], ids=["pem", "der"])
def test_openssl_p7b_out_of_set_order_is_a_note_not_a_warning(
    encoding: serialization.Encoding, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 18 A.7: cryptography's BER-fallback UserWarning (a source line on stderr) becomes a note."""
    path = _p7b_file(tmp_path, encoding)
    loaded = load_file(path)
    assert [fingerprint(c) for c in loaded.certificates] == [fingerprint(c) for c in _out_of_set_order()]
    assert any("BER" in note for note in loaded.notes)
    run = cli(capsys, "inspect", path)
    assert run.code == 0, run.text
    assert "Warning" not in run.err and "note: the PKCS#7 data is BER, not strict DER" in run.out


@pytest.mark.parametrize("encoding", [PEM, DER], ids=["pem", "der"])
def test_openssl_p7b_still_loads_when_cryptography_refuses_ber(
    encoding: serialization.Encoding, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A future cryptography may raise instead of warning: the certificates are then read by the loader itself."""
    real = pkcs7.load_der_pkcs7_certificates

    def strict(data: bytes) -> list[x509.Certificate]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                return real(data)
            except UserWarning as exc:
                raise ValueError(str(exc)) from None

    monkeypatch.setattr(pkcs7, "load_der_pkcs7_certificates", strict)
    path = _p7b_file(tmp_path, encoding)
    with pytest.raises(ValueError, match="BER"):
        strict(_openssl_p7b(*_out_of_set_order()))
    loaded = load_file(path)
    assert [fingerprint(c) for c in loaded.certificates] == [fingerprint(c) for c in _out_of_set_order()]
    assert any("BER" in note for note in loaded.notes)


def test_pkcs7_store_of_many_ca_roots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roots = [
        issue(f"Public Root CA {i:02d}", key=ec_key("p256", 200 + i) if i % 2 else rsa_key(2048, 100 + i % 4),
              ca=True, days=7300).certificate
        for i in range(20)
    ]
    for encoding, name in ((DER, "roots.p7b"), (PEM, "roots.p7c")):
        path = write(tmp_path / name, pkcs7.serialize_certificates(roots, encoding))
        loaded = load_file(path)
        assert len(loaded.certificates) == 20
        run = cli(capsys, "inspect", path, "--json")
        assert run.code == 0, run.text
        certs = run.json()[0]["certificates"]
        assert sorted(c["subject"] for c in certs) == sorted(subjects(roots))
        assert all(c["ca"] and c["self_signed"] for c in certs)
        text = cli(capsys, "inspect", path)
        assert text.code == 0
        assert "20 certificate(s)" in text.out
        assert text.out.count("(CA, self-signed)") == 20


# ---------------------------------------------------------------- PKCS#12

def _p12(password: bytes | None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(
        b"www.example.com", KEY, seed_leaf().certificate,
        [rsa_pki().intermediate.certificate, rsa_pki().root.certificate], enc,
    )


def _check_p12_material(path: str, password: bytes | None) -> None:
    material = load_material(path, password=password)
    _same_leaf(material.leaf)
    assert material.chain == [rsa_pki().intermediate.certificate, rsa_pki().root.certificate]
    assert material.key is not None
    assert spki_sha256(material.key.public_key()) == spki_sha256(KEY.public_key())


def test_pkcs12_without_password(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "bundle.pfx", _p12(None))
    _check_p12_material(path, None)
    report = _inspect(capsys, path)
    assert report["format"] == "PKCS#12"
    assert len(report["certificates"]) == 3
    assert report["keys"][0]["matches"] == ["CN=www.example.com,O=certfleet demo"]
    run = cli(capsys, "verify", "--certificate", path, "--json", keys=[KEY])
    assert run.code == 0, run.text


def test_pkcs12_password_from_env(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "bundle.p12", _p12(b"s3cret pass"))
    _check_p12_material(path, b"s3cret pass")
    monkeypatch.setenv("CERT_PASS", "s3cret pass")
    report = _inspect(capsys, path, "--password-env", "CERT_PASS")
    assert report["keys"][0]["encrypted"] is True
    run = cli(capsys, "verify", "--certificate", path, "--password-env", "CERT_PASS", "--json", keys=[KEY])
    assert run.code == 0, run.text
    assert "s3cret" not in run.text


def test_pkcs12_password_from_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "bundle.p12", _p12(b"from-a-file"))
    secret = write(tmp_path / "pass.txt", b"from-a-file\r\n", 0o400)
    report = _inspect(capsys, path, "--password-file", secret)
    assert len(report["keys"]) == 1
    run = cli(capsys, "verify", "--certificate", path, "--password-file", secret, keys=[KEY])
    assert run.code == 0, run.text
    assert "from-a-file" not in run.text


def test_pkcs12_wrong_password(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "bundle.p12", _p12(b"right"))
    with pytest.raises(MaterialError) as info:
        load_file(path, b"wrong")
    assert info.value.finding.code == "password-wrong"
    monkeypatch.setenv("CERT_PASS", "wrong")
    run = cli(capsys, "inspect", path, "--password-env", "CERT_PASS", "--json")
    assert run.code == 1
    assert run.codes() == ["password-wrong"]
    run = cli(capsys, "verify", "--certificate", path, "--password-env", "CERT_PASS")
    assert run.code == 1
    assert "[password-wrong]" in run.err


def test_pkcs12_missing_password(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "bundle.p12", _p12(b"right"))
    with pytest.raises(MaterialError) as info:
        load_file(path)
    assert info.value.finding.code == "password-required"
    run = cli(capsys, "inspect", path)
    assert run.code == 1
    assert "protected by a password" in run.err
    run = cli(capsys, "verify", "--certificate", path, "--json")
    assert run.code == 1
    assert "[password-required]" in run.err


def test_password_is_never_taken_from_argv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "bundle.p12", _p12(b"right"))
    run = cli(capsys, "inspect", path, "--password", "right")
    assert run.code == 2
    run = cli(capsys, "verify", "--certificate", path, "--passin", "pass:right")
    assert run.code == 2


@contextlib.contextmanager
def _hard_timeout(seconds: int) -> Iterator[None]:
    """Fail (not hang) when the block blocks: SIGALRM interrupts a blocking open() in the main thread."""
    def expire(signum: int, frame: object) -> None:
        pytest.fail(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_password_env_unset_and_password_file_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "bundle.p12", _p12(b"right"))
    monkeypatch.delenv("CERTFLEET_NO_SUCH_VAR", raising=False)
    run = cli(capsys, "inspect", path, "--password-env", "CERTFLEET_NO_SUCH_VAR")
    assert run.code == 1
    assert "[password-env-unset]" in run.err
    missing = str(tmp_path / "nope.txt")
    run = cli(capsys, "verify", "--certificate", path, "--password-file", missing)
    assert run.code == 1
    assert "password file" in run.err and missing in run.err
    with pytest.raises(MaterialError) as info:
        password_from_file(missing)
    assert info.value.finding.code == "password-file-unreadable"
    os.mkfifo(tmp_path / "fifo")
    with _hard_timeout(5), pytest.raises(MaterialError, match="named pipe") as info:
        password_from_file(tmp_path / "fifo")  # never blocks on a FIFO nobody writes
    assert info.value.finding.code == "password-file-unreadable"


# ---------------------------------------------------------------- mixed bundles

def test_leaf_and_chain_in_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "fullchain.pem", pem(seed_leaf(), rsa_pki().intermediate, rsa_pki().root))
    material = load_material(path)
    _same_leaf(material.leaf)
    assert material.chain == [rsa_pki().intermediate.certificate, rsa_pki().root.certificate]
    run = cli(capsys, "verify", "--certificate", path, "--json")
    assert run.code == 0, run.text
    assert "chain-incomplete" not in run.codes()
    assert len(run.json()["chain"]) == 2


def test_certificate_and_key_in_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "combined.pem", key_pem(KEY) + pem(seed_leaf(), rsa_pki().intermediate), 0o400)
    loaded = load_file(path)
    assert len(loaded.certificates) == 2
    assert len(loaded.keys) == 1
    material = load_material(path)
    _same_leaf(material.leaf)
    assert material.key is not None
    run = cli(capsys, "verify", "--certificate", path, "--json", keys=[KEY])
    assert run.code == 0, run.text
    assert run.json()["key"]["matches"] == ["CN=www.example.com,O=certfleet demo"]
    run = cli(capsys, "inspect", path, keys=[KEY])
    assert run.code == 0
    assert "private key 1 (PKCS#8, unencrypted)" in run.out


# ---------------------------------------------------------------- private keys in every container

_EC = ec_key("p256", 0)


def _ec_leaf() -> x509.Certificate:
    from material_support import ec_pki

    return leaf(("www.example.com",), key=_EC, pki=ec_pki()).certificate


KEY_CASES = {
    # name: (key, bytes of the file, password, container)
    "pkcs8-pem": (KEY, lambda: key_pem(KEY), None, "PKCS#8"),
    "pkcs1-pem": (KEY, lambda: key_pem(KEY, "traditional"), None, "PKCS#1"),
    "sec1-pem": (_EC, lambda: key_pem(_EC, "traditional"), None, "SEC1"),
    "pkcs8-ec-pem": (_EC, lambda: key_pem(_EC), None, "PKCS#8"),
    "encrypted-pkcs8-pem": (KEY, lambda: key_pem(KEY, "pkcs8", b"pw"), b"pw", "PKCS#8"),
    "legacy-encrypted-pkcs1-pem": (KEY, lambda: key_pem(KEY, "traditional", b"pw"), b"pw", "PKCS#1"),
    "legacy-encrypted-sec1-pem": (_EC, lambda: key_pem(_EC, "traditional", b"pw"), b"pw", "SEC1"),
    "pkcs8-der": (KEY, lambda: key_der(KEY), None, "PKCS#8"),
    "pkcs1-der": (KEY, lambda: key_der(KEY, "traditional"), None, "PKCS#1"),
    "sec1-der": (_EC, lambda: key_der(_EC, "traditional"), None, "SEC1"),
    "encrypted-pkcs8-der": (KEY, lambda: key_der(KEY, "pkcs8", b"pw"), b"pw", "PKCS#8"),
}


@pytest.mark.parametrize("case", sorted(KEY_CASES))
def test_private_key_containers(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    key, data, password, container = KEY_CASES[case]
    raw = data()
    if case == "legacy-encrypted-pkcs1-pem":
        assert b"Proc-Type: 4,ENCRYPTED" in raw and b"DEK-Info:" in raw
    path = write(tmp_path / "private.key", raw, 0o400)
    loaded = load_file(path, password)
    (item,) = loaded.keys
    assert item.container == container
    assert item.encrypted is (password is not None)
    assert item.key is not None
    assert spki_sha256(item.key.public_key()) == spki_sha256(key.public_key())
    cert = seed_leaf().certificate if key is KEY else _ec_leaf()
    cert_path = write(tmp_path / "cert.pem", cert.public_bytes(PEM))
    extra: list[str] = []
    if password is not None:
        monkeypatch.setenv("KEY_PASS", password.decode())
        extra = ["--password-env", "KEY_PASS"]
    run = cli(capsys, "verify", "--certificate", cert_path, "--key", path, "--json", *extra, keys=[key])
    assert run.code == 0, run.text
    assert run.json()["key"]["container"] == container
    report = _inspect_any(capsys, path, key, *extra)
    assert report["keys"][0]["container"] == container
    if password is not None:  # without the password: the key is listed, encrypted, and verify says so
        assert load_file(path).keys[0].key is None
        run = cli(capsys, "verify", "--certificate", cert_path, "--key", path, "--json", keys=[key])
        assert run.code == 1
        assert "key-encrypted" in run.codes()
        run = cli(capsys, "inspect", path, keys=[key])
        assert run.code == 0
        assert "encrypted" in run.out
        monkeypatch.setenv("KEY_PASS", "not the password")
        run = cli(capsys, "verify", "--certificate", cert_path, "--key", path, *extra, keys=[key])
        assert run.code == 1
        assert "[password-wrong]" in run.err


def _inspect_any(capsys: pytest.CaptureFixture[str], path: str, key: object, *extra: str) -> Any:
    run = cli(capsys, "inspect", path, "--json", *extra, keys=[key])
    assert run.code == 0, run.text
    return run.json()[0]


def test_unreadable_private_key_block(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = key_pem(KEY).decode().splitlines()
    damaged = "\n".join([body[0], *body[1:5], *body[8:]]) + "\n"  # lines cut out of the middle
    path = write(tmp_path / "private.key", damaged.encode(), 0o400)
    with pytest.raises(MaterialError) as info:
        load_file(path)
    assert info.value.finding.code == "unreadable"
    run = cli(capsys, "inspect", path, keys=[KEY])
    assert run.code == 1
    assert "not a valid private key" in run.err


# ---------------------------------------------------------------- a CSR is not a certificate

@pytest.mark.parametrize("encoding", [PEM, DER], ids=["pem", "der"])
def test_csr_given_as_certificate(encoding: serialization.Encoding, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(seed_leaf().certificate.subject).sign(KEY, hashes.SHA256()))
    path = write(tmp_path / "request.csr", csr.public_bytes(encoding))
    with pytest.raises(MaterialError) as info:
        load_file(path)
    assert info.value.finding.code == "csr-not-certificate"
    run = cli(capsys, "inspect", path, "--json")
    assert run.code == 1
    assert run.codes() == ["csr-not-certificate"]
    run = cli(capsys, "verify", "--certificate", path)
    assert run.code == 1
    assert "[csr-not-certificate]" in run.err
    assert "signing request" in run.err


# ---------------------------------------------------------------- files that cannot be read

def _truncated_p12() -> bytes:
    data = _p12(None)
    return data[: len(data) // 2]


BAD_FILES = {
    # name: (bytes, expected code)
    "empty": (b"", "empty-file"),
    "whitespace-only": (b"\n  \r\n\t\n", "empty-file"),
    "garbage-text": (b"hello, this is not a certificate\n", "unreadable"),
    "garbage-binary": (bytes(range(256)) * 4, "unreadable"),
    "garbage-der-sequence": (bytes.fromhex("3003020101"), "unreadable"),
    "der-sequence-of-nothing": (bytes.fromhex("3000"), "unreadable"),
    "begin-without-end": (pem(seed_leaf())[:300], "unreadable"),
    "second-block-cut": (pem(seed_leaf(), rsa_pki().intermediate)[:-200], "unreadable"),
    "bad-base64": (b"-----BEGIN CERTIFICATE-----\nMII!!notbase64**\n-----END CERTIFICATE-----\n", "unreadable"),
    "base64-not-der": (b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
                       "unreadable"),
    "truncated-der": (seed_leaf().certificate.public_bytes(DER)[:400], "unreadable"),
    "truncated-p12": (_truncated_p12(), "unreadable"),
    "truncated-p7b": (pkcs7.serialize_certificates([seed_leaf().certificate], DER)[:300], "unreadable"),
    "only-public-key": (KEY.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
                        "unreadable"),
    "openssh-key": (b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
                    b"-----END OPENSSH PRIVATE KEY-----\n", "unreadable"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_unreadable_files_exit_1_with_a_sentence(case: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data, code = BAD_FILES[case]
    path = write(tmp_path / f"{case}.pem", data)
    with pytest.raises(MaterialError) as info:
        load_file(path)
    assert info.value.finding.code == code
    assert info.value.finding.message
    run = cli(capsys, "inspect", path, keys=[KEY])
    assert run.code == 1
    assert run.err.strip(), "a sentence on stderr"
    assert f"{path}: " in run.err
    run = cli(capsys, "inspect", path, "--json", keys=[KEY])
    assert run.code == 1
    assert run.codes() == [code]
    run = cli(capsys, "verify", "--certificate", path, keys=[KEY])
    assert run.code == 1
    assert f"[{code}]" in run.err


def test_missing_file_and_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "inspect", str(tmp_path / "nope.pem"), "--json")
    assert run.code == 1
    assert run.codes() == ["file-not-found"]
    run = cli(capsys, "verify", "--certificate", str(tmp_path))
    assert run.code == 1
    assert "[unreadable]" in run.err and "folder" in run.err


def test_file_without_read_permission(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the user may not read (simulated: these tests run as root, who reads any file)."""
    path = write(tmp_path / "cert.pem", pem(seed_leaf()), 0o000)
    real = os.open

    def refuse(file: str | os.PathLike[str], flags: int, mode: int = 0o777, **kw: Any) -> int:
        if Path(file) == Path(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real(file, flags, mode, **kw)

    monkeypatch.setattr(os, "open", refuse)
    run = cli(capsys, "inspect", path)
    assert run.code == 1
    assert "permission denied" in run.err


def test_inspect_reads_every_file_and_fails_if_one_fails(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path / "good.pem", pem(seed_leaf()))
    bad = write(tmp_path / "bad.pem", b"nothing here")
    run = cli(capsys, "inspect", good, bad, "--json")
    assert run.code == 1
    first, second = run.json()
    assert first["certificates"] and second["error"]["code"] == "unreadable"


def test_load_bytes_skips_other_blocks_with_notes() -> None:
    data = (b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
            + pem(seed_leaf())
            + b"-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n")
    loaded = load_bytes(data)
    assert len(loaded.certificates) == 1
    assert "skipped a 'EC PARAMETERS' block" in loaded.notes
    assert "skipped a 'X509 CRL' block" in loaded.notes


@pytest.mark.parametrize("fmt", ["pkcs8", "traditional"])
def test_damaged_rsa_key_is_refused(fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    numbers = rsa_key(2048, 6).private_numbers()
    damaged = rsa.RSAPrivateNumbers(numbers.p, numbers.q, numbers.d + 2, numbers.dmp1, numbers.dmq1,
                                    numbers.iqmp, numbers.public_numbers).private_key(
        unsafe_skip_rsa_key_validation=True)
    path = write(tmp_path / "private.key", key_pem(damaged, fmt), 0o400)
    with pytest.raises(MaterialError) as info:
        load_file(path)
    assert info.value.finding.code == "unreadable"
    run = cli(capsys, "inspect", path, keys=[damaged])
    assert run.code == 1
    assert "not a valid private key" in run.err


@pytest.mark.parametrize("case", ["pkcs8-pem", "legacy-encrypted-pkcs1-pem", "encrypted-pkcs8-der"])
def test_empty_password_for_an_encrypted_key(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    raw = {
        "pkcs8-pem": key_pem(KEY, "pkcs8", b"pw"),
        "legacy-encrypted-pkcs1-pem": key_pem(KEY, "traditional", b"pw"),
        "encrypted-pkcs8-der": key_der(KEY, "pkcs8", b"pw"),
    }[case]
    path = write(tmp_path / "private.key", raw, 0o400)
    with pytest.raises(MaterialError) as info:
        load_file(path, b"")
    assert info.value.finding.code == "password-wrong"
    monkeypatch.setenv("KEY_PASS", "")
    run = cli(capsys, "inspect", path, "--password-env", "KEY_PASS", "--json", keys=[KEY])
    assert run.code == 1
    assert run.codes() == ["password-wrong"]
    empty = write(tmp_path / "empty.txt", b"", 0o400)
    run = cli(capsys, "verify", "--certificate", write(tmp_path / "c.pem", pem(seed_leaf())), "--key", path,
              "--password-file", empty, keys=[KEY])
    assert run.code == 1
    assert "[password-wrong]" in run.err and "empty" in run.err


def test_ber_encoded_pkcs12_is_read_with_a_note_not_a_warning(tmp_path: Path) -> None:
    # Windows and Java export PKCS#12 as BER (indefinite lengths); cryptography reads it with a UserWarning
    import subprocess
    import sys

    der = _p12(None)
    assert der[1] == 0x82
    ber = b"\x30\x80" + der[4:] + b"\x00\x00"
    path = write(tmp_path / "windows.pfx", ber)
    loaded = load_file(path)
    assert len(loaded.certificates) == 3 and len(loaded.keys) == 1
    assert any("BER-encoded" in n for n in loaded.notes)
    result = subprocess.run([str(Path(sys.executable).parent / "certfleet"), "inspect", path], capture_output=True,
                            text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no "UserWarning: ... falling back to parsing as BER" line
    assert "note: the PKCS#12 file is BER-encoded" in result.stdout


# ---------------------------------------------------------------- damaged blocks, limits (issue 10 A.8, A.13)

GARBAGE_KEY = b"-----BEGIN PRIVATE KEY-----\nTm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize("damage", ["garbage-key", "cut-block", "bad-base64"])
def test_damaged_block_keeps_what_was_read(damage: str, tmp_path: Path) -> None:
    """A.13: the good certificate is kept with the error of the damaged block, which still stops every use."""
    bad = {"garbage-key": GARBAGE_KEY, "cut-block": b"-----BEGIN CERTIFICATE-----\nMIIB\n",
           "bad-base64": b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"}[damage]
    path = write(tmp_path / "bundle.pem", pem(seed_leaf()) + bad + pem(rsa_pki().intermediate))
    with pytest.raises(DamagedBlockError) as info:
        load_file(path)
    assert info.value.finding.code == "unreadable"
    assert "(block 2 of 3)" in info.value.finding.message
    assert [fingerprint(c) for c in info.value.loaded.certificates] == [
        fingerprint(seed_leaf().certificate), fingerprint(rsa_pki().intermediate.certificate)]
    with pytest.raises(MaterialError):
        load_material(path)


def test_only_a_damaged_block_is_a_plain_error(tmp_path: Path) -> None:
    with pytest.raises(MaterialError) as info:
        load_file(write(tmp_path / "key.pem", GARBAGE_KEY))
    assert not isinstance(info.value, DamagedBlockError)
    assert "not a valid private key" in info.value.finding.message


def test_certificate_cap_is_exact(tmp_path: Path) -> None:
    one = pem(seed_leaf())
    assert len(load_bytes(one * MAX_CERTIFICATES).certificates) == MAX_CERTIFICATES
    with pytest.raises(MaterialError, match=f"{MAX_CERTIFICATES:,}"):
        load_bytes(one * (MAX_CERTIFICATES + 1))


def test_read_regular_file_limit_and_links(tmp_path: Path) -> None:
    target = tmp_path / "cert.pem"
    target.write_bytes(b"x" * 100)
    link = tmp_path / "link.pem"
    link.symlink_to(target)
    assert read_regular_file(link, limit=100) == b"x" * 100  # a link to a regular file is read
    with pytest.raises(MaterialError, match="100 bytes") as info:
        read_regular_file(target, limit=99, what="chain file")
    assert info.value.finding.subject == str(target) and "chain file" in info.value.finding.message
    device = tmp_path / "zero.pem"
    device.symlink_to("/dev/zero")
    with pytest.raises(MaterialError, match="character device"):
        read_regular_file(device, limit=100)


def test_pkcs12_with_many_kdf_rounds_within_the_bound_loads(tmp_path: Path) -> None:
    encryption = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(100_000)
                  .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).build(b"pw"))
    data = pkcs12.serialize_key_and_certificates(b"x", KEY, seed_leaf().certificate, None, encryption)
    loaded = load_file(write(tmp_path / "b.p12", data), b"pw")
    _same_leaf(loaded.certificates[0])
    assert loaded.keys[0].key is not None


@pytest.mark.parametrize("encoding", ["der", "ber"])
def test_pkcs12_of_a_thousand_certificates_is_not_refused(encoding: str, tmp_path: Path) -> None:
    """The KDF walk's element budget and the certificate cap leave the largest legitimate store readable."""
    certs = [rsa_pki().intermediate.certificate] * (MAX_CERTIFICATES - 1)
    data = pkcs12.serialize_key_and_certificates(b"x", KEY, seed_leaf().certificate, certs,
                                                 serialization.NoEncryption())
    if encoding == "ber":  # the outer PFX with an indefinite length, as Windows writes it
        assert data[:2] == b"\x30\x83"
        data = b"\x30\x80" + data[5:] + b"\x00\x00"
    loaded = load_file(write(tmp_path / "store.p12", data))
    assert len(loaded.certificates) == MAX_CERTIFICATES


@pytest.mark.parametrize("field", [1, 3, 4, 5, 6, 7, 8], ids=["n", "d", "p", "q", "dmp1", "dmq1", "iqmp"])
def test_rsa_key_whose_numbers_do_not_fit_is_refused(field: int) -> None:
    """The arithmetic check that replaced OpenSSL's (primality-testing, seconds-long) validation still catches
    any damaged number of a PKCS#1 key: RSAPrivateKey ::= SEQUENCE {version, n, e, d, p, q, dmp1, dmq1, iqmp}."""
    numbers = der_children(der_value(key_der(KEY, "traditional")))
    value = int.from_bytes(der_value(numbers[field]), "big") + 2
    numbers[field] = der_element(0x02, value.to_bytes((value.bit_length() + 8) // 8, "big"))
    damaged = der_element(0x30, b"".join(numbers))
    text = b"-----BEGIN RSA PRIVATE KEY-----\n" + base64.encodebytes(damaged) + b"-----END RSA PRIVATE KEY-----\n"
    with pytest.raises(MaterialError, match="not a valid private key"):
        load_bytes(text, "damaged.key")
    assert len(load_bytes(key_pem(KEY, "traditional"), "good.key").keys) == 1
