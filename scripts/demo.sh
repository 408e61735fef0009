#!/usr/bin/env bash
# Set up (if needed) and run the main job: generate demo material offline into demo/ (git-ignored)
# and verify it with the certfleet CLI for every AWS service.
set -euo pipefail
cd "$(dirname "$0")/.."
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
bash scripts/setup.sh
exec .venv/bin/python -P scripts/demo.py "$@"
