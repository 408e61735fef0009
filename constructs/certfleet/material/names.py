"""Which names a certificate serves, and whether it covers a given name (RFC 6125)."""

from __future__ import annotations

import ipaddress
import re

from cryptography import x509
from cryptography.x509.oid import NameOID


def dns_names(cert: x509.Certificate) -> list[str]:
    """The DNS names of the SAN extension, or the Common Name when there is no SAN at all."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return [str(n) for n in san.get_values_for_type(x509.DNSName)]


def ip_addresses(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def has_san(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    return True


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def is_hostname(name: str) -> bool:
    """True for a name ACM can serve: a fully qualified DNS name (a leading ``*.`` allowed) or an IP address."""
    try:
        ipaddress.ip_address(name.strip())
    except ValueError:
        pass
    else:
        return True
    labels = _canonical(name).split(".")
    if labels[0] == "*":
        labels = labels[1:]
    return len(labels) >= 2 and all(_LABEL.match(label) for label in labels)


def _canonical(name: str) -> str:
    name = name.strip().rstrip(".").lower()
    try:
        return name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        return name


def matches(pattern: str, name: str) -> bool:
    """RFC 6125: ``*.example.com`` covers ``a.example.com``, not ``example.com`` nor ``a.b.example.com``."""
    pattern, name = _canonical(pattern), _canonical(name)
    if not pattern or not name:
        return False
    if pattern == name:  # also a wildcard name asked for as such (a CloudFront alias "*.example.com")
        return True
    if pattern.startswith("*."):
        head, _, tail = name.partition(".")
        return bool(head) and head != "*" and tail == pattern[2:] and tail.count(".") >= 1
    return False


def covers(cert: x509.Certificate, name: str) -> bool:
    """True when ``cert`` is valid for ``name`` (a DNS name or an IP address)."""
    try:
        wanted = ipaddress.ip_address(name.strip())
    except ValueError:
        return any(matches(p, name) for p in dns_names(cert))
    return any(ipaddress.ip_address(ip) == wanted for ip in ip_addresses(cert))
