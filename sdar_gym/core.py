"""The TextEnv base class, the ``info`` contract every env fills, and the project's errors.

Every sdar-gym environment is a ``gymnasium.Env[str, str]``: the observation is text, the action
is text. Learners and the rollout layer rely only on what is defined here.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import gymnasium as gym
from gymnasium import spaces

MAX_TEXT_LENGTH = 1_000_000
"""Upper bound on observation/action length that the text spaces advertise."""


class SdarGymError(Exception):
    """Base class of the errors sdar-gym raises on bad input or bad data."""


class DataError(SdarGymError):
    """A data folder or file is missing, empty or malformed."""


class ConfigError(SdarGymError, ValueError):
    """An argument has a value the component does not accept."""


class StepInfo(TypedDict):
    """Keys every env puts in ``info`` at reset and at every step."""

    task: str
    """The instruction or question, as shown to the agent."""
    task_id: str
    """Stable identifier of the task across runs and machines."""
    task_type: str
    """ALFWorld's task type, WebShop's product category, or Search-QA's data source."""
    admissible_actions: list[str] | None
    """The valid actions now, or None where actions are open text."""
    won: bool
    score: float
    """The env's native score: ALFWorld 0/1, WebShop reward in [0, 1], Search-QA exact match."""
    action_valid: bool
    """False when the last action was not understood or had no effect."""


INFO_KEYS: tuple[str, ...] = tuple(StepInfo.__annotations__)


class TextSpace(spaces.Text):
    """A text space that admits any string (gymnasium's ``Text`` admits only its charset).

    Sampling still draws from a printable charset, which is what env checkers need.
    """

    def __init__(self, max_length: int = MAX_TEXT_LENGTH, seed: int | None = None):
        super().__init__(max_length=max_length, min_length=0, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length


class TextEnv(gym.Env[str, str]):
    """Base class of all sdar-gym environments.

    Subclasses implement ``reset`` and ``step`` and fill :class:`StepInfo` keys. ``expert_action``
    returns an oracle's next action (used by tests, demonstrations and SFT warm starts).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, render_mode: str | None = None) -> None:
        if render_mode not in (None, "ansi"):
            raise ConfigError(f"unsupported render_mode {render_mode!r}; text envs render 'ansi' only")
        self.render_mode = render_mode
        self.observation_space = TextSpace()
        self.action_space = TextSpace()
        self._last_obs = ""

    def expert_action(self) -> str | None:
        """The oracle's next action from the current state, or None when there is none."""
        return None

    @property
    def task_ids(self) -> list[str]:
        """The identifiers of the tasks this env can be reset to."""
        return []

    def render(self) -> str:
        return self._last_obs

    @staticmethod
    def check_action(action: Any) -> str:
        """Reject non-string actions with a clear error (text envs take ``str`` only)."""
        if not isinstance(action, str):
            raise TypeError(f"action must be a str, got {type(action).__name__}: {action!r:.80}")
        return action


def lazy_attributes(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A package ``__getattr__`` (PEP 562) that imports ``names[attr]``'s module on first use, so
    importing the package stays cheap (no torch) and does not load modules that import it back."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def sdar_gym_home() -> Path:
    """Where generated default data and built artifacts are cached (``$SDAR_GYM_HOME``)."""
    return Path(os.environ.get("SDAR_GYM_HOME", Path.home() / ".cache" / "sdar-gym")).expanduser()
