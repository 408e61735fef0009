#!/usr/bin/env bash
# Set up (if needed) and run every check CI runs: ruff, mypy --strict, the whole pytest suite.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/material -x).
set -euo pipefail
cd "$(dirname "$0")/.."
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
bash scripts/setup.sh
PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH"
echo "== ruff"
ruff check constructs lambda_acme tests bench scripts app.py
echo "== mypy --strict"
mypy
echo "== pytest"
set +e
pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$rc"
