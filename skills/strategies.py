"""Retrieval strategies (the paper's Table 2: Full, UCB, KM, Random; plus the released routing, rule and top-k).

A strategy maps a :class:`Query` to ranked ``(skill index, score)`` pairs. Scores mean different
things per strategy (cosine similarity, a UCB value, 1/0 for a rule match); within one strategy,
higher is better. Register a new one by adding it to :data:`STRATEGIES`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from skills.library import SkillLibrary

Ranked = list[tuple[int, float]]


@dataclass
class Query:
    task: str
    task_type: str | None
    k: int
    rng: np.random.Generator
    """Seeded from ``retrieve(seed=...)``: the only randomness a strategy may use."""
    seed: int | None = None
    _vector: np.ndarray | None = field(default=None, repr=False)

    def vector(self, library: SkillLibrary) -> np.ndarray:
        """The task's embedding (computed once, cached by the library across calls)."""
        if self._vector is None:
            self._vector = library.embed_query(self.task)
        return self._vector


def full(lib: SkillLibrary, q: Query) -> Ranked:
    """Every skill, in library order (``k`` is ignored; the render budget still applies)."""
    return [(i, 1.0) for i in range(len(lib))]


def task_type(lib: SkillLibrary, q: Query) -> Ranked:
    """The official code's rule: the task type's own skills (score 1) first, then the general ones (0)."""
    typed = lib.typed_indices(q.task_type)
    general = [i for i in range(len(lib)) if lib.skills[i].is_general]
    return [(i, 1.0) for i in typed][: q.k] + [(i, 0.0) for i in general][: max(q.k - len(typed), 0)]


def official(lib: SkillLibrary, q: Query) -> Ranked:
    """The released code's routing (``skill_all=false``): every general skill, then every skill of the
    task's type (verl/trainer/ppo/rlsd_utils.py ``SkillProvider._get_skill_text``); ``k`` is ignored."""
    general = [(i, 0.0) for i, s in enumerate(lib.skills) if s.is_general]
    return general + [(i, 1.0) for i in lib.typed_indices(q.task_type)]


def topk(lib: SkillLibrary, q: Query) -> Ranked:
    """The ``k`` skills whose embedding is most similar to the task text's."""
    return lib.search(q.vector(lib), q.k)


def kmeans(lib: SkillLibrary, q: Query) -> Ranked:
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


def ucb(lib: SkillLibrary, q: Query) -> Ranked:
    """UCB1 over skills: mean reward plus ``c * sqrt(2 ln N / n)``; never-tried skills come first.

    Candidates are the task type's skills plus the general ones when the task type is known (all
    skills otherwise). Ties are broken at random with ``q.rng``. ``library.update`` feeds rewards.
    """
    candidates = lib.typed_indices(q.task_type) + [i for i, s in enumerate(lib.skills) if s.is_general]
    if q.task_type is None or not candidates:
        candidates = list(range(len(lib)))
    candidates = np.asarray(sorted(set(candidates)))
    n = lib.ucb_counts[candidates]
    total = max(float(lib.ucb_counts.sum()), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(
            n > 0, lib.ucb_sums[candidates] / np.maximum(n, 1) + lib.ucb_c * np.sqrt(2 * math.log(total + 1) / np.maximum(n, 1)), math.inf
        )
    tiebreak = q.rng.random(len(candidates))
    order = np.lexsort((tiebreak, -values))
    return [(int(candidates[j]), float(values[j])) for j in order[: q.k]]


def random(lib: SkillLibrary, q: Query) -> Ranked:
    """``k`` skills drawn uniformly without replacement from the whole library."""
    picks = q.rng.choice(len(lib), size=min(q.k, len(lib)), replace=False)
    return [(int(i), 0.0) for i in picks]


STRATEGIES: dict[str, Callable[[SkillLibrary, Query], Ranked]] = {
    "full": full,
    "task_type": task_type,
    "official": official,
    "topk": topk,
    "kmeans": kmeans,
    "ucb": ucb,
    "random": random,
}
