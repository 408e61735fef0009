"""Synth cost against its floor: one FleetGroup (default 40 certificates x 17 regions) synthesized through
certfleet, then the very same templates rebuilt from bare ``CfnResource`` constructs and synthesized, in one run.

The floor is what the CDK itself costs for those templates (one jsii object per resource, the synthesizer, the
assembly, the CDK's own CloudFormation validation of every template); the ratio is what certfleet's constructs add on
top. Material (keys, certificates, sealed files) is made, and a small FleetGroup (2 x 3) synthesized, before either
clock starts: that pays what a process pays once (the jsii kernel; aws-cdk-lib's built-in CloudFormation validation,
whose WASM engine takes about 20 s to load on a loaded machine and then loads each resource type's schema once).
Both times are split into building the constructs and ``app.synth()``; ``CDK_VALIDATION=false`` in the environment
leaves the CloudFormation validation out of both synths (and out of the warm-up).
``--material DIR`` reuses (or writes) the material so that two runs synthesize the same bytes; ``--out DIR`` keeps
certfleet's cloud assembly; ``--profile FILE`` writes a cProfile of certfleet's part.

    .venv/bin/python -P bench/synth_floor.py [CERTIFICATES] [REGIONS] [--material DIR] [--out DIR] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2",
           "eu-west-3", "eu-central-1", "eu-north-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
           "ap-southeast-1", "ap-southeast-2", "ap-south-1", "sa-east-1"]
ACCOUNT = "123456789012"


def material(folder: Path, count: int) -> list[tuple[Path, Path]]:
    """``count`` certificates (EC P-256, one chain) with synth-only sealed keys in ``folder``, made once."""
    from certfleet.material.demo import DemoPKI
    from certfleet.testing.synth import write_synth_only_sealed_key

    folder.mkdir(parents=True, exist_ok=True)
    chain = folder / "chain.pem"
    files = [(folder / f"site{i}.pem", folder / f"site{i}.sealed") for i in range(count)]
    if chain.exists() and all(c.exists() and k.exists() for c, k in files):
        return files
    pki = DemoPKI.create("ec-p256", label="synth floor")
    chain.write_bytes(pki.chain_pem())
    for i, (cert, key) in enumerate(files):
        name = f"site{i}.example.com"
        leaf = pki.leaf((name,), key_type="ec-p256")
        cert.write_bytes(leaf.pem())
        write_synth_only_sealed_key(key, leaf.key, name)
    return files


class JsiiRequests:
    """Counts the requests Python sends the jsii kernel (each a round trip to Node): a figure no load skews."""

    def __init__(self) -> None:
        from jsii._kernel.providers import process

        self.count = 0
        self._node = process._NodeProcess
        self._send = process._NodeProcess.send
        counter = self

        def send(process_: Any, request: Any, response_type: Any) -> Any:
            counter.count += 1
            return counter._send(process_, request, response_type)

        self._node.send = send  # type: ignore[method-assign,assignment]

    def take(self) -> int:
        """The requests since the last call."""
        count, self.count = self.count, 0
        return count


def cpu_seconds() -> float:
    """CPU seconds of this process and of the jsii kernel's Node processes so far (Linux ``/proc``): a figure that a
    busy machine skews far less than wall-clock time."""
    from jsii._runtime import kernel

    tick = os.sysconf("SC_CLK_TCK")

    def tree(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick + sum(tree(int(c)) for c in children)

    provider: Any = kernel.provider
    node: int = provider._process._process.pid
    return time.process_time() + tree(node)


def through_certfleet(
    files: list[tuple[Path, Path]], regions: list[str], out: Path, requests: JsiiRequests,
) -> tuple[float, float, int, tuple[float, float]]:
    """Seconds to build, and to build and synthesize, the FleetGroup (bundles and sealed keys are read before), the
    jsii requests of building it, and the CPU seconds of it all (Python and Node, Python alone)."""
    from aws_cdk import App

    from certfleet import CertificateBundle, FleetGroup, KeySource

    chain = files[0][0].parent / "chain.pem"
    sites = [(CertificateBundle.from_files(cert, chain=chain), KeySource.sealed(key)) for cert, key in files]
    requests.take()
    cpu, python = cpu_seconds(), time.process_time()
    started = time.perf_counter()
    app = App(outdir=str(out))
    group = FleetGroup(app, "Certs", account=ACCOUNT, regions=regions[1:], edge=regions[0] == "us-east-1")
    for i, (bundle, key) in enumerate(sites):
        group.add_fleet(f"Site{i}", bundle=bundle, key=key)
    built = time.perf_counter() - started
    building = requests.take()
    app.synth()
    return built, time.perf_counter() - started, building, (cpu_seconds() - cpu, time.process_time() - python)


def floor(assembly: Path, out: Path, requests: JsiiRequests) -> tuple[float, float, int, int, tuple[float, float]]:
    """Seconds to rebuild every template of ``assembly`` from bare ``CfnResource``/``CfnOutput``, and to rebuild and
    synthesize; the resources, the jsii requests of rebuilding, and the CPU seconds (Python and Node, Python alone)."""
    from aws_cdk import App, CfnOutput, CfnResource, Environment, Stack, Token

    manifest = json.loads((assembly / "manifest.json").read_text())
    stacks: list[tuple[str, dict[str, Any], dict[str, Any], list[str]]] = []
    for name, artifact in manifest["artifacts"].items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        template = json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
        depends = [d for d in artifact.get("dependencies", []) if not d.endswith(".assets")]
        stacks.append((name, artifact, template, depends))
    requests.take()
    cpu, python = cpu_seconds(), time.process_time()
    started = time.perf_counter()
    app = App(outdir=str(out))
    built: dict[str, Stack] = {}
    for name, artifact, template, _ in stacks:
        account, region = artifact["environment"].removeprefix("aws://").split("/")
        stack = Stack(app, name, stack_name=artifact["properties"].get("stackName", name),
                      env=Environment(account=account, region=region))
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::CDK::Metadata":
                continue
            cfn = CfnResource(stack, logical_id, type=resource["Type"], properties=resource.get("Properties"))
            cfn.override_logical_id(logical_id)
            for option in ("DependsOn", "DeletionPolicy", "UpdateReplacePolicy"):
                if option in resource:
                    cfn.add_override(option, resource[option])
        for logical_id, output in template.get("Outputs", {}).items():
            CfnOutput(stack, logical_id, value=Token.as_string(output["Value"]), description=output.get("Description"))
        built[name] = stack
    for name, _, _, depends in stacks:
        for other in depends:
            if other in built:
                built[name].add_stack_dependency(built[other])
    built_in = time.perf_counter() - started
    building = requests.take()
    app.synth()
    resources = sum(len(t["Resources"]) for _, _, t, _ in stacks)
    return built_in, time.perf_counter() - started, resources, building, (cpu_seconds() - cpu,
                                                                         time.process_time() - python)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("certificates", type=int, nargs="?", default=40)
    parser.add_argument("regions", type=int, nargs="?", default=17)
    parser.add_argument("--material", type=Path, help="folder for the certificates and sealed keys (reused)")
    parser.add_argument("--out", type=Path, help="keep certfleet's cloud assembly here")
    parser.add_argument("--profile", type=Path, help="write a cProfile of certfleet's synth here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        files = material(args.material or Path(work) / "material", args.certificates)
        ours_out = args.out or Path(work) / "certfleet.out"
        regions = REGIONS[: args.regions]
        requests = JsiiRequests()
        through_certfleet(files[:2], regions[:3], Path(work) / "warm-up.out", requests)
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            profiler.enable()
        built, ours, ours_requests, ours_cpu = through_certfleet(files, regions, ours_out, requests)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
        bare_built, bare, resources, bare_requests, bare_cpu = floor(ours_out, Path(work) / "floor.out", requests)
    print(f"{args.certificates} certificates x {len(regions)} regions, {resources} resources")
    print(f"certfleet FleetGroup:        {ours:6.2f} s (constructs {built:.2f} s, synth {ours - built:.2f} s)")
    print(f"bare CfnResource (floor):    {bare:6.2f} s (constructs {bare_built:.2f} s, "
          f"synth {bare - bare_built:.2f} s)")
    print(f"ratio:                       {ours / bare:6.2f}x")
    print(f"CPU (Python + Node):         certfleet {ours_cpu[0]:.2f} s, floor {bare_cpu[0]:.2f} s "
          f"({ours_cpu[0] / bare_cpu[0]:.2f}x)")
    print(f"  of which Python:           certfleet {ours_cpu[1]:.2f} s, floor {bare_cpu[1]:.2f} s")
    print(f"jsii requests while building: certfleet {ours_requests:,}, floor {bare_requests:,} "
          f"({ours_requests / bare_requests:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
