#!/usr/bin/env python3
"""Score audio files and folders: one row per file (and per window) with its emotion.

    python scripts/score_files.py recordings/ --out scores.csv --windows windows.csv --jobs 2

Same as ``voice-monitor score``; see ``--help``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.batch.cli import main_score  # noqa: E402

if __name__ == "__main__":
    sys.exit(main_score(sys.argv[1:], prog="score_files.py"))
