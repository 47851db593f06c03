"""The restricted grammar-expression evaluator against Python's ``eval`` on every game of a set.

The fast engine no longer runs game-file expressions with ``eval``. This check collects every
``{expression}`` of every game's compiled grammar and evaluates it both ways (``eval`` with full
builtins, as TextWorld does, and :func:`compile_expression`) for every binding of its placeholders
to the game's objects; the rendered strings must be identical.

    python benchmarks/alfworld_expressions.py --data-dirs ../shared/data/alfworld:valid_seen /tmp/gen500:train
"""
from __future__ import annotations

import ast
import builtins
import itertools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import tyro

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import write_result  # noqa: E402
from sdar_gym.envs.alfworld.data import find_games  # noqa: E402
from sdar_gym.envs.alfworld.fast.compile import default_cache_dir  # noqa: E402
from sdar_gym.envs.alfworld.fast.engine import _expressions, _load_game  # noqa: E402
from sdar_gym.envs.alfworld.fast.text import compile_expression  # noqa: E402


@dataclass
class Args:
    data_dirs: list[str] = field(default_factory=lambda: [str(Path(__file__).resolve().parents[2] / "shared/data/alfworld") + ":valid_seen"])
    """``DATA_DIR:SPLIT`` sets to check."""
    max_bindings: int = 400
    """Placeholder bindings tried per expression and game at most (all objects for one placeholder)."""


def check_game(game_file: Path, max_bindings: int) -> tuple[int, int, list[str]]:
    """(expressions, evaluations, differences) for one game."""
    game = _load_game(game_file, default_cache_dir())
    expressions = sorted(set(_expressions([game.c.templates, game.c.feedback, game.c.rules])))
    entities = list(game.entities.values())
    evaluations, diffs = 0, []
    for expr in expressions:
        names = sorted({n.id for n in ast.walk(ast.parse(expr.strip(), mode="eval")) if isinstance(n, ast.Name)})
        fn, code = compile_expression(expr), compile(expr.strip(), "<grammar>", "eval")
        for combo in itertools.islice(itertools.product(entities, repeat=len(names)), max_bindings):
            variables = dict(zip(names, combo))
            reference = str(eval(code, {"__builtins__": builtins}, dict(variables)))  # the old evaluator, for comparison
            if str(fn(variables)) != reference:
                diffs.append(f"{game_file}: {expr!r} with {variables}: {fn(variables)!r} != {reference!r}")
            evaluations += 1
    return len(expressions), evaluations, diffs


def main(args: Args) -> dict:
    sets = []
    for spec in args.data_dirs:
        data_dir, _, split = spec.rpartition(":")
        start = time.perf_counter()
        games = find_games(Path(data_dir), split)
        distinct, evaluations, diffs = set(), 0, []
        for g in games:
            n, e, d = check_game(g.game_file, args.max_bindings)
            evaluations += e
            diffs += d
            distinct |= set(_expressions([_load_game(g.game_file, default_cache_dir()).c.rules]))
        sets.append({"data_dir": data_dir, "split": split, "games": len(games), "evaluations": evaluations,
                     "distinct_rule_expressions": sorted(distinct), "differences": len(diffs), "examples": diffs[:10],
                     "seconds": round(time.perf_counter() - start, 1)})
        print(f"{spec}: {len(games)} games, {evaluations} evaluations, {len(diffs)} differences")
    payload = {"what": __doc__.split("\n\n")[1].replace("\n", " "), "sets": sets,
               "differences": sum(s["differences"] for s in sets)}
    write_result("alfworld_expressions", payload)
    return payload


if __name__ == "__main__":
    main(tyro.cli(Args))
