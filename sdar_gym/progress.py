"""The one rich progress bar every long command shows (data generation, indexing, SFT, training)."""
from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text


class _Status(ProgressColumn):
    """A task's ``status`` field (e.g. the latest loss), empty when the task has none."""

    def render(self, task: Any) -> Text:
        return Text(str(task.fields.get("status", "")))


def progress_bar(disable: bool = False, **kwargs: Any) -> Progress:
    """Description, bar, done/total, elapsed, remaining, status; ``kwargs`` go to :class:`rich.progress.Progress`."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), _Status())
    return Progress(*columns, disable=disable, **kwargs)
