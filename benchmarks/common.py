"""Helpers shared by the benchmark scripts: timing summaries, memory, and JSON results."""
from __future__ import annotations

import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from sdar_gym.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results"


def summarize(seconds: list[float]) -> dict[str, float]:
    """Median, p90, p95 and mean of a list of durations, in milliseconds."""
    ms = sorted(s * 1000 for s in seconds)

    def pct(q: float) -> float:
        return ms[min(len(ms) - 1, int(q * len(ms)))]

    return {"n": len(ms), "median_ms": statistics.median(ms), "p90_ms": pct(0.9), "p95_ms": pct(0.95), "mean_ms": statistics.fmean(ms)}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    import os

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_result(name: str, payload: dict[str, Any]) -> Path:
    path = atomic_write_json(RESULTS / f"{name}.json", {"benchmark": name, "machine": machine(), **payload})
    print(f"wrote {path}")
    return path


def screen_mixed_tasks(trainer, pool, n_screen: int, n_keep: int, seed: int, group_size: int = 8) -> tuple[list, list[int]]:
    """Tasks a policy wins sometimes but not always: one group of ``group_size`` rollouts of each of
    ``n_screen`` training tasks (a :class:`learners.trainer.Trainer`'s, drawn as step 0 draws them),
    keeping the first ``n_keep`` whose group had both wins and losses. Returns (kept, wins per screened task)."""
    from learners.trainer import rollout, step_tasks

    screened = step_tasks(trainer.tasks, n_screen, seed, 0)
    episodes = rollout(trainer.policy, pool, screened, trainer.cfg, seed=104_729 + seed, group_size=group_size, agent=trainer.agent, generator=trainer.generator)
    wins = [sum(e.won for e in episodes[i * group_size : (i + 1) * group_size]) for i in range(len(screened))]
    return [t for t, w in zip(screened, wins) if 0 < w < group_size][:n_keep], wins
