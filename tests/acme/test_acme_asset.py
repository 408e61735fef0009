"""The renewer's asset: built from wheels once (registry), then from the cache offline with the same asset hash."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from certfleet import acme_asset
from certfleet.acme_asset import ACME_PINS, AcmeAssetError, acme_asset_dir, acme_code

pytestmark = pytest.mark.slow

OFFLINE = {"PIP_NO_INDEX": "1", "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_EXTRA_INDEX_URL": "",
           "PIP_FIND_LINKS": "", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2"}


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no local wheel folders from this machine's pip.conf


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first build, the one that needs the registry (CI has it, as setup.sh does)."""
    root = tmp_path_factory.mktemp("acme-cache")
    acme_asset_dir(root=root)
    return root


def _asset_hash(root: Path) -> str:
    stack = cdk.Stack(cdk.App(), "Renewer", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    lambda_.Function(stack, "Renewer", runtime=acme_asset.LAMBDA_RUNTIME, handler="certfleet_acme.handler",
                     code=acme_code(root=root))
    code = Template.from_stack(stack).find_resources("AWS::Lambda::Function")
    (function,) = code.values()
    key: str = function["Properties"]["Code"]["S3Key"]
    return key


def test_second_build_is_offline_and_yields_the_same_asset_hash(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _asset_hash(built)
    _offline(monkeypatch)
    assert _asset_hash(built) == first
    folder = acme_asset_dir(root=built)
    for package in ("acme", "josepy", "cryptography", "OpenSSL", "requests"):
        assert (folder / package / "__init__.py").is_file(), package
    sources = acme_asset.handler_sources()
    assert {"certfleet_acme.py", "certfleet_acme_dns.py", "certfleet_acme_handler.py", "certfleet_contract.py"} <= set(
        sources)
    for name, text in sources.items():
        assert (folder / name).read_bytes() == text, name
    assert not list(folder.rglob("*.pyc"))
    assert (folder / "cryptography" / "hazmat" / "bindings" / "_rust.abi3.so").is_file()


def test_offline_with_an_empty_cache_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch)
    with pytest.raises(AcmeAssetError) as raised:
        acme_asset_dir(root=tmp_path)
    message = str(raised.value)
    assert message.startswith("building the ACME renewer's Lambda asset needs the package registry once")
    assert "Connect to the network" in message and "Traceback" not in message
    assert not list(tmp_path.iterdir())  # nothing half-built is kept


def test_changed_pins_do_not_reuse_the_cache(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch)
    pins = tuple(p.replace("idna==3.20", "idna==3.10") for p in ACME_PINS)
    with pytest.raises(AcmeAssetError):
        acme_asset_dir(pins, root=built)


def _lambda_python() -> str | None:
    """A working Python 3.12: $CERTFLEET_LAMBDA_PYTHON, python3.12 on PATH (a pyenv shim may not run), a pyenv one."""
    version = acme_asset.LAMBDA_PYTHON
    pyenv = sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"))
    for candidate in (os.environ.get("CERTFLEET_LAMBDA_PYTHON"), shutil.which(f"python{acme_asset.LAMBDA_PYTHON}"),
                      *map(str, pyenv), f"/usr/bin/python{acme_asset.LAMBDA_PYTHON}"):
        if candidate and subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
                                        capture_output=True, timeout=30, check=False).returncode == 0:
            return candidate
    return None


def test_asset_imports_the_client_on_the_lambda_python_with_nothing_but_itself(built: Path, tmp_path: Path) -> None:
    """Self-contained: the renewer's modules, the contract and acme import on Python 3.12 from the asset and what the
    Lambda runtime provides (boto3, botocore and their pure-Python needs), nothing else (-S -I: no site-packages)."""
    python = _lambda_python()
    if python is None:
        message = f"python{acme_asset.LAMBDA_PYTHON} not on PATH: the asset's cp312 wheels cannot be loaded"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    folder = acme_asset_dir(root=built)
    runtime = tmp_path / "lambda-runtime"  # what the Lambda runtime itself provides: boto3 and what it needs
    runtime.mkdir()
    for name in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six"):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, name
        origin = Path(spec.origin)
        target = origin.parent if origin.name == "__init__.py" else origin
        (runtime / target.name).symlink_to(target)
    code = (f"import sys; sys.path[:0] = [{str(folder)!r}, {str(runtime)!r}]; "
            "import certfleet_acme_handler, certfleet_acme_dns, certfleet_contract, acme; print(acme.__file__)")
    result = subprocess.run([python, "-B", "-S", "-I", "-c", code], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.strip().startswith(str(folder))
    assert not list(folder.rglob("__pycache__"))


def test_native_modules_are_built_for_the_lambda_python(built: Path) -> None:
    folder = acme_asset_dir(root=built)
    native = [p.name for p in folder.rglob("*.so")]
    assert native
    assert all(n.endswith(".abi3.so") or ".cpython-312-x86_64-linux-gnu." in n for n in native), native
    assert not (folder / "bin").exists()  # console scripts name this machine's Python: not reproducible


def test_template_gets_the_runtime_the_wheels_were_chosen_for(built: Path) -> None:
    stack = cdk.Stack(cdk.App(), "Renewer")
    lambda_.Function(stack, "Renewer", runtime=acme_asset.LAMBDA_RUNTIME, handler="certfleet_acme.handler",
                     code=acme_code(root=built))
    Template.from_stack(stack).has_resource_properties("AWS::Lambda::Function", {
        "Runtime": "python3.12", "Code": {"S3Key": Match.string_like_regexp(r"^[0-9a-f]{64}\.zip$")}})
