"""The engines that play an ALFWorld game, by name (``make(..., engine=NAME)``); all follow
:class:`sdar_gym.envs.alfworld.protocol.Engine`."""
from __future__ import annotations

from typing import Callable

from sdar_gym.core import ConfigError
from sdar_gym.envs.alfworld.protocol import Engine
from sdar_gym.envs.alfworld.textworld_engine import TextWorldEngine


def _fast_engine(textworld_planner: bool = True) -> Engine:
    from sdar_gym.envs.alfworld.fast import FastEngine  # imported on use: it compiles games

    return FastEngine(textworld_planner=textworld_planner)


def _textworld_engine(textworld_planner: bool = True) -> Engine:
    if not textworld_planner:
        raise ConfigError("the textworld engine plans with TextWorld's planner only; planner='search' needs engine='fast'")
    return TextWorldEngine()


ENGINES: dict[str, Callable[..., Engine]] = {"textworld": _textworld_engine, "fast": _fast_engine}
"""Engine constructors by name, as passed to ``make(..., engine=NAME)``; each takes ``textworld_planner``."""

PLANNERS = ("textworld", "search")
"""Who plans for the expert (``make(..., planner=NAME)``): TextWorld's planner (with the fast engine's
search as its bounded fallback), or that search alone (fast engine only)."""
