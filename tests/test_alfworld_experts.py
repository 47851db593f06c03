"""ALFWorld experts: the explorer wins without using what the text has not shown."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from sdar_gym.core import ConfigError
from sdar_gym.envs.alfworld import generator as gen
from sdar_gym.envs.alfworld.data import TASK_TYPES
from sdar_gym.envs.alfworld.env import ALFWorldEnv
from sdar_gym.envs.alfworld.experts import EXPERTS


@pytest.fixture(scope="module")
def games(tmp_path_factory) -> Path:
    """Twelve generated games, two per task type."""
    out = tmp_path_factory.mktemp("alfworld")
    gen.generate_games(out, "train", 2 * len(TASK_TYPES), seed=3, progress=False)
    return out


@pytest.fixture
def unbounded_planner(monkeypatch):
    """TextWorld's planner answers every call, however long it takes: these tests are about its plans,
    which the time-bounded fallback (used when it is late, e.g. under load) does not reproduce."""
    from sdar_gym.envs.alfworld.fast import FastEngine

    monkeypatch.setattr(FastEngine, "planner_timeout_s", float("inf"))
    monkeypatch.setattr(FastEngine, "plan_bound_s", float("inf"))


def _play(env: ALFWorldEnv, task_id: str, admissible: list | None = None) -> tuple[list[tuple[str, str]], bool]:
    """(action, observation before it) of the expert's episode, and whether it won; appends the
    admissible actions before each action to ``admissible`` when given."""
    obs, info = env.reset(options={"task_id": task_id})
    trace = []
    while (action := env.expert_action()) is not None:
        trace.append((action, obs))
        if admissible is not None:
            admissible.append(info["admissible_actions"])
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    return trace, info["won"]


def _shown_before(trace: list[tuple[str, str]], i: int, obj: str) -> bool:
    return any(re.search(rf"\b{re.escape(obj)}\b", obs) for _, obs in trace[: i + 1])


def test_explorer_wins_every_task_type_and_only_uses_what_it_has_seen(games, unbounded_planner):
    env = ALFWorldEnv(data_dir=games, split="train", expert="explorer", max_steps=60)
    planner = ALFWorldEnv(data_dir=games, split="train", expert="planner", max_steps=60)
    explored_longer = 0
    for task_id in env.task_ids:
        trace, won = _play(env, task_id)
        assert won, f"explorer lost {task_id}"
        for i, (action, _) in enumerate(trace):
            needed = re.match(r"^(?:take (.+?) from .+|use (.+))$", action)
            if needed:
                obj = needed.group(1) or needed.group(2)
                assert _shown_before(trace, i, obj), f"{task_id}: '{action}' before {obj} was ever shown"
        explored_longer += len(trace) > len(_play(planner, task_id)[0])
    assert explored_longer > 0  # the planner walks straight to hidden objects; the explorer cannot


def test_explorer_takes_the_first_object_of_the_needed_kind_it_finds(games):
    """The planner's pick among same-kind objects is arbitrary to an observer, so the explorer never
    walks past one that it could take (outside the task's destination) to search on."""
    env = ALFWorldEnv(data_dir=games, split="train", expert="explorer", max_steps=60)
    for task_id in env.task_ids:
        admissible: list[list[str]] = []
        trace, _ = _play(env, task_id, admissible)
        task = trace[0][1].rsplit("Your task is to: ", 1)[1]
        first = next(i for i, (a, _) in enumerate(trace) if a.startswith("take "))
        kind = re.match(r"^take (.+) \d+ from ", trace[first][0]).group(1)
        for i in range(first):
            passed = [a for a in admissible[i] if (m := re.match(r"^take (.+) \d+ from (.+) \d+$", a)) and m.group(1) == kind and m.group(2) not in task]
            assert not passed, f"{task_id} step {i}: did '{trace[i][0]}' though it could '{passed[0]}'"


def test_planner_walks_straight_to_hidden_objects(games, unbounded_planner):
    """The planner's first move goes where the object it takes first lies, unseen: why it is a poor teacher."""
    env = ALFWorldEnv(data_dir=games, split="train", expert="planner")
    straight = 0
    for task_id in env.task_ids:
        trace, won = _play(env, task_id)
        assert won
        first_take = next(m for a, _ in trace if (m := re.match(r"^take (.+?) from (.+)$", a)))
        assert not _shown_before(trace, 0, first_take.group(1))  # the first observation lists receptacles only
        straight += trace[0][0] == f"go to {first_take.group(2)}"
    assert straight >= len(env.task_ids) // 2


def test_unknown_expert_is_a_clear_error(games):
    with pytest.raises(ConfigError, match="unknown ALFWorld expert 'oracle'.*planner"):
        ALFWorldEnv(data_dir=games, split="train", expert="oracle")
    assert set(EXPERTS) == {"planner", "explorer"}


def test_explorer_searches_in_natural_order():
    """Cabinet 2 comes after cabinet 1, not cabinet 10 as in the sorted admissible list: the next move
    then follows from where the explorer stands, which a short history shows."""
    explorer = EXPERTS["explorer"]()
    explorer.reset("You are in the middle of a room. Your task is to: put a mug in shelf.")
    plan = lambda: ["go to cabinet 10", "take mug 1 from cabinet 10", "go to shelf 1", "move mug 1 to shelf 1"]  # noqa: E731
    places = ["cabinet 1", "cabinet 10", "cabinet 11", "cabinet 2", "shelf 1"]
    route = []
    for _ in range(4):
        here = route[-1] if route else None
        action = explorer.action([f"go to {p}" for p in places if p != here], plan)
        route.append(action.removeprefix("go to "))
        explorer.observe(action, f"You arrive at loc 3. On the {route[-1]}, you see nothing.")
    assert route == ["cabinet 1", "cabinet 2", "cabinet 10", "cabinet 11"]
