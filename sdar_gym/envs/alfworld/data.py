"""Finding ALFWorld games in the standard ``json_2.1.1/<split>/…/trial_*/`` layout.

The rules are ALFWorld's own (``AlfredTWEnv.collect_game_files``): skip trials whose path holds
``movable`` or ``Sliced``, games without a ``solvable`` key, and games marked unsolvable.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from sdar_gym.core import ConfigError, DataError, sdar_gym_home

SPLITS = ("train", "valid_seen", "valid_unseen")

TASK_TYPES: dict[str, str] = {
    "pick_and_place_simple": "Pick",
    "look_at_obj_in_light": "Look",
    "pick_clean_then_place_in_recep": "Clean",
    "pick_heat_then_place_in_recep": "Heat",
    "pick_cool_then_place_in_recep": "Cool",
    "pick_two_obj_and_place": "Pick2",
}
"""ALFWorld's long task-type names mapped to the paper's short ones."""


def canonical_task_type(name: str) -> str:
    """Return ALFWorld's long task-type name for a long or short (paper) name, any case."""
    lowered = name.strip().lower()
    for long_name, short in TASK_TYPES.items():
        if lowered in (long_name, short.lower()):
            return long_name
    raise ConfigError(
        f"unknown ALFWorld task type {name!r}; expected one of "
        + ", ".join(f"{s} ({l})" for l, s in TASK_TYPES.items())
    )


@dataclass(frozen=True)
class GameRecord:
    """One playable ALFWorld game on disk."""

    task_id: str
    """``<task folder>/<trial folder>``, stable across machines."""
    task_type: str
    """ALFWorld's long task-type name."""
    game_file: Path
    """The ``game.tw-pddl`` file."""


INCOMPLETE = ".generating.json"
"""File in ``json_2.1.1/<split>/`` while the game generator writes there: a run cut short leaves it,
so that loading the split warns, and the same generator command completes the set."""


_ALFWORLD_DATA_AT_IMPORT = os.environ.get("ALFWORLD_DATA")


def _import_alfworld_and_restore_environ() -> None:
    """Import ``alfworld.info`` first, and take back the ``$ALFWORLD_DATA`` it writes when unset (its own
    cache folder, alfworld/info.py).

    Env worker processes inherit the environment: they read that injected value as the user's own
    and looked for games in ALFWorld's empty cache folder instead of the generated default set."""
    if "alfworld.info" in sys.modules:
        return
    importlib.import_module("alfworld.info")
    if _ALFWORLD_DATA_AT_IMPORT is None:
        os.environ.pop("ALFWORLD_DATA", None)


_import_alfworld_and_restore_environ()


def default_data_dir() -> Path | None:
    """``$ALFWORLD_DATA`` when the user set it, else None (the caller falls back to generated games).
    The value ``import alfworld`` would inject is taken back at import, above."""
    env = os.environ.get("ALFWORLD_DATA")
    return Path(env).expanduser() if env else None


def generated_data_dir() -> Path:
    """Where the default generated game set lives (``$SDAR_GYM_HOME/alfworld``)."""
    return sdar_gym_home() / "alfworld"


def find_games(data_dir: str | os.PathLike, split: str, task_types: list[str] | None = None) -> list[GameRecord]:
    """All solvable games of ``split`` under ``data_dir/json_2.1.1``, sorted by task id."""
    if split not in SPLITS:
        raise ConfigError(f"unknown ALFWorld split {split!r}; expected one of {', '.join(SPLITS)}")
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise DataError(f"ALFWorld data_dir {str(data_dir)!r} does not exist (it should hold json_2.1.1/)")
    split_dir = data_dir / "json_2.1.1" / split
    if not split_dir.is_dir():
        raise DataError(f"ALFWorld data_dir {str(data_dir)!r} has no json_2.1.1/{split}/ folder")
    wanted = {canonical_task_type(t) for t in task_types} if task_types else None

    games = []
    for traj_path in sorted(split_dir.glob("*/*/traj_data.json")):
        trial_dir = traj_path.parent
        rel = trial_dir.relative_to(split_dir).as_posix()
        if "movable" in rel or "Sliced" in rel:
            continue
        game_file = trial_dir / "game.tw-pddl"
        if not game_file.exists():
            continue
        task_type = _read_json(traj_path).get("task_type")
        if task_type not in TASK_TYPES:
            raise DataError(f"{traj_path}: unknown or missing task_type {task_type!r}")
        if wanted is not None and task_type not in wanted:
            continue
        if not _read_json(game_file).get("solvable", False):
            continue
        games.append(GameRecord(task_id=rel, task_type=task_type, game_file=game_file))
    if not games:
        raise DataError(f"no solvable ALFWorld games in {split_dir}" + (f" for task types {sorted(wanted)}" if wanted else ""))
    if (split_dir / INCOMPLETE).exists():
        run = _read_json(split_dir / INCOMPLETE)
        warnings.warn(
            f"{split_dir} holds an unfinished generator run (seed {run.get('seed')}, {run.get('n')} games asked, "
            f"{len(games)} found): rerun `sdar-gym data alfworld` with the same split, n and seed to complete it",
            stacklevel=2,
        )
    return games


def load_game(game_file: str | os.PathLike) -> dict:
    """Read and check a ``game.tw-pddl`` file: a JSON object with domain, grammar and problem."""
    data = _read_json(Path(game_file))
    missing = [k for k in ("pddl_domain", "grammar", "pddl_problem") if not isinstance(data.get(k), str)]
    if missing:
        raise DataError(f"malformed ALFWorld game {game_file}: missing or non-text field(s) {', '.join(missing)}")
    return data


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"malformed JSON in {path}: {e}") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    if not isinstance(data, dict):
        raise DataError(f"malformed file {path}: expected a JSON object, got {type(data).__name__}")
    return data
