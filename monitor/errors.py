"""User-facing errors: each carries one line that names the problem and what to do."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class MonitorError(Exception):
    """An error the CLI reports as a single line (no traceback)."""


class ConfigError(MonitorError):
    """A bad key or value in config.toml or on the command line."""


class AudioError(MonitorError):
    """An unreadable file, a missing device, a wrong format."""


class ModelError(MonitorError):
    """A missing model or one whose metadata does not match the runtime."""


class TranscriberError(MonitorError):
    """A speech recogniser that cannot start: no model, a bad model path, a missing engine."""


ERROR_PREFIX = "voice-monitor: error: "


def error_line(message: str) -> str:
    """The one line every command prints for an error: ``voice-monitor: error: <what and what to do>``."""
    return ERROR_PREFIX + message


class CommandParser(argparse.ArgumentParser):
    """argparse with the same error prefix as every other error (argparse's own is ``PROG: error:``)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, error_line(message) + "\n")
