"""Write the reference app's committed example material (dev, staging, prod) into reference/.

The pipeline synthesizes from a clean checkout, so these environments need files that are committed: a
certificate and chain (public) and a sealed key file whose ciphertext is random bytes (synth never decrypts it;
its public-key hash is the certificate's). The private keys exist only in this process's memory and are never
written, so the material can only be synthesized, never deployed: a real deployment seals its own key
(`certfleet seal`). Re-run to renew it before tests/e2e/test_pipeline_checkout.py says it expires:

    .venv/bin/python -P scripts/reference_material.py            # writes reference/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from certfleet.material.demo import DemoPKI
from certfleet.testing.synth import write_synth_only_sealed_key

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("www.example.com", "example.com", "*.example.com")
LEAF_DAYS = 825  # the CAs last 1,825 (intermediate) and 3,650 days (root): the leaf expires first
LABEL = "certfleet reference example"  # a CA no one trusts; its keys, like the leaf's, are never written


def write_reference_material(out: Path, days: int = LEAF_DAYS) -> dict[str, Path]:
    """certificate.pem, chain.pem and private.key.sealed (random ciphertext) in ``out``; no private key anywhere."""
    out.mkdir(parents=True, exist_ok=True)
    pki = DemoPKI.create(label=LABEL)
    leaf = pki.leaf(NAMES, days=days)
    paths = {"certificate": out / "certificate.pem", "chain": out / "chain.pem", "key": out / "private.key.sealed"}
    paths["certificate"].write_bytes(leaf.pem())
    paths["chain"].write_bytes(pki.chain_pem())
    write_synth_only_sealed_key(paths["key"], leaf.key, name=NAMES[0])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reference", help="folder to write (default reference/)")
    parser.add_argument("--days", type=int, default=LEAF_DAYS, help=f"leaf validity in days (default {LEAF_DAYS})")
    args = parser.parse_args()
    for name, path in write_reference_material(args.out, args.days).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
