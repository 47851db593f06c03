"""ALFWorld: the game loader, bad input, task selection, and the expert on real games."""
from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import gymnasium as gym
import pytest

import sdar_gym  # noqa: F401  (registers the ids)
from sdar_gym.core import ConfigError, DataError
from sdar_gym.envs.alfworld import TASK_TYPES, find_games


def _copy_trial(src_split: Path, dst_split: Path, task_dir: str) -> Path:
    trial = next((src_split / task_dir).iterdir())
    dst = dst_split / task_dir / trial.name
    shutil.copytree(trial, dst)
    return dst


@pytest.fixture(scope="module")
def real_split(alfworld_real_dir) -> Path:
    return alfworld_real_dir / "json_2.1.1" / "valid_seen"


def test_loader_finds_the_140_solvable_real_games(alfworld_real_dir):
    games = find_games(alfworld_real_dir, "valid_seen")
    assert len(games) == 140
    assert {g.task_type for g in games} == set(TASK_TYPES)
    assert len({g.task_id for g in games}) == 140


def test_loader_skips_like_alfworld(tmp_path, real_split):
    dst = tmp_path / "json_2.1.1" / "valid_seen"
    task_dirs = sorted(p.name for p in real_split.iterdir())[:3]
    kept = _copy_trial(real_split, dst, task_dirs[0])
    unsolvable = _copy_trial(real_split, dst, task_dirs[1])
    game = json.loads((unsolvable / "game.tw-pddl").read_text())
    game["solvable"] = False
    (unsolvable / "game.tw-pddl").write_text(json.dumps(game))
    movable = _copy_trial(real_split, dst, task_dirs[2])
    movable.parent.rename(movable.parent.with_name(task_dirs[2] + "-movable"))
    games = find_games(tmp_path, "valid_seen")
    assert [g.game_file for g in games] == [kept / "game.tw-pddl"]


def test_task_type_filter_accepts_short_and_long_names(alfworld_real_dir):
    short = find_games(alfworld_real_dir, "valid_seen", task_types=["Heat", "cool"])
    long = find_games(alfworld_real_dir, "valid_seen", task_types=["pick_heat_then_place_in_recep", "pick_cool_then_place_in_recep"])
    assert short == long and short
    assert {g.task_type for g in short} == {"pick_heat_then_place_in_recep", "pick_cool_then_place_in_recep"}


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"split": "validation"}, ConfigError, "unknown ALFWorld split"),
        ({"task_types": ["Fly"]}, ConfigError, "unknown ALFWorld task type"),
        ({"max_steps": 0}, ConfigError, "max_steps"),
        ({"engine": "quantum"}, ConfigError, "unknown ALFWorld engine"),
    ],
)
def test_bad_arguments_are_clear_errors(alfworld_real_dir, kwargs, error, message):
    kwargs = {"data_dir": alfworld_real_dir, "split": "valid_seen", **kwargs}
    with pytest.raises(error, match=message):
        gym.make("sdar_gym/ALFWorld-v0", **kwargs)


def test_missing_and_empty_data_dir_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        gym.make("sdar_gym/ALFWorld-v0", data_dir=tmp_path / "nowhere")
    with pytest.raises(DataError, match="no json_2.1.1/train"):
        gym.make("sdar_gym/ALFWorld-v0", data_dir=tmp_path)
    (tmp_path / "json_2.1.1" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no solvable ALFWorld games"):
        gym.make("sdar_gym/ALFWorld-v0", data_dir=tmp_path)


def test_malformed_game_file_is_a_clear_error(tmp_path, real_split):
    dst = tmp_path / "json_2.1.1" / "valid_seen"
    trial = _copy_trial(real_split, dst, sorted(p.name for p in real_split.iterdir())[0])
    (trial / "game.tw-pddl").write_text('{"solvable": true, "pddl_domain": ')
    with pytest.raises(DataError, match="malformed JSON in .*game.tw-pddl"):
        gym.make("sdar_gym/ALFWorld-v0", data_dir=tmp_path, split="valid_seen")
    (trial / "game.tw-pddl").write_text('{"solvable": true, "pddl_domain": "(define)"}')
    env = gym.make("sdar_gym/ALFWorld-v0", data_dir=tmp_path, split="valid_seen")
    with pytest.raises(DataError, match="malformed ALFWorld game .*grammar, pddl_problem"):
        env.reset(seed=0)


def test_observation_task_and_validity_follow_alfworld(alfworld_real_dir):
    env = gym.make("sdar_gym/ALFWorld-v0", data_dir=alfworld_real_dir, split="valid_seen")
    obs, info = env.reset(seed=0)
    assert obs.startswith("-= Welcome to TextWorld, ALFRED! =-")
    assert obs.endswith("Your task is to: " + info["task"] + (".") * (not info["task"].endswith(".")))
    assert "help" not in info["admissible_actions"] and "look" in info["admissible_actions"]
    assert info["task_type_short"] == TASK_TYPES[info["task_type"]]
    obs, reward, terminated, truncated, info = env.step("fly to the moon")
    assert obs == "Nothing happens." and info["action_valid"] is False
    obs, reward, terminated, truncated, info = env.step("look")
    assert info["action_valid"] is True and obs != "Nothing happens."


def test_truncates_at_max_steps(alfworld_real_dir):
    env = gym.make("sdar_gym/ALFWorld-v0", data_dir=alfworld_real_dir, split="valid_seen", max_steps=3)
    env.reset(seed=1)
    flags = [env.step("look")[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]


def test_expert_wins_a_fixed_sample_of_real_games(alfworld_real_dir):
    """Two games of every task type; the whole split runs in benchmarks/alfworld_expert.py."""
    env = gym.make("sdar_gym/ALFWorld-v0", data_dir=alfworld_real_dir, split="valid_seen", max_steps=50)
    by_type = defaultdict(list)
    for task_id in env.unwrapped.task_ids:
        by_type[task_id.split("-")[0]].append(task_id)
    sample = [tid for ids in by_type.values() for tid in ids[:2]]
    wins = 0
    for task_id in sample:
        _, info = env.reset(options={"task_id": task_id})
        terminated = truncated = False
        while not (terminated or truncated):
            _, _, terminated, truncated, info = env.step(env.unwrapped.expert_action() or "look")
        wins += info["won"]
    assert wins >= 0.95 * len(sample), f"expert won {wins}/{len(sample)}"


def test_env_workers_do_not_inherit_the_alfworld_data_folder_that_importing_alfworld_sets():
    """`import alfworld` writes $ALFWORLD_DATA (its empty cache folder) into the environment; process-pool
    workers inherited it, took it for the user's choice, and failed to find the generated default set."""
    import os
    import subprocess
    import sys

    code = (
        "import os\n"
        "from sdar_gym.envs.alfworld import generator\n"
        "generator.library()\n"  # the generator's own alfworld imports
        "from sdar_gym.envs.alfworld.experts import _holders\n"
        "_holders()\n"
        "print(os.environ.get('ALFWORLD_DATA'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ALFWORLD_DATA"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "None"
