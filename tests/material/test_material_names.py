"""Domain coverage (RFC 6125): wildcards, IDN, IP SANs, case and trailing dots; library and `verify --domain`."""

from __future__ import annotations

from pathlib import Path

import pytest
from certkit import cli, leaf, pem, seed_chain, write

from certfleet.material.names import covers, is_hostname, matches

WILDCARD = ("*.example.com",)


@pytest.mark.parametrize(("pattern", "name", "expected"), [
    ("*.example.com", "a.example.com", True),
    ("*.example.com", "www.example.com", True),
    ("*.example.com", "example.com", False),  # a wildcard never covers its parent
    ("*.example.com", "a.b.example.com", False),  # one label only
    ("*.example.com", ".example.com", False),
    ("*.example.com", "*.example.com", True),  # the wildcard name itself (a CloudFront alias)
    ("*.example.com", "A.EXAMPLE.COM", True),
    ("*.EXAMPLE.com", "a.example.com.", True),
    ("*.com", "example.com", False),  # no wildcard over a public suffix-like single label
    ("www.example.com", "WWW.Example.COM", True),
    ("www.example.com", "www.example.com.", True),
    ("www.example.com.", "www.example.com", True),
    ("www.example.com", "example.com", False),
    ("www.example.com", "www.example.co", False),
    ("w*.example.com", "www.example.com", False),  # partial wildcards: not honoured
    ("xn--bcher-kva.example", "bücher.example", True),  # IDN: the U-label is matched by its A-label
    ("xn--bcher-kva.example", "BÜCHER.example", True),
    ("*.xn--bcher-kva.example", "shop.bücher.example", True),
    ("xn--bcher-kva.example", "bucher.example", False),
    ("", "example.com", False),
])
def test_matches(pattern: str, name: str, expected: bool) -> None:
    assert matches(pattern, name) is expected


@pytest.mark.parametrize(("name", "expected"), [
    ("192.0.2.10", True),
    (" 192.0.2.10 ", True),
    ("192.0.2.11", False),
    ("2001:db8::1", True),
    ("2001:DB8:0:0::1", True),
    ("2001:db8::2", False),
    ("ip.example.com", True),
    ("www.example.com", False),
])
def test_covers_ip_sans(name: str, expected: bool) -> None:
    cert = leaf(("ip.example.com", "192.0.2.10", "2001:db8::1")).certificate
    assert covers(cert, name) is expected


def test_dns_name_equal_to_an_ip_string_does_not_cover_the_ip() -> None:
    cert = leaf(("host.example.com",)).certificate
    assert not covers(cert, "10.0.0.1")


@pytest.mark.parametrize(("name", "expected"), [
    ("www.example.com", True), ("*.example.com", True), ("example.com.", True), ("10.0.0.1", True),
    ("::1", True), ("bücher.example", True),
    ("My Company Inc", False), ("localhost", False), ("-bad.example.com", False), ("a_b.example.com", False),
    ("", False),
])
def test_is_hostname(name: str, expected: bool) -> None:
    assert is_hostname(name) is expected


@pytest.mark.parametrize(("domain", "covered"), [
    ("a.example.com", True),
    ("WWW.EXAMPLE.COM.", True),
    ("*.example.com", True),
    ("example.com", False),
    ("a.b.example.com", False),
])
def test_verify_domain_with_a_wildcard_certificate(domain: str, covered: bool, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cert = write(tmp_path / "wild.pem", pem(leaf(WILDCARD)))
    chain = write(tmp_path / "chain.pem", seed_chain())
    run = cli(capsys, "verify", "--certificate", cert, "--chain", chain, "--domain", domain, "--json")
    assert run.code == (0 if covered else 1), run.text
    assert ("domain-not-covered" in run.codes()) is not covered
    if not covered:
        text = cli(capsys, "verify", "--certificate", cert, "--chain", chain, "--domain", domain)
        assert f"error [domain-not-covered] CN=*.example.com,O=certfleet demo: {domain} is not covered" in text.out
        assert "a wildcard covers one label only" in text.out


def test_verify_several_domains_reports_each_uncovered_one(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    cert = write(tmp_path / "c.pem", pem(leaf(("www.example.com", "example.com", "10.1.2.3"))) + seed_chain())
    run = cli(capsys, "verify", "--certificate", cert, "--domain", "www.example.com", "--domain", "10.1.2.3",
              "--domain", "api.example.com", "--domain", "10.1.2.4", "--json")
    assert run.code == 1
    messages = [f["message"] for f in run.json()["findings"] if f["code"] == "domain-not-covered"]
    assert [m.split()[0] for m in messages] == ["api.example.com", "10.1.2.4"]
