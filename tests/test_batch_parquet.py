"""``--format parquet``: the rows of the CSV run, read back with pandas, pyarrow and DuckDB; row groups and
part files written as rows arrive; a writer killed outright leaves whole rows and ``--resume`` finishes."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_batch import MODEL_ARGS, build_corpus, no_traceback, read_rows

REPO = Path(__file__).resolve().parents[1]
pd = pytest.importorskip("pandas", reason="pandas reads the Parquet output in these tests (pip install pandas)")
pq = pytest.importorskip("pyarrow.parquet", reason="--format parquet needs the cluster extra (pyarrow)")

from monitor.batch.parquet import ParquetRowWriter, done_paths, keep_windows_of, parts  # noqa: E402


def run_score(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "monitor.cli", "score", *args, *MODEL_ARGS, "--progress", "none"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def same_value(csv_value: str, value: object) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return csv_value == ""
    if isinstance(value, str):
        return csv_value == value
    return float(csv_value) == float(value)  # type: ignore[arg-type]


def check_same_rows(csv_rows: list[dict[str, str]], frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(csv_rows[0])
    records = {r["path"]: r for r in frame.to_dict("records")}
    assert len(records) == len(frame) == len(csv_rows)
    for row in csv_rows:
        got = records[row["path"]]
        bad = {c: (v, got[c]) for c, v in row.items() if not same_value(v, got[c])}
        assert not bad, (row["path"], bad)


def test_parquet_rows_equal_csv_rows(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    expected = build_corpus(root)
    csv_run = run_score(str(root), "-o", "files.csv", "-w", "windows.csv", "-j", "2", cwd=tmp_path)
    pq_run = run_score(str(root), "-o", "files.parquet", "-w", "windows.parquet", "-j", "2", cwd=tmp_path)
    no_traceback(pq_run.stderr)
    assert csv_run.returncode == pq_run.returncode == 1, pq_run.stderr  # the corpus has unreadable files
    files, windows = read_rows(tmp_path / "files.csv"), read_rows(tmp_path / "windows.csv")
    assert len(files) == len(expected)

    check_same_rows(files, pd.read_parquet(tmp_path / "files.parquet"))
    frame = pd.read_parquet(tmp_path / "windows.parquet")
    assert len(frame) == len(windows) > 0
    key = ["path", "start_s"]
    frame = frame.sort_values(key).reset_index(drop=True)
    ordered = sorted(windows, key=lambda r: (r["path"], float(r["start_s"])))
    for row, got in zip(ordered, frame.to_dict("records"), strict=True):
        assert all(same_value(v, got[c]) for c, v in row.items()), (row, got)

    table = pq.read_table(tmp_path / "files.parquet")  # pyarrow: typed columns
    assert str(table.schema.field("windows").type) == "int64"
    assert str(table.schema.field("p_angry").type) == "double"
    duckdb = pytest.importorskip("duckdb", reason="DuckDB is in the test extra")
    glob = str(tmp_path / "files.parquet" / "*.parquet")
    ((n, failed, scored),) = duckdb.sql(
        f"select count(*), count(*) filter (where duration_s is null), count(emotion) filter (where emotion <> '') "
        f"from read_parquet('{glob}')"
    ).fetchall()
    assert n == len(expected) and failed == sum(k == "bad" for k in expected.values())
    assert scored == sum(k == "good" for k in expected.values())


def rows(n: int, start: int = 0) -> list[dict]:
    return [{"path": f"f{i}.wav", "start_s": float(i), "x": i / 10} for i in range(start, start + n)]


def test_row_groups_and_parts_are_written_as_rows_arrive(tmp_path: Path) -> None:
    folder = tmp_path / "w.parquet"
    w = ParquetRowWriter(str(folder), ["path", "start_s", "x"], row_group_rows=3, part_s=3600)
    for r in rows(10):
        w.write([r])
    hidden = [n for n in os.listdir(folder) if n.startswith(".")]
    assert hidden and not parts(str(folder))  # 3 row groups on disk, in the open (hidden) part
    w.close()
    (part,) = parts(str(folder))
    meta = pq.ParquetFile(part).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3, 3, 3, 1]
    assert pd.read_parquet(folder)["path"].tolist() == [f"f{i}.wav" for i in range(10)]

    # a new part every part_s; appending (resume) continues the numbering and keeps the old parts
    w = ParquetRowWriter(str(folder), ["path", "start_s", "x"], append=True, row_group_rows=1, part_s=0)
    for r in rows(3, 10):
        w.write([r])
    w.close()
    assert len(parts(str(folder))) == 4
    assert sorted(pd.read_parquet(folder)["x"].tolist()) == [i / 10 for i in range(13)]
    assert not [n for n in os.listdir(folder) if n.startswith(".")]


def test_windows_part_is_closed_before_the_file_rows_part(tmp_path: Path) -> None:
    out = ParquetRowWriter(str(tmp_path / "f.parquet"), ["path", "x"], row_group_rows=1, part_s=0)
    win = ParquetRowWriter(str(tmp_path / "w.parquet"), ["path", "start_s", "x"], row_group_rows=1000, part_s=3600)
    out.before_part_close.append(win.roll)
    win.write(rows(2))  # buffered: no row group yet
    out.write([{"path": "f0.wav", "x": 1.0}])  # the file row's part closes: its windows go first
    assert len(parts(str(tmp_path / "w.parquet"))) == 1 and len(parts(str(tmp_path / "f.parquet"))) == 1


KILLED_WRITER = r"""
import os, sys
from monitor.batch.parquet import ParquetRowWriter
out = ParquetRowWriter(sys.argv[1], ["path", "error", "duration_s"], row_group_rows=1, part_s=3600)
out.write([{"path": "a.wav", "error": "", "duration_s": 1.0}])
out.roll()  # a closed part
out.write([{"path": "b.wav", "error": "", "duration_s": 2.0}])  # a row group in the open part
os.kill(os.getpid(), 9)
"""


def test_writer_killed_outright_leaves_whole_rows(tmp_path: Path) -> None:
    folder = tmp_path / "f.parquet"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(folder)], env=env)
    assert proc.returncode == -9
    assert any(n.endswith(".inprogress") for n in os.listdir(folder))  # the open part, without its footer
    assert pd.read_parquet(folder)["path"].tolist() == ["a.wav"]  # readers see whole rows only
    columns = ["path", "error", "duration_s"]
    assert done_paths(str(folder), columns) == {"a.wav"}  # --resume scores b.wav again
    w = ParquetRowWriter(str(folder), columns, append=True)
    w.write([{"path": "b.wav", "error": "", "duration_s": 2.0}])
    w.close()
    assert sorted(pd.read_parquet(folder)["path"]) == ["a.wav", "b.wav"]
    assert not any(n.startswith(".") for n in os.listdir(folder))


def test_resume_drops_failed_rows_and_orphan_windows(tmp_path: Path) -> None:
    fcols, wcols = ["path", "error", "duration_s"], ["path", "start_s"]
    out = ParquetRowWriter(str(tmp_path / "f.parquet"), fcols)
    out.write([{"path": "ok.wav", "error": "", "duration_s": 1.0}, {"path": "bad.wav", "error": "corrupt"}])
    out.write([{"path": "quiet.wav", "error": "no speech found", "duration_s": 3.0}])
    out.close()
    win = ParquetRowWriter(str(tmp_path / "w.parquet"), wcols)
    win.write([{"path": "ok.wav", "start_s": 0.0}, {"path": "unfinished.wav", "start_s": 0.0}])
    win.close()
    assert done_paths(str(tmp_path / "f.parquet"), fcols) == {"ok.wav", "bad.wav", "quiet.wav"}
    done = done_paths(str(tmp_path / "f.parquet"), fcols, retry_failed=True)
    assert done == {"ok.wav", "quiet.wav"}  # a file without speech was read: it is not retried
    assert sorted(pd.read_parquet(tmp_path / "f.parquet")["path"]) == ["ok.wav", "quiet.wav"]
    assert keep_windows_of(str(tmp_path / "w.parquet"), wcols, done) == 1
    assert pd.read_parquet(tmp_path / "w.parquet")["path"].tolist() == ["ok.wav"]


def test_parquet_usage_errors_are_one_line(tmp_path: Path) -> None:
    data = str(REPO / "tests" / "data")
    (tmp_path / "taken.parquet").write_text("a file")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    cases = [
        (["--format", "parquet"], "stdout"),
        (["-o", "a.parquet", "-w", "w.csv"], "both be Parquet"),
        (["-o", "taken.parquet"], "it is a file"),
        (["-o", "mine", "--format", "parquet"], "holds other files"),
    ]
    for args, message in cases:
        proc = run_score(data, *args, cwd=tmp_path)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and message in lines[-1] and "error: " in lines[-1], proc.stderr
        if not lines[0].startswith("usage:"):  # argparse prints its usage first; the run's checks one line
            assert len(lines) == 1, proc.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
