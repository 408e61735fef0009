"""Bench: how long `certfleet probe --timeout T` takes against a port that accepts and never answers.

    .venv/bin/python bench/probe_timeout.py [--timeout 0.5] [--runs 5]

Prints the median wall time of the console script and of the probe in-process, and what each spent beyond
``--timeout`` (the tests only check that a silent server ends the probe, under a hard deadline). A script, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from certfleet.cli.main import main as certfleet_main

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))


def console_script(port: int, timeout: float) -> float:
    started = time.perf_counter()
    result = subprocess.run([CERTFLEET, "probe", f"127.0.0.1:{port}", "--timeout", str(timeout)],
                            capture_output=True, text=True, check=False, timeout=60)
    elapsed = time.perf_counter() - started
    if result.returncode != 1 or "no TLS answer" not in result.stderr:
        raise SystemExit(f"unexpected probe outcome: exit {result.returncode}: {result.stderr.strip()}")
    return elapsed


def in_process(port: int, timeout: float) -> float:
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.suppress(SystemExit):
        certfleet_main(["probe", f"127.0.0.1:{port}", "--timeout", str(timeout)])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = int(sock.getsockname()[1])
        script = statistics.median(console_script(port, args.timeout) for _ in range(args.runs))
        inside = statistics.median(in_process(port, args.timeout) for _ in range(args.runs))
    print(f"probe --timeout {args.timeout}: console script {script:6.2f} s (median of {args.runs}), "
          f"{script - args.timeout:+.2f} s beyond the timeout")
    print(f"probe --timeout {args.timeout}: in-process     {inside:6.2f} s (median of {args.runs}), "
          f"{inside - args.timeout:+.2f} s beyond the timeout")


if __name__ == "__main__":
    main()
