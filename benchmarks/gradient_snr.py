"""Is one RL step's gradient signal or noise? Cosines between full-batch policy gradients.

From one policy, roll out ``--batches`` independent batches (``--tasks-per-step`` tasks × ``--group-size``
rollouts, as a training step does) and compute, at the same weights, the learner's full-batch gradient
of each batch twice:
- with the batch's own advantages (``real``);
- with those advantages shuffled among the batch's turn samples (``shuffled``): the same tokens and
  the same advantage values, but no link between what was done and how it turned out.

Two real gradients of different batches share the direction that raises success, plus independent
noise. So their cosine measures how much of a step is signal: near 1 the batches agree, near 0 each
step is mostly noise. Under AdamW, which moves every weight by about the lr whatever its gradient's
size, a noisy step changes the policy as much as a useful one. The shuffled gradients are the
control: real-vs-shuffled and shuffled-vs-shuffled cosines show the size of chance agreement.

With cos ≈ s² / (s² + σ²/N) for batches of N episodes (s the signal, σ² the per-episode noise), a
batch of N_half = N · (1/cos − 1) episodes would reach a cosine of 0.5. The JSON reports it when the
mean real cosine is above the chance level.

``--fixed-tasks N`` plays the same N tasks in every batch (chosen from ``--screen-tasks`` screened ones
whose group had both wins and losses): how much of the noise comes from drawing new tasks each step.

The same measurement runs first on the multi-turn toy env of the learning tests (``tests/learning_envs.py``,
two rooms, where GRPO learns in a few steps) as a reference.

Writes ``benchmarks/results/gradient_snr.json``.
"""
from __future__ import annotations

import argparse
import itertools
import random
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch  # noqa: E402

from benchmarks.common import add_policy_args, scratch_trainer, screen_mixed_tasks, write_result  # noqa: E402
from learners.base import PolicyGradientLearner  # noqa: E402


def batch_gradients(learner: PolicyGradientLearner, batches: list, seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per batch, the learner's full-batch gradient with real and with shuffled advantages, weights unchanged.

    The learner makes one optimizer step per update (one mini-batch, one epoch); its ``step`` is replaced
    by a copy of the gradient, so the weights stay where they were for every batch.
    """
    params = list(learner.policy.trainable_parameters())
    captured: list[torch.Tensor] = []
    learner.optimizer.step = lambda *a, **k: captured.append(torch.cat([p.grad.detach().flatten().clone() for p in params]))
    real_samples = learner.samples
    real, shuffled = [], []
    for i, episodes in enumerate(batches):
        learner.update(episodes)
        real.append(captured.pop())

        def shuffled_samples(eps, _i=i):
            out = real_samples(eps)
            values = [s.advantage for s in out]
            random.Random(seed * 1009 + _i).shuffle(values)
            for s, a in zip(out, values):
                s.advantage = a
            return out

        learner.samples = shuffled_samples
        learner.update(episodes)
        learner.samples = real_samples
        shuffled.append(captured.pop())
    return real, shuffled


def cosines(real: list[torch.Tensor], shuffled: list[torch.Tensor], episodes_per_batch: int) -> dict:
    unit = lambda g: g / g.norm().clamp_min(1e-30)  # noqa: E731
    r, s = [unit(g) for g in real], [unit(g) for g in shuffled]
    pairs = list(itertools.combinations(range(len(r)), 2))
    real_real = [float(r[i] @ r[j]) for i, j in pairs]
    real_shuffled = [float(r[i] @ s[j]) for i in range(len(r)) for j in range(len(s)) if i != j]
    shuffled_shuffled = [float(s[i] @ s[j]) for i, j in pairs]
    mean = statistics.mean(real_real)
    chance = statistics.mean(abs(c) for c in real_shuffled + shuffled_shuffled)
    out = {
        "real_vs_real": real_real, "real_vs_shuffled": real_shuffled, "shuffled_vs_shuffled": shuffled_shuffled,
        "mean_real_vs_real": mean, "mean_abs_chance": chance, "episodes_per_batch": episodes_per_batch,
        "zero_gradient_batches": sum(float(g.norm()) == 0.0 for g in real),  # every advantage 0: such a batch counts as cosine 0
    }
    if mean > chance:
        out["episodes_for_cosine_half"] = round(episodes_per_batch * (1 / mean - 1))
    return out


def toy(args) -> dict:
    """The reference: RoomsEnv of the learning tests, from its warm start, with the same learner settings."""
    import learning_envs
    from learners.algorithms import make_learner

    env = learning_envs.RoomsEnv()
    policy = learning_envs.rooms_warm_start(env, seed=args.seed)
    learner = make_learner("grpo", policy, None, {"lr": 1e-3, "kl_coef": 0.0, "entropy_coef": 0.0, "mini_batches": 1, "micro_batch_size": 64})
    batches = [learning_envs.rooms_rollout(policy, env, group_size=8, seed=500 + b) for b in range(args.batches)]
    real, shuffled = batch_gradients(learner, batches, args.seed)
    return {"env": "RoomsEnv (tests/learning_envs.py)", "won": [sum(e.won for e in b) for b in batches], **cosines(real, shuffled, len(batches[0]))}


def agent_env(args) -> dict:
    from learners.trainer import rollout, step_tasks
    from sdar_gym.rollout import make_pool

    import asyncio

    trainer = scratch_trainer(args, "gradient_snr", tasks_per_step=args.tasks_per_step, group_size=args.group_size, steps=args.batches,
                              advantage=args.advantage, learner_args={"mini_batches": "1", "ppo_mini_batch_size": "0", "epochs": "1", "kl_coef": "0", "entropy_coef": "0"})
    pool = make_pool("inline", args.env, trainer.cfg.num_envs, trainer.env_kwargs)
    batches, started = [], time.perf_counter()
    fixed = None
    try:
        if args.fixed_tasks:  # the same tasks in every batch: ones whose screening group had mixed outcomes
            fixed, wins = screen_mixed_tasks(trainer, pool, args.screen_tasks, args.fixed_tasks, args.seed, args.group_size)
            print(f"screened {len(wins)} tasks: wins per group {wins}; fixed {len(fixed)}", flush=True)
            if not fixed:
                raise SystemExit("no screened task had mixed outcomes: raise --screen-tasks")
        for b in range(args.batches):
            tasks = fixed or step_tasks(trainer.tasks, args.tasks_per_step, args.seed, b + 1)
            batches.append(rollout(trainer.policy, pool, tasks, trainer.cfg, seed=7919 * (args.seed + 1) + b, group_size=args.group_size,
                                   agent=trainer.agent, generator=trainer.generator))
            print(f"batch {b + 1}/{args.batches}: {sum(e.won for e in batches[-1])}/{len(batches[-1])} won, {time.perf_counter() - started:.0f}s", flush=True)
    finally:
        asyncio.run(pool.aclose())
        shutil.rmtree(trainer.cfg.output, ignore_errors=True)  # the trainer's run folder: nothing is trained or saved
    real, shuffled = batch_gradients(trainer.learner, batches, args.seed)
    return {"env": args.env, "env_kwargs": trainer.cfg.env_kwargs, "fixed_tasks": [str(t) for t in fixed] if fixed else None, "model": args.model or "built-in tiny policy", "learner": args.learner, "advantage": args.advantage,
            "won": [sum(e.won for e in b) for b in batches], "turns": [sum(len(e.turns) for e in b) for b in batches],
            **cosines(real, shuffled, len(batches[0]))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_policy_args(p)
    p.add_argument("--advantage", default="grpo", help="advantage estimator (grpo, grpo_episode, gigpo)")
    p.add_argument("--tasks-per-step", type=int, default=4)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--fixed-tasks", type=int, default=0, help="every batch plays the same N tasks (screened for mixed outcomes) instead of fresh ones")
    p.add_argument("--screen-tasks", type=int, default=24, help="tasks screened, one group each, for --fixed-tasks")
    p.add_argument("--out", default="gradient_snr", help="result name under benchmarks/results/")
    args = p.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*optimizer.step.*")  # the step is replaced by a gradient copy on purpose
    reference = toy(args)
    print(f"toy reference: mean cosine of real gradients {reference['mean_real_vs_real']:+.3f} (chance {reference['mean_abs_chance']:.3f})", flush=True)
    measured = agent_env(args)
    print(f"{args.env}: mean cosine of real gradients {measured['mean_real_vs_real']:+.3f} (chance {measured['mean_abs_chance']:.3f}); "
          f"episodes per batch for a cosine of 0.5: {measured.get('episodes_for_cosine_half', 'no signal above chance')}", flush=True)
    write_result(args.out, {"args": vars(args), "toy_reference": reference, "measured": measured})


if __name__ == "__main__":
    main()
