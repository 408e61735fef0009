"""Scale: N certificates in each of R regions (default 100 x 17) — CloudFormation's limits and synth time.

Each region's stack holds N ImportedCertificates (distinct EC P-256 certificates, each key in its own secret),
sharing the stack's one importer. Prints resources per stack (limit 500), template size (limit 1 MB), the
largest IAM policy document of a role (inline limit 10,240 characters per role), and synth time.

    .venv/bin/python bench/scale.py [CERTIFICATES] [REGIONS]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2",
           "eu-west-3", "eu-central-1", "eu-north-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
           "ap-southeast-1", "ap-southeast-2", "ap-south-1", "sa-east-1"]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    regions = REGIONS[: int(sys.argv[2]) if len(sys.argv) > 2 else 17]
    from aws_cdk import App, Environment, Stack

    from certfleet import CertificateBundle, ImportedCertificate, KeySource
    from certfleet.material.demo import DemoPKI

    started = time.perf_counter()
    pki = DemoPKI.create("ec-p256", label="scale")
    bundles = [CertificateBundle.from_pem(
        pki.leaf((f"site{i}.example.com",), key_type="ec-p256").pem().decode(), pki.chain_pem().decode(),
    ) for i in range(count)]
    print(f"{count} certificates generated and checked in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        app = App(outdir=out)
        for region in regions:
            stack = Stack(app, f"Certs-{region}", env=Environment(account="123456789012", region=region))
            for i, bundle in enumerate(bundles):
                ImportedCertificate(stack, f"Site{i}", bundle=bundle,
                                    key=KeySource.secret(f"tls/site{i}.example.com"), fleet_name="scale")
        built = time.perf_counter() - started
        app.synth()
        total = time.perf_counter() - started
        templates = sorted(Path(out).glob("*.template.json"))
        sizes, resources, policies = [], [], []
        for path in templates:
            template = json.loads(path.read_text())
            sizes.append(path.stat().st_size)
            resources.append(len(template["Resources"]))
            per_role: dict[str, int] = {}
            for resource in template["Resources"].values():
                if resource["Type"] == "AWS::IAM::Policy":
                    size = len(json.dumps(resource["Properties"]["PolicyDocument"], separators=(",", ":")))
                    for role in resource["Properties"].get("Roles", []):
                        per_role[json.dumps(role)] = per_role.get(json.dumps(role), 0) + size
            policies.append(max(per_role.values(), default=0))
    print(f"{len(templates)} stacks x {count} certificates: constructs {built:.1f} s, synth total {total:.1f} s")
    print(f"resources per stack: max {max(resources)} (CloudFormation limit 500)")
    print(f"template size: max {max(sizes) / 1024:.0f} KiB (limit 1,024 KiB)")
    print(f"inline IAM policy per role: max {max(policies):,} characters, unresolved (IAM limit 10,240 per role)")
    verdict = max(resources) < 500 and max(sizes) < 1024 * 1024 and max(policies) < 10_240
    print("within every limit" if verdict else "a limit is crossed: see above")


if __name__ == "__main__":
    main()
