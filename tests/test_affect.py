"""Arousal and valence: the documented mapping, a model's own table, and the columns everywhere they appear
(live CSV timeline, ``score`` file and window rows in CSV and JSONL, dashboard, headless line), with a one-line
refusal of files written by an older version. Real model, real clips, the CLI as a subprocess."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import load_clip
from rich.console import Console
from test_cli import run

from monitor.affect import HIGH_AROUSAL, LOW_AROUSAL, AffectMap
from monitor.dsp.segmenter import segment_audio
from monitor.errors import ModelError
from monitor.events import Event
from monitor.inference.classifier import EmotionClassifier
from monitor.labels import LABELS
from monitor.sinks.console import format_event
from monitor.sinks.dashboard import Dashboard

# The README's table, written out again here: the code must say the same.
TABLE = {
    "neutral": (-0.55, 0.0), "calm": (-0.85, 0.4), "happy": (0.45, 0.8), "sad": (-0.75, -0.7),
    "angry": (0.65, -0.6), "fearful": (0.55, -0.6), "disgust": (-0.05, -0.7), "surprised": (0.55, 0.3),
}
AFFECT = ["arousal", "valence"]


def expected(probs: dict[str, float]) -> tuple[float, float]:
    return (sum(p * TABLE[lab][0] for lab, p in probs.items()), sum(p * TABLE[lab][1] for lab, p in probs.items()))


def test_default_mapping_is_the_documented_table():
    m = AffectMap.default(LABELS)
    for lab in LABELS:
        assert m.of({x: float(x == lab) for x in LABELS}) == pytest.approx(TABLE[lab])
    assert all(m.coordinates[lab][0] > 0 for lab in HIGH_AROUSAL)  # positive arousal is high arousal
    assert all(m.coordinates[lab][0] < 0 for lab in LOW_AROUSAL)
    rng = np.random.default_rng(0)
    for p in rng.dirichlet(np.ones(8) * 0.3, size=200):
        a, v = m.of(dict(zip(LABELS, p, strict=True)))
        assert -1 <= a <= 1 and -1 <= v <= 1


def test_the_real_model_gives_the_weighted_sum(classifier, clips):
    for path in clips[:4]:
        for w in segment_audio(load_clip(path)):
            pred = classifier.predict(w.audio)
            assert (pred.arousal, pred.valence) == pytest.approx(expected(pred.probabilities), abs=1e-6)
    # The shipped model carries the documented table as its own (or none: the documented default).
    meta = json.loads(classifier.info.path.with_suffix(".json").read_text())
    assert classifier.affect.source == ("model" if "affect" in meta else "default")


@pytest.fixture()
def model_copy(tmp_path, model_path) -> Path:
    dst = tmp_path / "model" / "emotion.tflite"
    dst.parent.mkdir()
    shutil.copy(model_path, dst)
    shutil.copy(model_path.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def _set_affect(path: Path, table) -> None:
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["affect"] = table
    path.with_suffix(".json").write_text(json.dumps(meta))


def test_a_model_ships_its_own_table(model_copy, clips):
    own = {"arousal": {lab: 1.0 if lab == "sad" else -0.5 for lab in LABELS}, "valence": dict.fromkeys(LABELS, 0.25)}
    _set_affect(model_copy, own)
    c = EmotionClassifier(model_copy)
    assert c.affect.source == "model"
    pred = c.predict(segment_audio(load_clip(clips[3]))[0].audio)
    p_sad = pred.probabilities["sad"]
    assert pred.arousal == pytest.approx(p_sad * 1.0 + (1 - p_sad) * -0.5, abs=1e-6)
    assert pred.valence == pytest.approx(0.25, abs=1e-6)


@pytest.mark.parametrize("table", [
    "high",
    {"arousal": dict.fromkeys(LABELS, 0.0)},  # no valence
    {"arousal": dict.fromkeys(LABELS[:7], 0.0), "valence": dict.fromkeys(LABELS, 0.0)},  # a label missing
    {"arousal": dict.fromkeys(LABELS, 1.5), "valence": dict.fromkeys(LABELS, 0.0)},  # out of range
    {"arousal": dict.fromkeys(LABELS, "0.1"), "valence": dict.fromkeys(LABELS, 0.0)},
])
def test_a_malformed_table_is_refused_in_one_line(model_copy, table):
    _set_affect(model_copy, table)
    with pytest.raises(ModelError, match="affect") as info:
        EmotionClassifier(model_copy)
    assert "\n" not in str(info.value)


def _columns_after_probabilities(header: list[str]) -> None:
    probs = [i for i, h in enumerate(header) if h.startswith("p_")]
    assert [h for h in header if h.startswith("p_")] == [f"p_{lab}" for lab in LABELS]
    assert header[probs[-1] + 1 : probs[-1] + 3] == AFFECT


def _check_row(row: dict) -> None:
    probs = {lab: float(row[f"p_{lab}"]) for lab in LABELS}
    a, v = expected(probs)
    assert float(row["arousal"]) == pytest.approx(a, abs=3e-4) and float(row["valence"]) == pytest.approx(v, abs=3e-4)
    assert len(str(row["arousal"]).split(".")[-1]) <= 4  # 4 decimals


def test_live_timeline_has_the_columns_and_refuses_an_older_file(tmp_path, clips, model_path):
    out = tmp_path / "t.csv"
    args = ["--file", str(clips[4]), "--no-dashboard", "--transcriber", "none", "--csv", str(out),
            "--model", str(model_path)]
    proc = run(args)
    assert proc.returncode == 0, proc.stderr.decode()
    rows = list(csv.DictReader(out.open()))
    _columns_after_probabilities(list(rows[0]))
    assert rows
    for r in rows:
        _check_row(r)
    # The headless line shows them too.
    line = proc.stdout.decode().splitlines()[0]
    assert f"arousal {float(rows[0]['arousal']):+.2f} valence {float(rows[0]['valence']):+.2f}" in line
    # A timeline written before arousal/valence: one line saying what to do, the file untouched.
    old = tmp_path / "old.csv"
    with old.open("w", newline="") as f:
        w = csv.writer(f)
        header = [c for c in rows[0] if c not in AFFECT]
        w.writerow(header)
        w.writerow([rows[0][c] for c in header])
    before = old.read_bytes()
    proc = run([*args[:-4], "--csv", str(old), "--model", str(model_path)])
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "older version (no arousal/valence)" in lines[0] and "move it away" in lines[0], err
    assert old.read_bytes() == before


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_score_rows_and_summary_and_resume_of_an_older_file(tmp_path, clips, model_path, fmt):
    out, win = tmp_path / f"files.{fmt}", tmp_path / f"win.{fmt}"
    args = ["score", *(str(c) for c in clips[:3]), "--transcriber", "none", "--model", str(model_path),
            "--progress", "none", "--jobs", "1"]
    proc = run([*args, "--out", str(out), "--windows", str(win)])
    assert proc.returncode == 0, proc.stderr.decode()
    if fmt == "csv":
        files, windows = list(csv.DictReader(out.open())), list(csv.DictReader(win.open()))
    else:
        files = [json.loads(x) for x in out.read_text().splitlines()]
        windows = [json.loads(x) for x in win.read_text().splitlines()]
    for rows in (files, windows):
        _columns_after_probabilities(list(rows[0]))
        for r in rows:
            _check_row(r)
    for f in files:  # the summary is the mean over the file's windows
        mine = [w for w in windows if w["path"] == f["path"]]
        assert mine
        for axis in AFFECT:
            assert float(f[axis]) == pytest.approx(np.mean([float(w[axis]) for w in mine]), abs=2e-4)
    # --resume onto files of an older version: one line, nothing appended.
    for target in (out, win):
        if fmt == "csv":
            rows = list(csv.DictReader(target.open()))
            header = [c for c in rows[0] if c not in AFFECT]
            with target.open("w", newline="") as f:
                w = csv.DictWriter(f, header, extrasaction="ignore")
                w.writeheader()
                w.writerows(rows)
        else:
            rows = [json.loads(x) for x in target.read_text().splitlines()]
            target.write_text("".join(json.dumps({k: v for k, v in r.items() if k not in AFFECT}) + "\n"
                                      for r in rows))
    before = out.read_bytes(), win.read_bytes()
    proc = run([str(clips[5]) if a == str(clips[0]) else a for a in args]
               + ["--out", str(out), "--windows", str(win), "--resume"])
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "older version (no arousal/valence)" in lines[0], err
    assert "--out" in lines[0] and "move it away" in lines[0]
    assert (out.read_bytes(), win.read_bytes()) == before


def test_dashboard_shows_arousal_and_valence():
    probs = {lab: (0.6 if lab == "angry" else 0.4 / 7) for lab in LABELS}
    a, v = expected(probs)
    event = Event(0, 0, 0.0, 3.0, 1_700_000_000, "angry", 0.6, probs, arousal=a, valence=v)
    dash = Dashboard(LABELS, "file x", "m", "off")
    dash.on_event(event)
    console = Console(record=True, width=120)
    console.print(dash.render())
    text = console.export_text()
    assert f"now: ANGRY 60%  (0.0-3.0 s)  arousal {a:+.2f}  valence {v:+.2f}" in text
    assert f"arousal {a:+.2f} valence {v:+.2f}" in format_event(event)
