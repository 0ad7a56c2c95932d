"""How the user started ``voice-monitor``, so that a message can name a command they can type as it is.

After the README's set-up the command lives in ``.venv/bin/`` and is not on PATH: a hint to run
``voice-monitor demo`` would meet "command not found". A hint names the command the way it was invoked
(``voice-monitor`` when PATH finds that very script, ``.venv/bin/voice-monitor`` when typed so).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

NAME = "voice-monitor"


def _short(path: str) -> str:
    """A path relative to the working directory when it lies inside it (``.venv/bin/voice-monitor``)."""
    p = Path(path)
    if not p.is_absolute():
        return path
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return path


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def invoked_as() -> str:
    """The command to type to run voice-monitor again, as this process was started."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if Path(argv0).name != NAME:  # `python -m monitor.cli` or an embedding program: the venv's script
        script = Path(sys.executable).parent / NAME
        if not script.exists():
            return f"{_short(sys.executable)} -m monitor.cli"
        argv0 = str(script)
    on_path = shutil.which(NAME)
    if on_path is not None and _same_file(on_path, argv0):
        return NAME
    return _short(argv0)


def command_hint(args: str) -> str:
    """``voice-monitor ARGS`` spelt as it can be typed here, in backquotes."""
    return f"`{invoked_as()} {args}`"
