"""`certfleet probe` against TLS servers the tests start on 127.0.0.1, serving certificates made at test time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from material_support import cli
from ops_support import TLSServer, deadline, silent_listener

from certfleet.cli.probe import parse_target, target
from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import free_port

NAMES = ("www.example.com", "example.com")


@pytest.fixture(scope="module")
def pki() -> DemoPKI:
    return DemoPKI.create("ec-p256", "probe")


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def current(pki: DemoPKI, key: ec.EllipticCurvePrivateKey) -> Issued:
    """What the server serves today: 20 days left."""
    return pki.leaf(NAMES, key=key, days=20)


@pytest.fixture(scope="module")
def renewed(pki: DemoPKI, key: ec.EllipticCurvePrivateKey) -> Issued:
    """The renewal, same key (as a re-import into the same ACM ARN): 90 days."""
    return pki.leaf(NAMES, key=key, days=90)


@pytest.fixture
def files(tmp_path: Path, pki: DemoPKI, current: Issued, renewed: Issued) -> dict[str, str]:
    paths = {"root": pki.root.pem(), "chain": pki.chain_pem(), "current": current.pem(), "renewed": renewed.pem()}
    for name, data in paths.items():
        (tmp_path / f"{name}.pem").write_bytes(data)
    return {name: str(tmp_path / f"{name}.pem") for name in paths}


@pytest.fixture
def server(current: Issued, pki: DemoPKI) -> Iterator[TLSServer]:
    with TLSServer(current, [pki.intermediate]) as running:
        yield running


def _codes(data: dict[str, object]) -> set[str]:
    return {f["code"] for f in data["findings"]}  # type: ignore[index,union-attr]


def test_a_good_server(server: TLSServer, files: dict[str, str], current: Issued,
                       capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "probe", server.target, "--servername", "www.example.com", "--ca-file", files["root"], "--json")
    assert run.code == 0, run.text
    data = run.json()
    assert data["ok"] is True and data["name_match"] is True
    assert data["protocol"] in ("TLSv1.2", "TLSv1.3") and data["cipher"]["bits"] >= 128
    assert data["target"] == {"host": "127.0.0.1", "port": server.port, "servername": "www.example.com",
                              "address": "127.0.0.1"}
    assert data["chain_source"] == "served" and data["depth"] == 2
    assert [c["subject"] for c in data["chain"]] == ["CN=www.example.com,O=certfleet demo",
                                                     "CN=probe Intermediate CA,O=certfleet demo"]
    assert data["validation"] == {"ok": True, "against": files["root"], "error": None,
                                  "trusted_root": "CN=probe Root CA,O=certfleet demo"}
    assert data["leaf"]["days_left"] == 19 and data["leaf"]["names"] == list(NAMES)
    assert _codes(data) == {"leaf-expires-soon"}  # a warning: 19 days < --warn-days 30
    text = cli(capsys, "probe", server.target, "--servername", "www.example.com", "--ca-file", files["root"])
    assert text.code == 0
    assert "name match   yes, for www.example.com" in text.out
    assert "served chain: 2 certificate(s)" in text.out
    assert "result: ok (0 error(s), 1 warning(s))" in text.out
    quiet = cli(capsys, "probe", server.target, "--servername", "example.com", "--ca-file", files["root"],
                "--warn-days", "7")
    assert quiet.code == 0 and "result: ok (0 error(s), 0 warning(s))" in quiet.out


def test_renewal_live(files: dict[str, str], renewed: Issued, pki: DemoPKI,
                      capsys: pytest.CaptureFixture[str]) -> None:
    with TLSServer(renewed, [pki.intermediate]) as server:
        run = cli(capsys, "probe", server.target, "--servername", "www.example.com", "--ca-file", files["root"],
                  "--certificate", files["renewed"], "--chain", files["chain"], "--json")
    assert run.code == 0, run.text
    expected = run.json()["expected"]
    assert expected["live"] is True and expected["sha256"] == expected["served_sha256"]
    assert expected["chain_missing"] == []


def test_renewal_not_live_yet_exits_1(server: TLSServer, files: dict[str, str],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "probe", server.target, "--servername", "www.example.com", "--ca-file", files["root"],
              "--certificate", files["renewed"])
    assert run.code == 1
    assert "certificate  NO: not yet serving" in run.out
    assert "error [not-the-certificate] www.example.com still serves an older certificate" in run.out
    assert "CloudFront can take up to 24 hours" in run.out
    data = cli(capsys, "probe", server.target, "--servername", "www.example.com", "--ca-file", files["root"],
               "--certificate", files["renewed"], "--json").json()
    assert data["expected"]["live"] is False and _codes(data) == {"leaf-expires-soon", "not-the-certificate"}


def test_served_chain_lacks_the_given_intermediate(
    pki: DemoPKI, renewed: Issued, files: dict[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    with TLSServer(renewed) as server:  # leaf alone
        run = cli(capsys, "probe", server.target, "--servername", "www.example.com", "--ca-file", files["root"],
                  "--certificate", files["renewed"], "--chain", files["chain"], "--json")
    assert run.code == 1  # a client with only the root cannot build the path
    data = run.json()
    assert data["depth"] == 1 and data["expected"]["live"] is True
    assert {"untrusted", "chain-missing", "chain-differs"} <= _codes(data)
    assert data["expected"]["chain_missing"] == ["CN=probe Intermediate CA,O=certfleet demo"]
    untrusted = next(f for f in data["findings"] if f["code"] == "untrusted")
    assert "serve the intermediate certificates" in untrusted["fix"]


def test_name_mismatch_and_sni(pki: DemoPKI, current: Issued, files: dict[str, str],
                               capsys: pytest.CaptureFixture[str]) -> None:
    api = pki.leaf(("api.example.com",), days=60)
    with TLSServer(current, [pki.intermediate], sni={"api.example.com": (api, [pki.intermediate])}) as server:
        wrong = cli(capsys, "probe", server.target, "--servername", "shop.example.com", "--ca-file", files["root"],
                    "--json")
        right = cli(capsys, "probe", server.target, "--servername", "api.example.com", "--ca-file", files["root"],
                    "--json")
    assert wrong.code == 1
    assert wrong.json()["name_match"] is False and "name-mismatch" in _codes(wrong.json())
    mismatch = next(f for f in wrong.json()["findings"] if f["code"] == "name-mismatch")
    assert "does not cover shop.example.com (it covers www.example.com, example.com)" in mismatch["message"]
    assert right.code == 0, right.text  # SNI chose the api certificate
    assert right.json()["leaf"]["names"] == ["api.example.com"]
    assert server.seen_names == ["shop.example.com", "api.example.com"]


def test_wildcard_covers_one_label(pki: DemoPKI, files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    wildcard = pki.leaf(("*.example.com",), days=60)
    with TLSServer(wildcard, [pki.intermediate]) as server:
        one = cli(capsys, "probe", server.target, "--servername", "shop.example.com", "--ca-file", files["root"])
        two = cli(capsys, "probe", server.target, "--servername", "a.shop.example.com", "--ca-file", files["root"])
    assert one.code == 0, one.text
    assert two.code == 1 and "[name-mismatch]" in two.out


def test_untrusted_without_the_ca_file(server: TLSServer, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "probe", server.target, "--servername", "www.example.com", "--json")
    assert run.code == 1
    data = run.json()
    assert data["validation"]["ok"] is False and data["validation"]["against"] == "system"
    assert "unable to get local issuer certificate" in data["validation"]["error"]
    assert data["depth"] == 2  # the chain is still shown
    untrusted = next(f for f in data["findings"] if f["code"] == "untrusted")
    assert "--ca-file" in untrusted["fix"]


def test_chain_depth_and_order(pki: DemoPKI, current: Issued, files: dict[str, str],
                               capsys: pytest.CaptureFixture[str]) -> None:
    with TLSServer(current, [pki.intermediate, pki.root]) as full:
        run = cli(capsys, "probe", full.target, "--servername", "www.example.com", "--ca-file", files["root"],
                  "--json")
    assert run.code == 0
    assert run.json()["depth"] == 3 and run.json()["chain"][2]["subject"] == "CN=probe Root CA,O=certfleet demo"
    with TLSServer(current, [pki.root, pki.intermediate]) as shuffled:
        run = cli(capsys, "probe", shuffled.target, "--servername", "www.example.com", "--ca-file", files["root"],
                  "--json")
    assert "chain-order" in _codes(run.json())


def test_expired_leaf(pki: DemoPKI, files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    now = dt.datetime.now(dt.UTC)
    expired = pki.leaf(NAMES, not_before=now - dt.timedelta(days=100), days=90)
    with TLSServer(expired, [pki.intermediate]) as server:
        run = cli(capsys, "probe", server.target, "--servername", "www.example.com", "--ca-file", files["root"],
                  "--json")
    assert run.code == 1
    data = run.json()
    assert data["leaf"]["days_left"] < 0
    assert {"leaf-expired", "untrusted"} <= _codes(data)
    assert "certificate has expired" in data["validation"]["error"]
    untrusted = next(f for f in data["findings"] if f["code"] == "untrusted")
    assert untrusted["fix"] == "serve a certificate (and chain) that is valid today"


def test_connection_refused(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    run = cli(capsys, "probe", f"127.0.0.1:{port}")
    assert run.code == 1
    assert run.err.strip().splitlines()[0] == f"certfleet: error [connection-refused] 127.0.0.1:{port} refused the " \
        "connection"
    assert "fix: check the host and port" in run.err and run.out == ""


def test_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    """A server that never answers ends the probe at --timeout (its wall time: bench/probe_timeout.py); a probe that
    ignores --timeout fails the test at a hard deadline instead of hanging."""
    with silent_listener() as port, deadline(10):
        run = cli(capsys, "probe", f"127.0.0.1:{port}", "--timeout", "0.5")
    assert run.code == 1
    assert f"no TLS answer from 127.0.0.1:{port} within 0.5 s" in run.err


def test_not_tls(capsys: pytest.CaptureFixture[str]) -> None:
    import http.server
    import threading

    httpd = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=httpd.handle_request, daemon=True)
    thread.start()
    try:
        run = cli(capsys, "probe", f"127.0.0.1:{httpd.server_address[1]}", "--timeout", "5")
    finally:
        httpd.server_close()
    assert run.code == 1
    assert "[not-tls]" in run.err and "did not answer in TLS" in run.err and "speaks TLS" in run.err


def test_unknown_host(capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "probe", "no-such-host.invalid", "--timeout", "5")
    assert run.code == 1
    assert "cannot resolve no-such-host.invalid" in run.err


def test_bad_files(server: TLSServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    run = cli(capsys, "probe", server.target, "--ca-file", str(tmp_path / "missing.pem"))
    assert run.code == 1 and "cannot use --ca-file" in run.err
    run = cli(capsys, "probe", server.target, "--certificate", str(tmp_path / "junk.pem"))
    assert run.code == 1 and run.err.startswith("certfleet: ")


# ------------------------------------------------------------------------------- names, messages (issue 10, 18)
def test_common_name_without_san_is_not_a_name_match(pki: DemoPKI, files: dict[str, str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cn_only = pki.leaf(("www.example.com",), days=60, san=False)
    with TLSServer(cn_only, [pki.intermediate]) as server:
        run = cli(capsys, "probe", server.target, "--servername", "www.example.com", "--ca-file", files["root"],
                  "--json")
        text = cli(capsys, "probe", server.target, "--servername", "www.example.com", "--ca-file", files["root"])
    assert run.code == 1, run.text  # browsers ignore the Common Name; verify itself says cn-only
    data = run.json()
    assert data["name_match"] is False
    mismatch = next(f for f in data["findings"] if f["code"] == "name-mismatch")
    assert "no subjectAltName" in mismatch["message"] and "Common Name" in mismatch["message"]
    assert "name match   NO, for www.example.com" in text.out


@pytest.mark.parametrize("argv", [
    ["127.0.0.1:9", "--servername", ".example.com"],
    ["127.0.0.1:9", "--servername", "a" * 64 + ".example.com"],
    ["127.0.0.1:9", "--servername", "www..example.com"],
    ["127.0.0.1:9", "--servername", "*.example.com"],
    [".example.com:443"],
    ["b" * 64 + ".example.com"],
])
def test_bad_names_are_usage_errors_before_connecting(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "probe", *argv, "--timeout", "1")  # cli() also asserts "This is a bug" is not printed
    assert run.code == 2, run.text
    assert "usage: certfleet probe" in run.err
    assert "is not a host name" in run.err or "is a wildcard" in run.err


@pytest.mark.parametrize(("value", "expected"), [
    ("WWW.Example.com.", ("WWW.Example.com", 443)),  # the root's dot dropped
    ("bücher.example:8443", ("xn--bcher-kva.example", 8443)),
    ("my_service:9443", ("my_service", 9443)),  # a container's name: DNS records may hold underscores
    ("[::1]:9448", ("::1", 9448)),
])
def test_target_names_are_normalized(value: str, expected: tuple[str, int]) -> None:
    assert target(value) == expected


def test_unicode_servername_is_sent_as_its_a_label(pki: DemoPKI, current: Issued, files: dict[str, str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    idn = pki.leaf(("xn--bcher-kva.example",), days=60)
    with TLSServer(current, [pki.intermediate], sni={"xn--bcher-kva.example": (idn, [pki.intermediate])}) as server:
        run = cli(capsys, "probe", server.target, "--servername", "bücher.example", "--ca-file", files["root"],
                  "--json")
        assert server.seen_names == ["xn--bcher-kva.example"]
    assert run.code == 0, run.text
    assert run.json()["name_match"] is True


@pytest.mark.parametrize("tls13", [False, True])
def test_a_server_that_requires_a_client_certificate_is_named_as_such(
    tls13: bool, pki: DemoPKI, current: Issued, files: dict[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    with TLSServer(current, [pki.intermediate]) as server:
        server.require_client_certificate(pki.root, tls13=tls13)
        run = cli(capsys, "probe", server.target, "--servername", "www.example.com", "--ca-file", files["root"],
                  "--json")
    if not tls13:  # TLS 1.2: the server ends the handshake
        assert run.code == 1
        assert "[client-certificate-required]" in run.err and "mutual TLS" in run.err
        assert "speaks TLS" not in run.err
    else:  # TLS 1.3: the client's handshake completes before the server judges its (empty) certificate
        assert run.code == 0, run.text
        assert "client-certificate-requested" in _codes(run.json())


def test_an_unrelated_served_certificate_is_not_called_chain_order(
    pki: DemoPKI, current: Issued, files: dict[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    stranger = DemoPKI.create("ec-p256", "stranger")
    with TLSServer(current, [pki.intermediate, stranger.intermediate]) as server:
        run = cli(capsys, "probe", server.target, "--servername", "www.example.com", "--ca-file", files["root"],
                  "--json")
    assert run.code == 0, run.text
    codes = _codes(run.json())
    assert "chain-extra" in codes and "chain-order" not in codes
    extra = next(f for f in run.json()["findings"] if f["code"] == "chain-extra")
    assert "served certificate 2 (CN=stranger Intermediate CA" in extra["message"]


def test_ipv6_targets_print_with_brackets(current: Issued, pki: DemoPKI, files: dict[str, str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with TLSServer(current, [pki.intermediate], host="::1") as server:
        run = cli(capsys, "probe", server.target, "--servername", "www.example.com", "--ca-file", files["root"])
    assert run.code == 0, run.text
    assert run.out.splitlines()[0] == f"[::1]:{server.port} (servername www.example.com) at ::1"
    port = free_port()
    refused = cli(capsys, "probe", f"[::1]:{port}")
    assert refused.code == 1 and f"[::1]:{port} refused the connection" in refused.err


def test_expired_a_day_ago_says_so(pki: DemoPKI, files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    now = dt.datetime.now(dt.UTC)
    expired = pki.leaf(NAMES, not_before=now - dt.timedelta(days=90), not_after=now - dt.timedelta(hours=27))
    with TLSServer(expired, [pki.intermediate]) as server:
        run = cli(capsys, "probe", server.target, "--servername", "www.example.com", "--ca-file", files["root"])
    assert run.code == 1
    assert "(1 day ago)" in run.out and "expired 1 day ago" in run.out
    assert "-2 days" not in run.out


@pytest.mark.parametrize(("target", "expected"), [
    ("example.com", ("example.com", 443)),
    ("example.com:8443", ("example.com", 8443)),
    ("[::1]:8443", ("::1", 8443)),
    ("[::1]", ("::1", 443)),
    ("::1", ("::1", 443)),
    ("https://example.com/path", ("example.com", 443)),
    ("127.0.0.1:443", ("127.0.0.1", 443)),
])
def test_parse_target(target: str, expected: tuple[str, int]) -> None:
    assert parse_target(target) == expected


@pytest.mark.parametrize("argv", [
    ["example.com:http"],
    ["example.com:0"],
    ["example.com:70000"],
    ["[::1"],
    ["example.com", "--timeout", "0"],
    ["example.com", "--timeout", "soon"],
    [],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "probe", *argv)
    assert run.code == 2, run.text
    assert "usage: certfleet probe" in run.err


def test_help_documents_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "probe", "--help")
    assert run.code == 0
    flat = " ".join(run.out.split())
    assert "exit status: 0" in flat and "not live yet" in flat
