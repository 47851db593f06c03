"""The unmodified alfworld/TextWorld engine, behind the engine protocol (``protocol.py``)."""
from __future__ import annotations

from pathlib import Path

from sdar_gym.envs.alfworld.data import load_game
from sdar_gym.envs.alfworld.protocol import EngineState
from sdar_gym.envs.alfworld.textworld_calls import acquire_downward_lib, release_downward_lib, textworld_call


def _PooledPddlEnv(infos):
    """TextWorld's ``PddlEnv`` on a library copy from the pool (its constructor loads a new one each time)."""
    from textworld.core import Environment
    from textworld.envs.pddl.pddl import PddlEnv

    env = PddlEnv.__new__(PddlEnv)
    Environment.__init__(env, infos)
    env.downward_lib = acquire_downward_lib()
    return env


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
        pddl_env = _PooledPddlEnv(infos)
        try:
            with textworld_call():  # what textworld.start does, with a pooled planner library
                env = AlfredDemangler(shuffle=False)(pddl_env)
                env.load(str(game_file))
        except Exception as e:  # TextWorld raises many types on bad PDDL/grammar
            from sdar_gym.core import DataError

            release_downward_lib(pddl_env.downward_lib)
            raise DataError(f"TextWorld could not load ALFWorld game {game_file}: {type(e).__name__}: {e}") from e
        self.close()  # only now: a failed load leaves the previous game playable
        self._env, self._game_file = env, game_file

    def _state(self, game_state) -> EngineState:
        return EngineState(game_state.feedback, list(game_state["admissible_commands"]), bool(game_state["won"]))

    def reset(self) -> EngineState:
        with textworld_call():  # a reset re-translates the PDDL problem
            return self._state(self._env.reset())

    def step(self, command: str) -> EngineState:
        with textworld_call():  # feedback is derived by TextWorld's (non re-entrant) grammar parser
            game_state, _, _ = self._env.step(command)
        return self._state(game_state)

    def plan(self) -> list[str]:
        pddl_env = self._env.unwrapped
        # No lock: the search runs in this env's own library copy and touches no Python global
        # (sys.argv is rewritten when the planner is loaded, which load() guards), so planners run in parallel.
        return list(pddl_env._pddl_state.replan(pddl_env._entity_infos))

    def close(self) -> None:
        """Give this engine's copy of Fast Downward's library back, its task freed (TextWorld never does)."""
        if self._env is None:
            return
        with textworld_call():
            self._env.close()
        release_downward_lib(self._env.unwrapped.downward_lib)
        self._env, self._game_file = None, None
