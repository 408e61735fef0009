"""Damaged files of every format: the loader answers with a MaterialError (a sentence), never another exception."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from material_support import DER, PEM, cli, key_der, key_pem, pem, resign, rsa_key, rsa_pki, seed_leaf, write

from certfleet.material import MaterialError, assemble, check_material, load_bytes
from certfleet.material.bundle import fingerprint
from certfleet.material.describe import describe_certificate, describe_key
from certfleet.material.loader import DamagedBlockError

KEY = rsa_key(2048, 0)


@functools.cache
def samples() -> dict[str, bytes]:
    pki = rsa_pki()
    certs = [seed_leaf().certificate, pki.intermediate.certificate, pki.root.certificate]
    return {
        "pem-bundle": key_pem(KEY, "traditional") + pem(*certs),
        "der-cert": certs[0].public_bytes(DER),
        "p7b-der": pkcs7.serialize_certificates(certs, DER),
        "p7b-pem": pkcs7.serialize_certificates(certs, PEM),
        "p12": pkcs12.serialize_key_and_certificates(b"x", KEY, certs[0], certs[1:],
                                                     serialization.BestAvailableEncryption(b"pw")),
        "p12-open": pkcs12.serialize_key_and_certificates(b"x", KEY, certs[0], certs[1:],
                                                          serialization.NoEncryption()),
        "der-key-encrypted": key_der(KEY, "pkcs8", b"pw"),
        "der-key": key_der(KEY, "traditional"),
    }


@st.composite
def damaged(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    name = draw(st.sampled_from(sorted(samples())))
    data = bytearray(samples()[name])
    how = draw(st.sampled_from(["truncate", "flip", "insert", "splice"]))
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= draw(st.integers(1, 255))
    elif how == "insert":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=8))
    else:
        other = samples()[draw(st.sampled_from(sorted(samples())))]
        data = data[: draw(st.integers(0, len(data)))] + other[draw(st.integers(0, len(other))):]
    password = draw(st.sampled_from([None, b"pw", b"", b"wrong"]))
    return bytes(data), password


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=damaged())
def test_damaged_input_gives_a_sentence_or_material(case: tuple[bytes, bytes | None]) -> None:
    data, password = case
    try:
        loaded = load_bytes(data, "damaged", password)
    except MaterialError as exc:
        assert exc.finding.message
        assert exc.finding.code
        return
    for cert in loaded.certificates:  # what `certfleet inspect` shows
        describe_certificate(cert)
    for item in loaded.keys:
        describe_key(item, loaded.certificates)
    try:
        material = assemble([loaded])
    except MaterialError as exc:
        assert exc.finding.code == "no-certificate"
        return
    check_material(material)


def _edited(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


def _malformed_cases() -> dict[str, tuple[bytes, str]]:
    der = seed_leaf().certificate.public_bytes(DER)
    p7 = pkcs7.serialize_certificates([seed_leaf().certificate], DER)
    signed_data = bytes.fromhex("2a864886f70d010702")
    return {
        # a name attribute re-tagged as RELATIVE-OID: cryptography parses names lazily, on first use
        "bad-string-tag-in-names": (der.replace(b"\x0c\x0ecertfleet demo", b"\x0d\x0ecertfleet demo"),
                                    "cannot be parsed"),
        "bad-string-tag-in-p7b": (p7.replace(b"\x0c\x0ecertfleet demo", b"\x0d\x0ecertfleet demo"),
                                  "cannot be parsed"),
        # PKCS#7 with a content type OpenSSL does not know: cryptography raises UnsupportedAlgorithm
        "p7-unknown-content-type": (_edited(p7, signed_data, signed_data[:-1] + b"\x09"),
                                    "not a certificate bundle"),
        # X.509 version 4 (value 3): cryptography raises InvalidVersion, which is not a ValueError
        "invalid-version": (_edited(der, bytes.fromhex("a003020102"), bytes.fromhex("a003020103")), "neither"),
        # the same extension twice: cryptography raises DuplicateExtension, which is not a ValueError
        "duplicate-extension": (resign(seed_leaf().certificate, rsa_pki().intermediate.key,
                                       duplicate_extension=True).public_bytes(DER), "extensions cannot be parsed"),
        "invalid-version-in-p7b": (_edited(p7, bytes.fromhex("a003020102"), bytes.fromhex("a003020103")),
                                   "PKCS#7 data holds no readable certificates"),
    }


def test_malformed_certificates_are_unreadable_not_a_crash(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    for case, (data, says) in _malformed_cases().items():
        with pytest.raises(MaterialError) as info:
            load_bytes(data, case)
        assert info.value.finding.code == "unreadable", case
        assert says in info.value.finding.message, (case, info.value.finding.message)
        path = write(tmp_path / f"{case}.der", data)
        run = cli(capsys, "inspect", path)
        assert run.code == 1, case
        assert says in run.err
        run = cli(capsys, "verify", "--certificate", path)
        assert run.code == 1, case


PEM_PARTS = {
    "leaf": pem(seed_leaf()),
    "intermediate": pem(rsa_pki().intermediate),
    "junk": b"Subject: whatever the CA's portal printed\n",
    "cut": b"-----BEGIN CERTIFICATE-----\nMIIFazCCA1OgAwIBAgIR\n",
    "stray-end": b"-----END CERTIFICATE-----\n",
    "garbage-key": b"-----BEGIN PRIVATE KEY-----\nTm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n",
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.sampled_from(sorted(PEM_PARTS)), min_size=1, max_size=12))
def test_every_good_block_is_read_whatever_surrounds_it(parts: list[str]) -> None:
    """A.13: damaged, cut and stray armor never hide a good block; damage is reported, not swallowed."""
    good = {"leaf": seed_leaf().certificate, "intermediate": rsa_pki().intermediate.certificate}
    expected = [fingerprint(good[p]) for p in parts if p in good]
    damaged = any(p in ("cut", "garbage-key") for p in parts)
    data = b"".join(PEM_PARTS[p] for p in parts)
    try:
        loaded = load_bytes(data, "mixed")
    except DamagedBlockError as exc:
        assert damaged and expected, parts
        loaded = exc.loaded
    except MaterialError:
        assert not expected, parts
        return
    else:
        assert not damaged, parts
    assert [fingerprint(c) for c in loaded.certificates] == expected
