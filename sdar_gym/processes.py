"""Child-process lifetime: a worker process leaves as soon as the process that started it is gone.

A parent killed with SIGKILL (or by a scheduler) cannot shut its pool down, and a worker blocked in a
long call never notices on its own: it runs on as an orphan, holding a core. The watch runs in a
daemon thread, so it fires even while the worker's main thread is inside C code that released the GIL.
"""
from __future__ import annotations

import os
import threading
import time


def exit_with_parent(parent: int | None = None, poll_s: float = 0.5) -> None:
    """End this process (``os._exit(1)``) once ``parent`` (default: the current parent) has exited."""
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
