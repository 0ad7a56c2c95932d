"""training.heads_rooms: the degraded versions the voice head is measured on (models/results/heads_rooms.json) are
cut at the clean clip's windows, so every degraded window stands beside the clean window it came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monitor.dsp.functionals import functionals
from training import heads_rooms
from training.prosody import Windows, clip_windows

DATA = Path(__file__).resolve().parent / "data"


def test_degraded_windows_line_up_with_the_clean_ones_and_are_repeatable():
    clips = sorted(DATA.glob("*.flac"))
    heads_rooms._init([str(c) for c in clips])  # babble from the eight clips (3-5 of them each time)
    kinds = set()
    for clip in clips[:4]:
        key = f"ravdess16k:{clip.stem}"
        f, states, emb, kind = heads_rooms.degraded_rows(str(clip), key)
        clean = np.stack([functionals(a) for a in clip_windows(str(clip))])
        assert f.shape == clean.shape and states.shape == (len(f), 1024) and emb.shape == (len(f), 256)
        assert kind in heads_rooms.KINDS
        kinds.add(kind)
        assert not np.allclose(f, clean), "the degraded version's functionals must differ from the clean ones"
        again = heads_rooms.degraded_rows(str(clip), key)
        assert np.array_equal(again[0], f) and np.array_equal(again[1], states) and again[3] == kind
    assert len(kinds) >= 2, "the kind is chosen per clip"


def test_variant_degrades_only_held_out_windows_and_adds_versions_of_training_clips():
    n = 6
    key = np.array(["a:1", "a:1", "a:2", "b:1", "b:2", "b:3"])
    win = Windows(np.zeros((n, 2)), key, np.array(["a"] * 3 + ["b"] * 3), np.arange(n) % 2, {"a": [0, 1], "b": [0, 1]},
                  np.array(["a/x"] * 3 + ["b/y"] * 3), np.zeros((n, 3), np.float32), np.zeros((n, 4)))
    deg = Windows(np.ones((n, 2)), key, win.corpus, win.label, win.corpus_labels, win.speaker,
                  np.ones((n, 3), np.float32), np.ones((n, 4)))
    held = {"b:1", "b:2", "b:3"}
    v = heads_rooms.variant(win, deg, held, test_degraded=True, with_versions=False)
    assert v.x[:3].sum() == 0 and np.all(v.x[3:] == 1) and np.all(v.embedding[3:] == 1) and np.all(v.vector[3:] == 1)
    v = heads_rooms.variant(win, deg, held, test_degraded=False, with_versions=True)
    assert len(v.x) == n + 3 and v.x[:n].sum() == 0 and np.all(v.x[n:] == 1)
    assert list(v.key[n:]) == ["a:1#version", "a:1#version", "a:2#version"]
    assert list(v.corpus[n:]) == ["a"] * 3 and list(v.label[n:]) == list(win.label[:3])
