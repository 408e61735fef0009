"""`certfleet keygen` and `certfleet csr`: key files 0400 from creation, CSRs from flags or the seed's config."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID
from material_support import (
    OVERSIZED_RSA_BITS,
    cli,
    dsa_key,
    ed25519_key,
    key_pem,
    pem,
    rsa_key,
    seed_leaf,
    umask,
    write,
)

from certfleet.material import load_file
from certfleet.material.checks import key_algorithm
from certfleet.material.keys import CsrConfig, write_secret_file

KEY = rsa_key(2048, 0)

TYPES = {
    "rsa-2048": "RSA_2048",
    "rsa-3072": "RSA_3072",
    "rsa-4096": "RSA_4096",
    "ec-p256": "EC_prime256v1",
    "ec-p384": "EC_secp384r1",
}


@pytest.mark.parametrize("key_type", sorted(TYPES))
def test_keygen_every_type_0400_even_with_umask_000(key_type: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"{key_type}.key"
    with umask(0):
        capsys.readouterr()
        from certfleet.cli.main import main

        code = main(["keygen", "--type", key_type, "--out", str(out)])
    run_out = capsys.readouterr()
    assert code == 0, run_out
    assert stat.S_IMODE(out.stat().st_mode) == 0o400
    (item,) = load_file(out).keys
    assert item.key is not None
    assert item.container == "PKCS#8" and not item.encrypted
    assert key_algorithm(item.key.public_key()) == TYPES[key_type]
    from material_support import assert_clean

    assert_clean(run_out.out + run_out.err, [item.key])
    assert f"({TYPES[key_type]}, mode 0400)" in run_out.out


def test_keygen_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "private.key"
    out.write_bytes(b"precious")
    run = cli(capsys, "keygen", "--type", "ec-p256", "--out", str(out))
    assert run.code == 1
    assert "[file-exists]" in run.err
    assert out.read_bytes() == b"precious"


def test_keygen_into_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "keygen", "--type", "ec-p256", "--out", str(tmp_path / "no" / "such" / "k.key"))
    assert run.code == 1
    assert "cannot access" in run.err


def test_write_secret_file_is_0400_with_any_umask(tmp_path: Path) -> None:
    for mask in (0o000, 0o022, 0o077, 0o277):
        with umask(mask):
            target = tmp_path / f"k{mask:o}"
            write_secret_file(target, b"x")
            assert stat.S_IMODE(target.stat().st_mode) == 0o400
            write_secret_file(target, b"y", overwrite=True)
            assert stat.S_IMODE(target.stat().st_mode) == 0o400
            assert target.read_bytes() == b"y"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k0", "k22", "k277", "k77"], "no temp file left"


# ---------------------------------------------------------------- CSR

SEED_CSR_TOML = """\
# the seed's csr.conf, as TOML
common_name = "www.example.com"
sans = ["www.example.com", "example.com", "api.example.com"]

[subject]
country = "US"
state = "California"
locality = "San Francisco"
organization = "My Company Inc"
organizational_unit = "IT Department"
email = "admin@example.com"
"""


def _csr(path: Path) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(path.read_bytes())


def _sans(csr: x509.CertificateSigningRequest) -> list[str]:
    ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(n) for n in ext.get_values_for_type(x509.DNSName)] + [
        str(n) for n in ext.get_values_for_type(x509.IPAddress)]


def test_csr_from_the_seed_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = write(tmp_path / "private.key", key_pem(KEY), 0o400)
    config = tmp_path / "csr.toml"
    config.write_text(SEED_CSR_TOML)
    out = tmp_path / "request.csr"
    run = cli(capsys, "csr", "--key", key, "--config", str(config), "--out", str(out), keys=[KEY])
    assert run.code == 0, run.text
    csr = _csr(out)
    assert csr.is_signature_valid
    assert _sans(csr) == ["www.example.com", "example.com", "api.example.com"]
    subject = {a.oid: a.value for a in csr.subject}
    assert subject == {
        NameOID.COUNTRY_NAME: "US",
        NameOID.STATE_OR_PROVINCE_NAME: "California",
        NameOID.LOCALITY_NAME: "San Francisco",
        NameOID.ORGANIZATION_NAME: "My Company Inc",
        NameOID.ORGANIZATIONAL_UNIT_NAME: "IT Department",
        NameOID.COMMON_NAME: "www.example.com",
        NameOID.EMAIL_ADDRESS: "admin@example.com",
    }
    assert csr.public_key() == KEY.public_key()
    assert csr.signature_hash_algorithm is not None and csr.signature_hash_algorithm.name == "sha256"
    assert "SANs www.example.com, example.com, api.example.com" in run.out
    # a CSR is not a certificate: verify says so
    run = cli(capsys, "verify", "--certificate", str(out))
    assert run.code == 1 and "[csr-not-certificate]" in run.err


def test_csr_from_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = write(tmp_path / "private.key", key_pem(KEY), 0o400)
    out = tmp_path / "request.csr"
    run = cli(capsys, "csr", "--key", key, "--common-name", "www.example.com", "--san", "example.com",
              "--san", "WWW.example.com", "--san", "192.0.2.7", "--organization", "My Company Inc",
              "--country", "US", "--out", str(out), keys=[KEY])
    assert run.code == 0, run.text
    csr = _csr(out)
    assert _sans(csr) == ["www.example.com", "example.com", "192.0.2.7"]  # CN first, no duplicate
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "My Company Inc"


def test_csr_config_sans_and_flag_sans_add_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = write(tmp_path / "private.key", key_pem(KEY), 0o400)
    config = tmp_path / "csr.toml"
    config.write_text('common_name = "www.example.com"\nsans = ["example.com"]\n')
    out = tmp_path / "r.csr"
    assert cli(capsys, "csr", "--key", key, "--config", str(config), "--san", "api.example.com",
               "--out", str(out)).code == 0
    assert _sans(_csr(out)) == ["www.example.com", "example.com", "api.example.com"]


@pytest.mark.parametrize(("toml", "named"), [
    ('common_name = "a.example.com"\ncolour = "blue"\n', "colour"),
    ('common_name = "a.example.com"\n[subject]\nCN = "a.example.com"\n', "CN"),
    ('common_name = "a.example.com"\n[subject]\ncountry = "US"\nprovince = "x"\n', "province"),
    ('sans = ["a.example.com"]\n', "common_name"),
    ('common_name = "a.example.com"\nsans = "a.example.com"\n', "sans"),
    ('common_name = "a.example.com"\n[subject]\ncountry = 1\n', "country"),
    ('common_name = "a.example.com"\n[subject]\ncountry = "USA"\n', "length"),
    ('common_name = "a.example.com"\nsubject = "x"\n', "[subject]"),
    ('common_name = "a.example.com\n', "not valid TOML"),
])
def test_csr_config_refused_by_name(toml: str, named: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    key = write(tmp_path / "private.key", key_pem(KEY), 0o400)
    config = tmp_path / "csr.toml"
    config.write_text(toml)
    out = tmp_path / "r.csr"
    run = cli(capsys, "csr", "--key", key, "--config", str(config), "--out", str(out), keys=[KEY])
    assert run.code == 1, run.text
    assert "[csr-config-invalid]" in run.err
    assert named in run.err
    assert not out.exists()


def test_csr_config_unknown_key_is_named_by_the_library(tmp_path: Path) -> None:
    from certfleet.material import MaterialError

    config = tmp_path / "csr.toml"
    config.write_text(SEED_CSR_TOML + 'challenge_password = "x"\n')
    with pytest.raises(MaterialError) as info:
        CsrConfig.from_toml(config)
    assert info.value.finding.code == "csr-config-invalid"
    assert "challenge_password" in info.value.finding.message


def test_csr_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = write(tmp_path / "private.key", key_pem(KEY), 0o400)
    run = cli(capsys, "csr", "--key", key, "--config", str(tmp_path / "none.toml"), "--out",
              str(tmp_path / "r.csr"), keys=[KEY])
    assert run.code == 1
    assert "[file-not-found]" in run.err


def test_csr_needs_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert = write(tmp_path / "cert.pem", pem(seed_leaf()))
    run = cli(capsys, "csr", "--key", cert, "--common-name", "www.example.com", "--out", str(tmp_path / "r"))
    assert run.code == 1
    assert "[no-key]" in run.err


def test_csr_with_an_encrypted_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    key = write(tmp_path / "private.key", key_pem(KEY, "traditional", b"pw"), 0o400)
    out = tmp_path / "r.csr"
    run = cli(capsys, "csr", "--key", key, "--common-name", "www.example.com", "--out", str(out), keys=[KEY])
    assert run.code == 1
    assert "[key-encrypted]" in run.err
    monkeypatch.setenv("KEY_PASS", "pw")
    run = cli(capsys, "csr", "--key", key, "--password-env", "KEY_PASS", "--common-name", "www.example.com",
              "--out", str(out), keys=[KEY])
    assert run.code == 0, run.text
    assert _csr(out).public_key() == KEY.public_key()


def test_csr_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = write(tmp_path / "private.key", key_pem(KEY), 0o400)
    out = tmp_path / "r.csr"
    out.write_text("old")
    run = cli(capsys, "csr", "--key", key, "--common-name", "www.example.com", "--out", str(out), keys=[KEY])
    assert run.code == 1
    assert "[file-exists]" in run.err
    assert out.read_text() == "old"


def test_keygen_then_csr_then_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k.key"
    assert cli(capsys, "keygen", "--type", "ec-p256", "--out", str(key)).code == 0
    out = tmp_path / "r.csr"
    assert cli(capsys, "csr", "--key", str(key), "--common-name", "www.example.com", "--out", str(out)).code == 0
    loaded_key = serialization.load_pem_private_key(key.read_bytes(), None)
    assert _csr(out).public_key() == loaded_key.public_key()
    run = cli(capsys, "inspect", str(key), "--json", keys=[loaded_key])
    assert run.code == 0
    assert run.codes() == []  # 0400: no permission warning


# ---------------------------------------------------------------- CSR: names a CA would refuse, keys ACM cannot import

@pytest.mark.parametrize("how", ["san", "common-name", "toml"])
def test_csr_encodes_international_names_as_a_labels(how: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    key = write(tmp_path / "private.key", key_pem(KEY), 0o400)
    out = tmp_path / "r.csr"
    if how == "toml":
        config = tmp_path / "csr.toml"
        config.write_text('common_name = "bücher.example"\nsans = ["*.bücher.example"]\n', encoding="utf-8")
        args = ["--config", str(config)]
    elif how == "san":
        args = ["--common-name", "xn--bcher-kva.example", "--san", "*.bücher.example"]
    else:
        args = ["--common-name", "bücher.example", "--san", "*.xn--bcher-kva.example"]
    run = cli(capsys, "csr", "--key", key, *args, "--out", str(out), keys=[KEY])
    assert run.code == 0, run.text
    csr = _csr(out)
    assert _sans(csr) == ["xn--bcher-kva.example", "*.xn--bcher-kva.example"]
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "xn--bcher-kva.example"


def test_csr_display_names_show_the_u_label() -> None:
    config = CsrConfig(common_name="bücher.example", sans=["www.example.com"])
    assert config.display_names() == ["xn--bcher-kva.example (bücher.example)", "www.example.com"]


@pytest.mark.parametrize(("name", "reason"), [
    ("admin@example.com", "email"),
    ("foo bar", "' '"),
    ("bad_.example.com.", "dot"),
    ("bad_.example.com", "'_'"),
    ("*.*.example.com", "wildcard"),
    ("www.example.com\ntouch /tmp/x", "'\\n'"),
    ("straße.example", "IDNA 2003 and IDNA 2008"),
])
def test_csr_refuses_names_a_ca_refuses(name: str, reason: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    key = write(tmp_path / "private.key", key_pem(KEY), 0o400)
    out = tmp_path / "r.csr"
    for args in (["--common-name", "www.example.com", "--san", name], ["--common-name", name]):
        run = cli(capsys, "csr", "--key", key, *args, "--out", str(out), keys=[KEY])
        assert run.code == 1, run.text
        assert "[name-invalid]" in run.err and reason in run.err
        assert "This is a bug" not in run.err and "\ntouch" not in run.err
        assert not out.exists()


def test_csr_toml_with_a_bad_san_names_the_file(tmp_path: Path) -> None:
    from certfleet.material import MaterialError

    config = tmp_path / "csr.toml"
    config.write_text('common_name = "www.example.com"\nsans = ["admin@example.com"]\n')
    with pytest.raises(MaterialError) as info:
        CsrConfig.from_toml(config)
    assert info.value.finding.code == "name-invalid"
    assert info.value.finding.subject == str(config)
    assert "email" in info.value.finding.fix


def test_csr_toml_common_name_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = write(tmp_path / "private.key", key_pem(KEY), 0o400)
    config = tmp_path / "csr.toml"
    config.write_text('common_name = "a.example.com"\n[subject]\ncommon_name = "b.example.com"\n')
    out = tmp_path / "r.csr"
    run = cli(capsys, "csr", "--key", key, "--config", str(config), "--out", str(out), keys=[KEY])
    assert run.code == 1
    assert "[csr-config-invalid]" in run.err and "common_name" in run.err and "both" in run.err
    assert not out.exists()


@pytest.mark.parametrize("kind", ["ed25519", "dsa", "rsa-oversized", "ec-secp256k1"])
def test_csr_refuses_a_key_acm_cannot_import(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    makers: dict[str, Callable[[], PrivateKeyTypes]] = {
        "ed25519": ed25519_key, "dsa": dsa_key, "rsa-oversized": lambda: rsa_key(OVERSIZED_RSA_BITS),
        "ec-secp256k1": lambda: ec.generate_private_key(ec.SECP256K1()),
    }
    key = makers[kind]()
    path = write(tmp_path / "private.key", key_pem(key), 0o400)
    out = tmp_path / "r.csr"
    run = cli(capsys, "csr", "--key", path, "--common-name", "www.example.com", "--out", str(out), keys=[key])
    assert run.code == 1, run.text
    assert "[key-algorithm-unsupported]" in run.err and "This is a bug" not in run.err
    assert not out.exists()
