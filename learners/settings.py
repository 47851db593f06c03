"""Filling a run's unset options from its preset (``sdar_gym.presets``), so config.json records what ran.

Precedence: an option given on the command line (or ``--learner-args``) beats the preset, which
beats the ``none`` preset's sdar-gym defaults.
"""
from __future__ import annotations

from dataclasses import replace
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
    defaults = {"history_length": spec.history_length, "invalid_penalty": spec.shaping.invalid_penalty, "win_reward": spec.shaping.win_reward}
    values = {k: given[k] if given.get(k) is not None else table[k].value if k in table else defaults[k] for k in AGENT_KEYS}
    shaping = replace(spec.shaping, invalid_penalty=values["invalid_penalty"], win_reward=values["win_reward"])
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
