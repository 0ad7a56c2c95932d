"""Command-line paths -> the audio files to score.

A file named on the command line is always scored, whatever its name: if it is not audio, its row says so.
A folder is walked recursively and yields the files whose extension libsndfile reads; hidden files and
folders (such as macOS ``._name.wav`` companions) and anything but regular files (a FIFO would block the
reader) are skipped. An argument that does not exist but contains glob characters is expanded (``**``
recurses) and keeps the audio files it matches, as a folder does. A pattern that matches nothing, a path
that does not exist or is not a regular file becomes a :class:`Missing` entry that gets an error row, and
so does a path that cannot be inspected (a folder on the way the user may not enter, a name too long, a
symbolic link loop) and a folder met in a walk that cannot be read: nothing is skipped without a row.
Every file appears once, in argument order, folders sorted by name.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monitor.paths import FILE, FOLDER, MISSING, access_problem, path_kind

# Extensions of the formats libsndfile reads (soundfile.available_formats(), header-less RAW excluded).
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd",
        ".caf", ".w64", ".rf64", ".sd2", ".voc", ".paf", ".svx", ".iff", ".8svx", ".nist", ".sph", ".ircam",
        ".sf", ".mat", ".mat4", ".mat5", ".pvf", ".xi", ".htk", ".avr", ".wve", ".mpc", ".sds",
    }
)  # fmt: skip

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Missing:
    """A command-line argument that names nothing: it is reported as a row with ``error``."""

    path: str
    error: str


@dataclass
class Discovery:
    files: list[str] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)


def is_audio_name(name: str) -> bool:
    return Path(name).suffix.lower() in AUDIO_EXTENSIONS


def _cannot(exc: OSError) -> str:
    return f"cannot access it: {access_problem(exc)}"


def walk_folder(folder: str, errors: list[Missing] | None = None) -> Iterable[str]:
    """Audio files under ``folder``, recursively, sorted, hidden entries skipped, symlinks to files kept.

    Folders that cannot be read and audio-named entries that cannot be inspected go to ``errors``."""

    def unreadable(exc: OSError) -> None:
        if errors is not None:
            where = exc.filename if exc.filename is not None else folder
            errors.append(Missing(os.fsdecode(where), f"cannot read this folder: {access_problem(exc)}"))

    for root, dirs, files in os.walk(folder, onerror=unreadable, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.startswith(".") or not is_audio_name(name):
                continue
            try:
                kind = path_kind(path)
            except OSError as exc:
                if errors is not None:
                    errors.append(Missing(path, _cannot(exc)))
                continue
            if kind == FILE:  # regular files only: opening a FIFO named x.wav would wait for a writer forever
                yield path


def discover(args: Sequence[str]) -> Discovery:
    out = Discovery()
    seen: set[str] = set()

    def add(path: str) -> None:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            out.files.append(path)

    for arg in args:
        try:
            kind = path_kind(arg)
        except OSError as exc:
            out.missing.append(Missing(arg, _cannot(exc)))
            continue
        if kind == FOLDER:
            for f in walk_folder(arg, out.missing):
                add(f)
        elif kind == FILE:
            add(arg)
        elif os.path.lexists(arg):
            broken = kind == MISSING  # lexists but stat finds nothing: a link to nowhere
            out.missing.append(Missing(arg, "a broken symbolic link" if broken else "not a regular file"))
        elif _GLOB_CHARS & set(arg):
            found = 0
            for m in sorted(glob.glob(arg, recursive=True)):
                try:
                    mkind = path_kind(m)
                except OSError as exc:
                    out.missing.append(Missing(m, _cannot(exc)))
                    continue
                if mkind == FOLDER:
                    matched = list(walk_folder(m, out.missing))
                else:
                    matched = [m] if is_audio_name(m) and mkind == FILE else []
                for f in matched:
                    add(f)
                    found += 1
            if not found:
                out.missing.append(Missing(arg, "no audio file matches this pattern"))
        else:
            out.missing.append(Missing(arg, "no such file or folder"))
    return out
