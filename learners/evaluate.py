"""``sdar-gym eval``: the paper's Table 1 breakdown for a policy on an env's held-out split.

By default every task of the split is played once, as the paper evaluates; ``--episodes N`` plays
a seeded sample of N stratified by task type, so each column keeps its share of the split. Each
episode samples with a seed fixed per episode (at the preset's validation temperature), so the
numbers do not depend on ``--batch-size``. The table says how many games each column holds.
"""
from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
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
    episodes: int | None = None
    """Tasks to evaluate, each played once. None: the whole split; N: a sample of N seeded by --seed
    and stratified by task type (each type keeps its share of the split)."""
    batch_size: int = 8
    """Episodes run side by side; results do not depend on it."""
    preset: str = "paper"
    """Per-env defaults for the settings below left at None (see ``sdar-gym train --preset``)."""
    max_turns: int | None = None
    """Turns per episode at most; None: the preset's."""
    temperature: float | None = None
    """0 is greedy decoding; None: the preset's validation temperature (paper: 0.4 sampled, Search greedy)."""
    max_new_tokens: int | None = None
    """Tokens per response at most; None: the preset's."""
    seed: int = 0
    """Seeds the stratified sample of tasks (with --episodes) and each episode's sampling."""
    env_pool: Literal["inline", "process", "ray", "http"] = "inline"
    """Where envs run: in this process, worker processes, Ray actors, or HTTP env servers (as ``train --env-pool``)."""
    env_kwargs: dict[str, str] = field(default_factory=dict)
    """Extra env constructor arguments."""
    output: Path | None = None
    """Also write the breakdown as JSON here."""
    threads: int = 0
    """Torch CPU threads (0: default)."""
    choose_admissible: bool = False
    """Play only listed actions, as ``sdar-gym train --choose-admissible`` (learners.admissible_choice)."""

    def run(self) -> dict[str, float]:
        from learners.policy_model import set_threads

        set_threads(self.threads)
        return run_eval(self)


def stratified_sample(tasks: list, task_types: dict, n: int, seed: int) -> list:
    """``n`` of ``tasks``, drawn with ``seed``, each task type keeping its share of the split.

    Shares are rounded by largest remainder (ties to the larger type); the result keeps the
    split's order. Tasks without a known type form one stratum.
    """
    if n >= len(tasks):
        return list(tasks)
    strata: dict = defaultdict(list)
    for t in tasks:
        strata[task_types.get(t)].append(t)
    quotas = {k: n * len(v) / len(tasks) for k, v in strata.items()}
    counts = {k: int(q) for k, q in quotas.items()}
    for k in sorted(strata, key=lambda k: (counts[k] - quotas[k], -len(strata[k]), str(k)))[: n - sum(counts.values())]:
        counts[k] += 1
    rng = random.Random(seed)
    chosen = {t for k in sorted(strata, key=str) for t in rng.sample(strata[k], counts[k])}
    return [t for t in tasks if t in chosen]


def column_counts(env: str, episodes: list[Episode], row: dict[str, float]) -> dict[str, int]:
    """Games behind each column of ``row``: a task type's count, or all games for the summary columns."""
    from sdar_gym.envs.alfworld.data import TASK_TYPES
    from sdar_gym.registration import env_entry

    done = [e for e in episodes if not e.failed]
    by_type = Counter(e.task_type for e in done)
    long_name = {short: long for long, short in TASK_TYPES.items()} if env_entry(env).name == "alfworld" else {}
    return {col: by_type.get(long_name.get(col, col), len(done)) for col in row}


def evaluate(policy, env: str, env_kwargs: dict, tasks: list, max_turns: int, batch_size: int, sampling: SamplingParams, seed: int, pool_kind: str = "inline", agent=None,
             generator=None, choose_admissible: bool = False) -> list[Episode]:
    """Play each task once with ``policy`` (a PolicyModel), sampled by ``generator`` (default: its HF
    generator), through :class:`~learners.admissible_choice.AdmissibleChoice` when ``choose_admissible``;
    episode i samples from seed (seed, i)."""
    from sdar_gym.rollout import collect, make_pool

    async def run():
        async with make_pool(pool_kind, env, batch_size, env_kwargs) as pool:
            sampler = generator or policy.as_policy(max_batch_size=batch_size)
            if choose_admissible:
                from learners.admissible_choice import AdmissibleChoice

                sampler = AdmissibleChoice(sampler, env, agent, seed=seed)
            return await collect(sampler, pool, tasks, group_size=1, max_turns=max_turns, sampling=sampling, seed=seed, agent=agent)

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
    from learners.settings import resolve_eval

    if (args.episodes is not None and args.episodes < 1) or args.batch_size < 1:
        raise ConfigError("--episodes and --batch-size must be at least 1")
    args, agent = resolve_eval(args)
    env_kwargs = parse_env_kwargs(args.env_kwargs)
    if args.split is not None:
        env_kwargs["split"] = args.split
    policy = PolicyModel.from_pretrained(PolicyModelConfig(model=_model_folder(args)), with_reference=False)
    all_tasks, task_types = task_list(args.env, env_kwargs)
    tasks = all_tasks if args.episodes is None else stratified_sample(all_tasks, task_types, args.episodes, args.seed)
    sampling = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature)
    episodes = evaluate(policy, args.env, env_kwargs, tasks, args.max_turns, args.batch_size, sampling, args.seed, args.env_pool, agent,
                        choose_admissible=args.choose_admissible)
    row = table_for(args.env, episodes)
    games = column_counts(args.env, episodes, row)
    table = Table(title=f"{args.env} ({len(episodes)} episodes, temperature {args.temperature})")
    table.add_column("")
    for column in row:
        table.add_column(column, justify="right")
    table.add_row("success / score (%)", *(f"{v:.1f}" for v in row.values()))
    table.add_row("games", *(str(games[c]) for c in row))
    Console().print(table)
    if args.output:
        atomic_write_json(args.output, {"env": args.env, "episodes": len(episodes), "table": row, "games": games, "settings": _settings(args)})
    return row


def _settings(args: EvalArgs) -> dict:
    from dataclasses import asdict

    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()}
