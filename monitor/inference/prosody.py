"""The prosody head: a small network (a softmax regression, or one hidden layer before it) on a window's
functionals, fused with the CNN.

The CNN hears the spectrum; voices it never heard shift the spectrum more than they shift how pitch, loudness and
voicing move. Beside the CNN a small network reads ``monitor.dsp.functionals`` (40 numbers per window),
standardised by a mean and spread, ``x = (f - mean) / std``::

    log p = (w log p_cnn + (1 - w) log softmax(coef @ h + intercept)) / T

where ``h`` is ``x`` itself (a softmax regression) or ``tanh(hidden_coef @ x + hidden_intercept)`` (one hidden
layer; the shipped head has 16 units).

Which mean and spread: the voice's own (``VoiceStats``: what the session, and each speaker in it, has sounded
like so far; a live run, a file, or a ``--voice-group`` group of files), pulled towards a prior while little of
it has been heard (``n / (n + 4)`` windows). The prior: in ``score`` with the run's baseline, the statistics of
the windows its survey read (a corpus, a call centre's export, a folder recorded on one set-up), themselves
pulled towards the training windows' while the survey has few files (the same ``n / (n + prior_files)`` as the
baseline); otherwise (the live monitor, one file, ``--baseline off``) the training windows'. A folder of short
clips is thus judged against the run, a long recording or a live session against its own voices. ``w``
differs between the two priors; both are chosen on the speaker-independent cross-validation, and the
temperature ``T`` of each is fitted there so that the confidence shown means what it says
(``training/prosody.py``, ``models/PROSODY.md``).

The head may carry one hidden layer (``hidden_coef``, ``hidden_intercept``, ``activation``): the regression then
reads ``activation(hidden_coef @ x + hidden_intercept)`` instead of ``x``; a head without them is the regression.
The head lives in ``models/emotion.prosody.json`` beside the emotion model; without it the CNN is used alone.

A *voice head* (``models/emotion.voice.json``) is such a head that also reads the speaker encoder's states for
the window (``monitor.speakers.encoder`` ``read``, computed anyway when speaker turns are on: each unit's mean and
spread over time in the GE2E encoder's second and third LSTM layers, ``VOICE_DIMS`` numbers):
``embedding_projection`` (K x ``VOICE_DIMS``, principal components of the training windows' states,
``embedding_mean`` taken out first) gives K more inputs after the functionals, standardised per voice like them
(a voice's usual states taken out: what is left is how the voice is moving). Their prior is the training
windows', or in a ``score`` run with speaker turns the run's voice group nearest to the voice
(``monitor.inference.run_voices``: a group's statistics of every input, pulled towards the run's).
Numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from monitor.errors import ModelError

FLOOR = 1e-6
PRIOR_WINDOWS = 4.0  # windows of a voice at which its own statistics count half (chosen on the CV)
VOICE_DIMS = 1024  # the speaker encoder's states a voice head reads (monitor.speakers.encoder.STATE_DIMS)
# what writes each head again (the shipped recipes, runnable as printed: ``--voice`` takes the number of components)
RETRAIN_PROSODY = "python -m training.prosody"
RETRAIN_VOICE = 'python -m training.prosody --voice 64 --hidden ""'
ACTIVATIONS = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0)}  # of an optional hidden layer


@dataclass(frozen=True)
class FeatureStats:
    """The mean and spread the functionals are standardised by (picklable: it travels with the scoring options)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    files: int = 0  # surveyed files behind it (0: the training windows')


def shrink(mean: np.ndarray, var: np.ndarray, n: float, prior_n: float,
           prior: FeatureStats) -> tuple[np.ndarray, np.ndarray]:
    """``n`` units of evidence (mean, variance) pulled towards ``prior`` by ``prior_n``: weight ``n / (n +
    prior_n)`` on the evidence, for the mean and the variance -> (mean, spread)."""
    lam = n / (n + prior_n)
    m0, s0 = np.asarray(prior.mean), np.asarray(prior.std)
    return lam * mean + (1 - lam) * m0, np.sqrt(lam * var + (1 - lam) * s0**2)


@dataclass(frozen=True)
class ProsodyHead:
    names: tuple[str, ...]
    mean: tuple[float, ...]  # the training windows' statistics
    std: tuple[float, ...]
    coef: tuple[tuple[float, ...], ...]  # (labels, features)
    intercept: tuple[float, ...]
    weight_run: float  # the CNN's weight with the run's statistics
    weight_alone: float  # the CNN's weight with the training windows' statistics
    temperature_run: float = 1.0  # the fused output's calibration in each setting (fitted on the CV)
    temperature_alone: float = 1.0
    emotion_sha256: str = ""  # the emotion model whose outputs the weights and temperatures were chosen on
    # an optional hidden layer (none: a softmax regression, ``coef`` (labels, features)); with it ``coef`` is
    # (labels, hidden) and reads ``activation(hidden_coef @ x + hidden_intercept)``
    hidden_coef: tuple[tuple[float, ...], ...] = ()  # (hidden, features)
    hidden_intercept: tuple[float, ...] = ()
    activation: str = ""
    # a voice head: the principal components of the speaker encoder's states as more inputs (none: functionals
    # alone); the field names are the first voice head's, which read the embedding
    embedding_mean: tuple[float, ...] = ()  # (VOICE_DIMS,)
    embedding_projection: tuple[tuple[float, ...], ...] = ()  # (K, VOICE_DIMS)

    @property
    def voice_dims(self) -> int:
        """How many of the inputs come from the speaker encoder's states (the last ones; 0: a functionals head)."""
        return len(self.embedding_projection)

    @property
    def functional_dims(self) -> int:
        return len(self.names) - self.voice_dims

    @cached_property
    def _projection(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.embedding_mean, dtype=np.float64), np.asarray(self.embedding_projection).T

    def inputs(self, f: np.ndarray, states: np.ndarray | None = None) -> np.ndarray:
        """A window's functionals (and, for a voice head, the speaker encoder's states) -> the head's inputs. A
        window without states (silence) takes the training windows' mean for those inputs."""
        f = np.asarray(f, dtype=np.float64)
        if not self.embedding_projection:
            return f
        if states is None:
            return np.concatenate([f, self.mean[self.functional_dims :]])
        m, p = self._projection
        return np.concatenate([f, (np.asarray(states, dtype=np.float64) - m) @ p])

    @property
    def population(self) -> FeatureStats:
        return FeatureStats(self.mean, self.std, 0)

    def log_probs(self, f: np.ndarray, mean: np.ndarray | tuple, std: np.ndarray | tuple) -> np.ndarray:
        """Functionals (..., features) -> log-probabilities (..., labels)."""
        x = (np.asarray(f, dtype=np.float64) - np.asarray(mean)) / (np.asarray(std) + 1e-6)
        x = np.clip(x, -6.0, 6.0)  # a window far outside anything heard must not decide alone
        if self.hidden_coef:
            x = ACTIVATIONS[self.activation](x @ np.asarray(self.hidden_coef).T + np.asarray(self.hidden_intercept))
        z = x @ np.asarray(self.coef).T + np.asarray(self.intercept)
        z -= z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    def shrunk(self, mean: np.ndarray, std: np.ndarray, files: int, prior_files: float) -> FeatureStats:
        """A run's statistics (of the functionals) pulled towards the training windows' by ``prior_files`` files of
        evidence; a voice head's inputs from the encoder's states keep the training windows' (measured so: the
        run's voice groups give theirs, ``monitor.inference.run_voices``)."""
        k = self.functional_dims
        mean = np.concatenate([np.asarray(mean, dtype=np.float64)[:k], self.mean[k:]])
        std = np.concatenate([np.asarray(std, dtype=np.float64)[:k], self.std[k:]])
        m, s = shrink(mean, std**2, files, prior_files, self.population)
        return FeatureStats(tuple(round(float(v), 6) for v in m), tuple(round(float(v), 6) for v in s), files)

    def save(self, path: Path, extra: dict | None = None) -> None:
        d = {"kind": "prosody-softmax-v1", "features": list(self.names), "mean": list(self.mean),
             "std": list(self.std), "coef": [list(r) for r in self.coef], "intercept": list(self.intercept),
             "weight_run": self.weight_run, "weight_alone": self.weight_alone,
             "temperature_run": self.temperature_run, "temperature_alone": self.temperature_alone,
             **({"emotion_sha256": self.emotion_sha256} if self.emotion_sha256 else {}),
             **({"hidden_coef": [list(r) for r in self.hidden_coef], "hidden_intercept": list(self.hidden_intercept),
                 "activation": self.activation} if self.hidden_coef else {}),
             **({"embedding_mean": list(self.embedding_mean),
                 "embedding_projection": [list(r) for r in self.embedding_projection]}
                if self.embedding_projection else {}), **(extra or {})}
        Path(path).write_text(json.dumps(d, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path, labels: tuple[str, ...], names: tuple[str, ...], voice: bool = False) -> ProsodyHead:
        """``names``: the functionals the monitor computes; ``voice``: the head must be a voice head (its inputs
        then go on with ``voice_1`` ... ``voice_K``, the states' components), else it must not be one."""
        without = "judge with the prosody head instead" if voice else "use the CNN alone"  # what deleting it does
        retrain = RETRAIN_VOICE if voice else RETRAIN_PROSODY  # what writes it again
        try:
            d = json.loads(Path(path).read_text())
            head = cls(tuple(d["features"]), tuple(map(float, d["mean"])), tuple(map(float, d["std"])),
                       tuple(tuple(map(float, r)) for r in d["coef"]), tuple(map(float, d["intercept"])),
                       float(d["weight_run"]), float(d["weight_alone"]), float(d.get("temperature_run", 1.0)),
                       float(d.get("temperature_alone", 1.0)), str(d.get("emotion_sha256", "")),
                       tuple(tuple(map(float, r)) for r in d.get("hidden_coef", ())),
                       tuple(map(float, d.get("hidden_intercept", ()))), str(d.get("activation", "")),
                       tuple(map(float, d.get("embedding_mean", ()))),
                       tuple(tuple(map(float, r)) for r in d.get("embedding_projection", ())))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}: unreadable {'voice' if voice else 'prosody'} head ({exc}); restore it from the "
                             f"repository or delete it to {without}") from None
        k = head.voice_dims
        if voice and not k:
            raise ModelError(f"{path}: not a voice head (it has no embedding_projection); retrain it ({retrain}) or "
                             f"delete it to {without}")
        if k and not voice:
            raise ModelError(f"{path}: a voice head (it reads the speaker encoder) where the functionals head "
                             "belongs; restore it from the repository or delete it to use the CNN alone")
        if k and (len(head.embedding_mean) != VOICE_DIMS or {len(r) for r in head.embedding_projection}
                  != {VOICE_DIMS}):
            rows = sorted({len(r) for r in head.embedding_projection})
            older = " (256: the first voice head's, which read the speaker embedding)" if rows == [256] else ""
            raise ModelError(f"{path}: made for other inputs than this monitor's speaker encoder states (its "
                             f"embedding_mean has {len(head.embedding_mean)} numbers, its embedding_projection rows "
                             f"{'/'.join(map(str, rows))}{older}; the states are {VOICE_DIMS}); retrain it ({retrain}) "
                             f"or delete it to {without}")
        names = tuple(names) + tuple(f"voice_{i + 1}" for i in range(k))
        hidden = len(head.hidden_intercept)
        if (hidden > 0) != bool(head.hidden_coef) or (hidden > 0) != bool(head.activation) or (
                hidden and (head.activation not in ACTIVATIONS or [len(r) for r in head.hidden_coef]
                            != [len(names)] * hidden)):
            raise ModelError(f"{path}: a malformed hidden layer (hidden_coef (units x {len(names)} functionals), "
                             f"hidden_intercept (units) and activation ({' or '.join(ACTIVATIONS)}) go together); "
                             f"retrain it ({retrain}) or delete it to {without}")
        shapes = ([len(r) for r in head.coef], len(head.mean), len(head.std), len(head.intercept))
        if head.names != names or shapes != ([hidden or len(names)] * len(labels), len(names), len(names),
                                             len(labels)):
            raise ModelError(f"{path}: made for other functionals or labels than this monitor's; retrain it "
                             f"({retrain}) or delete it to {without}")
        numbers = np.array([*head.mean, *head.std, *head.intercept, *(v for r in head.coef for v in r),
                            *head.hidden_intercept, *(v for r in head.hidden_coef for v in r),
                            *head.embedding_mean, *(v for r in head.embedding_projection for v in r),
                            head.temperature_run, head.temperature_alone])
        if not np.isfinite(numbers).all() or min(head.std) <= 0:
            raise ModelError(f"{path}: holds numbers that are not finite, or a spread that is not > 0; restore it "
                             f"from the repository or delete it to {without}")
        if not (0 <= head.weight_run <= 1 and 0 <= head.weight_alone <= 1):
            raise ModelError(f"{path}: fusion weights must be between 0 and 1")
        if not (head.temperature_run > 0 and head.temperature_alone > 0):
            raise ModelError(f"{path}: temperatures must be > 0")
        return head


@dataclass
class _Moments:
    count: int
    total: np.ndarray
    squares: np.ndarray


@dataclass
class VoiceStats:
    """What a session (a live run, a file, a voice group; key "") and each of its speakers (key = label) have
    sounded like: running sums of their windows' functionals. ``standardiser`` gives a window's mean and spread:
    the voice's own, as far as it has been heard (``n / (n + prior_windows)``, the window itself included), the
    prior's (the run's statistics, or the training windows') for the rest. Not thread-safe: one worker owns it."""

    prior_windows: float = PRIOR_WINDOWS
    _heard: dict[str, _Moments] = field(default_factory=dict)

    def add(self, f: np.ndarray, key: str = "") -> None:
        """A window of speaker ``key`` (""  for a window no speaker was given): it counts for the session and
        for its speaker."""
        f = np.asarray(f, dtype=np.float64)
        for k in {"", key}:
            h = self._heard.get(k)
            if h is None:
                h = self._heard[k] = _Moments(0, np.zeros_like(f), np.zeros_like(f))
            h.count += 1
            h.total += f
            h.squares += f * f

    def windows(self, key: str = "") -> int:
        h = self._heard.get(key)
        return h.count if h else 0

    def standardiser(self, key: str, prior: FeatureStats) -> tuple[np.ndarray, np.ndarray]:
        """The mean and spread for a window of ``key``: the speaker's own shrunk towards the session's, the
        session's shrunk towards ``prior``."""
        if key:
            session = self.standardiser("", prior)
            prior = FeatureStats(tuple(session[0]), tuple(session[1]))
        h = self._heard.get(key)
        if h is None or h.count == 0:
            return np.asarray(prior.mean), np.asarray(prior.std)
        mean = h.total / h.count
        return shrink(mean, np.maximum(h.squares / h.count - mean**2, 0.0), h.count, self.prior_windows, prior)


def fuse(p_cnn: np.ndarray, log_p_prosody: np.ndarray, weight: float, temperature: float = 1.0) -> np.ndarray:
    """The CNN's probabilities and the head's log-probabilities -> fused probabilities (sum to 1), divided by
    ``temperature`` in the log domain (the fused output's calibration)."""
    z = weight * np.log(np.maximum(np.asarray(p_cnn, dtype=np.float64), FLOOR)) + (1 - weight) * log_p_prosody
    z = z / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
