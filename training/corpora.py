"""Every training corpus read into one record type: (path, corpus, speaker, gender, label).

One reader for all corpora: each folder has a ``manifest.csv`` whose ``path`` is relative to the folder and
whose ``emotion`` holds one of the eight names in ``monitor.labels.LABELS``; the speaker column is ``speaker``
(or ``actor`` for RAVDESS). A RAVDESS download without a manifest (either of its layouts) is read from the file
names by ``training.manifest``. Everything after this module (folds, feature cache, sampling) only sees
:class:`Record` and never asks which corpus a clip came from, except through ``corpus`` and the corpus's label
set (the labels it has: a corpus without "calm" says nothing about calm, see ``training.multi_fit``).
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from monitor.labels import LABELS
from training.manifest import DatasetLayoutError

# The shared corpora in the order the report lists them. esd0020 has one speaker: never split into folds.
KNOWN_CORPORA = ("ravdess16k", "nemo", "ased", "esd0020", "turev")
LANGUAGE = {"ravdess16k": "English", "nemo": "Polish", "ased": "Amharic", "esd0020": "English", "turev": "Turkish"}


@dataclass(frozen=True)
class Record:
    path: Path
    corpus: str
    speaker: str  # unique within the corpus
    gender: str  # "male", "female" or "" (unknown)
    label: int  # index into LABELS

    @property
    def key(self) -> str:
        """Stable id of the clip: corpus and the path below the corpus folder."""
        return f"{self.corpus}:{self.path.parent.name}/{self.path.name}"


@dataclass(frozen=True)
class Corpus:
    name: str
    root: Path
    records: tuple[Record, ...]

    @property
    def labels(self) -> list[int]:
        """The label indices this corpus has (sorted)."""
        return sorted({r.label for r in self.records})

    @property
    def speakers(self) -> list[str]:
        return sorted({r.speaker for r in self.records})

    def summary(self) -> str:
        counts = Counter(LABELS[r.label] for r in self.records)
        per = ", ".join(f"{lab} {counts[lab]}" for lab in LABELS if counts[lab])
        return f"{self.name}: {len(self.records)} clips, {len(self.speakers)} speakers ({per})"


def _read_manifest(name: str, root: Path) -> list[Record]:
    path = root / "manifest.csv"
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        spk_col = "speaker" if "speaker" in cols else "actor" if "actor" in cols else None
        if not {"path", "emotion"} <= cols or spk_col is None:
            raise DatasetLayoutError(f"{path}: needs the columns path, emotion and speaker (or actor); "
                                     f"has {sorted(cols)}")
        out = []
        for i, row in enumerate(reader, 2):
            emotion = row["emotion"].strip()
            if emotion not in LABELS:
                raise DatasetLayoutError(f"{path} line {i}: emotion {emotion!r} is not one of {', '.join(LABELS)}")
            gender = (row.get("gender") or "").strip().lower()
            speaker = row[spk_col].strip()
            if spk_col == "actor":
                speaker = f"{int(speaker):02d}"
            out.append(Record(root / row["path"], name, speaker, gender, LABELS.index(emotion)))
    return out


def _read_ravdess_names(root: Path) -> list[Record]:
    from training.manifest import load_manifest

    m = load_manifest(root)
    return [Record(c.path, "ravdess16k", f"{c.actor:02d}", c.gender, c.emotion_index) for c in m.clips]


def load_corpus(root: Path, name: str | None = None) -> Corpus:
    """Read one corpus folder (its manifest.csv, or RAVDESS file names)."""
    root = Path(root)
    name = name or root.name
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: not a folder; expected a corpus folder with manifest.csv")
    if (root / "manifest.csv").exists():
        records = _read_manifest(name, root)
    else:
        records = _read_ravdess_names(root)  # raises DatasetLayoutError naming what was expected
        name = "ravdess16k"
    if not records:
        raise DatasetLayoutError(f"{root}: the manifest lists no clips")
    return Corpus(name, root, tuple(records))


def load_corpora(data: Path, names: list[str] | tuple[str, ...] = KNOWN_CORPORA) -> list[Corpus]:
    """The named corpora below ``data`` (e.g. ../shared/data); a missing one is a one-line error."""
    out = []
    for n in names:
        if not (Path(data) / n).is_dir():
            raise DatasetLayoutError(f"{data}/{n}: corpus not found (expected one of {', '.join(KNOWN_CORPORA)} "
                                     f"below {data})")
        out.append(load_corpus(Path(data) / n, n))
    return out


def speaker_folds(corpus: Corpus, k: int) -> list[list[str]]:
    """k folds of whole speakers, genders spread evenly; a corpus with fewer than 2 speakers has no folds.

    Speakers are ordered by gender and name, interleaved (male, female, male, ...) and dealt round-robin (for
    RAVDESS and k=5 these are the folds the RAVDESS-only training used: 01, 06, 11, 16 / 02, 07, 12, 17 / ...).
    With an even k that would put one gender in every other fold, so then men are dealt first and women from
    where the men stopped. With fewer speakers than k, some folds are empty for this corpus."""
    speakers = corpus.speakers
    if len(speakers) < 2:
        return []
    gender = {r.speaker: r.gender for r in corpus.records}
    males = [s for s in speakers if gender[s] == "male"]
    others = [s for s in speakers if gender[s] != "male"]
    if k % 2 == 0:
        folds: list[list[str]] = [[] for _ in range(k)]
        for i, s in enumerate(males + others):
            folds[i % k].append(s)
        return [sorted(f) for f in folds]
    order: list[str] = []
    for i in range(max(len(males), len(others))):
        order += males[i : i + 1] + others[i : i + 1]
    return [sorted(order[i::k]) for i in range(k)]
