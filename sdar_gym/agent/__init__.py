"""The agent layer: prompts per env, action projection, reward shaping, history window.

It turns env observations into chat prompts and model text into env actions. It never imports
torch, transformers or learners. The names below load their module on first use, so that
:mod:`sdar_gym.specs` can build env specs from the leaf modules (templates, projection, shaping)
that :mod:`sdar_gym.agent.agent` in turn reads the specs with.
"""
from __future__ import annotations

from sdar_gym.core import lazy_attributes

_LAZY = {
    "AGENTS": "sdar_gym.agent.agent",
    "AgentConfig": "sdar_gym.agent.agent",
    "TextAgent": "sdar_gym.agent.agent",
    "agent_spec": "sdar_gym.agent.agent",
    "HistoryWindow": "sdar_gym.agent.memory",
    "ActionFormat": "sdar_gym.agent.projection",
    "Projection": "sdar_gym.agent.projection",
    "project": "sdar_gym.agent.projection",
    "RewardShaping": "sdar_gym.agent.shaping",
}


__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = list(_LAZY)
