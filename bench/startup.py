"""CLI start-up and handler cost: `certfleet --help` against `python -c pass`; handler import time and asset size.

    .venv/bin/python bench/startup.py [RUNS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 21


def median_seconds(command: list[str], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    python = sys.executable
    certfleet = str(Path(python).with_name("certfleet"))
    bare = median_seconds([python, "-c", "pass"])
    helped = median_seconds([certfleet, "--help"])
    print(f"python -c pass        {bare * 1000:7.1f} ms (median of {RUNS})")
    print(f"certfleet --help      {helped * 1000:7.1f} ms (median of {RUNS}); {helped - bare:.3f} s over bare Python")
    inspect = median_seconds([certfleet, "--version"])
    print(f"certfleet --version   {inspect * 1000:7.1f} ms")
    handlers = ROOT / "constructs" / "certfleet" / "_lambda"
    for module in ("certfleet_import", "certfleet_keywriter"):
        code = f"import sys, time; sys.path.insert(0, {str(handlers)!r}); t = time.perf_counter(); import {module}; " \
               "print(time.perf_counter() - t)"
        samples = [float(subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout)
                   for _ in range(RUNS)]
        print(f"import {module:20} {statistics.median(samples) * 1000:7.1f} ms (boto3 included, cold process)")
    files = sorted(p for p in handlers.glob("*.py") if p.name != "__init__.py")  # the asset excludes it
    total = sum(p.stat().st_size for p in files)
    print(f"Lambda asset          {total / 1024:7.1f} KiB in {len(files)} files: {', '.join(p.name for p in files)}")


if __name__ == "__main__":
    main()
