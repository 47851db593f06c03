"""Compile a ``game.tw-pddl`` file once into plain data the fast engine interprets.

The expensive parts of TextWorld's ``PddlEnv`` are done here, once per game instead of once per
reset or per step: Fast Downward's PDDL-to-SAS translation (the same translator and options
TextWorld uses, so the grounded operators, variables and goal axioms are the same) and the tatsu
parse of the text grammar into symbol trees. The result is plain JSON-able data, cached in memory
and on disk (gzip JSON keyed by the file's content and the translator versions; no pickle).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sdar_gym.core import DataError
from sdar_gym.envs.alfworld.data import load_game
from sdar_gym.envs.alfworld.textworld_calls import textworld_call
from sdar_gym.io import atomic_write_bytes

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""Bump when the compiled layout or its semantics change; old cache files are then ignored."""


class UnsupportedGameError(DataError):
    """The game uses a PDDL or grammar feature the fast engine does not interpret."""


# A compiled grammar symbol is a JSON list: ["t", text] terminal, ["n", name] nonterminal,
# ["e", python_expression] eval, ["c", symbol, query_or_None] conditional, ["l", conditional] list.
# A query is a list of predicates [name, [[placeholder, type], ...]] joined by "&".


@dataclass
class CompiledGame:
    """Everything the fast engine needs to play one game, as plain data."""

    version: int
    value_names: list[list[str]]
    """SAS variables: the atom name of each value (``Atom p(a, b)`` / ``NegatedAtom p(a, b)``)."""
    axiom_layers: list[int]
    """SAS axiom layer of each variable (-1 for ordinary state variables)."""
    init: list[int]
    goal: list[list[int]]
    """``[var, value]`` pairs that must all hold to win."""
    operators: list[list]
    """``[name, [var, value, ...] preconditions, [[var, value, [var, value, ...] conditions], ...] effects]``."""
    axioms: list[list]
    """``[layer, [var, value, ...] conditions, var, value]`` derived-variable rules."""
    static_facts: list[list]
    """``[predicate, [args]]`` of the PDDL ``:init`` (what TextWorld's PddlState starts from)."""
    name2type: dict[str, str]
    types: list[list]
    """``[name, [supertypes]]`` in Fast Downward's order."""
    action_params: dict[str, list[list[str]]]
    """Grounding parameters ``[name, type]`` of each PDDL action, as TextWorld maps them."""
    templates: dict[str, list]
    """Grammar action name → compiled command template."""
    feedback: dict[str, list]
    """Grammar action name → compiled feedback symbols."""
    rules: dict[str, list[list]]
    """Nonterminal → ``[query_or_None, compiled rhs]`` alternatives, in grammar order."""


def _convert_symbol(sym) -> list:
    """A TextWorld textgen symbol as compiled JSON data."""
    from textworld.envs.pddl import textgen

    if isinstance(sym, textgen.TerminalSymbol):
        return ["t", sym.symbol]
    if isinstance(sym, textgen.NonterminalSymbol):
        return ["n", sym.symbol]
    if isinstance(sym, textgen.EvalSymbol):
        return ["e", sym.expression]
    if isinstance(sym, textgen.ConditionalSymbol):
        return ["c", _convert_symbol(sym.expression), _parse_query(sym.given) if sym.given else None]
    if isinstance(sym, textgen.ListSymbol):
        return ["l", _convert_symbol(sym.symbol)]
    raise UnsupportedGameError(f"unknown grammar symbol type {type(sym).__name__}")


@lru_cache(maxsize=4096)
def _parse_symbols_cached(text: str) -> str:
    from textworld.envs.pddl import textgen

    return json.dumps([_convert_symbol(s) for s in textgen._parse_and_convert(text, rule_name="symbols")])


def parse_symbols(text: str) -> list:
    """Parse grammar text (``#rule#``, ``{expr | query}``, ``[...]``) with TextWorld's own parser."""
    return json.loads(_parse_symbols_cached(text))


@lru_cache(maxsize=4096)
def _parse_query_cached(expr: str) -> str:
    from textworld.logic import Rule

    rule = Rule.parse_conjunctive_query(expr)
    return json.dumps([[p.name, [[ph.name, ph.type] for ph in p.parameters]] for p in rule.preconditions])


def _parse_query(expr: str) -> list:
    return json.loads(_parse_query_cached(expr))


def _parse_sas(sas: str) -> dict:
    lines = iter(sas.splitlines())

    def expect(tag: str) -> None:
        got = next(lines)
        if got != tag:
            raise UnsupportedGameError(f"unexpected SAS line {got!r}, expected {tag!r}")

    def ints(n: int) -> list[int]:
        out = []
        for _ in range(n):
            out.extend(int(x) for x in next(lines).split())
        return out

    expect("begin_version")
    if next(lines) != "3":
        raise UnsupportedGameError("unsupported SAS version")
    expect("end_version")
    expect("begin_metric")
    next(lines)
    expect("end_metric")
    value_names, layers = [], []
    for _ in range(int(next(lines))):
        expect("begin_variable")
        next(lines)
        layers.append(int(next(lines)))
        value_names.append([next(lines) for _ in range(int(next(lines)))])
        expect("end_variable")
    for _ in range(int(next(lines))):
        expect("begin_mutex_group")
        for _ in range(int(next(lines))):
            next(lines)
        expect("end_mutex_group")
    expect("begin_state")
    init = [int(next(lines)) for _ in value_names]
    expect("end_state")
    expect("begin_goal")
    goal = [[int(x) for x in next(lines).split()] for _ in range(int(next(lines)))]
    expect("end_goal")
    operators = []
    for _ in range(int(next(lines))):
        expect("begin_operator")
        name = next(lines)
        pre = ints(int(next(lines)))  # prevail conditions
        effects = []
        for _ in range(int(next(lines))):
            fields = [int(x) for x in next(lines).split()]
            conds = fields[1 : 1 + 2 * fields[0]]
            var, old, new = fields[1 + 2 * fields[0] :]
            if old != -1:
                pre += [var, old]
            effects.append([var, new, conds])
        next(lines)  # cost
        expect("end_operator")
        operators.append([name, pre, effects])
    axioms = []
    for _ in range(int(next(lines))):
        expect("begin_rule")
        conds = ints(int(next(lines)))
        var, _old, new = (int(x) for x in next(lines).split())
        expect("end_rule")
        axioms.append([layers[var], conds, var, new])
    return dict(value_names=value_names, axiom_layers=layers, init=init, goal=goal, operators=operators, axioms=axioms)


def compile_game(game_file: Path) -> CompiledGame:
    """Translate and parse one game (the slow path: a fraction of a second)."""
    from fast_downward import pddl2sas
    from fast_downward.translate.pddl import conditions, f_expression

    data = load_game(game_file)
    try:
        with textworld_call():
            task, sas = pddl2sas(data["pddl_domain"], data["pddl_problem"])  # TextWorld's (unoptimized) options
            templates, feedback, rules = _grammar(data["grammar"])
    except DataError:
        raise
    except Exception as e:  # the translator and tatsu raise many types on bad input
        raise DataError(f"cannot compile ALFWorld game {game_file}: {type(e).__name__}: {e}") from e
    sas_data = _parse_sas(sas)
    for values in sas_data["value_names"]:
        odd = [v for v in values if not v.startswith(("Atom ", "NegatedAtom "))]
        if odd:  # TextWorld itself cannot turn such values into facts
            raise UnsupportedGameError(f"{game_file}: SAS variable value {odd[0]!r} is not an atom")

    name2type = {o.name: o.type_name for o in task.objects}
    static_facts = []
    for atom in task.init:  # the same filtering as TextWorld's PddlState
        if isinstance(atom, conditions.Atom):
            if atom.predicate != "=":
                static_facts.append([atom.predicate, list(atom.args)])
        elif isinstance(atom, f_expression.Assign):
            name = f"{atom.expression.value}"
            if atom.fluent.symbol != "total-cost" and not name.isdigit():
                static_facts.append([name, list(atom.fluent.args)])
    if any(n.lower() in ("i", "p") for n in name2type):
        raise UnsupportedGameError(f"{game_file}: objects named 'i' or 'p' are renamed by TextWorld; not supported")

    action_params = {a.name: [[p.name.strip("?"), p.type_name] for p in a.parameters] for a in task.actions}
    return CompiledGame(
        version=FORMAT_VERSION,
        static_facts=static_facts,
        name2type=name2type,
        types=[[t.name, list(t.supertype_names)] for t in task.types],
        action_params=action_params,
        templates=templates,
        feedback=feedback,
        rules=rules,
        **sas_data,
    )


_GOAL_RHS = re.compile(r'"rhs": "(Your task is to: )([^"\\]*)"')
"""The grammar line that differs between ALFWorld games: the goal sentence (the released games' own
form, and the generator's). Everything else in a game's grammar is the same text in every game."""
_GOAL_SLOT = "GOAL-SLOT-OF-THE-GRAMMAR-CACHE"


def _grammar(grammar: str) -> tuple[dict, dict, dict]:
    """The compiled templates, feedback and rules of a game's grammar (TextWorld's ``GameLogic``).

    Parsing a grammar is a third of a game's compile time, and games differ only in their goal line,
    so the grammar is parsed once with a placeholder goal and the goal's own line is parsed alone;
    a grammar without exactly one goal line is parsed whole."""
    found = list(_GOAL_RHS.finditer(grammar))
    if len(found) != 1 or _GOAL_SLOT in grammar:
        return _parsed_grammar(grammar)
    goal = found[0]
    templates, feedback, rules = _parsed_grammar(grammar[: goal.start(2)] + _GOAL_SLOT + grammar[goal.end(2) :])
    slotted = [alt for alts in rules.values() for alt in alts if _GOAL_SLOT in json.dumps(alt[1])]
    if len(slotted) != 1:
        return _parsed_grammar(grammar)
    slotted[0][1] = parse_symbols(goal.group(1) + goal.group(2))
    return templates, feedback, rules


def _parsed_grammar(grammar: str) -> tuple[dict, dict, dict]:
    templates, feedback, rules = json.loads(_parse_grammar_cached(grammar))  # a fresh copy per game
    return templates, feedback, rules


@lru_cache(maxsize=8)
def _parse_grammar_cached(grammar: str) -> str:
    from textworld.envs.pddl.logic import GameLogic

    with textworld_call():  # TextWorld's tatsu parsers are not re-entrant
        logic = GameLogic(domain="", grammar=grammar)  # the domain is only stored, not read
        templates = {name: parse_symbols(a.template) for name, a in logic.actions.items()}
        feedback = {name: parse_symbols(a.feedback_rule) for name, a in logic.actions.items()}
        rules = {
            lhs: [[_parse_query(r.condition) if r.condition else None, [_convert_symbol(s) for s in r.rhs]] for r in alts]
            for lhs, alts in logic.grammar._rules.items()
        }
    return json.dumps([templates, feedback, rules])


def default_cache_dir() -> Path:
    from sdar_gym.core import sdar_gym_home

    return sdar_gym_home() / "cache" / "alfworld-fast"


@lru_cache(maxsize=1)
def _toolchain() -> str:
    """The translator and parser versions: a compiled game is only reused with the same ones."""
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for dist in ("textworld", "fast_downward_textworld"):
        try:
            versions.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            versions.append(f"{dist}==?")
    return ";".join(versions)


def load_compiled(game_file: Path, cache_dir: Path | None) -> CompiledGame:
    """The compiled game from the disk cache (when ``cache_dir`` is set), else compiled now (and cached)."""
    game_file = Path(game_file)
    try:
        raw = game_file.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read ALFWorld game {game_file}: {e.strerror}") from None
    path = _cache_path(raw, cache_dir) if cache_dir else None
    if path is not None and path.exists():
        try:
            fields = json.loads(gzip.decompress(path.read_bytes()))
            if fields.get("version") == FORMAT_VERSION:
                return CompiledGame(**fields)
        except (OSError, ValueError, TypeError) as e:
            log.warning("ignoring unreadable compiled ALFWorld game %s: %s", path, e)
    game = compile_game(game_file)
    if path is not None:
        _store(path, game)
    return game


def store_compiled(game_file: Path, game: CompiledGame, cache_dir: Path) -> None:
    """Cache ``game``, compiled elsewhere, as the compiled form of ``game_file`` (the generator
    compiles each game once to verify it, so its first play need not compile it again)."""
    _store(_cache_path(Path(game_file).read_bytes(), cache_dir), game)


def _cache_path(raw: bytes, cache_dir: Path) -> Path:
    """A game file's cache entry: keyed by its content and the translator versions."""
    key = hashlib.sha256(raw + _toolchain().encode()).hexdigest()[:32]
    return Path(cache_dir) / f"{key}-v{FORMAT_VERSION}.json.gz"


def _store(path: Path, game: CompiledGame) -> None:
    try:
        # the fields are plain JSON data already: vars() spares asdict's deep copy (a tenth of a compile)
        atomic_write_bytes(path, gzip.compress(json.dumps(vars(game), separators=(",", ":")).encode(), 6))
    except OSError as e:
        log.warning("cannot cache compiled ALFWorld game in %s: %s", path.parent, e)


@dataclass
class CompileArgs:
    """Compile every game of a split for the fast engine (fills its disk cache); list games it cannot play."""

    data_dir: Path = Path("data/alfworld")
    """Folder holding json_2.1.1/<split>/."""
    split: str = "train"
    """Split to compile: train, valid_seen or valid_unseen."""
    cache_dir: Path | None = None
    """Where compiled games go (default: $SDAR_GYM_HOME/cache/alfworld-fast)."""

    def run(self) -> None:
        import time

        from sdar_gym.envs.alfworld.data import find_games

        games = find_games(self.data_dir, self.split)
        cache_dir = self.cache_dir or default_cache_dir()
        failed = []
        start = time.perf_counter()
        for i, game in enumerate(games, 1):
            try:
                load_compiled(game.game_file, cache_dir)
            except DataError as e:
                failed.append(game.task_id)
                print(f"cannot compile {game.task_id}: {e}", flush=True)
            if i % 50 == 0 or i == len(games):
                print(f"[{i}/{len(games)}] {time.perf_counter() - start:.0f}s", flush=True)
        print(f"compiled {len(games) - len(failed)} of {len(games)} games into {cache_dir}")
        if failed:
            raise SystemExit(1)
