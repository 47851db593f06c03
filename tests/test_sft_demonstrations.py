"""Demonstrations for the built-in tiny policy's warm start, with the expert slipping on purpose (DART)."""
from __future__ import annotations


def test_demonstrations_learn_the_recovery_not_the_slip(tmp_path, monkeypatch):
    from learners import sft
    from sdar_gym.envs.alfworld import generator as gen

    monkeypatch.setenv("SDAR_GYM_HOME", str(tmp_path / "home"))
    gen.generate_games(tmp_path, "train", 4, seed=0, progress=False)
    kwargs = sft.demo_env_kwargs("alfworld", {"data_dir": str(tmp_path)})
    clean = sft.expert_demonstrations("alfworld", 4, kwargs, 30)
    noisy = sft.expert_demonstrations("alfworld", 4, kwargs, 30, noise=0.3)
    assert noisy and all("Following the plan." in response for _, response, *_ in noisy)
    clean_prompts = {m[-1]["content"] for m, *_ in clean}
    # states the expert alone never reaches: the prompt after a slip
    assert any(m[-1]["content"] not in clean_prompts for m, *_ in noisy)
