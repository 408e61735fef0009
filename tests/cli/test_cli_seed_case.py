"""The seed's acceptance case, through the installed `certfleet` command in a subprocess.

leaf + intermediate + root + key, RSA 2048, SANs www.example.com and example.com.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from material_support import assert_clean, key_pem, pem, rsa_key, rsa_pki, seed_leaf, write

CERTFLEET = str(Path(sys.executable).parent / "certfleet")
KEY = rsa_key(2048, 0)


@pytest.fixture
def seed_files(tmp_path: Path) -> list[str]:
    pki = rsa_pki()
    write(tmp_path / "root.pem", pem(pki.root))
    return [
        "--certificate", write(tmp_path / "certificate.pem", pem(seed_leaf())),
        "--chain", write(tmp_path / "chain.pem", pem(pki.intermediate, pki.root)),
        "--key", write(tmp_path / "private.key", key_pem(KEY), 0o400),
    ]


def _certfleet(*argv: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([CERTFLEET, *argv], capture_output=True, text=True, check=False, timeout=60)
    assert_clean(result.stdout + result.stderr, [KEY])
    return result


def test_cloudfront_and_alb_for_www_pass(seed_files: list[str]) -> None:
    result = _certfleet("verify", *seed_files, "--service", "cloudfront", "--service", "alb",
                        "--domain", "www.example.com")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "result: ok (0 error(s), 0 warning(s))" in result.stdout
    assert "matches the certificate" in result.stdout
    assert "import into us-east-1" in result.stdout  # CloudFront's placement is said plainly


def test_api_domain_fails_with_a_clear_message(seed_files: list[str]) -> None:
    result = _certfleet("verify", *seed_files, "--service", "cloudfront", "--service", "alb",
                        "--domain", "api.example.com")
    assert result.returncode == 1
    assert ("error [domain-not-covered] CN=www.example.com,O=certfleet demo: api.example.com is not covered: "
            "the certificate is for www.example.com, example.com") in result.stdout
    assert "ask the CA for a certificate that lists api.example.com" in result.stdout
    assert "result: FAILED (1 error(s)" in result.stdout


def test_app_runner_fails_with_the_app_runner_sentence(seed_files: list[str]) -> None:
    result = _certfleet("verify", *seed_files, "--service", "apprunner", "--domain", "www.example.com")
    assert result.returncode == 1
    assert "error [service-refuses-imported] apprunner: App Runner does not accept imported certificates" \
        in result.stdout
    assert "result: FAILED" in result.stdout


def test_seed_case_json(seed_files: list[str]) -> None:
    import json

    result = _certfleet("verify", *seed_files, "--service", "cloudfront", "--service", "alb",
                        "--domain", "www.example.com", "--json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["certificate"]["names"] == ["www.example.com", "example.com"]
    assert data["certificate"]["key_algorithm"] == "RSA_2048"
    assert [c["subject"] for c in data["chain"]] == ["CN=test Intermediate CA,O=certfleet demo",
                                                     "CN=test Root CA,O=certfleet demo"]
    assert data["findings"] == []


def test_inspect_garbage_in_a_subprocess(tmp_path: Path) -> None:
    path = write(tmp_path / "download.crt", b"<html><body>502 Bad Gateway</body></html>\n")
    result = _certfleet("inspect", path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "not a certificate or key in any format certfleet knows" in result.stderr


def test_an_ascii_console_gets_text_not_a_crash(tmp_path: Path) -> None:
    import os

    pki = rsa_pki()
    jumbled = write(tmp_path / "all.pem", pem(pki.root, seed_leaf(), pki.intermediate))
    result = subprocess.run([CERTFLEET, "verify", "--certificate", jumbled], capture_output=True, check=False,
                            env={**os.environ, "PYTHONIOENCODING": "ascii"}, timeout=60)
    text = result.stdout.decode("ascii") + result.stderr.decode("ascii")
    assert result.returncode == 0, text
    assert "CN=test Intermediate CA,O=certfleet demo -> CN=test Root CA" in text
    assert "changed: reordered the chain leaf -> root" in text
    assert_clean(text)
