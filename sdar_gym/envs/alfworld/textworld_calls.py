"""One guard for every call into TextWorld and Fast Downward that touches process-wide state.

Fast Downward's translator sets ``sys.argv`` (its option parser reads it), keeps its options in
module globals and swaps ``sys.stdout`` to capture its log; TextWorld's grammar parser is not
re-entrant either. So two envs loading games at once in one process (threads of an env server)
corrupt each other, and a caller's ``sys.argv`` is left rewritten. :func:`textworld_call`
serializes these calls process-wide and puts the globals back afterwards. The translator's log
capture is narrowed to the translating thread, so other threads' output is not swallowed.

The planner's search itself (``replan``) runs in each PDDL env's private copy of ``libdownward``
and touches no Python global, so it runs outside the lock (see ``TextWorldEngine.plan``).
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
import threading
from collections.abc import Iterator

_LOCK = threading.RLock()


def _new_lock_in_child() -> None:
    """A forked child (the planner's process) starts with only the forking thread: a lock another
    thread held at the fork would never be released there."""
    global _LOCK
    _LOCK = threading.RLock()


os.register_at_fork(after_in_child=_new_lock_in_child)


class _RoutedStdout:
    """``sys.stdout`` while Fast Downward captures its translator's log: writes from the capturing
    thread go to the capture, every other thread's to the stream that was there before."""

    def __init__(self, capture: io.StringIO, previous, owner: int) -> None:
        self.capture, self.previous, self.owner = capture, previous, owner

    def write(self, text: str) -> int:
        return (self.capture if threading.get_ident() == self.owner else self.previous).write(text)

    def __getattr__(self, name: str):
        return getattr(self.previous, name)


class _CaptureOwnThread(list):
    """Stands in for ``fast_downward.interface.CapturingStdout``, which points ``sys.stdout`` at a
    StringIO and so swallows what every other thread prints meanwhile (an env server's log lines
    while one of its envs compiles a game). Same interface: the lines of its own thread's output."""

    def __enter__(self) -> "_CaptureOwnThread":
        self._previous, self._capture = sys.stdout, io.StringIO()
        sys.stdout = _RoutedStdout(self._capture, self._previous, threading.get_ident())
        return self

    def __exit__(self, *exc) -> None:
        self.extend(self._capture.getvalue().splitlines())
        sys.stdout = self._previous


@functools.cache
def _capture_own_thread_only() -> None:
    """Install :class:`_CaptureOwnThread` in Fast Downward, once per process (TextWorld engine steps call this)."""
    try:
        from fast_downward import interface
    except ImportError:  # ALFWorld's extra is not installed: nothing to route
        return
    interface.CapturingStdout = _CaptureOwnThread  # looked up by name at each pddl2sas call


@contextlib.contextmanager
def textworld_call() -> Iterator[None]:
    """Hold the process-wide TextWorld lock; restore ``sys.argv``, ``sys.stdout`` and the cwd on exit."""
    _capture_own_thread_only()
    with _LOCK:
        argv, stdout, cwd = list(sys.argv), sys.stdout, os.getcwd()
        try:
            yield
        finally:
            sys.argv[:] = argv
            sys.stdout = stdout
            if os.getcwd() != cwd:
                os.chdir(cwd)


_FREE_LIBS: list = []
"""Copies of ``libdownward`` given back by closed planners, ready for the next one."""


def acquire_downward_lib():
    """A private copy of Fast Downward's library (TextWorld loads one per env and never unloads it).

    Closed planners give theirs back (:func:`release_downward_lib`), so a process holds at most as
    many copies as it ever had planners open at once. Unloading (``dlclose``) is not an option: a
    later ``dlopen`` of a fresh copy can crash the process.
    """
    import fast_downward

    with textworld_call():
        return _FREE_LIBS.pop() if _FREE_LIBS else fast_downward.load_lib()


def release_downward_lib(lib) -> None:
    """Free the planning task a library copy holds and keep the copy for reuse."""
    with textworld_call():
        lib.cleanup()
        _FREE_LIBS.append(lib)
