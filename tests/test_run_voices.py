"""The run's voices (``monitor.inference.run_voices``): a `score` run's surveyed files grouped by voice, each file
judged against its own group. Real clips (tests/data: RAVDESS actors, odd numbers men, even women), the real
speaker encoder and model, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from monitor.inference.baseline import Baseline, BaselineOptions, pooled_stats
from monitor.inference.prosody import FeatureStats, shrink
from monitor.inference.run_voices import PRIOR_FILES, RunVoices
from tests.test_batch import MODEL_ARGS, SCRIPT, no_traceback, read_rows

DATA = Path(__file__).resolve().parent / "data"
FILES = sorted((DATA / "speakers").glob("*.flac")) + sorted(DATA.glob("*.flac"))


def actor(path: Path) -> int:
    return int(path.stem.rsplit("-", 1)[1])


@pytest.fixture(scope="module")
def read() -> list:
    """Every test clip scored as a file of a `score` run with speaker turns (the default)."""
    from monitor.batch.score import FileScorer, ScoreOptions

    scorer = FileScorer(ScoreOptions(model_path=os.environ.get("VOICE_MONITOR_TEST_MODEL")))
    return [scorer.score(str(f)) for f in FILES]


def test_a_runs_files_are_grouped_by_voice(read) -> None:
    """Men and women do not share a group; one actress's twelve clips (every emotion) fall into one group."""
    moments = [r.moments for r in read]
    assert all(m is not None and len(m.voice) == 48 for m in moments), "each file placed in the speaker space"
    voices = RunVoices.from_survey(moments)
    assert voices is not None and len(voices.voices) >= 2
    assert sum(v.files for v in voices.voices) == len(FILES)
    nearest = [voices.voices.index(voices.nearest(np.asarray(m.voice))) for m in moments]
    men = {g for f, g in zip(FILES, nearest, strict=True) if actor(f) % 2}
    women = {g for f, g in zip(FILES, nearest, strict=True) if not actor(f) % 2}
    assert men and women and not men & women, (men, women)
    assert len({g for f, g in zip(FILES, nearest, strict=True) if actor(f) == 2}) == 1
    one = RunVoices.from_survey([m for f, m in zip(FILES, moments, strict=True) if actor(f) == 2])
    assert one is not None and len(one.voices) == 1, "a run of one voice is one group"
    assert RunVoices.from_survey(moments[:1]) is None, "one file: nothing to group"


def test_a_files_prior_is_its_groups_pulled_towards_the_runs(read) -> None:
    moments = [r.moments for r in read]
    voices = RunVoices.from_survey(moments)
    run = pooled_stats(moments)
    assert voices is not None and run is not None
    m = moments[0]
    group = voices.nearest(np.asarray(m.voice))
    prior = voices.prior(np.asarray(m.voice), run)
    mean, std = shrink(np.asarray(group.mean), np.asarray(group.std) ** 2, group.files, PRIOR_FILES, run)
    assert np.allclose(prior.mean, mean) and np.allclose(prior.std, std)
    assert not np.allclose(prior.mean, run.mean, atol=1e-3), "the group moves the prior"
    assert voices.prior(None, run) == run, "a window without a vector: the run's"
    # a run's statistics of the functionals only (an older survey): the rest keep the run's
    short = FeatureStats(run.mean[:40], run.std[:40])
    longer = FeatureStats((*run.mean[:40], 7.0), (*run.std[:40], 2.0))
    narrow = replace(voices, voices=tuple(replace(v, mean=v.mean[:40], std=v.std[:40]) for v in voices.voices))
    got = narrow.prior(np.asarray(m.voice), longer)
    assert got.mean[40] == 7.0 and got.std[40] == 2.0
    assert np.allclose(got.mean[:40], narrow.prior(np.asarray(m.voice), short).mean)


def test_scoring_with_the_runs_voices_equals_judging_the_survey_again(read) -> None:
    """With speaker turns on, the survey reads as the scoring does: a file it read whole, judged again with the
    run's baseline and voices (``rejudge``), gives what scoring it again gives; and the voices change judgements."""
    from monitor.batch.score import FileScorer, ScoreOptions, rejudge, reusable
    from monitor.inference.classifier import EmotionClassifier

    model = os.environ.get("VOICE_MONITOR_TEST_MODEL")
    scoring = ScoreOptions(model_path=model)
    survey = replace(scoring, max_windows=20, keep_measures=True)
    assert reusable(survey, scoring)
    surveyed = FileScorer(survey)
    files = FILES[::2]
    first = [surveyed.score(str(f)) for f in files]
    base = Baseline.from_survey([r.log_mean for r in first], [r.moments for r in first], BaselineOptions(),
                                voices=True)
    assert base is not None and base.stats is not None and base.voices is not None and len(base.voices.voices) >= 2
    assert Baseline.from_survey([r.log_mean for r in first], [r.moments for r in first], BaselineOptions()) == replace(
        base, voices=None), "without voices: the baseline and the run's statistics alone"
    with_voices = replace(scoring, baseline=base)
    without = replace(scoring, baseline=replace(base, voices=None))
    again, plain = FileScorer(with_voices), FileScorer(without)
    classifier = EmotionClassifier(model)
    moved = 0
    for r in first:
        judged, scored = rejudge(r, classifier, with_voices), again.score(r.path)
        assert [e.probabilities for e in judged.events] == [e.probabilities for e in scored.events]
        assert [e.speaker for e in judged.events] == [e.speaker for e in scored.events]
        assert (judged.emotion, judged.arousal) == (scored.emotion, scored.arousal)
        moved += scored.probabilities != plain.score(r.path).probabilities
    assert moved > len(files) // 2, "the run's voices change how most files are judged"


def test_the_cli_groups_a_runs_voices_and_the_setting_turns_it_off(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    for f in FILES:
        (folder / f.name).write_bytes(f.read_bytes())
    off = tmp_path / "off.toml"
    off.write_text("[speakers]\nrun_voices = false\n")

    def score(out: str, *extra: str) -> tuple[list[dict[str, str]], str]:
        cmd = [sys.executable, str(SCRIPT), str(folder), "-o", out, *extra, *MODEL_ARGS, "--progress", "none"]
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        no_traceback(proc.stderr)
        return read_rows(tmp_path / out), proc.stderr

    grouped, err = score("grouped.csv")
    assert "voice groups" in err, err
    alone, err_off = score("alone.csv", "--config", str(off))
    assert "voice group" not in err_off and "baseline of" in err_off, err_off
    assert [r["path"] for r in grouped] == [r["path"] for r in alone]
    differ = sum(a["confidence"] != b["confidence"] for a, b in zip(grouped, alone, strict=True))
    assert differ > len(FILES) // 2, differ
    speakers_off, err = score("noturns.csv", "--speakers", "off")
    assert "voice group" not in err, "without speaker turns no voices are placed"


def test_the_survey_gives_one_baseline_whatever_order_its_files_come_back_in(read) -> None:
    """The workers (local, or a Dask cluster) finish the surveyed files in any order: the run's baseline, its
    statistics and its voices (their groups, ties and order) are the same, so a resumed run, or one with another
    --jobs, takes out the same baseline."""
    from monitor.batch.cli import _StopFlag, survey_baseline
    from monitor.batch.score import ScoreOptions

    class Replay:  # an executor that hands back the files already read, in a given order
        def __init__(self, order: list[int]) -> None:
            self.order = order

        def use(self, options: object, verb: str = "scoring") -> None:
            pass

        def run(self, todo: list[str], emit, stop) -> None:
            assert todo == [str(f) for f in FILES]
            for i in self.order:
                emit(read[i])

    options = ScoreOptions(model_path=os.environ.get("VOICE_MONITOR_TEST_MODEL"))
    paths = [str(f) for f in FILES]
    first, _ = survey_baseline(Replay(list(range(len(FILES)))), options, paths, _StopFlag(), None)
    assert first is not None and first.voices is not None and len(first.voices.voices) >= 2
    rng = np.random.default_rng(0)
    for _ in range(5):
        again, _ = survey_baseline(Replay(list(rng.permutation(len(FILES)))), options, paths, _StopFlag(), None)
        assert again == first and hash(again) == hash(first)


def test_training_measures_the_run_with_the_monitors_arithmetic(monkeypatch) -> None:
    """``training.prosody``'s `score` setting (``run_prior``, ``run_voice_priors``, ``voice_stats``) gives each
    window the mean and spread the monitor standardises its head inputs by: the run's statistics pulled towards
    the training windows' (``ProsodyHead.shrunk``), the nearest voice group's towards those, and (speaker turns
    on: each window keyed by its speaker) the speaker's own statistics towards the file's, the file's towards
    that prior."""
    from monitor.batch.score import FileScorer, ScoreOptions
    from monitor.inference import prosody
    from training.prosody import run_prior, run_voice_priors, voice_stats

    options = ScoreOptions(model_path=os.environ.get("VOICE_MONITOR_TEST_MODEL"), keep_measures=True)
    surveyed = FileScorer(replace(options, max_windows=20))
    first = [surveyed.score(str(f)) for f in FILES]
    assert all(r.measures is not None for r in first), "short clips: read whole"
    base = Baseline.from_survey([r.log_mean for r in first], [r.moments for r in first], BaselineOptions(), True)
    assert base is not None and base.stats is not None and base.voices is not None
    seen: list[tuple[str, np.ndarray, np.ndarray]] = []
    depth = [0]
    standardiser = prosody.VoiceStats.standardiser

    def spy(self, key, prior):  # the outer call: the window's own (it calls itself for the session)
        depth[0] += 1
        try:
            mean, std = standardiser(self, key, prior)
        finally:
            depth[0] -= 1
        if not depth[0]:
            seen.append((key, np.asarray(mean), np.asarray(std)))
        return mean, std

    monkeypatch.setattr(prosody.VoiceStats, "standardiser", spy)
    scorer = FileScorer(replace(options, baseline=base), classifier=surveyed.classifier)
    for f in FILES:
        scorer.score(str(f))
    measures = [m for r in first for m in r.measures]
    assert len(seen) == len(measures) and all(k for k, _, _ in seen), "every window keyed by its speaker"
    x = np.array([m.functionals for m in measures])
    vectors = np.array([m.vector if m.vector is not None else np.zeros(48) for m in measures])
    clip = np.array([i for i, r in enumerate(first) for _ in r.measures])
    head = surveyed.classifier.voice_head
    prior = run_prior(x, base.stats.files, np.asarray(head.mean), np.asarray(head.std), head.functional_dims)
    prior = run_voice_priors(x, clip, vectors, np.ones(len(x), dtype=bool), *prior)
    mean, std = voice_stats(x, clip, np.arange(len(x)), *prior, levels=2)
    got_mean, got_std = np.array([m for _, m, _ in seen]), np.array([s for _, _, s in seen])
    assert (np.abs(mean - got_mean) / got_std).max() < 1e-3
    assert np.abs(np.log(std / got_std)).max() < 1e-3
    one = voice_stats(x, clip, np.arange(len(x)), *prior, levels=1)[0]
    assert (np.abs(one - got_mean) / got_std).max() > 0.01, "one level would not be the monitor's"


def test_the_survey_reads_speaker_turns_only_when_something_uses_them() -> None:
    """The survey runs the speaker encoder for the run's voices (in the speaker space: not with ``lda = false``)
    or for files the scoring will judge again from what the survey read (``keep``); otherwise it reads without
    speaker turns, as it did before the run's voices, and the baseline has no voices."""
    from monitor.batch.cli import _StopFlag, survey_baseline
    from monitor.batch.score import FileScorer, ScoreOptions

    class Recording:  # a real local executor that keeps the options it was given
        def __init__(self) -> None:
            self.used: list[ScoreOptions] = []

        def use(self, options: ScoreOptions, verb: str = "scoring") -> None:
            self.used.append(options)

        def run(self, todo: list[str], emit, stop) -> None:
            scorer = FileScorer(self.used[-1])
            for path in todo:
                emit(scorer.score(path))

    options = ScoreOptions(model_path=os.environ.get("VOICE_MONITOR_TEST_MODEL"))
    no_voices = replace(options, speakers=replace(options.speakers, run_voices=False))
    no_lda = replace(options, speakers=replace(options.speakers, lda=False))
    paths = [str(f) for f in FILES[::3]]
    for scoring, keep, turns, grouped in ((options, False, True, True), (no_voices, False, False, False),
                                          (no_voices, True, True, False), (no_lda, False, False, False)):
        executor = Recording()
        base, _ = survey_baseline(executor, scoring, paths, _StopFlag(), None, keep)
        assert base is not None and base.stats is not None
        assert executor.used[-1].speakers.enabled is turns, (scoring.speakers, keep)
        assert (base.voices is not None) is grouped, (scoring.speakers, keep)
