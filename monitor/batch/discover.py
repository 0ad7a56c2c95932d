"""Command-line paths -> the audio files to score.

A file named on the command line is always scored, whatever its name: if it is not audio, its row says so.
A folder is walked recursively and yields the files whose extension libsndfile reads; hidden files and
folders (such as macOS ``._name.wav`` companions) are skipped. Symbolic links to folders are followed; a link
back to a folder above it (a loop) is not, and gets a row, as do a broken link and an audio-named entry that
is not a regular file (a FIFO would block the reader). An argument that does not exist but contains glob
characters is expanded (``**`` recurses, by the same walk) and keeps the audio files it matches, as a folder
does. A pattern that matches nothing, a path that does not exist or is not a regular file becomes a
:class:`Missing` entry that gets an error row, and so does a path that cannot be inspected (a folder on the
way the user may not enter, a name too long, a symbolic link loop) and a folder met in a walk that cannot be
read: nothing is skipped without a row. Every file appears once, in argument order, folders sorted by name.
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monitor.audio import media
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
    other_media: dict[str, int] = field(default_factory=dict)  # extension -> files in folders not read (a format
    # libsndfile does not decode, and PyAV is not installed: monitor.audio.media)

    def other_media_note(self) -> str:
        """'3 .m4a files and 1 .webm file in folders were not read (...)', or '' when there were none."""
        if not self.other_media:
            return ""
        kinds = " and ".join(f"{n} {ext} file{'s' * (n != 1)}" for ext, n in sorted(self.other_media.items()))
        return (f"{kinds} in the folders {'were' if sum(self.other_media.values()) != 1 else 'was'} not read (a "
                "format this tool cannot decode without PyAV): install it (pip install av) or convert to WAV or FLAC, "
                "for example: ffmpeg -i IN -ac 1 -ar 16000 OUT.wav")


def is_audio_name(name: str) -> bool:
    """Is ``name`` a file to score: a format libsndfile reads, or with PyAV installed one it decodes."""
    ext = Path(name).suffix.lower()
    return ext in AUDIO_EXTENSIONS or (ext in media.EXTENSIONS and _media_available())


@functools.cache
def _media_available() -> bool:
    return media.available()


def _cannot(exc: OSError) -> str:
    return f"cannot access it: {access_problem(exc)}"


def walk_folder(folder: str, errors: list[Missing] | None = None,
                other_media: dict[str, int] | None = None) -> Iterable[str]:
    """Audio files under ``folder``, recursively, sorted (a folder's files, then its subfolders), hidden entries
    skipped, symbolic links to files and to folders followed.

    What is skipped for another reason goes to ``errors``: a folder that cannot be read, an audio-named entry
    that cannot be inspected or is not a regular file, a broken symbolic link (whatever its name: it may have
    pointed to a folder), and a link back to a folder above it (a loop, not followed). A folder reached a
    second time through another link is not walked again (its files are already listed). Files of audio or video
    formats libsndfile does not read are counted by extension in ``other_media``."""
    sink: list[Missing] = errors if errors is not None else []
    counted: dict[str, int] = other_media if other_media is not None else {}
    try:
        st = os.stat(folder)
    except OSError as exc:
        sink.append(Missing(folder, _cannot(exc)))
        return
    yield from _walk(folder, ((st.st_dev, st.st_ino),), {(st.st_dev, st.st_ino)}, sink, counted)


def _walk(
    folder: str, ancestors: tuple[tuple[int, int], ...], seen: set[tuple[int, int]], errors: list[Missing],
    other_media: dict[str, int],
) -> Iterator[str]:
    try:
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as exc:
        errors.append(Missing(folder, f"cannot read this folder: {access_problem(exc)}"))
        return
    subfolders: list[tuple[str, tuple[int, int]]] = []
    for entry in entries:
        path = os.path.join(folder, entry.name)
        audio, link = is_audio_name(entry.name), False
        try:
            link = entry.is_symlink()
            if not (audio or link or entry.is_dir(follow_symlinks=False)):
                ext = os.path.splitext(entry.name)[1].lower()
                if ext in media.EXTENSIONS:
                    other_media[ext] = other_media.get(ext, 0) + 1
                continue  # a file of another kind: no stat for it (the entry's type is known from the listing)
            st = os.stat(path)
        except FileNotFoundError:  # listed a moment ago: a symbolic link to nothing
            if link or audio:
                errors.append(Missing(path, "a broken symbolic link" if link else "no such file"))
            continue
        except (OSError, ValueError) as exc:
            if link or audio:
                problem = exc if isinstance(exc, OSError) else OSError(str(exc))
                errors.append(Missing(path, _cannot(problem)))
            continue
        key = (st.st_dev, st.st_ino)
        if stat.S_ISDIR(st.st_mode):
            if key in ancestors:
                errors.append(Missing(path, "a symbolic link to a folder above it (a loop): not followed"))
            elif key not in seen:
                seen.add(key)
                subfolders.append((path, key))
        elif audio and stat.S_ISREG(st.st_mode):
            yield path
        elif audio:  # a FIFO named x.wav would make the reader wait for a writer forever
            errors.append(Missing(path, "not a regular file"))
    for path, key in subfolders:
        yield from _walk(path, (*ancestors, key), seen, errors, other_media)


def _split_pattern(pattern: str) -> tuple[str, list[str]] | None:
    """For a pattern with a ``**`` component: the folder before its first wildcard and the components after."""
    parts = pattern.split(os.sep)
    if "**" not in parts:
        return None
    first = next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))
    base = os.sep.join(parts[:first]) or (os.sep if pattern.startswith(os.sep) else os.curdir)
    return base, parts[first:]


def _match_parts(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    """``glob``'s matching of path components; ``**`` matches any number of folders (none included)."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match_parts(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _match_parts(pattern[1:], parts[1:])


def _recursive_glob(base: str, pattern: list[str], errors: list[Missing]) -> list[str]:
    """The audio files under ``base`` whose path below it matches ``pattern`` (which holds a ``**``).

    ``glob.glob(recursive=True)`` follows symbolic links into loops (about 40 levels deep, and exponentially
    many paths with two loops) and drops broken links silently; this walks with :func:`walk_folder`."""
    walked: list[Missing] = []
    found = []
    for path in walk_folder(base, walked):
        if _match_parts(pattern, os.path.relpath(path, base).split(os.sep)):
            found.append(path)
    for m in walked:  # a folder that could not be read may hide matches: always reported
        rel = os.path.relpath(m.path, base).split(os.sep)
        if m.error.startswith("cannot read this folder") or _match_parts(pattern, rel) or m.path == base:
            errors.append(m)
    return found


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
            for f in walk_folder(arg, out.missing, out.other_media):
                add(f)
        elif kind == FILE:
            add(arg)
        elif os.path.lexists(arg):
            broken = kind == MISSING  # lexists but stat finds nothing: a link to nowhere
            out.missing.append(Missing(arg, "a broken symbolic link" if broken else "not a regular file"))
        elif _GLOB_CHARS & set(arg) and (split := _split_pattern(arg)) is not None:
            matched = _recursive_glob(*split, out.missing) if os.path.isdir(split[0]) else []
            for f in matched:
                add(f)
            if not matched:
                out.missing.append(Missing(arg, "no audio file matches this pattern"))
        elif _GLOB_CHARS & set(arg):
            found = 0
            for m in sorted(glob.glob(arg)):
                try:
                    mkind = path_kind(m)
                except OSError as exc:
                    out.missing.append(Missing(m, _cannot(exc)))
                    continue
                if mkind == FOLDER:
                    matched = list(walk_folder(m, out.missing))
                elif is_audio_name(m) and mkind != FILE:
                    broken = mkind == MISSING  # glob lists a link to nowhere too
                    out.missing.append(Missing(m, "a broken symbolic link" if broken else "not a regular file"))
                    matched = []
                else:
                    matched = [m] if is_audio_name(m) else []
                for f in matched:
                    add(f)
                    found += 1
            if not found:
                out.missing.append(Missing(arg, "no audio file matches this pattern"))
        else:
            out.missing.append(Missing(arg, "no such file or folder"))
    out.missing = _once(out.missing)
    return out


def _once(missing: list[Missing]) -> list[Missing]:
    """One row per skipped entry, however many paths (through symbolic links) led to it."""
    seen: set[str] = set()
    kept = []
    for m in missing:
        head, tail = os.path.split(m.path)
        key = os.path.join(os.path.realpath(head), tail) if head else m.path
        if key not in seen:
            seen.add(key)
            kept.append(m)
    return kept
