"""The process pool: one worker process per env slot, restarted when it dies.

Each worker builds its env from (name, kwargs) and serves commands over a pipe. The parent
waits for answers in a thread per slot, so env steps in all workers overlap with each other and
with whatever the event loop does meanwhile (e.g. generation). A worker that dies mid-call (or
exceeds ``call_timeout_s``) is replaced by a fresh one and the call raises :class:`EnvWorkerError`.
"""
from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from sdar_gym.core import ConfigError
from sdar_gym.registration import env_entry
from sdar_gym.rollout.pools.base import ENV_CALLS, EnvPool, EnvWorkerError


def _serve(conn: Connection, env: str, env_kwargs: dict[str, Any]) -> None:
    """Worker main loop: build the env, then answer (command, args) messages until 'close'."""
    from sdar_gym.registration import make_env

    try:
        target = make_env(env, **env_kwargs).unwrapped
        conn.send(("ok", os.getpid()))
    except Exception as e:  # report construction errors to the parent instead of dying silently
        conn.send(("error", _portable(e)))
        return
    while True:
        try:
            command, args = conn.recv()
        except (EOFError, KeyboardInterrupt):
            break
        if command == "close":
            break
        try:
            conn.send(("ok", ENV_CALLS[command](target, *args)))
        except Exception as e:
            conn.send(("error", _portable(e)))
    target.close()


def _portable(e: Exception) -> Exception:
    """The exception itself if it survives pickling, else a RuntimeError carrying its text."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return RuntimeError(f"{type(e).__name__}: {e}")


class _Worker:
    def __init__(self, ctx: Any, env: str, env_kwargs: dict[str, Any]) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, env, env_kwargs), daemon=True)
        self.process.start()
        child.close()  # so that recv() sees EOF when the worker dies
        try:
            status, value = self.conn.recv()
        except EOFError:
            self.process.join()
            raise EnvWorkerError(f"env worker for {env!r} exited with code {self.process.exitcode} while starting") from None
        if status == "error":
            self.process.join()
            raise value
        self.pid: int = value

    def stop(self) -> None:
        try:
            self.conn.send(("close", ()))
        except OSError:
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class ProcessPool(EnvPool):
    """``num_envs`` worker processes on this machine."""

    def __init__(
        self,
        env: str,
        num_envs: int = 1,
        env_kwargs: dict[str, Any] | None = None,
        start_method: str = "forkserver",
        call_timeout_s: float | None = None,
    ) -> None:
        """``start_method`` is a multiprocessing start method; ``forkserver`` (default) and
        ``spawn`` are safe with threads in the parent, ``fork`` starts fastest.
        ``call_timeout_s`` treats a worker that takes longer on one call as crashed."""
        super().__init__(env, num_envs, env_kwargs)
        if start_method not in mp.get_all_start_methods():
            raise ConfigError(f"start_method {start_method!r} not available; use one of {mp.get_all_start_methods()}")
        self._ctx = mp.get_context(start_method)
        if start_method == "forkserver":  # import the env's module once in the server, not per worker
            self._ctx.set_forkserver_preload([env_entry(env).entry_point.partition(":")[0]])
        self.call_timeout_s = call_timeout_s
        self._executor = ThreadPoolExecutor(max_workers=num_envs, thread_name_prefix="env-worker")
        self.workers = list(self._executor.map(lambda _: self._start(), range(num_envs)))

    def _start(self) -> _Worker:
        return _Worker(self._ctx, self.env_name, self.env_kwargs)

    @property
    def pids(self) -> list[int]:
        """Process id of each slot's current worker (changes when a worker is restarted)."""
        return [w.pid for w in self.workers]

    def _call(self, slot: int, command: str, args: tuple) -> Any:
        worker = self.workers[slot]
        try:
            worker.conn.send((command, args))
            if self.call_timeout_s is not None and not worker.conn.poll(self.call_timeout_s):
                raise TimeoutError(f"no answer to {command!r} within {self.call_timeout_s} s")
            status, value = worker.conn.recv()
        except (EOFError, OSError, TimeoutError) as e:
            worker.process.kill()
            worker.process.join()
            code = worker.process.exitcode
            worker.conn.close()
            self.workers[slot] = self._start()
            what = str(e) if isinstance(e, TimeoutError) else f"worker pid {worker.pid} exited with code {code}"
            raise self._worker_died(slot, f"{what} during {command!r}") from None
        if status == "error":
            raise value
        return value

    async def _run(self, slot: int, command: str, *args: Any) -> Any:
        self._check_slot(slot)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, slot, command, args)

    async def aclose(self) -> None:
        workers, self.workers = self.workers, []
        await asyncio.get_running_loop().run_in_executor(None, lambda: [w.stop() for w in workers])
        self._executor.shutdown(wait=False)
