"""Fault suite for ``voice-monitor score`` (issue 18): full disks, kill -9, odd files, odd names, bad models.

Real parts: the CLI as a subprocess on copies of tests/data's RAVDESS clips and the shipped model; a real
full disk (a small tmpfs, mounted when this runs as root and may mount; else the test says why it skips) and a
real size limit (RLIMIT_FSIZE: the kernel cuts a write short, then refuses with EFBIG) that needs no
privilege; a real SIGKILL, with psutil checking that no process of the run survives it.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from monitor.batch.outputs import file_columns
from monitor.labels import LABELS

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
MODEL = Path(os.environ.get("VOICE_MONITOR_TEST_MODEL", REPO / "models" / "emotion.tflite"))
PREFIX = "voice-monitor: error: "


def clips() -> list[Path]:
    files = sorted(DATA.glob("*.flac"))
    assert len(files) == 8, "tests/data must hold the eight RAVDESS clips"
    return files


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("VOICE_MONITOR_DEBUG", None)
    return e


def score_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "monitor.cli", "score", *args, "--model", str(MODEL)]


def score(*args: str, cwd: Path, timeout: float = 120, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        score_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env(), **kw
    )


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        return list(csv.DictReader(f))


def assert_whole(path: Path, ncols: int) -> list[dict[str, str]]:
    """Every row of the CSV ``path`` is whole: it ends with a newline and each record has all its fields."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), data[-200:]
    rows = rows_of(path)
    for r in rows:
        assert len(r) == ncols and None not in r and None not in r.values(), r
    return rows


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(PREFIX), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    """240 copies of the eight clips (a run of a few seconds with two workers)."""
    folder = tmp_path_factory.mktemp("many")
    for i in range(30):
        for c in clips():
            shutil.copy(c, folder / f"{i:02d}_{c.name}")
    return folder


NCOLS = len(file_columns(LABELS, speakers=True))  # the --out columns (speaker turns on by default)


# --- 4: a disk that fills up mid-run ------------------------------------------------------------------------
@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """A 40 KiB tmpfs: a real file system that fills up. Needs root and permission to mount."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root (test_size_limit_mid_run covers the same path without it)")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip()}); test_size_limit_mid_run "
                    "covers the same path without it")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _check_resume_finishes(cmd_args: list[str], out: Path, win: Path, n: int, cwd: Path, **kw) -> None:
    proc = score(*cmd_args, "--resume", "--progress", "none", cwd=cwd, **kw)
    assert proc.returncode == 0, proc.stderr
    rows = assert_whole(out, NCOLS)
    assert len(rows) == n and len({r["path"] for r in rows}) == n
    assert all(r["error"] == "" for r in rows)
    assert len(rows_of(win)) == sum(int(r["windows"]) for r in rows), "window rows without their file row"


def test_disk_full_mid_run_keeps_whole_rows_and_resume_finishes(many: Path, small_tmpfs: Path, tmp_path) -> None:
    out, win = small_tmpfs / "out.csv", small_tmpfs / "win.csv"
    args = [str(many), "-o", str(out), "-w", str(win), "-j", "2"]
    proc = score(*args, "--progress", "none", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert "disk is full" in line and "--resume" in line and "internal error" not in line, line
    rows = assert_whole(out, NCOLS)
    assert 0 < len(rows) < 240
    assert {r["path"] for r in rows_of(win)} <= {r["path"] for r in rows}, "window rows without their file row"
    subprocess.run(["mount", "-o", "remount,size=2m", str(small_tmpfs)], check=True)  # space comes back
    _check_resume_finishes(args, out, win, 240, tmp_path)


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_size_limit_mid_run_keeps_whole_rows_and_resume_finishes(many: Path, tmp_path: Path) -> None:
    """Without root: RLIMIT_FSIZE makes the kernel cut a write short at 30 000 bytes, then refuse (EFBIG)."""
    out, win = tmp_path / "out.csv", tmp_path / "win.csv"
    args = [str(many), "-o", str(out), "-w", str(win), "-j", "2"]
    proc = score(*args, "--progress", "none", cwd=tmp_path, preexec_fn=_limit_file_size(30_000))
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert "size limit" in line and "--resume" in line and "internal error" not in line, line
    rows = assert_whole(out, NCOLS)
    assert 0 < len(rows) < 240
    assert {r["path"] for r in rows_of(win)} <= {r["path"] for r in rows}
    _check_resume_finishes(args, out, win, 240, tmp_path)


def test_full_device_at_the_first_row_is_one_line(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    proc = score(str(clips()[0]), "-o", "/dev/full", "--progress", "none", cwd=tmp_path)
    assert proc.returncode == 2
    assert "disk is full" in one_error_line(proc.stderr)


# --- 5: kill -9 of score --------------------------------------------------------------------------------------
def test_kill9_leaves_no_process_whole_rows_and_resume_completes(many: Path, tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "out.csv"
    proc = subprocess.Popen(score_cmd(str(many), "-o", str(out), "-j", "2", "--progress", "none"), cwd=tmp_path,
                            env=env(), stderr=subprocess.PIPE)
    parent = psutil.Process(proc.pid)
    family: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        for p in parent.children(recursive=True):
            family.setdefault(p.pid, p)
        if out.exists() and out.read_bytes().count(b"\n") > 20 and len(family) >= 3:
            break
        time.sleep(0.01)
    if proc.poll() is not None:
        pytest.fail("the run ended before it could be killed; make the corpus larger")
    for p in parent.children(recursive=True):
        family.setdefault(p.pid, p)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert len(family) >= 3, "expected the forkserver, its workers and the resource tracker"

    def alive() -> list[str]:
        left = []
        for p in family.values():
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    left.append(" ".join(p.cmdline())[:100])
            except psutil.NoSuchProcess:
                pass
        return left

    deadline = time.monotonic() + 15
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive()
    for p in family.values():  # do not leave them behind for the rest of the suite
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    assert not left, f"processes of the killed run still running: {left}"

    rows = assert_whole(out, NCOLS)
    assert 0 < len(rows) < 240
    proc2 = score(str(many), "-o", str(out), "-j", "2", "--resume", "--progress", "none", cwd=tmp_path)
    assert proc2.returncode == 0, proc2.stderr
    rows = assert_whole(out, NCOLS)
    assert len(rows) == 240 and len({r["path"] for r in rows}) == 240


# --- 9: a file name holding a line break ----------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_newline_in_a_file_name_round_trips_and_resume_matches_it(tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "names"
    folder.mkdir()
    names = ["two\nlines.flac", "carriage\r\nreturn.flac", "plain.flac"]
    for name, clip in zip(names, clips()[: len(names)], strict=True):
        shutil.copy(clip, folder / name)
    out = tmp_path / f"out.{fmt}"
    proc = score(str(folder), "-o", str(out), "--progress", "none", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    if fmt == "csv":
        paths = [r["path"] for r in rows_of(out)]
    else:
        paths = [json.loads(line)["path"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(paths) == sorted(str(folder / n) for n in names)
    before = out.read_bytes()
    proc = score(str(folder), "-o", str(out), "--resume", cwd=tmp_path)
    assert proc.returncode == 0 and "3 already done" in proc.stderr, proc.stderr
    assert out.read_bytes() == before, "--resume added a row for a file already scored"


def test_resume_cuts_a_row_killed_inside_a_quoted_newline(tmp_path: Path) -> None:
    """A hard kill right after the line break inside a quoted path leaves '"...two\\n': resume drops it."""
    folder = tmp_path / "names"
    folder.mkdir()
    shutil.copy(clips()[0], folder / "two\nlines.flac")
    shutil.copy(clips()[1], folder / "plain.flac")
    out = tmp_path / "out.csv"
    assert score(str(folder), "-o", str(out), cwd=tmp_path).returncode == 0
    text = out.read_text(encoding="utf-8")
    header, rest = text.split("\n", 1)
    plain = next(line for line in rest.splitlines(keepends=True) if "plain.flac" in line)
    partial = '"' + str(folder) + "/two\n"
    out.write_text(header + "\n" + plain + partial, encoding="utf-8")
    proc = score(str(folder), "-o", str(out), "--resume", cwd=tmp_path)
    assert proc.returncode == 0 and "1 already done" in proc.stderr, proc.stderr
    rows = assert_whole(out, NCOLS)
    assert sorted(r["path"] for r in rows) == sorted([str(folder / "plain.flac"), str(folder / "two\nlines.flac")])


# --- 10: symbolic links in walks and globs --------------------------------------------------------------------
@pytest.fixture
def linked_tree(tmp_path: Path) -> Path:
    """root/a/one.flac; root/b -> ../outside (3 clips); root/a/loop -> .. ; broken links; a FIFO named .wav."""
    outside = tmp_path / "outside"
    outside.mkdir()
    for c in clips()[:3]:
        shutil.copy(c, outside / c.name)
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    shutil.copy(clips()[3], root / "a" / "one.flac")
    (root / "b").symlink_to(outside, target_is_directory=True)
    (root / "a" / "loop").symlink_to("..", target_is_directory=True)
    (root / "a" / "dangling.wav").symlink_to(tmp_path / "nowhere.wav")
    (root / "gone").symlink_to(tmp_path / "unmounted_disk", target_is_directory=True)
    os.mkfifo(root / "a" / "pipe.wav")
    return root


def test_symlinked_folders_are_followed_and_every_skipped_path_has_a_row(linked_tree: Path, tmp_path) -> None:
    root = linked_tree
    outs = []
    for arg, expect_errors in (
        (str(root), {"a/dangling.wav", "a/pipe.wav", "a/loop", "gone"}),
        (str(root / "**" / "*"), {"a/dangling.wav", "a/pipe.wav", "a/loop", "gone"}),
        (str(root / "*" / "*.wav"), {"a/dangling.wav", "a/pipe.wav", "*/*.wav"}),  # + "no audio file matches"
    ):
        out = tmp_path / f"out{uuid.uuid4().hex}.csv"
        outs.append(out)
        proc = score(arg, "-o", str(out), "--progress", "none", cwd=tmp_path, timeout=120)
        assert proc.returncode == 1, proc.stderr
        rows = rows_of(out)
        by_rel = {os.path.relpath(r["path"], root): r for r in rows}
        assert {k for k, r in by_rel.items() if r["error"]} == expect_errors, (arg, by_rel.keys())
        errors = {k: by_rel[k]["error"] for k in expect_errors}
        assert "broken symbolic link" in errors["a/dangling.wav"]
        assert "not a regular file" in errors["a/pipe.wav"]
        if "a/loop" in errors:
            assert "loop" in errors["a/loop"] and "broken symbolic link" in errors["gone"]
        for r in rows:
            assert "<" not in r["error"]
    rows = rows_of(outs[0])  # the folder walk: the files behind the symlinked folder are scored
    scored = {os.path.relpath(r["path"], root) for r in rows if not r["error"]}
    assert scored == {"a/one.flac", *(f"b/{c.name}" for c in clips()[:3])}, scored


def test_recursive_glob_through_two_loops_stays_finite(tmp_path: Path) -> None:
    """glob.glob(recursive=True) follows link loops ~40 levels deep (2**40 paths with two loops)."""
    from monitor.batch.discover import discover

    root = tmp_path / "r"
    (root / "x").mkdir(parents=True)
    shutil.copy(clips()[0], root / "x" / "c.flac")
    (root / "x" / "up1").symlink_to("..", target_is_directory=True)
    (root / "x" / "up2").symlink_to("..", target_is_directory=True)
    found = discover([str(root / "**" / "*.flac")])
    assert found.files == [str(root / "x" / "c.flac")]
    assert found.missing == []  # the loops match no "*.flac": no row for them


# --- 12: model metadata whose labels are not the trained ones -------------------------------------------------
RENAMED = [("joy" if x == "happy" else x) for x in LABELS]


@pytest.mark.parametrize("labels", [list(reversed(LABELS)), list(range(len(LABELS))), RENAMED])
def test_model_metadata_with_wrong_labels_is_refused(tmp_path: Path, labels) -> None:
    from monitor.errors import ModelError
    from monitor.inference.classifier import EmotionClassifier

    model = tmp_path / "m.tflite"
    shutil.copy(MODEL, model)
    meta = json.loads(MODEL.with_suffix(".json").read_text())
    meta["labels"] = labels
    model.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="labels"):
        EmotionClassifier(model)
    proc = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "score", str(clips()[0]), "--model", str(model)],
        capture_output=True, text=True, timeout=60, env=env(), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert "labels" in one_error_line(proc.stderr)
    proc = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "live", "--file", str(clips()[0]), "--model", str(model),
         "--no-dashboard", "--transcriber", "none"],
        capture_output=True, text=True, timeout=60, env=env(), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2 and "labels" in one_error_line(proc.stderr)


# --- 14: the small ones ---------------------------------------------------------------------------------------
def _mp3s(folder: Path) -> tuple[Path, Path]:
    """A damaged MP3 (zeroed stretches: libmpg123 complains on fd 2 and resyncs) and junk named .mp3."""
    audio, rate = sf.read(clips()[0])
    good = folder / "good.mp3"
    sf.write(good, audio, rate, format="MP3")
    data = bytearray(good.read_bytes())
    for i in range(2000, len(data) - 100, 997):
        data[i : i + 40] = bytes(40)
    damaged = folder / "damaged.mp3"
    damaged.write_bytes(bytes(data))
    junk = folder / "junk.mp3"
    junk.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40)
    return damaged, junk


def test_quiet_run_prints_nothing_and_error_rows_quote_no_python_object(tmp_path: Path) -> None:
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile reads no MP3 (libsndfile >= 1.1 with mpg123 does)")
    damaged, junk = _mp3s(tmp_path)
    (tmp_path / "empty.wav").write_bytes(b"")
    proc = score(str(damaged), str(junk), str(tmp_path / "empty.wav"), "-o", "out.csv", "-q", "-j", "1",
                 cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == "", proc.stderr  # libmpg123's "Note: Illegal Audio-MPEG-Header ..." included
    rows = {Path(r["path"]).name: r for r in rows_of(tmp_path / "out.csv")}
    assert rows["damaged.mp3"]["error"] == "" and rows["damaged.mp3"]["emotion"]
    for name in ("junk.mp3", "empty.wav"):
        err = rows[name]["error"]
        assert err.startswith(str(tmp_path / name) + ": not a readable audio file"), err
        assert "<" not in err and "_io" not in err, err


def test_every_command_uses_one_error_prefix(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.tflite")
    runs = [
        ["score", str(clips()[0]), "--model", missing],
        ["live", "--file", str(clips()[0]), "--model", missing, "--no-dashboard"],
        ["live", "--file", str(tmp_path / "nothing.wav"), "--no-dashboard"],
        ["models", "fetch", "--dest", str(tmp_path / "file" / "sub")],
    ]
    (tmp_path / "file").write_text("x")
    for args in runs:
        proc = subprocess.run([sys.executable, "-m", "monitor.cli", *args], capture_output=True, text=True,
                              timeout=60, env=env(), cwd=tmp_path)
        assert proc.returncode in (1, 2), (args, proc.stderr)
        one_error_line(proc.stderr)
    for args in (["score", "--jobs", "0", str(clips()[0])], ["live", "--vad-mode", "9"], ["models", "nope"]):
        proc = subprocess.run([sys.executable, "-m", "monitor.cli", *args], capture_output=True, text=True,
                              timeout=60, env=env(), cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert lines[0].startswith("usage: ") and lines[-1].startswith(PREFIX), (args, proc.stderr)


def test_score_does_not_overwrite_a_file_it_did_not_write(tmp_path: Path) -> None:
    notes = tmp_path / "notes.csv"
    notes.write_text("name,phone\nAda,555-0100\n")
    for flag in ("-o", "-w"):
        args = [str(clips()[0]), flag, str(notes)] + (["-o", str(tmp_path / "o.csv")] if flag == "-w" else [])
        proc = score(*args, cwd=tmp_path)
        assert proc.returncode == 2
        assert "--force" in one_error_line(proc.stderr)
        assert notes.read_text() == "name,phone\nAda,555-0100\n"
    out = tmp_path / "scores.csv"
    assert score(str(clips()[0]), "-o", str(out), cwd=tmp_path).returncode == 0
    proc = score(str(clips()[1]), "-o", str(out), cwd=tmp_path)  # its own earlier output: replaced, as before
    assert proc.returncode == 0, proc.stderr
    assert [Path(r["path"]).name for r in rows_of(out)] == [clips()[1].name]
    proc = score(str(clips()[0]), "-o", str(notes), "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(rows_of(notes)) == 1


def test_silent_and_odd_files_still_get_rows(tmp_path: Path) -> None:
    """The odd files of the fault suite in one run: silence, a 1-sample file, a folder named .wav, a name that
    is not UTF-8."""
    sf.write(tmp_path / "silence.wav", np.zeros(16000 * 2, dtype=np.int16), 16000)
    sf.write(tmp_path / "one_sample.wav", np.zeros(1, dtype=np.int16), 16000)
    (tmp_path / "folder.wav").mkdir()
    odd = os.fsdecode(bytes(tmp_path) + b"/latin1-\xe9.flac")
    shutil.copy(clips()[0], odd)
    args = [str(tmp_path / n) for n in ("silence.wav", "one_sample.wav")] + [odd, str(tmp_path / "folder.wav")]
    proc = score(*args, "-o", "out.csv", "--progress", "none", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # folder.wav is walked (empty); the others are read
    rows = {r["path"]: r for r in rows_of(tmp_path / "out.csv")}
    assert rows[str(tmp_path / "silence.wav")]["error"].startswith("no speech")
    assert rows[odd]["error"] == "" and rows[odd]["emotion"]
    proc = score(*args, "-o", "out.csv", "--resume", cwd=tmp_path)
    assert proc.returncode == 0 and "3 already done" in proc.stderr, proc.stderr


def _mp4_bytes() -> bytes:
    """The start of an MP4/M4A container (an ``ftyp`` box and an empty ``mdat``) and nothing decodable after it:
    a damaged voice memo."""
    return (b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00isomM4A " + b"\x00\x00\x00\x08mdat") * 4


def _encode(src: Path, out: Path, codec: str) -> None:
    """``src`` (a real clip) encoded by PyAV (FFmpeg's encoders) as ``codec`` in the container ``out`` names."""
    import av

    audio, rate = sf.read(src, dtype="int16")
    with av.open(str(out), "w") as container:
        stream = container.add_stream(codec, rate=48000 if codec == "libopus" else rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(audio.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
        for piece in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(piece):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _score_without_pyav(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``voice-monitor score`` as on a machine without PyAV: in every process of the run (its workers too) a
    ``sitecustomize`` makes the import system answer that ``av`` is absent."""
    hide = cwd / "no-pyav"
    hide.mkdir(exist_ok=True)
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['av'] = None\n")
    e = env()
    e["PYTHONPATH"] = str(hide) + os.pathsep + e["PYTHONPATH"]
    return subprocess.run(score_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=120, env=e)


def test_m4a_and_webm_recordings_are_scored_like_the_flac_they_were_made_from(tmp_path: Path) -> None:
    pytest.importorskip("av", reason="PyAV is the formats extra: scripts/setup.sh --dev installs it")
    memos = tmp_path / "memos"
    memos.mkdir()
    clip = clips()[0]  # a clear judgement (confidence about 0.76), so that a codec's small changes do not flip it
    shutil.copy(clip, memos / "clip.flac")
    _encode(clip, memos / "memo.m4a", "aac")
    _encode(clip, memos / "call.webm", "libopus")
    (memos / "damaged.m4a").write_bytes(_mp4_bytes())
    proc = score(str(memos), "-o", "out.csv", "-j", "1", "--transcriber", "none", "--speakers", "off", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # the damaged one
    rows = {Path(r["path"]).name: r for r in rows_of(tmp_path / "out.csv")}
    assert sorted(rows) == ["call.webm", "clip.flac", "damaged.m4a", "memo.m4a"]
    flac = rows["clip.flac"]
    for name in ("memo.m4a", "call.webm"):
        row = rows[name]
        assert row["error"] == "" and row["emotion"] == flac["emotion"], (name, row)
        assert abs(float(row["duration_s"]) - float(flac["duration_s"])) < 0.1, row["duration_s"]
        # A lossy codec and its encoder delay (AAC starts 1024 samples late) move the windows and the features a
        # little: the same judgement, not the same numbers.
        for label in LABELS:
            assert abs(float(row[f"p_{label}"]) - float(flac[f"p_{label}"])) < 0.15, (name, label)
    err = rows["damaged.m4a"]["error"]
    assert err.startswith(f"{memos / 'damaged.m4a'}: not a readable audio file"), err
    assert "convert it to WAV or FLAC" in err and "install PyAV" not in err, err
    # The live monitor reads them too.
    out = tmp_path / "timeline.csv"
    live = subprocess.run([sys.executable, "-m", "monitor.cli", "--file", str(memos / "memo.m4a"), "--no-dashboard",
                           "--transcriber", "none", "--csv", str(out), "--model", str(MODEL)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env())
    assert live.returncode == 0, live.stderr
    assert [r["emotion"] for r in rows_of(out)][:1] == [flac["emotion"]]


def test_damaged_wav_and_flac_headers_keep_libsndfile_s_one_line_error(tmp_path: Path) -> None:
    """A file libsndfile refuses to open is offered to PyAV, which opens some of them (a WAV with a codec tag it
    has no decoder for, a FLAC named .flac whose magic is damaged) and cannot decode them: libsndfile's reason
    stays the error, one line, in ``score`` and in ``--file``; a video without sound says so."""
    av = pytest.importorskip("av", reason="PyAV is the formats extra: scripts/setup.sh --dev installs it")
    bad = tmp_path / "bad"
    bad.mkdir()
    audio, rate = sf.read(clips()[0], dtype="int16")
    sf.write(bad / "ok.wav", audio, rate, subtype="PCM_16")
    wav = (bad / "ok.wav").read_bytes()
    (bad / "unknown_codec.wav").write_bytes(wav[:20] + (0x1234).to_bytes(2, "little") + wav[22:])
    (bad / "bad_header.wav").write_bytes(wav[:20] + b"\xff" * 4 + wav[24:])
    (bad / "bad_magic.flac").write_bytes(b"fLaX" + clips()[0].read_bytes()[4:])
    with av.open(str(bad / "silent_film.mp4"), "w") as film:
        stream = film.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(5):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")):
                film.mux(packet)
        for packet in stream.encode(None):
            film.mux(packet)
    proc = score(str(bad), "-o", "out.csv", "-j", "1", "--transcriber", "none", "--speakers", "off", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    rows = {Path(r["path"]).name: r["error"] for r in rows_of(tmp_path / "out.csv")}
    assert rows["ok.wav"] == ""
    for name, reason in (("unknown_codec.wav", "Malformed 'fmt ' chunk"), ("bad_header.wav", "Malformed 'fmt ' chunk"),
                         ("bad_magic.flac", "Format not recognised")):
        assert rows[name].startswith(f"{bad / name}: not a readable audio file ("), rows[name]
        assert reason in rows[name] and "convert it to WAV or FLAC" in rows[name], rows[name]
        assert "internal error" not in rows[name] and "corrupt part-way" not in rows[name], rows[name]
    assert rows["silent_film.mp4"] == f"{bad / 'silent_film.mp4'}: the file holds no audio stream this tool can decode"
    for name in ("unknown_codec.wav", "bad_magic.flac", "silent_film.mp4"):
        live = subprocess.run([sys.executable, "-m", "monitor.cli", "--file", str(bad / name), "--no-dashboard",
                               "--transcriber", "none", "--model", str(MODEL)], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, env=env())
        assert live.returncode == 2, live.stderr
        assert one_error_line(live.stderr) == PREFIX + rows[name], live.stderr


def test_without_pyav_such_recordings_are_named_with_what_to_do(tmp_path: Path) -> None:
    memos = tmp_path / "memos"
    memos.mkdir()
    shutil.copy(clips()[0], memos / "clip.flac")
    for name in ("a.m4a", "b.M4A", "call.webm"):
        (memos / name).write_bytes(_mp4_bytes())
    (memos / "notes.txt").write_text("not audio")
    proc = _score_without_pyav(str(memos), "-o", "out.csv", "-j", "1", "--transcriber", "none", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [Path(r["path"]).name for r in rows_of(tmp_path / "out.csv")] == ["clip.flac"]
    last = proc.stderr.strip().splitlines()[-1]
    assert "2 .m4a files and 1 .webm file in the folders were not read" in last, last
    assert "pip install av" in last and "convert to WAV or FLAC" in last and ".txt" not in last, last
    # A folder of them only: the usual "no audio files found", with the reason and what to do.
    (memos / "clip.flac").unlink()
    proc = _score_without_pyav(str(memos), "-o", "out2.csv", "-j", "1", "--transcriber", "none", cwd=tmp_path)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("no audio files found") and "2 .m4a files" in last and "ffmpeg -i" in last, last
    # Named on the command line, it is tried and its row says what to do.
    proc = _score_without_pyav(str(memos / "a.m4a"), "-o", "out3.csv", "-j", "1", "--transcriber", "none",
                               cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (row,) = rows_of(tmp_path / "out3.csv")
    assert row["error"].startswith(f"{memos / 'a.m4a'}: not a readable audio file"), row["error"]
    assert "install PyAV (pip install av) or convert it to WAV or FLAC" in row["error"], row["error"]
    assert "\n" not in row["error"]
