"""Advantage estimators against references computed by hand (no model, no env)."""
from __future__ import annotations

import math

import pytest

from learners.advantages import ESTIMATORS, AdvantageSettings, estimator, gigpo, grpo, grpo_episode, group_episodes, turn_score
from sdar_gym.core import ConfigError
from sdar_gym.rollout.types import Episode, Turn

P = 0.1  # the invalid-action penalty used below


def turn(task_reward: float, valid: bool, observation: str) -> Turn:
    """A turn as the collector records it: shaped reward = task reward − own penalty."""
    penalty = 0.0 if valid else P
    return Turn(prompt_ids=[1], response_ids=[2], logprobs=[-1.0], action="a", reward=task_reward - penalty, info={}, task="t",
                task_type="x", action_valid=valid, penalty=penalty, observation=observation)


def group() -> list[Episode]:
    """E1: valid, invalid, won (10). E2: invalid, valid, lost. Anchors: A, B, C / A, B."""
    e1 = Episode([turn(0.0, True, "A"), turn(0.0, False, "B"), turn(10.0, True, "C")], "g", "t", "t", "x", 1.0, True)
    e2 = Episode([turn(0.0, False, "A"), turn(0.0, True, "B")], "g", "t", "t", "x", 0.0, False)
    return [e1, e2]


def test_turn_score_is_episode_reward_minus_own_penalty():
    e1, e2 = group()
    assert e1.task_reward == 10.0 and e1.total_reward == pytest.approx(9.9)
    assert [turn_score(e1, t) for t in e1.turns] == pytest.approx([10.0, 9.9, 10.0])
    assert [turn_score(e2, t) for t in e2.turns] == pytest.approx([-0.1, 0.0])


def test_grpo_pools_every_turn_sample_of_the_group():
    # scores 10, 9.9, 10, -0.1, 0: mean 29.8/5 = 5.96; squared deviations sum to 120.412, /4 = 30.103
    std = math.sqrt(30.103)
    adv = grpo([group()], AdvantageSettings(eps=0.0))[0]
    assert adv[0] == pytest.approx([4.04 / std, 3.94 / std, 4.04 / std])
    assert adv[1] == pytest.approx([-6.06 / std, -5.96 / std])


def test_grpo_without_std_centres_only():
    """``norm_adv_by_std_in_grpo: False``: an all-fail group's 0.1 penalties stay 0.1-sized, not unit-sized."""
    adv = grpo([group()], AdvantageSettings(eps=0.0, norm_by_std=False))[0]
    assert adv == [pytest.approx([4.04, 3.94, 4.04]), pytest.approx([-6.06, -5.96])]
    lost = [Episode([turn(0.0, True, "A"), turn(0.0, False, "B")], "g", "t", "t", "x", 0.0, False),
            Episode([turn(0.0, False, "A"), turn(0.0, True, "B")], "g", "t", "t", "x", 0.0, False)]  # no win: penalties only
    scaled, centred = grpo([lost], AdvantageSettings(eps=0.0))[0], grpo([lost], AdvantageSettings(eps=0.0, norm_by_std=False))[0]
    assert max(abs(a) for ep in scaled for a in ep) > 0.8  # the std turns 0.1 into about 1
    assert max(abs(a) for ep in centred for a in ep) == pytest.approx(0.05)  # scores 0, -0.1, -0.1, 0: mean -0.05
    episode = grpo_episode([group()], AdvantageSettings(eps=0.0, norm_by_std=False))[0]
    assert episode == [pytest.approx([5.0] * 3), pytest.approx([-5.0] * 2)]


def test_grpo_single_sample_group_has_mean_0_std_1():
    won = Episode([turn(10.0, True, "A")], "solo", "t", "t", "x", 1.0, True)
    assert grpo([[won]], AdvantageSettings(eps=1e-6))[0] == [[pytest.approx(10.0 / (1.0 + 1e-6))]]


def test_grpo_episode_shares_the_episode_advantage():
    # returns 9.9 and -0.1: mean 4.9, std sqrt(50); every turn gets its episode's value
    adv = grpo_episode([group()], AdvantageSettings(eps=0.0))[0]
    assert adv[0] == pytest.approx([5 / math.sqrt(50)] * 3)
    assert adv[1] == pytest.approx([-5 / math.sqrt(50)] * 2)
    solo = Episode([turn(10.0, True, "A")], "solo", "t", "t", "x", 1.0, True)
    assert grpo_episode([[solo]], AdvantageSettings())[0] == [[0.0]]


def test_gigpo_mean_norm_adds_anchor_step_advantages():
    # episode part: score − 5.96. Step scores (γ = 1): E1 returns 10, 10, 10 minus own penalty -> 10, 9.9, 10;
    # E2 -> -0.1, 0. Anchor A: {10, -0.1} mean 4.95; B: {9.9, 0} mean 4.95; C alone -> 0.
    adv = gigpo([group()], AdvantageSettings())[0]
    assert adv[0] == pytest.approx([4.04 + 5.05, 3.94 + 4.95, 4.04])
    assert adv[1] == pytest.approx([-6.06 - 5.05, -5.96 - 4.95])


def test_gigpo_discount_weight_and_std_mode():
    # γ = 0.5: E1 returns 2.5, 5, 10 -> step scores 2.5, 4.9, 10; E2 -0.1, 0. A: mean 1.2 -> ±1.3; B: mean 2.45 -> ±2.45.
    adv = gigpo([group()], AdvantageSettings(gigpo_gamma=0.5, gigpo_step_weight=2.0))[0]
    assert adv[0] == pytest.approx([4.04 + 2 * 1.3, 3.94 + 2 * 2.45, 4.04])
    assert adv[1] == pytest.approx([-6.06 - 2 * 1.3, -5.96 - 2 * 2.45])
    # mean_std_norm: episode part as grpo; anchor A's std = sqrt(2·5.05²) = 5.05·√2
    std = math.sqrt(30.103)
    adv = gigpo([group()], AdvantageSettings(eps=0.0, gigpo_mode="mean_std_norm"))[0]
    assert adv[0][0] == pytest.approx(4.04 / std + 5.05 / (5.05 * math.sqrt(2)))
    assert adv[0][2] == pytest.approx(4.04 / std)  # a step group of one adds 0
    with pytest.raises(ConfigError, match="mean_norm, mean_std_norm"):
        gigpo([group()], AdvantageSettings(gigpo_mode="zscore"))


def test_groups_are_kept_apart_and_unknown_names_are_refused():
    a, b = group(), group()
    for e in b:
        e.group_id = "h"
    grouped = group_episodes([a[0], b[0], a[1], b[1]])
    assert [[e.group_id for e in g] for g in grouped] == [["g", "g"], ["h", "h"]]
    assert grpo(grouped, AdvantageSettings(eps=0.0))[1] == grpo([group()], AdvantageSettings(eps=0.0))[0]
    assert set(ESTIMATORS) == {"grpo", "grpo_episode", "gigpo"}
    with pytest.raises(ConfigError, match="known: grpo, grpo_episode, gigpo"):
        estimator("ppo")
