"""The main job: demo material for www.example.com + example.com, verified for every service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from certfleet.material.demo import write_demo
from certfleet.rules import RULES, Service

ROOT = Path(__file__).resolve().parent.parent
CERTFLEET = str(Path(sys.executable).with_name("certfleet"))


def main() -> int:
    paths = write_demo(ROOT / "demo")
    print(f"demo material written to {paths['certificate'].parent} (root, intermediate, leaf, key 0400)")
    base = [CERTFLEET, "verify", "--certificate", str(paths["certificate"]), "--chain", str(paths["chain"]),
            "--key", str(paths["key"]), "--domain", "www.example.com", "--domain", "example.com"]
    rows = []
    surprises = 0
    for service in Service:
        result = subprocess.run([*base, "--service", service.value, "--json"], capture_output=True, text=True,
                                check=False)
        report = json.loads(result.stdout)
        row = report["services"][0]
        expected_ok = RULES[service].accepts_imported
        surprises += row["ok"] != expected_ok
        rows.append((service.value, "ok" if row["ok"] else "refused", row["detail"]))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'service'.ljust(width)}  verdict  where / why")
    for name, verdict, detail in rows:
        print(f"{name.ljust(width)}  {verdict.ljust(7)}  {detail}")
    if surprises:
        print(f"\n{surprises} service verdict(s) differ from certfleet.rules", file=sys.stderr)
        return 1
    print("\nEvery service that accepts imported certificates accepts this one; App Runner never does.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
