"""Words recognised after their rows were written are never lost (issue 18, defect 13).

With ``text_wait_s = 0`` every emotion row is written before the transcriber (real pocketsphinx, in its
own process) has its words: the words must reach the transcript file beside the CSV, keyed by utterance
and time, marked late, and counted in the summary.
"""

from __future__ import annotations

import csv
import re
import subprocess
import time

import numpy as np
from conftest import VOICE_MONITOR, load_clip


def test_late_words_go_to_the_transcript_file_and_are_counted(tmp_path, clips, model_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[transcriber]\ntext_wait_s = 0\n")
    audio = np.concatenate([np.zeros(8000, np.int16), load_clip(clips[1]), np.zeros(16000, np.int16),
                            load_clip(clips[5]), np.zeros(10 * 16000, np.int16)])
    out = tmp_path / "t.csv"
    proc = subprocess.Popen(
        VOICE_MONITOR + ["live", "--stdin", "--no-dashboard", "--transcriber", "pocketsphinx", "--config", str(cfg),
                         "--csv", str(out), "--model", str(model_path)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # In real time, as a microphone would (trailing silence: the words come while the run goes on).
        start = time.monotonic()
        for i in range(0, len(audio), 1600):
            proc.stdin.write(audio[i : i + 1600].astype("<i2").tobytes())
            proc.stdin.flush()
            time.sleep(max(0.0, start + (i + 1600) / 16000 - time.monotonic()))
        proc.stdin.close()
        proc.wait(timeout=120)
        err = proc.stderr.read().decode()  # a few summary lines: they fit the pipe
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    rows = list(csv.DictReader(out.open()))
    assert rows and all(r["text"] == "" for r in rows), "rows waited for their words despite text_wait_s = 0"
    transcript = tmp_path / "t.transcript.csv"
    assert transcript.exists(), err
    lines = list(csv.DictReader(transcript.open()))
    assert list(lines[0]) == ["utterance", "start_s", "end_s", "time", "text", "late"]
    # Every utterance of the CSV has its words in the transcript file, marked late.
    assert {r["utterance"] for r in rows} <= {t["utterance"] for t in lines}, (rows, lines)
    assert all(t["text"].strip() and t["late"] == "1" for t in lines), lines
    words = " ".join(t["text"] for t in lines).lower()
    assert "door" in words, words  # RAVDESS: "... by the door"
    m = re.search(r"transcript: .*t\.transcript\.csv \((\d+) utterances, (\d+) of them late\)", err)
    assert m and int(m.group(1)) == len(lines) and int(m.group(2)) == len(lines), err
    assert f"utterances whose words came after their rows {len(lines)}" in err, err
