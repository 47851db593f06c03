"""Helpers of the benchmark scripts whose numbers the README quotes."""
from __future__ import annotations


def test_a_game_ends_in_a_loop_only_when_its_last_actions_are_one_command():
    from benchmarks.warm_start_play import loop_verb

    take = "take tomato 2 from countertop 2"
    assert loop_verb(["go to countertop 2"] + [take] * 5, 5) == "take"
    assert loop_verb([take] * 4 + ["go to fridge 1"], 5) is None  # it broke out
    assert loop_verb([take, "go to fridge 1"] * 3, 5) is None  # alternating is not one command
    assert loop_verb([take] * 4, 5) is None  # too short to tell


def test_a_loop_never_worked_only_when_its_first_play_already_did_nothing():
    from benchmarks.warm_start_play import loop_never_worked

    take, go = "take pen 1 from armchair 2", "go to armchair 2"
    arrive, nothing = "You arrive at armchair 2. On it, you see a keychain 1.", "Nothing happens."
    # a take of an object that is not there: every play answers "Nothing happens."
    assert loop_never_worked([go, take, take, take], ["start", arrive, nothing, nothing])
    # a take that picked the object up, then the same take again
    assert not loop_never_worked([go, take, take, take], ["start", arrive, "You pick up the pen 1.", nothing])


def test_a_shaping_arm_is_parsed_with_clear_errors():
    import argparse

    import pytest

    from benchmarks.turn_shaping import parse_arm

    assert parse_arm("grpo:") == ("grpo", {})
    assert parse_arm("p:progress_reward=1,lr=5e-4") == ("p", {"progress_reward": 1.0, "lr": "5e-4"})
    with pytest.raises(argparse.ArgumentTypeError, match="unknown arm setting 'gamma'"):
        parse_arm("p:gamma=1")
    with pytest.raises(argparse.ArgumentTypeError, match="NAME:KEY=VALUE"):
        parse_arm("progress_reward=1")
