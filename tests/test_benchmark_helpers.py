"""Helpers of the benchmark scripts whose numbers the README quotes."""
from __future__ import annotations


def test_a_game_ends_in_a_loop_only_when_its_last_actions_are_one_command():
    from benchmarks.warm_start_play import loop_verb

    take = "take tomato 2 from countertop 2"
    assert loop_verb(["go to countertop 2"] + [take] * 5, 5) == "take"
    assert loop_verb([take] * 4 + ["go to fridge 1"], 5) is None  # it broke out
    assert loop_verb([take, "go to fridge 1"] * 3, 5) is None  # alternating is not one command
    assert loop_verb([take] * 4, 5) is None  # too short to tell
