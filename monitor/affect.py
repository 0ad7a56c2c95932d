"""Arousal and valence from the emotion probabilities: a fixed point per label, weighted by its probability.

Every label sits at a point of the circumplex plane (Russell 1980): arousal from low (-1, drowsy) to high (+1,
excited), valence from unpleasant (-1) to pleasant (+1). A window's arousal is ``sum_i p_i * a_i`` and its
valence ``sum_i p_i * v_i``; both stay in [-1, 1] because the probabilities sum to 1. Positive arousal is high
arousal: the binary split used in evaluation calls angry, happy, fearful and surprised high, neutral, calm and
sad low (disgust sits near the middle).

Default coordinates (arousal, valence):

    neutral   (-0.55,  0.0)    angry     ( 0.65, -0.6)
    calm      (-0.85,  0.4)    fearful   ( 0.55, -0.6)
    happy     ( 0.45,  0.8)    disgust   (-0.05, -0.7)
    sad       (-0.75, -0.7)    surprised ( 0.55,  0.3)

The arousal of each is its circumplex placement (``CIRCUMPLEX``: neutral -0.4, calm -0.7, happy 0.6, sad -0.6,
angry 0.8, fearful 0.7, disgust 0.1, surprised 0.7) minus ``AROUSAL_CENTRE`` (0.15). Uncentred, the placements
average +0.15: a window the model is unsure about (probabilities spread over the labels) came out as high arousal,
and low-arousal clips of voices it never heard averaged above zero. The centre was chosen on the
speaker-independent cross-validation (``training.multi_report.arousal_centre_sweep``, ``models/REPORT.md``).

A model can ship its own table in its metadata JSON, which then replaces the defaults::

    "affect": {"arousal": {"neutral": -0.4, ...}, "valence": {"neutral": 0.0, ...}}

It must give both axes for every label of the model, each a number in [-1, 1]. A model whose labels are not
all in the defaults and that has no table gets 0 (the centre) for the unknown labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# (arousal, valence) of each label on the circumplex plane (Russell 1980), before the arousal axis is centred.
CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "neutral": (-0.4, 0.0),
    "calm": (-0.7, 0.4),
    "happy": (0.6, 0.8),
    "sad": (-0.6, -0.7),
    "angry": (0.8, -0.6),
    "fearful": (0.7, -0.6),
    "disgust": (0.1, -0.7),
    "surprised": (0.7, 0.3),
}
AROUSAL_CENTRE = 0.15  # taken off every arousal: a window spread over the labels is neither high nor low
DEFAULT_COORDINATES: dict[str, tuple[float, float]] = {
    lab: (round(a - AROUSAL_CENTRE, 2), v) for lab, (a, v) in CIRCUMPLEX.items()
}
HIGH_AROUSAL = frozenset({"angry", "happy", "fearful", "surprised"})
LOW_AROUSAL = frozenset({"neutral", "calm", "sad"})
AXES = ("arousal", "valence")


@dataclass(frozen=True)
class AffectMap:
    """Per-label (arousal, valence) coordinates; ``source`` says where they came from."""

    coordinates: dict[str, tuple[float, float]]
    source: str = "default"

    @classmethod
    def default(cls, labels: Sequence[str]) -> AffectMap:
        return cls({lab: DEFAULT_COORDINATES.get(lab, (0.0, 0.0)) for lab in labels})

    @classmethod
    def from_metadata(cls, meta: Mapping, labels: Sequence[str]) -> AffectMap:
        """The model's own ``"affect"`` table if it has one, else the defaults. ValueError (one line) if the
        table is malformed."""
        table = meta.get("affect")
        if table is None:
            return cls.default(labels)
        if not isinstance(table, Mapping) or not all(isinstance(table.get(axis), Mapping) for axis in AXES):
            raise ValueError('"affect" must be {"arousal": {label: number}, "valence": {label: number}}')
        coords = {}
        for lab in labels:
            values = []
            for axis in AXES:
                v = table[axis].get(lab)
                if isinstance(v, bool) or not isinstance(v, int | float) or not -1.0 <= v <= 1.0:
                    raise ValueError(f'"affect" {axis} of {lab!r} must be a number in [-1, 1], not {v!r}')
                values.append(float(v))
            coords[lab] = (values[0], values[1])
        return cls(coords, source="model")

    def of(self, probabilities: Mapping[str, float]) -> tuple[float, float]:
        """(arousal, valence) of a probability distribution over the labels."""
        arousal = sum(p * self.coordinates.get(lab, (0.0, 0.0))[0] for lab, p in probabilities.items())
        valence = sum(p * self.coordinates.get(lab, (0.0, 0.0))[1] for lab, p in probabilities.items())
        return _clip(arousal), _clip(valence)


def _clip(x: float) -> float:
    return min(1.0, max(-1.0, float(x)))


def older_columns(found: Sequence[str], columns: Sequence[str]) -> bool:
    """``found`` are ``columns`` as versions before arousal/valence wrote them (the same without those two)."""
    return list(found) == [c for c in columns if c not in AXES]


def older_version_message(path: object, what_to_do: str) -> str:
    return f"{path} has the columns of an older version (no arousal/valence); {what_to_do}"
