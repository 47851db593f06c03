"""Does it learn? GRPO vs SDAR vs GRPO+OPSD from the same tiny warm start, on held-out ALFWorld games.

1. Games: the generated default ALFWorld set (or ``--data-dir``); its train split is for the warm
   start and RL, ``--held-out`` games spread evenly over each ``--eval-splits`` split are for evaluation,
   with ``--train-eval`` of the RL games themselves and ``--real-games`` of the real valid_seen games
   in ``--real-dir`` (``../shared/data/alfworld``; skipped when absent).
2. Warm start: the built-in tiny policy recipe (``learners.sft``): a BPE tokenizer and a small Qwen2
   trained on expert demonstrations of training games (cached between runs).
3. Evaluate the warm start on the held-out games (one episode each, fixed per-episode sampling seeds).
4. For each learner and seed: RL from the warm start for ``--steps`` steps on training games, under
   the CPU preset's teacher settings (the released skill routing capped at 800 characters, as the
   warm start saw skill text in its SFT) and this script's batch sizes,
   evaluating on the held-out games every ``--eval-every`` steps (the curves) and at the end.
5. Speed in one run: the same recorded batch of episodes is updated by GRPO and by SDAR in fresh
   processes, alternating; each reports how much its resident memory rose during its first update
   (CPU stand-in for peak memory) and the median time of the updates after it.

Reports per split and learner: the warm start's and each seed's greedy success, the mean gain with a
95% bootstrap interval (games resampled, seeds averaged), SDAR minus GRPO and GRPO+OPSD likewise,
each run's wall time and its SDAR gate statistics over training (gate mean, active ratio, gap).
With ``--sampled-evals K`` each held-out game is also played K times at the released validation
temperature (0.4), and the same is reported over each game's win rate. ``--against CONTROL`` compares
two finished reports seed by seed (e.g. a run against its ``--no-reward`` control).

Each finished run is kept in ``<output>.partial.json`` as it ends; the same command, rerun after a
stop, resumes from it (options that only change how it runs, such as ``--jobs``, may differ).

Writes ``benchmarks/results/learning.json``. Sized by flags; the defaults fit a busy 2-core CPU in
about an hour and are far too small to reproduce the paper's gaps; the JSON says what ran.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import multiprocessing as mp
import resource
import shutil
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.common import args_as_json, as_cli_env_kwargs, bootstrap_mean_ci  # noqa: E402
from learners.evaluate import evaluate, table_for  # noqa: E402
from learners.policy_model import PolicyModel, PolicyModelConfig  # noqa: E402
from learners.sft import SFTArgs, build_sft_policy, demo_env_kwargs  # noqa: E402
from learners.trainer import EVAL_SEED, Trainer, TrainArgs  # noqa: E402
from sdar_gym.agent import AgentConfig  # noqa: E402
from sdar_gym.core import sdar_gym_home  # noqa: E402
from sdar_gym.io import atomic_write_json  # noqa: E402
from sdar_gym.processes import exit_with_parent  # noqa: E402
from sdar_gym.registration import task_list  # noqa: E402
from sdar_gym.rollout import make_pool  # noqa: E402
from sdar_gym.rollout.types import SamplingParams  # noqa: E402

LEARNERS = ("grpo", "sdar", "grpo_opsd")


def spread(tasks: list, n: int) -> list:
    """``n`` tasks evenly spaced over ``tasks`` (sorted by id, so every task type is represented)."""
    return [tasks[i * len(tasks) // n] for i in range(n)] if n < len(tasks) else list(tasks)


def held_out_splits(data: dict, splits: list[str], n: int) -> dict[str, tuple[dict, list]]:
    """Split name -> (env kwargs, ``n`` of its games spread over it), for each of ``splits`` of ``data``."""
    out = {}
    for split in splits:
        kwargs = {**data, "split": split}
        out[split] = (kwargs, spread(task_list("alfworld", kwargs)[0], n))
    return out


def real_valid_seen(real_dir: Path, n: int, engine: str = "fast") -> dict[str, tuple[dict, list]]:
    """``{"real_valid_seen": (env kwargs, n of its games spread over it)}``, or nothing when ``n`` is 0
    or ``real_dir`` holds no valid_seen split (the real games are not shipped)."""
    if not n or not (real_dir / "json_2.1.1" / "valid_seen").is_dir():
        return {}
    return {"real_valid_seen": held_out_splits({"engine": engine, "data_dir": str(real_dir)}, ["valid_seen"], n)["valid_seen"]}


def held_out_eval(model_dir: str, held_out: dict[str, tuple[dict, list]], args) -> dict:
    return _eval_all(PolicyModel.from_pretrained(PolicyModelConfig(model=model_dir), with_reference=False), held_out, args)


def eval_policy(policy: PolicyModel, env_kwargs: dict, tasks: list, args) -> dict:
    """One episode per game at ``--eval-temperature`` (greedy by default); with ``--sampled-evals K``,
    also K episodes per game at ``--sampled-temperature``, whose per-game win rates go in ``sampled``."""
    def play(temperature: float, repeats: int) -> list:
        sampling = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=temperature)
        played = [t for t in tasks for _ in range(repeats)]  # episode i samples from seed (EVAL_SEED, i): each repeat its own
        return evaluate(policy, "alfworld", env_kwargs, played, args.max_turns, args.num_envs, sampling, seed=EVAL_SEED, choose_admissible=args.choose_admissible,
                        agent=AgentConfig(history_length=args.history_length))

    episodes = play(args.eval_temperature, 1)
    table = table_for("alfworld", episodes)
    out = {"success": table["All"] / 100.0, "table": table, "won": [int(e.won) for e in episodes],
           "invalid_action_ratio": sum(not t.action_valid for e in episodes for t in e.turns) / max(1, sum(len(e.turns) for e in episodes))}
    if args.sampled_evals:
        k = args.sampled_evals
        wins = [int(e.won) for e in play(args.sampled_temperature, k)]
        rates = [sum(wins[i * k:(i + 1) * k]) / k for i in range(len(tasks))]
        out["sampled"] = {"success": statistics.mean(rates), "won": rates, "episodes": len(wins), "temperature": args.sampled_temperature}
    return out


def rl_run(learner: str, seed: int, warm: str, env_kwargs: dict, train_tasks: list, held_out: dict, args, out_dir: Path) -> dict:
    started = time.perf_counter()
    run_dir = out_dir / f"{learner}-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    env_kwargs = env_kwargs | ({"progress": True} if args.progress_reward else {})  # ALFWorld reports each step's progress
    cfg = TrainArgs(
        learner=learner, env="alfworld", model=warm, steps=args.steps, group_size=args.group_size, tasks_per_step=args.tasks_per_step,
        max_turns=args.max_turns, history_length=args.history_length, skills=args.skills, skills_embedder=args.skills_embedder, num_envs=args.num_envs, preset="cpu",
        env_kwargs=as_cli_env_kwargs(env_kwargs), output=run_dir, seed=seed, temperature=args.temperature,
        max_new_tokens=args.max_new_tokens, no_effect_penalty=args.no_effect_penalty, progress_reward=args.progress_reward, choose_admissible=args.choose_admissible, lora_rank=args.lora_rank,
        learner_args={"lr": str(args.lr), "mini_batches": str(args.mini_batches), "demo_coef": str(args.demo_coef)}, demo_games=args.demo_games, progress=False, tensorboard=False,
    )
    if args.no_reward:  # the control: every score 0, so every advantage is 0
        cfg = replace(cfg, win_reward=0.0, invalid_penalty=0.0, progress_reward=0.0, no_effect_penalty=0.0)
    trainer = Trainer(cfg)
    trainer.tasks = list(train_tasks)  # RL only ever sees training games; held-out games are for evaluation
    curve = []
    steps = []
    async_pool = make_pool("inline", "alfworld", args.num_envs, env_kwargs)
    try:
        for _ in range(args.steps):
            m = trainer.train_step(async_pool)
            print(f"  {learner} seed {seed}: step {trainer.step}/{args.steps}, rollout success {m.get('rollout/all/success', 0.0):.2f}, "
                  f"no effect {m.get('rollout/no_effect_action_ratio', 0.0):.2f}, "
                  f"{m.get('perf/step_s', 0.0):.0f}s", flush=True)  # the trainer's own progress is off in these workers
            steps.append({k: m[k] for k in sorted(m) if k.startswith(("rollout/all", "train/", "sdar/", "perf/"))})
            if args.eval_every and trainer.step % args.eval_every == 0 and trainer.step < args.steps:
                curve.append({"step": trainer.step, **_eval_all(trainer.policy, held_out, args)})
    finally:
        asyncio.run(async_pool.aclose())
    final = _eval_all(trainer.policy, held_out, args)
    curve.append({"step": trainer.step, **final})
    print(f"  {learner} seed {seed}: held-out success {final['success']:.3f}{_sampled_note(final)}", flush=True)
    gate = {k: statistics.mean(s[k] for s in steps if k in s) for k in ("sdar/gate_mean", "sdar/gate_active_ratio", "sdar/teacher_gap_mean") if any(k in s for s in steps)}
    return {"learner": learner, "seed": seed, "final": final, "curve": curve, "steps": steps, "wall_s": time.perf_counter() - started, "gate_over_training": gate}


def runs_folder(args) -> Path:
    """Where this benchmark's RL runs keep their folders (each emptied when its run starts): one per --output, so
    that two benchmarks running at once never delete each other's runs."""
    return Path("runs") / f"bench-{args.output.stem}"


UNRELATED_TO_RESULTS = ("jobs", "output", "plot_only", "speed_rounds", "speed_repeats", "threads")
"""Options that change how the benchmark runs, not what its RL runs measure: a resumed benchmark may differ in these."""


def run_settings(args) -> dict:
    """The options that the RL runs' results depend on, as stored beside the finished runs."""
    return {k: v for k, v in args_as_json(args).items() if k not in UNRELATED_TO_RESULTS}


def resume_from(partial: Path, settings: dict) -> dict | None:
    """The warm start's evaluation and the finished runs of a stopped benchmark with the same settings, or None.

    Another benchmark's runs are never mixed in, and never overwritten: different settings stop with
    the options that differ."""
    if not partial.is_file():
        return None
    try:
        stored = json.loads(partial.read_text())
        kept_settings, kept = dict(stored["settings"]), {"warm_start": dict(stored["warm_start"]), "runs": list(stored["runs"])}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise SystemExit(f"{partial} is not a stopped run of this benchmark ({type(e).__name__}: {e}); move it away to start afresh")
    differing = sorted(k for k in settings.keys() | kept_settings.keys() if settings.get(k) != kept_settings.get(k))
    if differing:
        shown = ", ".join(f"{k} (kept {kept_settings.get(k)!r}, now {settings.get(k)!r})" for k in differing)
        raise SystemExit(f"{partial} holds finished runs of other settings: {shown}. Rerun with those settings to resume, or move it away to start afresh")
    print(f"resuming from {partial}: {len(kept['runs'])} finished run(s) kept", flush=True)
    return kept


def _rl_job(job: tuple) -> dict:
    return rl_run(*job)


def _init_worker(threads: int) -> None:
    """An RL worker: the run's thread count, and an exit as soon as this benchmark's process is gone
    (killed, its pool's workers had run on as orphans, each holding a core)."""
    torch.set_num_threads(threads)
    exit_with_parent()


def bootstrap_ci(per_game: list[list[float]], n: int = 2000, seed: int = 0) -> list[float]:
    """95% interval of the mean of per-game values (each game: a list over seeds, averaged), games resampled."""
    return bootstrap_mean_ci([statistics.mean(v) for v in per_game], n, seed)


def summarize(before: dict, runs: list[dict], learners: list[str]) -> dict:
    """Per split and learner: warm start, per-seed after, mean gain with its interval; SDAR minus each baseline."""
    out: dict = {}
    for split, base in before["splits"].items():
        row: dict = {"warm_start": base["success"], "games": len(base["won"])}
        gains: dict = {}
        for lrn in learners:
            mine = [r for r in runs if r["learner"] == lrn]
            if not mine:
                continue
            after = [r["final"]["splits"][split] for r in mine]
            gains[lrn] = [[a["won"][g] - w for a in after] for g, w in enumerate(base["won"])]
            row[lrn] = {
                "after_per_seed": [a["success"] for a in after],
                "after_mean": statistics.mean(a["success"] for a in after),
                "gain_mean": statistics.mean(a["success"] for a in after) - base["success"],
                "gain_ci95": bootstrap_ci(gains[lrn]),
                "seeds_below_warm_start": sum(a["success"] < base["success"] for a in after),
            }
            if "sampled" in base:  # --sampled-evals: the same, over each game's win rate
                sampled = [a["sampled"] for a in after]
                row[lrn]["sampled"] = {
                    "warm_start": base["sampled"]["success"],
                    "after_per_seed": [a["success"] for a in sampled],
                    "gain_mean": statistics.mean(a["success"] for a in sampled) - base["sampled"]["success"],
                    "gain_ci95": bootstrap_ci([[a["won"][g] - w for a in sampled] for g, w in enumerate(base["sampled"]["won"])]),
                }
        for other in ("grpo", "grpo_opsd"):
            if "sdar" in gains and other in gains:
                diff = [[statistics.mean(s) - statistics.mean(o)] for s, o in zip(gains["sdar"], gains[other])]
                row[f"sdar_minus_{other}"] = {"mean": statistics.mean(d[0] for d in diff), "ci95": bootstrap_ci(diff)}
        out[split] = row
    return out


def paired_against(report: dict, control: dict) -> dict:
    """Each learner of ``report`` minus the same learner and seed of ``control`` (another run of this
    benchmark, e.g. ``--no-reward``), on the held-out games pooled (not the RL games): per-seed
    differences of greedy success, and of the sampled win rate when both have ``--sampled-evals``,
    with a 95% bootstrap interval over games (each game's difference averaged over seeds)."""
    def held_out(run: dict) -> list[dict]:
        return [split for name, split in run["final"]["splits"].items() if name != "rl_games"]

    def held_out_games(run: dict, key: str) -> list[float]:
        return [w for split in held_out(run) for w in (split["sampled"]["won"] if key == "sampled" else split["won"])]

    theirs = {(r["learner"], r["seed"]): r for r in control["runs"]}
    out: dict = {}
    for lrn in dict.fromkeys(r["learner"] for r in report["runs"]):
        pairs = [(r, theirs[(lrn, r["seed"])]) for r in report["runs"] if r["learner"] == lrn and (lrn, r["seed"]) in theirs]
        if not pairs:
            continue
        row: dict = {"seeds": [r["seed"] for r, _ in pairs]}
        sampled_in_both = all("sampled" in split for pair in pairs for run in pair for split in held_out(run))
        for key in ("greedy", "sampled") if sampled_in_both else ("greedy",):
            per_seed = [[a - b for a, b in zip(held_out_games(r, key), held_out_games(c, key))] for r, c in pairs]
            row[key] = {"diff_per_seed": [statistics.mean(d) for d in per_seed],
                        "diff_mean": statistics.mean(statistics.mean(d) for d in per_seed),
                        "diff_ci95": bootstrap_ci([list(g) for g in zip(*per_seed)])}
        out[lrn] = row
    return out


def _eval_all(policy: PolicyModel, held_out: dict[str, tuple[dict, list]], args) -> dict:
    """Per-split results, and ``success`` over the held-out games (not the RL games) together."""
    per = {split: eval_policy(policy, kw, tasks, args) for split, (kw, tasks) in held_out.items()}
    n = {split: len(tasks) for split, (_, tasks) in held_out.items()}
    pooled = [s for s in per if s != "rl_games"] or list(per)  # held-out games only, when there are any
    out = {"success": sum(per[s]["success"] * n[s] for s in pooled) / sum(n[s] for s in pooled), "splits": per}
    if args.sampled_evals:
        out["sampled_success"] = sum(per[s]["sampled"]["success"] * n[s] for s in pooled) / sum(n[s] for s in pooled)
    return out


def _sampled_note(result: dict) -> str:
    return f" (sampled: {result['sampled_success']:.3f})" if "sampled_success" in result else ""


def _rss_mb() -> float:
    """This process's resident memory now (Linux /proc), in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _update_worker(learner: str, warm: str, episodes, lr: float, repeats: int, skills: str, queue) -> None:
    """In a fresh process: the memory rise of the first update of ``learner``, then ``repeats`` timed updates."""
    torch.set_num_threads(1)
    from learners.algorithms import make_learner
    from learners.trainer import load_skills, resolve_cpu_preset

    policy = PolicyModel.from_pretrained(PolicyModelConfig(model=warm))
    # the RL runs' teacher context (the CPU preset's, which the warm start learned to read), built as the trainer builds it
    cfg = resolve_cpu_preset(TrainArgs(learner=learner, env="alfworld", model=warm, preset="cpu", skills=skills), announce=False)
    lrn = make_learner(learner, policy, load_skills(cfg, learner != "grpo", policy.tokenizer), overrides={"lr": lr})
    before = _rss_mb()
    lrn.update(episodes)  # first update: allocations peak here; also the warm-up
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        lrn.update(episodes)
        times.append(time.perf_counter() - t0)
    queue.put({"update_s": times, "rss_before_update_mb": before, "peak_rss_mb": peak})


def speed_comparison(warm: str, env_kwargs: dict, tasks: list, args) -> dict:
    """GRPO and SDAR updates of one recorded batch, in fresh processes, interleaved."""
    from learners.trainer import rollout

    policy = PolicyModel.from_pretrained(PolicyModelConfig(model=warm), with_reference=False)
    cfg = TrainArgs(max_turns=args.max_turns, max_new_tokens=args.max_new_tokens, num_envs=args.num_envs)
    pool = make_pool("inline", "alfworld", args.num_envs, env_kwargs)
    try:
        torch.manual_seed(0)
        episodes = rollout(policy, pool, tasks[: args.tasks_per_step], cfg, seed=0, group_size=args.group_size)
    finally:
        asyncio.run(pool.aclose())
    ctx = mp.get_context("spawn")
    results: dict[str, list] = {"grpo": [], "sdar": []}
    for _ in range(args.speed_rounds):
        for learner in ("grpo", "sdar"):
            q = ctx.Queue()
            p = ctx.Process(target=_update_worker, args=(learner, warm, episodes, args.lr, args.speed_repeats, args.skills, q))
            p.start()
            results[learner].append(q.get())
            p.join()
    summary = {}
    for learner, rows in results.items():
        times = [t for r in rows for t in r["update_s"]]
        summary[learner] = {
            "update_s_median": statistics.median(times),
            "update_s_all": [t for r in rows for t in r["update_s"]],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
            "update_rss_rise_mb": statistics.median(r["peak_rss_mb"] - r["rss_before_update_mb"] for r in rows),
        }
    turns = sum(len(e.turns) for e in episodes)
    return {
        "batch": {"episodes": len(episodes), "turns": turns, "tokens": sum(len(t.prompt_ids) + len(t.response_ids) for e in episodes for t in e.turns)},
        **summary,
        "sdar_over_grpo_update_time": summary["sdar"]["update_s_median"] / summary["grpo"]["update_s_median"],
        "sdar_over_grpo_peak_rss": summary["sdar"]["peak_rss_mb"] / summary["grpo"]["peak_rss_mb"],
        "sdar_over_grpo_update_rss_rise": summary["sdar"]["update_rss_rise_mb"] / max(summary["grpo"]["update_rss_rise_mb"], 1e-9),
    }


def plot_curves(report: dict, path: Path) -> Path:
    """One PNG: held-out success over RL steps, and the training rollouts' success per step, per
    learner (mean over seeds, each seed faint)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from learners.plot import save_figure

    fig, (held, roll) = plt.subplots(1, 2, figsize=(11, 3.8))
    start = report["warm_start"]["held_out"]["success"]
    for color, learner in zip(("C0", "C1", "C2", "C3", "C4"), report["summary"]):
        runs = [r for r in report["runs"] if r["learner"] == learner]
        for axis, series in ((held, [[(0, start)] + [(c["step"], c["success"]) for c in r["curve"]] for r in runs]),
                             (roll, [[(i + 1, s.get("rollout/all/success", 0.0)) for i, s in enumerate(r["steps"])] for r in runs])):
            for points in series:
                axis.plot(*zip(*points), color=color, alpha=0.25, lw=1)
            steps = [x for x, _ in series[0]]
            axis.plot(steps, [statistics.mean(dict(p)[x] for p in series) for x in steps], color=color, lw=2, label=learner)
    pooled = [s for s in report["games"]["held_out"] if s != "rl_games"] or ["rl_games"]  # as _eval_all pools them
    held.set(title=f"success on {' + '.join(pooled)} (greedy)", xlabel="RL step", ylabel="success")
    roll.set(title="training rollouts' success (sampled)", xlabel="RL step")
    for axis in (held, roll):
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def build_warm_start(args, env_kwargs: dict, train_tasks: list) -> str:
    """The built-in tiny policy's recipe with the --sft-* overrides, cached by its inputs."""
    sft = SFTArgs(env="alfworld", games=args.sft_games, epochs=args.sft_epochs, hidden_size=args.sft_hidden, num_layers=args.sft_layers,
                  lr=args.sft_lr, env_kwargs={k: str(v) for k, v in env_kwargs.items()})
    demo_kwargs = demo_env_kwargs("alfworld", env_kwargs)
    key = hashlib.sha256(json.dumps([vars(sft) | {"output": None}, demo_kwargs, train_tasks, args.sft_skip_types], default=str).encode()).hexdigest()[:12]
    sft.output = sdar_gym_home() / "models" / f"bench-tiny-alfworld-{key}"
    sft_tasks = [t for t in train_tasks if not any(str(t).startswith(p) for p in args.sft_skip_types)]
    return str(build_sft_policy(sft, progress=True, tasks=sft_tasks))  # the stages print progress lines into the log


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=None, help="ALFWorld data (default: the generated game set)")
    ap.add_argument("--train-split", default="train", help="games for the warm start and RL")
    ap.add_argument("--eval-splits", nargs="*", default=["valid_seen", "valid_unseen"], help="held-out games")
    ap.add_argument("--rl-games", type=int, default=0, help="RL on only this many training games, spread over the split (0: all)")
    ap.add_argument("--eval-rl-games", action="store_true", help="also evaluate on the RL games themselves: does it learn what it trains on?")
    ap.add_argument("--engine", default="fast", help="ALFWorld engine (fast or textworld)")
    ap.add_argument("--held-out", type=int, default=15, help="held-out games evaluated per eval split")
    ap.add_argument("--train-eval", type=int, default=20, help="RL games also evaluated, spread over them (0: none; --eval-rl-games: all)")
    ap.add_argument("--real-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "alfworld", help="real ALFWorld data")
    ap.add_argument("--real-games", type=int, default=40, help="real valid_seen games evaluated, a fixed spread (0: none; 140: all)")
    recipe = SFTArgs()  # the built-in tiny policy's recipe unless overridden
    ap.add_argument("--sft-games", type=int, default=recipe.games)
    ap.add_argument("--sft-epochs", type=int, default=recipe.epochs)
    ap.add_argument("--sft-hidden", type=int, default=recipe.hidden_size)
    ap.add_argument("--sft-layers", type=int, default=recipe.num_layers)
    ap.add_argument("--sft-lr", type=float, default=recipe.lr)
    ap.add_argument("--warm-start-only", action="store_true", help="build and evaluate the warm start, then stop")
    ap.add_argument("--warm-start", type=Path, default=None, help="RL from this policy folder (e.g. one `sdar-gym sft` built) instead of building one; the --sft-* flags are then unused")
    ap.add_argument("--learners", nargs="+", default=list(LEARNERS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--tasks-per-step", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--max-turns", type=int, default=30)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--num-envs", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-4, help="the paper's 1e-6 is for 1.5B+ models; a tiny model over a few steps needs more")
    ap.add_argument("--lora-rank", type=int, default=0, help="train a LoRA adapter of this rank instead of every weight (0: full fine-tuning, the released default: verl/trainer/config/ppo_trainer.yaml lora_rank 0)")
    ap.add_argument("--demo-coef", type=float, default=0.0, help="weight of a supervised loss on expert turns beside RL (PPO-ptx; sdar-gym's own, 0 in the released code)")
    ap.add_argument("--demo-games", type=int, default=200, help="training games the expert plays for --demo-coef's turns")
    ap.add_argument("--no-reward", action="store_true", help="a control: every RL run's rewards are 0 (win, format penalty, shaping), so its updates carry no reward signal and move the policy only by the KL and entropy terms and --demo-coef's loss; the rollouts (and the env's progress reports) are as without it")
    ap.add_argument("--mini-batches", type=int, default=4, help="optimizer steps per RL step (PPO-style mini-batches of the step's turns)")
    ap.add_argument("--no-effect-penalty", type=float, default=0.0, help="penalty of a well-formed action that did nothing (sdar-gym's own; 0 in the released code)")
    ap.add_argument("--progress-reward", type=float, default=0.0, help="per-turn reward per step of progress toward the goal (sdar-gym's own; 0 in the released code)")
    ap.add_argument("--choose-admissible", action="store_true", help="roll out and evaluate through learners.admissible_choice: only listed actions (sdar-gym's own; the released code plays free text)")
    ap.add_argument("--history-length", type=int, default=None,
                    help="past turns in each prompt, in RL and evaluation (default: the warm start's, as its sft.json records it, else the env's 2)")
    ap.add_argument("--skills", default="official", help="teacher skill routing (the main job's default; the CPU preset caps it at 800 characters, as the warm start saw it)")
    ap.add_argument("--skills-embedder", default="hashing")
    ap.add_argument("--eval-every", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=1.0, help="rollout sampling temperature (the released default: verl/trainer/config/ppo_trainer.yaml rollout.temperature 1.0)")
    ap.add_argument("--eval-temperature", type=float, default=0.0, help="temperature of the one episode per held-out game (0: greedy, the issue's measure)")
    ap.add_argument("--sampled-evals", type=int, default=0,
                    help="also play each held-out game this many times at --sampled-temperature and report the win rate beside greedy success "
                         "(more episodes per game: a smaller change stands out from noise)")
    ap.add_argument("--sampled-temperature", type=float, default=0.4,
                    help="temperature of --sampled-evals (the released validation: rollout.val_kwargs temperature 0.4, do_sample True, examples/grpo_trainer/run_alfworld.sh)")
    ap.add_argument("--speed-rounds", type=int, default=2, help="fresh processes per learner, alternating GRPO and SDAR (0: skip)")
    ap.add_argument("--speed-repeats", type=int, default=2, help="timed updates per process, after the first")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="RL runs in parallel processes")
    ap.add_argument("--sft-skip-types", nargs="*", default=[], help="task types without expert demonstrations")
    ap.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "results" / "learning.json")
    ap.add_argument("--plot-only", action="store_true", help="redraw the PNG of curves from an existing --output JSON")
    ap.add_argument("--against", type=Path, default=None,
                    help="compare an existing --output JSON with this one (e.g. a --no-reward control of the same seeds), learner by learner "
                         "and seed by seed, on the pooled held-out games; writes <output>_vs_<against>.json")
    return ap


def main(argv: list[str] | None = None) -> dict:
    ap = parser()
    args = ap.parse_args(argv)
    if args.sampled_evals < 0:
        ap.error(f"--sampled-evals must be 0 (off) or more, got {args.sampled_evals}")
    if args.against:
        try:
            reports = [json.loads(path.read_text()) for path in (args.output, args.against)]
            paired = paired_against(*reports)
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise SystemExit(f"--against compares two finished reports of this benchmark: {args.output} and {args.against} ({type(e).__name__}: {e})")
        comparison = {"report": str(args.output), "against": str(args.against), "paired": paired}
        path = atomic_write_json(args.output.with_name(f"{args.output.stem}_vs_{args.against.stem}.json"), comparison)
        print(json.dumps(comparison["paired"], indent=1))
        print(f"wrote {path}")
        return comparison
    if args.plot_only:
        print(plot_curves(json.loads(args.output.read_text()), args.output.with_suffix(".png")))
        return {}
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    data = {"engine": args.engine} | ({"data_dir": str(args.data_dir)} if args.data_dir else {})
    env_kwargs = {**data, "split": args.train_split}
    train_tasks = task_list("alfworld", env_kwargs)[0]
    held_out = held_out_splits(data, args.eval_splits, args.held_out)
    rl_tasks = spread(train_tasks, args.rl_games) if args.rl_games else train_tasks
    if args.eval_rl_games or args.train_eval:
        held_out["rl_games"] = (env_kwargs, rl_tasks if args.eval_rl_games else spread(rl_tasks, args.train_eval))
    held_out |= real_valid_seen(args.real_dir, args.real_games, args.engine)
    if not held_out:
        ap.error("nothing to evaluate: give --eval-splits or --eval-rl-games")
    warm = str(args.warm_start) if args.warm_start else build_warm_start(args, env_kwargs, train_tasks)
    print(f"warm start: {warm}", flush=True)
    sft_meta = json.loads((Path(warm) / "sft.json").read_text()) if (Path(warm) / "sft.json").is_file() else {}
    if args.history_length is None:
        args.history_length = sft_meta.get("history_length")  # play as the warm start learned
    partial = args.output.with_suffix(".partial.json")
    settings = run_settings(args)
    kept = resume_from(partial, settings)
    before = kept["warm_start"] if kept else held_out_eval(warm, held_out, args)
    print(f"warm start held-out success: {before['success']:.3f}{_sampled_note(before)}", flush=True)
    if args.warm_start_only:
        print(json.dumps(before, indent=1))
        return before

    out_dir = runs_folder(args)
    jobs = [(lrn, seed, warm, env_kwargs, rl_tasks, held_out, args, out_dir) for seed in range(args.seeds) for lrn in args.learners]
    runs = kept["runs"] if kept else []
    done = {(r["learner"], r["seed"]) for r in runs}
    todo = [job for job in jobs if (job[0], job[1]) not in done]
    with contextlib.ExitStack() as stack:
        if args.jobs > 1:
            workers = stack.enter_context(mp.get_context("spawn").Pool(args.jobs, initializer=_init_worker, initargs=(args.threads,)))
            finished = workers.imap_unordered(_rl_job, todo)
        else:
            finished = map(_rl_job, todo)
        for run in finished:  # each run is kept as it finishes: a stopped benchmark loses only the runs under way
            runs.append(run)
            atomic_write_json(partial, {"settings": settings, "warm_start": before, "runs": runs})
    order = {(lrn, seed): i for i, (lrn, seed, *_) in enumerate(jobs)}
    runs.sort(key=lambda r: order[(r["learner"], r["seed"])])
    speed = speed_comparison(warm, env_kwargs, train_tasks, args) if args.speed_rounds else None

    summary = {}
    for lrn in args.learners:
        mine = [r for r in runs if r["learner"] == lrn]
        finals = [r["final"]["success"] for r in mine]
        summary[lrn] = {"success_after_mean": statistics.mean(finals), "success_after_per_seed": finals,
                        "success_after_std": statistics.pstdev(finals), "gain_over_warm_start": statistics.mean(finals) - before["success"],
                        "wall_s_per_run": [r["wall_s"] for r in mine], "gate_over_training": [r["gate_over_training"] for r in mine]}
    report = {
        "what": "held-out ALFWorld success before/after RL from one tiny SFT warm start; GRPO vs SDAR vs GRPO+OPSD",
        "config": args_as_json(args),
        "games": {"train": len(train_tasks), "rl": len(rl_tasks), "held_out": {split: len(t) for split, (_, t) in held_out.items()},
                  "data": str(args.data_dir or "generated default set")},
        "warm_start": {"path": warm, **sft_meta, "held_out": before},
        "summary": summary,
        "per_split": summarize(before, runs, args.learners),
        "runs": runs,
        "speed": speed,
        "wall_s": time.perf_counter() - start,
        "machine": f"{mp.cpu_count()} CPU cores (shared), torch threads {args.threads}",
    }
    atomic_write_json(args.output, report)
    partial.unlink(missing_ok=True)
    plot_curves(report, args.output.with_suffix(".png"))
    ratios = {k: v for k, v in (speed or {}).items() if k.startswith("sdar_over_grpo")}
    print(json.dumps({"warm_start": before["success"], "per_split": report["per_split"], **ratios}, indent=1))
    print(f"wrote {args.output} in {report['wall_s'] / 60:.1f} min")
    return report


if __name__ == "__main__":
    main()
