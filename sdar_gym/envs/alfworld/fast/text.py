"""The game's facts and an evaluator for its compiled text grammar.

This reproduces the observable behaviour of TextWorld's ``PddlState`` fact set and of
``ContextSensitiveGrammar.derive`` (``textworld/envs/pddl/textgen``): the first rule whose
condition matches is expanded, ``{expr | query}`` repeats ``expr`` once per query answer, ``[...]``
joins answers with the ``list_separator`` rules, and query answers come in TextWorld's order
(predicate by predicate, facts sorted, distinct placeholders bound to distinct objects). What it
does not do is re-parse grammar text on every call: symbols and queries arrive pre-parsed.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import lru_cache

from sdar_gym.core import DataError

Var = tuple[str, str]
"""An object as (name, type), the identity TextWorld's ``Variable`` compares by."""
Mapping = dict[Var, Var]
"""Placeholder (name, type) → object (name, type)."""

class Entity:
    """The attributes grammar expressions read (``o.name``, ``r.indefinite``, ...), like TextWorld's EntityInfo."""

    __slots__ = ("id", "type", "name", "noun", "adj", "definite", "indefinite", "synonyms", "desc", "room_type")

    def __init__(self, id: str, type: str, name: str) -> None:
        self.id, self.type, self.name = id, type, name
        self.definite, self.indefinite = "the", "a"
        self.noun = self.adj = self.synonyms = self.desc = self.room_type = None

    def __str__(self) -> str:
        return self.name


Expression = Callable[[dict[str, "Entity"]], object]
"""A compiled grammar expression: variables (placeholder name → entity) → value."""

_ALLOWED_ATTRIBUTES = frozenset(Entity.__slots__)


def _compile_node(node: ast.AST, expression: str) -> Expression:
    """One node of an expression as a closure; anything outside the grammar subset is refused."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        value = node.value
        return lambda v: value
    if isinstance(node, ast.Name):
        name = node.id

        def lookup(v):
            if name not in v:
                raise DataError(f"grammar expression {expression!r} reads {name!r}, which is not bound here")
            return v[name]

        return lookup
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr in _ALLOWED_ATTRIBUTES:
        obj, attr = _compile_node(node.value, expression), node.attr
        return lambda v: getattr(obj(v), attr)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _compile_node(node.left, expression), _compile_node(node.right, expression)
        return lambda v: left(v) + right(v)
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        operands = [_compile_node(n, expression) for n in node.values]

        def first_true(v):
            for operand in operands:
                value = operand(v)
                if value:
                    return value
            return value

        return first_true
    what = f"attribute .{node.attr}" if isinstance(node, ast.Attribute) else type(node).__name__
    raise DataError(
        f"grammar expression {expression!r} uses {what}, which game files may not: expressions are limited to "
        f"placeholders, their attributes ({', '.join(sorted(_ALLOWED_ATTRIBUTES))}), string literals, + and or"
    )


@lru_cache(maxsize=4096)
def compile_expression(expression: str) -> Expression:
    """A grammar ``{expression}`` as a function of the variables, without ``eval``.

    Game files are data, so their expressions are not run as Python: only the forms TextWorld's
    ALFWorld grammars use are accepted (``o.name``, ``r``, ``o.indefinite + ' ' + o.name``,
    ``r.name or r.id``), with Python's meaning; anything else raises :class:`DataError`.
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as e:
        raise DataError(f"grammar expression {expression!r} is not valid: {e.msg}") from None
    return _compile_node(tree.body, expression)


def demangle_names(ids: list[str]) -> dict[str, str]:
    """ALFWorld's display names (``AlfredDemangler(shuffle=False)``): ``apple_bar__plus_01...`` → ``apple 2``.

    Objects of one kind are numbered from the highest down in sorted-id order; ids without a
    ``_bar_`` part keep their readable name followed by a space.
    """
    def readable(text: str) -> str:
        for token, char in (("_bar_", "|"), ("_minus_", "-"), ("_plus_", "+"), ("_dot_", "."), ("_comma_", ",")):
            text = text.replace(token, char)
        return text

    def kind(i: str) -> str:
        base = readable(i).split("|", 1)[0]
        return base + "basin" if "basin" in i else base

    ids = sorted(ids)
    remaining: dict[str, int] = defaultdict(int)
    for i in ids:
        if "_bar_" in i:
            remaining[kind(i)] += 1
    names = {}
    for i in ids:
        if "_bar_" in i:
            k = kind(i)
            names[i] = f"{k} {remaining[k]}"
            remaining[k] -= 1
        else:
            names[i] = f"{readable(i)} "
    return names


class Facts:
    """The true propositions, indexed by signature (predicate, argument types) like TextWorld's State."""

    def __init__(self, hierarchy) -> None:
        self._by_sig: dict[tuple[str, tuple[str, ...]], set[tuple[str, ...]]] = defaultdict(set)
        self._sorted: dict[tuple[str, tuple[str, ...]], list[tuple[str, ...]]] = {}
        self._hierarchy = hierarchy
        self._sig_cache: dict[tuple[str, tuple[str, ...]], list[tuple[str, tuple[str, ...]]]] = {}

    def add(self, sig: tuple[str, tuple[str, ...]], args: tuple[str, ...]) -> None:
        self._by_sig[sig].add(args)
        self._sorted.pop(sig, None)

    def discard(self, sig: tuple[str, tuple[str, ...]], args: tuple[str, ...]) -> None:
        facts = self._by_sig.get(sig)
        if facts is not None and args in facts:
            facts.discard(args)
            self._sorted.pop(sig, None)

    def sorted_args(self, sig: tuple[str, tuple[str, ...]]) -> list[tuple[str, ...]]:
        out = self._sorted.get(sig)
        if out is None:
            out = self._sorted[sig] = sorted(self._by_sig.get(sig, ()))
        return out

    def signatures(self, name: str, types: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
        """The signatures a query predicate matches: its types and all their subtypes, in TextWorld's order."""
        key = (name, types)
        sigs = self._sig_cache.get(key)
        if sigs is None:
            try:
                combos = self._hierarchy.multi_subtypes([self._hierarchy.get(t) for t in types])
            except KeyError as e:
                raise DataError(f"grammar query {name}{types} uses unknown type {e}") from None
            sigs = self._sig_cache[key] = [(name, tuple(t.name for t in combo)) for combo in combos]
        return sigs

    def assignments(self, query: list, mapping: Mapping) -> Iterator[Mapping]:
        """All ways to bind the query's new placeholders so every predicate is a fact (``State.all_assignments``)."""
        mapping = dict(mapping)
        used = set(mapping.values())
        seen = set(mapping)
        preds = []
        for name, params in query:
            phs = [tuple(p) for p in params]
            new = []
            for ph in phs:
                if ph not in seen:
                    new.append(ph)
                    seen.add(ph)
            preds.append((name, phs, new))
        return self._assign(preds, mapping, used, 0)

    def _assign(self, preds: list, mapping: Mapping, used: set, depth: int) -> Iterator[Mapping]:
        if depth == len(preds):
            yield dict(mapping)
            return
        name, phs, new = preds[depth]
        for sig in self.signatures(name, tuple(ph[1] for ph in phs)):
            types = sig[1]
            for args in self.sorted_args(sig):
                ok = True
                for ph, arg, typ in zip(phs, args, types):
                    var = (arg, typ)
                    existing = mapping.get(ph)
                    if existing is None:
                        if var in used:
                            ok = False
                            break
                        mapping[ph] = var
                        used.add(var)
                    elif existing != var:
                        ok = False
                        break
                if ok:
                    yield from self._assign(preds, mapping, used, depth + 1)
                for ph in new:
                    used.discard(mapping.pop(ph, None))

    def any_assignment(self, query: list, mapping: Mapping) -> bool:
        return next(self.assignments(query, mapping), None) is not None


class Grammar:
    """Renders compiled grammar symbols against the current facts."""

    def __init__(self, rules: dict[str, list], facts: Facts, entities: dict[str, Entity]) -> None:
        self._rules = rules
        self._facts = facts
        self._entities = entities

    def render(self, symbols: list, variables: dict[str, Entity], mapping: Mapping) -> str:
        out: list[str] = []
        for sym in symbols:
            self._expand(sym, variables, mapping, out)
        return "".join(out)

    def _contexts(self, cond: list, variables: dict[str, Entity], mapping: Mapping) -> list[tuple]:
        """A conditional symbol's expansions: one (symbol, variables, mapping) per query answer."""
        _, expr, query = cond
        if query is None:
            return [(expr, variables, mapping)]
        out = []
        for answer in self._facts.assignments(query, mapping):
            new_vars = dict(variables)
            for ph, var in answer.items():
                new_vars[ph[0]] = self._entities[var[0]]
            out.append((expr, new_vars, answer))
        return out

    def _nonterminal(self, name: str, variables: dict[str, Entity], mapping: Mapping, out: list[str]) -> None:
        alternatives = self._rules.get(name)
        if not alternatives:
            raise DataError(f"the game's grammar has no rule #{name}#")
        for condition, rhs in alternatives:
            if condition is None or self._facts.any_assignment(condition, mapping):
                for sym in rhs:
                    self._expand(sym, variables, mapping, out)
                return
        raise DataError(f"no alternative of grammar rule #{name}# applies in this state")

    def _expand(self, sym: list, variables: dict[str, Entity], mapping: Mapping, out: list[str]) -> None:
        kind = sym[0]
        if kind == "t":
            out.append(sym[1])
        elif kind == "e":
            out.append(str(compile_expression(sym[1])(variables)))
        elif kind == "n":
            self._nonterminal(sym[1], variables, mapping, out)
        elif kind == "c":
            for expr, v, m in self._contexts(sym, variables, mapping):
                self._expand(expr, v, m, out)
        elif kind == "l":
            items = self._contexts(sym[1], variables, mapping)
            if not items:
                self._nonterminal("list_empty", variables, mapping, out)
            for i, (expr, v, m) in enumerate(items):
                if i and i == len(items) - 1:
                    self._nonterminal("list_last_separator", variables, mapping, out)
                elif i:
                    self._nonterminal("list_separator", variables, mapping, out)
                self._expand(expr, v, m, out)
        else:
            raise DataError(f"unknown compiled grammar symbol {kind!r}")
