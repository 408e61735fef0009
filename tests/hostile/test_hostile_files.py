"""Hostile files (issue 10 A.8, A.13): every command and CertificateBundle.from_files end with exit 1 and a sentence.

Each case runs in a child with a hard timeout (TIMEOUT, the test fails when it is reached) and an address-space
cap (MEMORY): a hang or an exhausted memory is a failure, not a slow test. Wall times are printed, not asserted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import hostile_support as kit
import pytest

from certfleet.material import load_bytes
from certfleet.material.loader import MAX_INPUT_BYTES

GARBAGE_KEY = b"-----BEGIN PRIVATE KEY-----\nTm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n"


def _write(data: Callable[[], bytes]) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        path = folder / "hostile"
        path.write_bytes(data())
        return str(path)
    return make


def _fifo(folder: Path) -> str:
    path = folder / "fifo.pem"
    os.mkfifo(path)  # nobody ever writes to it
    return str(path)


def _over_limit(folder: Path) -> str:
    path = folder / "huge.pem"
    with path.open("wb") as file:
        file.truncate(MAX_INPUT_BYTES + 1)  # sparse: costs no disk
    return str(path)


# name -> (make the file, give a password, what the sentence says)
CASES: dict[str, tuple[Callable[[Path], str], bool, str]] = {
    "dev-zero": (lambda _: "/dev/zero", False, "character device, not a regular file"),
    "dev-urandom": (lambda _: "/dev/urandom", False, "character device, not a regular file"),
    "fifo-nobody-writes": (_fifo, False, "named pipe (FIFO), not a regular file"),
    "folder": (str, False, "folder, not a regular file"),
    "over-the-size-limit": (_over_limit, False, f"certfleet reads at most {MAX_INPUT_BYTES:,} bytes"),
    "20000-begin-lines-without-end": (_write(lambda: b"-----BEGIN CERTIFICATE-----\n" * 20_000), False,
                                      "20,000 BEGIN lines"),
    "999-begin-lines-without-end": (_write(lambda: b"-----BEGIN CERTIFICATE-----\nMIIB\n" * 999), False,
                                    "BEGIN line but no matching END line"),
    "p7b-of-1001-certificates": (_write(lambda: kit.p7b_of(1001)), False, "1,001 certificates"),
    "p12-mac-200M-iterations": (_write(lambda: kit.p12(mac_iterations=200_000_000)), True,
                                "200,000,000 password-derivation iterations"),
    "p12-kdf-200M-iterations": (_write(lambda: kit.p12(kdf_iterations=200_000_000)), True,
                                "200,000,000 password-derivation iterations"),
    "pkcs8-pbkdf2-200M-iterations": (_write(lambda: kit.encrypted_pkcs8(200_000_000)), True,
                                     "200,000,000 password-derivation iterations"),
    "pkcs8-scrypt-p-1M": (_write(lambda: kit.scrypt_pkcs8(1024, 8, 1_000_000)), True,
                          "scrypt work"),
    "nested-der-100000": (_write(lambda: kit.nested(100_000)), False, "neither a certificate"),
    "nested-in-pkcs12-100000": (_write(lambda: kit.nested_pkcs12(100_000)), True,
                                "nested deeper"),
    "p12-key-bag-hidden-in-encrypted-content-200M": (_write(lambda: kit.p12_hidden_key_bag(200_000_000)), True,
                                                     "200,000,000 password-derivation iterations"),
    "p12-key-bag-hidden-in-3des-content-200M": (_write(lambda: kit.p12_hidden_key_bag(200_000_000, legacy=True)),
                                                True, "200,000,000 password-derivation iterations"),
    "p12-ber-mac-200M-iterations": (_write(lambda: kit.ber(kit.p12(mac_iterations=200_000_000))), True,
                                    "200,000,000 password-derivation iterations"),
    "nested-ber-in-pkcs12-200000": (_write(lambda: kit.PFX_BER_SHELL + b"\x30\x80" * 200_000), True,
                                    "nested deeper"),
    "wide-ber-pkcs12-500000": (_write(lambda: kit.PFX_BER_SHELL + b"\x30\x80\x00\x00" * 500_000 + b"\x00\x00"), True,
                               "larger than any key file"),
    "1000-encrypted-keys-of-1M-iterations": (_write(lambda: kit.encrypted_pkcs8(1_000_000) * 1000), True,
                                             "999 more damaged block(s)"),
    "good-cert-garbage-key": (_write(lambda: kit.cert_pem() + GARBAGE_KEY), False,
                              "not a valid private key (block 2 of 2)"),
}

COMMANDS = ["inspect", "verify", "convert", "from_files"]


def _run(command: str, path: str, password: bool, out: Path) -> kit.Outcome:
    if command == "from_files":
        return kit.from_files(path, password=password)
    argv = {"inspect": [kit.CLI, "inspect", path],
            "verify": [kit.CLI, "verify", "--certificate", path],
            "convert": [kit.CLI, "convert", path, "--out", str(out)]}[command]
    if password:
        argv += ["--password-env", kit.PASSWORD_ENV]
    return kit.run_bounded(argv, env={kit.PASSWORD_ENV: kit.PASSWORD.decode()})


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_file_ends_with_a_sentence(case: str, command: str, tmp_path: Path) -> None:
    make, password, says = CASES[case]
    folder = tmp_path / "in"
    folder.mkdir()
    path = make(folder)
    outcome = _run(command, path, password, tmp_path / "out")
    print(f"hostile: {case:32} {command:10} {outcome.seconds:6.2f} s exit {outcome.code}")
    text = outcome.out + outcome.err
    assert outcome.code == 1, text
    assert "Traceback" not in text and "This is a bug" not in text, text
    assert says in outcome.err, outcome.err
    assert path in outcome.err and "fix:" in outcome.err, outcome.err  # names the file and what to do
    assert not (tmp_path / "out" / "cert.pem").exists()


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_five_hundred_keys_and_certificates_end_in_time(command: str, tmp_path: Path) -> None:
    """Each RSA key used to cost OpenSSL's primality tests (0.3 s at 2048 bits here) and inspect matched every
    key against every certificate: 500 of each took minutes. Now inspect lists them all."""
    key_pem = kit.rsa_key_pem()
    path = tmp_path / "many.pem"
    path.write_bytes(b"".join(kit.cert_pem() + key_pem for _ in range(500)))
    outcome = _run(command, str(path), False, tmp_path / "out")
    print(f"hostile: {'500-certificates-500-keys':32} {command:10} {outcome.seconds:6.2f} s exit {outcome.code}")
    text = outcome.out + outcome.err
    assert "Traceback" not in text and "This is a bug" not in text, text
    if command == "inspect":
        assert outcome.code == 0, text
        assert "500 certificate(s), 500 private key(s)" in outcome.out
    else:
        assert outcome.code == 1 and "fix:" in outcome.err, text


def test_inspect_shows_the_good_block_then_the_damaged_one(tmp_path: Path) -> None:
    """A.13 end to end: the certificate is listed, then the damaged key block's error; exit 1."""
    path = _write(lambda: kit.cert_pem() + GARBAGE_KEY)(tmp_path)
    outcome = kit.run_bounded([kit.CLI, "inspect", path])
    assert outcome.code == 1, outcome.err
    assert "1 certificate(s), 0 private key(s)" in outcome.out and "CN=hostile.example" in outcome.out
    assert "not a valid private key (block 2 of 2)" in outcome.err


@pytest.mark.parametrize("legacy", [False, True], ids=["pbes2-aes", "sha1-3des"])
def test_a_key_bag_inside_encrypted_content_is_still_read(legacy: bool) -> None:
    """The loader opens encrypted content to count the KDFs hidden inside; an ordinary one still loads."""
    loaded = load_bytes(kit.p12_hidden_key_bag(2048, legacy=legacy), "hidden.p12", kit.PASSWORD)
    assert len(loaded.keys) == 1 and loaded.keys[0].key is not None
