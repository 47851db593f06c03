"""How fast the offline ALFWorld generator is, and how its games compare with ALFWorld's own.

Measured side by side in one run:
1. generation throughput (verified games per second, and CPU seconds per game) with 1 and 2 workers;
2. the cost of playing a game through TextWorld (load + reset + the planner expert's first plan),
   and the plan length, on generated games versus real ALFWorld valid_seen games (one per task type);
3. the share of generated games that ``sdar_gym/ALFWorld-v0``'s expert wins (it must be 1.0).

Run: ``PYTHONPATH=. python benchmarks/alfworld_generator.py [--n 24]``. Writes
``benchmarks/results/alfworld_generator.json``. The machine is shared, so wall times move with its
load; CPU seconds per game are the steadier figure.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import tyro

from sdar_gym.envs.alfworld import generator as gen
from sdar_gym.envs.alfworld.data import TASK_TYPES, find_games
from sdar_gym.envs.alfworld.textworld_engine import TextWorldEngine
from sdar_gym.io import atomic_write_json

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alfworld"
RESULTS = Path(__file__).resolve().parent / "results" / "alfworld_generator.json"


@dataclass
class Args:
    n: int = 24
    """Games generated per worker setting."""
    seed: int = 0
    """Generation seed."""


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def throughput(out: Path, n: int, seed: int, workers: int) -> dict:
    wall, cpu = time.perf_counter(), _cpu_seconds()
    gen.generate_games(out, "train", n, seed, progress=False, workers=workers)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    return {
        "workers": workers,
        "games": n,
        "wall_s": round(wall, 2),
        "games_per_s": round(n / wall, 3),
        "cpu_s_per_game": round(cpu / n, 3),
    }


def expert_wins(data_dir: Path) -> dict:
    """Follow ``expert_action()`` in the registered env on every game of ``data_dir``'s train split."""
    import gymnasium as gym

    import sdar_gym  # noqa: F401

    env = gym.make("sdar_gym/ALFWorld-v0", data_dir=data_dir, split="train")
    won, steps = 0, []
    for task_id in env.unwrapped.task_ids:
        env.reset(options={"task_id": task_id})
        for step in range(1, env.unwrapped.max_steps + 1):
            _, _, terminated, truncated, info = env.step(env.unwrapped.expert_action())
            if terminated or truncated:
                break
        won += info["won"]
        steps.append(step)
    env.close()
    return {"games": len(steps), "expert_success": won / len(steps), "mean_steps": round(sum(steps) / len(steps), 2)}


def play_cost(game_files: list[Path]) -> dict:
    """Mean seconds to load + reset a game in TextWorld and to get the planner's first plan."""
    load, plan, steps = [], [], []
    for game_file in game_files:
        engine = TextWorldEngine()
        t = time.perf_counter()
        engine.load(game_file)
        engine.reset()
        t1 = time.perf_counter()
        walkthrough = engine.plan()
        plan.append(time.perf_counter() - t1)
        load.append(t1 - t)
        steps.append(len(walkthrough))
    mean = lambda xs: round(sum(xs) / len(xs), 3)  # noqa: E731
    return {
        "games": len(game_files),
        "load_reset_s": mean(load),
        "plan_s": mean(plan),
        "max_plan_s": round(max(plan), 3),
        "plan_steps": mean(steps),
    }


def one_per_type(data_dir: Path, split: str) -> list[Path]:
    files = []
    for task_type in TASK_TYPES:
        for game in find_games(data_dir, split, [task_type]):
            try:  # a few released games do not load in TextWorld; take the first that does
                TextWorldEngine().load(game.game_file)
            except Exception:
                continue
            files.append(game.game_file)
            break
    return files


def main(args: Args) -> None:
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        runs = [throughput(Path(out), args.n, args.seed, workers) for out, workers in ((one, 1), (two, 2))]
        for r in runs:
            print(f"workers={r['workers']}: {r['games_per_s']:.2f} games/s, {r['cpu_s_per_game']:.2f} CPU s/game")
        wins = expert_wins(Path(one))
    print(f"expert wins {wins['expert_success']:.0%} of {wins['games']} generated games")
    result = {
        "load_average": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "throughput": runs,
        "speedup_2_workers": round(runs[1]["games_per_s"] / runs[0]["games_per_s"], 2),
        "expert": wins,
    }
    with tempfile.TemporaryDirectory() as out:
        gen.generate_games(Path(out), "valid_seen", len(TASK_TYPES), args.seed, progress=False)
        result["generated_play"] = play_cost(one_per_type(Path(out), "valid_seen"))
    if REAL_DATA.is_dir():
        result["real_play"] = play_cost(one_per_type(REAL_DATA, "valid_seen"))
        g, r = result["generated_play"], result["real_play"]
        result["real_over_generated"] = {k: round(r[k] / g[k], 2) for k in ("load_reset_s", "plan_s", "plan_steps")}
    print(json.dumps(result, indent=1))
    atomic_write_json(RESULTS, result)


if __name__ == "__main__":
    main(tyro.cli(Args))
