"""``sdar_gym/ALFWorld-v0``: ALFWorld's text household games behind the TextEnv contract."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sdar_gym.core import ConfigError, StepInfo, TextEnv
from sdar_gym.envs.alfworld.data import (
    TASK_TYPES,
    GameRecord,
    default_data_dir,
    find_games,
    generated_data_dir,
)
from sdar_gym.envs.alfworld.engines import ENGINES, PLANNERS
from sdar_gym.envs.alfworld.protocol import NOTHING_HAPPENS, EngineState
from sdar_gym.envs.alfworld.experts import EXPERTS

TASK_PREFIX = "Your task is to: "


class ALFWorldEnv(TextEnv):
    """One ALFWorld game at a time, chosen at reset from a split of games on disk.

    Observations are exactly the engine's text. Reward is 1.0 on a win, else 0 (shaping belongs to
    the agent layer). The episode terminates on a win and truncates after ``max_steps`` actions.

    ``engine`` names an entry of ``ENGINES``: ``"fast"`` (the default: the same text, admissible
    actions and rewards as TextWorld, checked step by step on all 140 real valid_seen games and 500
    generated games with ``sdar-gym check alfworld-equivalence``; ~100x faster, see
    ``benchmarks/results/alfworld_engine.json``) or ``"textworld"`` (alfworld's own engine, the
    reference).

    ``expert`` names an entry of ``EXPERTS`` that answers :meth:`expert_action`: ``"planner"``
    (the default; it knows where everything is) or ``"explorer"`` (searches for what it has not
    seen yet; the demonstrations a text-only policy can learn from).

    ``planner`` names who plans for either expert (``PLANNERS``): ``"textworld"`` (the default, the
    reference) or ``"search"``, the fast engine's own bounded search alone; on 20 generated games the
    explorer won as many with it, in as many turns, 3x faster (the warm start's demonstrations use it).

    ``progress=True`` adds ``info["progress"]``: how many steps closer to the goal the last action
    came (the drop of the fast engine's relaxed-plan length, :meth:`FastEngine.goal_distance`; 0 at
    reset), for an optional per-turn shaping reward (``RewardShaping.progress_reward``). Fast engine only.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        split: str = "train",
        max_steps: int = 50,
        task_types: list[str] | None = None,
        engine: str = "fast",
        expert: str = "planner",
        planner: str = "textworld",
        progress: bool = False,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode)
        if max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, got {max_steps}")
        if engine not in ENGINES:
            raise ConfigError(f"unknown ALFWorld engine {engine!r}; expected one of {', '.join(ENGINES)}")
        if expert not in EXPERTS:
            raise ConfigError(f"unknown ALFWorld expert {expert!r}; expected one of {', '.join(EXPERTS)}")
        if planner not in PLANNERS:
            raise ConfigError(f"unknown ALFWorld planner {planner!r}; expected one of {', '.join(PLANNERS)}")
        self._engine = ENGINES[engine](textworld_planner=planner == "textworld")
        if progress and not hasattr(self._engine, "goal_distance"):
            raise ConfigError(f"progress=True needs an engine that measures the goal's distance (fast); {engine!r} does not")
        self.progress = progress
        self._distance = 0.0
        if data_dir is None:
            data_dir = default_data_dir()
        if data_dir is None:
            from sdar_gym.envs.alfworld.generator import ensure_default_games

            data_dir = ensure_default_games(generated_data_dir())
        self.data_dir = Path(data_dir)
        self.split = split
        self.max_steps = max_steps
        self.games: list[GameRecord] = find_games(self.data_dir, split, task_types)
        self._by_id = {g.task_id: g for g in self.games}
        self._game: GameRecord | None = None
        self._state: EngineState | None = None
        self._task = ""
        self._steps = 0
        self._plan: list[str] = []
        self._expert = EXPERTS[expert]()

    @property
    def task_ids(self) -> list[str]:
        return [g.task_id for g in self.games]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, StepInfo]:
        super().reset(seed=seed)
        options = options or {}
        if "task_id" in options:
            if options["task_id"] not in self._by_id:
                raise ConfigError(f"unknown ALFWorld task_id {options['task_id']!r} in split {self.split!r}")
            game = self._by_id[options["task_id"]]
        else:
            game = self.games[int(self.np_random.integers(len(self.games)))]
        self._engine.load(game.game_file)  # a game that fails to load leaves the episode as it was
        self._game = game
        self._state = self._engine.reset()
        self._task = self._state.feedback.rsplit(TASK_PREFIX, 1)[-1].strip()
        self._steps = 0
        self._plan = []
        self._last_obs = self._state.feedback
        self._expert.reset(self._state.feedback)
        info = self._info(action_valid=True)
        if self.progress:
            self._distance = self._engine.goal_distance()
            info["progress"] = 0.0
        return self._state.feedback, info

    def step(self, action: str) -> tuple[str, float, bool, bool, StepInfo]:
        self.check_action(action)
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._advance_plan(action)
        self._state = self._engine.step(action)
        self._steps += 1
        won = self._state.won
        self._last_obs = self._state.feedback
        self._expert.observe(action.strip(), self._state.feedback)
        info = self._info(action_valid=self._state.feedback != NOTHING_HAPPENS)
        if self.progress:
            distance = self._engine.goal_distance()
            info["progress"] = self._distance - distance if distance < float("inf") and self._distance < float("inf") else 0.0
            self._distance = distance
        return self._state.feedback, float(won), won, (not won and self._steps >= self.max_steps), info

    def expert_action(self) -> str | None:
        """The expert's next action from the current state (see ``expert``)."""
        if self._state is None or self._state.won:
            return None
        return self._expert.action(self._state.admissible, self._planned)

    def close(self) -> None:
        """Release the engine's planner (TextWorld keeps a private copy of Fast Downward's library per game)."""
        self._engine.close()
        self._state = None
        super().close()

    def _planned(self) -> list[str]:
        """The planner's plan from the current state. It is cached and re-planned only when the
        agent left it, so following the planner costs one planner call per episode."""
        assert self._state is not None
        if not self._plan or self._plan[0] not in self._state.admissible:
            self._plan = self._engine.plan()
        return self._plan

    def _advance_plan(self, action: str) -> None:
        if self._plan and action.strip() == self._plan[0]:
            self._plan.pop(0)
        else:
            self._plan = []

    def _info(self, action_valid: bool) -> StepInfo:
        assert self._game is not None and self._state is not None
        return {
            "task": self._task,
            "task_id": self._game.task_id,
            "task_type": self._game.task_type,
            "task_type_short": TASK_TYPES[self._game.task_type],
            "admissible_actions": [a for a in self._state.admissible if a != "help"],
            "won": self._state.won,
            "score": float(self._state.won),
            "action_valid": action_valid,
        }
