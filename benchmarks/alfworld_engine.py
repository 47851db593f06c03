"""ALFWorld engines side by side: TextWorld vs fast, on the same games and the same action sequences.

Measures (wall and CPU time) step median/p90, reset median (game already loaded, as when an env replays a game),
first load of a game (fast: compiled from scratch, and from its disk cache), and resident memory
per env instance; checks on the way that both engines print the same text. Writes
``benchmarks/results/alfworld_engine.json``.

    PYTHONPATH=$PWD python benchmarks/alfworld_engine.py --data-dir ../shared/data/alfworld
"""
from __future__ import annotations

import gc
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import tyro

from sdar_gym.envs.alfworld.data import TASK_TYPES, find_games
from sdar_gym.envs.alfworld.textworld_engine import TextWorldEngine
from sdar_gym.envs.alfworld.fast import FastEngine
from sdar_gym.envs.alfworld.fast import engine as fast_engine
from sdar_gym.io import atomic_write_json


@dataclass
class Args:
    data_dir: Path = Path(__file__).resolve().parents[2] / "shared" / "data" / "alfworld"
    """Folder holding json_2.1.1/<split>/."""
    split: str = "valid_seen"
    """Split to take games from."""
    games_per_type: int = 1
    """Games per task type (six types)."""
    steps: int = 30
    """Actions per game (a seeded walk over admissible actions, a fifth of them invalid)."""
    resets: int = 3
    """Resets per game and engine."""
    instances: int = 6
    """Env instances per engine for the memory measurement."""
    seed: int = 0
    out: Path = Path(__file__).resolve().parent / "results" / "alfworld_engine.json"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def timed(fn, *args):
    """The call's result and its (wall, CPU) milliseconds; CPU time is robust to a busy shared machine."""
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, ((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000)


def actions_for(game_file: Path, n: int, rng: random.Random) -> list[str]:
    """A walk over admissible actions with invalid ones mixed in (chosen once, replayed in both engines)."""
    engine = FastEngine(cache_dir=None)
    engine.load(game_file)
    state = engine.reset()
    actions = []
    for _ in range(n):
        action = rng.choice(state.admissible) if rng.random() > 0.2 else rng.choice(["jump", "take", "go to moon"])
        actions.append(action)
        state = engine.step(action)
    return actions


def summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    out: dict[str, float] = {"n": len(samples)}
    for i, kind in enumerate(("wall", "cpu")):
        ms = sorted(s[i] for s in samples)
        out[f"{kind}_median_ms"] = statistics.median(ms)
        out[f"{kind}_p90_ms"] = ms[int(0.9 * (len(ms) - 1))]
    return out


def main(args: Args) -> None:
    rng = random.Random(args.seed)
    games = []
    for task_type in TASK_TYPES:
        games += find_games(args.data_dir, args.split, [task_type])[: args.games_per_type]
    sequences = {g.task_id: actions_for(g.game_file, args.steps, rng) for g in games}

    cache = Path(tempfile.mkdtemp(prefix="alfworld-fast-cache-"))
    times: dict[str, dict[str, list[tuple[float, float]]]] = {
        name: {"step": [], "reset": [], "load": []} for name in ("textworld", "fast")
    }
    times["fast"]["load_from_disk_cache"] = []
    texts: dict[str, list[str]] = {"textworld": [], "fast": []}
    for g in games:
        for name, make in (("textworld", TextWorldEngine), ("fast", lambda: FastEngine(cache_dir=cache))):
            engine = make()
            _, ms = timed(engine.load, g.game_file)
            times[name]["load"].append(ms)
            if name == "fast":  # a new process: nothing in memory, the compiled game on disk
                fast_engine._cached_game.cache_clear()
                _, ms = timed(FastEngine(cache_dir=cache).load, g.game_file)
                times[name]["load_from_disk_cache"].append(ms)
            for r in range(args.resets):
                state, ms = timed(engine.reset)
                times[name]["reset"].append(ms)
                if r == 0:
                    texts[name].append(state.feedback)
            for action in sequences[g.task_id]:
                state, ms = timed(engine.step, action)
                times[name]["step"].append(ms)
                texts[name].append(state.feedback)
        print(f"{g.task_id}: done", flush=True)
    identical = texts["textworld"] == texts["fast"]

    memory = {}
    for name, make in (("fast", lambda: FastEngine(cache_dir=cache)), ("textworld", TextWorldEngine)):
        fast_engine._cached_game.cache_clear()
        gc.collect()
        before = rss_mb()
        engines = []
        for i in range(args.instances):
            engine = make()
            engine.load(games[i % len(games)].game_file)
            engine.reset()
            engines.append(engine)
        gc.collect()
        memory[name] = (rss_mb() - before) / args.instances
        del engines

    result = {
        "games": [g.task_id for g in games],
        "steps_per_game": args.steps,
        "resets_per_game": args.resets,
        "identical_text": identical,
        "load_average_1m": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
        "textworld": {k: summary(v) for k, v in times["textworld"].items()} | {"memory_mb_per_instance": memory["textworld"]},
        "fast": {k: summary(v) for k, v in times["fast"].items()} | {"memory_mb_per_instance": memory["fast"]},
    }
    tw, fa = result["textworld"], result["fast"]
    result["speedup"] = {}
    for kind in ("wall", "cpu"):
        med, p90 = f"{kind}_median_ms", f"{kind}_p90_ms"
        result["speedup"][kind] = {
            "step_median": tw["step"][med] / fa["step"][med],
            "step_p90": tw["step"][p90] / fa["step"][p90],
            "reset_median": tw["reset"][med] / fa["reset"][med],
            "first_load_median_compiled": tw["load"][med] / fa["load"][med],
            "first_load_median_from_disk_cache": tw["load"][med] / fa["load_from_disk_cache"][med],
            "first_episode_median_from_disk_cache": (tw["load"][med] + tw["reset"][med])
            / (fa["load_from_disk_cache"][med] + fa["reset"][med]),
        }
    result["speedup"]["memory_per_instance"] = memory["textworld"] / max(memory["fast"], 1e-9)
    atomic_write_json(args.out, result)
    for name in ("textworld", "fast"):
        r = result[name]
        for kind in ("wall", "cpu"):
            print(
                f"{name:9s} {kind:4s} step median {r['step'][kind + '_median_ms']:.2f} ms "
                f"p90 {r['step'][kind + '_p90_ms']:.2f} ms | reset median {r['reset'][kind + '_median_ms']:.1f} ms | "
                f"first load median {r['load'][kind + '_median_ms']:.0f} ms"
            )
        print(f"{name:9s} memory/instance {r['memory_mb_per_instance']:.1f} MB")
    for kind in ("wall", "cpu"):
        print(f"fast {kind} first load from disk cache: median {fa['load_from_disk_cache'][kind + '_median_ms']:.0f} ms")
        print(f"speed-up ({kind}):", ", ".join(f"{k} {v:.1f}x" for k, v in result["speedup"][kind].items()))
    print(f"memory per instance: {result['speedup']['memory_per_instance']:.1f}x smaller")
    print(f"identical text: {identical}; load average {result['load_average_1m']:.1f} on {os.cpu_count()} cores")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(tyro.cli(Args))
