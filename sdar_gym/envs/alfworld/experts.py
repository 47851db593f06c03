"""ALFWorld experts: who answers ``env.expert_action()``.

* ``planner`` follows the PDDL planner, which knows where every object is. It is the reference
  for equivalence checks, but a poor teacher: about half its moves walk straight to a hidden
  object, which a policy that only sees the text cannot learn.
* ``explorer`` knows only what the text has shown. While the next object the plan needs (the one
  it takes or uses) has not appeared in any observation, it searches: it opens the receptacle it
  stands at if closed, else goes to the next unvisited receptacle that can hold that object
  (ALFRED's ``VAL_RECEPTACLE_OBJECTS``), in natural order: by kind, then by number (cabinet 2
  before cabinet 10), so that its next move follows from where it stands (cabinet 7 after cabinet
  6), which a short history shows, rather than from everything it visited. Any object
  of a kind the plan takes that it finds (in any order: a look plan may use the lamp first), outside the task's destination, it takes (the planner's choice
  of instance is arbitrary to an observer). Once the object has been seen it follows the planner.
  Its demonstrations are learnable from the prompt.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Protocol

_NEEDS = re.compile(r"^(?:take (.+?) from .+|use (.+))$")
_ARRIVE = re.compile(r"^go to (.+)$")
_TAKE = re.compile(r"^take (.+?) from (.+)$")
_PLACE = re.compile(r"^(?:move .+? to|put .+? (?:in|on|in/on)) (.+)$")


def _first(steps: list[str]) -> str | None:
    return steps[0] if steps else None


class Expert(Protocol):
    def reset(self, observation: str) -> None: ...

    def observe(self, action: str, observation: str) -> None: ...

    def action(self, admissible: list[str], plan: Callable[[], list[str]]) -> str | None:
        """The next command, given the admissible ones and ``plan()``: the planner's cached plan."""
        ...


class PlannerExpert:
    """The planner's next command."""

    def reset(self, observation: str) -> None:
        pass

    def observe(self, action: str, observation: str) -> None:
        pass

    def action(self, admissible: list[str], plan: Callable[[], list[str]]) -> str | None:
        return _first(plan())


@lru_cache(maxsize=None)
def _holders() -> dict[str, frozenset[str]]:
    """Object type (lower case, e.g. ``"soapbar"``) -> receptacle types that may hold it."""
    import alfworld.gen.constants as C

    holders: dict[str, set[str]] = {}
    for receptacle, objects in C.VAL_RECEPTACLE_OBJECTS.items():
        for obj in objects:
            holders.setdefault(obj.lower(), set()).add(receptacle.lower())
    return {obj: frozenset(r) for obj, r in holders.items()}


def _kind(name: str) -> str:
    """``"soapbar 1"`` -> ``"soapbar"``."""
    return name.rsplit(" ", 1)[0]


def _natural(name: str) -> tuple[str, int]:
    """``"cabinet 10"`` -> ``("cabinet", 10)``: sorts cabinet 2 before cabinet 10."""
    kind, _, number = name.rpartition(" ")
    return (kind, int(number)) if number.isdigit() else (name, 0)


class ExplorerExpert:
    """Searches for the object the plan needs next until the text has shown it; see the module doc."""

    def __init__(self) -> None:
        self.reset("")

    def reset(self, observation: str) -> None:
        self._seen = observation
        self._visited: set[str] = set()
        self._here: str | None = None
        self._target: str | None = None
        self._kinds: set[str] = set()
        self._destinations: set[str] = set()
        """Receptacle kinds the plan puts things in: objects there are done, not to be taken."""

    def observe(self, action: str, observation: str) -> None:
        self._seen += "\n" + observation
        arrived = _ARRIVE.match(action)
        if arrived and observation.startswith("You arrive at"):
            self._here = arrived.group(1)
            self._visited.add(self._here)

    def _shown(self, obj: str) -> bool:
        return re.search(rf"\b{re.escape(obj)}\b", self._seen) is not None

    def action(self, admissible: list[str], plan: Callable[[], list[str]]) -> str | None:
        if self._target is None or self._shown(self._target):
            steps = plan()
            needed = [m.group(1) or m.group(2) for m in map(_NEEDS.match, steps) if m]
            self._target = next((obj for obj in needed if not self._shown(obj)), None)
            # whatever the plan takes, in any order (a look plan may use the lamp first), is taken when found
            self._kinds = {_kind(m.group(1)) for m in map(_TAKE.match, steps) if m}
            self._destinations = {_kind(m.group(1)) for m in map(_PLACE.match, steps) if m}
            if self._target is None:
                return _first(steps)
            self._kinds.add(_kind(self._target))
        for a in admissible:
            if (m := _TAKE.match(a)) and _kind(m.group(1)) in self._kinds and _kind(m.group(2)) not in self._destinations:
                self._target = None  # holding it changes the plan: ask the planner again next time
                return a
        if self._here and f"open {self._here}" in admissible:
            return f"open {self._here}"
        holders = _holders().get(_kind(self._target), frozenset())
        unvisited = sorted((m.group(1) for m in map(_ARRIVE.match, admissible) if m and m.group(1) not in self._visited), key=_natural)
        for candidates in ([r for r in unvisited if _kind(r) in holders], unvisited):
            if candidates:
                return f"go to {candidates[0]}"
        return _first(plan())  # searched everywhere without seeing it: let the planner finish


EXPERTS: dict[str, Callable[[], Expert]] = {"planner": PlannerExpert, "explorer": ExplorerExpert}
"""Named ALFWorld experts, selected by ``ALFWorldEnv(expert=...)``."""
