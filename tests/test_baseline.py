"""The run's baseline (``score --baseline run``, the default): the lean a batch's files share, measured by a survey
of the run and taken out in part. Real model, real RAVDESS clips from tests/data, the real CLI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from monitor.inference.baseline import Baseline, BaselineOptions, survey_sample
from tests.test_batch import MODEL_ARGS, SCRIPT, clips, no_traceback, read_rows

REPO = Path(__file__).resolve().parents[1]
SPEAKERS = REPO / "tests" / "data" / "speakers"


def score(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCRIPT), *args, *MODEL_ARGS, "--progress", "none", "-j", "2"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=180)


def run_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A folder of every test clip (the RAVDESS ones and the speakers'), and a config of the CNN alone."""
    folder = tmp_path / "clips"
    shutil.copytree(SPEAKERS, folder)
    for c in clips():
        shutil.copy(c, folder / c.name)
    cnn = tmp_path / "cnn.toml"
    cnn.write_text("[model]\nprosody = false\n")
    return folder, cnn


def probs_of(rows: list[dict[str, str]], labels: list[str]) -> np.ndarray:
    return np.array([[float(r[f"p_{lab}"]) for lab in labels] for r in rows])


def test_baseline_arithmetic() -> None:
    opts = BaselineOptions()
    sad = np.log(np.array([0.05, 0.05, 0.05, 0.6, 0.05, 0.1, 0.05, 0.05]))
    assert Baseline.from_file_means([sad], opts) is None, "one file: nothing to compare it with"
    assert Baseline.from_file_means([sad, None, None], opts) is None, "files without speech do not count"
    base = Baseline.from_file_means([sad, sad + 0.1, sad - 0.1], opts)
    assert base is not None and base.files == 3
    expected = opts.strength * 3 / (3 + opts.prior_files) * (sad - sad.mean())
    assert np.allclose(base.offset, expected, atol=1e-5)
    # order does not matter
    assert Baseline.from_file_means([sad - 0.1, sad, sad + 0.1], opts) == base
    # the lean is taken out: a run that leans to "sad" leans less after it, and rows still sum to 1
    p = np.exp(sad) / np.exp(sad).sum()
    q = base.apply(p)
    assert abs(float(q.sum()) - 1.0) < 1e-5 and q[3] < p[3]
    assert np.argmax(q) == 3, "with a few files the lean is only partly taken out"
    many = Baseline.from_file_means([sad] * 200, opts)
    assert many is not None and many.apply(p)[3] < q[3]
    # more files, more of the lean taken out, never more than `strength` of it
    assert float(np.abs(np.array(many.offset)).sum()) > float(np.abs(np.array(base.offset)).sum())
    assert np.allclose(many.offset, opts.strength * 200 / 208 * (sad - sad.mean()), atol=1e-5)


def test_survey_sample_is_fixed_whatever_the_order() -> None:
    paths = [f"/calls/{i:05d}.wav" for i in range(3000)]
    a = survey_sample(paths, 1000)
    b = survey_sample(list(reversed(paths)), 1000)
    assert a == b and len(a) == 1000 and len(set(a)) == 1000 and set(a) <= set(paths)
    assert survey_sample(paths[:10], 1000) == paths[:10]


def test_score_takes_out_the_runs_baseline(tmp_path: Path) -> None:
    """Default run vs --baseline off on the same folder: every window of the default run is the off run's window
    with the offset of the files' own mean log-probabilities taken out (speaker turns off in both, as the survey
    reads the files; the CNN alone, ``[model] prosody = false``: tests/test_prosody.py covers the fusion)."""
    folder, cnn = run_folder(tmp_path)
    off = score(str(folder), "-o", "off.csv", "-w", "off_w.csv", "--baseline", "off", "--speakers", "off",
                "--config", str(cnn), cwd=tmp_path)
    assert off.returncode == 0, off.stderr
    assert "baseline" not in off.stderr
    on = score(str(folder), "-o", "on.csv", "-w", "on_w.csv", "--speakers", "off", "--config", str(cnn),
               cwd=tmp_path)
    assert on.returncode == 0, on.stderr
    n_files = len(read_rows(tmp_path / "off.csv"))
    assert n_files >= 20
    assert f"baseline of {n_files} files taken out" in on.stderr, on.stderr

    w_off, w_on = read_rows(tmp_path / "off_w.csv"), read_rows(tmp_path / "on_w.csv")
    labels = [k[2:] for k in w_off[0] if k.startswith("p_")]
    key = lambda r: (r["path"], r["start_s"])  # noqa: E731
    w_off, w_on = sorted(w_off, key=key), sorted(w_on, key=key)
    assert [key(r) for r in w_off] == [key(r) for r in w_on]
    p_off, p_on = probs_of(w_off, labels), probs_of(w_on, labels)
    # the survey's baseline, rebuilt from the off run's windows (each file's mean log-probability)
    paths = [r["path"] for r in w_off]
    logp = np.log(np.maximum(p_off, 1e-6))
    means = [logp[[i for i, p in enumerate(paths) if p == f]].mean(axis=0) for f in sorted(set(paths))]
    base = Baseline.from_file_means(means, BaselineOptions())
    assert base is not None
    assert np.abs(base.apply(p_off) - p_on).max() < 0.01  # the CSV rounds probabilities
    assert np.abs(p_on - p_off).max() > 0.03, "the baseline must change something on a real run"
    # the file rows follow their windows: the emotion is the most probable label of the mean
    for r in read_rows(tmp_path / "on.csv"):
        mine = p_on[[i for i, p in enumerate(paths) if p == r["path"]]]
        assert r["emotion"] == labels[int(np.argmax(mine.mean(axis=0)))]


def test_one_file_is_judged_alone(tmp_path: Path) -> None:
    clip = clips()[3]
    on = score(str(clip), "-o", "on.csv", cwd=tmp_path)
    off = score(str(clip), "-o", "off.csv", "--baseline", "off", cwd=tmp_path)
    assert on.returncode == 0 and off.returncode == 0, on.stderr + off.stderr
    assert "baseline" not in on.stderr
    drop = ("elapsed_s",)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in drop} for r in rows]  # noqa: E731
    assert strip(read_rows(tmp_path / "on.csv")) == strip(read_rows(tmp_path / "off.csv"))


def test_resume_takes_out_the_same_baseline(tmp_path: Path) -> None:
    """A run cut short and resumed writes the rows the whole run would have: the survey reads every file of the
    run, the ones already done included."""
    folder = tmp_path / "clips"
    shutil.copytree(SPEAKERS, folder)
    whole = score(str(folder), "-o", "whole.csv", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    lines = (tmp_path / "whole.csv").read_text().splitlines(keepends=True)
    assert len(lines) > 10
    (tmp_path / "part.csv").write_text("".join(lines[:6]))  # header + 5 rows: a run stopped there
    resumed = score(str(folder), "-o", "part.csv", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "5 already done" in resumed.stderr, resumed.stderr
    drop = ("elapsed_s",)
    rows = lambda name: sorted(  # noqa: E731
        ({k: v for k, v in r.items() if k not in drop} for r in read_rows(tmp_path / name)), key=lambda r: r["path"]
    )
    assert rows("part.csv") == rows("whole.csv")


@pytest.mark.parametrize("value", ["maybe", "1"])
def test_bad_baseline_setting_is_one_line(tmp_path: Path, value: str) -> None:
    (tmp_path / "config.toml").write_text(f'[model]\nbaseline = "{value}"\n')
    proc = score(str(clips()[0]), "-o", "x.csv", "--config", str(tmp_path / "config.toml"), cwd=tmp_path)
    assert proc.returncode == 2
    no_traceback(proc.stderr)
    assert "[model] baseline must be run or off" in proc.stderr, proc.stderr
    proc = score(str(clips()[0]), "-o", "x.csv", "--baseline", value, cwd=tmp_path)
    assert proc.returncode == 2 and "--baseline" in proc.stderr
    no_traceback(proc.stderr)


def test_the_report_measures_with_the_monitors_arithmetic() -> None:
    """``training.multi_report.with_run_baseline`` (the report's rows) takes out, run by run, exactly the baseline
    the monitor computes from the same files."""
    from training.multi_report import with_run_baseline

    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(8) * 0.5, size=60).astype(np.float32)
    clip = np.repeat(np.arange(20), 3)  # 20 files of 3 windows
    runs = np.where(clip < 12, "a", "b")  # two runs: files 0-11 and 12-19
    got = with_run_baseline(probs, clip, runs)
    for run, files in (("a", range(12)), ("b", range(12, 20))):
        means = [np.log(np.maximum(probs[clip == f], 1e-6)).mean(axis=0) for f in files]
        base = Baseline.from_file_means(means, BaselineOptions())
        assert base is not None and base.files == len(files)
        m = runs == run
        assert np.allclose(got[m], base.apply(probs[m]), atol=1e-6)
    assert not np.allclose(got, probs, atol=1e-3)


def _workers_of(root: int) -> set[int]:
    """The pool's worker processes under ``root``: the children of its forkserver (or spawned workers)."""
    children: dict[int, list[int]] = {}
    cmdline: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_bytes()
            cmdline[int(d.name)] = (d / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    found: set[int] = set()
    stack = [root]
    while stack:
        pid = stack.pop()
        for c in children.get(pid, []):
            stack.append(c)
            if "forkserver" in cmdline.get(pid, "") or "spawn_main" in cmdline.get(c, ""):
                found.add(c)
    return found


def cut_short_run(tmp_path: Path, copies: int, left: int) -> tuple[Path, list[str]]:
    """A folder of ``copies`` copies of every test clip, scored into out.csv, then cut to leave ``left`` files to
    score (as a run stopped there): the folder and the whole run's lines."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(copies):
        for c in [*clips(), *sorted(SPEAKERS.glob("*.flac"))]:
            shutil.copy(c, folder / f"{i:02d}_{c.name}")
    first = score(str(folder), "-o", "out.csv", "--baseline", "off", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    lines = (tmp_path / "out.csv").read_text().splitlines(keepends=True)
    (tmp_path / "out.csv").write_text("".join(lines[:-left]))
    return folder, lines


def test_resumed_survey_uses_every_job(tmp_path: Path) -> None:
    """A resumed run with one file left still surveys the whole run: with all its --jobs, not one worker (the
    pool was sized by the files left to score)."""
    folder, lines = cut_short_run(tmp_path, copies=3, left=1)
    cmd = [sys.executable, str(SCRIPT), str(folder), "-o", "out.csv", "--resume", *MODEL_ARGS, "-j", "2"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    most = 0
    while proc.poll() is None:
        most = max(most, len(_workers_of(proc.pid)))
        time.sleep(0.02)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "1 file scored" in err and f"baseline of {len(lines) - 1} files taken out" in err, err
    assert most == 2, f"{most} worker(s) surveyed {len(lines) - 1} files with -j 2"


def test_progress_eta_is_not_stretched_by_the_survey(tmp_path: Path) -> None:
    """The ETA of the plain progress lines is the scoring's: the survey's time before the first row is not taken
    for the time the first rows took (a resumed run with 20 files left, after a survey of 620 on one worker,
    announced minutes for a second's work)."""
    folder, _ = cut_short_run(tmp_path, copies=20, left=20)
    cmd = [sys.executable, str(SCRIPT), str(folder), "-o", "out.csv", "--resume", *MODEL_ARGS, "-j", "1",
           "--progress", "plain"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert "20 files scored" in proc.stderr, proc.stderr
    for line in proc.stderr.splitlines():
        if ", ETA " in line:
            h, m, s = (int(v) for v in line.rsplit("ETA ", 1)[1].split(":"))
            assert h * 3600 + m * 60 + s <= took, f"{line!r}: the whole run took {took:.1f} s"


def test_ctrl_c_during_the_survey_writes_nothing_and_does_not_advise_resume(tmp_path: Path) -> None:
    """Ctrl-C while the run is surveyed, over the --out of an earlier run: 130, no traceback, no worker left, the
    earlier file as it was, and no advice to --resume (which would keep every row of the earlier run, made with
    other settings, as if this run had written it)."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(3):
        for c in [*clips(), *sorted(SPEAKERS.glob("*.flac"))]:
            shutil.copy(c, folder / f"{i}_{c.name}")
    earlier = score(str(folder), "-o", "out.csv", "--baseline", "off", cwd=tmp_path)
    assert earlier.returncode == 0, earlier.stderr
    before = (tmp_path / "out.csv").read_bytes()
    cmd = [sys.executable, str(SCRIPT), str(folder), "-o", "out.csv", *MODEL_ARGS, "-j", "1", "--progress", "plain"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert first.startswith("surveying"), first
    time.sleep(0.05)  # the survey's workers are starting: their start must not swallow the Ctrl-C
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole process group
    err = first + proc.stderr.read()
    proc.wait(timeout=60)
    no_traceback(err)
    assert proc.returncode == 130, err
    assert (tmp_path / "out.csv").read_bytes() == before
    assert "interrupted before any row was written" in err and "rerun with --resume" not in err, err
    deadline = time.monotonic() + 10
    while (left := _alive_in_group(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes of the run left: {left}"


def _alive_in_group(pgid: int) -> list[str]:
    """Processes of process group ``pgid`` still running (exited ones waiting to be reaped do not count)."""
    left = []
    for d in Path("/proc").iterdir():
        try:
            fields = (d / "stat").read_bytes().rsplit(b")", 1)[1].split() if d.name.isdigit() else []
        except OSError:
            continue
        if fields and int(fields[2]) == pgid and fields[0] != b"Z":
            left.append(d.name)
    return left


def test_survey_sample_is_the_same_files_however_the_folder_was_named(tmp_path: Path, monkeypatch) -> None:
    """``score ./calls`` and then ``score calls --resume`` (or the folder's absolute path) are the same run to
    --resume, which matches done rows by absolute path: the survey of a run of more than 1000 files must pick
    the same files too, or the resumed part takes out another baseline."""
    monkeypatch.chdir(tmp_path)
    names = [f"calls/{i:05d}.wav" for i in range(3000)]
    spellings = [names, [f"./{n}" for n in names], [str(tmp_path / n) for n in names]]
    picked = [sorted(os.path.abspath(p) for p in survey_sample(s, 1000)) for s in spellings]
    assert picked[0] == picked[1] == picked[2]


def test_survey_files_judged_again_equal_scoring_them_again(tmp_path: Path) -> None:
    """A file the survey read whole is not read again: its windows' CNN outputs and functionals, judged with the
    run's baseline (``rejudge``), give exactly what scoring the file with that baseline gives. Real model, real
    clips, the prosody head on (the default); a long file the survey cut at its window limit keeps no measures."""
    from dataclasses import replace

    from monitor.batch.score import FileScorer, ScoreOptions, rejudge, reusable
    from monitor.inference.classifier import EmotionClassifier
    from monitor.speakers.cluster import SpeakerOptions

    files = [str(c) for c in clips()] + [str(p) for p in sorted(SPEAKERS.glob("*.flac"))[:6]]
    long = tmp_path / "long.wav"  # 8 clips back to back: more windows than the survey's limit below
    import soundfile as sf

    audio = np.concatenate([sf.read(str(c), dtype="int16")[0] for c in clips()])
    sf.write(long, audio, 16000)
    model = os.environ.get("VOICE_MONITOR_TEST_MODEL")
    scoring = ScoreOptions(model_path=model, speakers=SpeakerOptions(enabled=False))
    survey = replace(scoring, max_windows=5, keep_measures=True)
    assert reusable(survey, scoring)
    surveyed = FileScorer(survey)
    read = [surveyed.score(f) for f in [*files, str(long)]]
    assert surveyed.classifier.prosody is not None, "the shipped model has a prosody head"
    assert read[-1].measures is None and len(read[-1].events) == 5, "cut at the limit: not read whole"
    base = Baseline.from_file_means([np.asarray(r.log_mean) for r in read if r.log_mean is not None],
                                    BaselineOptions())
    assert base is not None
    with_base = replace(scoring, baseline=base)
    again = FileScorer(with_base)
    classifier = EmotionClassifier(model)
    changed = 0
    for r in read[:-1]:
        assert r.measures is not None and len(r.measures) == len(r.events)
        judged, scored = rejudge(r, classifier, with_base), again.score(r.path)
        assert [e.probabilities for e in judged.events] == [e.probabilities for e in scored.events]
        assert [(e.emotion, e.confidence, e.arousal, e.valence, e.start_s) for e in judged.events] == [
            (e.emotion, e.confidence, e.arousal, e.valence, e.start_s) for e in scored.events]
        assert (judged.emotion, judged.probabilities, judged.arousal) == (
            scored.emotion, scored.probabilities, scored.arousal)
        changed += sum(a.probabilities != b.probabilities for a, b in zip(judged.events, r.events, strict=True))
    assert changed > 0, "the baseline must change the survey's judgement of some window"
    # words or speaker turns change what scoring reads: those runs score every file again
    assert not reusable(survey, replace(scoring, speakers=SpeakerOptions()))
    assert not reusable(survey, replace(scoring, transcriber="auto"))
    assert not reusable(survey, replace(scoring, voice_group="folder"))
    assert not reusable(survey, replace(scoring, prosody=False))


def test_a_run_the_survey_read_whole_is_not_scored_twice(tmp_path: Path) -> None:
    """Every file of a short-clip run is read once, with speaker turns on (the survey then reads with them) or
    off: no scoring worker is started after the survey's (``-j 1``: one worker in all), and the rows are those of
    the files scored with the baseline. Files of a voice group are read again."""
    folder, _ = run_folder(tmp_path)
    def run(name: str, *extra: str) -> tuple[str, set[int]]:
        """-> (stderr, every worker process seen while it ran)"""
        cmd = [sys.executable, str(SCRIPT), str(folder), "-o", name, *extra, *MODEL_ARGS, "--progress", "none",
               "-j", "1"]
        proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
        seen: set[int] = set()
        while proc.poll() is None:
            seen |= _workers_of(proc.pid)
            time.sleep(0.01)
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        return err, seen

    err, workers = run("once.csv", "--speakers", "off")
    rows = read_rows(tmp_path / "once.csv")
    assert len(rows) >= 20 and f"baseline of {len(rows)} files taken out" in err, err
    assert len(workers) == 1, f"{len(workers)} workers for a run the survey read whole"
    assert [r["path"] for r in rows] == sorted(r["path"] for r in rows), "rows in the run's order"
    err, workers = run("turns.csv")  # speaker turns on (the default): the survey reads with them
    rows = read_rows(tmp_path / "turns.csv")
    assert len(workers) == 1, f"{len(workers)} workers for a run the survey read whole"
    assert rows and all(r["speakers"] == "1" for r in rows if r["emotion"]), "each clip one speaker"
    err, workers = run("grouped.csv", "--voice-group", "folder")  # one normaliser across files: read again
    assert len(workers) == 2, f"{len(workers)} workers: the survey's, then the scoring's"


def test_progress_does_not_take_files_judged_again_for_files_scored_in_no_time() -> None:
    """The files the survey read whole are judged again at once (``advance(timed=False)``), before the pool scores
    the rest: the ETA and the rates come from the files scored since, not from rows that took none of the run's
    time (93 short clips judged again made the ETA of the long files left 0:00:00 for seconds of work; found by
    review)."""
    import io

    from monitor.batch.progress import ProgressReporter

    rep = ProgressReporter("plain", 20, io.StringIO())
    for _ in range(10):
        rep.advance(3.0, False, timed=False)
    assert rep.eta_s() is None and "0x real time, 0.0 files/s" in rep.rate_text()
    time.sleep(0.05)
    rep.advance(600.0, False)  # one long file scored
    before = time.perf_counter() - rep.start
    eta = rep.eta_s()
    assert eta is not None and eta >= before * 9, "9 files left at the pace of the one file scored"
    rate = float(rep.rate_text().split("x")[0])  # the audio of the one file scored, over the time it took
    assert rate <= 600.0 / before + 1 and rate < 630.0 / before
    assert rep.done == 11 and rep.audio_s == 630.0
