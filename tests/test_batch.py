"""Batch scoring (``voice-monitor score`` / scripts/score_files.py) on real clips mixed with bad files.

Real parts throughout: the shipped model (``models/emotion.tflite``; ``VOICE_MONITOR_TEST_MODEL`` points
elsewhere), real RAVDESS clips from tests/data converted with soundfile, the CLI run as a subprocess.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from monitor.analysis import WindowAnalyzer
from monitor.audio.convert import read_audio
from monitor.batch.discover import discover
from monitor.batch.score import FileScorer, ScoreOptions
from monitor.config import load_config
from monitor.dsp.segmenter import Segmenter
from monitor.inference.classifier import EmotionClassifier

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
SCRIPT = REPO / "scripts" / "score_files.py"
_ENV_MODEL = os.environ.get("VOICE_MONITOR_TEST_MODEL")
MODEL = Path(_ENV_MODEL) if _ENV_MODEL else REPO / "models" / "emotion.tflite"
MODEL_ARGS = ["--model", str(MODEL)] if _ENV_MODEL else []  # default: the shipped model, found by the CLI


@pytest.fixture(scope="module")
def classifier() -> EmotionClassifier:
    assert MODEL.exists(), f"the shipped model {MODEL} is missing (set VOICE_MONITOR_TEST_MODEL to test another)"
    return EmotionClassifier(MODEL)


@pytest.fixture(scope="module")
def labels(classifier: EmotionClassifier) -> tuple[str, ...]:
    return classifier.labels


def clips() -> list[Path]:
    files = sorted(DATA.glob("*.flac"))
    assert len(files) == 8, "tests/data must hold the eight RAVDESS clips"
    return files


def score_cli(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCRIPT), *args, *MODEL_ARGS, "--progress", "none"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        return list(csv.DictReader(f))


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


# --- the corpus: good clips in several formats, bad files, a silent file ---------------------------------
GOOD_CONVERTED = {
    "sub/stereo_44k.wav": (44100, 2, "PCM_16"),
    "sub/mono_8k.ogg": (8000, 1, "VORBIS"),
    "sub/deeper/float_48k.aiff": (48000, 1, "FLOAT"),
}
BAD = {
    "empty.wav": "",  # 0 bytes
    "notes_named.wav": "text",  # a text file named .wav
    "sub/truncated.flac": "truncated",  # a FLAC cut after its first 2 kB
    "sub/riff_garbage.wav": "garbage",  # a RIFF/WAVE header followed by junk
}


def build_corpus(root: Path) -> dict[str, str]:
    """Write the corpus under ``root``; return {relative path: expected kind} (good / bad / silent)."""
    expected: dict[str, str] = {}
    for clip in clips():
        shutil.copy(clip, root / clip.name)
        expected[clip.name] = "good"
    source = clips()[2]
    audio, rate = sf.read(source, dtype="float64")
    for rel, (sr, channels, subtype) in GOOD_CONVERTED.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        y = soxr.resample(audio, rate, sr)
        if channels == 2:
            y = np.stack([y, 0.5 * y], axis=1)
        sf.write(p, y, sr, subtype=subtype)
        expected[rel] = "good"
    for rel, kind in BAD.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if kind == "text":
            p.write_text("These are meeting notes, not audio.\n" * 20)
        elif kind == "truncated":
            p.write_bytes(source.read_bytes()[:2048])
        elif kind == "garbage":
            p.write_bytes(b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(range(256)) * 8)
        else:
            p.write_bytes(b"")
        expected[rel] = "bad"
    silent = root / "sub" / "room_tone.flac"
    rng = np.random.default_rng(1)
    sf.write(silent, (rng.standard_normal(3 * 16000) * 3).astype(np.int16), 16000)  # -80 dBFS noise, 3 s
    expected["sub/room_tone.flac"] = "silent"
    (root / "README.txt").write_text("not audio: a folder walk skips it\n")
    (root / "._03-01-01-01-01-01-01.wav").write_bytes(b"\x00\x05\x16\x07")  # macOS companion: skipped
    return expected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("corpus")
    return root, build_corpus(root)


@pytest.fixture(scope="module")
def folder_run(corpus: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory):
    root, expected = corpus
    work = tmp_path_factory.mktemp("run")
    proc = score_cli(str(root), "--out", "files.csv", "--windows", "windows.csv", "--jobs", "2", cwd=work)
    return proc, read_rows(work / "files.csv"), read_rows(work / "windows.csv"), root, expected


def check_probabilities(row: dict[str, str], labels: tuple[str, ...]) -> dict[str, float]:
    probs = {lab: float(row[f"p_{lab}"]) for lab in labels}
    assert all(0.0 <= p <= 1.0 for p in probs.values()), row
    assert math.isclose(sum(probs.values()), 1.0, abs_tol=2e-3), row
    assert row["emotion"] in labels, row
    assert math.isclose(float(row["confidence"]), probs[row["emotion"]], abs_tol=1e-4), row
    assert probs[row["emotion"]] >= max(probs.values()) - 1e-4, row  # the dominant label is the most probable
    return probs


def test_folder_gives_one_row_per_file_with_errors_where_due(folder_run, labels) -> None:
    proc, rows, _, root, expected = folder_run
    no_traceback(proc.stderr)
    assert proc.returncode == 1, proc.stderr  # some files failed, the run went on
    by_path = {Path(r["path"]).relative_to(root).as_posix(): r for r in rows}
    assert len(rows) == len(by_path), "a file was scored twice"
    assert set(by_path) == set(expected), "README.txt and the hidden ._ file are skipped, every audio name is scored"
    columns = ["path", "duration_s", "speech_s", "windows", "speakers", "emotion", "confidence"]
    assert list(rows[0]) == columns + [f"p_{lab}" for lab in labels] + ["arousal", "valence", "text", "error"]
    reference = sf.info(str(clips()[2])).duration
    for rel, kind in expected.items():
        row = by_path[rel]
        if kind == "bad":
            assert row["error"] and "\n" not in row["error"], row
            assert rel.split("/")[-1] in row["error"], "the message names the file"
            assert row["emotion"] == "" and row["duration_s"] == "" and row["p_neutral"] == "", row
        elif kind == "silent":
            assert row["emotion"] == "" and row["windows"] == "0" and row["speakers"] == "0", row
            assert "no speech" in row["error"], row
            assert math.isclose(float(row["duration_s"]), 3.0, abs_tol=1e-3)
        else:
            assert row["error"] == "", row
            duration, speech, n = float(row["duration_s"]), float(row["speech_s"]), int(row["windows"])
            assert 2.5 < duration < 6 and 0.6 <= speech <= duration and n >= 1, row
            assert row["speakers"] == "1", row  # one actor's sentence: one speaker
            check_probabilities(row, labels)
            if rel in GOOD_CONVERTED:  # any rate, channel count and format: the original duration
                assert math.isclose(duration, reference, abs_tol=2e-3), row
    assert f"{len(BAD)} failed" in proc.stderr and "1 without speech" in proc.stderr


def test_windows_output_matches_file_rows(folder_run, labels) -> None:
    _, rows, windows, root, expected = folder_run
    assert list(windows[0]) == ["path", "start_s", "end_s", "speaker", "emotion", "confidence"] + [
        f"p_{lab}" for lab in labels
    ] + ["arousal", "valence", "text"]
    for row in rows:
        mine = [w for w in windows if w["path"] == row["path"]]
        assert len(mine) == int(row["windows"] or 0), row["path"]
        for w in mine:
            check_probabilities(w, labels)
            assert w["speaker"] == "S1", w
            assert 0.0 <= float(w["start_s"]) < float(w["end_s"]) <= float(row["duration_s"]) + 1e-3
        if mine:  # the file's probabilities are the mean over its windows
            for lab in labels:
                mean = sum(float(w[f"p_{lab}"]) for w in mine) / len(mine)
                assert math.isclose(mean, float(row[f"p_{lab}"]), abs_tol=2e-4), (row["path"], lab)


def test_jsonl_output(corpus, tmp_path: Path, labels) -> None:
    root, _ = corpus
    args = [str(root / "03-*.flac"), str(root / "empty.wav"), "--out", "files.jsonl", "--windows", "win.jsonl"]
    proc = score_cli(*args, "--jobs", "1", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    rows = [json.loads(line) for line in (tmp_path / "files.jsonl").read_text().splitlines()]
    assert len(rows) == 9
    good = [r for r in rows if not r["error"]]
    assert len(good) == 8
    for r in good:
        assert isinstance(r["duration_s"], float) and isinstance(r["windows"], int)
        probs = [r[f"p_{lab}"] for lab in labels]
        assert all(isinstance(p, float) for p in probs) and math.isclose(sum(probs), 1.0, abs_tol=2e-3)
        assert r["emotion"] in labels
    bad = next(r for r in rows if r["error"])
    assert bad["path"].endswith("empty.wav") and bad["duration_s"] is None and bad["emotion"] == ""
    windows = [json.loads(line) for line in (tmp_path / "win.jsonl").read_text().splitlines()]
    assert len(windows) == sum(r["windows"] for r in good)


def test_resume_keeps_old_rows_and_scores_only_new_files(tmp_path: Path, labels) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    first, later = clips()[:3], clips()[3:6]
    for c in first:
        shutil.copy(c, folder / c.name)
    proc = score_cli(str(folder), "-o", "out.csv", "-w", "win.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    before = (tmp_path / "out.csv").read_text()
    windows_before = (tmp_path / "win.csv").read_text()
    assert len(read_rows(tmp_path / "out.csv")) == 3

    for c in later:
        shutil.copy(c, folder / c.name)
    (folder / "broken.wav").write_text("not audio")
    # A hard kill in the middle of a write leaves a partial last line: resume cuts it off.
    with open(tmp_path / "out.csv", "a") as f:
        f.write(f"{folder / later[0].name},3.7")
    proc = score_cli(str(folder), "-o", "out.csv", "-w", "win.csv", "--resume", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # broken.wav
    assert "4 files scored" in proc.stderr and "3 already done" in proc.stderr, proc.stderr
    after = (tmp_path / "out.csv").read_text()
    assert after.startswith(before), "the rows written before are kept as they were"
    rows = read_rows(tmp_path / "out.csv")
    names = [Path(r["path"]).name for r in rows]
    assert sorted(names) == sorted([c.name for c in first + later] + ["broken.wav"])  # no duplicates
    assert (tmp_path / "win.csv").read_text().startswith(windows_before)
    wrows = read_rows(tmp_path / "win.csv")
    assert len(wrows) == sum(int(r["windows"] or 0) for r in rows)

    # Nothing new: nothing is scored, the output is unchanged.
    proc = score_cli(str(folder), "-o", "out.csv", "--resume", cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "out.csv").read_text() == after, proc.stderr

    # The broken file is repaired: --retry-failed drops its error row and scores it again.
    shutil.copy(clips()[7], folder / "broken.wav")
    proc = score_cli(str(folder), "-o", "out.csv", "-w", "win.csv", "--resume", "--retry-failed", cwd=tmp_path)
    assert proc.returncode == 0 and "1 file scored" in proc.stderr, proc.stderr
    rows = read_rows(tmp_path / "out.csv")
    assert len(rows) == 7 and all(r["error"] == "" for r in rows)
    assert len(read_rows(tmp_path / "win.csv")) == sum(int(r["windows"]) for r in rows)


def test_odd_file_names_round_trip_through_resume(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    shutil.copy(clips()[0], folder / 'ünïcode, "quoted".flac')
    try:  # a name that is not valid UTF-8 (Linux file systems allow any bytes)
        shutil.copy(clips()[1], os.fsdecode(bytes(folder) + b"/latin1-\xe9.flac"))
    except (OSError, UnicodeError):
        pass
    n = len(os.listdir(folder))
    proc = score_cli(str(folder), "-o", "out.csv", cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    no_traceback(proc.stderr)
    assert len(read_rows(tmp_path / "out.csv")) == n
    assert any(
        r["path"].endswith('ünïcode, "quoted".flac') and r["error"] == "" for r in read_rows(tmp_path / "out.csv")
    )
    before = (tmp_path / "out.csv").read_bytes()
    proc = score_cli(str(folder), "-o", "out.csv", "--resume", cwd=tmp_path)
    assert proc.returncode == 0 and f"{n} already done" in proc.stderr, proc.stderr
    assert (tmp_path / "out.csv").read_bytes() == before


def test_exit_status_and_one_line_errors(tmp_path: Path) -> None:
    good = str(clips()[0])
    proc = score_cli(good, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("path,duration_s") and len(proc.stdout.splitlines()) == 2  # stdout by default

    proc = score_cli(good, str(tmp_path / "missing.wav"), str(tmp_path / "nothing*.flac"), cwd=tmp_path)
    assert proc.returncode == 1
    rows = list(csv.DictReader(proc.stdout.splitlines()))
    assert [bool(r["error"]) for r in rows].count(True) == 2
    assert {r["error"].split(": ", 1)[1] for r in rows if r["error"]} == {
        "no such file or folder",
        "no audio file matches this pattern",
    }

    for args in (["--jobs", "0", good], ["--resume", good], [good, "--format", "xml"], []):
        proc = score_cli(*args, cwd=tmp_path)
        assert proc.returncode == 2, args
        no_traceback(proc.stderr)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), good, "--model", str(tmp_path / "none.tflite")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("voice-monitor: error: model ")
    assert len(proc.stderr.splitlines()) == 1
    proc = score_cli(good, "--out", str(tmp_path / "no_such_dir" / "out.csv"), cwd=tmp_path)
    assert proc.returncode == 2 and "cannot write" in proc.stderr
    no_traceback(proc.stderr)
    if os.path.exists("/dev/full"):  # a full disk
        proc = score_cli(good, "--out", "/dev/full", cwd=tmp_path)
        assert proc.returncode == 2 and "No space left" in proc.stderr, proc.stderr
        no_traceback(proc.stderr)


def test_model_failing_in_the_workers_leaves_existing_output_alone(tmp_path: Path) -> None:
    """Metadata fine (the parent reads only that), .tflite altered: every worker refuses it at start-up."""
    broken = tmp_path / "broken.tflite"
    data = bytearray(MODEL.read_bytes())
    data[len(data) // 2] ^= 0xFF
    broken.write_bytes(bytes(data))
    shutil.copy(MODEL.with_suffix(".json"), broken.with_suffix(".json"))
    earlier = "path,emotion,confidence\nearlier.wav,calm,0.9\n"  # an earlier run's rows (score may replace them)
    (tmp_path / "out.csv").write_text(earlier)
    cmd = [sys.executable, str(SCRIPT), str(clips()[0]), "-o", "out.csv", "--model", str(broken)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("voice-monitor: error: ") and "checksum" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert (tmp_path / "out.csv").read_text() == earlier


def test_unreadable_file_gets_an_error_row(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root reading (the other bad kinds are tested)")
    locked = tmp_path / "locked.flac"
    shutil.copy(clips()[0], locked)
    locked.chmod(0)
    proc = score_cli(str(locked), str(clips()[1]), cwd=tmp_path)
    assert proc.returncode == 1
    rows = {Path(r["path"]).name: r for r in csv.DictReader(proc.stdout.splitlines())}
    assert rows["locked.flac"]["error"] and rows[clips()[1].name]["error"] == ""


def test_unreadable_file_as_root_dropping_privileges(tmp_path: Path) -> None:
    """Root reads anything, so a child process loads the pipeline, drops to ``nobody`` and scores."""
    if os.geteuid() != 0:
        pytest.skip("not root: test_unreadable_file_gets_an_error_row covers it")
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="batch-perm-"))
    try:
        folder.chmod(0o755)
        locked, open_ = folder / "locked.flac", folder / "open.flac"
        shutil.copy(clips()[0], locked)
        shutil.copy(clips()[0], open_)
        locked.chmod(0)
        open_.chmod(0o644)
        code = (
            "import os, sys, json\n"
            "from monitor.batch.score import FileScorer, ScoreOptions\n"
            f"s = FileScorer(ScoreOptions(model_path={str(MODEL)!r}))\n"
            "assert not s.score(sys.argv[2]).failed  # warm: lazy imports done while still root\n"
            "os.setgid(65534); os.setuid(65534)\n"
            "rs = [s.score(p) for p in sys.argv[1:]]\n"
            "print(json.dumps([[r.failed, r.error, len(r.events)] for r in rs]))\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, str(locked), str(open_)],
            capture_output=True, text=True, timeout=60, env=_env_with_repo(), cwd=folder,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        (failed, error, _), (ok_failed, ok_error, windows) = json.loads(proc.stdout.splitlines()[-1])
        assert failed and "locked.flac" in error and "\n" not in error
        assert not ok_failed and ok_error == "" and windows >= 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_worker_killed_mid_run_is_replaced_and_every_file_scored(tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(25):
        for c in clips():
            shutil.copy(c, folder / f"{i:02d}_{c.name}")
    cmd = [sys.executable, str(SCRIPT), str(folder), "-o", "out.csv", "-j", "2", *MODEL_ARGS, "--progress", "none"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        out = tmp_path / "out.csv"
        if out.exists() and len(out.read_text().splitlines()) > 10:
            parent = psutil.Process(proc.pid)
            workers = [
                p
                for p in parent.children(recursive=True)
                if p.ppid() != proc.pid or "spawn_main" in " ".join(p.cmdline())
            ]
            if workers:
                killed = workers[0].pid
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    _, err = proc.communicate(timeout=120)
    if killed is None:
        pytest.skip("the run finished before a worker could be killed")
    no_traceback(err)
    assert proc.returncode == 0, err
    rows = read_rows(tmp_path / "out.csv")
    assert len(rows) == 200 and len({r["path"] for r in rows}) == 200
    assert all(r["error"] == "" for r in rows), [r["error"] for r in rows if r["error"]]


def test_interrupt_leaves_only_whole_rows_and_resume_finishes(tmp_path: Path, labels) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(30):
        for c in clips():
            shutil.copy(c, folder / f"{i:02d}_{c.name}")
    total = 30 * 8
    cmd = [sys.executable, str(SCRIPT), str(folder), "-o", "out.csv", "-w", "win.csv", "-j", "2", *MODEL_ARGS]
    proc = subprocess.Popen(
        cmd + ["--progress", "none"], cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # interrupt once scoring is under way
        if (tmp_path / "out.csv").exists() and len((tmp_path / "out.csv").read_text().splitlines()) > 10:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole process group
    _, err = proc.communicate(timeout=60)
    no_traceback(err)
    rows = read_rows(tmp_path / "out.csv")
    if proc.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert proc.returncode == 130 and "interrupted" in err and "--resume" in err, err
    assert 0 < len(rows) < total
    text = (tmp_path / "out.csv").read_text()
    assert text.endswith("\n")
    for r in rows:  # every row is whole
        assert None not in r.values() and r["error"] == ""
        check_probabilities(r, labels)

    proc2 = subprocess.run(cmd + ["--resume", "--progress", "none"], cwd=tmp_path, capture_output=True, text=True)
    assert proc2.returncode == 0, proc2.stderr
    rows = read_rows(tmp_path / "out.csv")
    assert len(rows) == total and len({r["path"] for r in rows}) == total
    wrows = read_rows(tmp_path / "win.csv")
    assert len(wrows) == sum(int(r["windows"]) for r in rows), "window rows of unfinished files were dropped"


def test_a_killed_pool_is_gone_before_the_interpreter_exits() -> None:
    """An interrupted run terminates its workers and waits for the pool's manager thread: at exit Python 3.11
    wakes that thread without its lock, and a thread still closing its pipe then printed an OSError traceback
    (seen once in CI after an interrupt)."""
    from monitor.batch.cli import _Pool

    pool = _Pool(2, ScoreOptions(transcriber="none"))
    ex = pool.get()
    manager = ex._executor_manager_thread
    workers = list(ex._processes.values())
    assert manager is not None and manager.is_alive() and workers
    pool.discard(kill=True)
    assert not manager.is_alive(), "the manager thread must have ended when discard returns"
    assert all(not w.is_alive() for w in workers)
    assert pool.executor is None


# --- the same implementation as the live monitor ----------------------------------------------------------
def long_recording(path: Path) -> None:
    """Four clips with quiet gaps, two of them back to back (a long utterance with several windows)."""
    rng = np.random.default_rng(7)
    parts = []
    for i, clip in enumerate(clips()[:4]):
        audio, _ = sf.read(clip, dtype="int16")
        parts.append(audio)
        if i != 1:
            parts.append((rng.standard_normal(24000) * 2).astype(np.int16))
    sf.write(path, np.concatenate(parts), 16000, subtype="PCM_16")


def test_batch_windows_equal_streaming_segmenter(tmp_path: Path, classifier: EmotionClassifier, labels) -> None:
    path = tmp_path / "long.wav"
    long_recording(path)
    options = load_config().segmenter_options(classifier.features.window_s)

    # The live monitor's way: the segmenter fed 20 ms blocks, every window through the speaker turns and the
    # WindowAnalyzer (which normalises each window to its speaker, as heard so far, and with speaker turns reads
    # the window's embedding: the voice head). The turns as a file keeps them (``whole_file``: online labels, the
    # file clustered again at its end), since live labels come from the live second pass instead and may key a
    # window to another speaker (here the last one, once the VAD heard the quieter voice's onsets).
    from monitor.speakers.encoder import SpeakerEncoder
    from monitor.speakers.turns import SpeakerTurns

    audio, _ = read_audio(path)
    seg = Segmenter(options)
    analyzer = WindowAnalyzer(classifier, embeddings=True)
    turns = SpeakerTurns(SpeakerEncoder(), load_config().speaker_options(), whole_file=True)
    windows = []
    for i in range(0, len(audio), 320):
        windows += seg.feed(audio[i : i + 320])
    windows += seg.flush()
    live = []
    for w in windows:
        speaker = turns.label(w.audio)
        live.append(analyzer.analyze(w, speaker=speaker, states=turns.states))
    assert len(live) >= 5 and len({e.utterance for e in live}) >= 3

    result = FileScorer(ScoreOptions(model_path=str(MODEL), segmenter=options), classifier).score(str(path))
    assert not result.failed and result.error == ""
    assert [(e.start_s, e.end_s) for e in result.events] == [(e.start_s, e.end_s) for e in live]
    for mine, theirs in zip(result.events, live, strict=True):
        assert mine.probabilities == theirs.probabilities and mine.emotion == theirs.emotion
    assert result.speech_s == sum(u.end_sample - u.start_sample for u in seg.utterances) / 16000

    # ... and the CLI (worker processes, config.toml) writes the same windows.
    proc = score_cli(str(path), "-o", "f.csv", "-w", "w.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(tmp_path / "w.csv")
    assert len(rows) == len(live)
    for row, e in zip(rows, live, strict=True):
        assert math.isclose(float(row["start_s"]), e.start_s, abs_tol=1e-3) and row["emotion"] == e.emotion
        for lab in labels:
            assert math.isclose(float(row[f"p_{lab}"]), e.probabilities[lab], abs_tol=1e-4)


def test_discover_folders_globs_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for rel in ("a/1.wav", "a/b/2.FLAC", "a/b/notes.txt", "a/.3.wav", ".hidden/4.wav", "x.ogg"):
        (tmp_path / rel).write_bytes(b"")
    found = discover([str(tmp_path / "a"), str(tmp_path / "a" / "1.wav"), str(tmp_path / "*.ogg")])
    assert [Path(f).relative_to(tmp_path).as_posix() for f in found.files] == ["a/1.wav", "a/b/2.FLAC", "x.ogg"]
    found = discover([str(tmp_path / "a" / "b" / "notes.txt"), str(tmp_path / "**" / "*.wav"), "nope.wav"])
    names = [Path(f).name for f in found.files]
    assert names == ["notes.txt", "1.wav"]  # named explicitly: scored whatever its name; ** skips hidden
    assert [m.path for m in found.missing] == ["nope.wav"]
    # Not regular files: a FIFO would block the reader forever; a dangling link names nothing.
    os.mkfifo(tmp_path / "a" / "pipe.wav")
    (tmp_path / "a" / "dangling.wav").symlink_to(tmp_path / "gone.wav")
    found = discover([str(tmp_path / "a"), str(tmp_path / "a" / "pipe.wav"), str(tmp_path / "a" / "dangling.wav")])
    assert [Path(f).name for f in found.files] == ["1.wav", "2.FLAC"]
    assert {Path(m.path).name: m.error for m in found.missing} == {
        "pipe.wav": "not a regular file",
        "dangling.wav": "a broken symbolic link",
    }  # once each: found by the walk and named again


# --- transcription (monitor.transcription) and the voice-monitor entry point --------------------------------
@pytest.mark.slow
def test_pocketsphinx_text_in_file_and_window_rows(tmp_path: Path) -> None:
    pytest.importorskip("monitor.transcription.factory", reason="monitor.transcription has not landed")
    pytest.importorskip("pocketsphinx")
    clip = clips()[0]  # "Kids are talking by the door"
    proc = score_cli(str(clip), "-o", "f.csv", "-w", "w.csv", "--transcriber", "pocketsphinx", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    row = read_rows(tmp_path / "f.csv")[0]
    assert "door" in row["text"].split(), row["text"]
    windows = read_rows(tmp_path / "w.csv")
    words = " ".join(w["text"] for w in windows).split()
    assert words and set(words) <= set(row["text"].split())


def test_unavailable_transcriber_is_a_one_line_usage_error(tmp_path: Path) -> None:
    args = [str(clips()[0]), "--transcriber", "vosk", "--vosk-model", str(tmp_path / "no-model")]
    proc = score_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("voice-monitor: error: ") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stdout == ""


def test_voice_monitor_score_entry_point(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "monitor.cli", "score", str(clips()[1]), "-o", "x.jsonl", *MODEL_ARGS, "-q"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60, env=_env_with_repo())
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    row = json.loads((tmp_path / "x.jsonl").read_text())
    assert row["error"] == "" and row["windows"] >= 1


def _env_with_repo() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_batch_scoring_imports_neither_tensorflow_nor_librosa(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from monitor.batch.cli import main_score\n"
        "from monitor.batch.score import FileScorer, ScoreOptions\n"
        f"FileScorer(ScoreOptions(model_path={str(MODEL)!r})).score(sys.argv[1])\n"
        "status = main_score([sys.argv[1], '-o', 'out.csv', '-q', '--model', " + repr(str(MODEL)) + "])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'librosa', 'numba'})\n"
        "print(status, heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(clips()[0])],
        capture_output=True, text=True, timeout=60, env=_env_with_repo(), cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout.strip() == "0 []", proc.stdout + proc.stderr
