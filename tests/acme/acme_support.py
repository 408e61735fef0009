"""pebble and pebble-challtestsrv for tests (certfleet.testing.pebble), and lambda_acme/ importable as in Lambda."""

from __future__ import annotations

import sys
from pathlib import Path

from certfleet.testing.pebble import (
    CHALLTESTSRV,
    HOST,
    PEBBLE,
    ChallTestSrv,
    Pebble,
    missing_tools,
    new_eab_key,
    write_tls_material,
)

__all__ = ["CHALLTESTSRV", "HOST", "LAMBDA", "PEBBLE", "ChallTestSrv", "Pebble", "missing_tools", "new_eab_key",
           "write_tls_material"]

LAMBDA = Path(__file__).resolve().parents[2] / "lambda_acme"
if str(LAMBDA) not in sys.path:
    sys.path.insert(0, str(LAMBDA))  # as /var/task is in Lambda
