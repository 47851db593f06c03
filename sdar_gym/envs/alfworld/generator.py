"""Offline ALFWorld game generator: solvable ``game.tw-pddl`` files from the alfworld wheel alone.

How a game is built
-------------------
ALFWorld's released games come from ALFRED's 3D scenes. The wheel ships enough of those scenes to
rebuild games without the simulator: ``gen/layouts/FloorPlan<N>-objects.json`` lists the object
types present in scene N, and ``FloorPlan<N>-openable.json`` lists its fixed receptacles with the
grid point the agent stands on to reach each one. For game ``index`` of a split and seed, this
module draws, from a random stream keyed by ``(split, seed, index)`` only:

1. the task type (round robin over the requested types, so any six consecutive games cover all six);
2. a scene of the split whose room kind allows that task (``constants.GOALS_VALID``) and which has
   what the task needs (a microwave, fridge, sink basin or lamp); train and valid_seen use ALFRED's
   train scenes, valid_unseen its test scenes, so valid_unseen shares no scene with train;
3. the target object and its goal receptacle (or lamp);
4. the room: 5 to 14 of the scene's receptacles, at most 6 of them openable, always keeping the
   goal receptacle, the appliance and a start for the target. (Fast Downward's optimal search, which
   is also the env's expert, grows steeply with receptacles: a whole ALFRED kitchen can take minutes
   to plan, while these rooms plan in well under a second.);
5. where everything starts: 1 to 3 targets (2 to 3 for pick_two), 1 to 5 distractor types of one or
   two objects each, and the lamp, each in a receptacle whose type can hold it
   (``constants.VAL_RECEPTACLE_OBJECTS``), targets never in the goal receptacle or the appliance.

The PDDL problem lists the room's receptacles and their locations, the objects (named
``Type_bar_<n>``, sink basins ``Sink_bar_<n>_bar_SinkBasin``, so ALFWorld's demangler shows
"apple 1", "sinkbasin 1"), the ``canContain`` facts between present types, and the goal from
``gen/goal_library.py`` (``#`` read as ``-``). The domain is ``data/alfred.pddl`` verbatim; the
grammar is ``data/alfred.twl2`` with its ``UNKNOWN GOAL`` replaced by one of the goal library's
sentence templates, as ALFWorld's ``add_task_to_grammar`` does. (So commands are the wheel's:
"move apple 1 to countertop 1", where the released games say "put apple 1 in/on countertop 1".)

Every game is then loaded with TextWorld exactly as :class:`~sdar_gym.envs.alfworld.env.ALFWorldEnv`
plays it, solved with the Fast Downward planner, and the plan replayed command by command; only a
game whose replay wins is kept, with the plan stored as its ``walkthrough``; otherwise the same
stream draws again. Each trial is written into a hidden staging folder and renamed into place, so a
killed run never leaves a half-written trial where :func:`~sdar_gym.envs.alfworld.data.find_games`
looks. The same ``(split, seed)`` always writes byte-identical files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import shutil
import tempfile
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from sdar_gym.core import ConfigError, DataError
from sdar_gym.envs.alfworld.data import SPLITS, TASK_TYPES, canonical_task_type
from sdar_gym.io import atomic_dir, atomic_write_json

GENERATOR_VERSION = 1
"""Bumped whenever the same seed would give different games; a default set of another version is rebuilt."""

DEFAULT_SIZES: dict[str, int] = {"train": 200, "valid_seen": 50, "valid_unseen": 50}
"""Games per split in the default set built on first use: about 0.7 CPU s a game, so ~2 minutes on
two idle cores (longer on a busy machine; benchmarks/results/alfworld_generator.json)."""

DEFAULT_SEED = 0
"""Seed of the default set."""

MAX_PLAN_STEPS = 40
"""Games whose plan is longer are redrawn, so the expert wins well within the env's 50 steps."""

MAX_ATTEMPTS = 50
"""Draws per game before giving up (a draw fails only when the planner finds no winning plan)."""

DISTRACTOR_TYPES = (1, 5)
"""Inclusive range of distractor object types per game (one or two objects each)."""

ROOM_SIZE = (5, 14)
"""Inclusive range of receptacles per game, drawn from the scene's (fewer when the scene has fewer)."""

MAX_OPENABLE = 6
"""Most openable receptacles (drawers, cabinets, ...) per game, needed ones included."""

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

_OBJECT_FACTS = {"Cleanable": "cleanable", "Heatable": "heatable", "Coolable": "coolable"}
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
        domain=(root / "data" / "alfred.pddl").read_text(encoding="utf-8"),
        grammar=(root / "data" / "alfred.twl2").read_text(encoding="utf-8"),
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
    """``(object type, receptacle index in scene.receptacles)`` per object instance, lamps included."""
    sentence: str
    """The task as the game states it, e.g. ``put a hot apple in countertop``."""


def _candidates(task_type: str, scene: Scene, lib: Library) -> list[tuple[str, str, list[int]]]:
    """``(object, goal receptacle or lamp, receptacle indices a target may start in)`` choices."""
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
            starts = [
                i
                for i, (rtype, _, _) in enumerate(scene.receptacles)
                if obj in lib.can_contain[rtype] and rtype not in (goal, appliance)
            ]
            if starts:
                out.append((obj, goal, starts))
    return out


@cache
def _scenes_for(task_type: str, split: str) -> tuple[Scene, ...]:
    """The scenes of ``split`` that can host ``task_type``, in ALFRED's order."""
    lib = library()
    return tuple(
        lib.scenes[n]
        for n in lib.scene_sets[_SPLIT_SCENES[split]]
        if lib.scenes[n].kind in lib.valid_kinds[task_type] and _candidates(task_type, lib.scenes[n], lib)
    )


def draw_task(task_type: str, split: str, rng: random.Random) -> Task:
    """Draw a task of ``task_type`` in a scene of ``split``, a room of that scene, and place every object."""
    lib = library()
    scenes = _scenes_for(task_type, split)
    if not scenes:
        raise DataError(f"no {split} scene in the alfworld wheel's layouts can host {task_type}")
    scene = rng.choice(scenes)
    obj, goal, starts = rng.choice(_candidates(task_type, scene, lib))
    look = task_type == "look_at_obj_in_light"
    appliance = _APPLIANCE.get(task_type)
    scene = _part_of(scene, goal, appliance, look, starts, rng)

    kinds = [r[0] for r in scene.receptacles]
    starts = [i for i, k in enumerate(kinds) if obj in lib.can_contain[k] and k not in (goal, appliance)]
    n_targets = rng.randint(2, 3) if task_type == "pick_two_obj_and_place" else rng.randint(1, 3)
    placements = [(obj, rng.choice(starts)) for _ in range(n_targets)]
    if look:
        stands = [i for i, k in enumerate(kinds) if k in _LAMP_STANDS]
        placements.append((goal, rng.choice(stands)))
    others = [t for t in scene.object_types if t != obj]
    for dtype in rng.sample(others, min(len(others), rng.randint(*DISTRACTOR_TYPES))):
        holders = [i for i, k in enumerate(kinds) if dtype in lib.can_contain[k]]
        placements += [(dtype, rng.choice(holders)) for _ in range(rng.randint(1, 2))]

    parent, toggle = ("", goal) if look else (goal, "")
    template = rng.choice(lib.goals[task_type]["templates"])
    sentence = template.format(obj=obj.lower(), recep=parent.lower(), toggle=toggle.lower(), mrecep="")
    return Task(task_type, scene, obj, parent, toggle, placements, sentence)


def _part_of(
    scene: Scene, goal: str, appliance: str | None, look: bool, starts: list[int], rng: random.Random
) -> Scene:
    """A room of :data:`ROOM_SIZE` receptacles of ``scene`` (at most :data:`MAX_OPENABLE` openable),
    keeping one start for the target, one goal receptacle (or lamp stand) and the appliance.

    The planner's search grows steeply with receptacles, openable ones above all (its state holds
    which are open); whole ALFRED kitchens make it take minutes per game.
    """
    lib = library()
    kinds = [r[0] for r in scene.receptacles]
    needed = [k for k in (appliance, None if look else goal) if k]
    must = {rng.choice(starts)}
    must |= {rng.choice([i for i, k in enumerate(kinds) if k == need]) for need in needed}
    if look:
        must.add(rng.choice([i for i, k in enumerate(kinds) if k in _LAMP_STANDS]))
    size = min(len(kinds), rng.randint(*ROOM_SIZE))
    keep = set(must)
    n_open = sum(kinds[i] in lib.openable for i in keep)
    for i in rng.sample(range(len(kinds)), len(kinds)):
        if len(keep) >= size:
            break
        if i in keep or (kinds[i] in lib.openable and n_open >= MAX_OPENABLE):
            continue
        keep.add(i)
        n_open += kinds[i] in lib.openable
    receptacles = tuple(scene.receptacles[i] for i in sorted(keep))
    holdable = set().union(*(lib.can_contain[r[0]] for r in receptacles))
    return replace(
        scene,
        receptacles=receptacles,
        object_types=tuple(t for t in scene.object_types if t in holdable),
        lamps=tuple(t for t in scene.lamps if any(r[0] in _LAMP_STANDS for r in receptacles)),
    )


def render_problem(task: Task, name: str, lib: Library) -> str:
    """The PDDL problem of a task: objects, initial facts, and the goal library's goal."""
    scene = task.scene
    points = sorted({p for _, _, p in scene.receptacles})
    location = {p: f"loc_bar_{i}" for i, p in enumerate(points)}
    start = f"loc_bar_{len(points)}"
    receptacles = [(rtype, prefix.format(i + 1), location[p]) for i, (rtype, prefix, p) in enumerate(scene.receptacles)]
    offset = len(receptacles) + 1
    objects = [(otype, f"{otype}_bar_{offset + j}", receptacles[r]) for j, (otype, r) in enumerate(task.placements)]

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
# Checking a game with TextWorld and the planner
# ---------------------------------------------------------------------------------------------


class _Verifier:
    """Plays candidate games through TextWorld as ALFWorldEnv does, reusing one engine per process."""

    def __init__(self) -> None:
        self._env = None
        self.last_failure = ""
        """Why the last game was rejected (kept for the error raised when every draw fails)."""

    def solve(self, game_file: Path) -> list[str] | None:
        """The planner's walkthrough if replaying it command by command wins the game, else None."""
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler

        try:
            if self._env is None:
                infos = textworld.EnvInfos(won=True, admissible_commands=True)
                self._env = textworld.start(
                    str(game_file), request_infos=infos, wrappers=[AlfredDemangler(shuffle=False)]
                )
            else:
                self._env.load(str(game_file))
            state = self._env.reset()
            pddl_env = self._env.unwrapped
            plan = list(pddl_env._pddl_state.replan(pddl_env._entity_infos))
        except Exception as e:  # TextWorld/Fast Downward raise many types; the draw is redrawn
            self._env = None
            return self._reject(f"TextWorld failed: {type(e).__name__}: {e}")
        if state["won"]:
            return self._reject("the goal already holds at the start")
        if not 0 < len(plan) <= MAX_PLAN_STEPS:
            return self._reject(f"the planner found no plan of 1 to {MAX_PLAN_STEPS} steps ({len(plan)})")
        for command in plan:
            if command not in state["admissible_commands"]:
                return self._reject(f"planned command {command!r} is not admissible")
            state, _, _ = self._env.step(command)
        return plan if state["won"] else self._reject("replaying the plan does not win")

    def _reject(self, why: str) -> None:
        self.last_failure = why
        return None


_VERIFIER: _Verifier | None = None


def _verifier() -> _Verifier:
    global _VERIFIER
    if _VERIFIER is None:
        _VERIFIER = _Verifier()
    return _VERIFIER


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


def make_game(root: Path, split: str, seed: int, index: int, task_types: tuple[str, ...]) -> Path:
    """Draw, verify and write game ``index`` of ``(split, seed)`` under ``root`` (a ``json_2.1.1``
    folder); return its trial folder."""
    lib = library()
    rng = random.Random(f"sdar-gym/alfworld/v{GENERATOR_VERSION}/{split}/{seed}/{index}")
    task_type = task_types[index % len(task_types)]
    trial = f"trial_{split}-s{seed}-{index:06d}"
    root = Path(root)
    staging = root / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    for _ in range(MAX_ATTEMPTS):
        task = draw_task(task_type, split, rng)
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
            plan = _verifier().solve(tmp / "game.tw-pddl")
            if plan is None:
                continue
            _write(tmp / "game.tw-pddl", _dumps({**game, "walkthrough": plan}))
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
        f"in {MAX_ATTEMPTS} tries; last: {_verifier().last_failure}"
    )


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
) -> list[Path]:
    """Write ``n`` verified games of ``split`` under ``out/json_2.1.1/``; return their trial folders.

    Game ``i`` depends only on ``(split, seed, i)`` and the task types, never on ``n`` or ``workers``.
    """
    types = _check_args(split, n, task_types)
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    root = Path(out) / "json_2.1.1"
    paths = _make_all(root, [(split, seed, i, types) for i in range(n)], workers, f"ALFWorld {split} games", progress)
    with contextlib.suppress(OSError):
        (root / STAGING).rmdir()  # kept while another run still writes there
    return paths


def _make_all(root: Path, jobs: list[tuple], workers: int, title: str, progress: bool) -> list[Path]:
    """:func:`make_game` for each job, in order, in ``workers`` processes, with a progress bar."""
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(jobs) > 1:
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=min(workers, len(jobs)), initializer=library))
            stack.callback(pool.shutdown, cancel_futures=True)  # Ctrl-C drops the queued games
            # Submitting forks every worker now, before the progress bar starts its thread.
            pending = [pool.submit(make_game, root, *job) for job in jobs]
            results = (future.result() for future in pending)
        else:
            results = (make_game(root, *job) for job in jobs)
        bar = stack.enter_context(_progress(progress))
        task = bar.add_task(title, total=len(jobs)) if bar else None
        paths = []
        for path in results:
            paths.append(path)
            if bar:
                bar.advance(task)
        return paths


@contextlib.contextmanager
def _progress(enabled: bool):
    if not enabled:
        yield None
        return
    from sdar_gym.progress import progress_bar

    with progress_bar() as bar:
        yield bar


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

    def run(self) -> None:
        import time

        workers = self.workers or default_workers()
        start = time.perf_counter()
        paths = generate_games(self.out, self.split, self.n, self.seed, self.task_types, progress=True, workers=workers)
        elapsed = time.perf_counter() - start
        where = self.out / "json_2.1.1" / self.split
        print(f"wrote {len(paths)} {self.split} games to {where} ({len(paths) / elapsed:.2f} games/s)")
