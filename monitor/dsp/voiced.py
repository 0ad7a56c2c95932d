"""Is a stretch of audio voiced like speech? The check that lets a short word, or a clip read with a low noise
margin, through and keeps noise of a word's length out.

A syllable of speech is several voiced frames in a row with a clear pitch that moves (``monitor.dsp.functionals.
voicing``). Kept: ``VOICED_RUN_S`` of voiced frames in a row, the voiced frames' mean harmonics-to-noise ratio
``VOICED_HNR_DB`` or more; not voiced steadily (hum or a tone: voiced at a pitch that moves by ``STEADY_SPREAD_ST``
or less, in ``STEADY_RATIO`` of the frames or more or in one run over ``STEADY_RUN_SHARE`` of the audio); and not
mostly below 100 Hz (rumble, wind: more than ``LOW_SHARE_MAX`` of the power). The thresholds were set on speech
windows recovered from clips in rooms and noise and on synthetic noises (white, pink, brown, rumble, traffic-like
band noise, hum): about 90 % of the speech passes, none of those noises did (``benchmarks/bench_noisy_clips.py``).
"""

from __future__ import annotations

import numpy as np

from monitor.dsp.functionals import RATE, voicing

VOICED_RUN_S = 0.12  # three 40 ms frames
VOICED_HNR_DB = 2.5
STEADY_SPREAD_ST = 0.3
STEADY_RATIO = 0.9
STEADY_RUN_SHARE = 0.75
LOW_SHARE_MAX = 0.4


def speech_like(audio: np.ndarray) -> bool:
    """16 kHz mono audio (int16 or float) -> is it voiced like speech (see the module's docstring)?"""
    v = voicing(audio)
    # a short stretch is steady too when one voiced run at one pitch fills most of it (a burst of hum of a word's
    # length has a frame or two of silence around it, which keeps its voiced ratio under STEADY_RATIO)
    held = v.voiced_ratio >= STEADY_RATIO or v.longest_run_s >= STEADY_RUN_SHARE * len(audio) / RATE
    steady = v.pitch_spread_st <= STEADY_SPREAD_ST and held
    voiced = v.longest_run_s >= VOICED_RUN_S and v.hnr_db >= VOICED_HNR_DB
    return voiced and not steady and v.low_share <= LOW_SHARE_MAX
