"""Does a penalty on inadmissible actions help RL? GRPO with and without it, side by side, from one policy.

The warm start's lost games mostly end repeating a command the env does not list as admissible
(``warm_start_play.py``: taking an object that is not there). The released code penalizes only
malformed responses, so a lost episode tells no turn what went wrong. ``--no-effect-penalty``
(``RewardShaping.no_effect_penalty``, sdar-gym's own, 0 in the paper preset) costs exactly those
turns. This runs two arms in two processes, one core each, with the same seeded tasks and sampling:

1. GRPO for ``--steps`` steps of ``--tasks-per-step`` × ``--group-size`` training episodes at
   ``--lr`` with ``--mini-batches`` optimizer steps per step (``learning.py``'s defaults), one arm
   at penalty 0 and one at ``--penalty``; per step: rollout success, the share of inadmissible
   actions among well-formed ones, approx-KL;
2. each final policy, and the warm start, plays one greedy game per held-out game
   (``warm_start_play.play``: ``--games`` generated valid_seen and valid_unseen games and
   ``--real-games`` real valid_seen ones): success, how lost games end, inadmissible share, verbs.

Writes ``benchmarks/results/no_effect_penalty.json``.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_policy_args, run_steps, scratch_trainer, write_result  # noqa: E402


def run_arm(args, penalty: float, keep: Path) -> list[dict]:
    """``args.steps`` GRPO steps at this penalty; saves the final policy to ``keep``; per-step metrics."""
    trainer = scratch_trainer(args, "no_effect_penalty", steps=args.steps, tasks_per_step=args.tasks_per_step, group_size=args.group_size,
                              no_effect_penalty=penalty, learner_args={"lr": args.lr, "mini_batches": str(args.mini_batches)})
    steps = run_steps(trainer, args.steps, lambda m: {"success": m["rollout/all/success"], "inadmissible": m["rollout/no_effect_action_ratio"],
                                                      "approx_kl": m.get("train/approx_kl"), "step_s": m["perf/step_s"]}, f"penalty {penalty}")
    trainer.policy.save(keep)
    return steps


def main() -> None:
    from benchmarks.warm_start_play import add_play_args, play, play_splits

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_policy_args(p)
    p.add_argument("--penalty", type=float, default=1.0, help="the penalized arm's no_effect_penalty (a win is worth 10)")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--tasks-per-step", type=int, default=4)
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--lr", default="1e-4")
    p.add_argument("--mini-batches", type=int, default=4)
    add_play_args(p)
    p.add_argument("--keep", type=Path, default=Path("runs") / "no_effect_penalty", help="where the trained policies are saved")
    p.add_argument("--out", default="no_effect_penalty", help="result name under benchmarks/results/")
    args = p.parse_args()
    if args.model is None:
        p.error("--model FOLDER: a warm start (e.g. one `sdar-gym sft` built)")
    started = time.perf_counter()
    arms = {"penalty_0": 0.0, f"penalty_{args.penalty:g}": args.penalty}
    with mp.get_context("spawn").Pool(2) as workers:  # the two arms side by side, one core each
        curves = workers.starmap(run_arm, [(args, penalty, args.keep / name) for name, penalty in arms.items()])
    splits = play_splits(args)
    played = {}
    for name, path in {"warm_start": args.model, **{n: str(args.keep / n) for n in arms}}.items():
        print(f"{name} ({path}):", flush=True)
        played[name] = play(path, splits, args)["splits"]
    write_result(args.out, {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                            "training": dict(zip(arms, curves)), "greedy_play": played, "wall_s": time.perf_counter() - started})


if __name__ == "__main__":
    main()
