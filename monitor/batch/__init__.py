"""Batch scoring of files and folders with the live monitor's pipeline (``voice-monitor score``)."""

from monitor.batch.score import FileResult, FileScorer, ScoreOptions

__all__ = ["FileResult", "FileScorer", "ScoreOptions", "main_score"]


def main_score(argv: list[str]) -> int:
    """``voice-monitor score PATH...`` (see monitor.batch.cli)."""
    from monitor.batch.cli import main_score as _main

    return _main(argv)
