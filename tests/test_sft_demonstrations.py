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


def test_warm_start_batches_group_similar_lengths_and_cover_every_turn_once():
    import random

    from learners.sft import _length_grouped_batches

    rng = random.Random(0)
    examples = [([1] * rng.randint(50, 900), [2] * 17) for _ in range(800)]
    batches = _length_grouped_batches(examples, 8, random.Random(1))
    assert sorted(id(e) for b in batches for e in b) == sorted(id(e) for e in examples)

    def padding(bs):
        return sum(len(b) * max(len(p) + len(r) for p, r in b) - sum(len(p) + len(r) for p, r in b) for b in bs)

    shuffled = examples[:]
    random.Random(1).shuffle(shuffled)
    assert padding(batches) < 0.25 * padding([shuffled[i : i + 8] for i in range(0, 800, 8)])


def test_asking_for_more_demonstration_games_than_the_split_holds_warns(tmp_path, monkeypatch):
    """`sdar-gym sft --games 1000` on the 200 generated games used to play 200 without a word."""
    import pytest

    from learners import sft
    from sdar_gym.envs.alfworld import generator as gen

    monkeypatch.setenv("SDAR_GYM_HOME", str(tmp_path / "home"))
    gen.generate_games(tmp_path, "train", 2, seed=0, progress=False)
    kwargs = sft.demo_env_kwargs("alfworld", {"data_dir": str(tmp_path)})
    with pytest.warns(UserWarning, match=r"5 demonstration games were asked for, but the alfworld tasks hold 2: using all 2.*data_dir"):
        rows = sft.expert_demonstrations("alfworld", 5, kwargs, 30)
    assert {task for _, _, task, _ in rows} and len({task for _, _, task, _ in rows}) <= 2


def test_cached_demonstrations_still_report_their_stage_done(tmp_path, monkeypatch):
    """From the cache, the SFT's first stage used to stay at 0/N in a log while the next ones ran."""
    from learners import sft
    from sdar_gym.envs.alfworld import generator as gen

    monkeypatch.setenv("SDAR_GYM_HOME", str(tmp_path / "home"))
    gen.generate_games(tmp_path, "train", 2, seed=0, progress=False)
    kwargs = sft.demo_env_kwargs("alfworld", {"data_dir": str(tmp_path)})
    played, cached = [], []
    first = sft.expert_demonstrations("alfworld", 2, kwargs, 30, on_progress=lambda done, total: played.append((done, total)))
    again = sft.expert_demonstrations("alfworld", 2, kwargs, 30, on_progress=lambda done, total: cached.append((done, total)))
    assert again == first
    assert played[-1] == (2, 2) and cached == [(2, 2)]
