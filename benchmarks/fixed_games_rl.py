"""Does RL improve the games it trains on? GRPO on a few fixed training games, against a no-update control.

1. Screening: one group of 8 rollouts of each of ``--screen-tasks`` training tasks from the policy;
   the first ``--fixed-tasks`` whose group had both wins and losses are kept (games it wins sometimes).
2. Two runs from the same policy train on those games only, in two processes side by side: GRPO at
   ``--lr`` and a control at ``--control-lr`` (1e-9: the same seeded tasks and sampling, no learning).
   Each step rolls out ``--group-size`` episodes of every kept game at temperature 1 and makes one
   optimizer step on them. A step's rollout success is the sampled success on those games of the
   policy before that step's update, so step 1 is the same in both runs.

Why fixed games and big groups: ``gradient_snr.py`` measured that on fresh ALFWorld tasks the
gradients of independent 32-episode batches agree no better than chance, and on fixed games about
three times better. Reports per-step success of both runs, their mean over steps 2.. and the paired
difference with a 95% bootstrap interval over steps.

Writes ``benchmarks/results/fixed_games_rl.json``.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_policy_args, bootstrap_mean_ci, run_steps, scratch_trainer, screen_mixed_tasks, write_result  # noqa: E402


def trainer_for(args, lr: str):
    return scratch_trainer(args, "fixed_games_rl", tasks_per_step=args.fixed_tasks, group_size=args.group_size, steps=args.steps,
                           learner_args={"lr": lr, "mini_batches": "1", "ppo_mini_batch_size": "0"})


def run_arm(args, lr: str, task_ids: list[str]) -> list[dict]:
    """``args.steps`` RL steps on the given tasks; per step: rollout success, entropy, KL to the start, time."""
    trainer = trainer_for(args, lr)
    by_id = {str(t): t for t in trainer.tasks}
    trainer.tasks = [by_id[t] for t in task_ids]
    return run_steps(trainer, args.steps, lambda m: {"success": m["rollout/all/success"], "entropy": m.get("train/entropy"), "kl": m.get("train/kl"),
                                                     "step_s": m["perf/step_s"]}, f"lr {lr}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_policy_args(p)
    p.add_argument("--screen-tasks", type=int, default=16)
    p.add_argument("--fixed-tasks", type=int, default=4)
    p.add_argument("--group-size", type=int, default=16, help="rollouts of each kept game per step")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--lr", default="2e-4")
    p.add_argument("--control-lr", default="1e-9")
    p.add_argument("--out", default="fixed_games_rl", help="result name under benchmarks/results/")
    args = p.parse_args()
    started = time.perf_counter()

    import torch

    from sdar_gym.rollout import make_pool

    torch.set_num_threads(1)
    screener = trainer_for(args, args.control_lr)
    pool = make_pool("inline", args.env, screener.cfg.num_envs, screener.env_kwargs)
    try:
        kept, wins = screen_mixed_tasks(screener, pool, args.screen_tasks, args.fixed_tasks, args.seed)
    finally:
        asyncio.run(pool.aclose())
        shutil.rmtree(screener.cfg.output, ignore_errors=True)
    task_ids = [str(t) for t in kept]
    print(f"screened {len(wins)} tasks (wins of 8: {wins}); training on {len(task_ids)}: {task_ids}", flush=True)
    if not task_ids:
        raise SystemExit("no screened task had both wins and losses: raise --screen-tasks")
    del screener

    with mp.get_context("spawn").Pool(2) as workers:  # the two runs side by side, one core each
        rl, control = workers.starmap(run_arm, [(args, args.lr, task_ids), (args, args.control_lr, task_ids)])
    after = slice(1, None)  # step 1's rollouts come from the same policy in both runs
    diffs = [a["success"] - b["success"] for a, b in zip(rl[after], control[after])]
    summary = {
        "rl_mean_after_step1": statistics.mean(s["success"] for s in rl[after]),
        "control_mean_after_step1": statistics.mean(s["success"] for s in control[after]),
        "paired_difference": statistics.mean(diffs),
        "paired_difference_ci95": bootstrap_mean_ci(diffs),
        "step1_equal": rl[0]["success"] == control[0]["success"],
    }
    print(f"rollout success after step 1: lr {args.lr} {summary['rl_mean_after_step1']:.3f}, control {summary['control_mean_after_step1']:.3f}, "
          f"difference {summary['paired_difference']:+.3f} (95% CI {summary['paired_difference_ci95'][0]:+.3f} to {summary['paired_difference_ci95'][1]:+.3f})",
          flush=True)
    write_result(args.out, {"args": vars(args), "tasks": task_ids, "screen_wins": wins, "rl": rl, "control": control, "summary": summary,
                            "wall_s": time.perf_counter() - started})


if __name__ == "__main__":
    main()
