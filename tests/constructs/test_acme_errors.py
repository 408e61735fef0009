"""What CertificateSource.acme and AcmeAccount refuse at synth, each error naming the problem and the fix."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_secretsmanager as secretsmanager

from certfleet import AcmeAccount, CertificateFleet, CertificateSource
from certfleet.acme_order import challenge_record_name

ACCOUNT = "123456789012"
DIRECTORY = "https://acme.example.net/directory"


@pytest.fixture
def stack() -> Stack:
    return Stack(App(), "Dns", env=Environment(account=ACCOUNT, region="us-east-1"))


def zone(stack: Stack, name: str = "example.com", zone_id: str = "Z0EXAMPLE") -> route53.IHostedZone:
    found = stack.node.try_find_child(f"Zone{zone_id}")
    if found is not None:
        return found  # type: ignore[return-value]
    return route53.HostedZone.from_hosted_zone_attributes(stack, f"Zone{zone_id}", hosted_zone_id=zone_id,
                                                          zone_name=name)


def source(stack: Stack, **overrides: Any) -> Any:
    arguments: dict[str, Any] = dict(directory_url=DIRECTORY, domains=["www.example.com"], hosted_zone=zone(stack))
    arguments.update(overrides)
    return CertificateSource.acme(**arguments)


@pytest.mark.parametrize("key_type", ["ec-p521", "rsa-1024", "EC_prime256v1", ""])
def test_key_type_must_be_one_acme_orders(stack: Stack, key_type: str) -> None:
    with pytest.raises(ValueError, match=r"key_type=.* is not one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096"):
        source(stack, key_type=key_type)


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"])
def test_every_acme_key_type_is_taken(stack: Stack, key_type: str) -> None:
    assert source(stack, key_type=key_type).key_type == key_type


@pytest.mark.parametrize(("domains", "problem"), [
    ([], "non-empty list"),
    ("www.example.com", "non-empty list"),
    (["www.*.example.com"], "wildcard may only be the whole leftmost label"),
    (["*.*.example.com"], "wildcard may only be the whole leftmost label"),
    (["www.example.com."], "ends with a dot"),
    (["www example.com"], "only letters, digits and hyphens"),
    (["192.0.2.1"], "IP address"),
    (["www.example.com", "WWW.example.com"], "listed twice"),
])
def test_domains_must_be_dns_names(stack: Stack, domains: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        source(stack, domains=domains)


def test_every_domain_must_be_inside_the_zone(stack: Stack) -> None:
    with pytest.raises(ValueError, match=r"www\.example\.org is not inside the hosted zone example\.com .*"
                                         r"hosted_zone=\{domain: zone\}"):
        source(stack, domains=["www.example.com", "www.example.org"])
    with pytest.raises(ValueError, match=r"notexample\.com is not inside"):  # a suffix, not a subdomain
        source(stack, domains=["notexample.com"])


def test_per_domain_zones_cover_every_domain_exactly(stack: Stack) -> None:
    com, org = zone(stack), zone(stack, "example.org", "Z0ORG")
    made = source(stack, domains=["www.example.com", "*.example.org"],
                  hosted_zone={"www.example.com": com, "*.example.org": org})
    assert [z.domains for z in made.order.zones] == [("www.example.com",), ("*.example.org",)]
    with pytest.raises(ValueError, match=r"no zone for \*\.example\.org"):
        source(stack, domains=["www.example.com", "*.example.org"], hosted_zone={"www.example.com": com})
    with pytest.raises(ValueError, match=r"api\.example\.com is not one of the domains"):
        source(stack, hosted_zone={"www.example.com": com, "api.example.com": com})
    with pytest.raises(ValueError, match=r"www\.example\.com is not inside the hosted zone example\.org"):
        source(stack, hosted_zone={"www.example.com": org})


def test_a_zone_without_a_name_is_refused(stack: Stack) -> None:
    nameless = route53.HostedZone.from_hosted_zone_id(stack, "Nameless", "Z0NAMELESS")
    with pytest.raises(ValueError, match=r"has no name .*from_hosted_zone_attributes"):
        source(stack, hosted_zone=nameless)


def test_a_zone_must_be_a_hosted_zone(stack: Stack) -> None:
    with pytest.raises(TypeError, match=r"hosted_zone must be a route53\.IHostedZone"):
        source(stack, hosted_zone="Z0EXAMPLE")


@pytest.mark.parametrize("url", ["http://acme.example.net/directory", "acme.example.net/directory", "https://", ""])
def test_the_directory_must_be_https(stack: Stack, url: str) -> None:
    with pytest.raises(ValueError, match="must be an https:// URL"):
        source(stack, directory_url=url)


def test_eab_needs_its_key_id_and_its_hmac_secret(stack: Stack) -> None:
    secret = secretsmanager.Secret.from_secret_name_v2(stack, "Hmac", "eab-hmac")
    with pytest.raises(ValueError, match="needs both eab_key_id and eab_hmac_secret"):
        AcmeAccount(eab_key_id="kid")
    with pytest.raises(ValueError, match="needs both eab_key_id and eab_hmac_secret"):
        AcmeAccount(eab_hmac_secret=secret)
    with pytest.raises(ValueError, match="eab_key_id must be"):
        AcmeAccount(eab_key_id=" ", eab_hmac_secret=secret)
    assert AcmeAccount(eab_key_id="kid", eab_hmac_secret=secret).eab_key_id == "kid"


@pytest.mark.parametrize("contact", ["ops", "mailto:a@example.com, b@example.com", " "])
def test_contact_is_one_email_address(contact: str) -> None:
    with pytest.raises(ValueError, match="contact"):
        AcmeAccount(contact=contact)


def test_a_bare_contact_address_gets_mailto() -> None:
    assert AcmeAccount(contact="ops@example.com").contact == "mailto:ops@example.com"
    assert AcmeAccount(contact="mailto:ops@example.com").contact == "mailto:ops@example.com"


def test_the_account_must_be_an_acme_account(stack: Stack) -> None:
    with pytest.raises(TypeError, match="account must be an AcmeAccount"):
        source(stack, account={"contact": "ops@example.com"})


def test_a_fleet_across_accounts_is_refused_for_an_acme_source(stack: Stack) -> None:
    app = stack.node.root
    assert isinstance(app, App)
    with pytest.raises(ValueError, match=r"Certs: an ACME source renews and re-imports from the primary account "
                                         r"\(123456789012, us-east-1\) only.*eu-west-1.*one fleet per account"):
        CertificateFleet(app, "Certs", source=source(stack), account=ACCOUNT, regions=["eu-west-1"],
                         accounts={"eu-west-1": "210987654321"})


def test_challenge_record_names_are_what_route53_normalizes() -> None:
    assert challenge_record_name("*.Example.COM") == "_acme-challenge.example.com"
    assert challenge_record_name("www.example.com") == "_acme-challenge.www.example.com"
