"""The TextEnv base class, the ``info`` contract every env fills, and the project's errors.

Every sdar-gym environment is a ``gymnasium.Env[str, str]``: the observation is text, the action
is text. Learners and the rollout layer rely only on what is defined here.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypedDict

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import shared_memory

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


# Async vector envs pass observations through shared memory, and read them through the object
# ``read_from_shared_memory`` returned once at start (for a Box, a live numpy view). Gymnasium's
# ``Text`` functions map characters through the charset (most text fails) and return fixed strings.
# A TextSpace stores Unicode code points instead (int32, padded with -1) and reads them live.
_PAD = -1


class SharedTexts(Sequence):
    """A live view of ``n`` texts in shared memory; a (deep)copy is a plain tuple of str."""

    def __init__(self, memory: Any, n: int, max_length: int) -> None:
        self._rows = np.frombuffer(memory.get_obj(), dtype=np.int32).reshape(n, max_length)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return tuple(self[j] for j in range(*i.indices(len(self))))
        row = self._rows[i]
        return row[row != _PAD].astype("<i4").tobytes().decode("utf-32-le", "surrogatepass")

    def __deepcopy__(self, memo: dict) -> tuple[str, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return f"SharedTexts({tuple(self)!r})"


@shared_memory.create_shared_memory.register(TextSpace)
def _create_text_shared_memory(space: TextSpace, n: int = 1, ctx: Any = None) -> Any:
    import multiprocessing

    return (ctx or multiprocessing).Array(np.dtype(np.int32).char, n * space.max_length)


@shared_memory.write_to_shared_memory.register(TextSpace)
def _write_text_to_shared_memory(space: TextSpace, index: int, value: str, memory: Any) -> None:
    codes = np.frombuffer(value.encode("utf-32-le", "surrogatepass"), dtype="<i4")
    if len(codes) > space.max_length:
        raise ValueError(f"text of {len(codes)} characters exceeds the space's max_length {space.max_length}")
    row = np.frombuffer(memory.get_obj(), dtype=np.int32)[index * space.max_length:(index + 1) * space.max_length]
    row[: len(codes)] = codes
    row[len(codes):] = _PAD


@shared_memory.read_from_shared_memory.register(TextSpace)
def _read_text_from_shared_memory(space: TextSpace, memory: Any, n: int = 1) -> SharedTexts:
    return SharedTexts(memory, n, space.max_length)


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
