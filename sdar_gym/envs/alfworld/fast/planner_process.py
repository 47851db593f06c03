"""TextWorld's planner in a child process, so that a search that is late can be stopped.

Fast Downward's search is a C call that Python cannot interrupt. Run in a thread, a late search
kept its TextWorld env, its copy of the library and a core until it ended, minutes later on some
real games, and grew all the while (about 4 MB/s on ``pick_two_obj_and_place-Knife-None-Drawer-18``):
a server that made, reset and closed envs on such games grew without end. A child process is
killed the moment its answer is late, and everything it held goes with it.

The child is forked (TextWorld is imported in the parent first, so it starts in milliseconds and
the caller's ``__main__`` is not run again, as spawn or forkserver would). It takes only what it
needs from the parent: the TextWorld lock is reset in it (``textworld_calls``), and it exits when
its parent dies. Parent and child exchange JSON (no pickle).
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import stat
import sys
import time
import weakref
from pathlib import Path

from sdar_gym.core import DataError
from sdar_gym.processes import exit_with_parent


def serve(conn, game_file: str, parent: int) -> None:
    """The child: load the game, then answer each request ``{"reset", "steps"}`` with ``{"plan"}`` or ``{"error"}``."""
    from sdar_gym.envs.alfworld.textworld_engine import TextWorldEngine

    _let_go_of_sockets(keep=conn.fileno())
    exit_with_parent(parent, poll_s=1.0)  # even in the middle of a search (which releases the GIL)
    engine, error = TextWorldEngine(), None
    try:
        engine.load(Path(game_file))
    except Exception as e:  # noqa: BLE001  (reported to the parent with each request)
        error = f"{type(e).__name__}: {e}"
    while True:
        try:
            request = json.loads(conn.recv_bytes())
        except EOFError:
            return
        try:
            if error:
                raise DataError(error)
            if request["reset"]:
                engine.reset()
            for command in request["steps"]:
                engine.step(command)
            reply = {"plan": engine.plan()}
        except Exception as e:  # noqa: BLE001
            reply = {"error": f"{type(e).__name__}: {e}"}
        conn.send_bytes(json.dumps(reply).encode())


def _let_go_of_sockets(keep: int) -> None:
    """Drop the parent's sockets that the fork copied (a server's client connections, other planners'
    pipes). A copy held here kept a connection open that the parent had closed: the client's next
    request on it went unanswered, and was reset when this child was killed. Each is replaced by
    /dev/null rather than closed, so that no Python object here can close a reused fd number."""
    null = os.open(os.devnull, os.O_RDWR)
    for name in os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"):
        fd = int(name)
        try:
            if fd not in (keep, null) and stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.dup2(null, fd)
        except OSError:  # the listing's own fd, gone by now
            pass
    os.close(null)


class PlannerProcess:
    """TextWorld's planner for one game, in a child process, brought to the caller's state by the commands it is sent."""

    def __init__(self, game_file: Path) -> None:
        import sdar_gym.envs.alfworld.textworld_engine  # noqa: F401  (imported once here, not in every child)
        import textworld  # noqa: F401
        import alfworld.agents.environment.alfred_tw_env  # noqa: F401

        # os.fork rather than a multiprocessing.Process: multiprocessing refuses children to daemonic
        # processes, and env workers (process pools, multiprocessing.Pool) are daemonic.
        self._conn, child = mp.Pipe()
        parent = os.getpid()
        sys.stdout.flush(), sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                self._conn.close()
                serve(child, str(game_file), parent)
                code = 0
            finally:
                os._exit(code)
        child.close()
        self._pid = pid
        self._stop = weakref.finalize(self, _stop, pid, self._conn)  # also when dropped unclosed

    def plan(self, reset: bool, steps: list[str], deadline: float) -> list[str] | None:
        """The plan after ``steps`` (from the start when ``reset``), or None when it is not there by
        ``deadline`` (``time.monotonic()``); the child is then killed."""
        try:
            self._conn.send_bytes(json.dumps({"reset": reset, "steps": steps}).encode())
            ready = self._conn.poll(None if deadline == float("inf") else max(0.0, deadline - time.monotonic()))
            reply = json.loads(self._conn.recv_bytes()) if ready else None
        except (EOFError, OSError):  # the child died
            reply = None
        if reply is None:
            self.close()
            return None
        if "error" in reply:
            raise DataError(f"TextWorld's planner failed: {reply['error']}")
        return reply["plan"]

    @property
    def alive(self) -> bool:
        if not self._stop.alive:
            return False
        try:
            return os.waitpid(self._pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return False

    def close(self) -> None:
        """Kill the child, whatever it is doing; safe to call more than once."""
        self._stop()


def _stop(pid: int, conn) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):  # already gone (and reaped)
        pass
    conn.close()
