"""lambda_acme/certfleet_acme.py against a real pebble validating DNS-01 through pebble-challtestsrv."""

from __future__ import annotations

import base64
import datetime
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from acme.client import ClientV2
from acme_support import ChallTestSrv, Pebble
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

import certfleet_acme as ca

PRIVATE_MARK = b"PRIVATE KEY"


class Recorder:
    """The DNS callbacks of the renewer, writing to challtestsrv and remembering what was asked."""

    def __init__(self, dns: ChallTestSrv) -> None:
        self.dns = dns
        self.published: dict[str, list[str]] = {}
        self.withdrawn: list[str] = []

    def publish(self, name: str, values: list[str]) -> None:
        self.published[name] = list(values)
        self.dns.publish(name, values)

    def withdraw(self, name: str) -> None:
        self.withdrawn.append(name)
        self.dns.withdraw(name)


def _registered(pebble: Pebble) -> ClientV2:
    acme = ca.open_client(pebble.directory_url, ca.new_account_key())
    ca.register(acme, contact="mailto:ops@example.com")
    return acme


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_orders_a_certificate_with_a_wildcard_over_dns01(
        pebble: Pebble, challtestsrv: ChallTestSrv, trust_pebble: Path, key_type: str) -> None:
    dns = Recorder(challtestsrv)
    acme = _registered(pebble)
    issued = ca.order_certificate(acme, ["shop.example.com", "*.shop.example.com", "api.example.com"], key_type,
                                  dns.publish, dns.withdraw)

    leaf = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == ["*.shop.example.com", "api.example.com", "shop.example.com"]
    key = serialization.load_pem_private_key(issued.private_key_pem, password=None)
    assert key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
        == leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert isinstance(key, ec.EllipticCurvePrivateKey if key_type == "ec-p256" else rsa.RSAPrivateKey)
    chain = x509.load_pem_x509_certificates(issued.chain_pem.encode())
    assert chain and leaf.issuer == chain[0].subject
    leaf.verify_directly_issued_by(chain[0])
    assert issued.not_after == leaf.not_valid_after_utc
    # the wildcard and its base name share one TXT name with two values; everything published is withdrawn
    assert sorted(dns.published) == ["_acme-challenge.api.example.com", "_acme-challenge.shop.example.com"]
    assert len(dns.published["_acme-challenge.shop.example.com"]) == 2
    assert sorted(dns.withdrawn) == sorted(dns.published)
    assert PRIVATE_MARK not in repr(issued).encode()


def test_every_order_has_a_fresh_key(pebble: Pebble, challtestsrv: ChallTestSrv, trust_pebble: Path) -> None:
    dns = Recorder(challtestsrv)
    acme = _registered(pebble)
    first = ca.order_certificate(acme, ["fresh.example.com"], "ec-p384", dns.publish, dns.withdraw)
    second = ca.order_certificate(acme, ["fresh.example.com"], "ec-p384", dns.publish, dns.withdraw)
    assert first.private_key_pem != second.private_key_pem
    assert first.certificate_pem != second.certificate_pem


def test_wrong_txt_value_fails_validation_naming_the_domain(
        pebble: Pebble, challtestsrv: ChallTestSrv, trust_pebble: Path) -> None:
    withdrawn: list[str] = []

    def publish_wrong(name: str, values: list[str]) -> None:
        challtestsrv.publish(name, ["not-the-key-authorization"])

    def withdraw(name: str) -> None:
        withdrawn.append(name)
        challtestsrv.withdraw(name)

    acme = _registered(pebble)
    with pytest.raises(ca.AcmeError) as raised:
        ca.order_certificate(acme, ["wrong.example.com"], "ec-p256", publish_wrong, withdraw, timeout=30)
    message = str(raised.value)
    assert message.startswith("ACME validation for wrong.example.com failed: validation failed for wrong.example.com")
    assert "unauthorized" in message
    assert withdrawn == ["_acme-challenge.wrong.example.com"]


def test_a_failing_dns_callback_is_reported_and_what_was_published_is_withdrawn(
        pebble: Pebble, challtestsrv: ChallTestSrv, trust_pebble: Path) -> None:
    dns = Recorder(challtestsrv)
    attempted: list[str] = []

    def publish(name: str, values: list[str]) -> None:
        attempted.append(name)
        if len(attempted) == 2:  # the second name, whichever order the CA lists the authorizations in
            raise RuntimeError("Route 53 refused the change batch")
        dns.publish(name, values)

    acme = _registered(pebble)
    with pytest.raises(ca.AcmeError) as raised:
        ca.order_certificate(acme, ["a.example.com", "b.example.com"], "ec-p256", publish, dns.withdraw)
    assert sorted(attempted) == ["_acme-challenge.a.example.com", "_acme-challenge.b.example.com"]
    assert str(raised.value) == (f"ACME publishing TXT {attempted[1]} for a.example.com, b.example.com "
                                 "failed: RuntimeError: Route 53 refused the change batch")
    assert dns.withdrawn == attempted


def test_ca_refusal_of_an_identifier_is_reported_plainly(pebble: Pebble, trust_pebble: Path) -> None:
    acme = _registered(pebble)
    with pytest.raises(ca.AcmeError) as raised:
        ca.order_certificate(acme, ["exa_mple.com"], "ec-p256", lambda n, v: None, lambda n: None)
    message = str(raised.value)
    assert message == ("ACME new order for exa_mple.com failed: malformed: Order included DNS identifier with a value "
                       "containing an illegal character: '_'")
    assert "Traceback" not in message


def test_eab_required_registers_with_the_binding(
        eab_pebble: Pebble, challtestsrv: ChallTestSrv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(eab_pebble.ca_bundle))
    acme = ca.open_client(eab_pebble.directory_url, ca.new_account_key())
    kid, hmac_key = next(iter(eab_pebble.eab_keys.items()))
    account = ca.register(acme, contact="mailto:ops@example.com", eab_key_id=kid, eab_hmac_key=hmac_key)
    assert account.body.status == "valid"
    dns = Recorder(challtestsrv)
    issued = ca.order_certificate(acme, ["eab.example.com"], "ec-p256", dns.publish, dns.withdraw)
    assert "BEGIN CERTIFICATE" in issued.certificate_pem


def test_eab_required_and_missing_is_a_clear_error(eab_pebble: Pebble, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(eab_pebble.ca_bundle))
    acme = ca.open_client(eab_pebble.directory_url, ca.new_account_key())
    with pytest.raises(ca.AcmeError, match="requires External Account Binding"):
        ca.register(acme)


def test_eab_with_a_wrong_hmac_key_is_refused_by_the_ca(eab_pebble: Pebble, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(eab_pebble.ca_bundle))
    acme = ca.open_client(eab_pebble.directory_url, ca.new_account_key())
    kid, real_key = next(iter(eab_pebble.eab_keys.items()))
    wrong = "A" * len(real_key)
    with pytest.raises(ca.AcmeError) as raised:
        ca.register(acme, eab_key_id=kid, eab_hmac_key=wrong)
    message = str(raised.value)
    assert message.startswith("ACME registration for the account failed: the CA refused the External Account "
                              f"Binding (EAB key id {kid!r}): check the EAB key id and the HMAC key")
    assert "(the CA said: unauthorized: " in message
    assert wrong not in message and real_key not in message


def test_unknown_key_type_is_refused_before_any_request() -> None:
    with pytest.raises(ca.AcmeError, match="'ed25519' is not one of ec-p256, ec-p384, rsa-2048"):
        ca.generate_key("ed25519")


# --- ARI (RFC 9773) -------------------------------------------------------------------------------------------------

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)


def _certificate(not_before: datetime.datetime, days: int) -> tuple[str, x509.Certificate]:
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ari.example.com")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(0x00F0A1B2C3D4E5F6).not_valid_before(not_before)
        .not_valid_after(not_before + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("ari.example.com")]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), cert


@pytest.mark.parametrize(("days_ago", "window_days", "renew", "reason"), [
    (30, None, False, "a third of the lifetime will be left at 2026-07-01"),    # 90-day cert: due at day 60
    (61, None, True, "a third of the lifetime is left"),
    (30, (10, 12), False, "the CA's renewal window opens at 2026-06-11"),     # an earlier window wins over 1/3...
    (75, (10, 12), True, "a third of the lifetime is left"),                 # ...a later one never delays renewal
    (30, (40, 42), False, "a third of the lifetime will be left at 2026-07-01"),
    (30, (-1, 2), True, "the CA's renewal window opened at 2026-05-31"),      # e.g. the CA revokes early
    (91, (10, 12), True, "the certificate has expired"),
])
def test_renewal_decision(days_ago: int, window_days: tuple[int, int] | None, renew: bool, reason: str) -> None:
    pem, _ = _certificate(NOW - datetime.timedelta(days=days_ago), 90)
    window = None if window_days is None else (
        NOW + datetime.timedelta(days=window_days[0]), NOW + datetime.timedelta(days=window_days[1]))
    decision = ca.should_renew(pem, NOW, window)
    assert (decision.renew, decision.reason[:len(reason)]) == (renew, reason)


def test_a_window_never_delays_renewal_past_the_lifetime_rule() -> None:
    pem, _ = _certificate(NOW - datetime.timedelta(days=46), 47)  # a 47-day certificate with 1 day left
    window = (NOW + datetime.timedelta(days=30), NOW + datetime.timedelta(days=32))

    decision = ca.should_renew(pem, NOW, window)

    assert decision.renew and decision.reason.startswith("a third of the lifetime is left")
    assert decision.due == NOW - datetime.timedelta(days=46) + datetime.timedelta(days=47) * 2 / 3


def test_ari_cert_id_follows_rfc_9773() -> None:
    _, cert = _certificate(NOW, 90)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki is not None

    expected_aki = base64.urlsafe_b64encode(aki).rstrip(b"=").decode()
    assert ca.ari_certificate_id(cert) == f"{expected_aki}.APChssPU5fY"  # serial DER octets 00 F0 A1 B2 C3 D4 E5 F6


def test_pebble_24_offers_no_renewal_info_so_the_third_rule_decides(pebble: Pebble, trust_pebble: Path) -> None:
    acme = ca.open_client(pebble.directory_url, ca.new_account_key())
    pem, _ = _certificate(NOW - datetime.timedelta(days=61), 90)
    assert ca.renewal_window(acme, pem) is None


@pytest.fixture
def ari_directory() -> Iterator[tuple[str, list[str]]]:
    """A minimal ACME directory offering renewalInfo (plain HTTP on 127.0.0.1); records the ARI paths asked for."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{server.server_address[1]}"
            body: dict[str, object]
            if self.path == "/dir":
                body = {"newNonce": f"{base}/nonce", "newAccount": f"{base}/acct", "newOrder": f"{base}/order",
                        "revokeCert": f"{base}/revoke", "keyChange": f"{base}/kc", "renewalInfo": f"{base}/ari/"}
            elif self.path.startswith("/ari/"):
                asked.append(self.path.removeprefix("/ari/"))
                body = {"suggestedWindow": {"start": "2026-06-11T00:00:00Z", "end": "2026-06-13T00:00:00Z"}}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/dir", asked
    server.shutdown()
    server.server_close()


def test_renewal_window_is_fetched_by_cert_id(ari_directory: tuple[str, list[str]]) -> None:
    url, asked = ari_directory
    acme = ca.open_client(url, ca.new_account_key())
    pem, cert = _certificate(NOW - datetime.timedelta(days=30), 90)
    window = ca.renewal_window(acme, pem)
    assert window == (datetime.datetime(2026, 6, 11, tzinfo=datetime.UTC),
                      datetime.datetime(2026, 6, 13, tzinfo=datetime.UTC))
    assert asked == [ca.ari_certificate_id(cert)]
    assert not ca.should_renew(pem, NOW, window).renew
    assert ca.should_renew(pem, NOW + datetime.timedelta(days=10), window).renew
