"""Hostile inputs: how long ``load_file`` takes to load or refuse each (tests/hostile holds the same cases as tests).

    .venv/bin/python bench/hostile.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "hostile"))
import hostile_support as k

from certfleet.material import MaterialError, load_file
from certfleet.material.loader import MAX_INPUT_BYTES

GARBAGE_KEY = b"-----BEGIN PRIVATE KEY-----\nTm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n"


def main() -> None:
    folder = tempfile.mkdtemp(prefix="certfleet-hostile-")

    def write(name: str, data: bytes) -> str:
        path = os.path.join(folder, name)
        Path(path).write_bytes(data)
        return path

    fifo = os.path.join(folder, "fifo")
    os.mkfifo(fifo)
    big = os.path.join(folder, "big")
    with open(big, "wb") as handle:
        handle.truncate(MAX_INPUT_BYTES + 1)
    cases: dict[str, tuple[str, bytes | None]] = {
        "/dev/zero": ("/dev/zero", None),
        "a FIFO nobody writes": (fifo, None),
        "a folder": (folder, None),
        "a file over the size limit": (big, None),
        "20,000 BEGIN CERTIFICATE lines, no END": (write("b", b"-----BEGIN CERTIFICATE-----\n" * 20000), None),
        "PKCS#7 of 1,001 certificates": (write("p7", k.p7b_of(1001)), None),
        "1,000 PEM certificates (the cap)": (write("pem1000", k.cert_pem() * 1000), None),
        "PKCS#12, MAC iterations 200,000,000": (write("m", k.p12(mac_iterations=200_000_000)), k.PASSWORD),
        "PKCS#12, KDF iterations 200,000,000": (write("kd", k.p12(kdf_iterations=200_000_000)), k.PASSWORD),
        "BER PKCS#12, MAC iterations 200,000,000": (write("bm", k.ber(k.p12(mac_iterations=200_000_000))),
                                                    k.PASSWORD),
        "PKCS#12 key bag of 200,000,000 hidden in AES content": (write("h1", k.p12_hidden_key_bag(200_000_000)),
                                                                 k.PASSWORD),
        "PKCS#8, PBKDF2 200,000,000": (write("p8", k.encrypted_pkcs8(200_000_000)), k.PASSWORD),
        "PKCS#8, scrypt p=1,000,000": (write("sc", k.scrypt_pkcs8(1024, 8, 1_000_000)), k.PASSWORD),
        "DER nested 100,000 deep": (write("n", k.nested(100_000)), None),
        "a certificate, then a garbage key block": (write("g", k.cert_pem() + GARBAGE_KEY), None),
        "PKCS#8 at 1,000,000 iterations (within bounds)": (write("p8b", k.encrypted_pkcs8(1_000_000)), k.PASSWORD),
        "1,000 encrypted keys of 1,000,000 iterations": (write("ek", k.encrypted_pkcs8(1_000_000) * 1000),
                                                         k.PASSWORD),
        "500 certificates + 500 RSA-2048 keys": (
            write("ck", b"".join(k.cert_pem() + k.rsa_key_pem() for _ in range(50)) * 10), None),
    }
    print(f"{'input':55} {'seconds':>8}  result")
    for name, (path, password) in cases.items():
        start = time.perf_counter()
        try:
            loaded = load_file(path, password)
            result = f"loaded: {len(loaded.certificates)} certificate(s), {len(loaded.keys)} key(s)"
        except MaterialError as exc:
            result = f"refused ({exc.finding.code}): {exc.finding.message[:60]}"
        print(f"{name:55} {time.perf_counter() - start:8.3f}  {result}")


if __name__ == "__main__":
    main()
