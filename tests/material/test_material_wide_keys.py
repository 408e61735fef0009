"""key-too-large: an RSA key whose PKCS#8 PEM is over ACM's 5,120 bytes, and the boundary below it.

The oversized key (material_support.OVERSIZED_RSA_BITS = 6,656 bits, the smallest size in 128-bit steps over the
limit, about 2.5 times faster to generate than 7,680 bits) is made on a background thread from the moment
material_support is imported (see material_support._Background); this file sorts last so that, on two or more
CPUs, the key is ready when it runs.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from material_support import OVERSIZED_RSA_BITS, check, key_pem, leaf, pem, rsa_key, seed_chain, write

from certfleet.material import assemble, check_material, load_file
from certfleet.material.checks import MAX_KEY_BYTES, pem_sizes
from certfleet.material.demo import Issued


@functools.cache
def _huge_key_leaf() -> Issued:
    # ACM's 5,120-byte limit on the PKCS#8 PEM key: an RSA key of 6,656 bits is about 5,220 bytes
    return leaf(key=rsa_key(OVERSIZED_RSA_BITS))


def test_key_too_large(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    issued = _huge_key_leaf()
    findings, run = check(tmp_path, capsys, cert=pem(issued), key=issued.key,
                          code="key-too-large", severity="error", exit=1)
    assert "key-algorithm-unsupported" in [f.code for f in findings]  # RSA above 4096 is not ACM's either
    assert "5,120" in run.out


def test_key_size_boundary_with_the_largest_acm_key(tmp_path: Path) -> None:
    # RSA 4096, the largest key ACM takes, is well under the limit: key-too-large fires only above 4096
    issued = leaf(key=rsa_key(4096))
    key_path = write(tmp_path / "k.key", key_pem(issued.key), 0o400)
    material = assemble([load_file(write(tmp_path / "c.pem", pem(issued) + seed_chain())), load_file(key_path)])
    _cert, key_size, _chain = pem_sizes(material)
    assert 3_000 < key_size < MAX_KEY_BYTES
    assert "key-too-large" not in [f.code for f in check_material(material)]
    material.key = rsa_key(OVERSIZED_RSA_BITS)
    assert pem_sizes(material)[1] > MAX_KEY_BYTES


def test_an_oversized_rsa_key_loads_without_a_long_stall(tmp_path: Path) -> None:
    # OpenSSL's RSA validation takes seconds above 6,000 bits; certfleet checks the numbers arithmetically instead.
    # A hard deadline (not a timing assertion): a load that stalls fails the test; figures are in bench/.
    import signal

    key = rsa_key(OVERSIZED_RSA_BITS)
    path = write(tmp_path / "big.key", key_pem(key), 0o400)

    def stalled(_signum: int, _frame: object) -> None:
        raise TimeoutError("loading one oversized RSA key took over 20 s")

    previous = signal.signal(signal.SIGALRM, stalled)
    signal.alarm(20)
    try:
        (item,) = load_file(path).keys
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert isinstance(item.key, rsa.RSAPrivateKey) and item.key.key_size == OVERSIZED_RSA_BITS
