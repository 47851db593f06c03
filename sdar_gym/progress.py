"""The one progress display every long command shows (data generation, indexing, SFT, training).

Rich draws a live bar on a terminal, but when stderr is a file or a pipe (``nohup``, CI, a job
log) its live display prints nothing until the end, so a long stage looks hung. ``StageProgress``
keeps rich's bar where rich can draw it and otherwise prints one plain line per stage update, at
most every ``every_s`` seconds (and always at the start and the end of a stage).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import Any, TypeVar

T = TypeVar("T")

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text


class _Status(ProgressColumn):
    """A task's ``status`` field (e.g. the latest loss), empty when the task has none."""

    def render(self, task: Any) -> Text:
        return Text(str(task.fields.get("status", "")))


class StageProgress:
    """``with StageProgress(enabled) as p: s = p.add("stage", total); p.update(s, advance=1, status="...")``."""

    def __init__(self, enabled: bool = True, every_s: float = 10.0, stream: Any = None) -> None:
        self.enabled = enabled
        self.every_s = every_s
        self.stream = stream or sys.stderr
        self._console = Console(file=self.stream)
        self._live = enabled and self._console.is_terminal  # rich's own test for drawing a live bar
        self._bar: Progress | None = None
        self._stages: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> StageProgress:
        if self._live:
            columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), _Status())
            self._bar = Progress(*columns, console=self._console, transient=False).__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def add(self, description: str, total: int | None = None, completed: int = 0, status: str = "") -> int:
        sid = len(self._stages)
        self._stages[sid] = {"description": description, "total": total, "completed": completed, "status": status, "start": time.perf_counter(), "printed": 0.0}
        if self._bar is not None:
            self._stages[sid]["rich"] = self._bar.add_task(description, total=total, completed=completed, status=status)
        self._print(sid, force=True)
        return sid

    def update(self, sid: int, advance: int = 0, completed: int | None = None, total: int | None = None, status: str | None = None) -> None:
        stage = self._stages[sid]
        stage["completed"] = stage["completed"] + advance if completed is None else completed
        stage["total"] = stage["total"] if total is None else total
        stage["status"] = stage["status"] if status is None else status
        if self._bar is not None:
            self._bar.update(stage["rich"], completed=stage["completed"], total=stage["total"], status=stage["status"])
        self._print(sid, force=stage["total"] is not None and stage["completed"] >= stage["total"])

    def line(self, text: str) -> None:
        """A message printed above the bar (terminal) or as its own line (log)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def _print(self, sid: int, force: bool = False) -> None:
        if not self.enabled or self._bar is not None:
            return
        stage, now = self._stages[sid], time.perf_counter()
        if not force and now - stage["printed"] < self.every_s:
            return
        stage["printed"] = now
        done, total = stage["completed"], stage["total"]
        count = f"{done}/{total} ({100 * done / total:.0f}%)" if total else f"{done}"
        elapsed = now - stage["start"]
        eta = f", about {elapsed / done * (total - done):.0f}s left" if total and 0 < done < total else ""
        status = f"  {stage['status']}" if stage["status"] else ""
        print(f"[{stage['description']}] {count}, {elapsed:.0f}s elapsed{eta}{status}", file=self.stream, flush=True)


def track(items: Iterable[T], description: str, total: int | None = None, enabled: bool = True) -> Iterator[T]:
    """Yield ``items`` while one :class:`StageProgress` stage counts them (like :func:`rich.progress.track`)."""
    with StageProgress(enabled) as bar:
        stage = bar.add(description, total=len(items) if total is None and isinstance(items, Sized) else total)
        for item in items:
            yield item
            bar.update(stage, advance=1)
