"""The main job, offline: demo material → verify for every service → seal → `cdk synth` → local rehearsal.

1. A demo root, intermediate and leaf (www.example.com, example.com, *.example.com) into demo/ (git-ignored).
2. `certfleet verify` of that material for every AWS service of certfleet.rules.
3. A local AWS (moto_server behind StrictAWS): a KMS key there, and `certfleet seal` of the demo key with it.
4. `cdk synth -c env=demo` with the real CDK CLI (node_modules/.bin/cdk) into cdk.out/.
5. The rehearsal plays the assembly's certfleet resources against the local AWS and prints, per region,
   the certificate ARN and every consumer that the templates hand it to.
6. The ACME act (scripts/demo_acme.py): pebble issues the demo certificate, the demo fleet imports it in every
   region, the clock jumps, the daily renewer renews it with no deploy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from certfleet.checks.assembly import load_cloud_assembly
from certfleet.checks.graph import consumers
from certfleet.material.demo import write_demo
from certfleet.rules import RULES, Service
from certfleet.testing import MotoServer, StrictAWS
from certfleet.testing.rehearsal import Rehearsal

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NAMES = ("www.example.com", "example.com", "*.example.com")


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def verify_every_service(paths: dict[str, Path]) -> int:
    base = [str(BIN / "certfleet"), "verify", "--certificate", str(paths["certificate"]), "--chain",
            str(paths["chain"]), "--key", str(paths["key"]), "--domain", "www.example.com", "--domain", "example.com"]
    rows, surprises = [], 0
    for service in Service:
        result = subprocess.run([*base, "--service", service.value, "--json"], capture_output=True, text=True,
                                check=False)
        row = json.loads(result.stdout)["services"][0]
        surprises += row["ok"] != RULES[service].accepts_imported
        rows.append((service.value, "ok" if row["ok"] else "refused", row["detail"]))
    width = max(len(r[0]) for r in rows)
    print(f"{'service'.ljust(width)}  verdict  where / why")
    for name, verdict, detail in rows:
        print(f"{name.ljust(width)}  {verdict.ljust(7)}  {detail}")
    return surprises


def seal(aws: StrictAWS, paths: dict[str, Path], env: dict[str, str]) -> Path:
    import boto3

    kms = boto3.client("kms", endpoint_url=aws.url, region_name="us-east-1")
    key_arn = kms.create_key(Description="certfleet demo sealing key")["KeyMetadata"]["Arn"]
    sealed = paths["key"].with_name("private.key.sealed")
    subprocess.run([str(BIN / "certfleet"), "seal", "--key", str(paths["key"]), "--certificate",
                    str(paths["certificate"]), "--chain", str(paths["chain"]), "--kms-key", key_arn,
                    "--name", "www.example.com", "--out", str(sealed), "--force", "--endpoint-url", aws.url],
                   check=True, env=env)
    return sealed


def synth(env: dict[str, str]) -> Path:
    out = ROOT / "cdk.out"
    started = time.monotonic()
    subprocess.run([str(ROOT / "node_modules" / ".bin" / "cdk"), "synth", "-c", "env=demo", "--output", str(out),
                    "--quiet", "--no-notices"], cwd=ROOT, check=True, env=env)
    print(f"cdk synth: {time.monotonic() - started:.1f} s, {len(list(out.glob('*.template.json')))} templates")
    return out


def table(rehearsal: Rehearsal, cdk_out: Path) -> None:
    arns = rehearsal.certificate_arns()
    used: dict[tuple[str, str], list[str]] = defaultdict(list)
    for consumer in consumers(load_cloud_assembly(cdk_out)):
        source = consumer.certificate
        if source is None or source.stack is None or source.logical_id is None:
            continue
        what = f" {consumer.what}" if consumer.what and consumer.what != consumer.service.value else ""
        used[(source.stack, source.logical_id)].append(f"{consumer.service.value}{what} ({consumer.stack})")
    inventory = rehearsal.inventory()
    print(f"{'region':15} {'certificate ARN':85} consumers")
    for (_account, _region, stack, logical_id), arn in sorted(arns.items(), key=lambda kv: kv[1].split(":")[3]):
        region = arn.split(":")[3]
        held = inventory.get(region, [])
        names = ", ".join(held[0]["names"]) if len(held) == 1 else f"{len(held)} certificates!"
        first, *rest = used.get((stack, logical_id)) or ["(none)"]
        print(f"{region:15} {arn:85} {first}")
        for more in rest:
            print(f"{'':15} {'':85} {more}")
        print(f"{'':15} {'  ' + names:85}")


def draw_map(cdk_out: Path, env: dict[str, str]) -> int:
    """`certfleet map` of the demo environment into demo/map.md: the Mermaid picture GitHub renders."""
    target = ROOT / "demo" / "map.md"
    started = time.monotonic()
    result = subprocess.run([str(BIN / "certfleet"), "map", str(cdk_out.relative_to(ROOT)), "--out", str(target)],
                            cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        return 1
    print(f"certificate map: {target.relative_to(ROOT)} (certfleet map, {time.monotonic() - started:.1f} s)")
    return 0


def main() -> int:
    os.chdir(ROOT)
    env = {**os.environ, "PATH": f"{BIN}:{ROOT / 'node_modules' / '.bin'}:{os.environ.get('PATH', '')}",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_VERSION_CHECK": "1",
           "NODE_NO_WARNINGS": "1"}
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                                            "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")})
    step("demo material (offline): root, intermediate, leaf for " + ", ".join(NAMES))
    paths = write_demo(ROOT / "demo", names=NAMES)
    print(f"written to {paths['certificate'].parent} (the key is 0400 and git-ignored)")
    step("certfleet verify, for every service")
    if verify_every_service(paths):
        print("a service verdict differs from certfleet.rules", file=sys.stderr)
        return 1
    with MotoServer() as moto, StrictAWS(moto.url) as aws:
        step(f"local AWS: moto_server behind StrictAWS at {aws.url}; certfleet seal with its KMS")
        sealed = seal(aws, paths, env)
        print(f"sealed key: {sealed.relative_to(ROOT)}")
        step("cdk synth -c env=demo (the real CDK CLI, no AWS account)")
        cdk_out = synth(env)
        step("rehearsal: the assembly's certfleet resources, played against the local AWS")
        rehearsal = Rehearsal(aws.url)
        started = time.monotonic()
        events = rehearsal.deploy(cdk_out)
        print(f"{len(events)} resources created in {time.monotonic() - started:.1f} s; "
              f"{aws.calls('acm', 'ImportCertificate')} ImportCertificate calls")
        table(rehearsal, cdk_out)
        again = rehearsal.deploy(cdk_out)
        print(f"\ndeploying the same assembly again: {len(again)} custom-resource runs (nothing changed)")
        step("certfleet map: the demo environment's picture")
        if draw_map(cdk_out, env):
            return 1
    if subprocess.run([sys.executable, "-P", str(ROOT / "scripts" / "demo_acme.py")], env=env, check=False).returncode:
        return 1
    print("\ndone: every certificate is where its consumers need it, and an ACME one renews itself.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
