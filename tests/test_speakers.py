"""Speaker turns on real recordings: the numpy encoder against the original torch model's embeddings, the
online clustering on real voices (alternating speakers, one long speaker, silence), and the outputs."""

from __future__ import annotations

import csv
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import DATA, VOICE_MONITOR, load_clip

from monitor.batch.score import FileScorer, ScoreOptions
from monitor.dsp.segmenter import segment_audio
from monitor.errors import MonitorError
from monitor.inference.prosody import VOICE_DIMS
from monitor.speakers import live as live_pass
from monitor.speakers import recluster as second_pass
from monitor.speakers.cluster import SpeakerOptions, SpeakerTracker
from monitor.speakers.encoder import SpeakerEncoder
from monitor.speakers.live import LiveTracker
from monitor.speakers.recluster import recluster
from monitor.speakers.turns import SpeakerTurns, file_labels, refine_labels
from training.convert_speaker_encoder import REFERENCE_CLIPS

SPEAKERS = DATA / "speakers"


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return SpeakerEncoder()


def actor_clips(actor: int) -> list[Path]:
    """Every clip of one RAVDESS actor in tests/data and tests/data/speakers, in name order."""
    return sorted([*DATA.glob(f"*-{actor:02d}.flac"), *SPEAKERS.glob(f"*-{actor:02d}.flac")], key=lambda p: p.name)


def conversation(*actors: int, pause_s: float = 0.8) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """The actors' clips taking turns (A B A B ...), with pauses: (audio, [(start, end, actor), ...])."""
    lists = [actor_clips(a) for a in actors]
    parts, turns, pos = [], [], 0
    for i in range(max(len(c) for c in lists)):
        for actor, clips in zip(actors, lists, strict=True):
            if i < len(clips):
                clip = load_clip(clips[i])
                pause = np.zeros(int(pause_s * 16000), np.int16)
                parts += [pause, clip]
                turns.append((pos + len(pause), pos + len(pause) + len(clip), actor))
                pos += len(pause) + len(clip)
    parts.append(np.zeros(8000, np.int16))
    return np.concatenate(parts), turns


def labelled_windows(audio: np.ndarray, encoder: SpeakerEncoder) -> tuple[list, SpeakerTurns]:
    turns = SpeakerTurns(encoder)
    windows = segment_audio(audio)
    labels = [turns.label(w.audio) for w in windows]
    return [(w, turns.resolve(lab)) for w, lab in zip(windows, labels, strict=True)], turns


def test_numpy_encoder_matches_the_original_torch_model(encoder):
    """tests/data/speaker_reference.npy: Resemblyzer's own VoiceEncoder (torch) on these clips, written by
    training/convert_speaker_encoder.py; the shipped float16 weights in numpy must give the same embeddings."""
    reference = np.load(DATA / "speaker_reference.npy")
    assert reference.shape == (len(REFERENCE_CLIPS), 256)
    for name, ref in zip(REFERENCE_CLIPS, reference, strict=True):
        emb = encoder.embed(load_clip(DATA / name))
        assert emb.shape == (256,) and abs(float(np.linalg.norm(emb)) - 1) < 1e-5
        assert float(emb @ ref) >= 0.99, name
    # and the embeddings tell the clips apart: not one vector for everything
    sims = reference @ reference.T
    assert sims[np.triu_indices(len(reference), 1)].max() < 0.95


def _plain_lstm_states(encoder: SpeakerEncoder, audio: np.ndarray) -> np.ndarray:
    """The encoder's states written the plain way (one partial and one step at a time, the gates from the
    weights as loaded): the reference ``read`` must match."""
    from monitor.speakers import encoder as enc

    x = enc.normalize_volume(audio.astype(np.float64) / 32768.0)
    starts = enc.partial_starts(len(x))
    x = np.pad(x, (0, max(0, (starts[-1] + enc.PARTIAL_FRAMES) * enc.HOP - len(x))))
    mel = enc.mel_frames(x)
    h_size = enc.HIDDEN
    per_partial = []
    for s in starts:
        seq, stats = mel[s : s + enc.PARTIAL_FRAMES].astype(np.float64), []
        for n, layer in enumerate(encoder.layers):
            h, c, hs = np.zeros(h_size), np.zeros(h_size), []
            for t in range(len(seq)):
                z = np.tanh(seq[t] @ layer.w_ih + layer.bias + layer.w_hh_rows @ h)
                i, f, o = ((z[k * h_size : (k + 1) * h_size] + 1) / 2 for k in range(3))  # halved sigmoid gates
                c = f * c + i * z[3 * h_size :]
                h = o * np.tanh(c)
                hs.append(h)
            seq = np.array(hs)
            if n in enc.STATE_LAYERS:
                stats.append((seq.mean(axis=0), seq.std(axis=0)))
        per_partial.append(stats)
    return np.concatenate([np.mean([p[k][j] for p in per_partial], axis=0)
                           for k in range(len(enc.STATE_LAYERS)) for j in range(2)])


def test_the_encoder_states_the_voice_head_reads(encoder):
    """``read``: the embedding ``embed`` gives and, from the same pass, each unit's mean and spread over time in the
    second and third LSTM layers (what the voice head reads, models/VOICE.md), as a plain LSTM gives them."""
    from monitor.speakers.encoder import STATE_DIMS

    assert STATE_DIMS == VOICE_DIMS, "the voice head's inputs are the encoder's states"
    for name in REFERENCE_CLIPS[:2]:
        audio = load_clip(DATA / name)
        reading = encoder.read(audio)
        assert reading is not None
        emb, states = reading
        assert np.array_equal(emb, encoder.embed(audio))
        assert states.shape == (STATE_DIMS,) and states.dtype == np.float32
        assert np.allclose(states, _plain_lstm_states(encoder, audio), atol=1e-5), name
    assert encoder.read(np.zeros(48000, np.int16)) is None, "silence: nothing"


SAME_GENDER_GAP = pytest.mark.xfail(
    strict=True,
    reason="known gap (models/SPEAKERS.md): for the GE2E encoder two RAVDESS actors of one gender lie about as far "
    "apart (centre distance 0.16) as one actor's emotional clips from each other (0.2); the default threshold "
    "keeps them as one speaker",
)


@pytest.mark.parametrize(
    ("a", "b"),
    [(1, 4), pytest.param(1, 3, marks=SAME_GENDER_GAP), pytest.param(4, 6, marks=SAME_GENDER_GAP)],
    ids=["man and woman", "two men", "two women"],
)
def test_two_speakers_alternating_are_told_apart(encoder, a, b):
    audio, truth = conversation(a, b)
    windows, turns = labelled_windows(audio, encoder)
    assert turns.count == 2, [lab for _, lab in windows]
    right = 0
    mapping: dict[str, int] = {}
    for w, lab in windows:
        actor = max(truth, key=lambda t: min(t[1], w.end_sample) - max(t[0], w.start_sample))[2]
        mapping.setdefault(lab, actor)
        right += mapping[lab] == actor
    assert len(set(mapping.values())) == 2
    assert right >= len(windows) - 1, [(lab, round(w.start_s, 1)) for w, lab in windows]


def test_one_speaker_for_a_minute_stays_one_speaker(encoder):
    clips = actor_clips(2)  # twelve clips of one actress: neutral to surprised, both sentences
    assert len(clips) == 12
    audio = np.concatenate([np.concatenate([np.zeros(16000, np.int16), load_clip(c)]) for c in clips])
    assert len(audio) / 16000 > 55
    windows, turns = labelled_windows(audio, encoder)
    assert len(windows) >= 12
    assert {lab for _, lab in windows} == {"S1"} and turns.count == 1


def test_silence_makes_no_speaker(encoder, tmp_path):
    assert encoder.embed(np.zeros(48000, np.int16)) is None
    turns = SpeakerTurns(encoder)
    assert turns.label(np.zeros(48000, np.int16)) == "" and turns.count == 0
    path = tmp_path / "room.wav"
    rng = np.random.default_rng(1)
    sf.write(path, (rng.standard_normal(16000 * 10) * 20).astype(np.int16), 16000, subtype="PCM_16")
    result = FileScorer(ScoreOptions()).score(str(path))
    assert result.events == [] and result.speakers == 0 and not result.failed


def test_tracker_merges_into_the_older_label_and_short_windows_never_open_a_speaker(encoder):
    a = [encoder.vector(load_clip(c)) for c in actor_clips(1)]
    b = [encoder.vector(load_clip(c)) for c in actor_clips(4)]
    tracker = SpeakerTracker(SpeakerOptions(min_embed_s=1.3))
    assert tracker.assign(a[0], 0.9) == ""  # short, no speaker yet: unlabelled
    assert tracker.assign(a[0], 3.0) == "S1"
    assert tracker.assign(b[0], 0.9) == "S1"  # short: the nearest known speaker, never a new one
    assert tracker.assign(b[0], 3.0) == "S2"
    assert tracker.assign(a[1], 3.0) == "S1" and tracker.assign(b[1], 3.0) == "S2"
    # An early split: actor 1's second clip lies beyond the threshold from the first and opens S2; clips between
    # the two (their mean voice) pull S1 towards S2 until the merge step folds S2 into the older S1.
    d = 1.0 - float(a[0] @ a[1])
    split = SpeakerTracker(SpeakerOptions(threshold=0.9 * d, merge_threshold=0.4 * d, spread=0.0))
    assert split.assign(a[0], 3.0) == "S1" and split.assign(a[1], 3.0) == "S2"
    middle = (a[0] + a[1]) / np.linalg.norm(a[0] + a[1])
    labels = [split.assign(middle, 3.0) for _ in range(10)]
    assert labels[-1] == "S1" and split.labels == ["S1"] and split.resolve("S2") == "S1"
    capped = SpeakerTracker(SpeakerOptions(threshold=0.001, merge_threshold=0.0, max_speakers=2, spread=0.0))
    assert [capped.assign(e, 3.0) for e in (a[0], b[0], a[1])][:2] == ["S1", "S2"]
    assert len(capped.speakers) == 2


def test_a_speaker_of_one_window_is_folded_into_its_nearest(encoder):
    a = [encoder.vector(load_clip(c)) for c in actor_clips(1)]
    odd = encoder.vector(load_clip(actor_clips(4)[0]))  # one window of another voice, never heard again
    for settle, survivors in ((8, ["S1"]), (0, ["S1", "S2"])):
        tracker = SpeakerTracker(SpeakerOptions(settle_windows=settle, min_windows=2))
        labels = [tracker.assign(e, 3.0) for e in [a[0], odd, *a[1:], *a, *a]]
        assert labels[:2] == ["S1", "S2"] and set(labels[2:]) == {"S1"}
        assert tracker.labels == survivors
        assert tracker.resolve("S2") == ("S1" if settle else "S2")


def test_a_whole_file_is_clustered_again_in_order_of_appearance(encoder, monkeypatch):
    a = [encoder.vector(load_clip(c)) for c in actor_clips(1)]  # a man
    b = [encoder.vector(load_clip(c)) for c in actor_clips(4)]  # a woman
    vectors = [b[0], a[0], b[1], a[1], b[2], a[2], b[3], a[3]]
    long = [3.0] * len(vectors)
    truth = ["S1", "S2"] * 4  # the first voice heard is S1, whoever it is
    assert recluster(vectors, long, 0.95) == truth
    # a tight threshold splits one window of the woman off; min_windows folds it back into her group
    assert recluster(vectors, long, 0.5, min_windows=1) == ["S1", "S2", "S1", "S2", "S3", "S2", "S1", "S2"]
    assert recluster(vectors, long, 0.5, min_windows=2) == truth
    # short windows take the nearest group without shaping it; no embedding (silence) stays unlabelled
    assert recluster([*vectors, b[1], a[2], None], [*long, 0.5, 0.5, 3.0], 0.95) == [*truth, "S1", "S2", ""]
    assert recluster([a[0], None], [0.5, 3.0], 0.95) is None  # nothing long enough: the online labels stay
    monkeypatch.setattr(second_pass, "MAX_WINDOWS", 4)  # hours of speech: groups found on a sample
    assert recluster(vectors, long, 0.95) == truth


def test_a_live_session_is_clustered_again_as_it_goes_and_keeps_its_labels(encoder):
    a = [encoder.vector(load_clip(c)) for c in actor_clips(1)]  # a man
    b = [encoder.vector(load_clip(c)) for c in actor_clips(4)]  # a woman
    # an online clustering that hears every window as a new voice names the first three; from the fourth long
    # window the session is clustered again: one voice, so the three labels resolve to the first
    opts = SpeakerOptions(threshold=0.001, merge_threshold=0.0, settle_windows=0, live_warm_windows=3)
    live = LiveTracker(opts)
    assert [live.assign(e, 3.0) for e in a[:3]] == ["S1", "S2", "S3"]
    assert live.assign(a[3], 3.0) == "S1"
    assert live.count == 1 and live.resolve("S2") == "S1" and live.resolve("S3") == "S1"
    # a new voice opens the next label (never a retired one) and both keep theirs; short windows and silence
    labels = [live.assign(e, 3.0) for e in [b[0], a[0], b[1], a[1], b[2], a[2], b[3]]]
    assert labels == ["S4", "S1", "S4", "S1", "S4", "S1", "S4"] and live.count == 2
    assert live.assign(a[3], 0.5) == "S1" and live.assign(b[3], 0.5) == "S4" and live.assign(None, 3.0) == ""
    # no more than max_speakers labels: a new voice then takes the nearest one's
    capped = LiveTracker(SpeakerOptions(max_speakers=1, live_warm_windows=0))
    assert [capped.assign(e, 3.0) for e in (a[0], b[0], a[1], b[1])] == ["S1"] * 4 and capped.count == 1
    # live uses it, files and live_recluster_threshold 0 keep the online clustering
    assert isinstance(SpeakerTurns(encoder).tracker, LiveTracker)
    assert isinstance(SpeakerTurns(encoder, whole_file=True).tracker, SpeakerTracker)
    assert isinstance(SpeakerTurns(encoder, SpeakerOptions(live_recluster_threshold=0.0)).tracker, SpeakerTracker)


def test_a_long_live_session_stays_bounded(encoder):
    """Hours of speech: each step clusters the last RECENT_WINDOWS windows, and only those are kept."""
    a = [encoder.vector(load_clip(c)) for c in actor_clips(1)]
    b = [encoder.vector(load_clip(c)) for c in actor_clips(4)]
    live = LiveTracker()
    labels = [live.assign(e, 3.0) for i in range(100) for e in (a[i % 4], b[i % 4])]
    assert labels[:2] == ["S1", "S2"] and set(labels[0::2]) == {"S1"} and set(labels[1::2]) == {"S2"}
    assert live.count == 2 and live.heard == 200
    assert len(live.vectors) == len(live._core()) == live_pass.RECENT_WINDOWS


def test_scoring_a_file_uses_the_second_pass(tmp_path):
    """Two women (actors 4 and 6): the online pass hears one voice; the whole file clustered again at a
    tighter threshold than the shipped one tells them apart (all but at most one of the eight windows; since the
    VAD hears a quiet voice after a loud one, actor 6's windows start earlier and one of actor 4's goes with her
    at 0.75, none at 0.8 before), and recluster_threshold 0 keeps the online labels."""
    audio, truth = conversation(4, 6)
    path = tmp_path / "two-women.flac"
    sf.write(path, audio, 16000, subtype="PCM_16")
    online = FileScorer(ScoreOptions(speakers=SpeakerOptions(recluster_threshold=0.0))).score(str(path))
    assert online.speakers == 1 and {e.speaker for e in online.events} == {"S1"}
    tight = FileScorer(ScoreOptions(speakers=SpeakerOptions(recluster_threshold=0.75))).score(str(path))
    def actor(e) -> int:  # the turn the window overlaps most
        return max(truth, key=lambda t: min(t[1], e.end_s * 16000) - max(t[0], e.start_s * 16000))[2]

    actors = [actor(e) for e in tight.events]
    assert tight.speakers == 2 and len(tight.events) == 8 and set(actors) == {4, 6}
    right = sum(e.speaker == {4: "S1", 6: "S2"}[x] for e, x in zip(tight.events, actors, strict=True))
    assert right >= 7, [e.speaker for e in tight.events]


def test_the_second_pass_folds_a_voice_heard_in_fewer_than_recluster_min_windows(encoder, tmp_path):
    """A man in four windows and a woman in two: a group of two windows is a voice at recluster_min_windows 2 and
    is folded into its nearest at 3 (the shipped value); ``voice-monitor score`` uses that setting, not the
    online pass's min_windows."""
    a = [encoder.vector(load_clip(c)) for c in actor_clips(1)]
    b = [encoder.vector(load_clip(c)) for c in actor_clips(4)]
    vectors = [a[0], b[0], a[1], a[2], b[1], a[3]]
    long = [3.0] * len(vectors)
    assert recluster(vectors, long, 0.95, min_windows=2) == ["S1", "S2", "S1", "S1", "S2", "S1"]
    assert recluster(vectors, long, 0.95, min_windows=3) == ["S1"] * len(vectors)
    clips = [actor_clips(1)[i] for i in (0, 1, 2, 3)] + [actor_clips(4)[i] for i in (0, 1)]
    pause = np.zeros(16000, np.int16)
    audio = np.concatenate([np.concatenate([pause, load_clip(c)]) for c in [clips[i] for i in (0, 4, 1, 2, 5, 3)]])
    path = tmp_path / "mostly-him.flac"
    sf.write(path, np.concatenate([audio, pause]), 16000, subtype="PCM_16")
    assert SpeakerOptions().recluster_min_windows == 3
    shipped = FileScorer(ScoreOptions()).score(str(path))
    assert len(shipped.events) == 6 and shipped.speakers == 1
    two = FileScorer(ScoreOptions(speakers=SpeakerOptions(recluster_min_windows=2, min_windows=5))).score(str(path))
    assert two.speakers == 2 and [e.speaker for e in two.events] == ["S1", "S2", "S1", "S1", "S2", "S1"]
    assert [e.emotion for e in two.events] == [e.emotion for e in shipped.events]  # the emotion rows do not move


def long_conversation(a: int, b: int, turns: int, seed: int) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """``turns`` turns of actors ``a`` and ``b`` by turns, each a piece (1-3.5 s, from a random start in the
    first half second) of a random clip of the speaker, after a pause of 0.4-1.2 s: (audio, [(start, end, actor)])."""
    rng = np.random.default_rng(seed)
    clips = {x: [load_clip(c) for c in actor_clips(x)] for x in (a, b)}
    parts, truth, pos = [], [], 0
    for t in range(turns):
        actor = (a, b)[t % 2]
        clip = clips[actor][int(rng.integers(len(clips[actor])))]
        cut = int(rng.integers(0, 8000))
        piece = clip[cut : cut + int(rng.uniform(1.0, 3.5) * 16000)]
        pause = np.zeros(int(rng.uniform(0.4, 1.2) * 16000), np.int16)
        parts += [pause, piece]
        truth.append((pos + len(pause), pos + len(pause) + len(piece), actor))
        pos += len(pause) + len(piece)
    parts.append(np.zeros(8000, np.int16))
    return np.concatenate(parts), truth


def test_a_long_file_is_labelled_as_live_then_close_speakers_merge(encoder):
    """Up to recluster_max_windows long windows the whole file is clustered at once; above, the labels are those
    of the live pass (monitor/speakers/live.py) over the file, then speakers whose centres lie within
    merge_threshold are joined; 0 keeps the whole-file clustering at any length."""
    a = [encoder.vector(load_clip(c)) for c in actor_clips(1)]  # a man
    b = [encoder.vector(load_clip(c)) for c in actor_clips(4)]  # a woman
    vectors = [b[0], a[0], b[1], a[1], b[2], a[2], b[3], a[3]]
    long = [3.0] * len(vectors)
    truth = ["S1", "S2"] * 4
    whole = SpeakerOptions(recluster_max_windows=0)
    assert file_labels(vectors, long, whole) == recluster(vectors, long, 0.95, 3) == truth
    assert file_labels(vectors, long, SpeakerOptions(recluster_max_windows=8)) == truth  # not above: the same
    # above: a live session whose online clustering hears every window as a new voice, and no second pass that
    # could join them (live_recluster_threshold 0; nor the refinement, which would fold them: the next test) ...
    split = SpeakerOptions(threshold=0.001, merge_threshold=0.0, settle_windows=0, live_recluster_threshold=0.0,
                           recluster_max_windows=4, recluster_refine_iterations=0)
    assert file_labels(vectors, long, split) == [f"S{i}" for i in range(1, 9)]
    # ... is joined at the end: speakers whose centres lie within merge_threshold (closest first, so one voice's
    # windows join up before the two voices, whose centres lie about 1.0 apart, would)
    assert file_labels(vectors, long, replace(split, merge_threshold=0.6)) == truth
    assert file_labels(vectors, long, replace(split, merge_threshold=1.2)) == ["S1"] * len(vectors)
    assert file_labels([*vectors, b[0], None], [*long, 0.5, 3.0], replace(split, merge_threshold=0.6)) == [
        *truth, "S1", ""]  # a short window takes its nearest speaker; silence stays unlabelled
    assert file_labels([a[0], None], [0.5, 3.0], split) is None  # nothing long enough: the online labels stay


def test_a_files_speakers_are_refined_by_k_means_over_its_long_windows(encoder):
    """Issue 19: after the file's speakers are found (whole-file clustering, or the live pass and merges), each long
    window goes to the speaker whose centre is nearest and speakers left with fewer than recluster_min_windows
    long windows are folded into their nearest, until nothing moves (recluster_refine_iterations; 0: not)."""
    a = [encoder.vector(load_clip(c)) for c in actor_clips(1)]  # a man
    b = [encoder.vector(load_clip(c)) for c in actor_clips(4)]  # a woman
    vectors = [b[0], a[0], b[1], a[1], b[2], a[2], b[3], a[3]]
    long = [3.0] * len(vectors)
    truth = ["S1", "S2"] * 4
    # one of the man's windows given to the woman: moved back to the man's centre (neither speaker is small)
    wrong = ["S1", "S2", "S1", "S2", "S1", "S1", "S1", "S2"]
    assert refine_labels(vectors, long, wrong, SpeakerOptions()) == truth
    assert refine_labels(vectors, long, wrong, SpeakerOptions(recluster_refine_iterations=0)) == wrong
    # labels named by order of appearance; a short window takes the nearest centre, silence stays unlabelled
    swapped = ["S2" if lab == "S1" else "S1" for lab in wrong]
    assert refine_labels([*vectors, a[1], None], [*long, 0.5, 3.0], [*swapped, "", ""], SpeakerOptions()) == [
        *truth, "S2", ""]
    # in file_labels, after the live pass and merges: a session whose online clustering hears every window as a
    # new voice, merged at 0.2, leaves the woman split (her windows lie 0.21-0.55 apart); refined, two voices
    split = SpeakerOptions(threshold=0.001, merge_threshold=0.2, settle_windows=0, live_recluster_threshold=0.0,
                           recluster_max_windows=4)
    before = file_labels(vectors, long, replace(split, recluster_refine_iterations=0))
    assert before is not None and len(set(before)) > 2
    assert file_labels(vectors, long, split) == truth
    # the whole-file clustering of a short file already gives these: unchanged
    assert file_labels(vectors, long, SpeakerOptions()) == recluster(vectors, long, 0.95, 3) == truth


def test_a_long_conversation_scored_as_a_file_keeps_its_two_speakers(tmp_path):
    """Issue 19: a hundred turns of a man and a woman (actors 1 and 4), about 90 windows. Complete linkage over all
    of a long file's windows split a voice (a group's widest pair grows with its size: three speakers here);
    above recluster_max_windows long windows ``score`` labels the file as live would, then joins close speakers."""
    audio, truth = long_conversation(1, 4, 100, seed=1)
    path = tmp_path / "long-talk.flac"
    sf.write(path, audio, 16000, subtype="PCM_16")
    result = FileScorer(ScoreOptions()).score(str(path))
    assert len([e for e in result.events if e.end_s - e.start_s >= 0.8]) > SpeakerOptions().recluster_max_windows

    def actor(e) -> int:  # the turn the window overlaps most
        return max(truth, key=lambda t: min(t[1], e.end_s * 16000) - max(t[0], e.start_s * 16000))[2]

    assert result.speakers == 2 and {e.speaker for e in result.events} == {"S1", "S2"}
    pairs = [(e.speaker, actor(e)) for e in result.events]
    right = max(sum((s == "S1") == (x == 1) for s, x in pairs), sum((s == "S1") == (x == 4) for s, x in pairs))
    assert right >= 0.95 * len(pairs), pairs


def test_score_windows_carry_the_speaker_and_the_file_its_count(encoder, tmp_path):
    audio, _ = conversation(1, 4)
    path = tmp_path / "talk.flac"
    sf.write(path, audio, 16000, subtype="PCM_16")
    result = FileScorer(ScoreOptions()).score(str(path))
    assert result.speakers == 2
    assert {e.speaker for e in result.events} == {"S1", "S2"}
    off = FileScorer(ScoreOptions(speakers=SpeakerOptions(enabled=False))).score(str(path))
    assert off.speakers is None and {e.speaker for e in off.events} == {""}
    # the CNN's judgement is the same (the prosody head reads each speaker against its own voice: per-speaker
    # adaptation, issue 19, so its windows may differ)
    cnn_on = FileScorer(ScoreOptions(prosody=False)).score(str(path))
    cnn_off = FileScorer(ScoreOptions(speakers=SpeakerOptions(enabled=False), prosody=False)).score(str(path))
    assert [e.emotion for e in cnn_off.events] == [e.emotion for e in cnn_on.events]


def test_speakers_off_keeps_the_old_columns(tmp_path, clips, model_path):
    audio = np.concatenate([np.zeros(16000, np.int16), load_clip(clips[0]), np.zeros(16000, np.int16)])
    out = tmp_path / "t.csv"
    args = ["--stdin", "--no-dashboard", "--transcriber", "none", "--csv", str(out), "--model", str(model_path)]
    proc = subprocess.run(VOICE_MONITOR + ["live", *args, "--speakers", "off"], input=audio.tobytes(),
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    header = next(csv.reader(out.open()))
    assert "speaker" not in header and header[:3] == ["index", "utterance", "start_s"]
    # the same file, now with speaker turns on: refused in one line, nothing appended
    proc = subprocess.run(VOICE_MONITOR + ["live", *args], input=audio.tobytes(), capture_output=True)
    err = proc.stderr.decode().strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1 and "--speakers" in err, err


@pytest.mark.parametrize(("key", "value"), [("threshold", "3.0"), ("recluster_threshold", "3.0"),
                                          ("recluster_min_windows", "0"), ("recluster_max_windows", "-1"),
                                          ("recluster_refine_iterations", "-1"),
                                          ("live_recluster_threshold", "3.0"),
                                          ("live_min_windows", "0")])
def test_bad_speakers_config_is_one_line(tmp_path, key, value):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[speakers]\n{key} = {value}\n")
    proc = subprocess.run(VOICE_MONITOR + ["live", "--config", str(cfg), "--stdin"], input=b"", capture_output=True)
    err = proc.stderr.decode().strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1 and f"[speakers] {key} " in err, err


def test_lda_speaker_space_is_optional_and_checked(encoder, tmp_path):
    clip = load_clip(DATA / REFERENCE_CLIPS[0])
    raw = SpeakerEncoder(lda=False)
    assert np.array_equal(raw.vector(clip), raw.embed(clip))
    v = encoder.vector(clip)
    assert v.shape == (48,) and abs(float(np.linalg.norm(v)) - 1) < 1e-5
    broken = tmp_path / "speaker_lda.npz"
    broken.write_bytes(b"not a numpy file")
    (tmp_path / "speaker_lda.json").write_text("{}")
    with pytest.raises(MonitorError, match="speaker_lda.npz cannot be read") as err:
        SpeakerEncoder(lda_path=broken)
    assert "\n" not in str(err.value)
