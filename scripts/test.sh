#!/usr/bin/env bash
# Set up (with training and test dependencies) and run the whole test suite, then ruff.
# Extra arguments go to pytest, e.g. scripts/test.sh -k segmenter
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
.venv/bin/python -m ruff check .
exec .venv/bin/python -m pytest -q -ra "$@"
