"""Which files of a batch share a voice (``voice-monitor score --voice-group``).

The emotion model judges a voice against what has been heard of it (``monitor.inference.normalise``). By default
each file is a session of its own: a folder of 2 s clips gives the normaliser one or two windows per clip, which
say little about the voice. When the user knows that several files hold the same speaker (a folder per speaker,
a speaker id in the file name), the files of one group are scored one after another, in path order, by one
worker with one normaliser: what the earlier files taught about the voice carries into the later ones, exactly as
a live session of that speaker would.

Specs: ``file`` (default: every file alone), ``folder`` (the files of one folder), ``re:PATTERN`` (the files
whose paths give the same text for the pattern's first group, or its whole match without a group; a path the
pattern does not match, or matches with an empty or absent first group, is a group of its own).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from monitor.errors import ConfigError

SPECS = ("file", "folder", "re:PATTERN")


@dataclass(frozen=True)
class VoiceGroup:
    kind: str  # "file" | "folder" | "re"
    pattern: re.Pattern[str] | None = None

    @property
    def shared(self) -> bool:
        return self.kind != "file"

    def key(self, path: str) -> str:
        """The group of ``path`` (a file alone: its own path)."""
        if self.kind == "folder":
            return "folder:" + os.path.dirname(os.path.abspath(path))
        if self.kind == "re" and self.pattern is not None:
            m = self.pattern.search(path)
            text = None if m is None else m.group(1) if m.re.groups else m.group(0)
            if text:  # a first group that took no part in the match, or matched nothing, names no voice
                return "re:" + text
        return "file:" + path


def parse_voice_group(spec: str) -> VoiceGroup:
    """``file`` | ``folder`` | ``re:PATTERN``; ConfigError (one line) for anything else."""
    if spec in ("file", "folder"):
        return VoiceGroup(spec)
    if spec.startswith("re:"):
        try:
            pattern = re.compile(spec[3:])
        except re.error as exc:
            raise ConfigError(f"--voice-group {spec!r}: not a valid regular expression ({exc}); "
                              r"e.g. 're:Actor_(\d+)'") from None
        if not spec[3:]:
            raise ConfigError("--voice-group re: needs a pattern after 're:', e.g. 're:Actor_(\\d+)'")
        return VoiceGroup("re", pattern)
    raise ConfigError(f"--voice-group must be file, folder or re:PATTERN, not {spec!r}")


def voice_units(paths: list[str], spec: str) -> list[list[str]]:
    """``paths`` cut into units of work: one file each (``file``), or the files of each group in path order,
    groups in the order of their first file."""
    group = parse_voice_group(spec)
    if not group.shared:
        return [[p] for p in paths]
    units: dict[str, list[str]] = {}
    for p in paths:
        units.setdefault(group.key(p), []).append(p)
    return [sorted(u) for u in units.values()]
