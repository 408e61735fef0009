"""Scale: N certificates in each of R regions (default 100 x 17) in a FleetGroup — CloudFormation's limits and
synth time.

Each certificate is a fleet of the group (distinct EC P-256 certificates, each with its own sealed key, in
us-east-1 and R-1 more regions). The group shares one stack per region and opens a shard stack wherever the next
fleet would cross a limit. Prints the stacks and shards per region, resources per stack (limit 500), outputs
(limit 200), template size (limit 1 MB), the largest IAM policy of a role (inline limit 10,240 characters) and
the synth time; exits 1 if a limit is crossed. ``--max-template-bytes`` and friends pass the group's limits.

    .venv/bin/python bench/scale.py [CERTIFICATES] [REGIONS] [--max-template-bytes N] [--max-resources N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2",
           "eu-west-3", "eu-central-1", "eu-north-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
           "ap-southeast-1", "ap-southeast-2", "ap-south-1", "sa-east-1"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("certificates", type=int, nargs="?", default=100)
    parser.add_argument("regions", type=int, nargs="?", default=17)
    parser.add_argument("--max-resources", type=int, default=450)
    parser.add_argument("--max-outputs", type=int, default=180)
    parser.add_argument("--max-template-bytes", type=int, default=800_000)
    args = parser.parse_args()
    from aws_cdk import App

    from certfleet import CertificateBundle, FleetGroup, KeySource
    from certfleet.material.demo import DemoPKI
    from certfleet.testing.synth import write_synth_only_sealed_key

    regions = REGIONS[: args.regions]
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        pki = DemoPKI.create("ec-p256", label="scale")
        sites = []
        for i in range(args.certificates):
            name = f"site{i}.example.com"
            leaf = pki.leaf((name,), key_type="ec-p256")
            bundle = CertificateBundle.from_pem(leaf.pem().decode(), pki.chain_pem().decode())
            sites.append((bundle, write_synth_only_sealed_key(Path(work) / f"{i}.sealed", leaf.key, name)))
        print(f"{args.certificates} certificates and sealed keys generated and checked in "
              f"{time.perf_counter() - started:.1f} s")
        out = Path(work) / "cdk.out"
        started = time.perf_counter()
        app = App(outdir=str(out))
        group = FleetGroup(app, "Certs", account="123456789012", regions=regions[1:], edge=regions[0] == "us-east-1",
                           max_resources=args.max_resources, max_outputs=args.max_outputs,
                           max_template_bytes=args.max_template_bytes)
        for i, (bundle, sealed) in enumerate(sites):
            group.add_fleet(f"Site{i}", bundle=bundle, key=KeySource.sealed(sealed))
        built = time.perf_counter() - started
        app.synth()
        total = time.perf_counter() - started
        shards = Counter(stack.region for stack in group.stacks)
        sizes, resources, outputs, policies, sharded = [], [], [], [], []
        for region in regions:
            for shard in group.shards(region):
                if shards[region] > 1:
                    real = (out / f"{shard.stack.artifact_id}.template.json").stat().st_size
                    sharded.append(f"{shard.stack.stack_name}: {len(shard.fleets)} fleets, {shard.resources} "
                                   f"resources, {shard.template_bytes:,} bytes estimated / {real:,} real")
        for stack in group.stacks:
            path = out / f"{stack.artifact_id}.template.json"
            template = json.loads(path.read_text())
            sizes.append(path.stat().st_size)
            resources.append(len(template["Resources"]))
            outputs.append(len(template.get("Outputs", {})))
            per_role: Counter[str] = Counter()
            for resource in template["Resources"].values():
                if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                    size = len(json.dumps(resource["Properties"]["PolicyDocument"], separators=(",", ":")))
                    for role in resource["Properties"].get("Roles", []):
                        per_role[json.dumps(role)] += size
            policies.append(max(per_role.values(), default=0))
    print(f"{args.certificates} certificates x {len(regions)} regions: {len(group.stacks)} certificate stacks "
          f"(+1 sweeper); constructs {built:.1f} s, synth total {total:.1f} s")
    print("stacks per region: " + ", ".join(f"{r} {shards[r]}" for r in regions))
    for line in sharded:
        print(f"  {line}")
    print(f"resources per stack: max {max(resources)} (limit 500; the group's max_resources {args.max_resources})")
    print(f"outputs per stack: max {max(outputs)} (limit 200)")
    print(f"template size: max {max(sizes) / 1024:.0f} KiB = {max(sizes):,} bytes (limit 1,000,000 bytes; the "
          f"group's max_template_bytes {args.max_template_bytes:,})")
    print(f"IAM policy documents per role: max {max(policies):,} characters, unresolved (inline limit 10,240)")
    within = max(resources) <= 500 and max(outputs) <= 200 and max(sizes) <= 1_000_000 and max(policies) < 10_240
    print("within every limit" if within else "a limit is crossed: see above")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
