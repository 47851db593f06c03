"""``gymnasium.make_vec`` in sync and async mode (default shared memory) for every env, with any text."""
from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory
from rollout_support import ALFWORLD_KWARGS, require_alfworld

import sdar_gym  # noqa: F401  (registers the ids)
from sdar_gym.core import TextSpace

TEXTS = ["", "plain", "two words, and punctuation: [a] (b) {c} 'd' \"e\"!?", "über café 日本語 🙂 \u200b", "\x00 nul"]
ODD_ACTION = "blah, café 日本 🙂 'quoted' [x]!"


def test_text_round_trips_through_shared_memory():
    space = TextSpace(max_length=64)
    memory = create_shared_memory(space, n=len(TEXTS))
    for i, text in enumerate(TEXTS):
        write_to_shared_memory(space, i, text, memory)
    view = read_from_shared_memory(space, memory, n=len(TEXTS))
    assert tuple(view) == tuple(TEXTS) and view[1:3] == tuple(TEXTS[1:3])
    write_to_shared_memory(space, 1, "written later", memory)
    assert view[1] == "written later"  # a live view, as gymnasium's numpy views are for Box spaces
    with pytest.raises(ValueError, match="max_length"):
        write_to_shared_memory(space, 0, "x" * 65, memory)


def _env_kwargs(name: str, request) -> dict:
    if name == "sdar_gym/ALFWorld-v0":
        require_alfworld()
        return dict(ALFWORLD_KWARGS)
    if name == "sdar_gym/WebShop-v0":
        return {"data_dir": str(request.getfixturevalue("webshop_data_dir")), "split": "test", "num_test_goals": 4}
    return {"data_dir": str(request.getfixturevalue("search_qa_data_dir")), "split": "test"}


@pytest.mark.parametrize("env_id", ["sdar_gym/ALFWorld-v0", "sdar_gym/WebShop-v0", "sdar_gym/SearchQA-v0"])
def test_make_vec_sync_and_async_agree(env_id, request):
    kwargs = _env_kwargs(env_id, request)
    results = {}
    for mode in ("sync", "async", "async-spawn"):  # the default start method, and one that re-imports sdar_gym
        vector_kwargs = {"context": "spawn"} if mode == "async-spawn" else None
        envs = gym.make_vec(env_id, num_envs=2, vectorization_mode=mode.split("-")[0], vector_kwargs=vector_kwargs, **kwargs)
        try:
            obs, _ = envs.reset(seed=[3, 4])
            step_obs, rewards, terminated, truncated, _ = envs.step((ODD_ACTION, "look"))
            results[mode] = (tuple(obs), tuple(step_obs), tuple(rewards))
        finally:
            envs.close()
    assert results["async"] == results["sync"] == results["async-spawn"]
    assert all(isinstance(o, str) and o for o in results["async"][0])
    if env_id == "sdar_gym/SearchQA-v0":  # it echoes an invalid action back
        assert ODD_ACTION in results["async"][1][0]
