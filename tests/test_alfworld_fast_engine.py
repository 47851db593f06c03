"""The fast ALFWorld engine plays the same game as TextWorld: checked step by step on real and generated games."""
from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

import sdar_gym  # noqa: F401 (registers the gymnasium ids)
from sdar_gym.core import ConfigError, DataError
from sdar_gym.envs.alfworld.engines import ENGINES
from sdar_gym.envs.alfworld.protocol import NOTHING_HAPPENS, EngineState
from sdar_gym.envs.alfworld.equivalence import compare_split, later_grammar_split
from sdar_gym.envs.alfworld.fast import FastEngine
from sdar_gym.envs.alfworld.fast.text import demangle_names

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alfworld"
SAMPLE = [  # a toggle (conditional effects) game and a two-object game
    "look_at_obj_in_light-AlarmClock-None-DeskLamp-323/trial_T20190909_044715_250790",
    "pick_two_obj_and_place-AlarmClock-None-Dresser-305/trial_T20190907_165826_194855",
]
LATER_SAMPLE = ["pick_clean_then_place_in_recep-SoapBar-None-Toilet-410/trial_T20190906_201106_979461"]

needs_data = pytest.mark.skipif(not (DATA / "json_2.1.1" / "valid_seen").is_dir(), reason=f"no ALFWorld data at {DATA}")


@pytest.fixture(autouse=True)
def _home(tmp_path_factory, monkeypatch):
    """Keep the compiled-game cache out of the user's home."""
    monkeypatch.setenv("SDAR_GYM_HOME", str(tmp_path_factory.getbasetemp() / "home"))


def _assert_same(report) -> None:
    assert not report.mismatches, "\n".join(map(str, report.mismatches))
    assert not report.refused


@needs_data
def test_same_game_as_textworld_on_real_games():
    report = compare_split(DATA, "valid_seen", walks=1, walk_len=6, task_ids=SAMPLE)
    _assert_same(report)
    assert report.games == len(SAMPLE)
    assert report.steps > 2 * len(SAMPLE) + 6  # resets plus the expert and walk steps


@needs_data
def test_same_game_as_textworld_with_the_later_grammar(tmp_path):
    data = later_grammar_split(DATA, "valid_seen", tmp_path, task_ids=LATER_SAMPLE)
    game = json.loads(next((data / "json_2.1.1").rglob("game.tw-pddl")).read_text())
    assert "move {o} to {r}" in game["grammar"] and "UNKNOWN GOAL" not in game["grammar"]
    report = compare_split(data, "valid_seen", walks=1, walk_len=6)
    _assert_same(report)
    assert report.games == 1


@needs_data
def test_the_suite_reports_a_difference(monkeypatch):
    class Broken(FastEngine):
        def step(self, command: str) -> EngineState:
            state = super().step(command)
            return EngineState(state.feedback.replace("desk", "table"), state.admissible, state.won)

    monkeypatch.setitem(ENGINES, "broken", Broken)
    report = compare_split(DATA, "valid_seen", reference="fast", candidate="broken", walks=0, task_ids=SAMPLE[:1])
    assert report.mismatches
    first = report.mismatches[0]
    assert first.game == SAMPLE[0] and first.trajectory == "expert" and first.step >= 1 and first.what == "obs"
    assert "desk" in first.reference and "table" in first.candidate


def test_same_game_as_textworld_on_generated_games(tmp_path):
    from sdar_gym.envs.alfworld.data import TASK_TYPES, find_games
    from sdar_gym.envs.alfworld.generator import generate_games

    generate_games(tmp_path, "valid_seen", n=len(TASK_TYPES), seed=0, progress=False)  # one game per task type
    assert {g.task_type for g in find_games(tmp_path, "valid_seen")} == set(TASK_TYPES)
    report = compare_split(tmp_path, "valid_seen", walks=1, walk_len=5)
    _assert_same(report)
    assert report.games == len(TASK_TYPES)


def _grammars(tmp_path) -> list[str]:
    """Generated games' grammars, one per task type, and a dozen real games' when the data is there."""
    from sdar_gym.envs.alfworld.data import TASK_TYPES
    from sdar_gym.envs.alfworld.generator import generate_games

    generate_games(tmp_path, "valid_seen", n=len(TASK_TYPES), seed=1, progress=False)
    files = sorted(tmp_path.rglob("game.tw-pddl"))
    if (DATA / "json_2.1.1" / "valid_seen").is_dir():
        files += sorted((DATA / "json_2.1.1" / "valid_seen").rglob("game.tw-pddl"))[::15]
    return [json.loads(f.read_text())["grammar"] for f in files]


def test_a_grammar_parsed_once_per_game_set_compiles_as_its_own_full_parse(tmp_path):
    """Games share their grammar but for the goal line, which is parsed alone: each game's compiled
    grammar (with its own goal, whatever game came before) equals a parse of its whole grammar."""
    from sdar_gym.envs.alfworld.fast import compile as fast_compile

    grammars = _grammars(tmp_path)
    assert len({fast_compile._GOAL_RHS.search(g).group(2) for g in grammars}) == len(grammars)  # every goal its own
    fast_compile._parse_grammar_cached.cache_clear()
    shared = [fast_compile._grammar(g) for g in grammars]
    assert fast_compile._parse_grammar_cached.cache_info().misses == 1  # one parse for all of them
    for grammar, compiled in zip(grammars, shared):
        assert compiled == fast_compile._parsed_grammar(grammar)
    no_goal = fast_compile._GOAL_RHS.sub('"rhs": "Your task is done."', grammars[0])
    assert fast_compile._grammar(no_goal) == fast_compile._parsed_grammar(no_goal)  # parsed whole


@needs_data
def test_env_with_fast_engine_keeps_the_contract():
    env = gym.make("sdar_gym/ALFWorld-v0", data_dir=DATA, split="valid_seen", engine="fast", max_steps=30)
    obs, info = env.reset(options={"task_id": SAMPLE[1]})
    assert obs.startswith("-= Welcome to TextWorld, ALFRED! =-") and info["task_type"] == "pick_two_obj_and_place"
    for bad in ["", "jump", "take unicorn 7 from dresser 1", info["admissible_actions"][0].upper()]:
        obs, reward, terminated, truncated, info = env.step(bad)
        assert obs == NOTHING_HAPPENS and not info["action_valid"] and reward == 0.0 and not terminated
    for _ in range(30):
        action = env.unwrapped.expert_action()
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["action_valid"]
        if terminated:
            break
    assert terminated and info["won"] and reward == 1.0


@needs_data
def test_plan_is_valid_from_a_mid_game_state():
    game_file = DATA / "json_2.1.1" / "valid_seen" / SAMPLE[0] / "game.tw-pddl"
    engine = FastEngine(cache_dir=None)
    engine.load(game_file)
    state = engine.reset()
    for command in ["inventory", state.admissible[0], "look"]:
        state = engine.step(command)
    for command in engine.plan():
        state = engine.step(command)
        assert state.feedback != NOTHING_HAPPENS
    assert state.won


@needs_data
def test_unplayable_game_gives_a_clear_error(tmp_path):
    data = json.loads((DATA / "json_2.1.1" / "valid_seen" / SAMPLE[0] / "game.tw-pddl").read_text())
    data["grammar"] = data["grammar"].replace("action PickupObject {", "action PickupSomething {")
    bad = tmp_path / "game.tw-pddl"
    bad.write_text(json.dumps(data))
    with pytest.raises(DataError, match="pickupobject.*no command template"):
        FastEngine(cache_dir=None).load(bad)
    bad.write_text("{}")
    with pytest.raises(DataError, match="missing"):
        FastEngine(cache_dir=None).load(bad)


@needs_data
def test_compiled_game_cache_round_trips(tmp_path):
    game_file = DATA / "json_2.1.1" / "valid_seen" / SAMPLE[1] / "game.tw-pddl"
    fresh = FastEngine(cache_dir=None)
    fresh.load(game_file)
    cached = FastEngine(cache_dir=tmp_path)
    cached.load(game_file)
    assert len(list(tmp_path.glob("*.json.gz"))) == 1
    a, b = fresh.reset(), cached.reset()
    assert (a.feedback, a.admissible) == (b.feedback, b.admissible)


def test_demangled_names_match_alfworld():
    from collections import namedtuple

    from alfworld.agents.utils.misc import Demangler

    ids = [
        "apple_bar__plus_01_dot_20_bar__plus_00_dot_90_bar__minus_01_dot_10",
        "apple_bar__minus_00_dot_30_bar__plus_00_dot_90_bar__minus_01_dot_10",
        "sink_bar__plus_00_dot_10_bar__plus_00_dot_90_bar__minus_01_dot_10_bar_sinkbasin",
        "loc_bar_2_bar_5_bar_1_bar_60",
        "loc_bar__minus_1_bar_5_bar_1_bar_60",
        "agent1",
        "appletype",
    ]
    Info = namedtuple("Info", "id")
    reference = Demangler(game_infos={i: Info(i) for i in ids}, shuffle=False)
    assert demangle_names(ids) == {i: reference.demangle_alfred_name(i) for i in ids}


def test_the_search_planner_wins_without_starting_textworld(tmp_path, monkeypatch):
    """planner='search' (the warm start's demonstrations) must never load TextWorld's planner."""
    from sdar_gym.envs.alfworld.env import ALFWorldEnv
    from sdar_gym.envs.alfworld.fast import engine as fast_engine
    from sdar_gym.envs.alfworld.generator import generate_games

    def no_textworld(*args, **kwargs):
        raise AssertionError("TextWorld's planner was started")

    monkeypatch.setattr(fast_engine, "PlannerProcess", no_textworld)
    generate_games(tmp_path, "train", 2, seed=0, progress=False)
    env = ALFWorldEnv(data_dir=tmp_path, split="train", expert="explorer", planner="search")
    for task in env.task_ids:
        env.reset(options={"task_id": task})
        for _ in range(40):
            _, _, terminated, truncated, info = env.step(env.expert_action())
            if terminated or truncated:
                break
        assert info["won"], task
    env.close()


def test_planner_names_are_checked():
    from sdar_gym.envs.alfworld.env import ALFWorldEnv

    with pytest.raises(ConfigError, match="unknown ALFWorld planner 'oracle'"):
        ALFWorldEnv(planner="oracle")
    with pytest.raises(ConfigError, match="needs engine='fast'"):
        ALFWorldEnv(engine="textworld", planner="search")
    with pytest.raises(ConfigError, match="progress=True needs an engine that measures the goal's distance"):
        ALFWorldEnv(engine="textworld", progress=True)


@needs_data
def test_progress_counts_steps_toward_the_goal_and_sums_to_the_start_distance():
    """``progress=True``: each step's drop in the relaxed-plan length. Along a winning plan the drops
    add up to the distance at reset (so wandering away and back earns nothing), and an action that
    does nothing makes none."""
    from sdar_gym.envs.alfworld.env import ALFWorldEnv

    env = ALFWorldEnv(data_dir=DATA, split="valid_seen", planner="search", progress=True)
    for task_id in SAMPLE:
        obs, info = env.reset(options={"task_id": task_id})
        start = env._engine.goal_distance()
        assert info["progress"] == 0.0 and 0 < start < float("inf")
        obs, _, _, _, info = env.step("take unicorn 7 from dresser 1")
        assert obs == NOTHING_HAPPENS and info["progress"] == 0.0
        made = []
        for command in env._engine.plan():
            obs, reward, terminated, truncated, info = env.step(command)
            made.append(info["progress"])
        assert terminated and sum(made) == start and env._engine.goal_distance() == 0.0
    assert "progress" not in ALFWorldEnv(data_dir=DATA, split="valid_seen").reset(options={"task_id": SAMPLE[0]})[1]
