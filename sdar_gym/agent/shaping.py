"""Reward shaping: what the learner is rewarded with, from the env's native reward and flags."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RewardShaping:
    """The paper's shaping: ``win_reward`` at a won final step, minus a penalty per invalid action."""

    win_reward: float = 10.0
    """Reward on the step that wins the episode (the paper's 10·won)."""
    invalid_penalty: float = 0.1
    """Subtracted on every turn whose response failed projection (paper: 0.1; Search: 0.01)."""
    env_reward_coef: float = 0.0
    """Weight of the env's native step reward (e.g. WebShop's dense score); 0 in the paper."""
    inadmissible_penalty: float = 0.0
    """Subtracted on every well-formed turn whose action is not among the env's admissible actions
    (envs that list them, e.g. ALFWorld); 0 in the paper, whose projection checks only the form
    (agent_system/environments/env_package/alfworld/projection.py ignores its action pools). A
    per-turn signal against acting on objects that are not there, which a failed episode otherwise
    never gives."""

    def __call__(self, env_reward: float, won: bool, action_valid: bool, admissible: bool = True) -> float:
        reward = self.win_reward * float(won) + self.env_reward_coef * env_reward
        if not action_valid:
            return reward - self.invalid_penalty
        return reward - (0.0 if admissible else self.inadmissible_penalty)
