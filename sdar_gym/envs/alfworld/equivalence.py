"""Proof that two ALFWorld engines play the same game: replay the same actions in both, compare everything.

For every game: the planner's expert trajectory from the start, then seeded random walks over the
admissible actions with invalid and malformed actions mixed in. At every step the observation,
the sorted admissible actions, reward, terminated, truncated and the whole ``info`` dict must be
identical. The reference is the unmodified TextWorld engine.
"""
from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from sdar_gym.core import ConfigError
from sdar_gym.envs.alfworld.data import SPLITS, find_games, load_game

MALFORMED = ["", "   ", "jump", "go to", "take", "put", "look around the room", "open sesame", "examine", "help me"]
"""Actions no ALFWorld game accepts (``help`` alone is a real command in later grammars)."""


EXPERT_MAX_STEPS = 100
"""Longest expert trajectory replayed (ALFWorld plans are far shorter)."""


def corrupt(action: str, rng: random.Random) -> str:
    """A near miss of a real action: wrong case, a made-up object, a missing or doubled word, padding."""
    words = action.split()
    choice = rng.randrange(6)
    if choice == 0:
        return action.upper()
    if choice == 1 and len(words) > 1:
        return " ".join(words[:-1] + ["unicorn", "7"])
    if choice == 2 and len(words) > 1:
        return " ".join(words[:-1])
    if choice == 3:
        return action.replace(" ", "  ", 1)
    if choice == 4:
        return f"  {action}\t"  # surrounding space is stripped: this one stays valid
    return rng.choice(MALFORMED)


@dataclass
class Mismatch:
    game: str
    trajectory: str
    """``expert`` or ``walk<k>``."""
    step: int
    """0 is the observation after reset."""
    action: str | None
    what: str
    """The first differing field: obs, reward, terminated, truncated, or an info key."""
    reference: str
    candidate: str

    def __str__(self) -> str:
        return (
            f"MISMATCH {self.game} [{self.trajectory} step {self.step}] action={self.action!r} field={self.what}\n"
            f"  textworld: {self.reference}\n  candidate: {self.candidate}"
        )


@dataclass
class EquivalenceReport:
    games: int = 0
    steps: int = 0
    """Steps compared (resets included)."""
    refused: list[str] = field(default_factory=list)
    """Games both engines refuse to load with an error (consistent, so not a mismatch)."""
    mismatches: list[Mismatch] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: {"textworld": 0.0, "candidate": 0.0})


def _diff(a: tuple, b: tuple) -> tuple[str, str, str] | None:
    names = ("obs", "reward", "terminated", "truncated")
    for name, x, y in zip(names, a[:4], b[:4]):
        if x != y:
            return name, repr(x), repr(y)
    for key in sorted(set(a[4]) | set(b[4])):
        if a[4].get(key) != b[4].get(key):
            return key, repr(a[4].get(key)), repr(b[4].get(key))
    return None


class _LoadFailed(Exception):
    def __init__(self, reference: str, candidate: str) -> None:
        super().__init__(reference or candidate)
        self.reference, self.candidate = reference, candidate


class _Pair:
    """The reference and candidate env side by side, timing each."""

    def __init__(
        self, data_dir: Path, split: str, reference: str, candidate: str, max_steps: int, report: EquivalenceReport
    ) -> None:
        from sdar_gym.envs.alfworld.env import ALFWorldEnv

        self.ref = ALFWorldEnv(data_dir=data_dir, split=split, engine=reference, max_steps=max_steps)
        self.cand = ALFWorldEnv(data_dir=data_dir, split=split, engine=candidate, max_steps=max_steps)
        self.report = report

    def _timed(self, side: str, fn, *args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.report.seconds[side] += time.perf_counter() - t

    def reset(self, task_id: str) -> tuple[tuple, tuple]:
        from sdar_gym.core import DataError

        errors = ["", ""]
        results = []
        for i, (side, env) in enumerate((("textworld", self.ref), ("candidate", self.cand))):
            try:
                obs, info = self._timed(side, env.reset, options={"task_id": task_id})
                results.append((obs, 0.0, False, False, info))
            except DataError as e:
                errors[i] = str(e) or type(e).__name__
        if any(errors):
            raise _LoadFailed(*errors)
        self.report.steps += 1
        return results[0], results[1]

    def step(self, action: str) -> tuple[tuple, tuple]:
        a = self._timed("textworld", self.ref.step, action)
        b = self._timed("candidate", self.cand.step, action)
        self.report.steps += 1
        return a, b


class _BothRefused(Exception):
    pass


def _play(pair: _Pair, task_id: str, name: str, choose, max_steps: int) -> tuple[Mismatch | None, tuple]:
    """Reset both envs and play ``choose(step, ref_result)`` actions until a difference or the end.

    Returns the first difference (or None) and the reference's last result.
    """
    from sdar_gym.core import DataError

    try:
        a, b = pair.reset(task_id)
    except _LoadFailed as e:
        if e.reference and e.candidate:
            raise _BothRefused() from None
        return Mismatch(task_id, name, 0, None, "load", e.reference or "loaded", e.candidate or "loaded"), ()
    action = None
    for step in range(max_steps + 1):
        d = _diff(a, b)
        if d is not None:
            return Mismatch(task_id, name, step, action, *d), a
        if a[2] or a[3]:
            break
        action = choose(step, a)
        if action is None:
            break
        try:
            a, b = pair.step(action)
        except DataError as e:  # the reference stepped; the candidate could not
            return Mismatch(task_id, name, step + 1, action, "error", "", str(e)), a
    return None, a


def compare_split(
    data_dir: str | Path,
    split: str,
    candidate: str = "fast",
    walks: int = 3,
    walk_len: int = 20,
    invalid_rate: float = 0.2,
    seed: int = 0,
    limit: int | None = None,
    task_types: list[str] | None = None,
    progress: bool = False,
    start: int = 0,
    task_ids: list[str] | None = None,
    reference: str = "textworld",
) -> EquivalenceReport:
    """Compare the ``candidate`` engine with TextWorld on the games ``[start, start + limit)`` of a split.

    ``task_ids`` picks games by id instead (unknown ids are an error).
    """
    games = _select(find_games(data_dir, split, task_types), task_ids)[start:][:limit]
    report = EquivalenceReport()
    pair = _Pair(Path(data_dir), split, reference, candidate, max(walk_len, EXPERT_MAX_STEPS), report)
    for i, game in enumerate(games):
        report.games += 1
        before = len(report.mismatches)
        try:
            found, last = _play(pair, game.task_id, "expert", lambda _k, _r: pair.ref.expert_action(), EXPERT_MAX_STEPS)
        except _BothRefused:
            report.refused.append(game.task_id)
            continue
        if found is None and last and not last[2]:
            found = Mismatch(game.task_id, "expert", 0, None, "won", "the planner's expert did not win", "")
        if found:
            report.mismatches.append(found)
        for w in range(walks):
            rng = random.Random(f"{seed}/{game.task_id}/{w}")

            def choose(_k: int, ref, rng=rng) -> str:
                admissible = ref[4]["admissible_actions"]
                if rng.random() < invalid_rate or not admissible:
                    return corrupt(rng.choice(admissible) if admissible else "look", rng)
                return rng.choice(admissible)

            found, _ = _play(pair, game.task_id, f"walk{w}", choose, walk_len)
            if found:
                report.mismatches.append(found)
        if progress:
            for m in report.mismatches[before:]:
                print(m, flush=True)
            print(
                f"[{i + 1}/{len(games)}] {game.task_id}: steps={report.steps} mismatches={len(report.mismatches)}",
                flush=True,
            )
    return report


def _select(games: list, task_ids: list[str] | None) -> list:
    if task_ids is None:
        return games
    by_id = {g.task_id: g for g in games}
    missing = [t for t in task_ids if t not in by_id]
    if missing:
        raise ConfigError(f"unknown ALFWorld task id(s): {', '.join(missing)}")
    return [by_id[t] for t in task_ids]


def later_grammar_split(
    data_dir: str | Path, split: str, out: str | Path, limit: int | None = None, task_ids: list[str] | None = None
) -> Path:
    """Copy a split's games rewritten to the alfworld wheel's later domain and grammar (``move X to Y``).

    This is what ALFWorld does when it regenerates game files: its ``alfred.pddl`` domain, its
    ``alfred.twl2`` grammar with ``UNKNOWN GOAL`` replaced by the game's task, the same problem.
    """
    from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH

    from sdar_gym.io import atomic_write_json

    domain = Path(ALFRED_PDDL_PATH).read_text()
    grammar = Path(ALFRED_TWL2_PATH).read_text()
    out = Path(out)
    for game in _select(find_games(data_dir, split), task_ids)[:limit]:
        data = load_game(game.game_file)
        task = data["grammar"].split("Your task is to: ", 1)[1].split('"', 1)[0]
        if task.endswith("."):
            task = task[:-1]
        data.update(pddl_domain=domain, grammar=grammar.replace("UNKNOWN GOAL", task))
        dst = out / "json_2.1.1" / split / game.task_id
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(game.game_file.parent / "traj_data.json", dst / "traj_data.json")
        atomic_write_json(dst / "game.tw-pddl", data)
    return out


@dataclass
class EquivalenceArgs:
    """Replay expert and random walks in the TextWorld and the fast engine; print every difference."""

    data_dir: Path = Path("data/alfworld")
    """Folder holding json_2.1.1/<split>/."""
    split: str = "valid_seen"
    """Split to check: train, valid_seen or valid_unseen."""
    walks: int = 3
    """Seeded random walks per game (besides the expert trajectory)."""
    walk_len: int = 20
    """Actions per random walk."""
    invalid_rate: float = 0.2
    """Share of walk actions that are invalid or malformed."""
    seed: int = 0
    """Seed of the random walks."""
    start: int = 0
    """Skip the first ``start`` games of the split (to shard a long check over processes)."""
    limit: int | None = None
    """Check at most N games."""
    later_grammar: bool = False
    """Rewrite the games to the alfworld wheel's later domain and grammar (``move X to Y``) first."""
    engine: str = "fast"
    """The engine compared against TextWorld."""
    json_out: Path | None = None
    """Also write the report as JSON here."""

    def run(self) -> None:
        import tempfile
        from dataclasses import asdict

        from sdar_gym.io import atomic_write_json

        if self.split not in SPLITS:
            raise ConfigError(f"unknown split {self.split!r}; expected one of {', '.join(SPLITS)}")
        if self.walks < 0 or self.walk_len < 1 or not 0 <= self.invalid_rate <= 1:
            raise ConfigError("walks must be >= 0, walk_len >= 1 and invalid_rate in [0, 1]")
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = self.data_dir
            if self.later_grammar:
                end = None if self.limit is None else self.start + self.limit
                data_dir = later_grammar_split(self.data_dir, self.split, tmp, end)
            report = compare_split(
                data_dir, self.split, self.engine, self.walks, self.walk_len, self.invalid_rate, self.seed,
                self.limit, progress=True, start=self.start,
            )
        speedup = report.seconds["textworld"] / max(report.seconds["candidate"], 1e-9)
        print(
            f"games: {report.games}  steps compared: {report.steps}  refused by both: {len(report.refused)}  "
            f"mismatches: {len(report.mismatches)}  (textworld {report.seconds['textworld']:.1f}s, "
            f"{self.engine} {report.seconds['candidate']:.1f}s, {speedup:.0f}x)"
        )
        if self.json_out:
            atomic_write_json(self.json_out, {"args": {k: str(v) for k, v in asdict(self).items()}, **asdict(report)})
        if report.mismatches:
            raise SystemExit(1)
