#!/usr/bin/env bash
# Set up a fresh machine for certfleet: a .venv with the package (editable) and its dev tools,
# and the CDK CLI from npm in node_modules/. Re-running is cheap: each step is skipped when its
# inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

quiet_pip() { grep -v -e "is neither a file nor a directory" -e "^\s*$" || true; }

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.certfleet-setup
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing certfleet and its development tools into .venv"
  # (this machine's pip configuration names local package folders that may be absent: drop those warnings)
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | quiet_pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 | quiet_pip
  echo "$want" > "$stamp"
fi
if [ ! -x .venv-checkov/bin/checkov ]; then
  echo "setup: installing checkov into .venv-checkov (kept apart: it would downgrade boto3/botocore in .venv)"
  "$PY" -m venv .venv-checkov
  .venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check 'checkov==3.3.30' 2>&1 | quiet_pip
fi
if [ -f package.json ]; then
  nstamp=node_modules/.certfleet-setup
  nwant=$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -c1-16)
  if [ "$(cat "$nstamp" 2>/dev/null)" != "$nwant" ]; then
    echo "setup: installing the CDK CLI from npm"
    if [ -f package-lock.json ]; then npm ci --silent --no-audit --no-fund; else npm install --silent --no-audit --no-fund; fi
    echo "$nwant" > "$nstamp"
  fi
fi
# Debian packages the tests use: Graphviz (certfleet map --format svg), pebble (a local ACME CA). CI runs as root on a fresh machine.
missing=()
command -v dot >/dev/null || missing+=(graphviz)
command -v pebble >/dev/null || missing+=(pebble)  # the ACME test CA, with pebble-challtestsrv
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: apt-get install ${missing[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
  fi
fi
echo "setup: ready (.venv/bin/certfleet, node_modules/.bin/cdk)"
