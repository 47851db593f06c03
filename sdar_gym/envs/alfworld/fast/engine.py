"""``FastEngine``: the same game as :class:`TextWorldEngine`, interpreted natively in Python.

State is the game's grounded SAS task (from :mod:`.compile`): a vector of variable values, the
operators whose preconditions hold (kept incrementally, so a step touches only the operators that
mention a changed variable), and the goal axioms. Text comes from the compiled grammar
(:mod:`.text`) over a fact set updated exactly as TextWorld's ``PddlState`` updates its own
(negated effects are recorded as ``not_*`` facts, which some grammar queries read).
Command texts that depend only on static facts are rendered once per game.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import cached_property, lru_cache
from pathlib import Path

from sdar_gym.core import DataError
from sdar_gym.envs.alfworld.protocol import NOTHING_HAPPENS, EngineState
from sdar_gym.envs.alfworld.fast.planner_process import PlannerProcess
from sdar_gym.envs.alfworld.fast import search
from sdar_gym.envs.alfworld.fast.compile import CompiledGame, default_cache_dir, load_compiled
from sdar_gym.envs.alfworld.fast.text import Entity, Facts, Grammar, compile_expression, demangle_names

_USE_DEFAULT = object()


def _parse_atom(value_name: str) -> tuple[str, tuple[str, ...]] | None:
    """``Atom p(a, b)`` → ("p", ("a", "b")); ``NegatedAtom p(a)`` → ("not_p", ("a",)); else None."""
    kind, _, rest = value_name.partition(" ")
    if kind not in ("Atom", "NegatedAtom"):
        return None
    name, _, args = rest.partition("(")
    args = tuple(a for a in args[:-1].split(", ") if a)
    return ("not_" + name if kind == "NegatedAtom" else name), args


class _Game:
    """Per-game data derived once from a :class:`CompiledGame` and shared by resets."""

    def __init__(self, game_file: Path, c: CompiledGame) -> None:
        from textworld.logic import Type, TypeHierarchy

        self.game_file = game_file
        self.c = c
        self.hierarchy = TypeHierarchy()
        for name, parents in c.types:  # same construction as TextWorld's PddlState (first definition wins)
            try:
                self.hierarchy.add(Type(name, parents))
            except ValueError:
                pass
        self.name2type = c.name2type
        self.atoms = [[self._typed(_parse_atom(v)) for v in values] for values in c.value_names]
        self.derived = [v for v, layer in enumerate(c.axiom_layers) if layer >= 0]
        self.axioms_by_layer: dict[int, list] = defaultdict(list)
        for layer, conds, var, val in c.axioms:
            self.axioms_by_layer[layer].append((list(zip(conds[::2], conds[1::2])), var, val))
        self.layers = sorted(self.axioms_by_layer)

        self.ops = []  # (action name, args, preconditions, effects)
        self.watchers: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, (name, pre, eff) in enumerate(c.operators):
            action, *args = name.split()
            if action not in c.templates:
                raise DataError(f"{game_file}: PDDL action {action!r} has no command template in the grammar")
            pre_pairs = list(zip(pre[::2], pre[1::2]))
            for pair in pre_pairs:
                self.watchers[pair].append(i)
            effects = [(var, val, list(zip(conds[::2], conds[1::2]))) for var, val, conds in eff]
            self.ops.append((action, args, pre_pairs, effects))

        self.init_facts: list[tuple] = [self._typed((n, tuple(a))) for n, a in c.static_facts]
        ids = {arg for _, args in self.init_facts for arg in args}
        for var, val in enumerate(c.init):
            atom = self.atoms[var][val]
            if atom is not None and not atom[0][0].startswith("not_"):
                ids.update(atom[1])
        names = demangle_names(sorted(ids))
        self.entities = {i: Entity(i, c.name2type.get(i, ""), names[i]) for i in ids}
        self.names = {i: e.name for i, e in self.entities.items()}
        dynamic = {a[0][0].removeprefix("not_") for atoms in self.atoms for a in atoms if a is not None}
        self.static_templates = {
            action: _is_static(symbols, dynamic) for action, symbols in c.templates.items()
        }
        self.command_cache: dict[int, str] = {}
        """Command text of operators whose template reads only static facts (filled as they are seen)."""
        for expression in _expressions([c.templates, c.feedback, c.rules]):
            compile_expression(expression)  # a game with a forbidden expression fails at load, not mid-episode

    @cached_property
    def relaxed(self) -> search.RelaxedTask:
        """The relaxed task the fallback planner's heuristic reads (built on first use)."""
        return search.relaxed_task(self.ops, [a for layer in self.layers for a in self.axioms_by_layer[layer]],
                                   self.c.init, self.derived)

    def successor(self, values: list[int], op: int) -> list[int]:
        """The state after ``op`` (applicable in ``values``), derived variables evaluated as in ``FastEngine``."""
        values = list(values)
        fired = [(var, val) for var, val, conds in self.ops[op][3] if all(values[v] == x for v, x in conds)]
        for var, val in fired:
            values[var] = val
        self.evaluate_axioms(values, values.__setitem__)
        return values

    def evaluate_axioms(self, values: list[int], assign: Callable[[int, int], None]) -> None:
        """Derived variables back to their defaults, then each axiom layer run to its fixpoint, as Fast
        Downward does; ``assign(var, val)`` writes ``values`` (the engine also updates what it tracks)."""
        for var in self.derived:
            assign(var, self.c.init[var])
        for layer in self.layers:
            changed = True
            while changed:
                changed = False
                for conds, var, val in self.axioms_by_layer[layer]:
                    if values[var] != val and all(values[v] == x for v, x in conds):
                        assign(var, val)
                        changed = True

    def _typed(self, atom):
        if atom is None:
            return None
        name, args = atom
        try:
            return (name, tuple(self.name2type[a] for a in args)), args
        except KeyError as e:
            raise DataError(f"{self.game_file}: fact {name}{args} names unknown object {e}") from None


GAME_CACHE_SIZE = 64
"""Compiled games a process keeps in memory (least recently used first out). A real valid_seen game
takes about 5 MB, so about 320 MB at most; a process playing more games reloads them from disk."""


@lru_cache(maxsize=GAME_CACHE_SIZE)
def _cached_game(path: str, mtime_ns: int, size: int, cache_dir: str | None) -> _Game:
    return _Game(Path(path), load_compiled(Path(path), Path(cache_dir) if cache_dir else None))


def _load_game(game_file: Path, cache_dir: Path | None) -> _Game:
    """The game's per-process data, shared by every engine that plays it (it is never mutated)."""
    try:
        st = game_file.stat()
    except OSError as e:
        raise DataError(f"cannot read ALFWorld game {game_file}: {e.strerror}") from None
    return _cached_game(str(game_file.resolve()), st.st_mtime_ns, st.st_size, str(cache_dir) if cache_dir else None)


def _expressions(tree) -> Iterator[str]:
    """Every ``["e", expression]`` symbol in compiled grammar data."""
    if isinstance(tree, dict):
        tree = list(tree.values())
    if isinstance(tree, list):
        if len(tree) == 2 and tree[0] == "e" and isinstance(tree[1], str):
            yield tree[1]
        else:
            for item in tree:
                yield from _expressions(item)


def _is_static(symbols: list, dynamic: set[str]) -> bool:
    """Whether rendered text depends only on the action's arguments and facts no operator changes."""
    for sym in symbols:
        kind = sym[0]
        if kind == "n":
            return False
        if kind == "c":
            reads_dynamic = any(p[0].removeprefix("not_") in dynamic for p in sym[2] or [])
            if reads_dynamic or not _is_static([sym[1]], dynamic):
                return False
        if kind == "l" and not _is_static([sym[1]], dynamic):
            return False
    return True


class FastEngine:
    """Plays ALFWorld games like :class:`TextWorldEngine`, about two orders of magnitude faster.

    ``plan()`` asks TextWorld's planner: a TextWorld engine is created on first use, in a child
    process (:mod:`.planner_process`), and brought to the current state by replaying the commands
    that changed it. When that planner is late, it is killed and a bounded search on this engine's
    own task answers instead (see :meth:`plan`).
    """

    planner_timeout_s: float = 3.0
    """How long ``plan()`` waits for TextWorld's planner (loading it included) before its fallback."""
    plan_bound_s: float = 5.0
    """What one ``plan()`` may take in all, the wait for TextWorld's planner included: the fallback search
    stops ``replay_reserve_s`` before it (with a partial plan)."""
    replay_reserve_s: float = 0.5
    """Time the bound keeps for replaying the fallback's plan on a copy of the engine (to check it)."""

    def __init__(self, cache_dir: Path | None | object = _USE_DEFAULT, textworld_planner: bool = True) -> None:
        """``cache_dir``: where compiled games are kept on disk (default ``$SDAR_GYM_HOME/cache/alfworld-fast``;
        None compiles in memory only). ``textworld_planner=False`` plans with the search alone: no
        TextWorld process per game (whose loading took most of the expert's time on generated games)."""
        self.cache_dir = default_cache_dir() if cache_dir is _USE_DEFAULT else cache_dir
        self.textworld_planner = textworld_planner
        self._game: _Game | None = None
        self._planner: PlannerProcess | None = None
        self._planner_synced: int | None = None
        """Commands of ``_history`` the planner has played (None: it must reset first)."""
        self._commands: dict[str, int] | None = None
        """Admissible command text → operator, for the current state (None before the first reset)."""
        self._planner_late = False
        """TextWorld's planner missed its window in this episode: the search plans until the next reset."""

    def load(self, game_file: Path, compiled: CompiledGame | None = None) -> None:
        """``compiled``: the game already compiled (the generator compiles each candidate once)."""
        game_file = Path(game_file)
        if compiled is not None:
            game = _Game(game_file.resolve(), compiled)
        elif self._game is not None and self._game.game_file == game_file.resolve():
            return
        else:
            game = _load_game(game_file, self.cache_dir)  # raises before anything changes
        self.close()  # the planner is made for the new game when first asked
        self._game = game

    @property
    def names(self) -> dict[str, str]:
        """PDDL object id (lower case) → the name the loaded game shows (\"apple 1\")."""
        return dict(self._game.names)

    # -- state machine ----------------------------------------------------------------------
    def _set(self, var: int, val: int) -> None:
        old = self._values[var]
        if old == val:
            return
        self._values[var] = val
        unmet, applicable, watchers = self._unmet, self._applicable, self._game.watchers
        for op in watchers.get((var, old), ()):
            if unmet[op] == 0:
                applicable.discard(op)
            unmet[op] += 1
        for op in watchers.get((var, val), ()):
            unmet[op] -= 1
            if unmet[op] == 0:
                applicable.add(op)

    def _evaluate_axioms(self) -> None:
        if self._game.derived:
            self._game.evaluate_axioms(self._values, self._set)

    def _won(self) -> bool:
        return all(self._values[v] == x for v, x in self._game.c.goal)

    def _context(self, op: int) -> tuple[dict, dict]:
        g = self._game
        action, args, _, _ = g.ops[op]
        params = g.c.action_params[action]
        mapping = {(p, t): (a, t) for (p, t), a in zip(params, args)}
        variables = {p: g.entities[a] for (p, _), a in zip(params, args)}
        return variables, mapping

    def _command(self, op: int) -> str:
        g = self._game
        text = g.command_cache.get(op)
        if text is None:
            variables, mapping = self._context(op)
            action = g.ops[op][0]
            text = self._text.render(g.c.templates[action], variables, mapping)
            if "{" in text or "}" in text:  # TextWorld formats the rendered template with entity names
                text = text.format(**g.names)
            if g.static_templates[action]:
                g.command_cache[op] = text
        return text

    def _observe(self, feedback: str) -> EngineState:
        self._commands = {}
        seen = set()
        for op in sorted(self._applicable):
            action, args, _, _ = self._game.ops[op]
            key = (action, *args)
            if key in seen:  # TextWorld drops operators whose grounded name repeats
                continue
            seen.add(key)
            self._commands.setdefault(self._command(op), op)
        return EngineState(feedback, sorted(self._commands), self._won())

    # -- Engine protocol ----------------------------------------------------------------------
    def reset(self) -> EngineState:
        g = self._game
        if g is None:
            raise RuntimeError("call load() before reset()")
        self._values = list(g.c.init)
        self._unmet = [sum(self._values[v] != x for v, x in pre) for _, _, pre, _ in g.ops]
        self._applicable = {i for i, n in enumerate(self._unmet) if n == 0}
        self._evaluate_axioms()
        self._facts = Facts(g.hierarchy)
        for sig, args in g.init_facts:
            self._facts.add(sig, args)
        for var, val in enumerate(self._values):
            atom = g.atoms[var][val]
            if atom is not None and not atom[0][0].startswith("not_"):
                self._facts.add(*atom)
        self._text = Grammar(g.c.rules, self._facts, g.entities)
        self._history: list[str] = []
        self._planner_synced = None
        self._planner_late = False
        intro = self._text.render([["n", "intro"]], {}, {})
        return self._observe(intro)

    def step(self, command: str) -> EngineState:
        if self._commands is None:
            raise RuntimeError("call reset() before step()")
        command = command.strip()
        op = self._commands.get(command)
        if op is None:
            return self._observe(NOTHING_HAPPENS)
        g = self._game
        effects = g.ops[op][3]
        values = self._values
        fired = [(var, val) for var, val, conds in effects if all(values[v] == x for v, x in conds)]
        for var, val in fired:
            self._set(var, val)
        # TextWorld's fact set receives every effect of the operator, in order, whether its
        # condition held or not (what Fast Downward's apply_operator reports); text reads these facts.
        for var, val, _ in effects:
            (name, types), args = g.atoms[var][val]
            negated = name[4:] if name.startswith("not_") else "not_" + name
            self._facts.discard((negated, types), args)
            self._facts.add((name, types), args)
        self._evaluate_axioms()
        self._history.append(command)
        variables, mapping = self._context(op)
        feedback = self._text.render(g.c.feedback[g.ops[op][0]], variables, mapping)
        return self._observe(feedback)

    def goal_distance(self) -> float:
        """How far the goal is: the length of a relaxed plan from the current state (the FF heuristic,
        which ignores what actions undo; 0 once won, inf when unreachable). A few milliseconds a call."""
        if self._commands is None:
            raise RuntimeError("call reset() before goal_distance()")
        g = self._game
        return search.ff(g.relaxed, self._values, [g.relaxed.base[v] + x for v, x in g.c.goal], g.ops)[0]

    def plan(self) -> list[str]:
        """A winning plan from the current state, within ``plan_bound_s`` seconds (unless the machine
        is too loaded for the search to find a first step in time: it then goes on until it has one).

        TextWorld's planner is asked first (unless ``textworld_planner`` is off), for up to ``planner_timeout_s``. Its search is a C call
        that cannot be interrupted, so it runs in a child process, which is killed when its answer
        is late (with whatever memory its search had grown); the episode is then planned by
        :mod:`.search` on the fast engine until the next reset.
        """
        if self._game is None or self._commands is None:
            raise RuntimeError("call load() and reset() before plan()")
        deadline = time.monotonic() + self.plan_bound_s
        if self.textworld_planner and not self._planner_late:
            plan = self._ask_planner(time.monotonic() + min(self.planner_timeout_s, self.plan_bound_s))
            if plan is not None:
                return plan
            self._planner_late = True
        return self._search_plan(deadline - self.replay_reserve_s, first_step=True)

    def _ask_planner(self, deadline: float) -> list[str] | None:
        """TextWorld's plan, or None when it is not there by ``deadline``.

        A worker thread starts the planner's process when there is none (the first one in a process
        imports TextWorld first, which can take seconds) and asks it; the thread gives up at the
        deadline by itself, killing the child, and closes a planner that started too late.
        """
        game_file, history = self._game.game_file, list(self._history)
        planner, synced = self._planner, self._planner_synced
        self._planner = self._planner_synced = None  # the thread owns it until it answers in time
        out: dict = {}
        lock, done = threading.Lock(), threading.Event()

        def job() -> None:
            nonlocal planner
            try:
                if planner is None:
                    planner = PlannerProcess(game_file)
                out["plan"] = planner.plan(synced is None, history[synced or 0:], deadline)
            except BaseException as e:  # handed to the caller, or dropped when it stopped waiting
                out["error"] = e
            with lock:
                done.set()
                late = out.get("late", False)
            if planner is not None and (late or out.get("plan") is None):
                planner.close()

        threading.Thread(target=job, name="alfworld-planner", daemon=True).start()
        done.wait(None if deadline == float("inf") else max(0.0, deadline - time.monotonic()) + 0.05)  # the thread stops at the deadline
        with lock:
            if not done.is_set():
                out["late"] = True
                return None
        if "error" in out:
            raise out["error"]
        if out["plan"] is not None:
            self._planner, self._planner_synced = planner, len(history)
        return out["plan"]

    def _search_plan(self, deadline: float, first_step: bool = False) -> list[str]:
        """The fallback: :func:`search.search` on this game's task, replayed on a copy of the engine
        to turn operators into commands and to check that it wins. Out of time, it gives the steps
        to the most promising state found (the env plans again when they are used up); with
        ``first_step``, at least one step even past the deadline."""
        g = self._game
        ops, complete = search.search(g.ops, g.relaxed, self._values, [tuple(p) for p in g.c.goal], g.successor,
                                      deadline, first_step)
        replay = FastEngine(self.cache_dir)
        replay._game = g
        replay.reset()
        for command in self._history:
            replay.step(command)
        commands = []
        for op in ops:
            command = replay._command(op)
            if replay._commands.get(command) is None:
                return []
            commands.append(command)
            replay.step(command)
        return commands if replay._won() or not complete else []

    def close(self) -> None:
        """Release the planner (a TextWorld env and its copy of Fast Downward's library) and the game."""
        if self._planner is not None:
            self._planner.close()
        self._planner = self._game = self._commands = None
        self._planner_synced = None
