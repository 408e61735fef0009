"""What an ACME source orders, checked at synth: the CA's directory, the domains and their Route 53 zones, the key
type and the ACME account (``AcmeAccount``). The constructs that order and renew it are in ``certfleet.acme``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from aws_cdk import Token
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_secretsmanager as secretsmanager

from certfleet._lambda.certfleet_contract import ACME_KEY_TYPES, AcmeCertificateProperties, HostedZone
from certfleet.material.names import name_problem

__all__ = ["ACME_POLICY_BYTES", "CHALLENGE_PREFIX", "MAX_ORDER_NAMES", "AcmeAccount", "AcmeOrder", "AcmeZone",
           "FleetTarget", "challenge_record_name"]

CHALLENGE_PREFIX = "_acme-challenge."
ACME_POLICY_BYTES = 60_000
"""The most the ACME fleets of one stack may add to each of its shared ACME roles (issuer, renewer): IAM allows a role
10,240 bytes of inline policy and 10 managed policies of 6,144 bytes, into which the CDK moves what overflows."""
POLICY_BYTES_PER_ORDER = 3_000
"""What one order adds to an ACME role besides its challenge record names and its zones' statements (secrets, key,
ACM; measured about 2,500 bytes as the CDK writes it)."""
POLICY_BYTES_PER_ZONE = 1_000
"""What each hosted zone of an order adds to an ACME role besides its record names: two statements (the TXT changes
under their conditions, the record set reads), each with the zone's ARN (measured 850-950 bytes as the CDK writes
them, with fleet ids of 1 to 50 characters; a test holds the estimate above the synthesized policies)."""
MAX_ORDER_NAMES = 100
"""The most identifiers one order may carry: Let's Encrypt refuses more than 100 per order (other CAs fewer)."""


@dataclass(frozen=True)
class FleetTarget:
    """What a source that renews by itself (ACME) is told of the fleet it is bound for: it re-imports into each
    region's certificate, found by these tags."""

    fleet_name: str
    """The ``certfleet:fleet`` tag."""
    regions: tuple[str, ...]
    """Every region of the fleet (the primary first)."""
    certificate_id: str
    """The ``certfleet:id`` tag, the same in every region."""


def challenge_record_name(domain: str) -> str:
    """The dns-01 TXT record name of a certificate name as Route 53 normalizes it in IAM: ``_acme-challenge.<name>``,
    a wildcard ``*.x`` sharing ``x``'s, lower case, no final dot."""
    return CHALLENGE_PREFIX + domain.lower().rstrip(".").removeprefix("*.")


class AcmeAccount:
    """The ACME account the issuer registers at the CA, External Account Binding (EAB) optional.

    Args:
        contact: where the CA writes (``mailto:ops@example.com``; a bare address gets ``mailto:``). Default: none.
        eab_key_id: the EAB key id the CA gave you (commercial CAs). Default: none, no EAB.
        eab_hmac_secret: a secret holding the EAB HMAC key (base64url) as its plain string value; read at the first
            deploy only, by the issuer. Default: none.
    """

    def __init__(self, *, contact: str | None = None, eab_key_id: str | None = None,
                 eab_hmac_secret: secretsmanager.ISecret | None = None) -> None:
        if contact is not None:
            if not isinstance(contact, str) or Token.is_unresolved(contact) or not contact.strip():
                raise ValueError("AcmeAccount: contact must be an email address ('mailto:ops@example.com')")
            contact = contact.strip()
            address = contact.removeprefix("mailto:")
            if "@" not in address or any(c in address for c in ", \t\n<>"):
                raise ValueError(f"AcmeAccount: contact {contact!r} is not one email address: give "
                                 "'mailto:ops@example.com'")
            contact = "mailto:" + address
        if (eab_key_id is None) != (eab_hmac_secret is None):
            raise ValueError("AcmeAccount: External Account Binding needs both eab_key_id and eab_hmac_secret (a "
                             "secretsmanager.ISecret holding the HMAC key your CA gave you), or neither")
        if eab_key_id is not None and (not isinstance(eab_key_id, str) or not eab_key_id.strip()):
            raise ValueError("AcmeAccount: eab_key_id must be the key id your CA gave you (a non-empty string)")
        self.contact = contact
        self.eab_key_id = eab_key_id
        self.eab_hmac_secret = eab_hmac_secret


@dataclass(frozen=True)
class AcmeZone:
    """A hosted zone of the source: the zone, its name (known at synth) and the domains it serves."""

    zone: route53.IHostedZone
    name: str
    domains: tuple[str, ...]


@dataclass(frozen=True)
class AcmeOrder:
    """What an ACME source orders: checked when made (``AcmeOrder.checked``), the same for every region."""

    directory_url: str
    domains: tuple[str, ...]
    key_type: str
    zones: tuple[AcmeZone, ...]
    account: AcmeAccount

    @classmethod
    def checked(
        cls, *, directory_url: str, domains: Sequence[str],
        hosted_zone: route53.IHostedZone | Mapping[str, route53.IHostedZone], key_type: str,
        account: AcmeAccount | None,
    ) -> AcmeOrder:
        """The order, or a ValueError/TypeError that says what is wrong and what to give."""
        url = _checked_directory(directory_url)
        names = _checked_domains(domains)
        if key_type not in ACME_KEY_TYPES:
            raise ValueError(f"CertificateSource.acme: key_type={key_type!r} is not one of "
                             f"{', '.join(ACME_KEY_TYPES)} (ACM re-imports only the same key type: choose once)")
        if account is not None and not isinstance(account, AcmeAccount):
            raise TypeError("CertificateSource.acme: account must be an AcmeAccount(contact=..., eab_key_id=..., "
                            "eab_hmac_secret=...)")
        order = cls(url, names, key_type, _checked_zones(names, hosted_zone), account or AcmeAccount())
        if order.policy_bytes > ACME_POLICY_BYTES:
            raise ValueError(
                f"CertificateSource.acme: {len(names)} domains in {len(order.zones)} hosted zones make IAM grants of "
                f"about {order.policy_bytes:,} bytes per role, over the {ACME_POLICY_BYTES:,} a role takes (each zone "
                "adds two Route 53 statements and its _acme-challenge record names to the issuer's and renewer's "
                "roles): order fewer names, or names in fewer hosted zones, per certificate",
            )
        return order

    @property
    def key_algorithm(self) -> str:
        """ACM's key type of the certificate (``EC_prime256v1``...)."""
        return ACME_KEY_TYPES[self.key_type]

    @property
    def policy_bytes(self) -> int:
        """What this order adds to each ACME role's policies, at most: its grants, two statements per hosted zone
        and (twice, to be safe) its challenge record names, listed in their zone's statement."""
        names = {challenge_record_name(d) for d in self.domains}
        return (POLICY_BYTES_PER_ORDER + POLICY_BYTES_PER_ZONE * len(self.zones)
                + 2 * sum(len(n) + 3 for n in names))

    def issuer_properties(self, *, material_secret: str, account_secret: str,
                          fleet_name: str) -> AcmeCertificateProperties:
        """What the issuer (and, with the regions and id, the renewer) is told: the secrets' ARNs and the fleet."""
        props = AcmeCertificateProperties(
            DirectoryUrl=self.directory_url,
            Domains=list(self.domains),
            KeyType=self.key_type,
            HostedZones=[HostedZone(Id=z.zone.hosted_zone_id, Name=z.name)
                         for z in self.zones],
            MaterialSecretId=material_secret,
            AccountSecretId=account_secret,
            Fleet=fleet_name,
        )
        account = self.account
        if account.contact:
            props["Contact"] = account.contact
        if account.eab_key_id and account.eab_hmac_secret is not None:
            props["EabKeyId"] = account.eab_key_id
            props["EabHmacSecretId"] = account.eab_hmac_secret.secret_arn
        return props


def _checked_directory(url: str) -> str:
    if not isinstance(url, str) or Token.is_unresolved(url):
        raise ValueError("CertificateSource.acme: directory_url must be the CA's ACME directory URL as a plain string "
                         "(e.g. https://acme-v02.api.letsencrypt.org/directory)")
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"CertificateSource.acme: directory_url {url!r} must be an https:// URL (RFC 8555 requires "
                         "HTTPS), e.g. https://acme-v02.api.letsencrypt.org/directory")
    return url.strip()


def _checked_domains(domains: Sequence[str]) -> tuple[str, ...]:
    if isinstance(domains, str) or not domains:
        raise ValueError("CertificateSource.acme: domains must be a non-empty list of DNS names, e.g. "
                         "['www.example.com', 'example.com']")
    if len(domains) > MAX_ORDER_NAMES:
        raise ValueError(f"CertificateSource.acme: {len(domains)} domains in one order, over the {MAX_ORDER_NAMES} "
                         "identifiers CAs such as Let's Encrypt accept per order: split the names over several "
                         "certificates (fleets)")
    checked: list[str] = []
    for domain in domains:
        if not isinstance(domain, str) or Token.is_unresolved(domain):
            raise ValueError(f"CertificateSource.acme: domain {domain!r} must be a plain string known at synth")
        name = domain.strip().lower()
        problem = name_problem(name)
        if problem:
            raise ValueError(f"CertificateSource.acme: domain {domain!r} is not a DNS name a CA may certify: {problem}")
        if name in checked:
            raise ValueError(f"CertificateSource.acme: domain {name!r} is listed twice: list each name once")
        checked.append(name)
    return tuple(checked)


def _zone_name(zone: route53.IHostedZone) -> str:
    """The zone's name, lower case without the final dot; refused when not known at synth (no name, or a token)."""
    try:
        name = zone.zone_name
    except Exception:  # jsii: HostedZone.from_hosted_zone_id has no name
        name = None
    if not isinstance(name, str) or Token.is_unresolved(name) or not name.strip(". "):
        how = "it has no name (HostedZone.from_hosted_zone_id)" if name is None else \
            "its name is only known at deploy time (a token)"
        raise ValueError(
            f"CertificateSource.acme: the hosted zone {zone.node.path}: {how}; the issuer needs the zone's name at "
            "synth to place the _acme-challenge records and to check each domain is inside it: use "
            "HostedZone.from_hosted_zone_attributes(hosted_zone_id=..., zone_name='example.com') or a zone with a "
            "literal name",
        )
    return name.lower().rstrip(".")


def _inside(domain: str, zone: str) -> bool:
    base = domain.removeprefix("*.")
    return base == zone or base.endswith("." + zone)


def _checked_zones(domains: tuple[str, ...],
                   hosted_zone: route53.IHostedZone | Mapping[str, route53.IHostedZone]) -> tuple[AcmeZone, ...]:
    if isinstance(hosted_zone, Mapping):
        given = {str(k).strip().lower(): v for k, v in hosted_zone.items()}
        missing = [d for d in domains if d not in given]
        extra = sorted(set(given) - set(domains))
        if missing or extra:
            raise ValueError(
                "CertificateSource.acme: hosted_zone as a mapping needs exactly one zone per domain: "
                + (f"no zone for {', '.join(missing)}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"{', '.join(extra)} is not one of the domains" if extra else ""),
            )
        by_zone: dict[int, tuple[route53.IHostedZone, list[str]]] = {}
        for domain in domains:
            zone = given[domain]
            by_zone.setdefault(id(zone), (zone, []))[1].append(domain)
        pairs = list(by_zone.values())
    else:
        if not _is_zone(hosted_zone):
            raise TypeError("CertificateSource.acme: hosted_zone must be a route53.IHostedZone, or a mapping "
                            "{domain: IHostedZone}")
        pairs = [(hosted_zone, list(domains))]
    zones = []
    for zone, served in pairs:
        if not _is_zone(zone):
            raise TypeError("CertificateSource.acme: each hosted zone must be a route53.IHostedZone")
        name = _zone_name(zone)
        outside = [d for d in served if not _inside(d, name)]
        if outside:
            raise ValueError(
                f"CertificateSource.acme: {', '.join(outside)} is not inside the hosted zone {name} "
                f"({zone.node.path}): the _acme-challenge record of each domain goes into the zone that serves it; "
                "give that zone (hosted_zone={domain: zone} for domains in several zones)",
            )
        zones.append(AcmeZone(zone, name, tuple(served)))
    return tuple(zones)


def _is_zone(value: object) -> bool:
    """Whether ``value`` is a Route 53 hosted zone (jsii interfaces are no runtime-checkable protocols)."""
    wanted = ("node", "hosted_zone_id", "hosted_zone_arn")
    return not isinstance(value, (str, Mapping)) and all(hasattr(value, a) for a in wanted)
