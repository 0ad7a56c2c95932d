"""The level meter beside "SPEECH" shows a level the VAD called speech, not the silence of a pause."""

import numpy as np
from conftest import DATA, load_clip

from monitor.dsp.segmenter import Segmenter
from monitor.dsp.vad import frame_level_dbfs

FRAME = 480  # 30 ms at 16 kHz, the segmenter's default frame


def test_meter_holds_the_speech_level_through_a_pause():
    clip = load_clip(DATA / "03-01-03-02-02-01-03.flac")  # happy, strong: loud words
    frames = clip[: len(clip) // FRAME * FRAME].reshape(-1, FRAME)
    loudest = int(np.argmax([frame_level_dbfs(f) for f in frames]))
    pause = np.random.default_rng(0).normal(0, 6, FRAME * 10).astype(np.int16)  # 300 ms at about -75 dBFS
    cut = (loudest + 1) * FRAME  # a pause right after the loudest frame, shorter than the hangover
    audio = np.concatenate([clip[:cut], pause, clip[cut:]])
    seg = Segmenter()
    seen = []
    for i in range(0, len(audio) // FRAME * FRAME, FRAME):
        seg.feed(audio[i : i + FRAME])
        seen.append((i, seg.meter, seg.vad.level_dbfs))
    in_pause = [(m, now) for i, m, now in seen if cut <= i < cut + len(pause)]
    assert all(m[1] for m, _ in in_pause), "the pause is shorter than the hangover: still in speech"
    assert all(now < -70 for _, now in in_pause)  # what an instantaneous meter would show beside SPEECH
    assert all(m[0] > -40 for m, _ in in_pause), in_pause  # the held level of the words just before
    for _, (level, speech), now in seen:
        assert level >= now if speech else level == now  # held only while in speech
    # Once the utterance is over, the meter shows the live level again.
    assert not seen[-1][1][1] and seen[-1][1][0] == seen[-1][2]
