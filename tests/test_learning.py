"""Learning you can see: on toy envs (tests/learning_envs.py) the learners raise success.

- GRPO, from a fixed seed, must raise the success of a learnable one-turn env well above its start,
  and of a multi-turn one whose turns share the episode's outcome and pay invalid-action penalties.
- Where the privileged skill text holds the answer the student's prompt lacks, SDAR must learn
  faster than GRPO at equal steps and seeds (the mechanism the paper claims), while GRPO learns too.
Both fail with the advantage sign flipped (GRPO falls) or the distillation term dropped (SDAR = GRPO).
"""
from __future__ import annotations

import pytest

from learning_envs import DoorEnv, RoomsEnv, train

STEPS = 6


@pytest.fixture(scope="module", autouse=True)
def one_thread(torch_one_thread):
    """One torch thread (see conftest)."""


def test_grpo_raises_success_of_a_learnable_env():
    grpo_curve = train("grpo", DoorEnv(), steps=STEPS, seed=0)  # a 1-letter code
    start, end = grpo_curve[0], grpo_curve[-1]
    assert 0.1 < start < 0.4, grpo_curve  # the warm start answers at random: about 1 in 4
    assert end > start + 0.4, grpo_curve  # measured: 20% -> 97%


def test_grpo_raises_success_of_a_multi_turn_env():
    """Two rooms, one door each: every turn is a sample with its episode's per-turn advantage (the
    released estimator), one answer in five is no door and pays the 0.1 penalty."""
    curve = train("grpo", RoomsEnv(), steps=STEPS, seed=0)
    start, end = curve[0], curve[-1]
    assert start < 0.1, curve  # right twice in a row: about (1/5)^2
    assert end > start + 0.5, curve  # measured: 5% -> 96%


def test_sdar_learns_faster_than_grpo_when_skills_hold_the_answer():
    """A 4-letter code (1 in 256 by chance): most groups all fail, yet the teacher endorses each right letter."""
    env = DoorEnv(code=("c", "a", "d", "b"))
    grpo = train("grpo", env, steps=STEPS, seed=0)
    sdar = train("sdar", env, steps=STEPS, seed=0, distill_coef=1.0)
    assert sdar[0] == pytest.approx(grpo[0]) and sdar[0] < 0.05  # the same warm start, which rarely wins
    assert grpo[-1] > grpo[0] + 0.1, grpo  # GRPO learns here too (measured: 0.5% -> 24%) ...
    assert sdar[-1] > grpo[-1] + 0.2, (sdar, grpo)  # ... and SDAR faster (measured: -> 72%)
