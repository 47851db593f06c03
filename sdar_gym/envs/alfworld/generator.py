"""Offline ALFWorld game generator: solvable ``game.tw-pddl`` files from the alfworld wheel alone.

How a game is built
-------------------
ALFWorld's released games come from ALFRED's 3D scenes. The wheel ships enough of those scenes to
rebuild games without the simulator: ``gen/layouts/FloorPlan<N>-objects.json`` lists the object
types present in scene N, and ``FloorPlan<N>-openable.json`` lists its fixed receptacles with the
grid point the agent stands on to reach each one. For game ``index`` of a split and seed, this
module takes, from a random stream keyed by ``(split, seed, index)`` only:

1. the task type (round robin over the requested types, so any six consecutive games cover all six);
2. the next distinct task of that type, ``(scene, object, goal receptacle or lamp)``, from a
   seeded order of every task the split's scenes can host (:func:`tasks_of`; the room kind must
   allow the task, ``constants.GOALS_VALID``, and hold its microwave, fridge, sink basin or lamp).
   Train and valid_seen use ALFRED's train scenes, valid_unseen its test scenes, so valid_unseen
   shares no scene with train; a split has as many games of a type as it has such tasks;
3. the whole room: every fixed receptacle of the scene, as in the released games;
4. where everything starts, with the released valid_seen games' statistics: each of the scene's
   object types is present with probability :data:`PRESENT_SHARE`, in 1 to 4 instances
   (:data:`INSTANCE_WEIGHTS`), each in a receptacle that can hold it
   (``constants.VAL_RECEPTACLE_OBJECTS``), targets never in the goal receptacle or the appliance;
   the scene's lamps stand on tables, and its :data:`FIXTURES` (houseplants, televisions, ...) on
   their usual receptacles;
5. the goal sentence: one of the goal library's templates, weighted as the released games use them.

The PDDL problem lists the room's receptacles and their locations, the objects (named
``Type_bar_<n>``, sink basins ``Sink_bar_<n>_bar_SinkBasin``, so ALFWorld's demangler shows
"apple 1", "sinkbasin 1"), the ``canContain`` facts between present types, and the goal from
``gen/goal_library.py`` (``#`` read as ``-``). Domain and grammar are the wheel's
``data/alfred.pddl`` and ``data/alfred.twl2`` with this project's edits to the released games'
command language (:func:`released_domain`, :func:`released_grammar`: "put apple 1 in/on
countertop 1", "You arrive at loc 3."), and the grammar's ``UNKNOWN GOAL`` replaced by the
sentence, as ALFWorld's ``add_task_to_grammar`` does.

Fast Downward's optimal search takes seconds to minutes on whole ALFRED rooms, so the generator
does not plan: :func:`walkthrough` builds a winning command sequence from the drawn state, and the
game file is loaded and the walkthrough replayed command by command on the fast engine, which plays
game files exactly as TextWorld does (``verify="textworld"`` replays in TextWorld itself, 3.5x the
CPU time, and writes the same files). Only a game whose replay wins is kept, with the replayed
commands stored as its ``walkthrough``; otherwise the same stream draws the room again. Each trial is written into a hidden staging folder and renamed into place, so a
killed run never leaves a half-written trial where :func:`~sdar_gym.envs.alfworld.data.find_games`
looks. The same ``(split, seed)`` always writes byte-identical files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from sdar_gym.core import ConfigError, DataError
from sdar_gym.envs.alfworld.data import INCOMPLETE, SPLITS, TASK_TYPES, canonical_task_type
from sdar_gym.envs.alfworld.protocol import EngineState
from sdar_gym.io import atomic_dir, atomic_write_json
from sdar_gym.processes import exit_with_parent

GENERATOR_VERSION = 2
"""Bumped whenever the same seed would give different games; a default set of another version is rebuilt."""

DEFAULT_SIZES: dict[str, int] = {"train": 200, "valid_seen": 50, "valid_unseen": 50}
"""Games per split in the default set built on first use. Each game costs 0.64 CPU seconds (verified
on the fast engine; 2.26 replayed in TextWorld), so 300 games take about 2 minutes on 2 idle cores (timed: 86 s);
on the shared 2-core machine of the measurement (load average 9) 2 workers made 0.50 games/s,
10 minutes (``benchmarks/results/alfworld_generator_speed.json``)."""

DEFAULT_SEED = 0
"""Seed of the default set."""

MAX_ATTEMPTS = 50
"""Draws of a room per game before giving up (a draw fails when its walkthrough does not win)."""

PRESENT_SHARE = 0.94
"""Share of a scene's object types a room holds; measured on the released valid_seen games
(94% of the scene's holdable types appear, 75% at least)."""

INSTANCE_WEIGHTS = (1541, 937, 698, 51)
"""How many instances of a present object type a room holds (1, 2, 3 or 4), weighted by how often
the released valid_seen games hold that many (counted over every type of every game)."""

TEMPLATE_WEIGHTS: dict[str, tuple[int, ...]] = {
    "look_at_obj_in_light": (13, 16),
    "pick_and_place_simple": (20, 26),
    "pick_clean_then_place_in_recep": (18, 15),
    "pick_cool_then_place_in_recep": (16, 11),
    "pick_heat_then_place_in_recep": (12, 8),
    "pick_two_obj_and_place": (21, 11),
}
"""How often each of ``goal_library.gdict[type]["templates"]`` states the task in the released
valid_seen games (trials counted per template, in the goal library's order)."""

FIXTURES: dict[str, tuple[str, ...]] = {
    "HousePlant": ("CounterTop", "DiningTable", "SideTable", "CoffeeTable", "Shelf", "Dresser", "Desk", "TVStand"),
    "Television": ("TVStand", "Dresser", "CoffeeTable"),
    "Mirror": ("CounterTop", "Dresser"),
    "Window": ("CounterTop", "Shelf", "Dresser"),
}
"""Objects that cannot be picked up but stand on a receptacle (so observations and ``examine``
show them), and the receptacle types they stand on in the released valid_seen games."""

STAGING = ".staging"
"""Folder under ``json_2.1.1/`` where trials are written before they are renamed into place."""

_SPLIT_SCENES = {"train": "train", "valid_seen": "train", "valid_unseen": "test"}
"""Which ALFRED scene set each split draws from (valid_seen: seen scenes, new games)."""

_APPLIANCE = {
    "pick_clean_then_place_in_recep": "SinkBasin",
    "pick_heat_then_place_in_recep": "Microwave",
    "pick_cool_then_place_in_recep": "Fridge",
}
"""The receptacle type each state-changing task needs in its scene."""

_ACTION_PROPERTY = {
    "pick_clean_then_place_in_recep": "Cleanable",
    "pick_heat_then_place_in_recep": "Heatable",
    "pick_cool_then_place_in_recep": "Coolable",
}
"""The ``constants.VAL_ACTION_OBJECTS`` class the target object must belong to."""

_OBJECT_FACTS = {"Cleanable": "cleanable", "Heatable": "heatable", "Coolable": "coolable", "Sliceable": "sliceable"}
"""PDDL facts stating an object's abilities, keyed by ``constants.VAL_ACTION_OBJECTS`` class."""

_LAMP_TYPES = ("DeskLamp", "FloorLamp")
_LAMP_STANDS = ("Desk", "SideTable", "Dresser", "Shelf", "CoffeeTable", "DiningTable", "TVStand", "Cart")
"""Receptacle types a lamp stands on (the domain toggles only objects that are in a receptacle)."""


# ---------------------------------------------------------------------------------------------
# The wheel's files
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """The parts of an ALFRED floor plan a text game needs."""

    number: int
    kind: str
    """Kitchen, LivingRoom, Bedroom or Bathroom."""
    receptacles: tuple[tuple[str, str, tuple[float, ...]], ...]
    """``(receptacle type, id prefix, agent point)`` per fixed receptacle, in layout order."""
    object_types: tuple[str, ...]
    """Object types present that a receptacle of this scene can hold."""
    lamps: tuple[str, ...]
    """Lamp types present that can stand on a receptacle of this scene."""
    fixtures: tuple[str, ...]
    """:data:`FIXTURES` present that can stand on a receptacle of this scene."""

    @property
    def receptacle_types(self) -> set[str]:
        return {r[0] for r in self.receptacles}


@dataclass(frozen=True)
class Library:
    """Everything read from the alfworld wheel, loaded once per process."""

    domain: str
    grammar: str
    goals: Mapping[str, Mapping]
    """``goal_library.gdict``: PDDL goal and sentence templates per task type."""
    can_contain: Mapping[str, frozenset[str]]
    """Receptacle type -> object types it can hold (movable receptacles count as objects)."""
    abilities: Mapping[str, frozenset[str]]
    """``VAL_ACTION_OBJECTS``: Cleanable/Heatable/Coolable/... -> object types."""
    movable_receptacles: frozenset[str]
    openable: frozenset[str]
    scene_sets: Mapping[str, tuple[int, ...]]
    """``train``/``test`` -> ALFRED scene numbers."""
    valid_kinds: Mapping[str, frozenset[str]]
    """Task type -> room kinds it is posed in (``GOALS_VALID``)."""
    scenes: Mapping[int, Scene] = field(repr=False)


@cache
def library() -> Library:
    """Read the domain, grammar, constants, goal library and layouts from the installed wheel."""
    import alfworld
    import alfworld.gen.constants as C
    import alfworld.gen.goal_library as goal_library

    root = Path(alfworld.__file__).parent
    movable = frozenset(C.MOVABLE_RECEPTACLES)
    can_contain = {
        r: frozenset(o for o in objs if not o.endswith("Sliced"))
        for r, objs in C.VAL_RECEPTACLE_OBJECTS.items()
        if r not in movable
    }
    kinds = {n: kind for kind, numbers in C.SCENE_TYPE.items() for n in numbers}
    scenes = {}
    for n in sorted(set(C.TRAIN_SCENE_NUMBERS) | set(C.TEST_SCENE_NUMBERS)):
        scene = _read_scene(root / "gen" / "layouts", n, kinds[n], can_contain)
        if scene is not None:
            scenes[n] = scene
    return Library(
        domain=released_domain((root / "data" / "alfred.pddl").read_text(encoding="utf-8")),
        grammar=released_grammar((root / "data" / "alfred.twl2").read_text(encoding="utf-8")),
        goals=goal_library.gdict,
        can_contain=can_contain,
        abilities={k: frozenset(v) for k, v in C.VAL_ACTION_OBJECTS.items()},
        movable_receptacles=movable,
        openable=frozenset(C.OPENABLE_CLASS_SET),
        scene_sets={
            "train": tuple(n for n in C.TRAIN_SCENE_NUMBERS if n in scenes),
            "test": tuple(n for n in C.TEST_SCENE_NUMBERS if n in scenes),
        },
        valid_kinds={k: frozenset(v) for k, v in C.GOALS_VALID.items()},
        scenes=scenes,
    )


def _edit(text: str, old: str, new: str, what: str) -> str:
    if text.count(old) < 1:
        raise DataError(f"the installed alfworld wheel's {what} lacks {old!r}; this generator expects alfworld 0.3.x")
    return text.replace(old, new)


def released_grammar(wheel: str) -> str:
    """The wheel's ``alfred.twl2`` changed to the command language of the released 2.1.1 games.

    Three edits: placing reads "put X in/on Y" (the wheel says "move X to Y"), arriving names the
    destination through the action's ``lend`` variable, and there is no ``help`` command.
    """
    text = _edit(wheel, '"move {o} to {r}"', '"put {o} in/on {r}"', "grammar")
    text = _edit(text, "You move the {o.name} to the {r.name}.", "You put the {o.name} in/on the {r.name}.", "grammar")
    text = _edit(text, "You arrive at {r.name}.", "You arrive at {lend.name}.", "grammar")
    start = text.find("\n\naction help {")
    if start < 0:
        raise DataError("the installed alfworld wheel's grammar has no help action to drop")
    end = text.index('""";\n}', start) + len('""";\n}')
    return text[:start] + text[end:]


def released_domain(wheel: str) -> str:
    """The wheel's ``alfred.pddl`` as the released games use it: cleaning works in a sink as well
    as a sink basin, and there is no ``help`` action."""
    text = _edit(wheel, ";(receptacleType ?r SinkType)", "(receptacleType ?r SinkType)", "domain")
    start = text.find("\n(:action help")
    if start < 0:
        raise DataError("the installed alfworld wheel's domain has no help action to drop")
    end = text.index("\n)\n", text.index(":effect", start)) + len("\n)\n")
    return text[:start] + text[end:]


def _read_scene(layouts: Path, number: int, kind: str, can_contain: Mapping[str, frozenset[str]]) -> Scene | None:
    objects_file = layouts / f"FloorPlan{number}-objects.json"
    openable_file = layouts / f"FloorPlan{number}-openable.json"
    if not (objects_file.exists() and openable_file.exists()):
        return None
    present = set(json.loads(objects_file.read_text(encoding="utf-8")))
    receptacles = []
    for key, point in json.loads(openable_file.read_text(encoding="utf-8")).items():
        parts = key.split("|")
        # Basins are sub-objects: "Sink|x|y|z|SinkBasin" is a SinkBasin named after its sink.
        rtype, prefix = (
            (parts[-1], f"{parts[0]}_bar_{{}}_bar_{parts[-1]}")
            if len(parts) > 4
            else (parts[0], f"{parts[0]}_bar_{{}}")
        )
        if rtype in can_contain:
            receptacles.append((rtype, prefix, tuple(point)))
    if not receptacles:
        return None
    holdable = set().union(*(can_contain[r] for r, _, _ in receptacles))
    rtypes = {r for r, _, _ in receptacles}
    return Scene(
        number=number,
        kind=kind,
        receptacles=tuple(receptacles),
        object_types=tuple(sorted((present & holdable) - set(can_contain))),
        lamps=tuple(t for t in _LAMP_TYPES if t in present and rtypes & set(_LAMP_STANDS)),
        fixtures=tuple(t for t, stands in FIXTURES.items() if t in present and rtypes & set(stands)),
    )


# ---------------------------------------------------------------------------------------------
# Drawing one game
# ---------------------------------------------------------------------------------------------


@dataclass
class Task:
    """A drawn task and its initial state, before it is written as PDDL."""

    task_type: str
    scene: Scene
    object_target: str
    parent_target: str
    """Goal receptacle type ("" for look_at_obj_in_light)."""
    toggle_target: str
    """Lamp type for look_at_obj_in_light, else ""."""
    placements: list[tuple[str, int]]
    """``(object type, receptacle index in scene.receptacles)`` per object instance, lamps and
    fixtures included; the targets come first."""
    sentence: str
    """The task as the game states it, e.g. ``put a hot apple in countertop``."""


def _candidates(task_type: str, scene: Scene, lib: Library) -> list[tuple[str, str]]:
    """``(object, goal receptacle or lamp)`` choices of ``task_type`` in ``scene``."""
    appliance = _APPLIANCE.get(task_type)
    if appliance and appliance not in scene.receptacle_types:
        return []
    objects = scene.object_types
    if task_type in _ACTION_PROPERTY:
        objects = tuple(o for o in objects if o in lib.abilities[_ACTION_PROPERTY[task_type]])
    look = task_type == "look_at_obj_in_light"
    goals = scene.lamps if look else tuple(sorted(scene.receptacle_types - {appliance}))
    out = []
    for obj in objects:
        for goal in goals:
            if not look and obj not in lib.can_contain[goal]:
                continue
            if _starts(scene, obj, goal, appliance, lib):
                out.append((obj, goal))
    return out


def _starts(scene: Scene, obj: str, goal: str, appliance: str | None, lib: Library) -> list[int]:
    """Receptacles a target may start in: any that can hold it but the goal and the appliance."""
    return [
        i for i, (rtype, _, _) in enumerate(scene.receptacles) if obj in lib.can_contain[rtype] and rtype not in (goal, appliance)
    ]


@cache
def tasks_of(task_type: str, split: str) -> tuple[tuple[int, str, str], ...]:
    """Every distinct ``(scene, object, goal receptacle or lamp)`` task of ``task_type`` the scenes
    of ``split`` can host, in ALFRED's scene order: how many games of that type a split allows."""
    lib = library()
    return tuple(
        (n, obj, goal)
        for n in lib.scene_sets[_SPLIT_SCENES[split]]
        if lib.scenes[n].kind in lib.valid_kinds[task_type]
        for obj, goal in _candidates(task_type, lib.scenes[n], lib)
    )


@cache
def _task_order(task_type: str, split: str, seed: int) -> tuple[tuple[int, str, str], ...]:
    """The split's tasks of one type in the order games of ``(split, seed)`` take them."""
    tasks = list(tasks_of(task_type, split))
    random.Random(f"sdar-gym/alfworld/v{GENERATOR_VERSION}/{split}/{seed}/{task_type}").shuffle(tasks)
    return tuple(tasks)


def capacity(split: str, task_types: tuple[str, ...]) -> int:
    """The most games :func:`generate_games` writes for ``split`` with ``task_types`` (round robin),
    each a distinct task: game ``i`` is task ``i // len(task_types)`` of its type."""
    k = len(task_types)
    return min(len(tasks_of(t, split)) * k + j for j, t in enumerate(task_types))


def draw_task(task_type: str, split: str, seed: int, index: int, n_types: int, rng: random.Random) -> Task:
    """Game ``index``'s task (the next distinct task of its type) in the whole room of its scene,
    with every object placed."""
    lib = library()
    order = _task_order(task_type, split, seed)
    if index // n_types >= len(order):
        raise DataError(f"{split} scenes allow only {len(order)} distinct {task_type} games")
    number, obj, goal = order[index // n_types]
    scene = lib.scenes[number]
    look = task_type == "look_at_obj_in_light"
    appliance = _APPLIANCE.get(task_type)
    kinds = [r[0] for r in scene.receptacles]
    starts = _starts(scene, obj, goal, appliance, lib)

    lowest = 2 if task_type == "pick_two_obj_and_place" else 1
    counts = rng.choices(range(1, len(INSTANCE_WEIGHTS) + 1), INSTANCE_WEIGHTS, k=1 + len(scene.object_types))
    placements = [(obj, rng.choice(starts)) for _ in range(max(lowest, counts[0]))]
    for dtype, count in zip(scene.object_types, counts[1:]):
        if dtype == obj or rng.random() >= PRESENT_SHARE:
            continue
        holders = [i for i, k in enumerate(kinds) if dtype in lib.can_contain[k]]
        placements += [(dtype, rng.choice(holders)) for _ in range(count)]
    stands = [i for i, k in enumerate(kinds) if k in _LAMP_STANDS]
    lamps = [goal] if look else [lamp for lamp in scene.lamps if rng.random() < PRESENT_SHARE]
    placements += [(lamp, rng.choice(stands)) for lamp in lamps]
    for fixture in scene.fixtures:
        holders = [i for i, k in enumerate(kinds) if k in FIXTURES[fixture]]
        placements.append((fixture, rng.choice(holders)))

    parent, toggle = ("", goal) if look else (goal, "")
    template = rng.choices(lib.goals[task_type]["templates"], TEMPLATE_WEIGHTS[task_type])[0]
    sentence = template.format(obj=obj.lower(), recep=parent.lower(), toggle=toggle.lower(), mrecep="")
    return Task(task_type, scene, obj, parent, toggle, placements, sentence)


def _entities(task: Task) -> tuple[list, list, dict, str]:
    """PDDL ids: ``(type, id, location)`` per receptacle, ``(type, id, receptacle)`` per object,
    agent point -> location, and the agent's start location."""
    scene = task.scene
    points = sorted({p for _, _, p in scene.receptacles})
    location = {p: f"loc_bar_{i}" for i, p in enumerate(points)}
    receptacles = [(rtype, prefix.format(i + 1), location[p]) for i, (rtype, prefix, p) in enumerate(scene.receptacles)]
    offset = len(receptacles) + 1
    objects = [(otype, f"{otype}_bar_{offset + j}", receptacles[r]) for j, (otype, r) in enumerate(task.placements)]
    return receptacles, objects, location, f"loc_bar_{len(points)}"


def render_problem(task: Task, name: str, lib: Library) -> str:
    """The PDDL problem of a task: objects, initial facts, and the goal library's goal."""
    receptacles, objects, location, start = _entities(task)

    rtypes = sorted({r[0] for r in receptacles})
    otypes = sorted({o[0] for o in objects})
    decl = ["agent1 - agent"]
    decl += [f"{t}Type - otype" for t in otypes]
    decl += [f"{t}Type - rtype" for t in rtypes]
    decl += [f"{rid} - receptacle" for _, rid, _ in receptacles]
    decl += [f"{oid} - object" for _, oid, _ in objects]
    decl += [f"{loc} - location" for loc in [*location.values(), start]]

    init = [f"(atLocation agent1 {start})"]
    for rtype, rid, loc in receptacles:
        init.append(f"(receptacleType {rid} {rtype}Type)")
        init.append(f"(receptacleAtLocation {rid} {loc})")
        if rtype in lib.openable:
            init.append(f"(openable {rid})")
    init += [f"(canContain {r}Type {o}Type)" for r in rtypes for o in otypes if o in lib.can_contain[r]]
    for otype, oid, (_, rid, loc) in objects:
        init += [f"(objectType {oid} {otype}Type)", f"(inReceptacle {oid} {rid})", f"(objectAtLocation {oid} {loc})"]
        if otype in _LAMP_TYPES:
            init.append(f"(toggleable {oid})")
        if otype in _LAMP_TYPES or otype in FIXTURES:
            continue
        init.append(f"(pickupable {oid})")
        if otype in lib.movable_receptacles:
            init.append(f"(isReceptacleObject {oid})")
        init += [f"({fact} {oid})" for ability, fact in _OBJECT_FACTS.items() if otype in lib.abilities[ability]]

    goal = lib.goals[task.task_type]["pddl"].replace("#", "-")
    goal = goal.format(obj=task.object_target, recep=task.parent_target, toggle=task.toggle_target, mrecep="")
    sep = "\n        "
    return (
        f"(define (problem {name})\n(:domain alfred)\n(:objects{sep}{sep.join(decl)}\n)\n"
        f"(:init{sep}{sep.join(init)}\n)\n{goal.strip()}\n"
    )


# ---------------------------------------------------------------------------------------------
# Checking a game: a walkthrough built from the drawn state, replayed on an engine
# ---------------------------------------------------------------------------------------------

_VERBS = {
    "pick_clean_then_place_in_recep": "clean",
    "pick_heat_then_place_in_recep": "heat",
    "pick_cool_then_place_in_recep": "cool",
}
"""The command that changes the target's state in its appliance."""


def walkthrough(task: Task) -> list[tuple[str, ...]]:
    """A winning command sequence as ``(verb, PDDL id, ...)`` steps, built from the drawn state.

    Full ALFRED rooms take Fast Downward's optimal search seconds to minutes, so the generator does
    not plan: it knows where each target starts, walks there, opens what is closed, takes it, uses
    the appliance or lamp, and puts it in the first goal receptacle. Replaying these steps on an
    engine that plays the file as TextWorld does (:class:`_Verifier`) is the proof that the game is solvable.
    """
    lib = library()
    receptacles, objects, _, _ = _entities(task)
    first = {rtype: rid for rtype, rid, _ in reversed(receptacles)}
    kind = {rid: rtype for rtype, rid, _ in receptacles}
    opened: set[str] = set()
    steps: list[tuple[str, ...]] = []

    def visit(rid: str, open_it: bool = True) -> None:
        steps.append(("go to", rid))
        if open_it and kind[rid] in lib.openable and rid not in opened:
            steps.append(("open", rid))
            opened.add(rid)

    n = 2 if task.task_type == "pick_two_obj_and_place" else 1
    for _, oid, (_, rid, _) in objects[:n]:
        visit(rid)
        steps.append(("take", oid, rid))
        if task.task_type in _VERBS:
            appliance = first[_APPLIANCE[task.task_type]]
            visit(appliance, open_it=False)
            steps.append((_VERBS[task.task_type], oid, appliance))
        if task.toggle_target:
            lamp, (_, stand, _) = next((oid, r) for otype, oid, r in objects if otype == task.toggle_target)
            visit(stand, open_it=False)
            steps.append(("use", lamp))
        else:
            visit(first[task.parent_target])
            steps.append(("put", oid, first[task.parent_target]))
    return steps


_COMMANDS = {
    "go to": "go to {0}",
    "open": "open {0}",
    "take": "take {0} from {1}",
    "put": "put {0} in/on {1}",
    "use": "use {0}",
    **{verb: verb + " {0} with {1}" for verb in _VERBS.values()},
}


VERIFIERS = ("fast", "textworld")
"""Engines a candidate game's walkthrough can be replayed on. ``fast`` (the default) is the fast
engine, which plays game files exactly as TextWorld does (``sdar-gym check alfworld-equivalence``),
at 0.64 CPU seconds a game against TextWorld's 2.26 (load, reset and replay), and whose compiled
game is then cached for the game's first play;
``textworld`` replays in TextWorld itself, as ALFWorldEnv's ``engine="textworld"`` does."""


class _Verifier:
    """Replays candidate games' walkthroughs on one engine, reusing it within a process."""

    def __init__(self, engine: str = "fast") -> None:
        self.engine_name = engine
        self._env = None
        self.compiled = None
        """The fast engine's compiled form of the last game it verified (cached once the game is written)."""
        self.last_failure = ""
        """Why the last game was rejected (kept for the error raised when every draw fails)."""

    def solve(self, game_file: Path, task: Task) -> list[str] | None:
        """The commands of :func:`walkthrough` if replaying them wins, else None.

        A ``go to`` that is not admissible because the agent already stands there is left out.
        """
        self.compiled = None
        try:
            names, state, step = self._start(game_file)
            commands = [_COMMANDS[verb].format(*(names[i.lower()] for i in ids)) for verb, *ids in walkthrough(task)]
            if state.won:
                return self._reject("the goal already holds at the start")
            played = []
            for command in commands:
                if command not in state.admissible:
                    if command.startswith("go to "):
                        continue
                    return self._reject(f"walkthrough command {command!r} is not admissible")
                state = step(command)
                played.append(command)
        except Exception as e:  # TextWorld and the translator raise many types; the draw is redrawn
            self._env = self.compiled = None
            return self._reject(f"{self.engine_name} engine failed: {type(e).__name__}: {e}")
        if not state.won:
            self.compiled = None
            return self._reject("replaying the walkthrough does not win")
        return played

    def _start(self, game_file: Path):
        """(PDDL id → shown name, the state after reset, a step function) for ``game_file``."""
        if self.engine_name == "fast":
            from sdar_gym.envs.alfworld.fast import FastEngine, compile_game

            self.compiled = compile_game(game_file)
            engine = FastEngine(cache_dir=None)
            engine.load(game_file, self.compiled)
            return engine.names, engine.reset(), engine.step
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler

        if self._env is None:
            infos = textworld.EnvInfos(won=True, admissible_commands=True)
            self._env = textworld.start(str(game_file), request_infos=infos, wrappers=[AlfredDemangler(shuffle=False)])
        else:
            self._env.load(str(game_file))
        names = {info.id: info.name for info in self._env._entity_infos.values()}  # ids lower-cased

        def state(raw) -> EngineState:
            return EngineState(raw["feedback"], raw["admissible_commands"], raw["won"])

        return names, state(self._env.reset()), lambda command: state(self._env.step(command)[0])

    def _reject(self, why: str) -> None:
        self.last_failure = why
        return None


@cache
def _verifier(engine: str = "fast") -> _Verifier:
    """This process's verifier on ``engine``."""
    return _Verifier(engine)


# ---------------------------------------------------------------------------------------------
# Writing games
# ---------------------------------------------------------------------------------------------


def _dumps(obj: dict) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def make_game(root: Path, split: str, seed: int, index: int, task_types: tuple[str, ...], verify: str = "fast") -> Path:
    """Draw, verify (replaying the walkthrough on the :data:`VERIFIERS` engine ``verify``) and write
    game ``index`` of ``(split, seed)`` under ``root`` (a ``json_2.1.1`` folder); return its trial folder."""
    lib = library()
    rng = random.Random(f"sdar-gym/alfworld/v{GENERATOR_VERSION}/{split}/{seed}/{index}")
    task_type = task_types[index % len(task_types)]
    trial = f"trial_{split}-s{seed}-{index:06d}"
    root = Path(root)
    done = _written(root, split, trial, {"version": GENERATOR_VERSION, "split": split, "seed": seed, "index": index})
    if done is not None:
        return done
    staging = root / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    for _ in range(MAX_ATTEMPTS):
        task = draw_task(task_type, split, seed, index, len(task_types), rng)
        folder = f"{task_type}-{task.object_target}-None-{task.parent_target or task.toggle_target}-{task.scene.number}"
        game = {
            "pddl_domain": lib.domain,
            "grammar": lib.grammar.replace("UNKNOWN GOAL", task.sentence),
            "pddl_problem": render_problem(task, f"plan_{trial}", lib),
            "solvable": True,
        }
        tmp = Path(tempfile.mkdtemp(prefix=f"{trial}.", dir=staging))
        try:
            _write(tmp / "game.tw-pddl", _dumps(game))
            verifier = _verifier(verify)
            plan = verifier.solve(tmp / "game.tw-pddl", task)
            if plan is None:
                continue
            _write(tmp / "game.tw-pddl", _dumps({**game, "walkthrough": plan}))
            if verifier.compiled is not None:  # the walkthrough changes no rule: the compiled game stands
                from sdar_gym.envs.alfworld.fast.compile import default_cache_dir, store_compiled

                store_compiled(tmp / "game.tw-pddl", verifier.compiled, default_cache_dir())
            traj = {
                "task_id": trial,
                "task_type": task_type,
                "pddl_params": {
                    "object_target": task.object_target,
                    "parent_target": task.parent_target,
                    "toggle_target": task.toggle_target,
                    "mrecep_target": "",
                    "object_sliced": False,
                },
                "scene": {"floor_plan": f"FloorPlan{task.scene.number}", "scene_num": task.scene.number},
                "task_desc": task.sentence,
                "generator": {"version": GENERATOR_VERSION, "split": split, "seed": seed, "index": index},
            }
            _write(tmp / "traj_data.json", _dumps(traj))
            tmp.chmod(0o755)  # mkdtemp makes it private; a game folder is ordinary data
            final = root / split / folder / trial
            _move_into_place(tmp, final)
            return final
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    raise DataError(
        f"could not draw a solvable {task_type} game for {split} seed {seed} index {index} "
        f"in {MAX_ATTEMPTS} tries; last: {_verifier(verify).last_failure}"
    )


def _written(root: Path, split: str, trial: str, generator: dict) -> Path | None:
    """The trial folder if an earlier run already wrote this very game (so a cut-short run resumes)."""
    for traj in (root / split).glob(f"*/{trial}/traj_data.json"):
        with contextlib.suppress(OSError, ValueError):
            if json.loads(traj.read_text(encoding="utf-8")).get("generator") == generator:
                return traj.parent
    return None


def _move_into_place(tmp: Path, final: Path) -> None:
    """Rename a finished trial folder to ``final`` (replacing an older copy of it)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        old = tmp.with_name(tmp.name + ".old")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def default_workers() -> int:
    """Worker processes used unless told otherwise: the CPU count, at most 4 (1 inside a daemonic
    process, e.g. an env built in a multiprocessing pool, which may not have children)."""
    import multiprocessing

    if multiprocessing.current_process().daemon:
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _check_args(split: str, n: int, task_types: list[str] | None) -> tuple[str, ...]:
    if split not in SPLITS:
        raise ConfigError(f"unknown ALFWorld split {split!r}; expected one of {', '.join(SPLITS)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"the number of games n must be a positive integer, got {n!r}")
    if not task_types:
        return tuple(TASK_TYPES)
    return tuple(dict.fromkeys(canonical_task_type(t) for t in task_types))


def generate_games(
    out: Path,
    split: str,
    n: int,
    seed: int,
    task_types: list[str] | None = None,
    progress: bool = True,
    workers: int = 1,
    verify: str = "fast",
) -> list[Path]:
    """Write ``n`` verified games of ``split`` under ``out/json_2.1.1/``; return their trial folders.

    Game ``i`` depends only on ``(split, seed, i)`` and the task types, never on ``n`` or ``workers``.
    """
    types = _check_args(split, n, task_types)
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if verify not in VERIFIERS:
        raise ConfigError(f"unknown verifier {verify!r}; expected one of {', '.join(VERIFIERS)}")
    if n > capacity(split, types):
        raise DataError(
            f"the {split} scenes allow only {capacity(split, types)} distinct games of task types "
            f"{', '.join(types)} ({', '.join(f'{t}: {len(tasks_of(t, split))}' for t in types)}); asked for {n}"
        )
    root = Path(out) / "json_2.1.1"
    marker = root / split / INCOMPLETE
    atomic_write_json(marker, {"version": GENERATOR_VERSION, "seed": seed, "n": n, "task_types": list(types)})
    jobs = [(split, seed, i, types) for i in range(n)]
    paths = _make_all(root, jobs, workers, f"ALFWorld {split} games", progress, verify)
    marker.unlink()
    with contextlib.suppress(OSError):
        (root / STAGING).rmdir()  # kept while another run still writes there
    return paths


def _init_worker(parent: int) -> None:
    """Set up a pool worker: read the wheel once, and exit as soon as ``parent`` is gone, so a run
    killed with SIGKILL (which cannot shut its pool down) leaves no worker behind."""
    exit_with_parent(parent)
    library()


def _make_all(root: Path, jobs: list[tuple], workers: int, title: str, progress: bool, verify: str = "fast") -> list[Path]:
    """:func:`make_game` for each job, in order, in ``workers`` processes, with a progress bar."""
    from sdar_gym.progress import track

    with contextlib.ExitStack() as stack:
        if workers > 1 and len(jobs) > 1:
            pool = stack.enter_context(
                ProcessPoolExecutor(max_workers=min(workers, len(jobs)), initializer=_init_worker, initargs=(os.getpid(),))
            )
            stack.callback(pool.shutdown, cancel_futures=True)  # Ctrl-C drops the queued games
            # Submitting forks every worker now, before the progress bar starts its thread.
            pending = [pool.submit(make_game, root, *job, verify=verify) for job in jobs]
            results = (future.result() for future in pending)
        else:
            results = (make_game(root, *job, verify=verify) for job in jobs)
        return list(track(results, title, total=len(jobs), enabled=progress))


# ---------------------------------------------------------------------------------------------
# The default set built on first use
# ---------------------------------------------------------------------------------------------

MANIFEST = "generator.json"
"""File in ``json_2.1.1/`` describing how a generated set was made; its presence marks it complete."""


def ensure_default_games(
    data_dir: Path,
    sizes: Mapping[str, int] | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Generate the default game set under ``data_dir`` unless it is already there; return ``data_dir``.

    The set holds ``sizes`` games per split (:data:`DEFAULT_SIZES` unless given; tests pass small
    sizes) from seed :data:`DEFAULT_SEED`. It is built in a temporary folder and renamed to
    ``data_dir/json_2.1.1`` in one step, under a lock file, so concurrent first uses build it once
    and a killed build leaves nothing the loader reads. ``workers`` defaults to the CPU count (at most 4).
    """
    data_dir = Path(data_dir).expanduser()
    sizes = dict(DEFAULT_SIZES if sizes is None else sizes)
    if not sizes:
        raise ConfigError("sizes must name at least one split")
    for split, n in sizes.items():
        _check_args(split, n, None)
        if n > capacity(split, tuple(TASK_TYPES)):
            raise DataError(f"the {split} scenes allow only {capacity(split, tuple(TASK_TYPES))} distinct games; asked for {n}")
    manifest = {"version": GENERATOR_VERSION, "seed": DEFAULT_SEED, "sizes": sizes}
    if _manifest(data_dir) == manifest:
        return data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent first use waits here, then finds the set built
        found = _manifest(data_dir)
        if found == manifest:
            return data_dir
        if found is None and (data_dir / "json_2.1.1").exists():
            raise DataError(
                f"{data_dir / 'json_2.1.1'} holds games this generator did not make; pass it as data_dir or move it"
            )
        for stale in data_dir.glob(".json_2.1.1.*.tmp"):  # left by a killed build; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        workers = workers or default_workers()
        jobs = [(split, DEFAULT_SEED, i, tuple(TASK_TYPES)) for split, n in sizes.items() for i in range(n)]
        with atomic_dir(data_dir / "json_2.1.1") as tmp:
            _make_all(tmp, jobs, workers, "Generating the default ALFWorld games (first use only)", progress)
            shutil.rmtree(tmp / STAGING, ignore_errors=True)
            atomic_write_json(tmp / MANIFEST, manifest)
    return data_dir


def _manifest(data_dir: Path) -> dict | None:
    with contextlib.suppress(OSError, ValueError):
        return json.loads((data_dir / "json_2.1.1" / MANIFEST).read_text(encoding="utf-8"))
    return None


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


@dataclass
class GenerateALFWorldArgs:
    """Generate solvable ALFWorld games offline in the standard json_2.1.1 layout."""

    out: Path = Path("data/alfworld")
    """Folder that will hold json_2.1.1/<split>/ (pass it as data_dir, or set ALFWORLD_DATA to it)."""
    split: str = "train"
    """Split to write: train, valid_seen (train scenes, new games) or valid_unseen (held-out scenes)."""
    n: int = 500
    """Number of games."""
    seed: int = 0
    """Random seed; the same seed gives byte-identical games, and game i never depends on n."""
    task_types: list[str] | None = None
    """Task types to generate, long or short names (Pick, Look, Clean, Heat, Cool, Pick2); default all six."""
    workers: int | None = None
    """Worker processes (default: the CPU count, at most 4); the games do not depend on it."""
    verify: str = "fast"
    """Engine that replays each game's walkthrough before it is written: fast (plays game files
    exactly as TextWorld) or textworld (TextWorld itself, 3.5x the CPU time; the same files)."""

    def run(self) -> None:
        workers = self.workers or default_workers()
        start = time.perf_counter()
        paths = generate_games(
            self.out, self.split, self.n, self.seed, self.task_types, progress=True, workers=workers, verify=self.verify
        )
        elapsed = time.perf_counter() - start
        where = self.out / "json_2.1.1" / self.split
        print(f"wrote {len(paths)} {self.split} games to {where} ({len(paths) / elapsed:.2f} games/s)")


# ---------------------------------------------------------------------------------------------
# Comparing generated games with the released ones
# ---------------------------------------------------------------------------------------------

_ENTITY = re.compile(r"\b[a-z]+ \d+\b")


def action_template(action: str) -> str:
    """A command with its entity names blanked: ``put apple 1 in/on countertop 2`` -> ``put X in/on X``."""
    return _ENTITY.sub("X", action)


def survey(game_file: Path, steps: int, seed: int, engine=None) -> list:
    """The states of a walk through a game that prefers commands of templates it has not yet seen
    admissible (so a short walk meets most of the game's command language); for parity checks.

    Returns the :class:`~sdar_gym.envs.alfworld.engines.EngineState` after reset and after each step.
    """
    from sdar_gym.envs.alfworld.fast import FastEngine

    engine = engine or FastEngine()
    rng = random.Random(seed)
    engine.load(Path(game_file))
    states = [engine.reset()]
    tried: set[str] = set()
    for _ in range(steps):
        admissible = states[-1].admissible
        fresh = [a for a in admissible if action_template(a) not in tried and a not in ("look", "inventory")]
        command = rng.choice(fresh or admissible)
        tried.add(action_template(command))
        states.append(engine.step(command))
        if states[-1].won:
            break
    return states
