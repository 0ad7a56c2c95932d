"""Synthetic conversations from the shared corpora, for the speaker-turn evaluation (training/speaker_eval.py).

A voice is one speaker of one corpus (RAVDESS actors: English, odd male / even female; nEMO: Polish; ASED:
Amharic; ESD 0020: English, male; TurEV: Turkish single words, gender unknown). A conversation strings turns of
2-4 voices (one clip each, a random voice other than the last), with 0.3-1.5 s pauses; about one turn in five
is cut to 0.9-1.4 s of its speech, and TurEV's words are short anyway. A faint noise floor (-70 dBFS) runs
under everything, as a quiet room's would. Voices are split by a fixed rule into a tuning half and a held-out
half (``split``), never a clip of one voice on both sides.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000


@dataclass(frozen=True)
class Voice:
    corpus: str
    speaker: str
    gender: str  # "male", "female" or "" (unknown)
    language: str
    clips: tuple[Path, ...]

    @property
    def name(self) -> str:
        return f"{self.corpus}:{self.speaker}"


@dataclass
class Turn:
    voice: str
    start: int  # samples in the conversation
    end: int
    speech_start: int  # the speech inside the turn (energy above the clip's peak - 40 dB)
    speech_end: int


@dataclass
class Conversation:
    name: str
    kind: str  # e.g. "2 same-gender", "2 mixed-gender", "2 cross-language", "3", "4"
    audio: np.ndarray  # int16
    turns: list[Turn]

    @property
    def voices(self) -> set[str]:
        return {t.voice for t in self.turns}


def load_voices(data: Path) -> list[Voice]:
    voices: list[Voice] = []
    rav = data / "ravdess16k"
    for actor in range(1, 25):
        clips = tuple(sorted((rav / f"Actor_{actor:02d}").glob("*.flac")))
        if clips:
            voices.append(Voice("ravdess", f"{actor:02d}", "male" if actor % 2 else "female", "en", clips))
    for corpus, language in (("nemo", "pl"), ("ased", "am"), ("esd0020", "en"), ("turev", "tr")):
        manifest = data / corpus / "manifest.csv"
        if not manifest.exists():
            continue
        by_speaker: dict[str, list[Path]] = {}
        genders: dict[str, str] = {}
        with manifest.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                by_speaker.setdefault(row["speaker"], []).append(data / corpus / row["path"])
                genders[row["speaker"]] = row.get("gender", "") or ""
        for spk in sorted(by_speaker):
            voices.append(Voice(corpus, spk, genders[spk], language, tuple(sorted(by_speaker[spk]))))
    return voices


def split(voices: list[Voice]) -> tuple[list[Voice], list[Voice]]:
    """(tuning, held-out): every other voice of each corpus by sorted speaker id (RAVDESS: odd pairs of
    actors 1-2, 5-6, ... tune, 3-4, 7-8, ... are held out, so both genders are on both sides); ESD 0020 and
    TurEV are held out whole."""
    tune, held = [], []
    by_corpus: dict[str, list[Voice]] = {}
    for v in voices:
        by_corpus.setdefault(v.corpus, []).append(v)
    for corpus, vs in by_corpus.items():
        if corpus in ("esd0020", "turev"):
            held.extend(vs)
            continue
        for i, v in enumerate(vs):
            (tune if (i // 2) % 2 == 0 else held).append(v)
    return tune, held


def _read(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="int16", always_2d=True)
    if rate != RATE:
        raise ValueError(f"{path}: {rate} Hz, expected {RATE}")
    return audio[:, 0]


def _speech_span(x: np.ndarray) -> tuple[int, int]:
    frames = len(x) // 160
    if frames == 0:
        return 0, len(x)
    e = (x[: frames * 160].astype(np.float64).reshape(frames, 160) ** 2).mean(axis=1)
    on = np.nonzero(e >= e.max() * 1e-4)[0]
    return int(on[0]) * 160, int(on[-1] + 1) * 160


def build(name: str, kind: str, voices: list[Voice], turns: int, rng: random.Random) -> Conversation:
    parts: list[np.ndarray] = []
    out: list[Turn] = []
    pos = 0
    last = None
    order: list[Voice] = list(voices)
    rng.shuffle(order)  # every voice speaks; the first turns go round once, then random
    for n in range(turns):
        v = order[n] if n < len(order) else rng.choice([x for x in voices if x is not last])
        last = v
        clip = _read(rng.choice(v.clips))
        s0, s1 = _speech_span(clip)
        if v.corpus != "turev" and rng.random() < 0.2:  # a short turn: 0.9-1.4 s of its speech
            length = int(rng.uniform(0.9, 1.4) * RATE)
            start = rng.randint(s0, max(s0, s1 - length))
            clip = clip[start : start + length]
            s0, s1 = 0, len(clip)
        else:  # a natural turn: its speech with 0.1 s either side
            a, b = max(0, s0 - 1600), min(len(clip), s1 + 1600)
            clip, s0, s1 = clip[a:b], s0 - a, s1 - a
        pause = np.zeros(int(rng.uniform(0.3, 1.5) * RATE), np.int16)
        parts += [pause, clip]
        pos += len(pause)
        out.append(Turn(v.name, pos, pos + len(clip), pos + s0, pos + s1))
        pos += len(clip)
    parts.append(np.zeros(RATE // 2, np.int16))
    audio = np.concatenate(parts).astype(np.float64)
    noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 32768 * 10 ** (-70 / 20), len(audio))
    audio = np.clip(np.round(audio + noise), -32768, 32767).astype(np.int16)
    return Conversation(name, kind, audio, out)


def _pick(pool: list[Voice], rng: random.Random, n: int, want) -> list[Voice] | None:
    """``n`` voices that satisfy ``want``. Each voice comes from a corpus drawn first, uniformly (ASED's 65
    speakers would otherwise fill most conversations), all from one corpus half of the time."""
    corpora = sorted({v.corpus for v in pool})
    for _ in range(500):
        if rng.random() < 0.5:
            corpus = rng.choice(corpora)
            same = [v for v in pool if v.corpus == corpus]
            if len(same) < n:
                continue
            vs = rng.sample(same, n)
        else:
            vs = [rng.choice([v for v in pool if v.corpus == rng.choice(corpora)]) for _ in range(n)]
        if len({v.name for v in vs}) == n and want(vs):
            return vs
    return None


KINDS = {
    "2 same-gender": (2, lambda vs: vs[0].gender and vs[0].gender == vs[1].gender and vs[0].language == vs[1].language),
    "2 mixed-gender": (2, lambda vs: {vs[0].gender, vs[1].gender} == {"male", "female"}),
    "2 cross-language": (2, lambda vs: vs[0].language != vs[1].language),
    "3 speakers": (3, lambda vs: True),
    "4 speakers": (4, lambda vs: True),
}


def conversations(
    pool: list[Voice], per_kind: int, seed: int, tag: str, turns: tuple[int, int] = (10, 16)
) -> list[Conversation]:
    """``per_kind`` conversations of each kind in ``KINDS`` (``turns``: 10 to 16 turns) from the voices in ``pool``."""
    rng = random.Random(seed)
    out = []
    for kind, (n, want) in KINDS.items():
        for i in range(per_kind):
            vs = _pick(pool, rng, n, want)
            if vs is None:
                continue
            out.append(build(f"{tag}-{kind.replace(' ', '_')}-{i}", kind, vs, rng.randint(*turns), rng))
    return out
