"""``sdar-gym eval``: the paper's Table 1 breakdown for a policy on an env's held-out split.

Each of the first ``episodes`` tasks is played once, with a sampling seed fixed per episode
(greedy by default), so the numbers do not depend on ``--batch-size``.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.table import Table

from sdar_gym.core import ConfigError, DataError
from sdar_gym.io import atomic_write_json
from sdar_gym.registration import parse_env_kwargs, task_list
from sdar_gym.rollout.types import Episode, SamplingParams


@dataclass
class EvalArgs:
    """Evaluate a policy and print the paper's Table 1 breakdown for the env."""

    env: str = "alfworld"
    """Env short name or gymnasium id."""
    model: str | None = None
    """Hugging Face id or local folder (omit both this and --checkpoint for the built-in tiny policy)."""
    checkpoint: Path | None = None
    """A training run folder or one of its checkpoints/step_N folders."""
    split: str | None = None
    """Data split for envs that have splits (ALFWorld: valid_seen, valid_unseen)."""
    episodes: int = 50
    """Tasks to evaluate (each played once); the first N task ids of the split, in order."""
    batch_size: int = 8
    """Episodes run side by side; results do not depend on it."""
    max_turns: int = 50
    temperature: float = 0.0
    """0 is greedy decoding."""
    max_new_tokens: int = 256
    seed: int = 0
    env_pool: Literal["inline", "process", "ray", "http"] = "inline"
    env_kwargs: dict[str, str] = field(default_factory=dict)
    """Extra env constructor arguments."""
    output: Path | None = None
    """Also write the breakdown as JSON here."""
    threads: int = 0
    """Torch CPU threads (0: default)."""

    def run(self) -> dict[str, float]:
        from learners.policy_model import set_threads

        set_threads(self.threads)
        return run_eval(self)


def evaluate(policy, env: str, env_kwargs: dict, tasks: list, max_turns: int, batch_size: int, sampling: SamplingParams, seed: int, pool_kind: str = "inline") -> list[Episode]:
    """Play each task once with ``policy`` (a PolicyModel); episode i samples from seed (seed, i)."""
    from sdar_gym.rollout import collect, make_pool

    async def run():
        async with make_pool(pool_kind, env, batch_size, env_kwargs) as pool:
            return await collect(policy.as_policy(max_batch_size=batch_size), pool, tasks, group_size=1, max_turns=max_turns, sampling=sampling, seed=seed)

    return asyncio.run(run())


def table_for(env: str, episodes: list[Episode]) -> dict[str, float]:
    from sdar_gym.registration import env_entry

    done = [e for e in episodes if not e.failed]
    if not done:
        raise DataError("every evaluation episode failed; nothing to report")
    return env_entry(env).breakdown(done)


def _model_folder(args: EvalArgs) -> str:
    if args.model and args.checkpoint:
        raise ConfigError("give --model or --checkpoint, not both")
    if args.checkpoint is None:
        if args.model:
            return args.model
        from learners.sft import ensure_tiny_policy

        return str(ensure_tiny_policy(args.env, env_kwargs=parse_env_kwargs(args.env_kwargs)))
    from learners.checkpoint import latest_checkpoint

    path = Path(args.checkpoint)
    if (path / "checkpoints").is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise DataError(f"run folder {path} has no checkpoint")
        path = found
    if not (path / "model").is_dir():
        raise DataError(f"{path} is not a checkpoint folder (no model/ inside)")
    return str(path / "model")


def run_eval(args: EvalArgs) -> dict[str, float]:
    from learners.policy_model import PolicyModel, PolicyModelConfig

    if args.episodes < 1 or args.batch_size < 1:
        raise ConfigError("--episodes and --batch-size must be at least 1")
    env_kwargs = parse_env_kwargs(args.env_kwargs)
    if args.split is not None:
        env_kwargs["split"] = args.split
    policy = PolicyModel.from_pretrained(PolicyModelConfig(model=_model_folder(args)), with_reference=False)
    tasks = task_list(args.env, env_kwargs)[0][: args.episodes]
    sampling = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature)
    episodes = evaluate(policy, args.env, env_kwargs, tasks, args.max_turns, args.batch_size, sampling, args.seed, args.env_pool)
    row = table_for(args.env, episodes)
    table = Table(title=f"{args.env} ({len(episodes)} episodes)")
    for column in row:
        table.add_column(column, justify="right")
    table.add_row(*(f"{v:.1f}" for v in row.values()))
    Console().print(table)
    if args.output:
        atomic_write_json(args.output, {"env": args.env, "episodes": len(episodes), "table": row})
    return row
