"""How fast the offline ALFWorld generator is, and how its games compare with ALFWorld's own.

Measured side by side in one run:
1. generation throughput (verified games per second, and CPU seconds per game) with 1 and 2 workers,
   verifying each walkthrough on the fast engine (the default) and in TextWorld, and whether both
   write the same bytes (``--speed-only`` measures just this, into ``alfworld_generator_speed.json``);
2. the cost of playing a game through TextWorld (load + reset + the planner expert's first plan),
   and the plan length, on generated games versus real ALFWorld valid_seen games (one per task type);
3. the share of generated games that ``sdar_gym/ALFWorld-v0``'s expert wins (it must be 1.0);
4. parity with the released valid_seen games, side by side (``parity``): receptacles, objects and
   admissible actions per room (distributions), task-type mix and goal templates, expert steps
   (the generated games' stored walkthroughs), and the vocabulary of commands (templates, via a
   walk that seeks new ones) and of observations, as shares of each other;
5. the transfer test (``--transfer-real``, ``--transfer-generated``): the ``sdar-gym eval`` JSONs of
   the tiny policy trained on generated games only, on real valid_seen and on held-out generated
   games, copied in side by side with the gap;
6. what parsing the shared grammar once per game set saves (``--grammar-cache-only``, into
   ``alfworld_generator_grammar_cache.json``): generation with 2 workers, and compiling real
   valid_seen games, with each game's grammar parsed whole against parsed once with only its goal
   line apart, in alternating rounds, with the same files and compiled games checked.

Run: ``PYTHONPATH=. python benchmarks/alfworld_generator.py [--n 24]``. Writes
``benchmarks/results/alfworld_generator.json``. The machine is shared, so wall times move with its
load; CPU seconds per game are the steadier figure.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import resource
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import tyro

from sdar_gym.envs.alfworld import generator as gen
from sdar_gym.envs.alfworld.data import TASK_TYPES, find_games
from sdar_gym.envs.alfworld.fast import compile as fast_compile
from sdar_gym.envs.alfworld.textworld_engine import TextWorldEngine
from sdar_gym.io import atomic_write_json

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alfworld"
RESULTS = Path(__file__).resolve().parent / "results" / "alfworld_generator.json"
SHARED_GRAMMAR = fast_compile._grammar
"""The compile's grammar parse as shipped (once per grammar, the goal line apart)."""


@dataclass
class Args:
    n: int = 24
    """Games generated per worker setting."""
    seed: int = 0
    """Generation seed."""
    parity_games: int = 24
    """Generated valid_seen games and real valid_seen games (spread over task types) compared."""
    survey_steps: int = 30
    """Steps of the template-seeking walk per game for the vocabulary comparison."""
    parity_only: bool = False
    """Measure only the parity (4, 5) and write it to ``alfworld_generator_parity.json``."""
    transfer_real: Path | None = None
    """``sdar-gym eval --output`` JSON of the tiny policy trained on generated games only, played
    greedily on the real valid_seen games (if measured)."""
    transfer_generated: Path | None = None
    """The same policy's eval JSON on held-out generated games."""
    transfer_recipe: str = ""
    """How that policy was trained (copied into the JSON as given), e.g. the ``sdar-gym sft`` command."""
    speed_only: bool = False
    """Measure only the throughput of both verifiers (1) and write ``alfworld_generator_speed.json``."""
    grammar_cache_only: bool = False
    """Measure only what the shared grammar parse saves (6) and write ``alfworld_generator_grammar_cache.json``."""
    rounds: int = 2
    """Rounds of that comparison, each running both ways, in alternating order."""
    real_games: int = 40
    """Real valid_seen games compiled per way in each round of that comparison (when the data is there)."""


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def throughput(out: Path, n: int, seed: int, workers: int, verify: str = "fast") -> dict:
    wall, cpu = time.perf_counter(), _cpu_seconds()
    gen.generate_games(out, "train", n, seed, progress=False, workers=workers, verify=verify)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    return {
        "verify": verify,
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


def _summary(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {
        "n": len(xs),
        "min": xs[0],
        "median": statistics.median(xs),
        "mean": round(statistics.mean(xs), 2),
        "max": xs[-1],
        "histogram": dict(sorted(Counter(xs).items())),
    }


def _sentence(game: dict) -> str:
    return game["grammar"].split("Your task is to: ", 1)[1].split('."', 1)[0]


def _template_index(traj: dict, sentence: str) -> int | None:
    p = traj["pddl_params"]
    for i, t in enumerate(gen.library().goals[traj["task_type"]]["templates"]):
        values = {k: p.get(f"{k}_target", "").lower() for k in ("object", "parent", "toggle", "mrecep")}
        if t.format(obj=values["object"], recep=values["parent"], toggle=values["toggle"], mrecep=values["mrecep"]) == sentence:
            return i
    return None


def describe(games: list, survey_steps: int) -> dict:
    """Room, task and language statistics of ``games`` (GameRecords)."""
    receptacles, objects, admissible, steps = [], [], [], []
    types, templates, actions, words = Counter(), Counter(), Counter(), Counter()
    for i, g in enumerate(games):
        game = json.loads(g.game_file.read_text())
        traj = json.loads((g.game_file.parent / "traj_data.json").read_text())
        objects.append(len(re.findall(r"\(inReceptacle ", game["pddl_problem"])))
        types[g.task_type] += 1
        templates[f"{g.task_type}/{_template_index(traj, _sentence(game))}"] += 1
        if "walkthrough" in game:
            steps.append(len(game["walkthrough"]))
        try:
            states = gen.survey(g.game_file, survey_steps, seed=i)
        except Exception as e:  # a few released games do not load; count them out
            print(f"skip {g.task_id}: {type(e).__name__}")
            continue
        admissible.append(len(states[0].admissible))
        receptacles.append(sum(a.startswith("go to ") for a in states[0].admissible))
        for state in states:
            actions.update(gen.action_template(a) for a in state.admissible)
            words.update(re.findall(r"[a-z]+", state.feedback.lower()))
    return {
        "games": len(games),
        "receptacles_per_room": _summary(receptacles),
        "objects_per_room": _summary(objects),
        "admissible_at_start": _summary(admissible),
        "expert_steps": _summary(steps) if steps else None,
        "task_types": {t: round(c / len(games), 3) for t, c in sorted(types.items())},
        "goal_templates": {t: round(c / len(games), 3) for t, c in sorted(templates.items())},
        "action_templates": sorted(actions),
        "_words": set(words),
    }


def parity(n: int, seed: int, survey_steps: int) -> dict:
    """Generated valid_seen games next to real ones."""
    with tempfile.TemporaryDirectory() as out:
        gen.generate_games(Path(out), "valid_seen", n, seed, progress=False, workers=gen.default_workers())
        generated = describe(find_games(Path(out), "valid_seen"), survey_steps)
    real_games = find_games(REAL_DATA, "valid_seen")
    real_games = [real_games[round(i * len(real_games) / n)] for i in range(min(n, len(real_games)))]
    real = describe(real_games, survey_steps)
    g_words, r_words = generated.pop("_words"), real.pop("_words")
    g_act, r_act = set(generated["action_templates"]), set(real["action_templates"])
    return {
        "generated": generated,
        "real": real,
        "vocabulary": {
            "real_action_templates_generated": round(len(g_act & r_act) / len(r_act), 3),
            "generated_action_templates_in_real": round(len(g_act & r_act) / len(g_act), 3),
            "real_observation_words_generated": round(len(g_words & r_words) / len(r_words), 3),
            "generated_observation_words_in_real": round(len(g_words & r_words) / len(g_words), 3),
            "only_generated_actions": sorted(g_act - r_act),
            "only_real_actions": sorted(r_act - g_act),
        },
    }


def transfer(args: Args) -> dict:
    """The tiny policy's greedy success (percent, the Table 1 columns) on real and generated games."""
    if not (args.transfer_real and args.transfer_generated):
        return {}
    real, generated = (json.loads(p.read_text()) for p in (args.transfer_real, args.transfer_generated))
    return {
        "transfer": {
            "real_valid_seen": {"episodes": real["episodes"], **real["table"], "settings": real.get("settings")},
            "generated_heldout": {"episodes": generated["episodes"], **generated["table"], "settings": generated.get("settings")},
            "gap_points": round(generated["table"]["All"] - real["table"]["All"], 1),
            "recipe": args.transfer_recipe,
        }
    }


def _game_bytes(out: Path) -> dict[str, bytes]:
    root = out / "json_2.1.1" / "train"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob("*/*/*")) if p.is_file()}


def verifier_speed(n: int, seed: int, workers: tuple[int, ...]) -> dict:
    """Games/s verifying on TextWorld and on the fast engine, side by side, on the same games.

    The fast engine caches each verified game's compiled form for its first play; a fresh cache
    folder per run keeps the runs independent."""
    runs = []
    for w in workers:
        pair = {}
        for verify in ("textworld", "fast"):
            with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as home:
                os.environ["SDAR_GYM_HOME"] = home
                pair[verify] = throughput(Path(out), n, seed, w, verify)
                pair[verify]["bytes"] = _game_bytes(Path(out))
            print(f"verify={verify} workers={w}: {pair[verify]['games_per_s']:.3f} games/s")
        same = pair["textworld"].pop("bytes") == pair["fast"].pop("bytes")
        ratio = round(pair["fast"]["games_per_s"] / pair["textworld"]["games_per_s"], 2)
        print(f"workers={w}: fast/textworld = {ratio}x, same bytes: {same}")
        runs.append({**pair, "fast_over_textworld": ratio, "same_files": same})
    return {"load_average": os.getloadavg(), "cpu_count": os.cpu_count(), "runs": runs}


def _grammar_parsed_whole(whole: bool):
    """Set the fast engine's compile to parse each game's grammar whole (``True``: the way before the
    shared parse) or once per grammar with the goal line apart (``False``: the default)."""
    fast_compile._grammar = fast_compile._parsed_grammar if whole else SHARED_GRAMMAR
    fast_compile._parse_grammar_cached.cache_clear()


def grammar_cache_speed(n: int, seed: int, rounds: int, real_games: int) -> dict:
    """Generation (2 workers, forked after the setting) and real-game compiles, both ways, side by side."""
    from dataclasses import asdict

    real = sorted((REAL_DATA / "json_2.1.1" / "valid_seen").rglob("game.tw-pddl"))[:real_games]
    ways = {"whole": True, "shared": False}
    runs, same_files, same_compiled = [], True, True
    for r in range(rounds):
        run, files, compiled = {}, {}, {}
        for name in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
            _grammar_parsed_whole(ways[name])
            with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as home:
                os.environ["SDAR_GYM_HOME"] = home
                run[name] = throughput(Path(out), n, seed + r, 2)
                files[name] = _game_bytes(Path(out))
            if real:
                start = time.perf_counter()
                compiled[name] = [asdict(fast_compile.compile_game(f)) for f in real]
                run[name]["real_compile_s_per_game"] = round((time.perf_counter() - start) / len(real), 3)
            print(f"round {r + 1}, grammar parsed {name}: {run[name]['games_per_s']:.3f} games/s"
                  + (f", {run[name]['real_compile_s_per_game']:.3f} s per real game compile" if real else ""))
        same_files &= files["whole"] == files["shared"]
        same_compiled &= compiled.get("whole") == compiled.get("shared")
        run["generation_shared_over_whole"] = round(run["shared"]["games_per_s"] / run["whole"]["games_per_s"], 2)
        if real:
            run["real_compile_whole_over_shared"] = round(run["whole"]["real_compile_s_per_game"] / run["shared"]["real_compile_s_per_game"], 2)
        print({k: v for k, v in run.items() if "over" in k})
        runs.append(run)
    _grammar_parsed_whole(False)
    return {"load_average": os.getloadavg(), "cpu_count": os.cpu_count(), "games_per_way_and_round": n,
            "real_games_compiled": len(real), "same_files": same_files, "same_compiled_real_games": same_compiled, "runs": runs}


def main(args: Args) -> None:
    if args.grammar_cache_only:
        result = grammar_cache_speed(args.n, args.seed, args.rounds, args.real_games)
        print(json.dumps(result, indent=1))
        atomic_write_json(RESULTS.with_name("alfworld_generator_grammar_cache.json"), result)
        return
    if args.speed_only:
        result = verifier_speed(args.n, args.seed, (1, 2))
        print(json.dumps(result, indent=1))
        atomic_write_json(RESULTS.with_name("alfworld_generator_speed.json"), result)
        return
    if args.parity_only:
        result = {"load_average": os.getloadavg(), "parity": parity(args.parity_games, args.seed, args.survey_steps)}
        result.update(transfer(args))
        print(json.dumps(result, indent=1))
        atomic_write_json(RESULTS.with_name("alfworld_generator_parity.json"), result)
        return
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
    if REAL_DATA.is_dir():
        result["parity"] = parity(args.parity_games, args.seed, args.survey_steps)
    result.update(transfer(args))
    print(json.dumps(result, indent=1))
    atomic_write_json(RESULTS, result)


if __name__ == "__main__":
    main(tyro.cli(Args))
