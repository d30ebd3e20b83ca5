"""Progress reporting for long work (loading, warm-up, each timed run).

Runners talk to a `Progress`; the CLI hands them a `RichProgress` (bars on the terminal),
tests a `SilentProgress` (which records what it was told). A stage is one bar: `stage()`
ends the previous one and starts the next, `advance()` moves the current one (by steps,
say), `done()` ends the last.

The bars must not slow the runs they show: rich redraws from a thread ten times a second,
and each redraw is milliseconds of Python that a timed generation would share the cores
and the GIL with. So `RichProgress` redraws when something changes (a new stage, a step,
at most every `REDRAW_S`), and keeps a spinner turning from a thread only while a stage
has no steps to show (importing, loading): never during warm-up or timed runs.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as _RichBars

# The shortest time between redraws: steps quicker than this move the bar on the next one.
REDRAW_S = 0.25
# How often the spinner and clock of a stage without steps are redrawn.
_TICK_S = 0.1


@runtime_checkable
class Progress(Protocol):
    def stage(self, name: str, total: int | None = None) -> None:
        """Start a new bar named `name` with `total` steps (None: no known length)."""

    def advance(self, amount: int = 1) -> None:
        """Move the current bar forward."""

    def note(self, message: str) -> None:
        """Print a line above the bars (a warning, a fact worth knowing)."""

    def done(self) -> None:
        """Finish the current bar and stop drawing."""

    def abandon(self) -> None:
        """Stop drawing after a failure: the unfinished bar goes, finished ones stay."""


class SilentProgress:
    """Draws nothing; keeps the events so tests can check what a runner reported."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    @property
    def stages(self) -> list[str]:
        return [str(value) for kind, value in self.events if kind == "stage"]

    @property
    def notes(self) -> list[str]:
        return [str(value) for kind, value in self.events if kind == "note"]

    def stage(self, name: str, total: int | None = None) -> None:
        self.events.append(("stage", name))

    def advance(self, amount: int = 1) -> None:
        self.events.append(("advance", amount))

    def note(self, message: str) -> None:
        self.events.append(("note", message))

    def done(self) -> None:
        self.events.append(("done", None))

    def abandon(self) -> None:
        self.events.append(("abandon", None))


class _Ticker(threading.Thread):
    """Redraws the bars while the current stage has no steps to move them; otherwise it
    waits on an event, costing nothing."""

    def __init__(self, bars: _RichBars) -> None:
        super().__init__(name="klein-bench-progress", daemon=True)
        self._bars = bars
        self._wanted = threading.Event()
        self._stopping = threading.Event()

    def run(self) -> None:
        while self._wanted.wait() and not self._stopping.is_set():
            self._bars.refresh()
            self._stopping.wait(_TICK_S)

    def ticking(self, wanted: bool) -> None:
        if wanted:
            self._wanted.set()
        else:
            self._wanted.clear()

    def stop(self) -> None:
        self._stopping.set()
        self._wanted.set()
        self.join()


class RichProgress:
    """One rich bar per stage; finished bars stay on screen with their elapsed time.

    After `done()` the next `stage()` starts a fresh display, so a runner can stop
    drawing while something else prints (a download's own progress bars).
    """

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._bars: _RichBars | None = None
        self._task: TaskID | None = None
        self._ticker: _Ticker | None = None
        self._drawn_at = 0.0

    def _new_bars(self) -> _RichBars:
        bars = _RichBars(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
            auto_refresh=False,
        )
        bars.start()
        self._ticker = _Ticker(bars)
        self._ticker.start()
        return bars

    def _finish_current(self) -> None:
        if self._bars is not None and self._task is not None:
            task = next(t for t in self._bars.tasks if t.id == self._task)
            if task.total is None:
                # A stage of unknown length shows as complete once it is over.
                self._bars.update(
                    self._task, total=max(task.completed, 1), completed=max(task.completed, 1)
                )
            self._bars.stop_task(self._task)
        self._task = None

    def stage(self, name: str, total: int | None = None) -> None:
        self._finish_current()
        if self._bars is None:
            self._bars = self._new_bars()
        # add_task draws the new bar.
        self._task = self._bars.add_task(name, total=total)
        self._drawn_at = time.monotonic()
        assert self._ticker is not None
        self._ticker.ticking(total is None)

    def advance(self, amount: int = 1) -> None:
        if self._bars is not None and self._task is not None:
            self._bars.advance(self._task, amount)
            now = time.monotonic()
            if now - self._drawn_at >= REDRAW_S:
                self._drawn_at = now
                self._bars.refresh()

    def note(self, message: str) -> None:
        self._console.print(message, markup=False, highlight=False)

    def done(self) -> None:
        self._finish_current()
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        if self._bars is not None:
            # Stopping draws the bars one last time, as they ended.
            self._bars.stop()
            self._bars = None

    def abandon(self) -> None:
        """Stop drawing after a failure: the unfinished bar goes, finished ones stay."""
        if self._bars is not None and self._task is not None:
            self._bars.remove_task(self._task)
        self._task = None
        self.done()
