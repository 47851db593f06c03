"""Retrieval strategies (the paper's Table 2: Full, UCB, KM, Random; plus the released routing, rule and top-k).

A strategy maps a :class:`Query` to ranked ``(skill index, score)`` pairs. Scores mean different
things per strategy (cosine similarity, a UCB value, 1/0 for a rule match); within one strategy,
higher is better. Strategies read the skills only through :class:`SkillIndex` (which
:class:`skills.library.SkillLibrary` implements). Register a new one by adding it to :data:`STRATEGIES`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from skills.records import Skill

Ranked = list[tuple[int, float]]


class SkillIndex(Protocol):
    """What a strategy may read: the skills, their unit-norm embeddings, and a few lookups."""

    skills: Sequence[Skill]
    embeddings: np.ndarray

    def __len__(self) -> int: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def search(self, vector: np.ndarray, k: int) -> Ranked: ...

    def typed_indices(self, task_type: str | None) -> list[int]: ...

    def clusters(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class Query:
    task: str
    task_type: str | None
    k: int
    rng: np.random.Generator
    """Seeded from ``retrieve(seed=...)``: the only randomness a strategy may use."""
    seed: int | None = None
    _vector: np.ndarray | None = field(default=None, repr=False)

    def vector(self, library: SkillIndex) -> np.ndarray:
        """The task's embedding (computed once, cached by the library across calls)."""
        if self._vector is None:
            self._vector = library.embed_query(self.task)
        return self._vector


def full(lib: SkillIndex, q: Query) -> Ranked:
    """Every skill, in library order (``k`` is ignored; the render budget still applies)."""
    return [(i, 1.0) for i in range(len(lib))]


def task_type(lib: SkillIndex, q: Query) -> Ranked:
    """The official code's rule: the task type's own skills (score 1) first, then the general ones (0)."""
    typed = lib.typed_indices(q.task_type)
    general = [i for i in range(len(lib)) if lib.skills[i].is_general]
    return [(i, 1.0) for i in typed][: q.k] + [(i, 0.0) for i in general][: max(q.k - len(typed), 0)]


def official(lib: SkillIndex, q: Query) -> Ranked:
    """The released code's routing (``skill_all=false``): every general skill, then every skill of the
    task's type (verl/trainer/ppo/rlsd_utils.py ``SkillProvider._get_skill_text``); ``k`` is ignored."""
    general = [(i, 0.0) for i, s in enumerate(lib.skills) if s.is_general]
    return general + [(i, 1.0) for i in lib.typed_indices(q.task_type)]


def topk(lib: SkillIndex, q: Query) -> Ranked:
    """The ``k`` skills whose embedding is most similar to the task text's."""
    return lib.search(q.vector(lib), q.k)


def kmeans(lib: SkillIndex, q: Query) -> Ranked:
    """Cluster the skills (seeded k-means); take the most similar skills of the task's nearest cluster.

    When that cluster holds fewer than ``k`` skills, the next-nearest clusters fill in.
    """
    centroids, assignment = lib.clusters(seed=0 if q.seed is None else q.seed)
    v = q.vector(lib)
    sims = lib.embeddings @ v
    ranked: Ranked = []
    for c in np.argsort(-(centroids @ v), kind="stable"):
        members = np.flatnonzero(assignment == c)
        members = members[np.argsort(-sims[members], kind="stable")]
        ranked += [(int(i), float(sims[i])) for i in members]
        if len(ranked) >= q.k:
            break
    return ranked[: q.k]


@dataclass
class UCB:
    """UCB1 over skills: mean reward plus ``c * sqrt(2 ln N / n)``; never-tried skills come first.

    Candidates are the task type's skills plus the general ones when the task type is known (all
    skills otherwise). Ties are broken at random with ``q.rng``. The strategy keeps its own state,
    how often each skill was shown in a rewarded retrieval and the summed rewards, fed by
    :meth:`update` (``SkillLibrary.update``) and saved in the library's sidecar.
    """

    counts: np.ndarray
    sums: np.ndarray
    c: float = 1.0
    """Exploration weight."""

    @classmethod
    def from_state(cls, n_skills: int, state: dict[str, Any] | None = None) -> UCB:
        """A fresh state for ``n_skills`` skills, or the one :meth:`state` saved."""
        state = state or {}
        counts, sums = state.get("counts"), state.get("sums")
        return cls(
            np.zeros(n_skills) if counts is None else np.asarray(counts, dtype=float),
            np.zeros(n_skills) if sums is None else np.asarray(sums, dtype=float),
            float(state.get("c", 1.0)),
        )

    def state(self) -> dict[str, Any]:
        return {"c": self.c, "counts": self.counts.tolist(), "sums": self.sums.tolist()}

    def update(self, indices: list[int], reward: float) -> None:
        """Credit ``reward`` to each skill shown."""
        for i in indices:
            self.counts[i] += 1
            self.sums[i] += reward

    def __call__(self, lib: SkillIndex, q: Query) -> Ranked:
        candidates = lib.typed_indices(q.task_type) + [i for i, s in enumerate(lib.skills) if s.is_general]
        if q.task_type is None or not candidates:
            candidates = list(range(len(lib)))
        candidates = np.asarray(sorted(set(candidates)))
        n = self.counts[candidates]
        total = max(float(self.counts.sum()), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(
                n > 0, self.sums[candidates] / np.maximum(n, 1) + self.c * np.sqrt(2 * math.log(total + 1) / np.maximum(n, 1)), math.inf
            )
        tiebreak = q.rng.random(len(candidates))
        order = np.lexsort((tiebreak, -values))
        return [(int(candidates[j]), float(values[j])) for j in order[: q.k]]


def random(lib: SkillIndex, q: Query) -> Ranked:
    """``k`` skills drawn uniformly without replacement from the whole library."""
    picks = q.rng.choice(len(lib), size=min(q.k, len(lib)), replace=False)
    return [(int(i), 0.0) for i in picks]


STRATEGIES: dict[str, Callable[[SkillIndex, Query], Ranked] | type[UCB]] = {
    "full": full,
    "task_type": task_type,
    "official": official,
    "topk": topk,
    "kmeans": kmeans,
    "ucb": UCB,
    "random": random,
}
"""Name -> strategy. Stateless strategies are functions; the stateful one (UCB) is a class, whose
instance, holding the state, each library keeps."""
