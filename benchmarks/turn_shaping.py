"""Do per-turn shaping terms help RL? GRPO arms side by side from one policy, then greedy play.

A lost ALFWorld episode tells none of its turns what went wrong: the released GRPO gives every turn
of an episode the same task reward, less only that turn's invalid-format penalty. sdar-gym has two
optional per-turn terms (``sdar_gym.agent.shaping.RewardShaping``; 0 in the paper preset), each kept by
the turn that earned it:

- ``no_effect_penalty``: a well-formed action the env answers with "Nothing happens." (the
  warm start's lost games mostly end repeating one, ``warm_start_play.py``);
- ``progress_reward``: per step the action brought the goal closer (ALFWorld ``progress=True``: the
  drop of the relaxed-plan length).

Each ``--arm NAME:KEY=VALUE,...`` (keys: those two, ``temperature`` of the rollout, ``lr``) runs
``--steps`` GRPO steps of ``--tasks-per-step`` × ``--group-size`` training episodes with
``--mini-batches`` optimizer steps each (``learning.py``'s defaults) in its own process, all with
the same seeded tasks and sampling; per step: rollout success, the share of turns that played a
well-formed action that did nothing, approx-KL. Then the warm start and each arm's final policy
play one greedy game per held-out game (``warm_start_play.play``): success, how lost games end,
the no-effect share, the verbs played. With ``--choose-admissible`` every arm trains and every policy
plays through ``learners.admissible_choice`` (only listed actions).

Writes ``benchmarks/results/turn_shaping.json``.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_policy_args, args_as_json, run_steps, scratch_trainer, write_result  # noqa: E402

ARM_KEYS = {"no_effect_penalty": float, "progress_reward": float, "temperature": float, "lr": str}
"""What an arm may set: the two shaping terms, the rollout temperature, the lr."""


def parse_arm(text: str) -> tuple[str, dict]:
    """``"name:key=value,key=value"`` (or ``"name:"``) → (name, settings), with a clear error for unknown keys."""
    name, sep, rest = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"an arm is NAME:KEY=VALUE,... (or NAME:), got {text!r}")
    settings = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in ARM_KEYS:
            raise argparse.ArgumentTypeError(f"unknown arm setting {key!r} in {text!r}; known: {', '.join(ARM_KEYS)}")
        settings[key] = ARM_KEYS[key](value)
    return name, settings


def run_arm(args, name: str, settings: dict, keep: Path) -> list[dict]:
    """``args.steps`` GRPO steps under this arm's settings; saves the final policy to ``keep``; per-step metrics."""
    fields = {k: v for k, v in settings.items() if k != "lr"}
    env_kwargs = {"progress": "true"} if settings.get("progress_reward") else {}
    trainer = scratch_trainer(args, "turn_shaping", steps=args.steps, tasks_per_step=args.tasks_per_step, group_size=args.group_size, **fields,
                              choose_admissible=args.choose_admissible,
                              env_kwargs=env_kwargs, learner_args={"lr": settings.get("lr", args.lr), "mini_batches": str(args.mini_batches)})
    steps = run_steps(trainer, args.steps, lambda m: {"success": m["rollout/all/success"], "no_effect": m["rollout/no_effect_action_ratio"],
                                                      "reward": m["rollout/all/reward"], "approx_kl": m.get("train/approx_kl"),
                                                      "step_s": m["perf/step_s"]}, name)
    trainer.policy.save(keep)
    return steps


def main() -> None:
    from benchmarks.warm_start_play import add_play_args, play, play_splits

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_policy_args(p)
    p.add_argument("--arm", dest="arms", type=parse_arm, action="append", metavar="NAME:KEY=VALUE,...",
                   help="an arm (repeat); default: grpo:, no_effect_1:no_effect_penalty=1, progress_1:progress_reward=1")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--tasks-per-step", type=int, default=4)
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--lr", default="1e-4", help="of every arm that sets none")
    p.add_argument("--mini-batches", type=int, default=4)
    p.add_argument("--jobs", type=int, default=2, help="arms trained at once, one core each")
    add_play_args(p)
    p.add_argument("--keep", type=Path, default=Path("runs") / "turn_shaping", help="where the trained policies are saved")
    p.add_argument("--out", default="turn_shaping", help="result name under benchmarks/results/")
    args = p.parse_args()
    if args.model is None:
        p.error("--model FOLDER: a warm start (e.g. one `sdar-gym sft` built)")
    arms = dict(args.arms or [parse_arm(a) for a in ("grpo:", "no_effect_1:no_effect_penalty=1", "progress_1:progress_reward=1")])
    started = time.perf_counter()
    with mp.get_context("spawn").Pool(args.jobs) as workers:
        curves = workers.starmap(run_arm, [(args, name, settings, args.keep / name) for name, settings in arms.items()])
    train_s = time.perf_counter() - started
    splits = play_splits(args)
    played = {}
    for name, path in {"warm_start": args.model, **{n: str(args.keep / n) for n in arms}}.items():
        print(f"{name} ({path}):", flush=True)
        played[name] = play(path, splits, args)["splits"]
    write_result(args.out, {"args": args_as_json(args), "arms": arms,
                            "training": dict(zip(arms, curves)), "greedy_play": played, "train_s": train_s, "wall_s": time.perf_counter() - started})


if __name__ == "__main__":
    main()
