"""The expert on a whole ALFWorld split: win rate per task type, steps, time and per-call latency.

    python benchmarks/alfworld_expert.py --data-dir ../shared/data/alfworld --split valid_seen
    python benchmarks/alfworld_expert.py --engine fast --bound   # alfworld_expert_bound.json

``--bound`` plays every game in a fresh process (so each pays the cold planner start, as a new env
server worker does), ``workers`` at a time, and checks the slowest ``expert_action()`` call of each
game against the fast engine's stated bound (``FastEngine.plan_bound_s``).
"""
from __future__ import annotations

import multiprocessing as mp
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import tyro

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import sdar_gym  # noqa: E402,F401
from benchmarks.common import write_result  # noqa: E402


@dataclass
class Args:
    data_dir: Path = Path(__file__).resolve().parents[2] / "shared" / "data" / "alfworld"
    """Folder holding json_2.1.1/."""
    split: str = "valid_seen"
    max_steps: int = 50
    engine: str = "textworld"
    """ALFWorld engine to play on."""
    expert: str = "planner"
    """ALFWorld expert (``EXPERTS``)."""
    bound: bool = False
    """One fresh process per game, ``workers`` at a time; write ``alfworld_expert_bound.json``."""
    workers: int = 2
    """Games played at once with ``--bound``."""
    game_cap_s: float = 300.0
    """With ``--bound``: a game still running after this long is recorded as a timeout."""


def _make(args: Args):
    return gym.make("sdar_gym/ALFWorld-v0", data_dir=args.data_dir, split=args.split, max_steps=args.max_steps,
                    engine=args.engine, expert=args.expert)


def play(env, task_id: str) -> dict:
    """One expert episode: won, steps, the slowest ``expert_action()`` call, and whether the planner was late."""
    start = time.perf_counter()
    _, info = env.reset(options={"task_id": task_id})
    n, done, worst, late = 0, False, 0.0, False
    while not done:
        t = time.perf_counter()
        action = env.unwrapped.expert_action()
        worst = max(worst, time.perf_counter() - t)
        late = late or getattr(env.unwrapped._engine, "_planner_late", False)
        _, _, term, trunc, info = env.step(action or "look")
        n, done = n + 1, term or trunc
    return {"task_id": task_id, "task_type": info["task_type"], "won": info["won"], "steps": n,
            "max_call_s": round(worst, 3), "planner_late": late, "game_s": round(time.perf_counter() - start, 3)}


def _play_one(args: Args, task_id: str) -> dict:
    return play(_make(args), task_id)


def _play_each_in_a_process(args: Args, task_ids: list[str]) -> list[dict]:
    ctx = mp.get_context("spawn")
    results, pending = [], {}
    with ctx.Pool(args.workers, maxtasksperchild=1) as pool:  # a fresh process per game
        for task_id in task_ids:
            pending[task_id] = (time.monotonic(), pool.apply_async(_play_one, (args, task_id)))
        for task_id, (_, handle) in pending.items():
            try:
                r = handle.get(timeout=args.game_cap_s)
            except mp.TimeoutError:
                r = {"task_id": task_id, "won": False, "timeout": True}
            results.append(r)
            print(r, flush=True)
        pool.terminate()
    return results


def main(args: Args) -> dict:
    env = _make(args)
    task_ids = env.unwrapped.task_ids
    start = time.perf_counter()
    if args.bound:
        games = _play_each_in_a_process(args, task_ids)
    else:
        games = []
        for task_id in task_ids:
            games.append(play(env, task_id))
            print(games[-1], flush=True)
    per_type: dict[str, list[bool]] = defaultdict(list)
    for g in games:
        per_type[g.get("task_type", "?")].append(g["won"])
    wins = sum(g["won"] for g in games)
    out = {
        "split": args.split, "engine": args.engine, "expert": args.expert, "games": len(games), "wins": wins,
        "win_rate": wins / len(games),
        "per_task_type": {t: {"games": len(ws), "win_rate": sum(ws) / len(ws)} for t, ws in sorted(per_type.items())},
        "mean_steps": sum(g.get("steps", 0) for g in games) / len(games),
        "failures": [g["task_id"] for g in games if not g["won"]], "wall_s": time.perf_counter() - start,
    }
    if args.bound:
        from sdar_gym.envs.alfworld.fast import FastEngine

        calls = sorted(g["max_call_s"] for g in games if "max_call_s" in g)
        out |= {
            "bound_s": FastEngine.plan_bound_s, "planner_timeout_s": FastEngine.planner_timeout_s,
            "max_call_s": calls[-1] if calls else None, "median_game_max_call_s": calls[len(calls) // 2] if calls else None,
            "over_bound": [g["task_id"] for g in games if g.get("max_call_s", float("inf")) > FastEngine.plan_bound_s],
            "planner_late": [g["task_id"] for g in games if g.get("planner_late")],
            "per_game": games,
        }
        print(f"slowest expert call {out['max_call_s']}s (bound {out['bound_s']}s); over bound: {out['over_bound']}")
    print(f"expert won {wins}/{len(games)} ({out['win_rate']:.1%}); failures: {out['failures']}")
    write_result("alfworld_expert_bound" if args.bound else f"alfworld_expert_{args.split}", out)
    return out


if __name__ == "__main__":
    main(tyro.cli(Args))
