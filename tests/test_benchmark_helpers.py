"""Helpers of the benchmark scripts whose numbers the README quotes."""
from __future__ import annotations


def test_a_game_ends_in_a_loop_only_when_its_last_actions_are_one_command():
    from benchmarks.warm_start_play import loop_verb

    take = "take tomato 2 from countertop 2"
    assert loop_verb(["go to countertop 2"] + [take] * 5, 5) == "take"
    assert loop_verb([take] * 4 + ["go to fridge 1"], 5) is None  # it broke out
    assert loop_verb([take, "go to fridge 1"] * 3, 5) is None  # alternating is not one command
    assert loop_verb([take] * 4, 5) is None  # too short to tell


def test_a_game_ends_in_a_cycle_when_its_last_actions_go_round_a_few_commands():
    from benchmarks.warm_start_play import in_a_cycle

    places = [f"go to armchair {i}" for i in (1, 2, 3)]
    assert in_a_cycle(["look"] + places * 2, 6)  # round three places
    assert in_a_cycle(["put apple 1 in/on fridge 1", "take apple 1 from fridge 1", "go to sinkbasin 1"] * 2, 6)  # carrying back and forth
    assert in_a_cycle(["take pen 1 from armchair 2"] * 6, 6)  # a one-command loop is a cycle too
    assert not in_a_cycle([f"go to drawer {i}" for i in range(1, 7)], 6)  # searching receptacle by receptacle
    assert not in_a_cycle(places * 2, 7)  # too short to tell


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


class _Stopped(Exception):
    """The benchmark is stopped during a run (as by Ctrl-C, without aborting pytest)."""


def _fake_learning_benchmark(monkeypatch, stop_after: int | None):
    """benchmarks.learning with its games, evaluations and RL runs replaced by instant fakes;
    returns the list of (learner, seed) runs started and the number of warm-start evaluations."""
    from benchmarks import learning

    started, evals = [], []
    split = {"success": 0.5, "won": [1, 0]}

    def fake_run(learner, seed, *rest):
        if stop_after is not None and len(started) == stop_after:
            raise _Stopped
        started.append((learner, seed))
        return {"learner": learner, "seed": seed, "final": {"success": 0.5, "splits": {"valid_seen": split}},
                "curve": [], "steps": [], "wall_s": 1.0, "gate_over_training": {}}

    monkeypatch.setattr(learning, "task_list", lambda env, kwargs: (["t0", "t1", "t2"], {}))
    monkeypatch.setattr(learning, "held_out_splits", lambda data, splits, n: {"valid_seen": ({}, ["h0", "h1"])})
    monkeypatch.setattr(learning, "held_out_eval", lambda *a: evals.append(1) or {"success": 0.5, "splits": {"valid_seen": split}})
    monkeypatch.setattr(learning, "rl_run", fake_run)
    monkeypatch.setattr(learning, "plot_curves", lambda report, path: path)
    return learning, started, evals


def test_a_stopped_learning_benchmark_resumes_with_its_finished_runs(tmp_path, monkeypatch):
    import json

    import pytest

    out = tmp_path / "learning.json"
    argv = ["--warm-start", str(tmp_path), "--learners", "grpo", "sdar", "--seeds", "2", "--jobs", "1",
            "--speed-rounds", "0", "--train-eval", "0", "--real-games", "0", "--output", str(out)]
    learning, started, evals = _fake_learning_benchmark(monkeypatch, stop_after=2)
    with pytest.raises(_Stopped):
        learning.main(argv)
    partial = out.with_suffix(".partial.json")
    assert [(r["learner"], r["seed"]) for r in json.loads(partial.read_text())["runs"]] == [("grpo", 0), ("sdar", 0)]

    learning, started, evals = _fake_learning_benchmark(monkeypatch, stop_after=None)
    with pytest.raises(SystemExit, match="lr"):  # other settings never mix with, or overwrite, the kept runs
        learning.main(argv + ["--lr", "3e-4"])
    assert partial.is_file() and started == []

    report = learning.main(argv + ["--speed-repeats", "3"])  # how it runs may change; only the missing runs run
    assert started == [("grpo", 1), ("sdar", 1)] and evals == []  # the warm start's evaluation is kept too
    assert [(r["learner"], r["seed"]) for r in report["runs"]] == [("grpo", 0), ("sdar", 0), ("grpo", 1), ("sdar", 1)]
    assert json.loads(out.read_text())["runs"] == report["runs"] and not partial.exists()

    partial.write_text('{"runs": []}')  # a partial of an older version, or some other file
    with pytest.raises(SystemExit, match="not a stopped run of this benchmark"):
        learning.main(argv)


def test_a_learning_benchmark_run_trains_as_its_command_line_asks(tmp_path, monkeypatch):
    """``--lora-rank``, ``--temperature``, ``--history-length`` and ``--demo-coef``/``--demo-games`` reach the trainer of every RL run;
    without them the runs fine-tune every weight, sample at 1.0 and learn from no demonstrations. ``--no-reward``
    (the control) zeroes every reward of the run while its env still reports progress."""
    import pytest

    from benchmarks import learning
    from sdar_gym.registration import parse_env_kwargs

    built = []

    def capture(cfg):
        built.append(cfg)
        raise _Stopped

    monkeypatch.setattr(learning, "Trainer", capture)
    asked = ["--lora-rank", "8", "--temperature", "0.5", "--demo-coef", "0.1", "--demo-games", "50", "--history-length", "6"]
    for argv, rank, temperature, demo, history in ((asked, 8, 0.5, ("0.1", 50), 6), ([], 0, 1.0, ("0.0", 200), None)):
        args = learning.parser().parse_args(argv)
        with pytest.raises(_Stopped):
            learning.rl_run("grpo", 0, "warm", {}, [], {}, args, tmp_path)
        assert (built[-1].lora_rank, built[-1].temperature, built[-1].history_length) == (rank, temperature, history)
        assert (built[-1].learner_args["demo_coef"], built[-1].demo_games) == demo
        assert (built[-1].win_reward, built[-1].invalid_penalty) == (None, None)  # the preset's rewards
    args = learning.parser().parse_args(["--no-reward", "--progress-reward", "1"])
    with pytest.raises(_Stopped):
        learning.rl_run("grpo", 0, "warm", {}, [], {}, args, tmp_path)
    control = built[-1]
    assert (control.win_reward, control.invalid_penalty, control.progress_reward, control.no_effect_penalty) == (0.0, 0.0, 0.0, 0.0)
    assert parse_env_kwargs(control.env_kwargs).get("progress") in (True, "true", "True")  # the env still reports progress: the same rollouts


def test_two_learning_benchmarks_keep_their_runs_apart():
    """Each RL run empties its folder when it starts: two benchmarks with different --output must not share one."""
    from benchmarks import learning

    a, b = (learning.parser().parse_args(["--output", out]) for out in ("results/a.json", "results/b.json"))
    assert learning.runs_folder(a) != learning.runs_folder(b)
    assert learning.runs_folder(learning.parser().parse_args([])).name == "bench-learning"  # the committed run's folder, as before


def test_sampled_evals_report_each_games_win_rate_beside_greedy(monkeypatch, capsys):
    """``--sampled-evals K`` plays each held-out game K more times at ``--sampled-temperature``; a game's K
    episodes make its win rate, and the summary's sampled gain is taken over those rates."""
    from types import SimpleNamespace

    import pytest

    from benchmarks import learning

    played = []

    def fake_evaluate(policy, env, env_kwargs, tasks, max_turns, batch, sampling, seed, choose_admissible, agent):
        played.append((list(tasks), sampling.temperature))
        # greedy wins game "a" only; sampled, game "a" wins its first repeat, game "b" all of its repeats
        wins = [t == "a" for t in tasks] if sampling.temperature == 0 else [t == "b" or i % 3 == 0 for i, t in enumerate(tasks)]
        return [SimpleNamespace(won=w, turns=[]) for w in wins]

    monkeypatch.setattr(learning, "evaluate", fake_evaluate)
    monkeypatch.setattr(learning, "table_for", lambda env, eps: {"All": 100.0 * sum(e.won for e in eps) / len(eps)})
    args = learning.parser().parse_args(["--sampled-evals", "3"])
    result = learning.eval_policy(None, {}, ["a", "b"], args)
    assert played == [(["a", "b"], 0.0), (["a", "a", "a", "b", "b", "b"], 0.4)]  # the released validation temperature by default
    assert result["won"] == [1, 0] and result["success"] == 0.5
    assert result["sampled"]["won"] == [1 / 3, 1.0] and result["sampled"]["episodes"] == 6

    before = {"splits": {"s": {"success": 0.5, "won": [1, 0], "sampled": {"success": 0.5, "won": [0.5, 0.5]}}}}
    after = {"learner": "grpo", "final": {"splits": {"s": result}}}
    row = learning.summarize(before, [after], ["grpo"])["s"]["grpo"]
    assert abs(row["sampled"]["gain_mean"] - (2 / 3 - 0.5)) < 1e-9 and row["gain_mean"] == 0.0
    assert "sampled" not in learning.eval_policy(None, {}, ["a"], learning.parser().parse_args([]))  # off by default
    with pytest.raises(SystemExit):
        learning.main(["--sampled-evals", "-1", "--plot-only", "--output", "no-such-report.json"])  # refused before anything runs
    assert "--sampled-evals must be 0 (off) or more" in capsys.readouterr().err


def test_a_learning_report_is_compared_with_its_control_seed_by_seed(tmp_path):
    """``--against``: per learner and seed, report minus control on the pooled held-out games (never the RL games)."""
    import json

    import pytest

    from benchmarks import learning

    def run(seed, held, rl, sampled=None):
        splits = {"valid_seen": {"won": held, **({"sampled": {"won": sampled}} if sampled else {})}, "rl_games": {"won": rl}}
        return {"learner": "grpo", "seed": seed, "final": {"splits": splits}}

    report = {"runs": [run(0, [1, 1], [1], [0.5, 1.0]), run(1, [1, 0], [1], [0.5, 0.0])]}
    control = {"runs": [run(0, [0, 1], [0], [0.0, 1.0]), run(1, [1, 0], [0], [0.5, 0.5]), run(2, [0, 0], [0], [0.0, 0.0])]}
    paired = learning.paired_against(report, control)["grpo"]
    assert paired["seeds"] == [0, 1]  # seed 2 ran only in the control
    assert paired["greedy"]["diff_per_seed"] == [0.5, 0.0] and paired["greedy"]["diff_mean"] == 0.25
    assert paired["sampled"]["diff_per_seed"] == [0.25, -0.25]
    del control["runs"][0]["final"]["splits"]["valid_seen"]["sampled"]
    assert "sampled" not in learning.paired_against(report, control)["grpo"]  # only when both have it

    (tmp_path / "a.json").write_text(json.dumps(report))
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(SystemExit, match="two finished reports"):
        learning.main(["--output", str(tmp_path / "a.json"), "--against", str(tmp_path / "b.json")])
    (tmp_path / "b.json").write_text(json.dumps(control))
    learning.main(["--output", str(tmp_path / "a.json"), "--against", str(tmp_path / "b.json")])
    assert json.loads((tmp_path / "a_vs_b.json").read_text())["paired"]["grpo"]["greedy"]["diff_mean"] == 0.25


def test_a_learning_benchmark_plays_with_the_warm_starts_history(tmp_path, monkeypatch):
    """Without ``--history-length`` the RL runs and evaluations show as many past turns as the warm start learned from."""
    import json

    learning, started, evals = _fake_learning_benchmark(monkeypatch, stop_after=None)
    seen = []
    monkeypatch.setattr(learning, "held_out_eval", lambda model, held_out, args: seen.append(args.history_length) or {"success": 0.5, "splits": {}})
    (tmp_path / "sft.json").write_text(json.dumps({"history_length": 6}))
    argv = ["--warm-start", str(tmp_path), "--learners", "grpo", "--seeds", "1", "--jobs", "1", "--speed-rounds", "0",
            "--train-eval", "0", "--real-games", "0", "--warm-start-only", "--output", str(tmp_path / "out.json")]
    learning.main(argv)
    learning.main(argv + ["--history-length", "3"])
    assert seen == [6, 3]


def test_the_main_job_benchmark_refuses_a_kept_folder_that_is_not_fresh(tmp_path, monkeypatch):
    import pytest

    from benchmarks import main_job
    from benchmarks.main_job import Args, main

    def ran(*_):
        raise AssertionError("the job started in a folder that already held a home")

    monkeypatch.setattr(main_job, "run_job", ran)
    (tmp_path / "home").mkdir()
    with pytest.raises(SystemExit, match="not empty: the job is measured from a fresh home"):
        main(Args(keep=tmp_path))
