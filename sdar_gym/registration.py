"""Gymnasium ids of the sdar-gym envs (from :data:`sdar_gym.specs.ENV_SPECS`), and what the CLI
shares to make them: lookup by short name or id, one rule for ``--env-kwargs``, the task list.

``import sdar_gym`` registers every id here.
"""
from __future__ import annotations

import inspect
import json
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from sdar_gym.core import ConfigError
from sdar_gym.specs import ENV_SPECS, EnvSpec


def register_envs() -> None:
    """Register every env with gymnasium (idempotent)."""
    for spec in ENV_SPECS.values():
        if spec.gym_id not in gym.registry:
            gym.register(id=spec.gym_id, entry_point=spec.entry_point, disable_env_checker=True)


def env_entry(name_or_id: str) -> EnvSpec:
    """Look an env up by short name (``alfworld``) or gymnasium id (``sdar_gym/ALFWorld-v0``)."""
    for spec in ENV_SPECS.values():
        if name_or_id in (spec.name, spec.gym_id):
            return spec
    known = ", ".join(ENV_SPECS)
    raise ConfigError(f"unknown env {name_or_id!r}; known envs: {known}")


def make_env(name_or_id: str, **kwargs) -> gym.Env:
    """``gymnasium.make`` by short name or id, without gymnasium's default wrappers' surprises."""
    register_envs()
    spec = env_entry(name_or_id)
    _check_env_kwargs(spec, kwargs)
    return gym.make(spec.gym_id, **kwargs)


def _check_env_kwargs(spec: EnvSpec, kwargs: dict[str, Any]) -> None:
    """Name an ``--env-kwargs`` key the env's constructor does not take, instead of gymnasium's wrapped TypeError."""
    creator = spec.entry_point if callable(spec.entry_point) else load_env_creator(spec.entry_point)
    params = inspect.signature(creator).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        taken = ", ".join(name for name in params if name != "self")
        raise ConfigError(f"{spec.name} takes no keyword argument {', '.join(map(repr, unknown))}; it takes: {taken}")


def parse_env_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``--env-kwargs KEY VALUE ...`` of every subcommand to Python values: each value is read as
    JSON when it parses (``3``, ``0.5``, ``true``, ``null``, ``["a", "b"]``), else kept as text."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        out[key] = value
    return out


def task_list(env: str, env_kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, str]]:
    """The env's task ids (or reset seeds when it has none) and each id's task type when known."""
    target = make_env(env, **env_kwargs).unwrapped
    try:
        ids = list(target.task_ids)
        types = {g.task_id: g.task_type for g in getattr(target, "games", [])}
    finally:
        target.close()
    return (ids or list(range(10_000))), types
