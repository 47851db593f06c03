"""Offline generator of a synthetic encyclopedia and its questions (``sdar-gym data search-qa``).

The world has countries, cities, people and works. Each entity has one main passage stating its
facts; distractor passages mention the same names next to other facts (a festival in a city, a
person's move to another city, relatives sharing a surname), so a search must rank the right
passage first. Questions are single-hop, bridge (two hops through a named intermediate entity) and
comparison (two entities' facts compared); every answer appears verbatim in the corpus, and each
question records the searches and passages that support it.
"""
from __future__ import annotations

import fcntl
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sdar_gym.core import ConfigError, sdar_gym_home
from sdar_gym.envs.search_qa.data import Passage, Question
from sdar_gym.io import atomic_dir, atomic_write_json, atomic_write_jsonl

GENERATOR_VERSION = 1
"""Bumped when the generated text changes, so cached default sets are rebuilt."""

_SYLLABLES = (
    "bar ven tor lis mar kel dra fen gor hal ith jor kas lum mor nal oth pel quin ras sol tam "
    "ul var wen yor zan bel cor dun"
).split()
_CITY_SUFFIXES = ("ford", "holm", "ton", "vik", "burg", "mere", "stead", "wick")
_FIRST_NAMES = (
    "Ada Bram Cora Dalen Edda Faro Greta Hale Ines Joren Kaia Lorn Mira Niles Orla Pavel Quilla "
    "Rhea Soren Tilda Ulric Vera Wendel Xara Yvo Zelda Arvid Brina Cassel Della"
).split()
_OCCUPATIONS = ("painter", "physicist", "poet", "architect", "composer", "botanist", "sculptor", "historian")
_WORK_KINDS = ("novel", "opera", "treatise", "film", "symphony", "atlas")
_ADJECTIVES = "Silent Golden Hollow Northern Crimson Distant Quiet Broken Endless Pale Hidden Iron".split()
_NOUNS = "Harbor Garden Lantern Meadow Archive Tide Orchard Bell Compass Mirror Bridge Ember".split()
_RIVERS = "Aster Brine Corrow Dessa Elm Fallow Grint Hesk Ivel Jessup Kell Lowe".split()

DATA_SOURCES = ("synth-single-hop", "synth-bridge", "synth-comparison")
"""The generated questions' ``data_source`` values (the env's ``task_type``)."""


@dataclass
class _City:
    name: str
    country: str
    founded: int
    river: str
    pid: str = ""


@dataclass
class _Person:
    name: str
    born: int
    birthplace: _City
    occupation: str
    pid: str = ""


@dataclass
class _Work:
    title: str
    kind: str
    creator: _Person
    year: int
    pid: str = ""


class _World:
    """Entities and their passages, built from one seeded RNG."""

    def __init__(self, rng: random.Random, n_cities: int):
        self.rng = rng
        self.passages: list[Passage] = []
        self._names: set[str] = set()
        n_countries = max(4, n_cities // 20)
        self.countries = [self._unique(lambda: self._word(2, 3) + "ia") for _ in range(n_countries)]
        self.cities = [
            _City(
                self._unique(lambda: self._word(1, 3) + rng.choice(_CITY_SUFFIXES)),
                rng.choice(self.countries),
                rng.randint(800, 1899),
                rng.choice(_RIVERS),
            )
            for _ in range(n_cities)
        ]
        surnames = [self._unique(lambda: self._word(2, 3)) for _ in range(max(2, n_cities))]
        self.people = []
        for _ in range(3 * n_cities):  # ~3 people per surname: relatives are each other's distractors
            name = self._unique(lambda: f"{rng.choice(_FIRST_NAMES)} {rng.choice(surnames)}")
            self.people.append(_Person(name, rng.randint(1700, 1979), rng.choice(self.cities), rng.choice(_OCCUPATIONS)))
        self.works = []
        for _ in range(2 * n_cities):
            creator = rng.choice(self.people)
            title = self._unique(lambda: f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} of {self._word(1, 2)}")
            self.works.append(_Work(title, rng.choice(_WORK_KINDS), creator, creator.born + rng.randint(20, 60)))
        self._write_passages()

    def _word(self, lo: int, hi: int) -> str:
        return "".join(self.rng.choice(_SYLLABLES) for _ in range(self.rng.randint(lo, hi))).capitalize()

    def _unique(self, make: Callable[[], str]) -> str:
        for _ in range(1000):
            name = make()
            if name not in self._names:
                self._names.add(name)
                return name
        raise ConfigError("the name space is exhausted; ask for fewer entities")

    def _add(self, title: str, text: str) -> str:
        pid = str(len(self.passages))
        self.passages.append(Passage(pid, title, text))
        return pid

    def _write_passages(self) -> None:
        rng = self.rng
        for c in self.cities:
            c.pid = self._add(c.name, f"{c.name} is a city in {c.country} on the {c.river} river. The city of {c.name} was founded in {c.founded}.")
            self._add(
                f"{c.name} Lantern Festival",
                f"The Lantern Festival of {c.name} has been held every spring since {rng.randint(1900, 2015)}, "
                f"drawing visitors from across {c.country}.",
            )
        for p in self.people:
            p.pid = self._add(
                p.name,
                f"{p.name} (born {p.born}) is {_a(p.occupation)} from {p.birthplace.country}. "
                f"{p.name} was born in {p.birthplace.name}.",
            )
            elsewhere = rng.choice(self.cities)
            self._add(
                f"{p.name} in {elsewhere.name}",
                f"In {p.born + rng.randint(18, 40)}, {p.name} moved to {elsewhere.name} to work as {_a(p.occupation)}.",
            )
        for w in self.works:
            w.pid = self._add(w.title, f"{w.title} is {_a(w.kind)} by {w.creator.name}, first presented in {w.year}.")


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _single_hop(w: _World) -> Question | None:
    rng = w.rng
    kind = rng.randrange(4)
    if kind == 0:
        c = rng.choice(w.cities)
        return _q(f"In which year was {c.name} founded?", str(c.founded), "single-hop", [f"{c.name} city founded"], [c.pid])
    if kind == 1:
        c = rng.choice(w.cities)
        return _q(f"In which country is the city of {c.name}?", c.country, "single-hop", [f"{c.name} city founded"], [c.pid])
    if kind == 2:
        p = rng.choice(w.people)
        return _q(f"In which city was {p.name} born?", p.birthplace.name, "single-hop", [f"{p.name} born"], [p.pid])
    wk = rng.choice(w.works)
    return _q(f"Who created the {wk.kind} {wk.title}?", wk.creator.name, "single-hop", [f"{wk.title} {wk.kind}"], [wk.pid])


def _bridge(w: _World) -> Question | None:
    rng = w.rng
    kind = rng.randrange(3)
    if kind == 0:
        wk = rng.choice(w.works)
        p = wk.creator
        return _q(
            f"In which city was the creator of the {wk.kind} {wk.title} born?", p.birthplace.name, "bridge",
            [f"{wk.title} {wk.kind}", f"{p.name} born"], [wk.pid, p.pid],
        )
    p = rng.choice(w.people)
    c = p.birthplace
    if kind == 1:
        return _q(f"In which year was the birthplace of {p.name} founded?", str(c.founded), "bridge",
                  [f"{p.name} born", f"{c.name} city founded"], [p.pid, c.pid])
    return _q(f"On which river lies the city where {p.name} was born?", c.river, "bridge",
              [f"{p.name} born", f"{c.name} city founded"], [p.pid, c.pid])


def _comparison(w: _World) -> Question | None:
    rng = w.rng
    if rng.random() < 0.5:
        a, b = rng.sample(w.cities, 2)
        if a.founded == b.founded:
            return None
        first = a if a.founded < b.founded else b
        return _q(f"Which city was founded earlier, {a.name} or {b.name}?", first.name, "comparison",
                  [f"{a.name} city founded", f"{b.name} city founded"], [a.pid, b.pid])
    a, b = rng.sample(w.people, 2)
    if a.born == b.born:
        return None
    first = a if a.born < b.born else b
    return _q(f"Who was born first, {a.name} or {b.name}?", first.name, "comparison",
              [f"{a.name} born", f"{b.name} born"], [a.pid, b.pid])


def _q(text: str, answer: str, kind: str, queries: list[str], support: list[str]) -> Question:
    return Question(
        id="", question=text, golden_answers=(answer,), data_source=f"synth-{kind}",
        evidence_queries=tuple(queries), supporting_ids=tuple(support),
    )


_QUESTION_MAKERS = (_single_hop, _bridge, _comparison)


def generate(n_cities: int, n_questions: int, seed: int = 0) -> tuple[list[Passage], list[Question]]:
    """Build the corpus (about ``10 * n_cities`` passages) and ``n_questions`` distinct questions.

    Question types are balanced; ids are ``synth-<seed>-<index>``, stable for a given seed.
    """
    if n_cities < 2:
        raise ConfigError(f"n_cities must be at least 2, got {n_cities}")
    rng = random.Random(seed)
    world = _World(rng, n_cities)
    questions: list[Question] = []
    seen: set[str] = set()
    for attempt in range(50 * n_questions + 100):
        if len(questions) == n_questions:
            break
        q = _QUESTION_MAKERS[attempt % len(_QUESTION_MAKERS)](world)
        if q is None or q.question in seen:
            continue
        seen.add(q.question)
        questions.append(replace(q, id=f"synth-{seed}-{len(questions)}"))
    if len(questions) < n_questions:
        raise ConfigError(f"only {len(questions)} distinct questions fit {n_cities} cities; raise n_cities")
    return world.passages, questions


def write_set(out: str | Path, n_cities: int, n_train: int, n_test: int, seed: int = 0) -> Path:
    """Write ``corpus.jsonl`` (wiki-18 rows), ``train.jsonl``, ``test.jsonl`` and ``manifest.json`` atomically."""
    if n_train < 1 or n_test < 0:
        raise ConfigError(f"n_train must be at least 1 and n_test >= 0, got {n_train} and {n_test}")
    passages, questions = generate(n_cities, n_train + n_test, seed)
    with atomic_dir(out) as tmp:
        atomic_write_jsonl(tmp / "corpus.jsonl", [p.to_document() for p in passages])
        atomic_write_jsonl(tmp / "train.jsonl", [q.to_row() for q in questions[:n_train]])
        atomic_write_jsonl(tmp / "test.jsonl", [q.to_row() for q in questions[n_train:]])
        atomic_write_json(tmp / "manifest.json", {
            "generator_version": GENERATOR_VERSION, "seed": seed, "n_cities": n_cities,
            "n_passages": len(passages), "n_train": n_train, "n_test": n_test,
        })
    return Path(out)


DEFAULT_SET = {"n_cities": 60, "n_train": 500, "n_test": 100, "seed": 0}
"""Size of the default set built on first use (about 600 passages: small enough to embed quickly)."""


def default_data_dir() -> Path:
    """Where the default generated set lives (``$SDAR_GYM_HOME/search_qa``)."""
    return sdar_gym_home() / "search_qa"


def _is_current(data_dir: Path) -> bool:
    try:
        return json.loads((data_dir / "manifest.json").read_text()).get("generator_version") == GENERATOR_VERSION
    except (OSError, ValueError):
        return False


def ensure_default_set(data_dir: Path | None = None) -> Path:
    """Return the default set's folder, generating it first if absent or from an older generator.

    A file lock beside the folder makes envs starting together in many processes generate it once.
    """
    data_dir = Path(data_dir or default_data_dir())
    if _is_current(data_dir):
        return data_dir
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(data_dir.with_name(f".{data_dir.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _is_current(data_dir):  # another process may have finished it while we waited
            write_set(data_dir, **DEFAULT_SET)
    return data_dir


@dataclass
class GenerateSearchQAArgs:
    """Generate a synthetic encyclopedia corpus (wiki-18 jsonl) and single-hop/bridge/comparison questions."""

    out: Path = Path("data/search_qa")
    """Folder to write corpus.jsonl, train.jsonl, test.jsonl and manifest.json into (replaced whole)."""
    n_cities: int = 60
    """World size: the corpus has about 10 passages per city (cities, people, works, distractors)."""
    n_train: int = 500
    """Number of train questions."""
    n_test: int = 100
    """Number of test questions."""
    seed: int = 0
    """Random seed; the same seed gives the same set."""

    def run(self) -> None:
        out = write_set(self.out, self.n_cities, self.n_train, self.n_test, self.seed)
        print(f"wrote Search-QA set to {out} (corpus.jsonl, train.jsonl, test.jsonl)")
