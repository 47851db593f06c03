"""The engine protocol: what the ALFWorld env (``env.py``) needs from an engine that plays a
``game.tw-pddl`` file. An engine loads one game, resets it, applies text commands, and can plan
from the current state; engines are interchangeable (``engines.ENGINES``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

NOTHING_HAPPENS = "Nothing happens."
"""The engine's answer to a command that is not applicable; such an action is invalid."""


@dataclass
class EngineState:
    feedback: str
    """The text the game prints after reset or after the last command."""
    admissible: list[str]
    """Sorted, de-duplicated commands applicable now (ALFWorld's ``admissible_commands``)."""
    won: bool


class Engine(Protocol):
    def load(self, game_file: Path) -> None: ...

    def reset(self) -> EngineState: ...

    def step(self, command: str) -> EngineState: ...

    def plan(self) -> list[str]:
        """A winning command sequence from the current state (empty when none is found)."""
        ...

    def close(self) -> None:
        """Release what the engine holds outside Python objects (TextWorld's planner library)."""
        ...
