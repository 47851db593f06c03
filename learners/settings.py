"""Filling a run's unset options from its preset (``sdar_gym.presets``), so config.json records what ran.

The CPU preset (``--preset cpu``, or ``auto`` for the built-in tiny policy without a GPU) is applied
first: the paper's values (16 tasks x 8 rollouts x 50 turns, lr 1e-6, one optimizer step per batch)
took 423 s per step on 2 CPU cores with the built-in tiny policy (about 12 hours for 100 steps), and a
~1M-parameter policy does not move at lr 1e-6. So the trainer fills every field the user left at its
default from :data:`CPU_PRESET` and prints what it chose; the paper preset then fills the rest. It is
sized for about an hour on 2 cores, warm start included: 4 tasks x 8 rollouts took 120 s per step
on whole-room games (benchmarks/results/main_job.json, before this size), and the update's cost grows
with the turns, so 2 tasks x 8 rollouts (the paper's group size) for 36 steps.
With ``choose_admissible`` (scoring every listed action at every turn, on the sampling's KV cache)
the whole job took 38 minutes, 6.8 of them for the first-use build, and 72 on a day the machine ran
about 1.9x slower (main_job.json; README, "The main job, measured").

Precedence: an option given on the command line (or ``--learner-args``) beats the preset, which
beats the ``none`` preset's sdar-gym defaults.
"""
from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from sdar_gym.agent import AgentConfig
from sdar_gym.agent.agent import agent_spec
from sdar_gym.presets import AGENT_KEYS, LEARNER_KEYS, TRAINER_KEYS, Setting, preset


def _table(preset_name: str, env: str) -> tuple[str, dict[str, Setting]]:
    from sdar_gym.registration import env_entry

    spec = env_entry(env)
    return spec.name, preset(preset_name, spec.paper_preset)


def _agent(env: str, table: dict[str, Setting], given: dict[str, Any]) -> tuple[dict[str, Any], AgentConfig]:
    """The agent settings actually used: given > preset > the env's agent spec."""
    spec = agent_spec(env)
    defaults = {"history_length": spec.history_length, **{k: getattr(spec.shaping, k) for k in AGENT_KEYS if k != "history_length"}}
    values = {k: given[k] if given.get(k) is not None else table[k].value if k in table else defaults[k] for k in AGENT_KEYS}
    shaping = replace(spec.shaping, **{k: v for k, v in values.items() if k != "history_length"})
    return values, AgentConfig(history_length=values["history_length"], shaping=shaping)


def resolve_train(cfg: Any) -> tuple[Any, AgentConfig]:
    """``cfg`` (a :class:`learners.trainer.TrainArgs`) with every preset-controlled option filled in,
    and the agent config of its rollouts."""
    from learners.advantages import estimator
    from learners.teacher import teacher_template

    estimator(cfg.advantage), teacher_template(cfg.teacher_template)  # bad names fail before any model loads
    env, table = _table(cfg.preset, cfg.env)
    trainer = {k: getattr(cfg, k) if getattr(cfg, k) is not None else table[k].value for k in TRAINER_KEYS}
    agent_values, agent = _agent(env, table, {k: getattr(cfg, k) for k in AGENT_KEYS})
    learner: dict[str, Any] = {k: table[k].value for k in LEARNER_KEYS}
    learner["lr_warmup_steps"] = int(table["lr_warmup_ratio"].value * trainer["steps"])  # verl: int(ratio · total steps)
    learner.update(advantage=cfg.advantage, teacher_template=cfg.teacher_template)
    given = {k.replace("-", "_") for k in cfg.learner_args}
    if "mini_batches" in given and "ppo_mini_batch_size" not in given:
        learner["ppo_mini_batch_size"] = 0  # an explicit mini_batches count beats the preset's mini-batch size
    learner.update(cfg.learner_args)
    return replace(cfg, **trainer, **agent_values, learner_args=learner), agent


def resolve_eval(args: Any) -> tuple[Any, AgentConfig]:
    """``args`` (a :class:`learners.evaluate.EvalArgs`) with max_turns, max_new_tokens and the validation
    temperature filled from the preset."""
    env, table = _table(args.preset, args.env)
    values = {
        "max_turns": args.max_turns if args.max_turns is not None else table["max_turns"].value,
        "max_new_tokens": args.max_new_tokens if args.max_new_tokens is not None else table["max_new_tokens"].value,
        "temperature": args.temperature if args.temperature is not None else table["eval_temperature"].value,
    }
    _, agent = _agent(env, table, {})
    return replace(args, **values), agent


CPU_PRESET: dict[str, Any] = {
    "steps": 36,
    "tasks_per_step": 2,
    "group_size": 8,
    "max_turns": 30,
    "max_new_tokens": 48,
    "num_envs": 8,
    "threads": 1,  # the rollout's; 2 threads on 2 shared cores ran an SFT batch 9x slower than 1 (4.3 vs 0.47 s). A first-use SFT picks its own (ThreadTuner)
    # the update's, picked as it goes (ThreadTuner): a GRPO update of one recorded batch (16 episodes, 480 turns) took
    # 11.7 s on 2 threads against 19.6 s on 1 on 2 idle cores, where the rollout gained nothing (15 s against 14 s)
    "update_threads": 0,
    "skills_embedder": "hashing",
    "skills_budget_chars": 800,
    "learner_args": {"lr": "1e-4", "mini_batches": "4"},
    "eval_every": 12,
    "eval_tasks": 50,  # every game of the default set's generated valid_seen split
    "eval_temperature": 0.0,
    # only listed actions (learners.admissible_choice): from the 1,000-game warm start, greedy wins on 140 held-out games
    # rose from 6 to 17 (turn_shaping_choice.json), and on learning.py's 70 from 4 to 9. RL then moved them by a game or
    # two either way (README, "What the learning run shows" and "Earlier learning runs"), where free text had lowered them
    "choose_admissible": True,
}
"""TrainArgs values of the CPU preset. ``learner_args`` entries are merged under the user's own."""


def wants_cpu_preset(cfg: Any, has_gpu: bool) -> bool:
    """The rule: the built-in tiny policy (no ``--model``), no GPU, and no explicit ``--preset`` other than ``cpu``."""
    preset = getattr(cfg, "preset", None)
    if preset == "cpu":
        return True
    return preset in (None, "auto", "") and cfg.model is None and not has_gpu


def apply_cpu_preset(cfg: Any) -> tuple[Any, dict[str, Any]]:
    """``cfg`` with every field still at its default taken from :data:`CPU_PRESET`; returns (new cfg, values applied)."""
    defaults = {f.name: (f.default_factory() if callable(f.default_factory) else f.default) for f in fields(cfg)}  # type: ignore[misc]
    applied: dict[str, Any] = {}
    for name, value in CPU_PRESET.items():
        if name == "learner_args":
            merged = {**value, **cfg.learner_args}
            if merged != cfg.learner_args:
                applied[name] = merged
        elif getattr(cfg, name) == defaults[name]:
            applied[name] = value
    return replace(cfg, **applied), applied
