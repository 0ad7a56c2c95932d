"""``score --voice-group``: files known to hold one voice share what the normalisation learns of it.

Real RAVDESS clips (tests/data), the shipped model with its normalisation entry, the CLI as a subprocess."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_cli import run

from monitor.batch.score import FileScorer, ScoreOptions
from monitor.batch.voices import parse_voice_group, voice_units
from monitor.errors import ConfigError
from monitor.speakers.cluster import SpeakerOptions


def test_units_follow_the_spec() -> None:
    paths = ["b/2.wav", "a/Actor_01/x.wav", "b/1.wav", "a/Actor_02/y.wav", "a/Actor_01/w.wav", "c.wav"]
    assert voice_units(paths, "file") == [[p] for p in paths]
    assert voice_units(paths, "folder") == [["b/1.wav", "b/2.wav"], ["a/Actor_01/w.wav", "a/Actor_01/x.wav"],
                                            ["a/Actor_02/y.wav"], ["c.wav"]]
    by_actor = voice_units(paths, r"re:Actor_(\d+)")
    assert by_actor == [["b/2.wav"], ["a/Actor_01/w.wav", "a/Actor_01/x.wav"], ["b/1.wav"], ["a/Actor_02/y.wav"],
                        ["c.wav"]]  # a path the pattern does not match is a group of its own
    digits = voice_units(["x1/a.wav", "y1/b.wav", "z2/c.wav"], r"re:\d")
    assert digits == [["x1/a.wav", "y1/b.wav"], ["z2/c.wav"]]  # no group in the pattern: its whole match


@pytest.mark.parametrize("spec, says", [("speaker", "file, folder or re:PATTERN"), ("re:(", "regular expression"),
                                        ("re:", "needs a pattern")])
def test_a_bad_spec_is_one_line(spec: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says.replace("(", r"\(")) as exc:
        parse_voice_group(spec)
    assert "\n" not in str(exc.value)


def test_the_cli_refuses_a_bad_spec_in_one_line(tmp_path: Path, clips: list[Path]) -> None:
    proc = run(["score", str(clips[0]), "--voice-group", "speakers", "--transcriber", "none"])
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "--voice-group" in err and "Traceback" not in err


def _session(tmp_path: Path, clips: list[Path], name: str, picks: tuple[int, ...]) -> list[Path]:
    folder = tmp_path / name
    folder.mkdir()
    out = []
    for i, k in enumerate(picks):
        dst = folder / f"{i:02d}_{clips[k].name}"
        shutil.copy(clips[k], dst)
        out.append(dst)
    return out


def test_a_group_carries_what_it_learnt_of_the_voice_into_its_next_files(tmp_path: Path, clips: list[Path],
                                                                         model_path: Path) -> None:
    files = _session(tmp_path, clips, "actor", (1, 2, 3, 1))
    # Speaker turns off: alone, a file's windows are then normalised by the file's profile alone, as a group's
    # are by the group's (with turns on, a file alone keys them by its speaker labels).
    quiet = SpeakerOptions(enabled=False)
    alone = FileScorer(ScoreOptions(model_path=str(model_path), voice_group="file", speakers=quiet))
    grouped = FileScorer(ScoreOptions(model_path=str(model_path), voice_group="folder", speakers=quiet))
    a = alone.score_group([str(f) for f in files])
    g = grouped.score_group([str(f) for f in files])
    assert [r.path for r in g] == [str(f) for f in files] and not any(r.failed for r in g)
    # The first file knows nothing before it: the same either way.
    np.testing.assert_allclose([e.probabilities["angry"] for e in g[0].events],
                               [e.probabilities["angry"] for e in a[0].events], atol=1e-6)
    # Later files start from what the group has heard: the voice is better known, and the judgement moves.
    for ra, rg in zip(a[1:], g[1:], strict=True):
        assert rg.events[0].adapted > ra.events[0].adapted
    moved = max(abs(rg.probabilities[lab] - ra.probabilities[lab]) for ra, rg in zip(a[1:], g[1:], strict=True)
                for lab in ra.probabilities)
    assert moved > 0.01
    # The same clip heard again at the end of the group is judged against more of the voice than at the start.
    assert g[3].events[0].adapted > g[0].events[0].adapted
    # Without normalisation a group changes nothing.
    off = FileScorer(ScoreOptions(model_path=str(model_path), voice_group="folder", normalise=False))
    plain = FileScorer(ScoreOptions(model_path=str(model_path), voice_group="file", normalise=False))
    for ro, rp in zip(off.score_group([str(f) for f in files]), plain.score_group([str(f) for f in files]),
                      strict=True):
        assert ro.probabilities == rp.probabilities


def _rows(path: Path) -> dict[str, dict]:
    with path.open() as f:
        return {Path(r["path"]).name + "@" + Path(r["path"]).parent.name: r for r in csv.DictReader(f)}


def test_score_cli_groups_by_folder_with_several_workers(tmp_path: Path, clips: list[Path], model_path: Path) -> None:
    one = _session(tmp_path, clips, "one", (1, 2, 3))
    two = _session(tmp_path, clips, "two", (4, 5, 6))
    out = tmp_path / "grouped.csv"
    proc = run(["score", str(tmp_path / "one"), str(tmp_path / "two"), "--voice-group", "folder", "-j", "2",
                "--transcriber", "none", "--model", str(model_path), "--progress", "none", "--out", str(out),
                "--baseline", "off"])  # the scorer below judges each group alone; tests/test_baseline.py the rest
    assert proc.returncode == 0, proc.stderr.decode()
    rows = _rows(out)
    assert len(rows) == 6
    scorer = FileScorer(ScoreOptions(model_path=str(model_path), voice_group="folder"))
    for files in (one, two):
        for res in scorer.score_group([str(f) for f in files]):
            row = rows[Path(res.path).name + "@" + Path(res.path).parent.name]
            assert row["emotion"] == res.emotion
            assert float(row["p_" + res.emotion]) == pytest.approx(res.probabilities[res.emotion], abs=1e-4)


def test_a_group_of_one_file_is_scored_as_the_file_alone(clips: list[Path], model_path: Path) -> None:
    """A path the pattern does not match, or a group's file rerun alone after a crash, is a file alone: with
    speaker turns on its windows are keyed by their speaker labels (the cluster path scores it so)."""
    path = str(clips[1])
    alone = FileScorer(ScoreOptions(model_path=str(model_path), voice_group="file")).score_group([path])[0]
    single = FileScorer(ScoreOptions(model_path=str(model_path), voice_group="folder")).score_group([path])[0]
    assert any(e.speaker for e in alone.events)  # turns on: the windows carry a speaker label
    assert [e.probabilities for e in single.events] == [e.probabilities for e in alone.events]
    assert [e.adapted for e in single.events] == [e.adapted for e in alone.events]


def test_a_pattern_whose_group_is_absent_or_empty_leaves_the_path_alone() -> None:
    paths = ["a/Actor_01/x.wav", "a/Actor_01/y.wav", "b/x.wav", "b/z.wav", "c.wav"]
    # the first group takes no part in the match of b/x.wav (the other branch matched): not a voice id
    assert voice_units(paths, r"re:Actor_(\d+)|(x)") == [["a/Actor_01/x.wav", "a/Actor_01/y.wav"], ["b/x.wav"],
                                                         ["b/z.wav"], ["c.wav"]]
    # a group that can match nothing matches nothing after Actor_ without digits: those paths are not one voice
    assert voice_units(["e/Actor_x.wav", "f/Actor_y.wav", "Actor_3.wav", "d/Actor_3.wav"], r"re:Actor_(\d*)") == [
        ["e/Actor_x.wav"], ["f/Actor_y.wav"], ["Actor_3.wav", "d/Actor_3.wav"]]
