"""The TextEnv contract, checked on every registered env.

To cover a new env, add a factory to ``ENV_FACTORIES`` returning the kwargs for a small instance.
"""
from __future__ import annotations

from typing import Callable

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import sdar_gym
from sdar_gym.specs import ENV_SPECS as ENVS

INFO_TYPES = {
    "task": str,
    "task_id": str,
    "task_type": str,
    "won": bool,
    "score": float,
    "action_valid": bool,
}


def _alfworld_kwargs(request) -> dict:
    return {"data_dir": request.getfixturevalue("alfworld_real_dir"), "split": "valid_seen", "max_steps": 10}


def _webshop_kwargs(request) -> dict:
    return {"data_dir": request.getfixturevalue("webshop_data_dir"), "split": "test", "num_test_goals": 60}


def _search_qa_kwargs(request) -> dict:
    return {"data_dir": request.getfixturevalue("search_qa_data_dir"), "split": "test"}


ENV_FACTORIES: dict[str, Callable] = {
    "alfworld": _alfworld_kwargs,
    "webshop": _webshop_kwargs,
    "search-qa": _search_qa_kwargs,
}


def test_every_registered_env_has_a_contract_factory():
    assert set(ENVS) == set(ENV_FACTORIES), "add a factory for each registered env to ENV_FACTORIES"


@pytest.fixture(params=sorted(ENVS), scope="module")
def env(request):
    kwargs = ENV_FACTORIES[request.param](request)
    env = gym.make(ENVS[request.param].gym_id, **kwargs)
    yield env
    env.close()


def assert_info_contract(info: dict) -> None:
    missing = [k for k in sdar_gym.INFO_KEYS if k not in info]
    assert not missing, f"info lacks {missing}"
    for key, typ in INFO_TYPES.items():
        assert isinstance(info[key], typ), f"info[{key!r}] is {type(info[key]).__name__}, want {typ.__name__}"
    actions = info["admissible_actions"]
    assert actions is None or (isinstance(actions, list) and all(isinstance(a, str) for a in actions))
    assert info["task"] and info["task_id"] and info["task_type"]


def test_gymnasium_check_env(env):
    check_env(env.unwrapped, skip_render_check=False)


def test_info_contract_at_reset_and_steps(env):
    obs, info = env.reset(seed=3)
    assert isinstance(obs, str) and obs
    assert_info_contract(info)
    task_id = info["task_id"]
    for _ in range(3):
        action = env.unwrapped.expert_action()
        assert action is None or isinstance(action, str)
        obs, reward, terminated, truncated, info = env.step(action or "look")
        assert isinstance(obs, str) and isinstance(reward, float)
        assert_info_contract(info)
        assert info["task_id"] == task_id
        if terminated or truncated:
            break


def test_reset_is_deterministic_for_a_seed(env):
    first = env.reset(seed=11)
    second = env.reset(seed=11)
    assert first[0] == second[0] and first[1]["task_id"] == second[1]["task_id"]


def test_reset_to_a_given_task(env):
    task_id = env.unwrapped.task_ids[-1]
    _, info = env.reset(options={"task_id": task_id})
    assert info["task_id"] == task_id


def test_non_string_action_is_a_clear_error(env):
    env.reset(seed=0)
    with pytest.raises(TypeError, match="action must be a str"):
        env.step(42)


@pytest.mark.parametrize("action", ["", " ", "x" * 1_000_000, "\x00\n\t", "ünïcödé ☃"])
def test_odd_action_strings_are_invalid_not_crashes(env, action):
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)
    assert info["action_valid"] is False
    assert isinstance(obs, str) and obs
    assert reward == 0.0 and not info["won"]


def test_expert_wins_an_episode(env):
    obs, info = env.reset(seed=5)
    for _ in range(60):
        action = env.unwrapped.expert_action()
        assert action is not None, "expert gave up before winning"
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    assert info["won"] and info["score"] == 1.0


@pytest.mark.parametrize("bad", [{"temperature": -1.0}, {"temperature": float("nan")}, {"top_p": 0.0}, {"top_p": 1.5}, {"top_k": -1}, {"max_new_tokens": 0}])
def test_sampling_params_refuse_values_no_policy_can_sample_with(bad):
    from sdar_gym.core import ConfigError
    from sdar_gym.rollout.types import SamplingParams

    with pytest.raises(ConfigError, match="sampling"):
        SamplingParams(**bad)
