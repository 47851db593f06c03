"""The agent layer: prompts per env, action projection, reward shaping, history window.

It turns env observations into chat prompts and model text into env actions. It never imports
torch, transformers or learners. The names below load their module on first use, so that
:mod:`sdar_gym.specs` can build env specs from the leaf modules (templates, projection, shaping)
that :mod:`sdar_gym.agent.agent` in turn reads the specs with.
"""
from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sdar_gym.agent' has no attribute {name!r}")


__all__ = list(_LAZY)
