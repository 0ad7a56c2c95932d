"""Progress on stderr: a Rich bar (files, audio rate, ETA) on a terminal, plain lines otherwise."""

from __future__ import annotations

import time
from typing import Any, TextIO


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


class ProgressReporter:
    """``mode``: "auto" (Rich bar if ``stream`` is a terminal, else plain), "plain" or "none".

    Plain mode prints one line at most every ``plain_every_s`` seconds (the caller prints the summary).
    """

    def __init__(
        self, mode: str, total: int, stream: Any, start: float | None = None, plain_every_s: float = 5.0
    ) -> None:
        self.total = total
        self.stream: TextIO = stream
        self.start = start if start is not None else time.perf_counter()
        self.done = 0
        self.failed = 0
        self.audio_s = 0.0
        self.untimed = 0  # rows that took no time of this run's (``advance(timed=False)``): not in rates or ETA
        self.untimed_audio_s = 0.0
        self.plain_every_s = plain_every_s
        self._last_plain = self.start
        is_tty = bool(getattr(stream, "isatty", lambda: False)())
        if mode == "auto":
            mode = "bar" if is_tty else "plain"
        self.mode = mode if total > 0 else "none"
        self._progress: Any = None
        self._task: Any = None

    # --- rates ---------------------------------------------------------------------------------------
    def rate_text(self, short: bool = False) -> str:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        audio_s, done = self.audio_s - self.untimed_audio_s, self.done - self.untimed
        if short:
            return f"{audio_s / elapsed:.0f}x real time"
        return f"{audio_s / elapsed:.0f}x real time, {done / elapsed:.1f} files/s"

    def eta_s(self) -> float | None:
        timed = self.done - self.untimed
        if timed == 0:
            return None
        elapsed = time.perf_counter() - self.start
        return elapsed / timed * (self.total - self.done)

    # --- context -------------------------------------------------------------------------------------
    def __enter__(self) -> ProgressReporter:
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]scoring"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TextColumn("{task.fields[failed]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                refresh_per_second=4,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("score", total=self.total, rate="", failed="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def advance(self, audio_s: float, failed: bool, timed: bool = True) -> None:
        """A row written. ``timed=False``: a row that took none of this run's time (a file the survey read whole,
        judged again at once): counted, but not taken for a file scored in no time by the rates and the ETA."""
        self.done += 1
        self.audio_s += audio_s
        self.failed += bool(failed)
        if not timed:
            self.untimed += 1
            self.untimed_audio_s += audio_s
        if self._progress is not None:
            rate = self.rate_text(short=True) if self.done > self.untimed else ""  # none measured yet
            fields = {"rate": rate, "failed": f"[red]{self.failed} failed" if self.failed else ""}
            if timed:
                self._progress.update(self._task, advance=1, **fields)
            else:  # rich's speed (its ETA) from the timed rows alone: its clock starts again after this one
                self._progress.reset(self._task, completed=self.done, **fields)
                self._progress.update(self._task, completed=self.done)  # marks it finished, if this was the last
        elif self.mode == "plain":
            now = time.perf_counter()
            if now - self._last_plain >= self.plain_every_s and self.done < self.total:
                self._plain_line()

    def _plain_line(self) -> None:
        self._last_plain = time.perf_counter()
        eta = self.eta_s()
        line = f"scored {self.done}/{self.total} files"
        if self.failed:
            line += f" ({self.failed} failed)"
        line += f", {self.rate_text()}"
        if eta is not None and self.done < self.total:
            line += f", ETA {_clock(eta)}"
        print(line, file=self.stream, flush=True)
