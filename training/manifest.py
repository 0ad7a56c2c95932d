"""Dataset manifests for RAVDESS (speech, audio-only) from either of its two common layouts.

Accepted layouts of ``root``:

- ``ravdess16k`` (the team's converted copy): ``Actor_XX/*.flac`` (optionally with ``manifest.csv``);
- the original download: ``Audio_Speech_Actors_01-24/Actor_XX/*.wav`` (48 kHz), or a folder that directly
  holds ``Actor_XX/*.wav``.

Everything else is refused with :class:`DatasetLayoutError`, one line naming the folder and what was expected.
Labels come from the RAVDESS file name: modality-channel-emotion-intensity-statement-repetition-actor.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from monitor.labels import LABELS

ORIGINAL_SUBDIR = "Audio_Speech_Actors_01-24"
_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_ACTOR_DIR = re.compile(r"^Actor_(\d{2})$")
EXPECTED = (
    "expected Actor_XX/*.flac (ravdess16k), Audio_Speech_Actors_01-24/Actor_XX/*.wav or Actor_XX/*.wav "
    "(original RAVDESS speech download)"
)


class DatasetLayoutError(Exception):
    """The folder is not a RAVDESS speech folder in a known layout (message: one line)."""


@dataclass(frozen=True)
class Clip:
    """One RAVDESS speech recording and the labels parsed from its name."""

    path: Path
    actor: int
    gender: str  # "male" (odd actors) or "female" (even actors)
    emotion: str  # one of monitor.labels.LABELS
    emotion_index: int  # index into LABELS (RAVDESS code - 1)
    intensity: str  # "normal" or "strong"
    statement: int  # 1 "Kids are talking by the door", 2 "Dogs are sitting by the door"
    repetition: int

    @property
    def clip_id(self) -> str:
        return self.path.stem


@dataclass(frozen=True)
class Manifest:
    root: Path
    layout: str  # "ravdess16k" or "original"
    clips: tuple[Clip, ...]

    @property
    def actors(self) -> list[int]:
        return sorted({c.actor for c in self.clips})

    def select(self, actors: list[int] | set[int]) -> Manifest:
        wanted = set(actors)
        return Manifest(self.root, self.layout, tuple(c for c in self.clips if c.actor in wanted))

    def summary(self) -> str:
        emotions = Counter(c.emotion for c in self.clips)
        per = ", ".join(f"{e} {emotions.get(e, 0)}" for e in LABELS)
        return f"{len(self.clips)} clips, {len(self.actors)} actors ({self.layout} layout at {self.root}): {per}"


def parse_name(path: Path) -> Clip | None:
    """Labels of a RAVDESS file name; None for names that are not audio-only speech (e.g. song, video)."""
    m = _NAME.match(path.stem)
    if not m:
        return None
    modality, channel, emotion, intensity, statement, repetition, actor = (int(g) for g in m.groups())
    if modality != 3 or channel != 1 or not 1 <= emotion <= len(LABELS) or intensity not in (1, 2):
        return None
    return Clip(
        path=path,
        actor=actor,
        gender="male" if actor % 2 else "female",
        emotion=LABELS[emotion - 1],
        emotion_index=emotion - 1,
        intensity="normal" if intensity == 1 else "strong",
        statement=statement,
        repetition=repetition,
    )


def _actor_dirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and _ACTOR_DIR.match(p.name))


def _collect(actor_dirs: list[Path], suffix: str) -> list[Clip]:
    clips = []
    for d in actor_dirs:
        dir_actor = int(_ACTOR_DIR.match(d.name).group(1))  # type: ignore[union-attr]
        for f in sorted(d.glob(f"*{suffix}")):
            clip = parse_name(f)
            if clip is not None and clip.actor == dir_actor:
                clips.append(clip)
    return clips


def load_manifest(root: str | Path) -> Manifest:
    """Find the RAVDESS speech clips under ``root`` (either layout); raise DatasetLayoutError otherwise."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: no such folder; {EXPECTED}")
    candidates = [
        ("ravdess16k", root, ".flac"),
        ("original", root / ORIGINAL_SUBDIR, ".wav"),
        ("original", root, ".wav"),
    ]
    for layout, folder, suffix in candidates:
        clips = _collect(_actor_dirs(folder), suffix)
        if clips:
            return Manifest(root, layout, tuple(clips))
    raise DatasetLayoutError(f"{root}: no RAVDESS speech clips found; {EXPECTED}")
