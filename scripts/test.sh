#!/usr/bin/env bash
# Set up (with training and test dependencies) and run the whole test suite, then ruff.
# Extra arguments go to pytest, e.g. scripts/test.sh -k segmenter
# The suite takes about 10 minutes on a 2-core machine: each test's name is printed as it starts (-v), so a slow
# one shows what it is doing, and the 15 slowest are listed at the end (--durations=15).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
.venv/bin/python -m ruff check .
echo "test: running the suite (about 10 minutes on 2 cores; the slowest tests are listed at the end)" >&2
exec .venv/bin/python -m pytest -v --durations=15 -ra "$@"
