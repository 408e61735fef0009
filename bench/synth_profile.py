"""Where a FleetGroup's synth cost goes: jsii requests (round trips to Node) counted per certfleet call site, and
optionally a cProfile, for the same FleetGroup as ``bench/synth_floor.py`` (default 40 certificates x 17 regions).

Each request is charged to every certfleet function on the Python stack when it was sent (inclusive: what a call to
that function costs, callees included) and to the innermost certfleet line with the aws-cdk-lib API it called
(exclusive: the call sites to change). Requests are counted while the constructs are built and during
``app.synth()`` (Node calling back into Python: aspects, lazy values, validations). A small group is synthesized
first, as in ``synth_floor.py``, so that what a process pays once is paid before counting.

    .venv/bin/python -P bench/synth_profile.py [CERTIFICATES] [REGIONS] [--material DIR] [--top N] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth_floor import ACCOUNT, REGIONS, cpu_seconds, material

_PACKAGE = "/certfleet/"
_CDK = "/aws_cdk/"
_CONSTRUCTS = "/site-packages/constructs/"


class CallSites:
    """Counts jsii requests, inclusive per certfleet function and exclusive per certfleet line + aws-cdk-lib API."""

    def __init__(self) -> None:
        from jsii._kernel.providers import process

        self.total = 0
        self.seconds = 0.0
        self.inclusive: Counter[str] = Counter()
        self.exclusive: Counter[str] = Counter()
        self.inclusive_seconds: dict[str, float] = defaultdict(float)
        self.exclusive_seconds: dict[str, float] = defaultdict(float)
        self._modules: dict[str, str] = {}
        node = process._NodeProcess
        original = node.send
        sites = self

        def send(process_: Any, request: Any, response_type: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(process_, request, response_type)
            finally:
                sites._charge(sys._getframe(1), type(request).__name__, time.perf_counter() - started)

        node.send = send  # type: ignore[method-assign,assignment]

    def _charge(self, frame: FrameType | None, kind: str, seconds: float) -> None:
        self.total += 1
        self.seconds += seconds
        api = ""
        innermost = ""
        seen: set[str] = set()
        while frame is not None:
            filename = frame.f_code.co_filename
            if _PACKAGE in filename and "/testing/" not in filename:
                module = self._modules.get(filename) or self._modules.setdefault(filename, Path(filename).stem)
                name = f"{module}.{frame.f_code.co_qualname}"
                if not innermost:
                    innermost = f"{name}:{frame.f_lineno} -> {api or kind}"
                if name not in seen:
                    seen.add(name)
                    self.inclusive[name] += 1
                    self.inclusive_seconds[name] += seconds
            elif not innermost and (_CDK in filename or _CONSTRUCTS in filename):
                api = frame.f_code.co_qualname
            frame = frame.f_back
        site = innermost or f"(outside certfleet) {api or kind}"
        self.exclusive[site] += 1
        self.exclusive_seconds[site] += seconds

    def reset(self) -> None:
        self.total = 0
        self.seconds = 0.0
        for counter in (self.inclusive, self.exclusive, self.inclusive_seconds, self.exclusive_seconds):
            counter.clear()


def build(files: list[tuple[Path, Path]], regions: list[str]) -> Any:
    """The FleetGroup app of ``synth_floor.py``, not yet synthesized."""
    from aws_cdk import App

    from certfleet import CertificateBundle, FleetGroup, KeySource

    chain = files[0][0].parent / "chain.pem"
    sites = [(CertificateBundle.from_files(cert, chain=chain), KeySource.sealed(key)) for cert, key in files]
    app = App()
    group = FleetGroup(app, "Certs", account=ACCOUNT, regions=regions[1:], edge=regions[0] == "us-east-1")
    for i, (bundle, key) in enumerate(sites):
        group.add_fleet(f"Site{i}", bundle=bundle, key=key)
    return app


def report(title: str, sites: CallSites, top: int) -> None:
    """Requests and the seconds spent waiting on Node for them, per function and per call site."""
    print(f"\n== {title}: {sites.total:,} jsii requests, {sites.seconds:.2f} s waiting on Node")
    for label, counts, seconds in (
        ("inclusive, per certfleet function (callees included)", sites.inclusive, sites.inclusive_seconds),
        ("exclusive, per certfleet line -> aws-cdk-lib API", sites.exclusive, sites.exclusive_seconds),
    ):
        print(f"-- {label}: requests, seconds waiting on Node")
        for name, count in counts.most_common(top):
            print(f"{count:8,} {seconds[name]:7.2f} s  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("certificates", type=int, nargs="?", default=40)
    parser.add_argument("regions", type=int, nargs="?", default=17)
    parser.add_argument("--material", type=Path, help="folder for the certificates and sealed keys (reused)")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--profile", type=Path, help="write a cProfile of building and synthesizing here")
    args = parser.parse_args()
    regions = REGIONS[: args.regions]
    with tempfile.TemporaryDirectory() as work:
        files = material(args.material or Path(work) / "material", args.certificates)
        sites = CallSites()
        build(files[:2], regions[:3]).synth()
        sites.reset()
        profiler = cProfile.Profile() if args.profile else None
        cpu = cpu_seconds()
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        app = build(files, regions)
        built = time.perf_counter() - started
        report("building the constructs", sites, args.top)
        sites.reset()
        app.synth()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
        report("app.synth()", sites, args.top)
        print(f"\nbuilding {built:.2f} s, total {time.perf_counter() - started:.2f} s wall, "
              f"{cpu_seconds() - cpu:.2f} s CPU (Python + Node; counting adds its own)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
