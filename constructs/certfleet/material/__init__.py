"""Pure certificate handling: load any format, sort leaf/chain/key, check, normalize, generate.

Imports neither aws_cdk nor boto3 (a test enforces it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from certfleet.material.bundle import Material, assemble, fingerprint, spki_sha256
from certfleet.material.checks import check_files, check_material, key_algorithm
from certfleet.material.findings import Finding, MaterialError, Severity
from certfleet.material.loader import DamagedBlockError, LoadedFile, load_bytes, load_file, read_regular_file
from certfleet.material.normalize import Normalized, normalize

__all__ = [
    "DamagedBlockError",
    "Finding",
    "LoadedFile",
    "Material",
    "MaterialError",
    "Normalized",
    "Severity",
    "assemble",
    "check_files",
    "check_material",
    "fingerprint",
    "key_algorithm",
    "load_bytes",
    "load_file",
    "load_material",
    "normalize",
    "read_regular_file",
    "spki_sha256",
]


def load_material(
    *paths: str | os.PathLike[str] | None, password: bytes | None = None,
) -> Material:
    """Load and assemble the certificate, chain and key from any number of files (None entries skipped)."""
    files: Sequence[LoadedFile] = [load_file(p, password) for p in paths if p is not None]
    return assemble(list(files))
