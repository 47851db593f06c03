"""Helpers shared by the benchmark scripts: timing summaries, memory, and JSON results."""
from __future__ import annotations

import asyncio
import json
import platform
import random
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
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


def bootstrap_mean_ci(values: list[float], n: int = 2000, seed: int = 0) -> list[float]:
    """95% bootstrap interval of the mean of ``values`` (resampled with replacement, ``n`` times)."""
    rng = random.Random(seed)
    means = sorted(statistics.mean(rng.choices(values, k=len(values))) for _ in range(n))
    return [means[int(0.025 * n)], means[int(0.975 * n) - 1]]


def add_policy_args(parser) -> None:
    """The options of a benchmark that trains from one policy on one env: --model, --env, --env-kwargs, --learner, --seed."""
    parser.add_argument("--model", default=None, help="policy folder or HF id (default: the built-in tiny policy)")
    parser.add_argument("--env", default="alfworld")
    parser.add_argument("--env-kwargs", default="{}", help='JSON, e.g. \'{"task_types": ["pick_and_place_simple"]}\'')
    parser.add_argument("--learner", default="grpo")
    parser.add_argument("--seed", type=int, default=0)


def args_as_json(args) -> dict[str, Any]:
    """A parsed command line as JSON values (paths as strings), for a result's record of what ran."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def as_cli_env_kwargs(env_kwargs: dict[str, Any]) -> dict[str, str]:
    """Env arguments as ``TrainArgs.env_kwargs`` holds them: text, and JSON for anything else
    (what :func:`sdar_gym.registration.parse_env_kwargs` reads back)."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in env_kwargs.items()}


def scratch_trainer(args, name: str, **fields: Any):
    """A :class:`learners.trainer.Trainer` from :func:`add_policy_args`' options and ``fields``, with no
    progress, no TensorBoard, no validation and a temporary run folder (the caller removes
    ``trainer.cfg.output``); ``--model`` runs with the CPU preset. ``fields["env_kwargs"]`` adds to
    ``--env-kwargs``."""
    from learners.trainer import Trainer, TrainArgs

    env_kwargs = as_cli_env_kwargs(json.loads(args.env_kwargs)) | fields.pop("env_kwargs", {})
    return Trainer(TrainArgs(
        learner=args.learner, env=args.env, model=args.model, preset="cpu" if args.model else "auto", seed=args.seed, env_kwargs=env_kwargs,
        eval_every=0, output=Path(tempfile.mkdtemp(prefix=f"{name}_")), progress=False, tensorboard=False, **fields,
    ))


def run_steps(trainer, steps: int, record: Callable[[dict[str, float]], dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """``steps`` RL steps of a :func:`scratch_trainer` on an inline pool of its env, one thread:
    ``record(metrics)`` of each step, printed after ``label``; then the pool is closed and the
    scratch run folder removed (the trained policy stays in ``trainer.policy``)."""
    import torch

    from sdar_gym.rollout import make_pool

    torch.set_num_threads(1)
    pool = make_pool("inline", trainer.cfg.env, trainer.cfg.num_envs, trainer.env_kwargs)
    out = []
    try:
        for _ in range(steps):
            metrics = trainer.train_step(pool)
            out.append({"step": trainer.step, **record(metrics)})
            print(f"  {label}: step {trainer.step}/{steps}, " + ", ".join(f"{k} {v:.3g}" for k, v in out[-1].items() if k != "step" and v is not None), flush=True)
    finally:
        asyncio.run(pool.aclose())
        shutil.rmtree(trainer.cfg.output, ignore_errors=True)
    return out
