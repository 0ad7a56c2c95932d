"""The commands of ``voice-monitor``: one table, read by the dispatcher and by the top-level help.

Adding a command is one line in ``COMMANDS``: its name, a one-line summary for ``voice-monitor --help``, and the
``module:function`` that runs it (called with the arguments after the command name, returning the exit status;
imported only when the command runs, so ``voice-monitor --help`` stays fast and needs no optional extra).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

DEFAULT = "live"  # what `voice-monitor` runs with no command (so `voice-monitor --file x` is `live --file x`)


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    target: str  # "module:function", function(argv) -> exit status

    def load(self) -> Callable[[Sequence[str]], int]:
        module, _, func = self.target.partition(":")
        return getattr(importlib.import_module(module), func)


COMMANDS: tuple[Command, ...] = (
    Command("live", "listen to the microphone (or --file, --stdin): dashboard, transcript, CSV timeline",
            "monitor.cli:run_live"),
    Command("demo", "the same on a shipped sample recording, in real time: no microphone needed",
            "monitor.cli:run_demo"),
    Command("devices", "list the audio input devices (names and indexes for --device)", "monitor.cli:run_devices"),
    Command("score", "batch-score recordings (files, folders, globs) into a CSV of emotions and text",
            "monitor.batch.cli:main_score"),
    Command("models", "download the small English Vosk model, or list the speech-to-text engines",
            "monitor.transcription.models:main_models"),
    Command("serve", "a local web page: drop files, record in the browser, watch the microphone (web extra)",
            "monitor.web.cli:main_serve"),
    Command("report", "one self-contained HTML report (chart, transcript, summary) from a timeline CSV",
            "monitor.web.report:main_report"),
)

BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}


def split(argv: Sequence[str]) -> tuple[Command, list[str]]:
    """The command and its arguments; no command name first means the default command with all of argv."""
    if argv and argv[0] in BY_NAME:
        return BY_NAME[argv[0]], list(argv[1:])
    return BY_NAME[DEFAULT], list(argv)


def unknown_command(argv: Sequence[str]) -> str | None:
    """A first word that is neither a command nor an option: the name of a command mistyped (the default
    command takes no positional arguments)."""
    if argv and argv[0] not in BY_NAME and not argv[0].startswith("-"):
        return argv[0]
    return None


def help_text(prog: str = "voice-monitor") -> str:
    width = max(len(c.name) for c in COMMANDS)
    rows = "\n".join(f"  {c.name:<{width}}  {c.summary}" for c in COMMANDS)
    return (
        f"usage: {prog} [COMMAND] [OPTIONS]\n\n"
        "Offline, real-time speech-emotion monitor: how the speakers in a room feel, what they say, and a CSV\n"
        "timeline of it.\n\n"
        f"commands:\n{rows}\n\n"
        f"With no command, {prog} runs `{DEFAULT}` (so `{prog} --file talk.mp3` works).\n"
        f"`{prog} COMMAND --help` shows the options of a command; `{prog} --version` the version.\n"
    )
