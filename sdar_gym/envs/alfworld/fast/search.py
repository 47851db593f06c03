"""A time-bounded planner on the fast engine's SAS task: the fallback when TextWorld's planner is slow.

Fast Downward's search runs in a C library that Python cannot interrupt; on a few real games
(many closed drawers, two objects to move) it takes minutes. This is a lazy greedy best-first
search with the FF heuristic and preferred operators (the classic Fast Downward configuration
``lazy_greedy([ff()], preferred=[ff()])``, written here over the compiled task), that stops at a
deadline. Its plans are not optimal, only winning; the caller replays them on the engine to check.
"""
from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass

_INF = float("inf")
_CLOCK_EVERY = 256
"""Heap pops of the heuristic between deadline checks (one evaluation takes up to ~0.6 s on whole rooms)."""


class OutOfTime(Exception):
    """The deadline passed inside a heuristic evaluation."""


@dataclass
class RelaxedTask:
    """The compiled task as unit rules ``preconditions -> fact`` over fact ids (``base[var] + value``)."""

    base: list[int]
    unit_pre: list[list[int]]
    unit_eff: list[int]
    unit_op: list[int]
    """Operator of each unit, -1 for an axiom (which costs nothing)."""
    fact_units: list[list[int]]
    """Units each fact is a precondition of."""
    free_units: list[int]
    """Units with no precondition."""
    defaults: list[int]
    """Fact ids of derived variables' default values (always reachable in the relaxation)."""


def relaxed_task(ops: list, axioms: list, init: list[int], derived: list[int]) -> RelaxedTask:
    """Build the relaxation of the fast engine's operators ``(action, args, pre, effects)`` and axioms."""
    base, n = [], 0
    sizes = [0] * len(init)
    for _, _, pre, effects in ops:
        for var, val in pre:
            sizes[var] = max(sizes[var], val + 1)
        for var, val, conds in effects:
            sizes[var] = max(sizes[var], val + 1)
            for v, x in conds:
                sizes[v] = max(sizes[v], x + 1)
    for conds, var, val in axioms:
        sizes[var] = max(sizes[var], val + 1)
        for v, x in conds:
            sizes[v] = max(sizes[v], x + 1)
    for var, size in enumerate(sizes):
        base.append(n)
        n += max(size, init[var] + 1, 2)
    unit_pre, unit_eff, unit_op = [], [], []
    for i, (_, _, pre, effects) in enumerate(ops):
        for var, val, conds in effects:
            unit_pre.append(sorted({base[v] + x for v, x in pre + conds}))
            unit_eff.append(base[var] + val)
            unit_op.append(i)
    for conds, var, val in axioms:
        unit_pre.append(sorted({base[v] + x for v, x in conds}))
        unit_eff.append(base[var] + val)
        unit_op.append(-1)
    fact_units: list[list[int]] = [[] for _ in range(n)]
    for u, pre in enumerate(unit_pre):
        for f in pre:
            fact_units[f].append(u)
    free = [u for u, pre in enumerate(unit_pre) if not pre]
    return RelaxedTask(base, unit_pre, unit_eff, unit_op, fact_units, free, [base[v] + init[v] for v in derived])


def ff(task: RelaxedTask, values: list[int], goal: list[int], ops: list, deadline: float = _INF) -> tuple[float, list[int]]:
    """FF heuristic of a state: (relaxed plan length or inf, its operators applicable now).
    Raises :class:`OutOfTime` when ``deadline`` (``time.monotonic()``) passes first."""
    cost = {task.base[v] + x: 0 for v, x in enumerate(values)}
    for f in task.defaults:
        cost[f] = 0
    supporter: dict[int, int] = {}
    remaining = [len(p) for p in task.unit_pre]
    heap: list[tuple[int, int, int]] = []
    tie = itertools.count()

    def fire(u: int) -> None:
        c = (task.unit_op[u] >= 0) + sum(cost[f] for f in task.unit_pre[u])
        f = task.unit_eff[u]
        if c < cost.get(f, _INF):
            heapq.heappush(heap, (c, next(tie), f, u))

    for u in task.free_units:
        fire(u)
    done: set[int] = set()
    queue = [(0, next(tie), f, -1) for f in cost]
    heap.extend(queue)
    heapq.heapify(heap)
    goal_left = set(goal)
    pops = 0
    while heap and goal_left:
        pops += 1
        if pops % _CLOCK_EVERY == 0 and time.monotonic() > deadline:
            raise OutOfTime
        c, _, f, u = heapq.heappop(heap)
        if f in done:
            continue
        done.add(f)
        cost[f] = c
        if u >= 0:
            supporter[f] = u
        goal_left.discard(f)
        for v in task.fact_units[f]:
            remaining[v] -= 1
            if remaining[v] == 0:
                fire(v)
    if goal_left:
        return _INF, []
    plan: set[int] = set()
    stack, marked = list(goal), set()
    while stack:
        f = stack.pop()
        if f in marked or f not in supporter:
            continue
        marked.add(f)
        u = supporter[f]
        if task.unit_op[u] >= 0:
            plan.add(task.unit_op[u])
        stack.extend(task.unit_pre[u])
    preferred = [op for op in plan if all(values[v] == x for v, x in ops[op][2])]
    return float(len(plan)), preferred


def search(
    ops: list, task: RelaxedTask, values: list[int], goal: list[tuple[int, int]], successor, deadline: float,
    first_step: bool = False,
) -> tuple[list[int], bool]:
    """Operators from ``values`` to a state where ``goal`` holds, and True; when the deadline passes
    first, the operators to the most promising state seen (lowest heuristic value), and False: a
    step towards the goal that the caller can take before searching again.

    ``successor(values, op)`` returns the next state (axioms evaluated); ``ops`` are the fast
    engine's ``(action, args, pre, effects)``. Lazy: a node is evaluated when expanded, and its
    children are queued under its heuristic value, preferred operators first.

    ``first_step``: when the deadline passes before any state but the start has been evaluated, go
    on until one has (about two heuristic evaluations), and return the steps to the best of those:
    on a machine too loaded to search at all within the deadline, a late step beats none.
    """
    goal_facts = [task.base[v] + x for v, x in goal]
    start = tuple(values)
    parents: dict[tuple, tuple[tuple, int] | None] = {start: None}
    tie = itertools.count()
    open_: list = [(0, 0, next(tie), start, None, -1)]
    closed: set[tuple] = set()
    best: tuple[float, tuple] = (_INF, start)
    best_moved: tuple[float, tuple | None] = (_INF, None)
    """The most promising state evaluated other than the start (``first_step``'s answer)."""

    def out_of_time() -> tuple[list[int], bool]:
        moved_only = first_step and best[1] == start and best_moved[1] is not None
        return path(best_moved[1] if moved_only else best[1]), False

    def stops() -> bool:
        """Whether the deadline counts yet."""
        return not first_step or best_moved[1] is not None

    def path(state: tuple) -> list[int]:
        plan = []
        while parents[state] is not None:
            state, op = parents[state]
            plan.append(op)
        return plan[::-1]

    while open_:
        if time.monotonic() > deadline and stops():
            return out_of_time()
        _, _, _, parent, state, op = heapq.heappop(open_)
        if op >= 0:
            state = tuple(successor(list(parent), op))
            if state in parents:
                continue
            parents[state] = (parent, op)
        else:
            state = parent
        if state in closed:
            continue
        closed.add(state)
        if all(state[v] == x for v, x in goal):
            return path(state), True
        try:
            h, preferred = ff(task, list(state), goal_facts, ops, deadline if stops() else _INF)
        except OutOfTime:
            return out_of_time()
        if h == _INF:
            continue
        if h < best[0]:
            best = (h, state)
        if state != start and h < best_moved[0]:
            best_moved = (h, state)
        preferred_set = set(preferred)
        seen = set()
        for i, (action, args, pre, _) in enumerate(ops):
            key = (action, *args)
            if key in seen or not all(state[v] == x for v, x in pre):
                continue
            seen.add(key)  # the engine drops operators whose grounded name repeats
            heapq.heappush(open_, (h, i not in preferred_set, next(tie), state, None, i))
    return [], False  # no winning plan exists from here
