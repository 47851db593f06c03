"""The built-in tiny policy: supervised warm start of a small Qwen2 model on expert demonstrations.

No model can be downloaded here, so ``sdar-gym train`` without ``--model`` uses a policy the project
builds itself, once, into ``sdar_gym_home()/models/tiny-<env>``:

1. the env's expert plays ``games`` tasks through the ordinary rollout (same prompts as RL);
2. a byte-level BPE tokenizer is trained on those prompts and responses (``learners.tiny``);
3. a random-init Qwen2-architecture model is trained to maximize the log-likelihood of the expert's
   responses given the prompts, plus a loss on the prompt tokens (``prompt_loss_weight``), with AdamW;
4. optionally (``dagger_rounds``), DAgger: the policy plays, the expert labels the states it reached,
   and the policy trains on the demonstrations plus those labels.

SDAR's teacher is this same model shown the student prompt plus retrieved skill text. A model that
never saw skill text reads it as noise (the teacher scored the expert's moves 2 nats/token *worse*
than the student), so a ``teacher_fraction`` of the turns is shown in the teacher's template (built
by :mod:`learners.teacher`, the one place the teacher prompt is made, in the trainer's default ``official`` template), and the
tokenizer is trained on the skill text too. ``sft.json`` records the teacher−student gap on expert
turns of held-out games.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from learners.tiny import TinyConfig
from sdar_gym.core import ConfigError, DataError, sdar_gym_home
from sdar_gym.io import atomic_dir, atomic_write_jsonl, read_jsonl
from sdar_gym.registration import parse_env_kwargs, task_list


@dataclass
class SFTArgs:
    """Build the built-in tiny policy: a tokenizer trained on env text and a small Qwen2 model
    warm-started by supervised learning on the env's expert demonstrations."""

    env: str = "alfworld"
    """Env whose expert demonstrations to learn from."""
    output: Path | None = None
    """Where to save the model (default: the cache the trainer uses when --model is omitted)."""
    games: int | None = None
    """Expert episodes (one per task) to learn from; None: the env's (``EnvSpec.sft_defaults``), else 200
    (ALFWorld's generated train split has 200; Search-QA uses its whole train split, 500)."""
    epochs: int | None = None
    """Passes over the demonstrations; None: the env's, else 4 (ALFWorld: a first-use build of 6.5 minutes on
    2 idle cores, 10 on one thread; 10 fit the training turns' tokens better, 0.03 against 0.24 nats, and won
    no more games. Search-QA: 8)."""
    lr: float = 2e-3
    """Peak learning rate of AdamW's one-cycle schedule (warm-up, then cosine decay to near 0)."""
    batch_size: int = 8
    """Turns per optimizer step, drawn in groups of similar length (less padding)."""
    vocab_size: int = 2048
    """Size of the byte-level BPE vocabulary trained on the demonstrations' text."""
    hidden_size: int = 128
    """Small enough to build on a CPU in minutes. On whole-room ALFWorld games this model wins none
    (README, "The built-in tiny policy"): it is for exercising the pipeline, not for results."""
    num_layers: int = 3
    """Decoder layers of the tiny Qwen2 model."""
    max_turns: int = 30
    """Turn limit of each expert (and DAgger) episode."""
    history_length: int | None = None
    """Past (observation, action) pairs in each demonstration prompt (None: the env's own, 2 for ALFWorld,
    as ``train`` shows them). A policy built with another value should be trained with the same
    ``train --history-length``; ``sft.json`` records it."""
    demo_noise: float = 0.0
    """Share of demonstration turns on which the expert slips (a random move, or its last one again),
    as in DART; those turns are not learned from, the expert's recovery after them is, so that a
    policy sees states off the expert's path. Off by default: at 0.2 the tiny policy looped as often
    and matched fewer training turns exactly (7 of 60 against 15 of 60)."""
    skip_task_types: list[str] = field(default_factory=list)
    """Task types left out of the demonstrations (e.g. pick_two_obj_and_place when demonstrating on
    real ALFWorld games, whose planner can take minutes per Pick2 game on a small CPU)."""
    env_kwargs: dict[str, str] = field(default_factory=dict)
    """Extra env constructor arguments (e.g. data_dir, split); for ALFWorld they default to the
    generated train split on the fast engine (the env spec's ``demo_env_kwargs``)."""
    prompt_loss_weight: float = 1.0
    """Weight of a language-modeling loss on the prompt tokens, added to the loss on the response
    (each a token mean). TRL's SFT trains on the completion only by default (``completion_only_loss``);
    a model trained from scratch learns to read its prompt (copy the receptacle it stands at, the
    object it sees) far sooner when it also models the prompt text: with 1.0 the 4-epoch tiny policy
    answered 62 of 150 training turns exactly as the expert, with 0.0 it answered 18 (README)."""
    oversample: dict[str, int] = field(default_factory=dict)
    """Show each training turn whose action starts with one of these words this many times per epoch
    (e.g. ``--oversample take 4 put 4``). Off by default: in ALFWorld's demonstrations ``take`` and
    ``put`` are 7% of the turns each, and the default tiny policy answers 0 of 11 ``take`` turns as
    the expert; shown 4 times it answered 7 of 11 and 86 of 150 turns in all (62 without), but the
    SFT took 1.5 times as long and the policy still won no held-out game greedily (README)."""
    dagger_rounds: int = 0
    """Rounds of DAgger (Ross et al., 2011) after the supervised epochs: the policy plays
    ``dagger_games`` training tasks greedily, the env's expert labels every state it visits (what the
    expert would do there), and the policy trains one more epoch on the demonstrations plus all labels
    so far. It teaches the way out of states the expert never visits, such as "Nothing happens." after
    a ``take`` of an object that is not there (README). Off by default: each round costs a greedy
    play and an epoch."""
    dagger_games: int = 240
    """Tasks the policy plays per DAgger round."""
    dagger_lr: float = 5e-4
    """Constant learning rate of each DAgger epoch (a quarter of the SFT's peak)."""
    teacher_fraction: float = 0.3
    """Share of turns shown in SDAR's teacher template (skill text in the prompt), so the teacher branch is in distribution."""
    skills_embedder: str = "hashing"
    """Embedder retrieving the skill text of teacher-template turns (as ``train --skills-embedder``)."""
    skills_budget_chars: int | None = 800
    """Cap on that skill text (as ``train --skills-budget-chars``; the CPU preset uses the same): the full
    skill context is about 2,000 characters or more, twice a student prompt, and would double the build time."""
    held_out_fraction: float = 0.1
    """Share of demonstrated tasks kept out of training to measure the teacher−student gap (sft.json)."""
    seed: int = 0
    """Seeds the games drawn, the model's initialization, the batch order and the held-out tasks."""
    force: bool = False
    """Rebuild even if the output already holds a model."""
    threads: int = 0
    """Torch CPU threads of the SFT on a CPU (0: chosen by timing batches with 1, 2 and up to 4 threads as it
    goes, see ``learners.policy_model.ThreadTuner``; N: always N, for a bit-identical rebuild)."""

    def __post_init__(self) -> None:
        from sdar_gym.registration import env_entry

        try:
            env_defaults = env_entry(self.env).sft_defaults
        except ConfigError:
            env_defaults = {}  # the build names the unknown env
        if self.games is None:
            self.games = env_defaults.get("games", 200)
        if self.epochs is None:
            self.epochs = env_defaults.get("epochs", 4)

    def run(self) -> Path:
        from learners.policy_model import set_threads

        set_threads(self.threads)
        return build_sft_policy(self)


def model_shape(args: SFTArgs) -> TinyConfig:
    """The built-in tiny policy's Qwen2 shape (grouped-query attention as in Qwen2, MLP 3x wide)."""
    return TinyConfig(hidden_size=args.hidden_size, num_layers=args.num_layers, num_heads=4, num_kv_heads=2,
                      intermediate_size=3 * args.hidden_size, seed=args.seed)


RECIPE_VERSION = 6
"""Bumped when a cached tiny policy must be rebuilt: 2 = Qwen2-consistent tokenizer (a reloaded
version-1 model read different token ids than it was trained on) and explorer demonstrations;
3 = teacher-template turns and skill text in the tokenizer; 4 = 4 epochs of length-grouped batches,
for a first-use build near 10 minutes; 5 = a loss on the prompt tokens too, and the explorer's
natural search order; 6 = an env's own games and epochs (``EnvSpec.sft_defaults``): Search-QA's
policy, which answered every question with the same query, learns from 500 games for 8 epochs."""


def is_built(folder: Path) -> bool:
    """Whether ``folder`` holds a tiny policy built by the current recipe."""
    meta = folder / "sft.json"
    return meta.exists() and json.loads(meta.read_text(encoding="utf-8")).get("recipe") == RECIPE_VERSION


def built_history_length(folder: str | os.PathLike) -> int | None:
    """The past turns shown in the prompts that the tiny policy in ``folder`` learned from (None: not one that sft built)."""
    meta = Path(folder) / "sft.json"
    return json.loads(meta.read_text(encoding="utf-8")).get("history_length") if meta.is_file() else None


def demo_env_kwargs(env: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The env spec's demonstration settings (``EnvSpec.demo_env_kwargs``) updated by ``overrides``."""
    from sdar_gym.registration import env_entry

    return {**env_entry(env).demo_env_kwargs, **overrides}


def tiny_policy_dir(env: str) -> Path:
    """Where the built-in tiny policy of ``env`` is cached."""
    return sdar_gym_home() / "models" / f"tiny-{env}"


def ensure_tiny_policy(env: str, progress: bool = True, env_kwargs: dict[str, Any] | None = None) -> Path:
    """The cached tiny policy of ``env``, built (with a progress bar) on first use."""
    folder = tiny_policy_dir(env)
    if is_built(folder):
        return folder
    from rich.console import Console

    Console(stderr=True).print(f"[bold]Building the built-in tiny policy for {env}[/bold] (first use, a few minutes; cached in {folder})")
    return build_sft_policy(SFTArgs(env=env, output=folder, env_kwargs=dict(env_kwargs or {})), progress=progress)


DEMO_VERSION = 2
"""Part of the demonstration cache key, bumped when the experts' choices change: 2 = the explorer
searches in natural order."""

DEMO_CHUNK_PER_WORKER = 4
"""Demonstration games per env process between two progress updates."""


def expert_demonstrations(
    env: str,
    games: int,
    env_kwargs: dict[str, Any],
    max_turns: int,
    seed: int = 0,
    tasks: list[Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    noise: float = 0.0,
    history_length: int | None = None,
) -> list[tuple[list[dict[str, str]], str, str, str]]:
    """(chat messages, expert response text, task, task type) of each turn of won expert episodes,
    leaving out the turns where the expert slipped on purpose (``noise``, see :class:`ExpertPolicy`).
    The prompts show ``history_length`` past turns (None: the env agent's own).

    ``games`` tasks are drawn (seeded) from ``tasks`` (default: all of the env's tasks). The result
    is cached as JSONL under ``sdar_gym_home()/demos`` keyed by these arguments, because the
    ALFWorld planner is slow and benchmarks rebuild policies from the same demonstrations.
    Games are played in one env process per CPU core, a chunk at a time, and ``on_progress(done,
    total)`` is called after each chunk so that a first-use build never runs silently.
    """
    from sdar_gym.rollout import ExpertPolicy, collect

    chosen = _draw_tasks(env, env_kwargs, tasks, games, seed, "demonstration")
    agent = _agent(env, history_length)
    key = hashlib.sha256(json.dumps(["with-task", DEMO_VERSION, env, sorted(env_kwargs.items()), max_turns, seed, chosen, noise, agent.spec.history_length],
                                    default=str).encode()).hexdigest()[:16]
    cache = sdar_gym_home() / "demos" / f"{env}-{key}.jsonl"
    if cache.exists():
        if on_progress is not None:
            on_progress(len(chosen), len(chosen))
        return [(r["messages"], r["response"], r["task"], r["task_type"]) for r in read_jsonl(cache)]

    async def play(pool, part: list, offset: int):
        expert = ExpertPolicy(env, noise=noise, seed=seed + offset)
        episodes = await collect(expert, pool, part, group_size=1, max_turns=max_turns, seed=seed + offset, agent=agent)
        return episodes, [
            (t.messages, t.response_text, t.task, t.task_type)
            for k, e in enumerate(episodes) if e.won
            for n, t in enumerate(e.turns) if t.messages and (k, n) not in expert.perturbed
        ]

    workers = max(1, min(len(chosen), os.cpu_count() or 1))
    rows, _ = _play_in_chunks(env, env_kwargs, chosen, "process" if workers > 1 else "inline", workers, DEMO_CHUNK_PER_WORKER * workers, play, on_progress)
    if not rows:
        raise DataError(f"the {env} expert won none of {len(chosen)} episodes; no demonstrations to learn from")
    atomic_write_jsonl(cache, [{"messages": m, "response": r, "task": k, "task_type": y} for m, r, k, y in rows])
    return rows


def check_sft_args(args: SFTArgs) -> None:
    """Refuse settings that cannot build a policy, before minutes of demonstrations are played."""
    for name in ("games", "epochs", "batch_size", "max_turns", "num_layers"):
        if getattr(args, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(args, name)}")
    if args.hidden_size < 8 or args.hidden_size % 8:
        raise ConfigError(f"hidden_size must be a multiple of 8 (4 attention heads of an even size), got {args.hidden_size}")
    for name in ("lr", "dagger_lr"):
        if not 0.0 < getattr(args, name) < math.inf:
            raise ConfigError(f"{name} must be a finite number > 0, got {getattr(args, name)}")
    if not 0.0 <= args.teacher_fraction <= 1.0:
        raise ConfigError(f"teacher_fraction must be in [0, 1], got {args.teacher_fraction}")
    for name in ("held_out_fraction", "demo_noise"):  # at 1 no turn would be left to learn from
        if not 0.0 <= getattr(args, name) < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {getattr(args, name)}")
    if not 0.0 <= args.prompt_loss_weight < math.inf:
        raise ConfigError(f"prompt_loss_weight must be a finite number >= 0, got {args.prompt_loss_weight}")
    bad = {verb: n for verb, n in args.oversample.items() if isinstance(n, bool) or not isinstance(n, int) or n < 1}
    if bad:
        raise ConfigError(f"oversample counts must be whole numbers >= 1, got {bad}")
    if args.dagger_rounds < 0 or (args.dagger_rounds and args.dagger_games < 1):
        raise ConfigError(f"dagger_rounds must be >= 0 and dagger_games >= 1, got {args.dagger_rounds} and {args.dagger_games}")


def build_sft_policy(args: SFTArgs, progress: bool = True, tasks: list[Any] | None = None) -> Path:
    """Run the SFT warm start of :class:`SFTArgs` (on ``tasks`` when given) and save it."""
    import torch

    from learners.policy_model import PolicyModel, PolicyModelConfig, ThreadTuner, thread_candidates
    from sdar_gym.progress import StageProgress
    from learners.tiny import make_tiny_model, train_tokenizer

    check_sft_args(args)
    out = Path(args.output) if args.output else tiny_policy_dir(args.env)
    if is_built(out) and not args.force:
        return out
    env_kwargs = demo_env_kwargs(args.env, parse_env_kwargs(args.env_kwargs))
    if tasks is None and args.skip_task_types:
        ids, types = task_list(args.env, env_kwargs)
        tasks = [t for t in ids if types.get(t) not in args.skip_task_types]
    start = time.perf_counter()
    stages = 3 + args.dagger_rounds
    with StageProgress(progress) as bar:
        stage = bar.add(f"1/{stages} expert demonstrations ({args.games} games)", total=args.games)
        demos = expert_demonstrations(
            args.env, args.games, env_kwargs, args.max_turns, args.seed, tasks,
            on_progress=lambda done, total: bar.update(stage, completed=done, total=total), noise=args.demo_noise,
            history_length=args.history_length,
        )
        bar.update(stage, status=f"{len(demos)} turns")

        stage = bar.add(f"2/{stages} tokenizer and skill text", total=1)
        contexts = _skill_contexts(args, demos)
        texts = [m["content"] for messages, *_ in demos for m in messages] + [r for _, r, *_ in demos] + list(contexts.values())
        tokenizer = train_tokenizer(texts, args.vocab_size)
        model = make_tiny_model(tokenizer, model_shape(args))
        policy = PolicyModel.from_model(model, tokenizer, PolicyModelConfig(model="tiny", dtype="fp32"), with_reference=False)
        held = held_out_keys(demos, contexts, args)
        data, held_out = _encode_demos(tokenizer, demos, contexts, args, held)
        bar.update(stage, completed=1, status=f"vocab {len(tokenizer)}, {len(contexts)} skill contexts")

        optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=args.lr, weight_decay=0.01)
        n_batches = (len(data) + args.batch_size - 1) // args.batch_size
        total = n_batches * args.epochs
        # at least one warm-up step: OneCycleLR divides by zero on a warm-up of 0 steps (tiny configurations)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=max(total, 4), pct_start=max(0.1, 2 / max(total, 4)))
        train = bar.add(f"3/{stages} supervised warm start ({len(data)} turns x {args.epochs} epochs)", total=total)
        rng = random.Random(args.seed)
        on_cpu = policy.device.type == "cpu"
        tuner = ThreadTuner(thread_candidates() if on_cpu and not args.threads else (args.threads or torch.get_num_threads(),))
        losses: list[float] = []

        def report(stage):
            def on_batch(loss: float, threads: int) -> None:
                losses.append(loss)
                bar.update(stage, advance=1, status=f"loss {loss:.3f}" + (f", {threads} threads" if on_cpu else ""))
            return on_batch

        for _ in range(args.epochs):
            _train_epoch(policy, data, args, rng, optimizer, schedule, tuner, report(train))
        labeled: list = []
        labeled_states = 0
        dagger_won: list[int] = []
        for round_ in range(1, args.dagger_rounds + 1):
            stage = bar.add(f"{3 + round_}/{stages} DAgger round {round_}: the policy plays {args.dagger_games} games, the expert labels", total=args.dagger_games)
            rows, won = dagger_labels(
                policy, args.env, env_kwargs, args.dagger_games, args.max_turns, args.seed + round_, tasks,
                on_progress=lambda done, n, stage=stage: bar.update(stage, completed=done, total=n), history_length=args.history_length,
            )
            labeled_states += len(rows)
            dagger_won.append(won)
            labeled += _encode_demos(tokenizer, rows, contexts, args, held)[0]  # labels of held-out tasks stay out
            both = data + labeled
            bar.update(stage, status=f"won {won}; {labeled_states} labeled states so far")
            optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=args.dagger_lr, weight_decay=0.01)
            fit = bar.add(f"  one epoch on {len(data)} demonstrated and {len(labeled)} labeled turns", total=(len(both) + args.batch_size - 1) // args.batch_size)
            _train_epoch(policy, both, args, rng, optimizer, None, tuner, report(fit))
    policy.model.eval()
    meta = {
        "recipe": RECIPE_VERSION,
        "env": args.env,
        "demonstration_turns": len(demos),
        "games": args.games,
        "games_won": len({d[2] for d in demos if len(d) > 2}),
        "epochs": args.epochs,
        "history_length": _agent(args.env, args.history_length).spec.history_length,
        "teacher_fraction": args.teacher_fraction,
        "prompt_loss_weight": args.prompt_loss_weight,
        "demo_noise": args.demo_noise,
        "oversample": args.oversample,
        "first_loss": losses[0] if losses else float("nan"),
        "final_loss": losses[-1] if losses else float("nan"),
        "dagger": {"rounds": args.dagger_rounds, "games": args.dagger_games, "won_per_round": dagger_won, "labeled_states": labeled_states} if args.dagger_rounds else None,
        "seconds": time.perf_counter() - start,
        "threads_chosen": tuner.chosen if len(tuner.candidates) > 1 else list(tuner.candidates),
        "shape": {"hidden_size": args.hidden_size, "num_layers": args.num_layers, "vocab_size": len(tokenizer)},
        "held_out": teacher_gap(policy, held_out),
    }
    with atomic_dir(out) as tmp:
        policy.save(tmp)
        (tmp / "sft.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return out


def _train_epoch(policy, data: list, args: SFTArgs, rng: random.Random, optimizer, schedule, tuner, on_batch: Callable[[float, int], None]) -> None:
    """One pass over ``data`` ((student prompt, teacher prompt or None, response) ids per turn) in
    length-grouped batches; each turn is shown in the teacher's template (skill text in the prompt)
    with probability ``args.teacher_fraction``."""
    import torch

    policy.model.train()
    shown = [(t if t is not None and rng.random() < args.teacher_fraction else p, r) for p, t, r in data]
    for batch in _length_grouped_batches(shown, args.batch_size, rng):
        # the caller's thread count (the CPU preset's 1 for RL) is back after each batch
        with tuner.step(work=len(batch) * max(len(p) + len(r) for p, r in batch)) as threads:
            loss = sft_loss(policy, batch, args.prompt_loss_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.trainable_parameters(), 1.0)
            optimizer.step()
            if schedule is not None:
                schedule.step()
            value = loss.item()
        on_batch(value, threads)
    policy.model.eval()


class _ExpertLabels:
    """DAgger's data: plays ``policy`` while the env's expert (:class:`ExpertPolicy`) answers the same
    requests; keeps the expert's answers by (episode, turn)."""

    wants_expert_action = True

    def __init__(self, policy, env: str) -> None:
        from sdar_gym.rollout import ExpertPolicy

        self.policy, self.expert, self.answers = policy, ExpertPolicy(env), {}

    async def generate(self, requests):
        for request, answer in zip(requests, await self.expert.generate(requests)):
            if request.metadata.get("expert_action"):
                self.answers[request.metadata["episode"], request.metadata["turn"]] = answer.text
        return await self.policy.generate(requests)


def dagger_labels(
    policy, env: str, env_kwargs: dict[str, Any], games: int, max_turns: int, seed: int, tasks: list[Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    history_length: int | None = None,
) -> tuple[list[tuple[list[dict[str, str]], str, str, str]], int]:
    """(chat messages, expert response text, task, task type) of every state ``policy`` visits when it
    plays ``games`` tasks (seeded draw from ``tasks``, default all of the env's) greedily, and how many
    of those games it won: one DAgger round's data. Played inline in chunks, calling
    ``on_progress(done, total)`` after each; prompts show ``history_length`` past turns (None: the env's)."""
    from learners.settings import CPU_PRESET
    from sdar_gym.rollout import collect
    from sdar_gym.rollout.types import SamplingParams

    chosen = _draw_tasks(env, env_kwargs, tasks, games, seed, "DAgger")
    sampling = SamplingParams(max_new_tokens=CPU_PRESET["max_new_tokens"], temperature=0.0)
    width = 8
    agent = _agent(env, history_length)

    async def play(pool, part: list, offset: int):
        labeler = _ExpertLabels(policy.as_policy(max_batch_size=width), env)
        episodes = await collect(labeler, pool, part, group_size=1, max_turns=max_turns, sampling=sampling, seed=seed + offset, agent=agent)
        return episodes, [
            (t.messages, labeler.answers[k, n], t.task, t.task_type)
            for k, e in enumerate(episodes) for n, t in enumerate(e.turns) if t.messages and (k, n) in labeler.answers
        ]

    return _play_in_chunks(env, env_kwargs, chosen, "inline", width, 4 * width, play, on_progress)


def _agent(env: str, history_length: int | None):
    """The env's text agent, showing ``history_length`` past turns (None: its own number)."""
    from sdar_gym.agent import AgentConfig, TextAgent
    from sdar_gym.registration import env_entry

    return TextAgent(env_entry(env).name, AgentConfig(history_length=history_length))


def _draw_tasks(env: str, env_kwargs: dict[str, Any], tasks: list[Any] | None, games: int, seed: int, what: str) -> list[Any]:
    """``games`` tasks drawn (seeded) from ``tasks`` (default: all of the env's), with a warning when
    fewer exist."""
    pool_tasks = list(tasks) if tasks is not None else task_list(env, env_kwargs)[0]
    if games > len(pool_tasks):
        warnings.warn(
            f"{games} {what} games were asked for, but the {env} tasks hold {len(pool_tasks)}: using all {len(pool_tasks)}; "
            "a larger set is passed with --env-kwargs (ALFWorld: `sdar-gym data alfworld --n N --out DIR`, then data_dir DIR)",
            stacklevel=3,
        )
    return random.Random(seed).sample(pool_tasks, min(games, len(pool_tasks)))


def _play_in_chunks(env: str, env_kwargs: dict[str, Any], chosen: list[Any], pool_kind: str, width: int, chunk: int, play, on_progress) -> tuple[list, int]:
    """Plays ``chosen`` ``chunk`` tasks at a time in one pool of ``width`` envs, through the coroutine
    ``play(pool, tasks, offset) -> (episodes, rows)``; returns every chunk's rows and the games won,
    calling ``on_progress(done, total)`` after each chunk so that a long build never runs silently."""
    from sdar_gym.rollout import make_pool

    async def run():
        rows, won = [], 0
        async with make_pool(pool_kind, env, width, env_kwargs) as pool:
            for i in range(0, len(chosen), chunk):
                episodes, kept = await play(pool, chosen[i : i + chunk], i)
                rows += kept
                won += sum(e.won for e in episodes)
                if on_progress is not None:
                    on_progress(min(i + chunk, len(chosen)), len(chosen))
        return rows, won

    return asyncio.run(run())


def sft_loss(policy, batch: list[tuple[list[int], list[int]]], prompt_weight: float):
    """Token-mean NLL of the responses, plus ``prompt_weight`` times that of the prompts (from their
    second token on); ``batch`` holds (prompt ids, response ids) pairs. One forward pass either way."""
    if not prompt_weight:
        logp, _ = policy.response_logprobs([p for p, _ in batch], [r for _, r in batch])
        return -logp.mean()
    import torch

    logp, _ = policy.response_logprobs([p[:1] for p, _ in batch], [p[1:] + r for p, r in batch])
    in_response = torch.tensor([k >= len(p) - 1 for p, r in batch for k in range(len(p) - 1 + len(r))], device=logp.device)
    return -logp[in_response].mean() - prompt_weight * logp[~in_response].mean()


def _length_grouped_batches(examples: list, batch_size: int, rng: random.Random) -> list[list]:
    """Batches of turns of similar prompt length (transformers' ``LengthGroupedSampler``: random
    mega-batches, sorted within): on the ALFWorld demonstrations random batches spent 27% of their
    tokens on padding."""
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    order = list(LengthGroupedSampler(batch_size, lengths=[len(p) + len(r) for p, r in examples], generator=torch.Generator().manual_seed(rng.randrange(2**31))))
    return [[examples[i] for i in order[k : k + batch_size]] for k in range(0, len(order), batch_size)]


def _skill_contexts(args: SFTArgs, demos: list) -> dict[tuple[str, str], str]:
    """The skill text SDAR's teacher would see for each (task, task type) of the demonstrations."""
    if args.teacher_fraction <= 0 or not any(len(d) > 2 for d in demos):
        return {}
    from learners.teacher import SkillContext
    from sdar_gym.agent import TextAgent
    from sdar_gym.registration import env_entry
    from skills import default_library

    name = env_entry(args.env).name
    library = default_library(name, embedder=args.skills_embedder)
    skills = SkillContext(library, budget_chars=args.skills_budget_chars, seed=args.seed, with_skills=TextAgent(name).with_skills)  # the training default: official routing
    keys = sorted({(d[2], d[3]) for d in demos if len(d) > 2})
    return {key: skills.text(*key) for key in keys}


def held_out_keys(demos: list, contexts: dict, args: SFTArgs) -> set[tuple[str, str]]:
    """The (task, task type) keys kept out of training to measure the teacher gap (none without skill contexts)."""
    keys = sorted({(d[2], d[3]) for d in demos if len(d) > 2})
    return set(random.Random(args.seed).sample(keys, int(len(keys) * args.held_out_fraction))) if contexts else set()


def _encode_demos(tokenizer, demos: list, contexts: dict, args: SFTArgs, held: set[tuple[str, str]]) -> tuple[list, list]:
    """(student prompt, teacher prompt or None, response) ids per turn; turns of ``held`` tasks apart.
    A training turn whose action verb is in ``args.oversample`` is listed that many times."""
    from learners.teacher import teacher_template
    from sdar_gym.presets import BASE
    from sdar_gym.agent import TextAgent
    from sdar_gym.registration import env_entry

    agent = TextAgent(env_entry(args.env).name)
    with_skills = agent.with_skills
    build_teacher = teacher_template("official")  # the trainer's default teacher template
    train, held_out = [], []
    for messages, response, *key in demos:
        prompt, response_ids = encode_turn(tokenizer, messages, response)
        context = contexts.get(tuple(key), "")
        teacher = build_teacher(tokenizer, prompt, context, messages, with_skills, BASE["max_prompt_length"].value)[0] if context else None
        if tuple(key) in held:
            held_out.append((prompt, teacher, response_ids))
        else:
            action = agent.project(response).action or ""
            train += [(prompt, teacher, response_ids)] * args.oversample.get(action.split(" ", 1)[0], 1)
    return train, held_out


def teacher_gap(policy, turns: list, batch_size: int = 8) -> dict[str, float]:
    """Teacher−student gap on expert turns: mean over turns of the token-mean of log π(y|teacher prompt) − log π(y|student prompt)."""
    import torch

    turns = [t for t in turns if t[1] is not None]
    if not turns:
        return {}
    gaps, student_nll = [], []
    with torch.no_grad():
        for i in range(0, len(turns), batch_size):
            chunk = turns[i : i + batch_size]
            s, _ = policy.response_logprobs([p for p, _, _ in chunk], [r for _, _, r in chunk])
            t, _ = policy.response_logprobs([q for _, q, _ in chunk], [r for _, _, r in chunk])
            at = 0
            for _, _, r in chunk:
                gaps.append(float((t[at : at + len(r)] - s[at : at + len(r)]).mean()))
                student_nll.append(float(-s[at : at + len(r)].mean()))
                at += len(r)
    return {
        "turns": len(gaps),
        "teacher_gap_mean": sum(gaps) / len(gaps),
        "teacher_gap_positive_ratio": sum(g > 0 for g in gaps) / len(gaps),
        "student_nll": sum(student_nll) / len(student_nll),
    }


def encode_turn(tokenizer, messages: list[dict[str, str]], response: str) -> tuple[list[int], list[int]]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
    return prompt, tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
