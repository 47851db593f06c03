"""The unmodified alfworld/TextWorld engine, behind the engine protocol (``protocol.py``)."""
from __future__ import annotations

from pathlib import Path

from sdar_gym.envs.alfworld.data import load_game
from sdar_gym.envs.alfworld.protocol import EngineState


class TextWorldEngine:
    """The unmodified alfworld/TextWorld engine: TextWorld's ``PddlEnv`` with ALFWorld's demangler."""

    def __init__(self) -> None:
        self._env = None
        self._game_file: Path | None = None

    def load(self, game_file: Path) -> None:
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler

        game_file = Path(game_file)
        if game_file == self._game_file:
            return
        load_game(game_file)  # clear errors for malformed files before TextWorld sees them
        infos = textworld.EnvInfos(won=True, admissible_commands=True)
        try:
            self._env = textworld.start(str(game_file), request_infos=infos, wrappers=[AlfredDemangler(shuffle=False)])
        except Exception as e:  # TextWorld raises many types on bad PDDL/grammar
            from sdar_gym.core import DataError

            raise DataError(f"TextWorld could not load ALFWorld game {game_file}: {type(e).__name__}: {e}") from e
        self._game_file = game_file

    def _state(self, game_state) -> EngineState:
        return EngineState(game_state.feedback, list(game_state["admissible_commands"]), bool(game_state["won"]))

    def reset(self) -> EngineState:
        return self._state(self._env.reset())

    def step(self, command: str) -> EngineState:
        game_state, _, _ = self._env.step(command)
        return self._state(game_state)

    def plan(self) -> list[str]:
        pddl_env = self._env.unwrapped
        return list(pddl_env._pddl_state.replan(pddl_env._entity_infos))
