"""The offline ALFWorld generator: determinism, split hygiene, solvability in the env, atomic writes."""

from __future__ import annotations

import json
import re
import threading
import warnings
from pathlib import Path

import gymnasium as gym
import pytest

import sdar_gym  # noqa: F401  (registers the gymnasium ids)
from sdar_gym.core import ConfigError, DataError
from sdar_gym.envs.alfworld import generator as gen
from sdar_gym.envs.alfworld.data import TASK_TYPES, find_games

SEED = 7


def _files(trial: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(trial.iterdir())}


@pytest.fixture(scope="module")
def train(tmp_path_factory) -> tuple[Path, list[Path]]:
    """Six train games, one per task type (the round robin covers all six in any six games)."""
    out = tmp_path_factory.mktemp("alfworld")
    return out, gen.generate_games(out, "train", 6, SEED, progress=False)


def test_layout_and_task_types(train):
    out, trials = train
    lib = gen.library()
    assert {json.loads((t / "traj_data.json").read_text())["task_type"] for t in trials} == set(TASK_TYPES)
    room_sizes = set()
    for trial in trials:
        game = json.loads((trial / "game.tw-pddl").read_text())
        traj = json.loads((trial / "traj_data.json").read_text())
        assert game["solvable"] is True and game["walkthrough"]
        assert game["pddl_domain"] == lib.domain  # the wheel's files, only the task sentence filled in
        assert game["grammar"] == lib.grammar.replace("UNKNOWN GOAL", traj["task_desc"])
        room_sizes.add(game["pddl_problem"].count(" - receptacle"))
        params = traj["pddl_params"]
        recep = params["parent_target"] or params["toggle_target"]
        assert (
            trial.parent.name
            == f"{traj['task_type']}-{params['object_target']}-None-{recep}-{traj['scene']['floor_plan'][9:]}"
        )
        assert trial.name == traj["task_id"]
    assert len(room_sizes) > 1, "rooms should vary in size"
    assert not (out / "json_2.1.1" / gen.STAGING).exists()
    assert len(find_games(out, "train")) == 6


def test_walkthrough_and_expert_win_in_env(train):
    out, _ = train
    env = gym.make("sdar_gym/ALFWorld-v0", data_dir=out, split="train")
    for task_id in env.unwrapped.task_ids:
        trial = out / "json_2.1.1" / "train" / task_id
        walkthrough = json.loads((trial / "game.tw-pddl").read_text())["walkthrough"]
        env.reset(options={"task_id": task_id})
        for action in walkthrough:
            _, reward, terminated, _, info = env.step(action)
            assert info["action_valid"], (task_id, action)
        assert terminated and reward == 1.0 and info["won"], task_id

        obs, info = env.reset(options={"task_id": task_id})
        assert info["task"] == json.loads((trial / "traj_data.json").read_text())["task_desc"] + "."
        for _ in range(len(walkthrough) + 5):
            _, _, terminated, _, info = env.step(env.unwrapped.expert_action())
            if terminated:
                break
        assert info["won"], f"the expert did not win {task_id}"
    env.close()


def test_same_seed_same_bytes_and_prefix_stable(train, tmp_path):
    _, trials = train
    again = gen.generate_games(tmp_path, "train", 2, SEED, progress=False)
    assert [t.relative_to(tmp_path) for t in again] == [t.relative_to(train[0]) for t in trials[:2]]
    for a, b in zip(again, trials):
        assert _files(a) == _files(b)


def test_different_seed_differs(train, tmp_path):
    _, trials = train
    other = gen.generate_games(tmp_path, "train", 1, SEED + 1, progress=False)[0]
    assert (
        json.loads((other / "game.tw-pddl").read_text())["pddl_problem"]
        != json.loads((trials[0] / "game.tw-pddl").read_text())["pddl_problem"]
    )


def test_splits_do_not_overlap(train, tmp_path):
    _, trials = train
    lib = gen.library()
    assert not set(lib.scene_sets["train"]) & set(lib.scene_sets["test"])
    unseen = gen.generate_games(tmp_path, "valid_unseen", 1, SEED, progress=False)
    seen = gen.generate_games(tmp_path, "valid_seen", 1, SEED, progress=False)
    for trial in unseen:
        assert json.loads((trial / "traj_data.json").read_text())["scene"]["scene_num"] in lib.scene_sets["test"]
    problems = {json.loads((t / "game.tw-pddl").read_text())["pddl_problem"].split("\n", 1)[1] for t in trials}
    for trial in seen + unseen:
        assert json.loads((trial / "game.tw-pddl").read_text())["pddl_problem"].split("\n", 1)[1] not in problems


def test_crash_mid_write_leaves_nothing_loadable(tmp_path, monkeypatch):
    def crash(tmp, final):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(gen, "_move_into_place", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        gen.generate_games(tmp_path, "train", 1, SEED, progress=False)
    # A hard kill skips the cleanup too: the staged trial stays, complete, where no loader looks.
    monkeypatch.setattr(gen.shutil, "rmtree", lambda *a, **k: None)
    with pytest.raises(RuntimeError, match="simulated crash"):
        gen.generate_games(tmp_path, "train", 1, SEED, progress=False)
    staged = list((tmp_path / "json_2.1.1" / gen.STAGING).glob("*/traj_data.json"))
    assert staged, "the simulated kill should leave a staged trial behind"
    assert not list((tmp_path / "json_2.1.1" / "train").glob("*/*"))
    with pytest.raises(DataError, match="no json_2.1.1/train/ folder|no solvable ALFWorld games"):
        find_games(tmp_path, "train")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "test", "n": 1}, "unknown ALFWorld split 'test'"),
        ({"split": "train", "n": 0}, "positive integer"),
        ({"split": "train", "n": 1, "task_types": ["juggle"]}, "unknown ALFWorld task type 'juggle'"),
        ({"split": "train", "n": 1, "workers": 0}, "workers must be at least 1"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        gen.generate_games(tmp_path, seed=0, progress=False, **kwargs)


def test_cli_args_report_bad_split(tmp_path):
    with pytest.raises(ConfigError, match="unknown ALFWorld split 'dev'"):
        gen.GenerateALFWorldArgs(out=tmp_path, split="dev", n=1).run()


def test_task_type_filter(tmp_path):
    trials = gen.generate_games(tmp_path, "train", 2, SEED, task_types=["Heat"], progress=False)
    assert {json.loads((t / "traj_data.json").read_text())["task_type"] for t in trials} == {
        "pick_heat_then_place_in_recep"
    }


def test_default_games_built_once_and_used_by_make(tmp_path, monkeypatch):
    monkeypatch.setenv("SDAR_GYM_HOME", str(tmp_path))
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    monkeypatch.setattr(gen, "DEFAULT_SIZES", {"train": 1, "valid_seen": 1, "valid_unseen": 1})
    made = []
    real_make = gen.make_game
    monkeypatch.setattr(gen, "make_game", lambda *args, **kw: made.append(args) or real_make(*args, **kw))
    data_dir = tmp_path / "alfworld"
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(gen.ensure_default_games(data_dir, progress=False, workers=1)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [data_dir, data_dir]
    assert len(made) == 3, "two concurrent first uses must build the set once"
    assert not list(data_dir.glob(".json_2.1.1.*"))

    env = gym.make("sdar_gym/ALFWorld-v0", split="valid_unseen")  # no data_dir: the default set
    assert env.unwrapped.data_dir == data_dir and len(env.unwrapped.task_ids) == 1
    env.close()
    assert len(made) == 3, "a built default set is reused, not rebuilt"


def test_ensure_default_games_refuses_foreign_data(tmp_path):
    (tmp_path / "json_2.1.1" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="did not make"):
        gen.ensure_default_games(tmp_path, {"train": 1}, progress=False)


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "alfworld"
real_only = pytest.mark.skipif(not (REAL / "json_2.1.1" / "valid_seen").is_dir(), reason="real ALFWorld games absent")


def _real_games(per_type: int = 1) -> list:
    games = []
    for task_type in TASK_TYPES:
        games += find_games(REAL, "valid_seen", [task_type])[:per_type]
    return games


@real_only
def test_language_is_the_released_games():
    """Domain and grammar are the released games' (up to the task sentence), from the wheel plus our edits."""
    lib = gen.library()
    real = json.loads(_real_games()[0].game_file.read_text())
    sentence = real["grammar"].split("Your task is to: ", 1)[1].split('."', 1)[0]
    assert lib.domain == real["pddl_domain"]
    assert lib.grammar == real["grammar"].replace(sentence, "UNKNOWN GOAL")


@real_only
def test_action_templates_match_the_released_games(train):
    """No command template occurs in generated games that real games lack, and the reverse."""
    from sdar_gym.envs.alfworld.fast import FastEngine

    def templates(game_files) -> set[str]:
        found = set()
        for f in game_files:
            engine = FastEngine()  # compiles the game once for its walks
            for seed in range(4):
                found |= {gen.action_template(a) for state in gen.survey(f, 60, seed, engine) for a in state.admissible}
        return found

    _, trials = train
    generated = templates([t / "game.tw-pddl" for t in trials])
    real = templates([g.game_file for g in _real_games()])
    assert "put X in/on X" in generated and "heat X with X" in generated
    assert generated == real, (generated - real, real - generated)


def test_whole_rooms_and_weighted_templates(train):
    """Every fixed receptacle of the scene is in the room; goal sentences come from the goal library."""
    _, trials = train
    lib = gen.library()
    for trial in trials:
        traj = json.loads((trial / "traj_data.json").read_text())
        problem = json.loads((trial / "game.tw-pddl").read_text())["pddl_problem"]
        scene = lib.scenes[traj["scene"]["scene_num"]]
        assert len(re.findall(r"\(receptacleType \w", problem)) == len(scene.receptacles)
        params = traj["pddl_params"]
        sentences = [
            t.format(obj=params["object_target"].lower(), recep=params["parent_target"].lower(),
                     toggle=params["toggle_target"].lower(), mrecep="")
            for t in lib.goals[traj["task_type"]]["templates"]
        ]
        assert traj["task_desc"] in sentences
    assert set(gen.TEMPLATE_WEIGHTS) == set(TASK_TYPES)


def test_more_games_than_the_scenes_allow_stops_cleanly(tmp_path):
    kept = gen.generate_games(tmp_path, "valid_unseen", 1, SEED, task_types=["Look"], progress=False)
    limit = gen.capacity("valid_unseen", ("look_at_obj_in_light",))
    with pytest.raises(DataError, match=f"allow only {limit} distinct games"):
        gen.generate_games(tmp_path, "valid_unseen", limit + 1, SEED, task_types=["Look"], progress=False)
    assert [g.game_file.parent for g in find_games(tmp_path, "valid_unseen")] == kept


def test_cut_short_run_warns_at_load_and_the_same_command_completes_it(tmp_path, monkeypatch):
    real_make = gen.make_game

    def killed_at_2(root, split, seed, index, types, **kw):
        if index == 2:
            raise KeyboardInterrupt
        return real_make(root, split, seed, index, types, **kw)

    monkeypatch.setattr(gen, "make_game", killed_at_2)
    with pytest.raises(KeyboardInterrupt):
        gen.generate_games(tmp_path, "train", 3, SEED, progress=False)
    with pytest.warns(UserWarning, match="unfinished generator run .*3 games asked, 2 found"):
        assert len(find_games(tmp_path, "train")) == 2
    monkeypatch.setattr(gen, "make_game", real_make)
    solved = []
    real_solve = gen._Verifier.solve
    monkeypatch.setattr(gen._Verifier, "solve", lambda self, *a: solved.append(a) or real_solve(self, *a))
    gen.generate_games(tmp_path, "train", 3, SEED, progress=False)
    assert len(solved) >= 1 and all("000002" in str(a[0]) for a in solved), "games already written are kept"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(find_games(tmp_path, "train")) == 3


_KILLED_RUN = """
import os, sys, time
from pathlib import Path
from sdar_gym.envs.alfworld import generator as gen

def slow(*args, **kwargs):
    (Path(sys.argv[2]) / str(os.getpid())).touch()
    time.sleep(600)

gen.make_game = slow
gen.generate_games(sys.argv[1], "train", 4, 0, progress=False, workers=2)
"""


def test_workers_die_with_a_killed_run(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "run.py"
    script.write_text(_KILLED_RUN)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    pids = tmp_path / "pids"
    pids.mkdir()
    run = subprocess.Popen([sys.executable, str(script), str(tmp_path / "out"), str(pids)], env=env)
    # each worker names itself by a file (two workers printing their pids to one pipe could interleave)
    deadline = time.monotonic() + 120
    while len(list(pids.iterdir())) < 2 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) == 2, f"the two workers did not report their pids (got {workers})"
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 10
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in workers if _alive(pid)]
    for pid in alive:  # do not leak them when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived their killed parent"


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited
        return f.read().split(") ", 1)[1][0] != "Z"


@pytest.mark.parametrize("verify", gen.VERIFIERS)
def test_a_walkthrough_that_does_not_win_is_never_written(tmp_path, monkeypatch, verify):
    real_walkthrough = gen.walkthrough
    monkeypatch.setattr(gen, "walkthrough", lambda task: real_walkthrough(task)[:-1])  # stops one step short
    monkeypatch.setattr(gen, "MAX_ATTEMPTS", 2)
    with pytest.raises(DataError, match="does not win"):
        gen.generate_games(tmp_path, "train", 1, SEED, progress=False, verify=verify)
    assert not list((tmp_path / "json_2.1.1" / "train").glob("*/*/game.tw-pddl"))


def test_fast_and_textworld_verification_write_the_same_games(train, tmp_path):
    """A sample replayed in TextWorld itself: the default fast-engine check keeps exactly its games."""
    _, trials = train
    again = gen.generate_games(tmp_path, "train", 2, SEED, progress=False, verify="textworld")
    assert [_files(t) for t in again] == [_files(t) for t in trials[:2]]


def test_verified_games_play_from_the_compiled_cache(tmp_path, monkeypatch):
    from sdar_gym.envs.alfworld.fast import FastEngine
    from sdar_gym.envs.alfworld.fast import compile as fast_compile

    monkeypatch.setenv("SDAR_GYM_HOME", str(tmp_path / "home"))
    (trial,) = gen.generate_games(tmp_path / "data", "train", 1, SEED, progress=False)
    monkeypatch.setattr(fast_compile, "compile_game", lambda *a: pytest.fail("a verified game was compiled again"))
    engine = FastEngine()
    engine.load(trial / "game.tw-pddl")
    state = engine.reset()
    for command in json.loads((trial / "game.tw-pddl").read_text())["walkthrough"]:
        state = engine.step(command)
    assert state.won


def test_unknown_verifier_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown verifier 'planner'"):
        gen.generate_games(tmp_path, "train", 1, SEED, progress=False, verify="planner")
