"""The voice head (``models/emotion.voice.json``, ``monitor.inference.prosody``): the prosody head that also reads
the speaker encoder's states for each window, fused instead of it when speaker turns are on (`score`, `live`).
Real model, real speaker encoder, real RAVDESS clips from tests/data, the real CLI."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import load_clip

from monitor.analysis import WindowAnalyzer
from monitor.audio.sources import FileSource
from monitor.batch.score import FileScorer, ScoreOptions
from monitor.dsp.functionals import NAMES, functionals
from monitor.dsp.segmenter import segment_audio
from monitor.errors import ModelError
from monitor.inference.classifier import EmotionClassifier, voice_head_path
from monitor.inference.prosody import VOICE_DIMS, ProsodyHead, VoiceStats, fuse
from monitor.pipeline import Pipeline
from monitor.speakers.cluster import SpeakerOptions
from monitor.speakers.encoder import SpeakerEncoder
from monitor.speakers.turns import SpeakerTurns
from tests.test_batch import MODEL, no_traceback, read_rows
from tests.test_prosody import score, serve_stops_at_start


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return SpeakerEncoder()


def _probs(event, labels) -> np.ndarray:
    return np.array([event.probabilities[lab] for lab in labels])


def test_shipped_voice_head_loads(classifier: EmotionClassifier) -> None:
    head = classifier.voice_head
    assert head is not None, f"{voice_head_path(MODEL)} must ship beside the model"
    k = head.voice_dims
    assert k > 0 and head.functional_dims == len(NAMES)
    assert head.names == NAMES + tuple(f"voice_{i + 1}" for i in range(k))
    assert np.shape(head.embedding_projection) == (k, VOICE_DIMS) and len(head.embedding_mean) == VOICE_DIMS
    assert 0 < head.weight_run < 1 and 0 < head.weight_alone < 1
    assert classifier.prosody is not None and classifier.prosody.voice_dims == 0


def test_inputs_are_the_functionals_and_the_projected_embedding(classifier: EmotionClassifier) -> None:
    head = classifier.voice_head
    assert head is not None
    rng = np.random.default_rng(0)
    f = rng.normal(size=len(NAMES))
    e = rng.normal(size=VOICE_DIMS)
    x = head.inputs(f, e)
    expected = (e - np.asarray(head.embedding_mean)) @ np.asarray(head.embedding_projection).T
    assert np.allclose(x[: len(NAMES)], f) and np.allclose(x[len(NAMES) :], expected)
    assert np.allclose(head.inputs(f, None)[len(NAMES) :], head.mean[len(NAMES) :]), "no embedding: the mean"
    assert classifier.prosody is not None and np.array_equal(classifier.prosody.inputs(f, e), f)
    # a run's statistics are the prior of the functionals; the embedding's stays the training windows'
    stats = head.shrunk(np.asarray(f), np.ones(len(NAMES)), 50, 8.0)
    assert len(stats.mean) == len(head.names)
    assert np.allclose(stats.mean[len(NAMES) :], head.mean[len(NAMES) :], atol=1e-6)  # shrunk rounds to 1e-6
    assert np.allclose(stats.std[len(NAMES) :], head.std[len(NAMES) :], atol=1e-6)
    lam = 50 / 58
    assert np.allclose(stats.mean[: len(NAMES)], lam * f + (1 - lam) * np.asarray(head.mean[: len(NAMES)]),
                       atol=1e-5)


def test_analyzer_with_embeddings_fuses_the_voice_head(classifier: EmotionClassifier, encoder: SpeakerEncoder,
                                                       clips) -> None:
    head = classifier.voice_head
    assert head is not None
    voice = WindowAnalyzer(classifier, embeddings=True)
    plain, cnn = WindowAnalyzer(classifier), WindowAnalyzer(classifier, prosody=False)
    assert voice.head is head and plain.head is classifier.prosody
    voices = VoiceStats()
    fs, xs = [], []
    apart = 0.0
    for clip in clips[:4]:  # one session: four clips of different actors
        for w in segment_audio(load_clip(clip)):
            reading = encoder.read(w.audio)
            assert reading is not None
            e = reading[1]
            p_voice = _probs(voice.analyze(w, states=e), classifier.labels)
            p_plain = _probs(plain.analyze(w), classifier.labels)
            p_cnn = _probs(cnn.analyze(w), classifier.labels)
            f = functionals(w.audio)
            fs.append(f)
            x = head.inputs(f, e)
            xs.append(x)
            voices.add(x)
            mean, std = voices.standardiser("", head.population)
            expected = fuse(p_cnn, head.log_probs(x, mean, std), head.weight_alone, head.temperature_alone)
            assert np.allclose(p_voice, expected, atol=1e-5)
            apart = max(apart, float(np.abs(p_voice - p_plain).max()))
    assert apart > 0.02, "the encoder states must change something on real speech"
    assert voice.functional_sum is not None and len(voice.functional_sum) == len(head.names) > len(NAMES)
    assert np.allclose(voice.functional_sum, np.sum(xs, axis=0), rtol=1e-5), "a survey reads the head's inputs"
    assert np.allclose(voice.functional_sum[: len(NAMES)], np.sum(fs, axis=0), rtol=1e-5)


def _model_copy(root: Path, voice: str | None = None, prosody: str | None = None) -> Path:
    root.mkdir()
    for name in ("emotion.tflite", "emotion.json", "emotion.prosody.json"):
        shutil.copy(MODEL.parent / name, root / name)
    if voice is not None:
        (root / "emotion.voice.json").write_text(voice)
    if prosody is not None:
        (root / "emotion.prosody.json").write_text(prosody)
    return root / "emotion.tflite"


def test_score_uses_the_voice_head_with_speaker_turns(tmp_path: Path, classifier: EmotionClassifier,
                                                      encoder: SpeakerEncoder, clips) -> None:
    """`score` with speaker turns (the default): each window judged with its own embedding, as the analyzer above;
    without them (or without the file) the functionals head, as before."""
    audio = np.concatenate([load_clip(c) for c in clips[:2]])
    path = tmp_path / "two.wav"
    sf.write(path, audio, 16000, subtype="PCM_16")
    on = FileScorer(ScoreOptions()).score(str(path))
    turns = SpeakerTurns(encoder, SpeakerOptions(), whole_file=True)
    analyzer = WindowAnalyzer(classifier, embeddings=True)
    windows = segment_audio(audio)
    assert len(windows) == len(on.events) >= 2
    for w, event in zip(windows, on.events, strict=True):
        speaker = turns.label(w.audio)
        expected = analyzer.analyze(w, speaker=speaker, states=turns.states)
        assert np.allclose(_probs(event, classifier.labels), _probs(expected, classifier.labels), atol=1e-5)
    without = _model_copy(tmp_path / "m")  # the same model without its voice head
    other = FileScorer(ScoreOptions(model_path=without)).score(str(path))
    assert any(not np.allclose(_probs(a, classifier.labels), _probs(b, classifier.labels), atol=1e-3)
               for a, b in zip(on.events, other.events, strict=True)), "the voice head must be what judged"


def test_live_uses_the_voice_head_with_speaker_turns(tmp_path: Path, classifier: EmotionClassifier,
                                                     encoder: SpeakerEncoder, clips) -> None:
    audio = np.concatenate([np.zeros(8000, np.int16), load_clip(clips[0]), np.zeros(24000, np.int16)])
    path = tmp_path / "s.wav"
    sf.write(path, audio, 16000, subtype="PCM_16")
    events = []
    p = Pipeline(FileSource(path, realtime=False), classifier, on_event=events.append,
                 speakers=SpeakerTurns(encoder, SpeakerOptions()))
    assert p.analyzer.head is classifier.voice_head
    p.start()
    p.wait(60)
    p.stop()
    assert p.error is None and events
    analyzer = WindowAnalyzer(classifier, embeddings=True)
    turns = SpeakerTurns(encoder, SpeakerOptions())
    for w, event in zip(segment_audio(audio), events, strict=True):
        speaker = turns.label(w.audio)
        expected = analyzer.analyze(w, speaker=speaker, states=turns.states)
        assert np.allclose(_probs(event, classifier.labels), _probs(expected, classifier.labels), atol=1e-5)
    assert Pipeline(FileSource(path, realtime=False), classifier).analyzer.head is classifier.prosody


def _plain_head() -> str:
    return (MODEL.parent / "emotion.prosody.json").read_text()


def _voice_head(change) -> str:
    import json

    d = json.loads((MODEL.parent / "emotion.voice.json").read_text())
    change(d)
    return json.dumps(d)


@pytest.mark.parametrize(("where", "content", "message"), [
    ("voice", "plain", "not a voice head"),
    ("voice", "short rows", "made for other inputs than this monitor's speaker encoder states"),
    ("voice", "not json", "unreadable voice head"),
    ("prosody", "voice", "a voice head"),
])
def test_broken_voice_head_is_one_line(tmp_path: Path, where: str, content: str, message: str, clips) -> None:
    text = {"plain": _plain_head, "not json": lambda: "{oops",
            "short rows": lambda: _voice_head(lambda d: d.update(embedding_projection=[r[:-1] for r in
                                                                                      d["embedding_projection"]])),
            "voice": lambda: (MODEL.parent / "emotion.voice.json").read_text()}[content]()
    model = _model_copy(tmp_path / "m", **{where: text})
    with pytest.raises(ModelError, match=message):
        EmotionClassifier(model)
    res = score(str(clips[0]), "-o", "x.csv", "--model", str(model), cwd=tmp_path)
    assert res.returncode != 0 and not (tmp_path / "x.csv").exists() or not read_rows(tmp_path / "x.csv")
    no_traceback(res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"emotion.{where}.json" in lines[0] and message in lines[0], res.stderr


def test_voice_head_round_trips(tmp_path: Path, classifier: EmotionClassifier) -> None:
    head = classifier.voice_head
    assert head is not None
    head.save(tmp_path / "v.json")
    assert ProsodyHead.load(tmp_path / "v.json", classifier.labels, NAMES, voice=True) == head


def test_training_fits_the_projection_on_the_training_windows(tmp_path: Path, classifier: EmotionClassifier) -> None:
    """``training.prosody.head_inputs``: the functionals, then the embeddings' principal components fitted on the
    training windows only; the head written from them reads a window as the monitor does."""
    from training.prosody import Windows, head_from, head_inputs
    from training.voice_embeddings import principal_components

    rng = np.random.default_rng(3)
    n, k = 80, 5
    x = rng.normal(size=(n, len(NAMES)))
    emb = rng.normal(size=(n, VOICE_DIMS)) * np.linspace(3, 0.1, VOICE_DIMS)
    keys = np.array([f"c:{i}" for i in range(n)])
    win = Windows(x, keys, np.full(n, "c"), rng.integers(0, 8, n), {"c": list(range(8))}, np.full(n, "c/1"), emb)
    train = np.arange(n) < 50
    assert head_inputs(win, train, 0) == (win.x, None)
    inputs, (mean, comp) = head_inputs(win, train, k)
    assert inputs.shape == (n, len(NAMES) + k) and np.array_equal(inputs[:, : len(NAMES)], x)
    assert np.allclose(mean, emb[train].mean(axis=0)) and np.allclose(comp @ comp.T, np.eye(k), atol=1e-9)
    spread = inputs[train, len(NAMES) :].var(axis=0)
    assert np.all(np.diff(spread) <= 1e-9) and spread[0] > 5 * emb[train].var(axis=0).mean(), "widest first"
    other = Windows(x, keys, win.corpus, win.label, win.corpus_labels, win.speaker, emb.copy())
    other.embedding[~train] += 5.0  # the held-out windows do not move the projection
    assert all(np.allclose(a, b) for a, b in zip(principal_components(other.embedding[train], k), (mean, comp),
                                                strict=True))
    head = head_from(rng.normal(size=(8, len(NAMES) + k)), rng.normal(size=8), inputs.mean(axis=0),
                     inputs.std(axis=0), 0.6, 0.6, 0.8, 0.8, (mean, comp))
    head.save(tmp_path / "v.json")
    again = ProsodyHead.load(tmp_path / "v.json", classifier.labels, NAMES, voice=True)
    assert again.names[-1] == f"voice_{k}"
    for i in (0, 60):
        assert np.allclose(again.inputs(x[i], emb[i]), inputs[i])


def test_training_embeds_the_windows_the_functionals_are_read_from(encoder: SpeakerEncoder, clips) -> None:
    """``training.voice_embeddings.clip_embeddings``: the encoder's states and embedding for each window of the
    monitor's segmenter (the windows ``training.prosody`` reads functionals from), as the monitor's encoder gives
    them; ``training.prosody.speaker_vectors`` places the embeddings as the monitor's speaker turns do."""
    from training.prosody import speaker_vectors
    from training.voice_embeddings import EMBEDDING_DIMS, clip_embeddings

    e = clip_embeddings(str(clips[0]))
    windows = segment_audio(load_clip(clips[0]))
    assert e.shape == (len(windows), VOICE_DIMS + EMBEDDING_DIMS) and len(windows) >= 1
    vectors = speaker_vectors(np.vstack([e[:, VOICE_DIMS:], np.zeros((1, EMBEDDING_DIMS))]))
    assert not np.any(vectors[-1]), "a window without an embedding has no place"
    lda = SpeakerEncoder()
    for row, vector, w in zip(e, vectors[:-1], windows, strict=True):
        reading = encoder.read(w.audio)
        assert reading is not None and np.allclose(row[:VOICE_DIMS], reading[1], atol=1e-6)
        assert np.allclose(row[VOICE_DIMS:], reading[0], atol=1e-6)
        assert np.allclose(vector, lda.project(reading[0]), atol=1e-5)


def test_two_voice_sessions_read_a_new_voice_against_the_session_or_the_prior() -> None:
    """``training.two_voice_sessions.two_level``: by default a speaker's first window is read against the session
    heard so far (the other voice's windows), as the monitor does; with ``voice_from`` those inputs against the
    training windows' prior alone."""
    from monitor.inference.prosody import PRIOR_WINDOWS
    from training.two_voice_sessions import two_level

    d = 4
    x = np.array([[5.0] * d] * 6 + [[-5.0] * d])  # six windows of voice a, then voice b's first
    speaker = np.array(["a"] * 6 + ["b"], dtype=object)
    session = np.full(7, "s", dtype=object)
    m0, s0 = np.zeros(d), np.ones(d)
    mean, _ = two_level(x, speaker, session, np.arange(7), m0, s0)
    lam = 1 / (1 + PRIOR_WINDOWS)  # b's one window of its own
    assert np.all(mean[6] > lam * -5.0), "b is read against a session that has heard mostly a"
    split, _ = two_level(x, speaker, session, np.arange(7), m0, s0, voice_from=2)
    assert np.allclose(split[6, 2:], lam * -5.0), "from voice_from on: b's own window and the prior alone"
    assert np.allclose(split[:, :2], mean[:, :2]), "the inputs before voice_from as by default"


def test_serve_with_a_broken_voice_head_is_one_line_at_start(tmp_path: Path) -> None:
    """``serve`` builds its scorer only at the first upload: a broken voice head must stop it at start with one
    line, as a broken prosody head does, not start a server whose every upload is a 500 with a traceback in its
    log."""
    pytest.importorskip("uvicorn")
    serve_stops_at_start(_model_copy(tmp_path / "m", voice="{oops"), "emotion.voice.json")


@pytest.mark.parametrize("content", ["other components", "another model"])
def test_broken_voice_head_points_to_the_voice_heads_training(tmp_path: Path, content: str) -> None:
    """A voice head made for other inputs, or for another emotion model, is written again by ``training.prosody
    --voice``: ``training.prosody`` alone writes the prosody head, and deleting the voice head does not give the
    CNN alone but the prosody head."""
    def bad(d: dict) -> None:
        if content == "other components":
            d["features"][-1] = "voice_x"
        else:
            d["emotion_sha256"] = "0" * 64

    model = _model_copy(tmp_path / "m", voice=_voice_head(bad))
    with pytest.raises(ModelError) as err:
        EmotionClassifier(model)
    line = str(err.value)
    assert "emotion.voice.json" in line and "\n" not in line
    assert "training.prosody --voice" in line and "CNN alone" not in line, line
    assert "with the prosody head instead" in line, line
    assert _retrain_arguments(line).voice == 64


def _retrain_arguments(line: str):
    """The command a message tells to run (``retrain it (python -m training.prosody ...)``), parsed by
    ``training.prosody``'s own command line."""
    from training.prosody import parser

    found = re.search(r"retrain it \((python -m training\.prosody[^)]*)\)", line)
    assert found is not None, line
    words = shlex.split(found.group(1))
    assert words[:3] == ["python", "-m", "training.prosody"], line
    return parser().parse_args(words[3:])


def test_a_voice_head_of_the_speaker_embedding_says_so_and_how_to_write_it_again(
        tmp_path: Path, classifier: EmotionClassifier, clips) -> None:
    """Review 25: a voice head made before it read the encoder's states (a 64 x 256 projection of the speaker
    embedding, as models/emotion.voice.json was until 88c28c5) stops `score` with one line that says what the file
    has and what the monitor reads, and names a command that runs: ``training.prosody --voice`` alone is refused
    by its argument parser (``--voice`` takes the number of components), so the shipped recipe is given."""
    def embedding_head(d: dict) -> None:
        d.update(embedding_mean=d["embedding_mean"][:256], embedding_projection=[r[:256] for r in
                                                                                 d["embedding_projection"]])

    model = _model_copy(tmp_path / "m", voice=_voice_head(embedding_head))
    res = score(str(clips[0]), "-o", "x.csv", "--model", str(model), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    no_traceback(res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "emotion.voice.json" in lines[0], res.stderr
    line = lines[0]
    assert "has 256 numbers" in line and "rows 256" in line and "speaker embedding" in line, line
    assert f"the states are {VOICE_DIMS}" in line and "with the prosody head instead" in line, line
    a = _retrain_arguments(line)
    assert classifier.voice_head is not None and a.voice == classifier.voice_head.voice_dims == 64, line
    assert a.hidden == "", "the shipped voice head is the regression"
    # the prosody head's own messages name training.prosody without --voice, which writes the prosody head
    import json

    plain = json.loads(_plain_head())
    plain["features"][-1] = "other"
    with pytest.raises(ModelError) as err:
        EmotionClassifier(_model_copy(tmp_path / "p", prosody=json.dumps(plain)))
    assert _retrain_arguments(str(err.value)).voice == 0, str(err.value)
