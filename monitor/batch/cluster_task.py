"""The worker side of ``voice-monitor score --cluster``: the task a Dask worker runs for one file.

Dask sends the task by reference (this module and function name), so every worker needs voice-monitor
installed. The pipeline (TFLite classifier, optional recogniser) is built at the first file a worker thread
scores and kept for the next ones, keyed by the scoring options: one model load per worker (run workers with
``--nthreads 1``: the TFLite interpreter is not shared between threads, each thread builds its own).

Workers open files by the path the client sends (made absolute on the client): the files must be on a
filesystem every worker sees at the same path. A path a worker cannot see becomes a failed result naming the
worker's host, never a lost file.
"""

from __future__ import annotations

import copy
import os
import socket
import threading
from dataclasses import replace

from monitor.batch.score import FileResult, FileScorer, ScoreOptions, WorkerInitError, _native_stderr_silenced, one_line
from monitor.errors import MonitorError

_local = threading.local()
_loads_lock = threading.Lock()
_loads = 0  # pipelines built in this process (read by tests and the benchmark through Client.run)


def pipeline_loads() -> int:
    return _loads


def _scorer(options: ScoreOptions) -> FileScorer:
    """This thread's pipeline for ``options``, built once. A pipeline that cannot be built raises
    WorkerInitError for every file (the client stops the run), without retrying the load each time. The run's
    baseline and the survey's window limit are not part of what is built (every run has its own baseline: a
    worker serving run after run would keep one more pipeline per run): the cached pipeline scores with them."""
    global _loads
    cache: dict[ScoreOptions, FileScorer | str] | None = getattr(_local, "scorers", None)
    if cache is None:
        cache = _local.scorers = {}
    built = replace(options, baseline=None, max_windows=0)
    found = cache.get(built)
    if found is None:
        try:
            with _native_stderr_silenced():
                found = FileScorer(built)
            with _loads_lock:
                _loads += 1
        except MonitorError as exc:
            found = one_line(exc)
        except Exception as exc:
            found = f"could not build the pipeline ({type(exc).__name__}: {one_line(exc)})"
        cache[built] = found
    if isinstance(found, str):
        raise WorkerInitError(f"on the Dask worker at {socket.gethostname()}: {found}")
    if options != built:
        found = copy.copy(found)  # the same classifier, transcriber and encoder; this task's options
        found.options = options
    return found


def score_files(paths: list[str], options: ScoreOptions, one_voice: bool = False) -> list[FileResult]:
    """Score ``paths`` (absolute) one after another on this worker; never raises for a bad file. ``one_voice``:
    the paths are the files of one ``--voice-group`` group (else a chunk of unrelated files, each alone)."""
    scorer = _scorer(options)
    if one_voice and len(paths) > 1 and all(map(os.path.lexists, paths)):
        return scorer.score_group(paths)  # the files of one voice group (monitor.batch.voices), in order
    results = []
    for path in paths:
        if os.path.lexists(path):
            results.append(scorer.score(path))
        else:
            results.append(
                FileResult.failure(
                    path,
                    f"{path}: the Dask worker on {socket.gethostname()} cannot see this file (workers open files "
                    "by path: put them on a filesystem every worker mounts at the same path)",
                )
            )
    return results
