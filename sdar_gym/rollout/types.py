"""The small typed contracts between env, rollout, policy and learner.

Token ids are kept end to end: a Turn stores exactly the ids that were sampled, with their
sampling log-probs, so a learner never decodes and re-tokenizes to rebuild what was generated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sdar_gym.core import ConfigError


@dataclass
class SamplingParams:
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    """0 means no top-k filtering."""
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature < math.inf:
            raise ConfigError(f"sampling temperature must be a finite number >= 0 (0: greedy), got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0 or self.top_k < 0 or self.max_new_tokens < 1:
            raise ConfigError(f"sampling needs 0 < top_p <= 1, top_k >= 0 and max_new_tokens >= 1, got {self.top_p}, {self.top_k} and {self.max_new_tokens}")


def logprob_temperature(temperature: float) -> float:
    """The temperature a turn's log-probs are of, sampled and recomputed alike: its own, except greedy
    decoding (0), whose log-probs are of the plain logits (temperature 1)."""
    return temperature if temperature > 0 else 1.0


@dataclass
class GenerationRequest:
    """One prompt to complete: chat messages, or prompt token ids when already tokenized."""

    messages: list[dict[str, str]] | None = None
    prompt_ids: list[int] | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    metadata: dict[str, Any] = field(default_factory=dict)
    """What the collector knows about this turn, for scripted policies and logging: ``episode``,
    ``turn``, ``task_id``, ``admissible_actions``, and ``expert_action`` for policies that set
    ``wants_expert_action = True``. Model policies ignore it."""


@dataclass
class Generation:
    text: str
    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    """Sampling log-prob of each response token under the policy that generated it."""
    finish_reason: str = "stop"
    error: str = ""
    """Why no response came back (e.g. every server tried dropped the request); the collector
    marks the episode failed with it and the step goes on."""


@runtime_checkable
class Policy(Protocol):
    async def generate(self, requests: list[GenerationRequest]) -> list[Generation]: ...


@dataclass
class Turn:
    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    action: str
    """The env action projected from the response text ('' when projection failed)."""
    reward: float
    """Shaped reward of this turn (the agent layer's shaping applied, ``penalty`` already subtracted)."""
    info: dict[str, Any]
    """The env's info after this turn's step (the StepInfo contract)."""
    task: str
    task_type: str
    """Together with ``task``, the key for the privileged (skill) context of this turn."""
    prompt_text: str = ""
    response_text: str = ""
    action_valid: bool = True
    env_reward: float = 0.0
    """The env's native reward of this step, before shaping."""
    terminated: bool = False
    truncated: bool = False
    """The env's flags after this turn's step; also True on the last turn cut by ``max_turns``."""
    messages: list[dict[str, str]] = field(default_factory=list)
    """The chat messages the prompt ids were built from (a teacher prompt adds skill text to these)."""
    penalty: float = 0.0
    """Minus this turn's own term of :meth:`sdar_gym.agent.shaping.RewardShaping.turn_term`: its
    invalid-action penalty in the paper's shaping (0 for a valid action); ``reward + penalty`` is the
    turn's task reward, the released code's per-step env reward."""
    observation: str = ""
    """The env observation this turn acted on, without history: GiGPO's anchor state."""
    response_mask: list[int] = field(default_factory=list)
    """1 for each response token the loss should use, 0 to leave it out (e.g. a response cut by
    ``max_new_tokens`` when the collector masks truncated responses)."""


@dataclass
class Episode:
    turns: list[Turn]
    group_id: str
    """Episodes of one group share a task; GRPO normalizes rewards within a group."""
    task_id: str
    task: str
    task_type: str
    score: float
    won: bool
    failed: bool = False
    """True when the episode was cut short by an infrastructure failure (e.g. a crashed worker)."""
    failure_reason: str = ""

    @property
    def total_reward(self) -> float:
        """Sum of the shaped turn rewards (every penalty included)."""
        return sum(t.reward for t in self.turns)

    @property
    def task_reward(self) -> float:
        """The episode's reward before penalties (the released code's ``episode_rewards``)."""
        return sum(t.reward + t.penalty for t in self.turns)
