"""The ACME renewer's Lambda asset, built from manylinux wheels with pip (no Docker) and cached by a content hash.

The first synth needs the package registry once; every later synth reuses the cache offline and yields the same
asset hash. The importer's asset (providers.py) stays standard library + boto3; only the renewer ships `acme`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

LAMBDA_PYTHON = "3.12"
"""The renewer's Lambda runtime Python; the wheels are chosen for it, not for the synthesizing Python."""
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_12
PLATFORM = "manylinux2014_x86_64"
"""Wheels for Lambda's x86_64 architecture (Amazon Linux 2023, glibc 2.34, takes manylinux2014 wheels)."""
ACME_PINS: tuple[str, ...] = (
    "acme==5.9.0", "josepy==2.2.0", "cryptography==50.0.2", "cffi==2.1.1", "pycparser==3.12",
    "pyOpenSSL==26.4.0", "pyRFC3339==2.1.1", "typing_extensions==4.16.0",
    "requests==2.34.2", "urllib3==2.8.0", "idna==3.20", "certifi==2026.10.19.post1", "charset-normalizer==3.5.3",
)
"""The whole dependency closure, pinned and installed with --no-deps: the same pins always give the same files."""
HANDLER = "certfleet_acme.py"
CONTRACT = Path(__file__).resolve().parent / "_lambda" / "certfleet_contract.py"
"""The one contract (resource types, tag keys, ACM key types), shipped at the asset's top level as the importer's."""
_COMPLETE = ".certfleet-complete"


class AcmeAssetError(RuntimeError):
    """The renewer's asset could not be built; the message says why and what to do."""


def cache_root() -> Path:
    """Where built assets live: $CERTFLEET_CACHE, else $XDG_CACHE_HOME/certfleet, else ~/.cache/certfleet."""
    if os.environ.get("CERTFLEET_CACHE"):
        return Path(os.environ["CERTFLEET_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "certfleet"


def handler_folder() -> Path:
    """lambda_acme/: inside the wheel (certfleet/_lambda_acme) or in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_lambda_acme", here.parent.parent / "lambda_acme"):
        if (candidate / HANDLER).is_file():
            return candidate
    raise AcmeAssetError(f"certfleet's ACME renewer code ({HANDLER}) is missing: reinstall certfleet")


def handler_sources() -> dict[str, bytes]:
    """The renewer's own modules (every lambda_acme/*.py) and the contract it shares with the constructs, by name."""
    folder = handler_folder()
    sources = {path.name: path.read_bytes() for path in sorted(folder.glob("*.py")) if path.name != "__init__.py"}
    sources[CONTRACT.name] = CONTRACT.read_bytes()
    return sources


def _digest(pins: Sequence[str], *extra: bytes) -> str:
    hasher = hashlib.sha256()
    for part in (PLATFORM, LAMBDA_PYTHON, *sorted(pins)):
        hasher.update(part.encode() + b"\0")
    for blob in extra:
        hasher.update(blob + b"\0")
    return hasher.hexdigest()[:16]


def _install(pins: Sequence[str], target: Path) -> None:
    """pip-install the pinned wheels for Lambda into `target`; AcmeAssetError when pip cannot (offline, no pip)."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
               "--no-deps", "--only-binary=:all:", "--implementation", "cp", "--platform", PLATFORM,
               "--python-version", LAMBDA_PYTHON, "--target", str(target), *pins]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise AcmeAssetError(f"building the ACME renewer's Lambda asset: pip did not run ({error})") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip() and "is ignored" not in line]
        said = "\n  ".join(lines[-4:]) or f"exit status {result.returncode}"
        raise AcmeAssetError(
            "building the ACME renewer's Lambda asset needs the package registry once (pip install "
            f"{' '.join(pins[:2])} … for {PLATFORM}, Python {LAMBDA_PYTHON}) and pip failed:\n  {said}\n"
            "Connect to the network (or point PIP_INDEX_URL at a reachable mirror) and synth again: later synths "
            f"reuse {cache_root()} offline.")


def _build_once(final: Path, fill: Callable[[Path], None]) -> Path:
    """Fill a temporary folder beside `final`, then rename it into place (atomic; a parallel builder may win)."""
    if (final / _COMPLETE).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        fill(staging)
        (staging / _COMPLETE).write_text("")
        if final.exists():
            shutil.rmtree(final)  # an incomplete earlier attempt (no marker)
        try:
            staging.rename(final)
        except OSError:
            if not (final / _COMPLETE).is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def acme_asset_dir(pins: Sequence[str] = ACME_PINS, *, root: Path | None = None) -> Path:
    """The folder to ship as the renewer's code: the pinned wheels installed for Lambda plus handler_sources().

    Dependencies are cached per pin set (acme-deps-<hash>), the asset per pin set and handler source
    (acme-asset-<hash>), so a handler edit re-copies without the registry. Console scripts (bin/, whose shebang
    names this machine's Python) are left out: the asset's files depend on the pins only.
    """
    base = root or cache_root()
    sources = handler_sources()
    deps = _build_once(base / f"acme-deps-{_digest(pins)}", lambda staging: _install(pins, staging))

    def assemble(staging: Path) -> None:
        skip = shutil.ignore_patterns(_COMPLETE, "__pycache__", "bin")
        shutil.copytree(deps, staging, dirs_exist_ok=True, ignore=skip)
        for name, text in sources.items():
            (staging / name).write_bytes(text)

    blobs = [name.encode() + b"\0" + text for name, text in sorted(sources.items())]
    return _build_once(base / f"acme-asset-{_digest(pins, *blobs)}", assemble)


def acme_code(pins: Sequence[str] = ACME_PINS, *, root: Path | None = None) -> lambda_.Code:
    """`lambda_.Code` for the renewer (runtime LAMBDA_RUNTIME), from the cached asset folder."""
    return lambda_.Code.from_asset(str(acme_asset_dir(pins, root=root)), exclude=[_COMPLETE, "__pycache__", "*.pyc"])
