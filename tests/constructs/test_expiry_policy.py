"""Synth-time expiry policy: warn within 30 days, refuse an expired certificate unless a deploy names it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Annotations, Match
from construct_support import ACCOUNT

from certfleet import CertificateBundle, CertificateFleet, ImportedCertificate, KeySource
from certfleet.certificate_bundle import ALLOW_EXPIRED_CONTEXT, CertificateBundleError
from certfleet.material.demo import DemoPKI

SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:production/ssl/private-key-AbCdEf"
LONG_AGO = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def expired_pem(pki: DemoPKI, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("expired") / "old.pem"
    path.write_bytes(pki.leaf(("www.example.com",), not_before=LONG_AGO, days=30).pem() + pki.chain_pem())
    return path


def _fleet(app: App, bundle: CertificateBundle) -> CertificateFleet:
    return CertificateFleet(app, "Certificates", bundle=bundle, key=KeySource.secret(SECRET), account=ACCOUNT,
                            regions=["eu-west-1"])


def test_expiring_within_30_days_warns_on_every_certificate(pki: DemoPKI, tmp_path: Path) -> None:
    soon = tmp_path / "soon.pem"
    soon.write_bytes(pki.leaf(("www.example.com",), days=12).pem() + pki.chain_pem())
    fleet = _fleet(App(), CertificateBundle.from_files(soon))
    for region in fleet.regions:
        Annotations.from_stack(fleet.stack_for(region)).has_warning(
            "*", Match.string_like_regexp(r"expires-soon.*expires in 1[12] days"),
        )


def test_expired_is_refused_when_read_naming_the_break_glass(expired_pem: Path) -> None:
    with pytest.raises(CertificateBundleError) as caught:
        CertificateBundle.from_files(expired_pem)
    message = str(caught.value)
    assert "[expired]" in message
    assert "allow_expired=True" in message
    assert f"cdk deploy -c {ALLOW_EXPIRED_CONTEXT}=" in message


def test_allow_expired_alone_still_fails_synth_naming_the_certificate_and_the_override(expired_pem: Path) -> None:
    bundle = CertificateBundle.from_files(expired_pem, allow_expired=True)
    assert bundle.expired is not None and bundle.expired.code == "expired"
    with pytest.raises(ValueError) as caught:
        _fleet(App(), bundle)
    message = str(caught.value)
    assert message.startswith("Certificates: the certificate www.example.com")
    assert "expired on 2020-01-31" in message
    assert f"cdk deploy -c {ALLOW_EXPIRED_CONTEXT}={bundle.fingerprint}" in message


def test_break_glass_context_with_the_fingerprint_deploys_with_a_warning(expired_pem: Path) -> None:
    bundle = CertificateBundle.from_files(expired_pem, allow_expired=True)
    app = App(context={ALLOW_EXPIRED_CONTEXT: bundle.fingerprint.upper()})
    fleet = _fleet(app, bundle)
    for region in fleet.regions:
        Annotations.from_stack(fleet.stack_for(region)).has_warning(
            "*", Match.string_like_regexp(r"expired on 2020-01-31.*deployed anyway.*Renew it now"),
        )
    app.synth()


def test_break_glass_for_another_certificate_does_not_apply(expired_pem: Path) -> None:
    bundle = CertificateBundle.from_files(expired_pem, allow_expired=True)
    app = App(context={ALLOW_EXPIRED_CONTEXT: "00" * 32})
    stack = Stack(app, "Certs", env=Environment(account=ACCOUNT, region="eu-west-1"))
    with pytest.raises(ValueError, match=r"^Certs/Cert: the certificate www.example.com .* expired"):
        ImportedCertificate(stack, "Cert", bundle=bundle, key=KeySource.secret(SECRET))


def test_other_errors_stay_fatal_with_allow_expired(pki: DemoPKI, tmp_path: Path) -> None:
    future = tmp_path / "future.pem"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    future.write_bytes(pki.leaf(("www.example.com",), not_before=later, days=90).pem())
    with pytest.raises(CertificateBundleError, match=r"\[not-yet-valid\]") as caught:
        CertificateBundle.from_files(future, allow_expired=True)
    assert "allow_expired" not in str(caught.value)
