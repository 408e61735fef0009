"""One TLS handshake as a client makes it, for ``certfleet probe``: validated against ``--ca-file`` or the system
store, and when validation fails a second, unvalidated one, so the served chain can still be shown.

The served chain: CPython 3.10+ has the private ``SSLObject.get_unverified_chain()`` (public from 3.13);
where it is missing only the leaf is known (``getpeercert(binary_form=True)``), and the output says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Only the standard library at import time: ssl and cryptography are imported by the functions that use them.


def hostport(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets (``[::1]:443``) as URLs and TLS tools write it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class Handshake:
    """What one TLS connection showed."""

    address: str
    protocol: str
    cipher: str
    bits: int
    chain: list[Any]  # x509.Certificate, served order
    chain_source: str  # "served" or "leaf only"
    verified: bool
    verify_error: str = ""
    trusted_root: str = ""
    client_certificate_requested: bool = False
    findings: list[Any] = field(default_factory=list)


def handshake(host: str, port: int, servername: str | None, timeout: float, ca_file: str | None) -> Handshake:
    """Connect and validate as a client would; when validation fails, connect again without it to see the chain."""
    import ssl

    strict = _context(ca_file)
    try:
        return _connect(host, port, servername, timeout, strict, verified=True)
    except ssl.SSLCertVerificationError as exc:
        reason = str(exc.verify_message or exc.reason or exc)
    loose = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    loose.check_hostname = False
    loose.verify_mode = ssl.CERT_NONE
    shake = _connect(host, port, servername, timeout, loose, verified=False)
    shake.verify_error = reason
    return shake


def _context(ca_file: str | None) -> Any:
    import ssl

    from certfleet.material.findings import MaterialError, error

    try:
        context = ssl.create_default_context(cadata=_ca_data(ca_file) if ca_file else None)
    except MaterialError as exc:  # not a regular file, too large, missing
        raise MaterialError(error(
            "bad-ca-file", f"cannot use --ca-file {ca_file}: {exc.finding.message}", exc.finding.fix, ca_file or "",
        )) from None
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise MaterialError(error(
            "bad-ca-file", f"cannot use --ca-file {ca_file}: {reason}",
            "pass a PEM file of CA certificates", ca_file or "",
        )) from None
    context.check_hostname = False  # names are checked with RFC 6125 below, and reported apart from trust
    return context


CA_FILE_LIMIT = 8 * 1024 * 1024  # a whole system bundle is a few hundred KB


def _ca_data(ca_file: str) -> str | bytes:
    """The CA certificates of ``--ca-file`` (a regular file, bounded): its PEM blocks, or the DER bytes as they are."""
    import re

    from certfleet.material.loader import read_regular_file

    data = read_regular_file(ca_file, limit=CA_FILE_LIMIT, what="CA file")
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", data, re.DOTALL)
    if blocks:
        return b"\n".join(blocks).decode("ascii", "replace")
    return data


def _connect(
    host: str, port: int, servername: str | None, timeout: float, context: Any, *, verified: bool,
) -> Handshake:
    import socket
    import ssl

    from cryptography import x509

    from certfleet.material.findings import MaterialError, error

    where = hostport(host, port)
    requested: list[bool] = []  # did the server send a CertificateRequest (mutual TLS)?
    _watch_certificate_request(context, requested)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            address = str(raw.getpeername()[0])  # now: a mutual-TLS server may hang up right after the handshake
            with context.wrap_socket(raw, server_hostname=servername) as tls:
                protocol = tls.version() or "?"
                cipher_name, _proto, bits = tls.cipher() or ("?", "", 0)
                sslobj = getattr(tls, "_sslobj", None)
                served = getattr(sslobj, "get_unverified_chain", None)
                ders = [c.public_bytes(ssl._ssl.ENCODING_DER) for c in served() or []] if served else []  # type: ignore[attr-defined]
                source = "served"
                if not ders:
                    leaf = tls.getpeercert(binary_form=True)
                    ders = [leaf] if leaf else []
                    source = "leaf only"
                root = ""
                path = getattr(sslobj, "get_verified_chain", None)
                if verified and path is not None:
                    anchors = path() or []
                    if anchors:
                        last = x509.load_der_x509_certificate(anchors[-1].public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
                        root = last.subject.rfc4514_string()
    except ssl.SSLCertVerificationError:
        raise
    except ConnectionRefusedError:
        raise MaterialError(error(
            "connection-refused", f"{where} refused the connection",
            "check the host and port: is a TLS server listening there, and does a security group allow you?", "",
        )) from None
    except TimeoutError:
        raise MaterialError(error(
            "timeout", f"no TLS answer from {where} within {timeout:g} s",
            "check the host, port and firewalls (security groups, NACLs), or raise --timeout", "",
        )) from None
    except socket.gaierror as exc:
        raise MaterialError(error(
            "unknown-host", f"cannot resolve {host}: {exc.strerror or exc}",
            "check the spelling of the host name and your DNS", "",
        )) from None
    except ssl.SSLError as exc:
        raise MaterialError(_handshake_failed(exc, where, servername, client_certificate=bool(requested))) from None
    except OSError as exc:
        raise MaterialError(error(
            "connection-failed", f"cannot connect to {where}: {exc.strerror or exc}",
            "check the host, the port and the network", "",
        )) from None
    if not ders:
        raise MaterialError(error("no-certificate", f"{where} completed the handshake without a certificate",
                                  "check the server's TLS configuration", ""))
    chain = [x509.load_der_x509_certificate(d) for d in ders]
    return Handshake(address, protocol, cipher_name, int(bits or 0), chain, source, verified, trusted_root=root,
                     client_certificate_requested=bool(requested))


#: OpenSSL reasons that mean the other side does not speak TLS at all (an HTTP server, SSH, SMTP without STARTTLS).
_NOT_TLS = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST",
            "UNKNOWN_PROTOCOL", "RECORD_TOO_LARGE", "UNEXPECTED_EOF_WHILE_READING"}


def _handshake_failed(exc: Any, where: str, servername: str | None, *, client_certificate: bool) -> Any:
    """Say what the failed handshake means: mutual TLS, not TLS at all, or a refusal of protocol, cipher or name."""
    from certfleet.material.findings import error

    reason = str(getattr(exc, "reason", "") or exc)
    if client_certificate or reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED":
        return error(
            "client-certificate-required",
            f"{where} requires a client certificate (mutual TLS) and ended the handshake because probe sent none",
            "probe checks server certificates only: probe a listener without mutual TLS, or check the served "
            "certificate where the client certificate is configured", "",
        )
    if reason in _NOT_TLS:
        return error(
            "not-tls", f"{where} did not answer in TLS ({reason})",
            "check that the port speaks TLS (not plain HTTP, or a protocol that needs STARTTLS)", "",
        )
    name = f", and that it serves the name {servername}" if servername else ""
    return error(
        "handshake-failed", f"{where} refused the TLS handshake: {reason}",
        f"check that the server accepts TLS 1.2 or newer with a cipher suite this Python offers{name}", "",
    )


def _watch_certificate_request(context: Any, requested: list[bool]) -> None:
    """Note a CertificateRequest from the server, through the ssl module's message callback (CPython 3.8+).

    The callback is not documented; where it is missing, a failed mutual-TLS handshake is told apart only when
    TLS 1.3's certificate_required alert names it.
    """
    import ssl

    handshake_type = getattr(getattr(ssl, "_TLSContentType", None), "HANDSHAKE", None)
    request_type = getattr(getattr(ssl, "_TLSMessageType", None), "CERTIFICATE_REQUEST", None)
    if handshake_type is None or request_type is None or not hasattr(context, "_msg_callback"):
        return

    def callback(_conn: Any, direction: str, _version: Any, content_type: Any, msg_type: Any, _data: Any) -> None:
        if direction == "read" and content_type == handshake_type and msg_type == request_type:
            requested.append(True)

    context._msg_callback = callback
