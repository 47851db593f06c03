"""The CPU preset of ``sdar-gym train``: what the main job runs when nothing bigger is available.

The paper's values (16 tasks x 8 rollouts x 50 turns, lr 1e-6, one optimizer step per batch) took
423 s per step on 2 CPU cores with the built-in tiny policy (about 12 hours for 100 steps), and a
~1M-parameter policy does not move at lr 1e-6. So when the policy is the built-in tiny one and no
GPU is present, the trainer fills every field the user left at its default from :data:`CPU_PRESET`
(sized for about a minute per step on 2 cores, about an hour in all) and prints what it chose.
``--preset paper`` (``sdar_gym``'s preset table) keeps the paper's values.
"""
from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

CPU_PRESET: dict[str, Any] = {
    "steps": 50,
    "tasks_per_step": 4,
    "group_size": 8,
    "max_turns": 30,
    "max_new_tokens": 48,
    "num_envs": 8,
    "threads": 1,  # measured: 2 threads on 2 shared cores ran the SFT 9x slower than 1 (4.3 vs 0.47 s per batch)
    "skills_embedder": "hashing",
    "skills_budget_chars": 800,
    "learner_args": {"lr": "1e-4", "mini_batches": "4"},
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
