"""The engines that play an ALFWorld game, by name (``make(..., engine=NAME)``); all follow
:class:`sdar_gym.envs.alfworld.protocol.Engine`."""
from __future__ import annotations

from typing import Callable

from sdar_gym.envs.alfworld.protocol import Engine
from sdar_gym.envs.alfworld.textworld_engine import TextWorldEngine


def _fast_engine() -> Engine:
    from sdar_gym.envs.alfworld.fast import FastEngine  # imported on use: it compiles games

    return FastEngine()


ENGINES: dict[str, Callable[[], Engine]] = {"textworld": TextWorldEngine, "fast": _fast_engine}
"""Engine constructors by name, as passed to ``make(..., engine=NAME)``."""
