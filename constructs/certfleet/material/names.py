"""Which names a certificate serves, and whether it covers a given name (RFC 6125)."""

from __future__ import annotations

import codecs
import encodings.idna
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


MAX_NAME = 253
MAX_LABEL = 63
_LDH = re.compile(r"[A-Za-z0-9-]+")
_DEVIATIONS = {"\u00df": "ß", "\u03c2": "ς", "\u200c": "ZWNJ", "\u200d": "ZWJ"}


def printable(name: str, limit: int = 80) -> str:
    """``name`` quoted and escaped for a message (``repr``: no raw control character), cut to ``limit``."""
    shown = repr(name[:limit])
    return f"{shown}... ({len(name)} characters)" if len(name) > limit else shown


def escaped(text: str) -> str:
    """``text`` with every non-printable character (newline, ESC, bidi controls) escaped as in ``repr``."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def name_problem(name: str, *, allow_ip: bool = False) -> str | None:
    """Why ``name`` is not a DNS name a certificate may carry (None when it is one).

    A DNS name is 1..253 characters of LDH labels (letters, digits, hyphen; 1..63 each, no hyphen at either
    end), A-labels (``xn--``) included; ``*`` only as the whole leftmost label, above at least two labels; no
    empty label and no trailing dot (RFC 5280 4.2.1.6 "preferred name syntax"; CAs refuse ``example.com.``).
    An IP address is refused unless ``allow_ip``: it belongs in an IP SAN, not in a DNS name. The reason is
    safe to print: the name is never echoed raw.
    """
    if not name:
        return "the name is empty"
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return None if allow_ip else "it is an IP address: IP addresses go in an IP SAN, not in a DNS name"
    if "@" in name:
        return "it is an email address, not a DNS name (an email goes in the subject's email field)"
    if not name.isascii():
        return "it has non-ASCII characters: write international names as A-labels (xn--...)"
    if len(name) > MAX_NAME:
        return f"it is {len(name)} characters long; a DNS name has at most {MAX_NAME}"
    if name.endswith("."):
        return "it ends with a dot: certificates name hosts without the root's trailing dot"
    labels = name.split(".")
    if labels[0] == "*":
        if len(labels) < 3:
            return "a wildcard must stand above a domain of at least two labels (*.example.com)"
        labels = labels[1:]
    for label in labels:
        problem = _label_problem(label)
        if problem:
            return problem
    if labels[-1].isdigit():
        return f"its last label {printable(labels[-1])} is all digits, which no top-level domain is"
    return None


def _label_problem(label: str) -> str | None:
    if not label:
        return "it has an empty label (two dots in a row, or a leading dot)"
    if "*" in label:
        return "a wildcard may only be the whole leftmost label (*.example.com)"
    if not _LDH.fullmatch(label):
        bad = next(c for c in label if not (c.isalnum() or c == "-"))
        return (f"the label {printable(label)} holds {printable(bad)}: "
                "only letters, digits and hyphens are allowed")
    if len(label) > MAX_LABEL:
        return f"a label is {len(label)} characters long; a DNS label has at most {MAX_LABEL}"
    if label.startswith("-") or label.endswith("-"):
        return f"the label {printable(label)} starts or ends with a hyphen"
    if label.lower().startswith("xn--"):
        try:
            codecs.decode(label[4:].lower().encode("ascii"), "punycode")
        except UnicodeError:
            return f"the label {printable(label)} is not a valid A-label (punycode)"
    return None


def to_a_label(name: str) -> str:
    """``name`` with every non-ASCII label encoded as an A-label (``bücher.example`` → ``xn--bcher-kva.example``).

    Encodes with the standard library's IDNA 2003 (no third-party ``idna`` package at run time), and refuses the
    characters IDNA 2003 and IDNA 2008 encode differently (ß, ς, ZWJ, ZWNJ) rather than guess. Raises
    ``ValueError`` with a printable reason. ASCII names are returned unchanged (``name_problem`` judges them).
    """
    if name.isascii():
        return name
    deviation = next((shown for char, shown in _DEVIATIONS.items() if char in name), None)
    if deviation is not None:
        raise ValueError(
            f"{printable(name)} holds {deviation}, which IDNA 2003 and IDNA 2008 encode differently: "
            "give the A-label (xn--...) your registrar shows"
        )
    out = []
    for label in name.split("."):
        if label.isascii():
            out.append(label)
            continue
        try:
            out.append(encodings.idna.ToASCII(label).decode("ascii"))
        except UnicodeError:
            raise ValueError(f"{printable(name)} is not a valid international domain name") from None
    return ".".join(out)


def to_u_label(name: str) -> str:
    """``name`` with every A-label decoded for display; the name unchanged when it has none or they do not decode."""
    out = []
    for label in name.split("."):
        if not label.lower().startswith("xn--"):
            out.append(label)
            continue
        try:
            out.append(codecs.decode(label[4:].lower().encode("ascii"), "punycode"))
        except UnicodeError:
            return name
    return ".".join(out)


def is_hostname(name: str) -> bool:
    """True for a name ACM can serve: a fully qualified DNS name (a leading ``*.`` allowed) or an IP address.

    Lenient on form (case, surrounding spaces, a trailing dot, U-labels): it tells a host-name Common Name
    from one like "My Company Inc". ``name_problem`` is the strict judge of what a certificate may carry.
    """
    try:
        ipaddress.ip_address(name.strip())
    except ValueError:
        pass
    else:
        return True
    canonical = _canonical(name)
    return canonical.count(".") >= 1 and name_problem(canonical) is None


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
