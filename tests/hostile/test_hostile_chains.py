"""Hostile chains: many certificates of one name, cross-sign lattices, long lines. Each ends quickly and says why.

A hard deadline (SIGALRM) fails a test that would run for minutes; it measures nothing finer than that.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certfleet.cli.main import main
from certfleet.material import assemble, check_material, load_bytes
from certfleet.material.demo import Issued, issue

DEADLINE = 15  # seconds; the quadratic code this guards against took minutes


class DeadlineExceeded(BaseException):
    """Raised by SIGALRM inside the code under test (not an Exception: the CLI's catch-all must not swallow it)."""


@contextlib.contextmanager
def deadline(seconds: int = DEADLINE) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise DeadlineExceeded(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@functools.cache
def _key(n: int) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(*issued: Issued) -> bytes:
    return b"".join(i.certificate.public_bytes(serialization.Encoding.PEM) for i in issued)


def _verify(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str]:
    capsys.readouterr()
    with deadline():
        code = main(["verify", "--certificate", str(path)])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text and "This is a bug" not in text, text
    return code, text


def test_a_thousand_self_signed_certificates_of_one_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = _key(0)
    path = tmp_path / "many.pem"
    path.write_bytes(b"".join(_pem(issue("same name", key=key, ca=True)) for _ in range(1000)))
    code, text = _verify(capsys, path)
    assert code == 1
    assert "certificates" in text and "at most" in text


def test_one_name_up_to_the_cap_is_bounded(tmp_path: Path) -> None:
    # 255 certificates of one name and one key: each would "issue" every other one
    key = _key(1)
    roots = [issue("same name", key=key, ca=True) for _ in range(255)]
    end = issue("www.example.com", issuer=roots[0], key=_key(2), names=("www.example.com",))
    with deadline():
        material = assemble([load_bytes(_pem(end, *roots))])
        check_material(material)
    assert material.leaf == end.certificate
    assert len(material.chain) == 1


def _lattice(layers: int, copies: int) -> tuple[Issued, Issued, list[Issued]]:
    """A root, then ``layers`` layers of ``copies`` copies (one name and key per layer), then a leaf.

    Every copy in a layer is signed by the key that every copy of the layer above holds: a chain builder
    that tried every path would walk ``copies ** layers`` of them.
    """
    top = issue("lattice Root CA", key=_key(10), ca=True, days=3650)
    above = [top]
    made: list[Issued] = [top]
    for depth in range(layers):
        layer = [issue(f"lattice layer {depth}", issuer=above[n % len(above)], key=_key(11 + depth), ca=True,
                       days=365 + n) for n in range(copies)]
        made += layer
        above = layer
    end = issue("www.example.com", issuer=above[0], key=_key(100), names=("www.example.com",))
    return top, end, made


def test_a_lattice_of_cross_signed_copies_is_walked_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layers = 8
    top, end, made = _lattice(layers, copies=6)  # 6**8 = 1.7 million paths
    path = tmp_path / "lattice.pem"
    path.write_bytes(_pem(end, *reversed(made)))
    with deadline():
        material = assemble([load_bytes(path.read_bytes())])
    assert len(material.chain) == layers + 1
    assert material.chain[-1] == top.certificate
    latest: dict[x509.Name, dt.datetime] = {}
    for issued in made:
        cert = issued.certificate
        latest[cert.subject] = max(latest.get(cert.subject, cert.not_valid_after_utc), cert.not_valid_after_utc)
    assert [c.not_valid_after_utc for c in material.chain] == [latest[c.subject] for c in material.chain]
    assert material.unrelated == []
    code, text = _verify(capsys, path)
    assert code == 0, text


def test_a_lattice_too_wide_to_sort_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, end, made = _lattice(29, copies=8)
    path = tmp_path / "lattice.pem"
    path.write_bytes(_pem(end, *reversed(made)))
    code, text = _verify(capsys, path)
    assert code == 1
    assert "[too-many-certificates]" in text and "signature checks" in text


def test_a_long_line_without_a_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = [issue("line 0", key=_key(200), ca=True)]
    for n in range(1, 200):
        line.append(issue(f"line {n}", issuer=line[-1], key=_key(200 + n % 2), ca=True))
    # cut the line from its root: the chain stops where the files stop, and says so
    end = issue("www.example.com", issuer=line[-1], key=_key(3), names=("www.example.com",))
    path = tmp_path / "line.pem"
    path.write_bytes(_pem(end, *line[1:]))
    with deadline():
        material = assemble([load_bytes(path.read_bytes())])
        codes = [f.code for f in check_material(material)]
    assert len(material.chain) == 199
    assert "chain-incomplete" in codes
    code, text = _verify(capsys, path)
    assert code == 0 and "chain-incomplete" in text
