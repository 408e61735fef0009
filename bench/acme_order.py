"""ACME issuance against a local pebble (DNS-01 via challtestsrv): registration and order times per key type, and
the renewer's asset (files, bytes, zipped bytes) from the cache.

    .venv/bin/python bench/acme_order.py [--asset]
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "acme"))
import acme_support as support  # puts lambda/ on sys.path

import certfleet_acme as ca

ROUNDS = 5
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def orders() -> None:
    with support.ChallTestSrv() as dns, support.Pebble(Path(tempfile.mkdtemp()), dns.dns_address) as pebble:
        os.environ["REQUESTS_CA_BUNDLE"] = str(pebble.ca_bundle)
        started = time.perf_counter()
        acme = ca.open_client(pebble.directory_url, ca.new_account_key())
        ca.register(acme, contact="mailto:ops@example.com")
        print(f"directory + registration: {time.perf_counter() - started:.3f} s")
        for key_type in ("ec-p256", "rsa-2048", "rsa-4096"):
            times = []
            for round_ in range(ROUNDS):
                started = time.perf_counter()
                ca.order_certificate(acme, [f"r{round_}.example.com", f"*.r{round_}.example.com"], key_type,
                                     dns.publish, dns.withdraw)
                times.append(time.perf_counter() - started)
            print(f"order {key_type:8} (2 names, 1 wildcard): median {statistics.median(times):.3f} s, "
                  f"max {max(times):.3f} s over {ROUNDS}")


def asset() -> None:
    from certfleet.acme_asset import acme_asset_dir

    started = time.perf_counter()
    folder = acme_asset_dir()
    took = time.perf_counter() - started
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != ".certfleet-complete"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(folder))
    print(f"asset {folder}: {len(files)} files, {sum(p.stat().st_size for p in files) / 1e6:.1f} MB, "
          f"{len(buffer.getvalue()) / 1e6:.1f} MB zipped; acme_asset_dir() took {took:.2f} s")


if __name__ == "__main__":
    orders()
    if "--asset" in sys.argv:
        asset()
