"""Reward shaping: what the learner is rewarded with, from the env's native reward and step info."""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RewardShaping:
    """The paper's shaping: ``win_reward`` at a won final step, minus a penalty per invalid action.

    A turn's reward has two parts: the task reward, which the released GRPO shares with every turn
    of the episode, and the turn's own term (:meth:`turn_term`: its penalties, and its progress
    bonus), which stays with that turn (``learners.advantages``)."""

    win_reward: float = 10.0
    """Reward on the step that wins the episode (the paper's 10·won)."""
    invalid_penalty: float = 0.1
    """Subtracted on every turn whose response failed projection (paper: 0.1; Search: 0.01)."""
    env_reward_coef: float = 0.0
    """Weight of the env's native step reward (e.g. WebShop's dense score); 0 in the paper."""
    no_effect_penalty: float = 0.0
    """Subtracted on every well-formed turn that the env reports as not understood or without effect
    (``info["action_valid"]`` false; ALFWorld: "Nothing happens."). sdar-gym's own: 0 in the paper,
    whose reward reads only the response's form (agent_system/environments/env_package/alfworld/projection.py)."""
    progress_reward: float = 0.0
    """Added per unit of ``info["progress"]``, the env's report of how much closer to the goal the
    step came (ALFWorld with ``progress=True``: one step less in the relaxed plan). sdar-gym's own:
    0 in the paper, whose ALFWorld reward is 10·won alone."""

    def __post_init__(self) -> None:
        if self.no_effect_penalty > self.invalid_penalty:
            warnings.warn(
                f"no_effect_penalty {self.no_effect_penalty} is above invalid_penalty {self.invalid_penalty}: a malformed answer then "
                "costs less than an action that does nothing, and RL learns to answer malformed text (benchmarks/results/turn_shaping_both.json)",
                stacklevel=3,
            )

    def task_reward(self, env_reward: float, won: bool) -> float:
        """The part of a turn's reward that belongs to the episode's outcome."""
        return self.win_reward * float(won) + self.env_reward_coef * env_reward

    def turn_term(self, action_valid: bool, info: Mapping[str, Any]) -> float:
        """This turn's own term: −invalid_penalty for a malformed response; else −no_effect_penalty
        when the action did nothing, plus progress_reward × info["progress"]."""
        if not action_valid:
            return -self.invalid_penalty
        own = 0.0 if info.get("action_valid", True) else -self.no_effect_penalty
        return own + self.progress_reward * float(info.get("progress", 0.0))

    def __call__(self, env_reward: float, won: bool, action_valid: bool, info: Mapping[str, Any] | None = None) -> float:
        return self.task_reward(env_reward, won) + self.turn_term(action_valid, info or {})
