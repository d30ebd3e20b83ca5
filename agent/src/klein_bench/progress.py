"""Progress reporting for long work (loading, warm-up, each timed run).

Runners talk to a `Progress`; the CLI hands them a `RichProgress` (bars on the terminal),
tests a `SilentProgress` (which records what it was told). A stage is one bar: `stage()`
ends the previous one and starts the next, `advance()` moves the current one (by steps,
say), `done()` ends the last.
"""

from __future__ import annotations

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


class RichProgress:
    """One rich bar per stage; finished bars stay on screen with their elapsed time."""

    def __init__(self, console: Console | None = None) -> None:
        self._bars = _RichBars(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task: TaskID | None = None
        self._started = False

    def _finish_current(self) -> None:
        if self._task is not None:
            task = self._bars.tasks[self._bars.task_ids.index(self._task)]
            total = task.total if task.total is not None else max(task.completed, 1)
            self._bars.update(self._task, total=total, completed=total)
            self._bars.stop_task(self._task)
            self._task = None

    def stage(self, name: str, total: int | None = None) -> None:
        if not self._started:
            self._bars.start()
            self._started = True
        self._finish_current()
        self._task = self._bars.add_task(name, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._bars.advance(self._task, amount)

    def note(self, message: str) -> None:
        self._bars.console.print(message)

    def done(self) -> None:
        self._finish_current()
        if self._started:
            self._bars.stop()
            self._started = False
