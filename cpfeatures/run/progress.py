"""Progress of a long command: a live bar on a terminal, plain lines for a batch job's log.

A run under SLURM, nohup, CI or a pipe has no terminal: a live bar would print nothing
until the end (rich hides it) or garbage. There, one plain line goes to stderr when a
phase starts, every 30 seconds, at each tenth of the phase, and when it ends:

    2026-12-02 15:40:01 sites 120/3456 (3%) 58.2/min ETA 57m failed 1

``log_file`` receives the same lines (and, from the CLI, the final summary) in any mode.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import IO

__all__ = ["progress", "Progress", "Labelled", "MODES"]

#: How progress is shown: "auto" (a bar on a terminal, lines otherwise), "bar", "lines", "none".
MODES = ("auto", "bar", "lines", "none")


class _Phase:
    def __init__(self, name: str, total: int, completed: int):
        self.name, self.total, self.done, self.failures = name, total, completed, 0
        self.start_done = completed
        self.t0 = self.last = time.monotonic()
        self.last_tenth = -1


class Progress:
    """Phases with a total, advanced as items finish; shown by the subclasses."""

    def __init__(self, log: IO[str] | None = None):
        self.log = log
        self.phases: list[_Phase] = []

    def add(self, name: str, total: int, completed: int = 0) -> int:
        """Start a phase; returns its handle for :meth:`advance`."""
        self.phases.append(_Phase(name, total, completed))
        self._line(self.phases[-1], force=True)
        return len(self.phases) - 1

    def advance(self, task: int, n: int = 1, failures: int | None = None) -> None:
        phase = self.phases[task]
        phase.done += n
        if failures is not None:
            phase.failures = failures
        self._line(phase)

    def write(self, text: str) -> None:
        """A line for the log file (e.g. the final summary)."""
        if self.log is not None:
            self.log.write(text.rstrip("\n") + "\n")
            self.log.flush()

    # -- plain lines ----------------------------------------------------------------------
    @staticmethod
    def format(phase: _Phase) -> str:
        elapsed = time.monotonic() - phase.t0
        made = phase.done - phase.start_done
        rate = made / elapsed * 60 if elapsed > 0 and made else 0.0
        share = f" ({100 * phase.done / phase.total:.0f}%)" if phase.total else ""
        text = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {phase.name} {phase.done}/{phase.total}{share}"
        if rate:
            left = (phase.total - phase.done) / rate * 60
            text += f" {rate:.1f}/min ETA {_duration(left)}"
        if phase.failures:
            text += f" failed {phase.failures}"
        return text

    def _due(self, phase: _Phase, force: bool) -> bool:
        tenth = int(10 * phase.done / phase.total) if phase.total else 10
        now = time.monotonic()
        due = force or phase.done >= phase.total or tenth > phase.last_tenth or now - phase.last >= 30
        if due:
            phase.last, phase.last_tenth = now, tenth
        return due

    def _line(self, phase: _Phase, force: bool = False) -> None:
        if self.log is not None and self._due(phase, force):
            self.write(self.format(phase))


class _Lines(Progress):
    """Plain lines to stderr (and the log file)."""

    def _line(self, phase: _Phase, force: bool = False) -> None:
        if self._due(phase, force):
            text = self.format(phase)
            print(text, file=sys.stderr, flush=True)
            if self.log is not None:
                self.write(text)


class _Bar(Progress):
    """A live rich bar on the terminal (and plain lines in the log file)."""

    def __init__(self, bar, log=None):
        super().__init__(log)
        self.bar = bar
        self.tasks: list = []

    def add(self, name: str, total: int, completed: int = 0) -> int:
        self.tasks.append(self.bar.add_task(name, total=total, completed=completed, failures=0))
        return super().add(name, total, completed)

    def advance(self, task: int, n: int = 1, failures: int | None = None) -> None:
        kwargs = {"failures": failures} if failures is not None else {}
        self.bar.update(self.tasks[task], advance=n, **kwargs)
        super().advance(task, n, failures)


class Labelled(Progress):
    """Phases of one plate of a batch shown in the batch's own progress: ``"<plate> sites"``."""

    def __init__(self, inner: Progress, label: str):
        super().__init__(None)
        self.inner, self.label = inner, label

    def add(self, name: str, total: int, completed: int = 0) -> int:
        return self.inner.add(f"{self.label} {name}", total, completed)

    def advance(self, task: int, n: int = 1, failures: int | None = None) -> None:
        self.inner.advance(task, n, failures)

    def write(self, text: str) -> None:
        self.inner.write(text)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@contextlib.contextmanager
def progress(mode: "str | bool" = "auto", log_file: str | None = None):
    """A :class:`Progress` for ``mode`` (see :data:`MODES`; True = "auto", False = "none").

    An open :class:`Progress` is used as it is (a batch shows its plates in one view).
    """
    if isinstance(mode, Progress):
        yield mode
        return
    mode = {True: "auto", False: "none", None: "none"}.get(mode, mode)
    if mode not in MODES:
        raise ValueError(f"progress must be one of {MODES}, got {mode!r}")
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "lines"
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open(log_file, "a", encoding="utf-8")) if log_file else None
        if mode == "none":
            yield Progress(log)
        elif mode == "lines":
            yield _Lines(log)
        else:
            from rich.progress import (BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            from rich.progress import Progress as RichProgress
            from rich.text import Text

            class RateColumn(ProgressColumn):
                """Items per minute, from rich's moving speed estimate."""

                def render(self, task):
                    speed = task.finished_speed or task.speed
                    return Text("-- /min" if not speed else f"{speed * 60:.1f}/min")

            columns = [TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                       TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                       TextColumn("[red]failed {task.fields[failures]}")]
            with RichProgress(*columns, transient=False) as bar:
                yield _Bar(bar, log)
