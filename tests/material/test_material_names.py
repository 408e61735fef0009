"""Domain coverage (RFC 6125): wildcards, IDN, IP SANs, case and trailing dots; library and `verify --domain`."""

from __future__ import annotations

from pathlib import Path

import pytest
from material_support import cli, leaf, pem, seed_chain, write

from certfleet.material.names import covers, is_hostname, matches, name_problem, printable, to_a_label, to_u_label

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


@pytest.mark.parametrize("name", [
    "www.example.com", "example.com", "*.example.com", "EXAMPLE.COM", "xn--bcher-kva.example",
    "a-b.example.com", "1.example.com", "a" * 63 + ".example.com", ".".join(["a" * 63] * 3) + "." + "b" * 61,
])
def test_name_problem_accepts_dns_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(("name", "reason"), [
    ("", "empty"),
    ("www.example.com\ntouch /tmp/x #'", "'\\n'"),
    ("foo bar.example.com", "' '"),
    ("bad_.example.com", "'_'"),
    ("www.example.com.", "ends with a dot"),
    ("a..example.com", "empty label"),
    (".example.com", "empty label"),
    ("a" * 64 + ".example.com", "at most 63"),
    (".".join(["a" * 63] * 4), "at most 253"),
    ("-a.example.com", "hyphen"),
    ("*.*.example.com", "leftmost"),
    ("w*.example.com", "leftmost"),
    ("*.com", "at least two labels"),
    ("admin@example.com", "email"),
    ("10.0.0.1", "IP SAN"),
    ("2001:db8::1", "IP SAN"),
    ("1.2.3.4.5", "all digits"),
    ("bücher.example", "A-labels"),
    ("xn--a!.example.com", "'!'"),
    ("www.example.com\x1b[31m", "'\\x1b'"),
    ("a.example.com\u202e", "non-ASCII"),
])
def test_name_problem_names_the_reason(name: str, reason: str) -> None:
    problem = name_problem(name)
    assert problem is not None and reason in problem
    assert not any(c in problem for c in "\n\r\x1b")


def test_name_problem_allows_an_ip_only_when_asked() -> None:
    assert name_problem("192.0.2.1", allow_ip=True) is None
    assert name_problem("2001:db8::1", allow_ip=True) is None


def test_printable_escapes_and_cuts() -> None:
    assert printable("a\nb") == "'a\\nb'"
    shown = printable("x" * 500)
    assert len(shown) < 120 and "500 characters" in shown


@pytest.mark.parametrize(("name", "a_label"), [
    ("bücher.example", "xn--bcher-kva.example"),
    ("BÜCHER.example", "xn--bcher-kva.example"),
    ("*.bücher.example", "*.xn--bcher-kva.example"),
    ("www.example.com", "www.example.com"),
])
def test_to_a_label(name: str, a_label: str) -> None:
    assert to_a_label(name) == a_label
    assert name_problem(to_a_label(name)) is None


def test_to_a_label_refuses_what_idna_2003_and_2008_disagree_on() -> None:
    with pytest.raises(ValueError, match="IDNA 2003 and IDNA 2008"):
        to_a_label("straße.example")


def test_to_u_label_shows_the_unicode_form() -> None:
    assert to_u_label("www.xn--bcher-kva.example") == "www.bücher.example"
    assert to_u_label("xn--a!.example") == "xn--a!.example"
