"""Every finding code, each from material built at test time, through the library and `certfleet verify`.

Each case asserts the exact code and severity from ``check_material``/``check_files``, then runs the CLI
(--json and text) and asserts the code, the exit code, no traceback and no key bytes on screen.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from material_support import (
    NOW,
    check,
    cli,
    dsa_key,
    ec_key,
    ec_pki,
    ed25519_key,
    key_pem,
    leaf,
    other_pki,
    pem,
    resign,
    rsa_key,
    rsa_pki,
    seed_chain,
    seed_leaf,
    write,
)

from certfleet.material import assemble, check_files, check_material, load_file
from certfleet.material.checks import MAX_CERTIFICATE_BYTES, MAX_CHAIN_BYTES, tracked_by_git
from certfleet.material.demo import DemoPKI, Issued, issue

KEY = rsa_key(2048, 0)
SEED_CHAIN = seed_chain()
ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- key and chain

def test_key_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, run = check(tmp_path, capsys, cert=pem(seed_leaf()), key=rsa_key(2048, 7),
                   code="key-mismatch", severity="error", exit=1)
    assert "does NOT match" in run.out


def test_key_matches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "k.key", key_pem(KEY), 0o400)
    run = cli(capsys, "verify", "--certificate", write(tmp_path / "c.pem", pem(seed_leaf())),
              "--chain", write(tmp_path / "ch.pem", SEED_CHAIN), "--key", path, keys=[KEY])
    assert run.code == 0
    assert "matches the certificate" in run.out
    assert "result: ok (0 error(s), 0 warning(s))" in run.out


def test_chain_broken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # an intermediate with the right name but another key (an old or cross-signed issuance)
    impostor = issue("test Intermediate CA", issuer=rsa_pki().root, key=rsa_key(2048, 8), ca=True)
    assert impostor.certificate.subject == rsa_pki().intermediate.certificate.subject
    findings, _ = check(tmp_path, capsys, cert=pem(seed_leaf()), chain=pem(impostor, rsa_pki().root),
                        code="chain-broken", severity="error", exit=1)
    assert "chain-incomplete" not in [f.code for f in findings]


@pytest.mark.parametrize("chain", ["intermediate-only", "none"])
def test_chain_incomplete(chain: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    given = pem(rsa_pki().intermediate) if chain == "intermediate-only" else None
    _, run = check(tmp_path, capsys, cert=pem(seed_leaf()), chain=given,
                   code="chain-incomplete", severity="warning", exit=0)
    assert "CN=test" in run.out


def test_chain_expired_intermediate_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = issue("old Intermediate CA", issuer=rsa_pki().root, key=rsa_key(2048, 9), ca=True,
                not_before=NOW - dt.timedelta(days=400), not_after=NOW - dt.timedelta(days=1))
    end = issue("www.example.com", issuer=old, key=KEY, names=("www.example.com",))
    check(tmp_path, capsys, cert=pem(end), chain=pem(old, rsa_pki().root), key=KEY,
          code="chain-expired", severity="error", exit=1)


def test_chain_expired_root_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = issue("expired Root CA", key=rsa_key(2048, 10), ca=True,
                 not_before=NOW - dt.timedelta(days=4000), not_after=NOW - dt.timedelta(days=2))
    inter = issue("fresh Intermediate CA", issuer=root, key=rsa_key(2048, 11), ca=True, days=365)
    end = issue("www.example.com", issuer=inter, key=KEY, names=("www.example.com",))
    _, run = check(tmp_path, capsys, cert=pem(end), chain=pem(inter, root),
                   code="chain-expired", severity="warning", exit=0)
    assert "roots need not be sent" in run.out


def test_chain_missing_issuer_when_only_the_root_is_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the intermediate left out: ACM requires each chain certificate to certify the one before it
    findings, run = check(tmp_path, capsys, cert=pem(seed_leaf()), chain=pem(rsa_pki().root),
                          code="chain-missing-issuer", severity="error", exit=1)
    (finding,) = [f for f in findings if f.code == "chain-missing-issuer"]
    assert "CN=test Intermediate CA" in finding.message and "CN=test Root CA" in finding.message
    assert "it holds the root CN=test Root CA" in finding.message
    assert "chain-incomplete" not in [f.code for f in findings]
    assert "CN=test Intermediate CA" in run.out


def test_too_many_certificates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = ec_key("p256", 40)
    many = b"".join(pem(issue(f"ca {n}", key=key, ca=True)) for n in range(257))
    path = write(tmp_path / "bundle.pem", pem(seed_leaf()) + many)
    run = cli(capsys, "verify", "--certificate", path)
    assert run.code == 1
    assert "[too-many-certificates]" in run.err and "at most 256" in run.err


# ---------------------------------------------------------------- validity

def test_expired(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = leaf(not_before=NOW - dt.timedelta(days=100), days=10)
    _, run = check(tmp_path, capsys, cert=pem(old), code="expired", severity="error", exit=1)
    assert "expired on" in run.out


def test_not_yet_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    future = leaf(not_before=NOW + dt.timedelta(days=10), days=90)
    check(tmp_path, capsys, cert=pem(future), code="not-yet-valid", severity="error", exit=1)


def test_expires_soon_and_warn_days(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    soon = leaf(days=10)
    check(tmp_path, capsys, cert=pem(soon), code="expires-soon", severity="warning", exit=0)
    run = cli(capsys, "verify", "--certificate", str(tmp_path / "certificate.pem"), "--chain",
              str(tmp_path / "chain.pem"), "--warn-days", "5", "--json")
    assert run.code == 0
    assert "expires-soon" not in run.codes()
    run = cli(capsys, "verify", "--certificate", str(tmp_path / "certificate.pem"), "--strict")
    assert run.code == 1, "--strict turns warnings into a failure"


# ---------------------------------------------------------------- X.509 version and algorithms

def test_not_v3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v1 = resign(seed_leaf().certificate, rsa_pki().intermediate.key, v1=True)
    assert v1.version is x509.Version.v1
    findings, _ = check(tmp_path, capsys, cert=pem(v1), key=KEY, code="not-v3", severity="error", exit=1)
    assert "cn-only" in [f.code for f in findings]  # a v1 certificate has no SAN either
    assert "key-mismatch" not in [f.code for f in findings]


def test_v1_root_in_chain_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # old roots are often v1: only the leaf must be v3
    pki = rsa_pki()
    root_v1 = resign(pki.root.certificate, pki.root.key, v1=True)
    run = cli(capsys, "verify", "--certificate", write(tmp_path / "c.pem", pem(seed_leaf())),
              "--chain", write(tmp_path / "ch.pem", pem(pki.intermediate) + pem(root_v1)), "--json")
    assert run.code == 0, run.text
    assert run.codes() == []


@functools.cache
def _ed25519_leaf() -> Issued:
    return leaf(key=ed25519_key())


@functools.cache
def _dsa_leaf() -> Issued:
    return leaf(key=dsa_key())


@pytest.mark.parametrize("kind", ["ed25519", "dsa"])
def test_key_algorithm_unsupported(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    issued = _ed25519_leaf() if kind == "ed25519" else _dsa_leaf()
    _, run = check(tmp_path, capsys, cert=pem(issued), key=issued.key,
                   code="key-algorithm-unsupported", severity="error", exit=1)
    assert ("ED25519" if kind == "ed25519" else "DSA_2048") in run.out


def test_rsa_1024(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weak = leaf(key=rsa_key(1024))
    check(tmp_path, capsys, cert=pem(weak), key=rsa_key(1024), code="rsa-1024", severity="warning", exit=0)


@pytest.mark.parametrize("kind", ["ec-leaf-rsa-ca", "rsa-leaf-ec-ca"])
def test_ca_algorithm_mismatch(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if kind == "ec-leaf-rsa-ca":
        issued, chain = leaf(key=ec_key("p256")), SEED_CHAIN
    else:
        issued, chain = leaf(pki=ec_pki()), pem(ec_pki().intermediate, ec_pki().root)
    _, run = check(tmp_path, capsys, cert=pem(issued), chain=chain, key=issued.key,
                   code="ca-algorithm-mismatch", severity="error", exit=1)
    assert "ACM requires the two to match" in run.out


def test_ec_leaf_from_ec_ca_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    issued = leaf(pki=ec_pki(), key=ec_key("p256"))
    run = cli(capsys, "verify", "--certificate", write(tmp_path / "c.pem", pem(issued)),
              "--chain", write(tmp_path / "ch.pem", pem(ec_pki().intermediate, ec_pki().root)),
              "--key", write(tmp_path / "k.key", key_pem(issued.key), 0o400),
              "--service", "cloudfront", "--service", "nlb", "--json", keys=[issued.key])
    assert run.code == 0, run.text
    assert run.codes() == []


def test_sha1_signature(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sha1 = resign(seed_leaf().certificate, rsa_pki().intermediate.key, sha1=True)
    findings, _ = check(tmp_path, capsys, cert=pem(sha1), key=KEY,
                        code="sha1-signature", severity="warning", exit=0)
    codes = [f.code for f in findings]
    assert "chain-broken" not in codes and "chain-incomplete" not in codes, "a SHA-1 link is still a link"


def test_sha1_self_signed_root_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # public roots self-signed with SHA-1 are common: their self-signature does not matter
    pki = rsa_pki()
    root_sha1 = resign(pki.root.certificate, pki.root.key, sha1=True)
    run = cli(capsys, "verify", "--certificate", write(tmp_path / "c.pem", pem(seed_leaf())),
              "--chain", write(tmp_path / "ch.pem", pem(pki.intermediate) + pem(root_sha1)), "--json")
    assert run.code == 0, run.text
    assert run.codes() == []


def test_self_signed_leaf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    self_signed = issue("www.example.com", key=KEY, names=("www.example.com", "example.com"))
    findings, _ = check(tmp_path, capsys, cert=pem(self_signed), chain=None, key=KEY,
                        code="self-signed-leaf", severity="warning", exit=0)
    assert "chain-incomplete" not in [f.code for f in findings]


# ---------------------------------------------------------------- names

def _no_san(common_name: str) -> Issued:
    return issue(common_name, issuer=rsa_pki().intermediate, key=KEY, san=False)


@pytest.mark.parametrize("kind", ["email-only-san", "cn-not-a-host-name", "empty-subject"])
def test_no_domain_name(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if kind == "email-only-san":
        issued = issue("www.example.com", issuer=rsa_pki().intermediate, key=KEY, san=False, extensions=(
            (x509.SubjectAlternativeName([x509.RFC822Name("admin@example.com")]), False),))
    elif kind == "cn-not-a-host-name":
        issued = _no_san("My Company Inc")
    else:
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([]))
                .issuer_name(rsa_pki().intermediate.certificate.subject)
                .public_key(KEY.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(NOW - dt.timedelta(hours=1)).not_valid_after(NOW + dt.timedelta(days=90))
                .sign(rsa_pki().intermediate.key, hashes.SHA256()))
        issued = Issued(cert, KEY)
    check(tmp_path, capsys, cert=pem(issued), code="no-domain-name", severity="error", exit=1)


def _dns_leaf(*names: str) -> Issued:
    """A CA-signed leaf whose SAN holds ``names`` as DNS names, whatever they look like."""
    san = x509.SubjectAlternativeName([x509.DNSName(n) for n in names])
    return issue("www.example.com", issuer=rsa_pki().intermediate, key=KEY, san=False, extensions=((san, False),))


INJECTION = "www.example.com\ntouch /tmp/x #'"


@pytest.mark.parametrize("bad", [
    INJECTION, "foo bar.example.com", "bad_.example.com", "www.example.com.", "a..example.com",
    "*.*.example.com", "w*.example.com", "a" * 64 + ".example.com", "admin@example.com", "10.0.0.1",
    "www.example.com\x1b[2J",
])
def test_name_invalid(bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    issued = _dns_leaf("www.example.com", bad)
    findings, run = check(tmp_path, capsys, cert=pem(issued), code="name-invalid", severity="error", exit=1)
    (finding,) = [f for f in findings if f.code == "name-invalid"]
    assert repr(bad) in finding.message
    assert not any(c in str(finding) for c in "\x1b\r") and "\ntouch" not in str(finding)  # escaped, never raw
    (line,) = [line for line in run.out.splitlines() if "[name-invalid]" in line]
    assert repr(bad) in line


def test_names_in_other_findings_are_escaped(tmp_path: Path) -> None:
    material = assemble([load_file(write(tmp_path / "c.pem", pem(_dns_leaf(INJECTION)) + SEED_CHAIN))])
    (finding,) = [f for f in check_material(material, domains=["other.example.com"])
                  if f.code == "domain-not-covered"]
    assert "\ntouch" not in str(finding) and "com\\ntouch" in finding.message


def test_name_invalid_in_a_common_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    issued = issue(INJECTION, issuer=rsa_pki().intermediate, key=KEY, names=("www.example.com",))
    findings, run = check(tmp_path, capsys, cert=pem(issued), code="name-invalid", severity="error", exit=1)
    assert [f.message for f in findings if f.code == "name-invalid"] == [
        f"the Common Name {INJECTION!r} is not a valid host name: the label \"com\\ntouch /tmp/x #'\" holds "
        "'\\n': only letters, digits and hyphens are allowed"]
    assert "CN=www.example.com\\ntouch" in run.out  # the subject, escaped wherever it is shown


def test_name_invalid_in_a_common_name_without_san(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check(tmp_path, capsys, cert=pem(_no_san(" www.example.com")), code="name-invalid", severity="error", exit=1)


def test_certificate_bundle_refuses_an_invalid_name_naming_the_file(tmp_path: Path) -> None:
    from certfleet.certificate_bundle import CertificateBundle, CertificateBundleError

    path = write(tmp_path / "evil.pem", pem(_dns_leaf("www.example.com", INJECTION)) + SEED_CHAIN)
    with pytest.raises(CertificateBundleError) as caught:
        CertificateBundle.from_files(path)
    text = str(caught.value)
    assert path in text and "[name-invalid]" in text and repr(INJECTION) in text
    assert "\ntouch" not in text


def test_certificate_bundle_names_hold_only_host_names() -> None:
    from certfleet.certificate_bundle import CertificateBundle

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "My Company Inc"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "www.example.com")])
    intermediate = rsa_pki().intermediate
    two_cns = (x509.CertificateBuilder().subject_name(subject).issuer_name(intermediate.certificate.subject)
               .public_key(KEY.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - dt.timedelta(hours=1)).not_valid_after(NOW + dt.timedelta(days=90))
               .sign(intermediate.key, hashes.SHA256()))
    bundle = CertificateBundle.from_pem(pem(two_cns).decode(), SEED_CHAIN.decode())
    assert bundle.names == ("www.example.com",)  # what reaches shell scripts and configs: host names only
    ips = CertificateBundle.from_pem(pem(leaf(("www.example.com", "192.0.2.7"))).decode(), SEED_CHAIN.decode())
    assert ips.names == ("www.example.com", "192.0.2.7")


def test_cn_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check(tmp_path, capsys, cert=pem(_no_san("www.example.com")), code="cn-only", severity="warning", exit=0)


def test_ocsp_url_too_long(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def with_ocsp(length: int) -> Issued:
        url = "http://ocsp.example.com/" + "a" * (length - len("http://ocsp.example.com/"))
        aia = x509.AuthorityInformationAccess([
            x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url))])
        return leaf(extensions=((aia, False),))

    findings, _ = check(tmp_path, capsys, cert=pem(with_ocsp(1001)),
                        code="ocsp-url-too-long", severity="error", exit=1)
    assert any("1001 characters" in f.message for f in findings)
    files = [load_file(write(tmp_path / "ok.pem", pem(with_ocsp(1000)) + SEED_CHAIN))]
    assert "ocsp-url-too-long" not in [f.code for f in check_material(assemble(files))]


# ---------------------------------------------------------------- ACM's size limits

def _bulk(size: int) -> tuple[x509.ExtensionType, bool]:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x00" * size), False


def test_certificate_too_large(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = leaf(extensions=(_bulk(25_000),))
    assert len(pem(big)) > MAX_CERTIFICATE_BYTES
    _, run = check(tmp_path, capsys, cert=pem(big), code="certificate-too-large", severity="error", exit=1)
    assert "32,768" in run.out
    under = leaf(extensions=(_bulk(20_000),))
    assert len(pem(under)) < MAX_CERTIFICATE_BYTES
    files = [load_file(write(tmp_path / "under.pem", pem(under) + SEED_CHAIN))]
    assert "certificate-too-large" not in [f.code for f in check_material(assemble(files))]


@functools.cache
def _huge_chain() -> DemoPKI:
    root = rsa_pki().root
    inter = issue("bulky Intermediate CA", issuer=root, key=rsa_key(2048, 12), ca=True,
                  extensions=(_bulk(1_600_000),))
    return DemoPKI(root, inter)


def test_chain_too_large(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki = _huge_chain()
    chain = pem(pki.intermediate, pki.root)
    assert len(chain) > MAX_CHAIN_BYTES
    issued = leaf(pki=pki)
    _, run = check(tmp_path, capsys, cert=pem(issued), chain=chain, code="chain-too-large", severity="error",
                   exit=1)
    assert "2,097,152" in run.out


# ---------------------------------------------------------------- domains and services

def test_domain_not_covered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, run = check(tmp_path, capsys, cert=pem(seed_leaf()), key=KEY, domains=["api.example.com"],
                   code="domain-not-covered", severity="error", exit=1)
    assert "api.example.com is not covered: the certificate is for www.example.com, example.com" in run.out


def test_service_refuses_imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, run = check(tmp_path, capsys, cert=pem(seed_leaf()), key=KEY, services=["apprunner"],
                   code="service-refuses-imported", severity="error", exit=1)
    assert "App Runner does not accept imported certificates" in run.out


@pytest.mark.parametrize(("key_name", "service"), [("ec-p384", "cloudfront"), ("rsa-4096", "nlb"),
                                                    ("ec-p384", "amplify"), ("ec-p521", "apigateway-edge")])
def test_service_key_refused(key_name: str, service: str, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    if key_name == "rsa-4096":
        issued, chain = leaf(key=rsa_key(4096)), SEED_CHAIN
    else:
        issued = leaf(pki=ec_pki(), key=ec_key(key_name[3:]))
        chain = pem(ec_pki().intermediate, ec_pki().root)
    findings, run = check(tmp_path, capsys, cert=pem(issued), chain=chain, key=issued.key,
                          services=[service, "alb"], code="service-key-refused", severity="error", exit=1)
    refused = [f for f in findings if f.code == "service-key-refused"]
    assert [f.subject for f in refused] == [service], "ALB takes every ACM key"
    assert re.search(rf"^\s+{service}\s+NO\s", run.out, re.MULTILINE)


def test_service_key_unverified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    issued = leaf(pki=ec_pki(), key=ec_key("p256"))
    _, run = check(tmp_path, capsys, cert=pem(issued), chain=pem(ec_pki().intermediate, ec_pki().root),
                   key=issued.key, services=["apigateway-regional"],
                   code="service-key-unverified", severity="warning", exit=0)
    assert "may be refused at deploy time" in run.out


def test_unknown_service_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "verify", "--certificate", write(tmp_path / "c.pem", pem(seed_leaf())),
              "--service", "lightsail")
    assert run.code == 2
    assert "unknown service 'lightsail'" in run.err and "cloudfront" in run.err


# ---------------------------------------------------------------- the key file

def test_key_encrypted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, run = check(tmp_path, capsys, cert=pem(seed_leaf()), key=KEY, key_data=key_pem(KEY, "pkcs8", b"pw"),
                   code="key-encrypted", severity="error", exit=1)
    assert "encrypted, not checked" in run.out


def test_key_file_permissions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, run = check(tmp_path, capsys, cert=pem(seed_leaf()), key=KEY, key_mode=0o644,
                   code="key-file-permissions", severity="warning", exit=0)
    assert "chmod 400" in run.out
    (tmp_path / "private.key").chmod(0o400)
    run = cli(capsys, "verify", "--certificate", str(tmp_path / "certificate.pem"), "--chain",
              str(tmp_path / "chain.pem"), "--key", str(tmp_path / "private.key"), "--json", keys=[KEY])
    assert run.code == 0
    assert run.codes() == []


def test_key_file_permissions_in_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "private.key", key_pem(KEY), 0o640)
    run = cli(capsys, "inspect", path, "--json", keys=[KEY])
    assert run.code == 0
    assert run.codes() == ["key-file-permissions"]


def test_key_file_tracked_by_git(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    key_path = write(repo / "private.key", key_pem(KEY), 0o400)
    subprocess.run(["git", "-C", str(repo), "add", "private.key"], check=True)
    files = [load_file(key_path)]
    (finding,) = check_files(files)
    assert finding.code == "key-file-tracked-by-git"
    assert finding.severity.value == "warning"
    cert = write(repo / "certificate.pem", pem(seed_leaf()) + SEED_CHAIN)
    run = cli(capsys, "verify", "--certificate", cert, "--key", key_path, "--json", keys=[KEY])
    assert run.code == 0
    assert run.codes() == ["key-file-tracked-by-git"]
    run = cli(capsys, "verify", "--certificate", cert, "--key", key_path, keys=[KEY])
    assert "warning [key-file-tracked-by-git]" in run.out
    assert "certfleet seal" in run.out
    run = cli(capsys, "inspect", key_path, "--json", keys=[KEY])
    assert run.codes() == ["key-file-tracked-by-git"]
    untracked = write(repo / "other.key", key_pem(KEY), 0o400)
    assert check_files([load_file(untracked)]) == []


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   check=True, capture_output=True)


def test_tracked_by_git_runs_nothing_the_repository_configures(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    # a repository someone prepared: `git ls-files` in it would run core.fsmonitor
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    key_path = write(repo / "private.key", key_pem(KEY), 0o400)
    _git(repo, "add", "private.key")
    marker = tmp_path / "fsmonitor-ran"
    _git(repo, "config", "core.fsmonitor", f"sh -c 'touch {marker}'")
    assert tracked_by_git(key_path)
    run = cli(capsys, "inspect", key_path, "--json", keys=[KEY])
    assert run.codes() == ["key-file-tracked-by-git"]
    assert not marker.exists()


@pytest.mark.parametrize("layout", ["v2", "v3", "v4", "split", "sha256", "worktree", "sparse"])
def test_tracked_by_git_reads_every_index_layout(layout: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "certs" / "old").mkdir(parents=True)
    (repo / "other").mkdir()
    _git(repo, "init", "-q", *(["--object-format=sha256"] if layout == "sha256" else []))
    tracked = ["certs/private.key", "certs/private.key.sealed", "certs/old/private.key", "other/x.txt", "top.key"]
    untracked = ["certs/private.ke", "certs/old/new.key", "untracked.key"]
    for name in tracked + untracked:
        (repo / name).write_text(name)
    _git(repo, "add", *tracked)
    if layout == "v3":
        (repo / "later.key").write_text("x")
        _git(repo, "add", "-N", "later.key")  # intent-to-add: an extended flag, so version 3
        tracked.append("later.key")
    if layout in ("v4", "split"):
        _git(repo, "update-index", "--index-version", "4" if layout == "v4" else "2")
    if layout == "split":
        _git(repo, "update-index", "--split-index")
        (repo / "after-split.key").write_text("x")
        _git(repo, "add", "after-split.key")
        tracked.append("after-split.key")
    if layout in ("worktree", "sparse"):
        _git(repo, "commit", "-q", "-m", "files")
    if layout == "worktree":
        _git(repo, "worktree", "add", "-q", str(tmp_path / "wt"))
        repo = tmp_path / "wt"
        for name in untracked:
            (repo / name).write_text(name)
    if layout == "sparse":
        _git(repo, "sparse-checkout", "set", "--cone", "--sparse-index", "other")
        tracked = ["other/x.txt", "top.key"]  # certs/ is one "certs/" entry now: its files are not on disk
    if layout == "v3":
        assert (repo / ".git" / "index").read_bytes()[4:8] == b"\0\0\0\3"
    if layout == "v4":
        assert (repo / ".git" / "index").read_bytes()[4:8] == b"\0\0\0\4"
    assert [n for n in tracked if not tracked_by_git(str(repo / n))] == []
    assert [n for n in untracked if tracked_by_git(str(repo / n))] == []


# ---------------------------------------------------------------- bundle contents

def test_unrelated_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    findings, run = check(tmp_path, capsys, cert=pem(seed_leaf()),
                          chain=SEED_CHAIN + pem(other_pki().intermediate),
                          code="unrelated-certificate", severity="warning", exit=0)
    assert [f.subject for f in findings if f.code == "unrelated-certificate"] == [
        "CN=other Intermediate CA,O=certfleet demo"]
    assert "changed: left out CN=other Intermediate CA" in run.out


def test_no_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_path = write(tmp_path / "private.key", key_pem(KEY), 0o400)
    run = cli(capsys, "verify", "--certificate", key_path, keys=[KEY])
    assert run.code == 1
    assert "[no-certificate]" in run.err
    run = cli(capsys, "convert", key_path, "--out", str(tmp_path / "out"), keys=[KEY])
    assert run.code == 1
    assert "[no-certificate]" in run.err


def test_seed_case_is_clean_for_cloudfront_and_alb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "verify", "--certificate", write(tmp_path / "c.pem", pem(seed_leaf())),
              "--chain", write(tmp_path / "ch.pem", SEED_CHAIN),
              "--key", write(tmp_path / "k.key", key_pem(KEY), 0o400),
              "--service", "cloudfront", "--service", "alb", "--domain", "www.example.com", "--json", keys=[KEY])
    assert run.code == 0, run.text
    assert run.codes() == []
    assert [(s["service"], s["ok"]) for s in run.json()["services"]] == [("cloudfront", True), ("alb", True)]


# ---------------------------------------------------------------- every code has a test

_MATERIAL = ROOT / "constructs" / "certfleet" / "material"
_SOURCES = [*sorted(f"material/{p.name}" for p in _MATERIAL.glob("*.py")), "cli/material_commands.py"]


def test_every_finding_code_in_the_source_is_tested() -> None:
    package = ROOT / "constructs" / "certfleet"
    source = "\n".join((package / name).read_text() for name in _SOURCES)
    codes = set(re.findall(r'(?:error|warning|make)\(\s*"([a-z0-9-]+)"', source))
    codes |= set(re.findall(r'\(\s*"([a-z0-9]+(?:-[a-z0-9]+)+)",\s*(?:cert|key|chain),', source))  # _sizes
    assert {"key-mismatch", "certificate-too-large", "key-too-large", "chain-too-large"} <= codes
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").glob("*/test_*.py"))
    untested = sorted(c for c in codes if f'"{c}"' not in tests and f"[{c}]" not in tests)
    assert untested == []



# ---------------------------------------------------------------- one Finding shape


def test_material_and_template_findings_have_one_shape() -> None:
    """A material finding and a template-check finding with the same fields print and serialize alike (verify
    --json's schema), so material.findings can re-export certfleet.checks.finding without any output changing."""
    import json
    from dataclasses import fields

    from certfleet.checks.finding import Finding as One
    from certfleet.checks.finding import Severity as OneSeverity
    from certfleet.checks.finding import Site
    from certfleet.material.findings import Finding as Material
    from certfleet.material.findings import Severity

    material_fields = [f.name for f in fields(Material)]
    assert material_fields == [f.name for f in fields(One)][: len(material_fields)]
    for severity in ("error", "warning"):
        material = Material("expired", Severity(severity), "the certificate expired", "renew it", "www.example.com")
        one = One("expired", OneSeverity(severity), "the certificate expired", "renew it", "www.example.com")
        assert (one.to_dict(), str(one), one.is_error) == (material.to_dict(), str(material), material.is_error)
    schema = json.loads((ROOT / "schemas" / "verify.v1.json").read_text())["$defs"]["finding"]
    assert set(One("x", OneSeverity.ERROR, "m").to_dict()) == set(schema["required"]) == set(schema["properties"])
    located = One("wrong-region", OneSeverity.ERROR, "m", site=Site("Web", "Dist", "Web/Dist", "/t.json", "P/A"))
    assert located.to_dict()["location"] == "P/A"


def test_an_ed448_leaf_signed_by_an_ed448_ca_is_no_ca_algorithm_mismatch() -> None:
    """The CA's family is read from public OIDs: Ed448 signed by Ed448 matches (only ACM's key refusal remains)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed448

    from certfleet.material import load_bytes

    ca, key = ed448.Ed448PrivateKey.generate(), ed448.Ed448PrivateKey.generate()
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.com")]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ed448 CA")]))
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("www.example.com")]), critical=False)
            .sign(ca, None))
    found = check_material(assemble([load_bytes(cert.public_bytes(serialization.Encoding.PEM), "cert.pem")]))
    codes = [f.code for f in found]
    assert "key-algorithm-unsupported" in codes
    assert "ca-algorithm-mismatch" not in codes


@pytest.mark.parametrize("content", [b"\xff\xfe not utf-8", b"not json", b'{"format": "something else"}'])
def test_a_broken_sealed_file_is_sealed_file_invalid(tmp_path: Path, content: bytes) -> None:
    from certfleet.material.findings import MaterialError
    from certfleet.material.sealed import SealedKey

    path = tmp_path / "key.sealed"
    path.write_bytes(content)
    with pytest.raises(MaterialError) as raised:
        SealedKey.from_file(path)
    assert raised.value.finding.code == "sealed-file-invalid"
    assert raised.value.finding.subject == str(path)
