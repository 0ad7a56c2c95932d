"""Run health for the user: lost microphone, reconnects, missing audio, outputs that cannot be written.

``HealthWatcher`` polls the source and the sinks a few times a second and turns each change into one
line (headless mode prints it to stderr at once, with the time); ``current`` is what the dashboard shows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any


def _stamp(line: str) -> str:
    return f"{datetime.now().strftime('%H:%M:%S')} voice-monitor: {line}"


class HealthWatcher:
    def __init__(self, source: Any, sinks: Sequence[Any], emit: Callable[[str], None] | None = None,
                 poll_s: float = 0.2) -> None:
        self.source = source
        self.sinks = [s for s in sinks if hasattr(s, "state")]
        self.emit = emit
        self.poll_s = poll_s
        self._error: str | None = None
        self._reconnects = 0
        self._gaps = 0
        self._problems: dict[int, str | None] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def current(self) -> str:
        """Problems now (for the dashboard), one per line; '' when all is well."""
        lines = [self.source.error] if self.source.error else []
        for sink in self.sinks:
            st = sink.state()
            if st.problem:
                lines.append(f"{sink.path}: {st.problem}; {st.pending} rows wait for space")
        return "\n".join(lines)

    def check(self) -> list[str]:
        """The changes since the last check, as lines; also sent to ``emit``."""
        with self._lock:
            lines = self._source_changes() + self._sink_changes()
        if self.emit is not None:
            for line in lines:
                self.emit(_stamp(line))
        return lines

    def _source_changes(self) -> list[str]:
        lines = []
        error, reconnects, gaps = self.source.error, self.source.reconnects, self.source.clock.gaps
        if error and error != self._error:
            lines.append(error)
        self._error = error
        if reconnects > self._reconnects:
            lines.append("microphone reconnected")
            self._reconnects = reconnects
        for gap in gaps[self._gaps:len(gaps)]:
            lines.append(f"no audio for {gap.seconds:.1f} s ({gap.reason}); the CSV marks the gap")
        self._gaps = len(gaps)
        return lines

    def _sink_changes(self) -> list[str]:
        lines = []
        for i, sink in enumerate(self.sinks):
            st, before = sink.state(), self._problems.get(i)
            if st.problem and st.problem != before:
                lines.append(f"cannot write {sink.path}: {st.problem}; rows wait in memory and are written when "
                             "space is freed")
            elif before and not st.problem:
                lines.append(f"{sink.path}: writing again ({st.lost} rows lost so far)")
            self._problems[i] = st.problem
        return lines

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.check()

    def stop(self) -> None:
        """Stop polling and report what changed last (e.g. rows that could not be written at the end)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self.check()
