"""Synth overhead and determinism.

The demo environment of the reference app against the same architectures hand-wired with
`acm.Certificate.from_certificate_arn` (what people write when certificates are imported by hand), median
of N synths each, in fresh processes; then two synths of the reference app compared byte for byte.

    .venv/bin/python bench/synth.py [RUNS]
"""

from __future__ import annotations

import filecmp
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5

PREPARE = '''
import json, sys
from pathlib import Path
from certfleet.material.demo import DemoPKI
from certfleet.testing.synth import write_synth_only_sealed_key
folder = Path(sys.argv[1])
(folder / "demo").mkdir(parents=True, exist_ok=True)
pki = DemoPKI.create()
leaf = pki.leaf(("www.example.com", "example.com", "*.example.com"), days=300)
(folder / "demo" / "certificate.pem").write_bytes(leaf.pem())
(folder / "demo" / "chain.pem").write_bytes(pki.chain_pem())
write_synth_only_sealed_key(folder / "demo" / "private.key.sealed", leaf.key)
'''

CERTFLEET_APP = '''
import json, sys
from pathlib import Path
from aws_cdk import App
from certfleet.reference import build
folder = Path(sys.argv[1])
context = json.loads(Path(sys.argv[2]).read_text())["context"]
app = App(outdir=sys.argv[3], context={**context, "env": "demo"})
build(app, folder)
app.synth()
'''

HAND_WIRED_APP = '''
import json, sys
from pathlib import Path
from aws_cdk import App
from aws_cdk import aws_certificatemanager as acm
from certfleet.reference.architectures import ARCHITECTURES
from certfleet.rules import Service

class ByArn:
    """What a hand-wired app has: one ARN per region, imported by hand (no fleet, no checks)."""
    account = "123456789012"
    def certificate_for(self, scope, service=None):
        from aws_cdk import Stack
        stack = Stack.of(scope)
        edge = (Service.CLOUDFRONT, Service.API_GATEWAY_EDGE, Service.AMPLIFY)
        region = "us-east-1" if service in edge else stack.region
        arn = f"arn:aws:acm:{region}:123456789012:certificate/11111111-2222-3333-4444-555555555555"
        return acm.Certificate.from_certificate_arn(scope, f"Cert{region}{service}", arn)

app = App(outdir=sys.argv[3])
fleet = ByArn()
for name, (stack_class, regions) in ARCHITECTURES.items():
    for region in regions:
        stack_class(app, f"{name}-{region}", fleet=fleet, region=region, domain="example.com")
app.synth()
'''


def timed(script: str, folder: Path, out: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-P", "-c", script, str(folder), str(ROOT / "cdk.json"), str(out)], check=True,
                   capture_output=True, env={"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
                                             "PATH": "/usr/bin:/bin", "HOME": str(folder)})
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run([sys.executable, "-P", "-c", PREPARE, str(folder)], check=True)
        ours = [timed(CERTFLEET_APP, folder, folder / f"ours{i}") for i in range(RUNS)]
        theirs = [timed(HAND_WIRED_APP, folder, folder / f"theirs{i}") for i in range(RUNS)]
        a, b = statistics.median(ours), statistics.median(theirs)
        count = len(list((folder / "ours0").glob("*.template.json")))
        print(f"reference app (fleet + checks), demo env: {a:6.2f} s median of {RUNS} ({count} templates)")
        print(f"same architectures, ARNs by hand:         {b:6.2f} s median of {RUNS}")
        print(f"synth overhead ratio:                     {a / b:6.2f}x")
        first, second = folder / "ours0", folder / "ours1"
        names = sorted(p.name for p in first.glob("*.template.json"))
        same = all(filecmp.cmp(first / n, second / n, shallow=False) for n in names)
        sizes = [len((first / n).read_bytes()) for n in names]
        resources = [len(json.loads((first / n).read_text())["Resources"]) for n in names]
        print(f"determinism: {len(names)} templates of two synths byte-identical: {same}")
        print(f"largest template {max(sizes) / 1024:.0f} KiB; most resources in a stack: {max(resources)}")


if __name__ == "__main__":
    main()
