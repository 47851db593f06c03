"""The sdar-gym command line: help, envs, play, and clear errors."""
from __future__ import annotations

import subprocess
import sys

import pytest

from sdar_gym.cli import COMMANDS, main


def test_help_lists_every_subcommand_with_its_description(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name, (_, description) in COMMANDS.items():
        assert name in out
        assert description.split()[0] in out


def test_console_script_is_installed():
    proc = subprocess.run([sys.executable, "-m", "sdar_gym.cli", "envs"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "sdar_gym/ALFWorld-v0" in proc.stdout


def test_play_expert_wins_real_games(alfworld_real_dir, capsys):
    main(["play", "--env", "alfworld", "--policy", "expert", "--episodes", "2", "--split", "valid_seen",
          "--data-dir", str(alfworld_real_dir)])
    out = capsys.readouterr().out
    assert "Success per task type" in out
    assert out.count("won=True") == 2


def test_bad_input_is_a_one_line_error_not_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sdar_gym.cli", "play", "--data-dir", str(tmp_path / "missing")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "sdar-gym: error:" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_subcommands_plug_in_through_the_entry_point_group():
    """learners, skills and env_servers add their subcommands from above; the gym lists only its own."""
    from sdar_gym.cli import GYM_COMMANDS, PLUGIN_GROUP, plugin_commands

    assert set(GYM_COMMANDS) == {"envs", "data", "check", "play"}
    assert {"train", "eval", "plot", "sft", "serve", "skills"} <= set(plugin_commands()), (
        f"entry points of {PLUGIN_GROUP!r} missing: reinstall the package (pip install -e .)"
    )


def test_stale_metadata_is_named(monkeypatch, capsys):
    import sdar_gym.cli as cli

    monkeypatch.setattr(cli, "COMMANDS", dict(cli.GYM_COMMANDS))
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "reinstall with `pip install -e .`" in capsys.readouterr().err


@pytest.mark.parametrize("episodes", ["0", "-1"])
def test_play_refuses_fewer_than_one_episode(episodes, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["play", "--episodes", episodes])
    assert exit_info.value.code == 2
    assert f"episodes must be at least 1, got {episodes}" in capsys.readouterr().err
