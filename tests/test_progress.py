"""The one progress display: long commands report in a non-interactive log too, not only on a terminal."""
from __future__ import annotations

import io

from sdar_gym.progress import StageProgress, track


def test_track_yields_every_item_and_prints_plain_lines_in_a_log(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    assert list(track(iter("abc"), "letters", total=3)) == ["a", "b", "c"]
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("[letters] 0/3 (0%)") and lines[-1].startswith("[letters] 3/3 (100%)")
    silent = io.StringIO()
    monkeypatch.setattr("sys.stderr", silent)
    assert list(track([1, 2], "quiet", enabled=False)) == [1, 2] and silent.getvalue() == ""


def test_alfworld_generation_reports_in_a_log(tmp_path, capsys):
    """Generating games (many minutes for the default set) printed nothing when stderr was a log file."""
    from sdar_gym.envs.alfworld import generator as gen

    gen.generate_games(tmp_path, "train", 1, seed=0, progress=True, workers=1)
    err = capsys.readouterr().err
    assert "[ALFWorld train games] 0/1 (0%)" in err and "[ALFWorld train games] 1/1 (100%)" in err


def test_stage_progress_draws_rich_bar_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    with StageProgress(True, stream=screen) as p:
        p.update(p.add("stage", total=2), advance=2, status="loss 0.5")
    assert "stage" in screen.getvalue() and "loss 0.5" in screen.getvalue() and "[stage]" not in screen.getvalue()


def test_expert_demonstrations_report_progress_while_they_play(tmp_path, monkeypatch):
    """The first-use build's demonstration stage (minutes) used to report nothing until it ended."""
    from learners import sft
    from sdar_gym.envs.alfworld import generator as gen

    monkeypatch.setenv("SDAR_GYM_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sft, "DEMO_CHUNK_PER_WORKER", 1)
    gen.generate_games(tmp_path, "train", 3, seed=0, progress=False)
    calls: list[tuple[int, int]] = []
    rows = sft.expert_demonstrations("alfworld", 3, sft.demo_env_kwargs("alfworld", {"data_dir": str(tmp_path)}), 30,
                                     on_progress=lambda done, total: calls.append((done, total)))
    assert rows and calls[-1] == (3, 3) and len(calls) >= 2
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
