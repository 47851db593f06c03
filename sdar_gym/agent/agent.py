"""The agent: per-env prompts, action projection and reward shaping, keyed by env name.

Each env's :class:`AgentSpec` is part of its entry in :data:`sdar_gym.specs.ENV_SPECS`; the rollout
collector only talks to :class:`TextAgent`.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sdar_gym.agent import templates
from sdar_gym.agent.memory import HistoryWindow
from sdar_gym.agent.projection import Projection, project
from sdar_gym.agent.shaping import RewardShaping
from sdar_gym.core import ConfigError
from sdar_gym.specs import ENV_SPECS, AgentSpec


class _AgentSpecs(Mapping[str, AgentSpec]):
    """Each env's agent spec, read live from :data:`sdar_gym.specs.ENV_SPECS` (a view, not a second table)."""

    def __getitem__(self, env: str) -> AgentSpec:
        return ENV_SPECS[env].agent

    def __iter__(self) -> Iterator[str]:
        return iter(ENV_SPECS)

    def __len__(self) -> int:
        return len(ENV_SPECS)


AGENTS: Mapping[str, AgentSpec] = _AgentSpecs()


def agent_spec(env: str) -> AgentSpec:
    """The agent spec of an env short name, with a clear error for unknown names."""
    if env not in ENV_SPECS:
        raise ConfigError(f"no agent spec for env {env!r}; known: {', '.join(ENV_SPECS)}")
    return ENV_SPECS[env].agent


@dataclass(frozen=True)
class AgentConfig:
    """Overrides of an env's agent defaults; None keeps the env's default."""

    history_length: int | None = None
    """How many past (observation, action) pairs the prompt shows."""
    shaping: RewardShaping | None = None
    """Reward shaping; None uses the env's paper defaults."""
    require_think: bool = True
    """Count a response without ``<think>…</think>`` as invalid, as the paper's code does."""
    system_prompt: str | None = None
    """Optional system message placed before the user prompt."""


class TextAgent:
    """Builds chat prompts, projects responses to actions and shapes rewards for one env."""

    def __init__(self, env: str, config: AgentConfig | None = None) -> None:
        config = config or AgentConfig()
        spec = agent_spec(env)
        if config.history_length is not None:
            if config.history_length < 0:
                raise ConfigError(f"history_length must be >= 0, got {config.history_length}")
            spec = replace(spec, history_length=config.history_length)
        if config.shaping is not None:
            spec = replace(spec, shaping=config.shaping)
        self.env = env
        self.spec = spec
        self.config = config

    def new_history(self) -> HistoryWindow:
        return HistoryWindow(self.spec.history_length)

    def prompt(self, observation: str, info: dict[str, Any], history: HistoryWindow, skills: str | None = None) -> str:
        """The user prompt for the current turn; ``skills`` is optional privileged text."""
        cut = self.spec.observation_limit
        history_block = ""
        if history.steps and history.length:
            pairs = "\n".join(
                templates.HISTORY_PAIR.format(n=n, observation=obs[:cut], action=act or "(invalid)")
                for n, obs, act in history.recent()
            )
            history_block = templates.HISTORY.format(steps=history.steps, shown=len(history.recent()), pairs=pairs)
        actions = info.get("admissible_actions")
        prefix = templates.SKILLS.format(skills=skills.strip()) if skills else ""
        return prefix + self.spec.template.format(
            task=info.get("task", ""),
            history=history_block,
            step=history.steps + 1,
            observation=observation[:cut],
            actions=", ".join(f"'{a}'" for a in actions) if actions else "",
        )

    def messages(self, observation: str, info: dict[str, Any], history: HistoryWindow, skills: str | None = None) -> list[dict[str, str]]:
        """Chat messages for the policy: an optional system message, then the prompt."""
        user = {"role": "user", "content": self.prompt(observation, info, history, skills)}
        if self.config.system_prompt:
            return [{"role": "system", "content": self.config.system_prompt}, user]
        return [user]

    def with_skills(self, messages: list[dict[str, str]], skills: str) -> list[dict[str, str]]:
        """A copy of student ``messages`` with the skill block in front of the last user message,
        exactly where :meth:`prompt` would place it (the ``in_message`` teacher prompt)."""
        out = [dict(m) for m in messages]
        out[-1]["content"] = templates.SKILLS.format(skills=skills.strip()) + out[-1]["content"]
        return out

    def project(self, text: str) -> Projection:
        return project(text, self.spec.action_format, self.config.require_think)

    def reward(self, env_reward: float, won: bool, action_valid: bool, info: Mapping[str, Any] | None = None) -> float:
        """Shaped reward of one turn (``won`` true only on the step that wins; ``info``: the env's step
        info, read for the optional per-turn terms of :class:`RewardShaping`)."""
        return self.spec.shaping(env_reward, won, action_valid, info)

    def render_action(self, env_action: str, thought: str = "") -> str:
        """Model text that projects to ``env_action``: a think block, then the tagged action."""
        return f"<think>{thought}</think>{self.spec.action_format.render(env_action)}"
