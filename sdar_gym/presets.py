"""Training presets per env, as plain data (no torch): the values a run uses unless overridden.

``paper`` holds the released SDAR code's values (github ZJU-REAL/SDAR, a verl-agent fork), each
with the released file it comes from; ``none`` holds sdar-gym's own env-independent defaults.
The keys are settings of ``sdar-gym train`` / ``eval``, of the learner config, or of the agent
(history window and reward shaping). ``docs/presets.md`` renders this table.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sdar_gym.core import ConfigError


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str
    """Where the value comes from (a released file path, or "sdar-gym")."""


SDAR = "examples/sdar_trainer/run_{env}_3b.sh"
YAML = "verl/trainer/config/ppo_trainer.yaml"


def _s(value: Any, source: str) -> Setting:
    return Setting(value, source)


BASE: dict[str, Setting] = {
    # trainer
    "steps": _s(100, "sdar-gym"),
    "tasks_per_step": _s(16, "sdar-gym"),
    "group_size": _s(8, "sdar-gym"),
    "max_turns": _s(50, "sdar-gym"),
    "max_new_tokens": _s(256, "sdar-gym"),
    "eval_temperature": _s(0.0, "sdar-gym"),
    "eval_every": _s(10, "sdar-gym"),
    "eval_tasks": _s(64, "sdar-gym"),
    "choose_admissible": _s(False, "sdar-gym"),
    # learner
    "lr": _s(1e-6, "sdar-gym"),
    "weight_decay": _s(0.0, "sdar-gym"),
    "clip_ratio_low": _s(0.2, "sdar-gym"),
    "clip_ratio_high": _s(0.2, "sdar-gym"),
    "clip_ratio_c": _s(3.0, "sdar-gym"),
    "max_grad_norm": _s(1.0, "sdar-gym"),
    "kl_type": _s("low_var_kl", "sdar-gym"),
    "kl_coef": _s(0.01, "sdar-gym"),
    "entropy_coef": _s(0.001, "sdar-gym"),
    "ppo_mini_batch_size": _s(0, "sdar-gym"),
    "max_prompt_length": _s(2048, "sdar-gym"),
    "lr_warmup_ratio": _s(0.0, "sdar-gym"),
}
"""The ``none`` preset: sdar-gym's own defaults (agent settings keep each env's agent spec)."""

_COMMON: dict[str, Setting] = {
    "steps": _s(150, "trainer.total_epochs=150 with one batch per epoch (ALFWorld, WebShop); trainer.total_training_steps=150 (Search): " + SDAR),
    "group_size": _s(8, "group_size=8: " + SDAR),
    "max_new_tokens": _s(512, "data.max_response_length=512: " + SDAR),
    "lr": _s(1e-6, "actor_rollout_ref.actor.optim.lr=1e-6: " + SDAR),
    "weight_decay": _s(0.01, YAML + " actor.optim.weight_decay"),
    "clip_ratio_low": _s(0.2, YAML + " actor.clip_ratio_low"),
    "clip_ratio_high": _s(0.2, YAML + " actor.clip_ratio_high"),
    "clip_ratio_c": _s(3.0, YAML + " actor.clip_ratio_c (dual clip)"),
    "max_grad_norm": _s(1.0, YAML + " actor.grad_clip"),
    "kl_type": _s("low_var_kl", "actor.kl_loss_type=low_var_kl: " + SDAR),
    "entropy_coef": _s(0.001, YAML + " actor.entropy_coeff"),
    "lr_warmup_ratio": _s(0.0, YAML + " actor.optim.lr_warmup_steps_ratio"),
    "eval_every": _s(5, "trainer.test_freq=5, trainer.val_before_train=True: " + SDAR),
    "eval_tasks": _s(128, "val_data_size=128 (data.val_batch_size): " + SDAR),
    "no_effect_penalty": _s(0.0, "none: the released reward reads only the response's form (agent_system/environments/env_package/alfworld/projection.py ignores its action pools)"),
    "progress_reward": _s(0.0, "none: the released ALFWorld reward is 10·won alone (agent_system/environments/env_package/alfworld/envs.py compute_reward)"),
    "choose_admissible": _s(False, "none: the released rollout plays the action projected from the free text (agent_system/environments/env_package/{env}/projection.py)"),
}


def _env(env: str, **values: Setting) -> dict[str, Setting]:
    return {k: Setting(v.value, v.source.replace("{env}", env)) for k, v in {**_COMMON, **values}.items()}


# The paper preset of each env; each EnvSpec (sdar_gym/specs.py) holds its own as ``paper_preset``.
PAPER_ALFWORLD: dict[str, Setting] = _env(
    "alfworld",
    tasks_per_step=_s(16, "train_data_size=16: " + SDAR),
    max_turns=_s(50, "env.max_steps=50: " + SDAR),
    history_length=_s(2, YAML + " env.history_length"),
    invalid_penalty=_s(0.1, "actor.invalid_action_penalty_coef=0.1: " + SDAR),
    win_reward=_s(10.0, "agent_system/environments/env_package/alfworld/envs.py compute_reward: 10·won"),
    kl_coef=_s(0.01, "actor.kl_loss_coef=0.01: " + SDAR),
    ppo_mini_batch_size=_s(256, "actor.ppo_mini_batch_size=256 (× rollout.n = 1): " + SDAR),
    max_prompt_length=_s(2048, "data.max_prompt_length=2048: " + SDAR),
    eval_temperature=_s(0.4, "rollout.val_kwargs.temperature=0.4, do_sample=True: " + SDAR),
)

PAPER_WEBSHOP: dict[str, Setting] = _env(
    "webshop",
    tasks_per_step=_s(16, "train_data_size=16: " + SDAR),
    max_turns=_s(15, "env.max_steps=15: " + SDAR),
    history_length=_s(2, YAML + " env.history_length"),
    invalid_penalty=_s(0.1, "actor.invalid_action_penalty_coef=0.1: " + SDAR),
    win_reward=_s(10.0, "agent_system/environments/env_package/webshop/envs.py step: 10 for a full-reward purchase"),
    kl_coef=_s(0.01, "actor.kl_loss_coef=0.01: " + SDAR),
    ppo_mini_batch_size=_s(64, "actor.ppo_mini_batch_size=64: " + SDAR),
    max_prompt_length=_s(4096, "data.max_prompt_length=4096: " + SDAR),
    eval_temperature=_s(0.4, "rollout.val_kwargs.temperature=0.4, do_sample=True: " + SDAR),
)

PAPER_SEARCH_QA: dict[str, Setting] = _env(
    "search",
    tasks_per_step=_s(128, "train_data_size=128: " + SDAR),
    max_turns=_s(4, "env.max_steps=4: " + SDAR),
    history_length=_s(4, "env.history_length=4: " + SDAR),
    invalid_penalty=_s(0.01, "actor.invalid_action_penalty_coef=0.01: " + SDAR),
    win_reward=_s(1.0, "agent_system/environments/env_package/search/envs.py: exact-match reward 1.0"),
    kl_coef=_s(0.001, "actor.kl_loss_coef=0.001: " + SDAR),
    ppo_mini_batch_size=_s(256, "actor.ppo_mini_batch_size=256: " + SDAR),
    max_prompt_length=_s(4096, "data.max_prompt_length=4096: " + SDAR),
    lr_warmup_ratio=_s(0.1, "actor.optim.lr_warmup_steps_ratio=0.1: " + SDAR),
    eval_temperature=_s(0.0, "no val_kwargs in " + SDAR + ", so " + YAML + " val_kwargs: temperature 0, do_sample False (greedy)"),
    eval_every=_s(150, "trainer.test_freq=150 (val_before_train=False there; sdar-gym also validates before the first step): " + SDAR),
    eval_tasks=_s(512, "val_data_size=512: " + SDAR),
)

PRESET_NAMES = ("none", "paper", "auto", "cpu")
"""``paper``: the env's released values (its ``EnvSpec.paper_preset``) over BASE; ``none``: BASE alone.
``cpu`` and ``auto`` resolve here as ``paper``: the trainer first fills the options the CPU preset sets
(``learners.settings``; ``auto`` picks it for the built-in tiny policy without a GPU)."""

TRAINER_KEYS = ("steps", "tasks_per_step", "group_size", "max_turns", "max_new_tokens", "eval_every", "eval_tasks", "eval_temperature", "choose_admissible")
LEARNER_KEYS = (
    "lr", "weight_decay", "clip_ratio_low", "clip_ratio_high", "clip_ratio_c", "max_grad_norm", "kl_coef",
    "entropy_coef", "ppo_mini_batch_size", "max_prompt_length",
)
AGENT_KEYS = ("history_length", "invalid_penalty", "no_effect_penalty", "progress_reward", "win_reward")


def preset(name: str, paper: Mapping[str, Setting]) -> dict[str, Setting]:
    """The settings of preset ``name`` for an env whose paper preset is ``paper`` (BASE fills the keys it lacks)."""
    if name not in PRESET_NAMES:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(PRESET_NAMES)}")
    return {**BASE, **(paper if name != "none" else {})}


def markdown_table(papers: Mapping[str, Mapping[str, Setting]], name: str = "paper") -> str:
    """Preset ``name`` of each env (env -> its paper preset) as a Markdown table (one row per setting,
    one column per env), then its sources."""
    envs = list(papers)
    tables = {env: preset(name, papers[env]) for env in envs}
    keys = list(dict.fromkeys(k for t in tables.values() for k in t))
    lines = ["| setting | " + " | ".join(envs) + " |", "|---" * (len(envs) + 1) + "|"]
    lines += [f"| `{k}` | " + " | ".join(str(tables[e][k].value) if k in tables[e] else "(agent spec)" for e in envs) + " |" for k in keys]
    lines += ["", "Sources:", ""]
    lines += [f"- `{k}` ({e}): {tables[e][k].source}" for k in keys for e in envs if k in tables[e]]
    return "\n".join(lines) + "\n"
