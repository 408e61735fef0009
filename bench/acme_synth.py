"""Synth time of an ACME fleet against the same fleet from files (sealed key), median of N fresh processes each, and
whether two ACME synths are byte-identical (the renewer's asset comes from the cache: no network after the first).

    .venv/bin/python bench/acme_synth.py [RUNS]
"""

from __future__ import annotations

import filecmp
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
ENV = "Environment(account='123456789012', region='us-east-1')"
COMMON = '''
import sys
from pathlib import Path
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_route53 as route53
from certfleet import AcmeAccount, CertificateBundle, CertificateFleet, CertificateSource, KeySource
from certfleet.material.demo import DemoPKI
from certfleet.testing.synth import write_synth_only_sealed_key
out = Path(sys.argv[1])
app = App(outdir=str(out / "cdk.out"))
REGIONS = ["eu-west-1", "ap-northeast-1"]
'''
ACME = COMMON + f'''
dns = Stack(app, "Dns", env={ENV})
zone = route53.HostedZone.from_hosted_zone_attributes(dns, "Zone", hosted_zone_id="Z0EXAMPLE", zone_name="example.com")
route53.TxtRecord(dns, "Keep", zone=zone, record_name="keep", values=["x"])
CertificateFleet(app, "Certs", account="123456789012", regions=REGIONS, source=CertificateSource.acme(
    directory_url="https://acme.example.net/directory", domains=["www.example.com", "*.example.com"],
    hosted_zone=zone, account=AcmeAccount(contact="mailto:ops@example.com")))
app.synth()
'''
FILES = COMMON + '''
pki = DemoPKI.create()
leaf = pki.leaf(("www.example.com", "*.example.com"), days=90)
(out / "cert.pem").write_bytes(leaf.pem())
(out / "chain.pem").write_bytes(pki.chain_pem())
sealed = write_synth_only_sealed_key(out / "key.sealed", leaf.key)
bundle = CertificateBundle.from_files(out / "cert.pem", chain=out / "chain.pem")
CertificateFleet(app, "Certs", bundle=bundle, key=KeySource.sealed(sealed), account="123456789012", regions=REGIONS)
app.synth()
'''


def run(code: str, folder: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-P", "-c", code, str(folder)], check=True, capture_output=True,
                   env={"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "PATH": "/usr/bin:/bin",
                        "HOME": str(Path.home())})
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, code in (("files (sealed key)", FILES), ("ACME", ACME)):
            times = [run(code, root / f"{name[:4]}{i}") for i in range(RUNS)]
            print(f"{name:18} 3 regions: median {statistics.median(times):.1f} s of {RUNS} "
                  f"({', '.join(f'{t:.1f}' for t in times)})")
        a, b = root / "ACME0" / "cdk.out", root / "ACME1" / "cdk.out"
        same = all(filecmp.cmp(a / f.name, b / f.name, shallow=False) for f in a.glob("*.template.json"))
        print(f"ACME templates of two synths byte-identical: {same}")


if __name__ == "__main__":
    main()
