"""N certificates created at once in one region, through the real importer, against ACM's one import per second.

CloudFormation creates a FleetGroup shard's certificates concurrently; ACM imports one per second per region. This
bench runs N Create events in parallel threads through ``certfleet_import.on_event`` against moto_server behind
StrictAWS, time-scaled by ``--rate``: ACM's slot is one import per 1/rate s, and the handler's own clock (its import
interval, its Lambda timeout and margin) is scaled the same way through its environment and Lambda context. It prints
the completion time over the ideal N / rate, and how many handlers gave up.

    .venv/bin/python bench/import_rate.py 180            # target: ratio <= 1.2, 0 give-ups
    .venv/bin/python bench/import_rate.py 300 --rate 5 --timeout 900

StrictAWS's ``import_rate`` above 1/s allows a burst of ``rate`` imports per second (a sliding window); scaled, ACM's
1/s is one import per interval, not a burst, so the bench throttles with that slot model (``SlotStrictAWS``).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from cryptography.hazmat.primitives import hashes

from certfleet.material.demo import DemoPKI, Issued
from certfleet.testing import MotoServer, StrictAWS
from certfleet.testing.strict import AWSRefusal

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"
STACK_ID = f"arn:aws:cloudformation:{REGION}:123456789012:stack/Bench/0f1e2d3c-0000-0000-0000-000000000000"
LAMBDA_MARGIN = 15.0
"""The handler's default margin before its Lambda timeout (CERTFLEET_LAMBDA_MARGIN_SECONDS), scaled below."""


class SlotStrictAWS(StrictAWS):
    """StrictAWS throttling ImportCertificate to one per ``interval`` seconds per region (ACM's 1/s, scaled)."""

    def __init__(self, upstream: str, interval: float) -> None:
        super().__init__(upstream, import_rate=None)
        self.interval = interval
        self.throttled = 0
        self._slot_lock = threading.Lock()
        self._last: dict[str, float] = {}
        self.granted: list[float] = []

    def _throttle_import(self, region: str) -> None:
        now = time.monotonic()
        with self._slot_lock:
            last = self._last.get(region)
            if last is not None and now - last < self.interval:
                self.throttled += 1
                raise AWSRefusal("ThrottlingException", "Rate exceeded")
            self._last[region] = now
            self.granted.append(now)


class LambdaContext:
    """The Lambda context's remaining time, for a function with ``timeout`` seconds (already scaled)."""

    def __init__(self, timeout: float) -> None:
        self.ends = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.ends - time.monotonic()) * 1000))


def _props(leaf: Issued, pki: DemoPKI, secret_arn: str, version: str, index: int) -> dict[str, Any]:
    name = f"site{index}.example.com"
    return {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:Bench-Provider",
        "Certificate": leaf.pem().decode(), "CertificateChain": pki.chain_pem().decode(),
        "Fingerprint": leaf.certificate.fingerprint(hashes.SHA256()).hex(),
        "KeyAlgorithm": "EC_prime256v1", "KeySecretId": secret_arn, "KeySecretVersionId": version,
        "Tags": [{"Key": "certfleet:managed-by", "Value": "certfleet"},
                 {"Key": "certfleet:fleet", "Value": f"Bench/Site{index}"},
                 {"Key": "certfleet:id", "Value": f"Bench/Site{index}"}],
        "RemovalPolicy": "destroy", "DeleteTimeoutSeconds": "1500", "Group": "Bench", "Names": [name],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=180, help="certificates created at once (default 180)")
    parser.add_argument("--rate", type=float, default=5.0,
                        help="ACM imports per second in the scaled world (ACM: 1; default 5 = 5x faster)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="the importer's Lambda timeout in real seconds, scaled by --rate (default 300)")
    args = parser.parse_args(argv)
    scale = 1.0 / args.rate
    sys.path.insert(0, str(ROOT / "constructs" / "certfleet" / "_lambda"))
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": REGION,
           "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "CERTFLEET_IMPORT_INTERVAL_SECONDS": str(scale),
           "CERTFLEET_LAMBDA_MARGIN_SECONDS": str(LAMBDA_MARGIN * scale)}
    os.environ.update(env)
    pki = DemoPKI.create("ec-p256", label="bench")
    leaves = [pki.leaf((f"site{i}.example.com",), key_type="ec-p256") for i in range(args.n)]
    with MotoServer() as moto, SlotStrictAWS(moto.url, scale) as aws:
        assert isinstance(aws, SlotStrictAWS)
        os.environ["AWS_ENDPOINT_URL"] = aws.url
        import certfleet_import  # type: ignore[import-not-found, unused-ignore]  # _lambda on sys.path, as /var/task in Lambda

        secrets = boto3.client("secretsmanager", region_name=REGION)
        secret = secrets.create_secret(Name=f"certfleet/Bench/{uuid.uuid4().hex[:8]}", SecretString="-")["ARN"]
        events = []
        for i, leaf in enumerate(leaves):
            version = secrets.put_secret_value(SecretId=secret, SecretString=leaf.key_pem().decode())["VersionId"]
            events.append({"RequestType": "Create", "StackId": STACK_ID, "RequestId": str(uuid.uuid4()),
                           "LogicalResourceId": f"Site{i}", "ResourceType": "Custom::CertfleetCertificate",
                           "ResourceProperties": _props(leaf, pki, secret, version, i)})
        done: list[float] = []
        gave_up: list[str] = []
        failed: list[str] = []
        lock = threading.Lock()
        start = threading.Event()

        def create(event: dict[str, Any]) -> None:
            start.wait()
            try:
                certfleet_import.on_event(event, LambdaContext(args.timeout * scale))
                with lock:
                    done.append(time.monotonic())
            except Exception as exc:  # counted and shown: what would fail the resource in CloudFormation
                with lock:
                    (gave_up if "kept throttling" in str(exc) else failed).append(f"{type(exc).__name__}: {exc}"[:200])

        threads = [threading.Thread(target=create, args=(e,)) for e in events]
        for thread in threads:
            thread.start()
        began = time.monotonic()
        start.set()
        for thread in threads:
            thread.join()
        elapsed = (max(done) if done else time.monotonic()) - began
        ideal = args.n / args.rate
        imports = aws.calls("acm", "ImportCertificate", REGION)
        slots = aws.granted
        phase = slots[-1] - slots[0] + scale if slots else 0.0
    print(f"N={args.n} rate={args.rate:g}/s (ACM 1/s scaled x{args.rate:g}) Lambda timeout {args.timeout:g} s scaled")
    print(f"completion {elapsed:.2f} s, ideal N/rate {ideal:.2f} s: ratio {elapsed / ideal:.2f}")
    print(f"import phase (first to last import granted, + one interval) {phase:.2f} s: ratio {phase / ideal:.2f} "
          f"(the first import was granted {slots[0] - began if slots else 0:.2f} s after the start: the handlers' "
          "reads before importing, serialized here in one process, in parallel in Lambda)")
    print(f"imported {len(done)}, gave up {len(gave_up)}, other failures {len(failed)}; "
          f"ImportCertificate requests {imports} ({imports - len(done)} throttled)")
    for message in failed[:3]:
        print(f"  failure: {message}")
    print(f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0 if not gave_up and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
