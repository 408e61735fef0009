"""TLS floors, regions and keys are data in certfleet.rules; the template checks spell none of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import certfleet.checks
from certfleet.rules import API_TLS, CLOUDFRONT_TLS, ELB_TLS, RULES, Service, TlsFloor

_POLICY_OR_KEY = re.compile(r"TLSv1|ELBSecurityPolicy|TLS_1_|TLS_V1|RSA_\d|EC_(prime|secp)|\"us-east-1\"")


@pytest.mark.parametrize(("floor", "policy", "below"), [
    (CLOUDFRONT_TLS, None, True), (CLOUDFRONT_TLS, "TLSv1.2_2019", True), (CLOUDFRONT_TLS, "TLSv1.2_2021", False),
    (CLOUDFRONT_TLS, "TLSv1.3_2025", False), (CLOUDFRONT_TLS, "TLSv9_2099", False),
    (API_TLS, None, False), (API_TLS, "TLS_1_0", True), (API_TLS, "TLS_1_2", False),
    (API_TLS, "SecurityPolicy_TLS13_1_3_2025_09", False),
    (ELB_TLS, None, True), (ELB_TLS, "ELBSecurityPolicy-2016-08", True),
    (ELB_TLS, "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09", False),
])
def test_tls_floor_is_below(floor: TlsFloor, policy: str | None, below: bool) -> None:
    assert floor.is_below(policy) is below


def test_each_checked_service_has_its_floor_in_the_rules() -> None:
    assert RULES[Service.CLOUDFRONT].tls is CLOUDFRONT_TLS
    assert {RULES[s].tls for s in (Service.API_GATEWAY_EDGE, Service.API_GATEWAY_REGIONAL, Service.API_GATEWAY_V2)} \
        == {API_TLS}
    assert RULES[Service.ALB].tls is ELB_TLS and RULES[Service.NLB].tls is ELB_TLS


def test_checks_spell_no_policy_key_or_region() -> None:
    for path in sorted(Path(certfleet.checks.__file__).parent.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            assert not _POLICY_OR_KEY.search(code), f"{path.name}:{number}: {line.strip()}"


def test_every_module_is_under_500_lines() -> None:
    for path in sorted(Path(certfleet.checks.__file__).parent.rglob("*.py")):
        assert len(path.read_text(encoding="utf-8").splitlines()) < 500, path
