"""The ACME client the renewer Lambda runs: register (EAB optional), order with DNS-01, finalize a fresh key, ARI,
and the checks issued material must pass before it is stored or imported.

Built on certbot's `acme` library. `order_certificate` runs a whole order with a pair of DNS callbacks
(`publish(name, values)`, `withdraw(name)`); `start_order`, `fetch_order`, `answer_dns01`, `wait_validated` and
`finalize` are its steps, for a custom resource that spreads an order over several invocations
(certfleet_acme_handler). Unlike the importer, this module ships in its own asset built from wheels (acme_asset.py),
so it may use `acme`, `josepy` and `cryptography`. Nothing here logs or raises key material.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy import b64
from josepy.jwa import ES256
from josepy.jwk import JWK, JWKEC

from acme import challenges, client, errors, messages
from acme import crypto_util as acme_crypto

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")
"""Certificate key types the renewer generates; ACM re-imports only the same type, so a fleet fixes one."""
USER_AGENT = "certfleet-acme"
Publish = Callable[[str, list[str]], None]
Withdraw = Callable[[str], None]


def utcnow() -> datetime.datetime:
    """The real clock (tests inject their own)."""
    return datetime.datetime.now(datetime.UTC)


class AcmeError(Exception):
    """An ACME step failed: the message names the step and the domains, and says what the CA answered."""


class MaterialError(AcmeError):
    """Issued material failed certfleet's own checks: nothing is stored or imported."""


@dataclass(frozen=True)
class Issued:
    """A certificate issued for a fresh key: PEM certificate, PEM chain (issuer first) and the key (never printed)."""

    certificate_pem: str
    chain_pem: str
    private_key_pem: bytes = field(repr=False)
    not_before: datetime.datetime
    not_after: datetime.datetime


@dataclass(frozen=True)
class Decision:
    """Whether to renew now, why, and the earliest time renewal is due."""

    renew: bool
    reason: str
    due: datetime.datetime


def _problem(error: BaseException) -> str:
    """What the CA (or the network) said, in one line, without a traceback."""
    if isinstance(error, messages.Error):
        code = error.code or (error.typ or "error").rsplit(":", 1)[-1]
        detail = error.detail or error.description or ""
        subs = "; ".join(f"{s.identifier.value if s.identifier else '?'}: {s.detail}" for s in error.subproblems or ())
        return f"{code}: {detail}" + (f" ({subs})" if subs else "")
    if isinstance(error, errors.ValidationError):
        failed = []
        for authzr in error.failed_authzrs:
            reasons = [_problem(c.error) for c in authzr.body.challenges if c.error is not None]
            failed.append(f"{_name(authzr.body.identifier.value, authzr.body.wildcard)}: {'; '.join(reasons)}")
        return "validation failed for " + ", ".join(failed)
    if isinstance(error, requests.RequestException):
        return f"cannot reach the CA ({type(error).__name__}: {error})"
    return f"{type(error).__name__}: {error}"


@contextmanager
def _step(step: str, domains: Sequence[str], *, callback: bool = False,
          let: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn a failure inside a step into an AcmeError that names the step and the domains.

    With `callback`, any exception counts: the DNS callbacks are the caller's code (Route 53, a test DNS). The `let`
    exceptions pass through unchanged.
    """
    expected: tuple[type[BaseException], ...] = (
        (Exception,) if callback else (messages.Error, errors.Error, requests.RequestException, ValueError))
    try:
        yield
    except AcmeError:
        raise
    except let:
        raise
    except expected as error:
        names = ", ".join(domains) or "the account"
        raise AcmeError(f"ACME {step} for {names} failed: {_problem(error)}") from None


def _name(value: str, wildcard: bool | None) -> str:
    return f"*.{value}" if wildcard else value


def client_key(acme: client.ClientV2) -> JWK:
    """The account key the client signs with."""
    key = acme.net.key
    if not isinstance(key, JWK):
        raise AcmeError("ACME client: open it with an account key (open_client)")
    return key


def new_account_key() -> JWKEC:
    """A fresh P-256 ACME account key (ES256)."""
    return JWKEC(key=ec.generate_private_key(ec.SECP256R1()))


def account_key_from_pem(pem: bytes) -> JWKEC:
    """An ACME account key stored as PEM (the renewer keeps it in its own secret)."""
    key = JWKEC.load(pem)
    if not isinstance(key, JWKEC):
        raise AcmeError("the stored ACME account key is not an EC key")
    return key


def account_key_pem(key: JWKEC) -> bytes:
    """The account key as PKCS#8 PEM, to store in a secret (never to log).

    josepy wraps the key (ComparableECKey, which forwards to it), so its type is judged on the serialized key.
    """
    private = key.key
    if not hasattr(private, "private_numbers"):
        raise TypeError("an ACME account key is an EC private key")
    pem: bytes = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    if not isinstance(serialization.load_pem_private_key(pem, password=None), ec.EllipticCurvePrivateKey):
        raise TypeError("an ACME account key is an EC private key")
    return pem


def open_client(directory_url: str, account_key: JWKEC, *, timeout: int = 30) -> client.ClientV2:
    """A client on the CA's directory, signing with `account_key`."""
    net = client.ClientNetwork(account_key, alg=ES256, user_agent=USER_AGENT, timeout=timeout)
    with _step(f"directory {directory_url}", ()):
        directory = client.ClientV2.get_directory(directory_url, net)
    return client.ClientV2(directory, net)


def register(acme: client.ClientV2, *, contact: str | None = None, eab_key_id: str | None = None,
             eab_hmac_key: str | None = None) -> messages.RegistrationResource:
    """Register the client's account key (agreeing to the terms), bound to a CA account by EAB when given."""
    if (eab_key_id is None) != (eab_hmac_key is None):
        raise AcmeError("ACME registration: give both the EAB key id and its HMAC key, or neither")
    if eab_key_id is None and acme.external_account_required():
        raise AcmeError("ACME registration: this CA requires External Account Binding: give the EAB key id and "
                        "HMAC key from your CA account")
    net_key = client_key(acme)
    with _step("registration", ()):
        binding = None
        if eab_key_id is not None and eab_hmac_key is not None:
            binding = messages.ExternalAccountBinding.from_data(
                account_public_key=net_key.public_key(), kid=eab_key_id, hmac_key=eab_hmac_key,
                directory=acme.directory)
        body = messages.NewRegistration.from_data(
            contact=(contact,) if contact else (), terms_of_service_agreed=True, external_account_binding=binding)
        if binding is None:
            return acme.new_account(body)
        try:
            return acme.new_account(body)
        except messages.Error as error:  # CAs word an EAB refusal their own way: say what to check, then their words
            raise AcmeError(
                f"ACME registration for the account failed: the CA refused the External Account Binding (EAB key id "
                f"{eab_key_id!r}): check the EAB key id and the HMAC key your CA account gave you "
                f"(the CA said: {_problem(error)})") from None


def check_key_type(key_type: str) -> None:
    """Refuse a key type the renewer cannot generate, before any request to the CA."""
    if key_type not in KEY_TYPES:
        raise AcmeError(f"key type {key_type!r} is not one of {', '.join(KEY_TYPES)}")


def generate_key(key_type: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """A fresh private key of `key_type` (one of KEY_TYPES)."""
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type in ("rsa-2048", "rsa-3072", "rsa-4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    raise AcmeError(f"key type {key_type!r} is not one of {', '.join(KEY_TYPES)}")


def dns01_records(orderr: messages.OrderResource, account_key: JWK, *, include_valid: bool = False
                  ) -> dict[str, list[str]]:
    """TXT values to publish per `_acme-challenge` name (a wildcard and its base name share one name), sorted.

    Authorizations already valid need no record, unless `include_valid` (to recompute, in a later invocation, what
    was published before the CA validated it).
    """
    records: dict[str, list[str]] = {}
    for authzr in orderr.authorizations:
        if authzr.body.status == messages.STATUS_VALID and not include_valid:
            continue
        domain = authzr.body.identifier.value
        dns01 = [c.chall for c in authzr.body.challenges if isinstance(c.chall, challenges.DNS01)]
        if not dns01:
            raise AcmeError(f"ACME order for {_name(domain, authzr.body.wildcard)}: the CA offers no dns-01 challenge")
        chall = dns01[0]
        values = records.setdefault(chall.validation_domain_name(domain), [])
        value = chall.validation(account_key)
        if value not in values:
            values.append(value)
    return {name: sorted(values) for name, values in records.items()}  # the same text in every invocation


def _split_chain(fullchain_pem: str) -> tuple[str, str]:
    certificates = x509.load_pem_x509_certificates(fullchain_pem.encode())
    pems = [c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates]
    return pems[0], "".join(pems[1:])


def order_names(domains: Sequence[str]) -> list[str]:
    """The order's identifiers: lower case, no trailing dot, each once, in the given order."""
    if not domains:
        raise AcmeError("ACME order: no domain names given")
    return list(dict.fromkeys(d.strip().lower().rstrip(".") for d in domains))


def start_order(acme: client.ClientV2, domains: Sequence[str]) -> messages.OrderResource:
    """Create an order for `domains`. The certificate's key does not exist yet: it is made at finalization
    (finish_order), so a throwaway key's CSR only names the identifiers and is dropped."""
    names = order_names(domains)
    throwaway = generate_key("ec-p256").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with _step("new order", names):
        orderr = acme.new_order(acme_crypto.make_csr(throwaway, names))
    placed: messages.OrderResource = orderr.update(csr_pem=None)
    return placed


def fetch_order(acme: client.ClientV2, url: str) -> messages.OrderResource:
    """Re-fetch an order and its authorizations by URL (POST-as-GET): how an order crosses Lambda invocations."""
    nonce_url = acme.directory["newNonce"]
    with _step(f"order lookup {url}", ()):
        body = messages.Order.from_json(acme.net.post(url, None, new_nonce_url=nonce_url).json())
        authorizations = [
            messages.AuthorizationResource(
                body=messages.Authorization.from_json(acme.net.post(u, None, new_nonce_url=nonce_url).json()), uri=u)
            for u in body.authorizations]
    return messages.OrderResource(body=body, uri=url, authorizations=authorizations)


def answer_dns01(acme: client.ClientV2, orderr: messages.OrderResource) -> None:
    """Tell the CA the TXT records are in place: answer each pending dns-01 challenge of a pending authorization."""
    net_key = client_key(acme)
    for authzr in orderr.authorizations:
        if authzr.body.status != messages.STATUS_PENDING:
            continue
        domain = _name(authzr.body.identifier.value, authzr.body.wildcard)
        for challb in authzr.body.challenges:
            if isinstance(challb.chall, challenges.DNS01):
                if challb.status == messages.STATUS_PENDING:
                    with _step("answering the dns-01 challenge", [domain]):
                        acme.answer_challenge(challb, challb.chall.response(net_key))
                break


def order_domains(orderr: messages.OrderResource) -> list[str]:
    """The names an order was placed for."""
    return [i.value for i in orderr.body.identifiers]


def wait_validated(acme: client.ClientV2, orderr: messages.OrderResource,
                   deadline: datetime.datetime) -> messages.OrderResource:
    """Wait until the CA has validated every authorization of the order (no-op for a ready or valid order).

    `deadline` is naive local time, as the acme library compares it. errors.TimeoutError (validation still pending at
    the deadline) passes through: the caller may come back later; a failed validation is an AcmeError.
    """
    if orderr.body.status in (messages.STATUS_READY, messages.STATUS_VALID):
        return orderr
    with _step("validation", order_domains(orderr), let=(errors.TimeoutError,)):
        validated: messages.OrderResource = acme.poll_authorizations(orderr, deadline)
    return validated


def finalize(acme: client.ClientV2, orderr: messages.OrderResource, key_type: str,
             deadline: datetime.datetime) -> Issued:
    """Finalize a validated order with a FRESH `key_type` key, download the certificate and its chain.

    Once the CSR is sent the key exists only here: call it only with time enough for the CA to issue (a caller out of
    time after this point loses the key; the order cannot be finalized again).
    """
    names = order_domains(orderr)
    key = generate_key(key_type)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    with _step("finalization", names):
        orderr = acme.finalize_order(orderr.update(csr_pem=acme_crypto.make_csr(key_pem, names)), deadline)
    if not orderr.fullchain_pem:
        raise AcmeError(f"ACME finalization for {', '.join(names)}: the CA returned no certificate")
    certificate_pem, chain_pem = _split_chain(orderr.fullchain_pem)
    leaf = x509.load_pem_x509_certificate(certificate_pem.encode())
    return Issued(certificate_pem, chain_pem, key_pem, leaf.not_valid_before_utc, leaf.not_valid_after_utc)


def finish_order(acme: client.ClientV2, orderr: messages.OrderResource, key_type: str,
                 deadline: datetime.datetime) -> Issued:
    """wait_validated, then finalize, both within `deadline` (naive local time). errors.TimeoutError from the wait
    passes through. Callers spread over invocations call the two steps themselves, to finalize only with time left."""
    return finalize(acme, wait_validated(acme, orderr, deadline), key_type, deadline)


def order_certificate(acme: client.ClientV2, domains: Sequence[str], key_type: str, publish: Publish,
                      withdraw: Withdraw, *, timeout: float = 120.0) -> Issued:
    """Order a certificate for `domains` with a fresh `key_type` key, answering DNS-01 through the callbacks.

    Records are withdrawn whatever happens. Raises AcmeError naming the step and the domains.
    """
    names = order_names(domains)
    net_key = client_key(acme)
    check_key_type(key_type)
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)  # the acme library's naive local time
    orderr = start_order(acme, names)
    records = dns01_records(orderr, net_key)
    published: list[str] = []
    try:
        for name, values in records.items():
            published.append(name)  # withdrawn even if publishing fails half-way
            with _step(f"publishing TXT {name}", names, callback=True):
                publish(name, values)
        answer_dns01(acme, orderr)
        with _step("validation", names):
            return finish_order(acme, orderr, key_type, deadline)
    finally:
        for name in published:
            with suppress(Exception):  # cleanup must not hide the real outcome; the record expires with the order
                withdraw(name)


def ari_certificate_id(certificate: x509.Certificate) -> str:
    """RFC 9773 CertID: base64url(AKI keyIdentifier) '.' base64url(serial number DER content octets)."""
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    if aki is None:
        raise AcmeError("ARI: the certificate has no Authority Key Identifier key id")
    serial = certificate.serial_number
    octets = serial.to_bytes((serial.bit_length() + 8) // 8, "big")  # DER INTEGER: a leading 0 keeps it positive
    return f"{b64.b64encode(aki).decode()}.{b64.b64encode(octets).decode()}"


def renewal_window(acme: client.ClientV2, certificate_pem: str
                   ) -> tuple[datetime.datetime, datetime.datetime] | None:
    """The CA's suggested renewal window (RFC 9773) for the certificate, or None when the CA offers no ARI."""
    base = acme.directory.to_partial_json().get("renewalInfo")
    if not base:
        return None
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    names = certificate_names(certificate)
    with _step("renewal information", names):
        response = acme.net.get(f"{str(base).rstrip('/')}/{ari_certificate_id(certificate)}",
                                content_type="application/json")
        info = messages.RenewalInfo.from_json(response.json())
    start, end = info.suggested_window.start, info.suggested_window.end
    if end <= start:
        raise AcmeError(f"ACME renewal information for {', '.join(names)}: the CA's window ends before it starts")
    return start, end


def certificate_names(certificate: x509.Certificate) -> list[str]:
    """The certificate's DNS names (subjectAltName)."""
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        return []


def should_renew(certificate_pem: str, now: datetime.datetime,
                 window: tuple[datetime.datetime, datetime.datetime] | None) -> Decision:
    """Renew when the CA's ARI window has opened or a third of the lifetime is left, whichever comes first: a window
    never delays renewal past the lifetime rule (due = min(window start, a third of the lifetime left)).

    Deterministic: the window's start is taken as due (RFC 9773 lets a client pick any time in the window; the
    renewer runs daily, so it renews on the first run inside the window).
    """
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now >= not_after:
        return Decision(True, "the certificate has expired", not_after)
    due = not_after - (not_after - not_before) / 3
    if window is not None and window[0] < due:
        start = window[0]
        if now >= start:
            return Decision(True, f"the CA's renewal window opened at {start.isoformat()}", start)
        return Decision(False, f"the CA's renewal window opens at {start.isoformat()}", start)
    if now >= due:
        return Decision(True, f"a third of the lifetime is left (since {due.isoformat()})", due)
    return Decision(False, f"a third of the lifetime will be left at {due.isoformat()}", due)


# --- checks on issued material (the renewer never stores or imports what fails them) ------------------------------

def key_type_of(key: Any) -> str:
    """certfleet's spelling of a public or private key's type (rsa-2048, ec-p256, ...); '' when ACM cannot import it."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return {"secp256r1": "ec-p256", "secp384r1": "ec-p384", "secp521r1": "ec-p521"}.get(key.curve.name, "")
    return ""


def covers(pattern: str, name: str) -> bool:
    """Whether a certificate name covers `name` as ACM and RFC 6125 match: exactly, or a leading `*.` standing for
    exactly one whole label (a declared wildcard needs the same wildcard)."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == name:
        return True
    if not pattern.startswith("*.") or name.startswith("*."):
        return False
    label, _, rest = name.partition(".")
    return bool(label) and rest == pattern[2:]


def _spki(key: Any) -> bytes:
    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def check_material(certificate_pem: str, chain_pem: str, key_pem: str, *, domains: Sequence[str], key_type: str,
                   now: datetime.datetime) -> None:
    """Raise MaterialError listing every problem: names cover `domains`, the chain links, the key matches the leaf,
    the key is of `key_type`, the leaf is valid now (as ACM requires at import)."""
    problems: list[str] = []
    try:
        leaf = x509.load_pem_x509_certificate(certificate_pem.encode())
        chain = x509.load_pem_x509_certificates(chain_pem.encode()) if chain_pem.strip() else []
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise MaterialError(f"the issued material does not load ({type(error).__name__})") from None
    names = certificate_names(leaf)
    uncovered = [d for d in domains if not any(covers(n, d) for n in names)]
    if uncovered:
        problems.append(f"the certificate's names ({', '.join(names) or 'none'}) do not cover {', '.join(uncovered)}")
    for child, parent in zip([leaf, *chain], chain, strict=False):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            problems.append(f"the chain does not link: {parent.subject.rfc4514_string()} did not sign "
                            f"{child.subject.rfc4514_string()}")
            break
    if any(c == leaf for c in chain):
        problems.append("the chain contains the certificate itself")
    if _spki(key.public_key()) != _spki(leaf.public_key()):
        problems.append("the private key does not match the certificate")
    if key_type_of(leaf.public_key()) != key_type:
        problems.append(f"the key type is {key_type_of(leaf.public_key()) or 'not importable'}, not {key_type}")
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        problems.append(f"the certificate is not valid now ({leaf.not_valid_before_utc.isoformat()} to "
                        f"{leaf.not_valid_after_utc.isoformat()})")
    if problems:
        raise MaterialError(f"ACME material for {', '.join(domains)} failed certfleet's checks: "
                            + "; ".join(problems) + ". Nothing was stored or imported.")
