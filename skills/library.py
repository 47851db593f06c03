"""SkillLibrary: skills and their embeddings in a FAISS index, retrieved with the strategies of ``skills.strategies``.

On disk a library is a folder of two files, written together in one atomic rename:

- ``index.faiss``: the FAISS index (inner product over L2-normalized vectors: ``IndexFlatIP``, or
  ``IndexIVFFlat`` for large libraries);
- ``library.json``: the sidecar, holding ``format``/``format_version``, the embedder's name and
  dimension, index settings, the skill records in index order, UCB statistics and free ``meta``.

No pickle anywhere. Loading checks the sidecar against the index and against the embedder in use,
and refuses a mismatch with a :class:`~sdar_gym.core.ConfigError` that names both sides.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sdar_gym.core import ConfigError, DataError
from sdar_gym.io import atomic_dir
from skills.embedders import Embedder, l2_normalize, make_embedder
from skills.records import Skill, check_unique_ids
from skills.render import render_context
from skills.strategies import STRATEGIES, UCB, Query

FORMAT = "sdar-gym/skill-library"
FORMAT_VERSION = 1
SIDECAR = "library.json"
INDEX_FILE = "index.faiss"
IVF_MIN_SKILLS = 50_000
"""``index="auto"`` switches from a flat index to IVF at this many skills."""
_QUERY_CACHE_SIZE = 4096

IndexKind = Literal["auto", "flat", "ivf"]


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise ConfigError("the skill library needs faiss (pip install 'sdar-gym[dense]')") from None
    return faiss


@dataclass
class Retrieval:
    """What one ``retrieve`` call returns."""

    skills: list[Skill]
    """The skills shown in ``context`` (a cut-off last skill included), best first."""
    scores: list[float]
    """The strategy's score of each skill in ``skills`` (see ``skills.strategies``)."""
    context: str
    """The privileged context rendered from ``skills`` within the budget ('' when there is none)."""
    strategy: str = "topk"
    truncated: bool = False
    """True when the budget cut or left out a retrieved skill."""

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.skills]


@dataclass
class SkillLibrary:
    """Skills plus a FAISS inner-product index over their unit-norm embeddings. Build with :meth:`build`."""

    skills: list[Skill]
    embeddings: np.ndarray
    """float32 (n, dim), unit-norm rows, in ``skills`` order."""
    embedder: Embedder
    index: Any
    """The FAISS index over ``embeddings``."""
    ucb: UCB = field(default=None)  # type: ignore[assignment]
    """The UCB strategy of this library, with its state (shows and rewards per skill)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Free metadata saved in the sidecar (e.g. what the library was built from)."""

    def __post_init__(self) -> None:
        n = len(self.skills)
        self.ucb = UCB.from_state(n) if self.ucb is None else self.ucb
        self._pos = {s.id: i for i, s in enumerate(self.skills)}
        self._query_cache: dict[str, np.ndarray] = {}
        self._clusters: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._aliases = _task_type_aliases({s.env for s in self.skills})

    # ---- building, saving, loading -------------------------------------------------------------

    @classmethod
    def build(
        cls,
        skills: list[Skill],
        embedder: Embedder | str | None = None,
        index: IndexKind = "auto",
        nlist: int | None = None,
        nprobe: int = 16,
        meta: dict[str, Any] | None = None,
    ) -> SkillLibrary:
        """Embed ``skills`` (the normalized mean over :meth:`Skill.key_texts`) and index them.

        ``embedder``: an Embedder or a spec for :func:`skills.embedders.make_embedder` (default: the
        bundled MiniLM). ``index``: ``flat``, ``ivf``, or ``auto`` (IVF from ``IVF_MIN_SKILLS`` skills).
        """
        if not skills:
            raise DataError("cannot build a skill library from zero skills")
        check_unique_ids(skills, "skill library")
        embedder = make_embedder(embedder)
        vectors = embed_skills(skills, embedder)
        return cls.from_embeddings(skills, vectors, embedder, index, nlist, nprobe, meta)

    @classmethod
    def from_embeddings(
        cls,
        skills: list[Skill],
        vectors: np.ndarray,
        embedder: Embedder | str,
        index: IndexKind = "auto",
        nlist: int | None = None,
        nprobe: int = 16,
        meta: dict[str, Any] | None = None,
    ) -> SkillLibrary:
        """Index precomputed unit-norm ``vectors`` (one row per skill) made by ``embedder``."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(skills):
            raise ConfigError(f"need one embedding row per skill: {len(skills)} skills, embeddings of shape {vectors.shape}")
        faiss = _faiss()
        n, dim = vectors.shape
        kind = ("ivf" if n >= IVF_MIN_SKILLS else "flat") if index == "auto" else index
        if kind == "flat":
            faiss_index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            nlist = nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
            if nlist > n:
                raise ConfigError(f"IVF needs at least nlist={nlist} skills to train, got {n}")
            faiss_index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            faiss_index.train(vectors)
            faiss_index.nprobe = min(nprobe, nlist)
        else:
            raise ConfigError(f"unknown index kind {index!r}; expected auto, flat or ivf")
        faiss_index.add(vectors)
        return cls(list(skills), vectors, make_embedder(embedder), faiss_index, meta=dict(meta or {}))

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def index_kind(self) -> str:
        return "ivf" if hasattr(self.index, "nprobe") else "flat"

    def save(self, path: str | os.PathLike) -> Path:
        """Write the index and the sidecar into folder ``path``, replacing it atomically."""
        faiss = _faiss()
        sidecar = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "embedder": self.embedder.name,
            "dim": self.dim,
            "count": len(self),
            "index": {"kind": self.index_kind, **({"nlist": self.index.nlist, "nprobe": self.index.nprobe} if self.index_kind == "ivf" else {})},
            "ucb": self.ucb.state(),
            "meta": self.meta,
            "skills": [s.to_dict() for s in self.skills],
        }
        with atomic_dir(path) as tmp:
            (tmp / INDEX_FILE).write_bytes(faiss.serialize_index(self.index).tobytes())
            (tmp / SIDECAR).write_text(json.dumps(sidecar, indent=1, ensure_ascii=False), encoding="utf-8")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, embedder: Embedder | str | None = None) -> SkillLibrary:
        """Read a saved library. ``embedder`` defaults to the one the sidecar names.

        Raises ConfigError when ``embedder`` differs from the library's embedder (name or dimension),
        and DataError when the folder is not a library or its files disagree.
        """
        path = Path(path).expanduser()
        side = _read_sidecar(path)
        name, dim = side["embedder"], side["dim"]
        if embedder is not None:
            embedder = make_embedder(embedder)
            got_dim = embedder.dim
            problems = [f"dimension {got_dim} != {dim}"] if got_dim != dim else []
            if embedder.name != name:
                problems.append(f"embedder {embedder.name!r} != {name!r}")
            if problems:
                raise ConfigError(
                    f"skill library {path} was built with embedder {name!r} (dimension {dim}); refusing to query it with "
                    f"embedder {embedder.name!r} (dimension {got_dim}): {'; '.join(problems)}. Rebuild the library with "
                    "`sdar-gym skills build` for the new embedder, or load it with its own embedder."
                )
        faiss = _faiss()
        try:
            raw = np.frombuffer((path / INDEX_FILE).read_bytes(), dtype=np.uint8)
            index = faiss.deserialize_index(raw)
        except OSError as e:
            raise DataError(f"cannot read {path / INDEX_FILE}: {e.strerror}") from None
        except RuntimeError as e:
            raise DataError(f"{path / INDEX_FILE} is not a readable FAISS index: {str(e).splitlines()[0]}") from None
        if index.d != dim or index.ntotal != side["count"]:
            raise DataError(
                f"skill library {path}: the index holds {index.ntotal} vectors of dimension {index.d}, but the sidecar "
                f"says {side['count']} of dimension {dim}; the folder is inconsistent, rebuild it"
            )
        if hasattr(index, "nprobe"):
            index.make_direct_map()
        vectors = index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, dim), np.float32)
        skills = [Skill.from_dict(d, f"{path / SIDECAR} skill {i}") for i, d in enumerate(side["skills"])]
        return cls(
            skills,
            vectors,
            embedder if embedder is not None else make_embedder(name),
            index,
            ucb=UCB.from_state(len(skills), side.get("ucb")),
            meta=side.get("meta", {}),
        )

    # ---- retrieval -----------------------------------------------------------------------------

    @property
    def ucb_counts(self) -> np.ndarray:
        """How many rewarded retrievals showed each skill (the UCB strategy's state)."""
        return self.ucb.counts

    def __len__(self) -> int:
        return len(self.skills)

    def get(self, skill_id: str) -> Skill:
        if skill_id not in self._pos:
            raise ConfigError(f"no skill with id {skill_id!r} in this library")
        return self.skills[self._pos[skill_id]]

    def retrieve(
        self,
        task: str,
        task_type: str | None = None,
        k: int = 3,
        strategy: str = "topk",
        budget_chars: int | None = None,
        seed: int | None = None,
        budget_tokens: int | None = None,
        tokenizer: Any = None,
    ) -> Retrieval:
        """Choose skills for a task with a registered strategy and render them as privileged context.

        ``k`` caps the count (``full`` ignores it). ``seed`` makes ``random``/``ucb`` tie-breaks and the
        ``kmeans`` clustering reproducible. ``budget_chars`` / ``budget_tokens`` (with ``tokenizer``)
        bound the rendered context; see :func:`skills.render.render_context`.
        """
        if strategy not in STRATEGIES:
            raise ConfigError(f"unknown retrieval strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
        if not isinstance(task, str):
            raise ConfigError(f"task must be a string, got {type(task).__name__}")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        query = Query(task, task_type, k, np.random.default_rng(seed), seed)
        rank = self.ucb if STRATEGIES[strategy] is UCB else STRATEGIES[strategy]
        ranked = rank(self, query)
        chosen = [self.skills[i] for i, _ in ranked]
        context, shown, truncated = render_context(chosen, budget_chars, budget_tokens, tokenizer)
        return Retrieval(shown, [score for _, score in ranked[: len(shown)]], context, strategy, truncated)

    def update(self, skill_ids: list[str], reward: float) -> None:
        """Credit ``reward`` (an episode's outcome, e.g. score in [0, 1]) to each skill that was shown."""
        if not math.isfinite(reward):
            raise ConfigError(f"reward must be a finite number, got {reward}")
        for skill_id in skill_ids:
            i = self._pos.get(skill_id)
            if i is None:
                raise ConfigError(f"cannot update unknown skill id {skill_id!r}")
            self.ucb.update([i], reward)

    # ---- helpers the strategies use ------------------------------------------------------------

    def embed_query(self, text: str) -> np.ndarray:
        """The unit-norm embedding of ``text``, cached (learners ask for the same task every turn)."""
        if text not in self._query_cache:
            self.prefetch([text])
        return self._query_cache[text]

    def prefetch(self, tasks: list[str]) -> None:
        """Embed many task texts in one batch and cache them (one model call instead of one per task)."""
        todo = list(dict.fromkeys(t for t in tasks if t not in self._query_cache))
        for start in range(0, len(todo), _QUERY_CACHE_SIZE):
            chunk = todo[start : start + _QUERY_CACHE_SIZE]
            vectors = self.embedder.encode(chunk)
            if vectors.shape[1:] != (self.dim,):
                raise ConfigError(
                    f"embedder {self.embedder.name!r} returned vectors of dimension {vectors.shape[-1]}, "
                    f"but this library's index has dimension {self.dim}"
                )
            if len(self._query_cache) + len(chunk) > _QUERY_CACHE_SIZE:
                self._query_cache.clear()
            self._query_cache.update(zip(chunk, vectors))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Indices and inner products of the ``k`` nearest skills (IVF may return fewer).

        One query runs on one OpenMP thread: spreading a single query over threads only adds
        synchronization, and on a busy machine it measured ~100x slower (benchmarks/skills_retrieval.py).
        """
        faiss = _faiss()
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # per calling thread in OpenMP, restored below
        try:
            scores, ids = self.index.search(np.ascontiguousarray(vector[None, :], dtype=np.float32), min(k, len(self)))
        finally:
            faiss.omp_set_num_threads(before)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def canonical_task_type(self, task_type: str) -> str:
        name = task_type.strip().lower()
        return self._aliases.get(name, name)

    def typed_indices(self, task_type: str | None) -> list[int]:
        """Indices of the skills made for ``task_type`` (long or short name, any case)."""
        if not task_type:
            return []
        wanted = self.canonical_task_type(task_type)
        return [i for i, s in enumerate(self.skills) if wanted in {self.canonical_task_type(t) for t in s.task_types}]

    def clusters(self, seed: int = 0, n_clusters: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Seeded k-means over the skill embeddings: (unit-norm centroids, cluster of each skill), cached."""
        n = len(self)
        n_clusters = n_clusters or max(1, round(math.sqrt(n)))
        key = (seed, n_clusters)
        if key not in self._clusters:
            faiss = _faiss()
            km = faiss.Kmeans(self.dim, n_clusters, niter=25, seed=seed, spherical=True, min_points_per_centroid=1, max_points_per_centroid=1 << 20)
            km.train(self.embeddings)
            _, assignment = km.index.search(self.embeddings, 1)
            self._clusters[key] = (np.asarray(km.centroids, dtype=np.float32), assignment[:, 0])
        return self._clusters[key]


def embed_skills(skills: list[Skill], embedder: Embedder) -> np.ndarray:
    """One unit-norm key vector per skill: the normalized mean of its key texts' embeddings."""
    texts = [s.key_texts() for s in skills]
    flat = embedder.encode([t for ts in texts for t in ts])
    owner = np.repeat(np.arange(len(skills)), [len(ts) for ts in texts])
    sums = np.zeros((len(skills), flat.shape[1]), dtype=np.float32)
    np.add.at(sums, owner, flat)
    return l2_normalize(sums)


def _read_sidecar(path: Path) -> dict[str, Any]:
    sidecar = path / SIDECAR
    if not sidecar.is_file():
        raise DataError(f"{path} is not a skill library (no {SIDECAR}); build one with `sdar-gym skills build`")
    try:
        side = json.loads(sidecar.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"malformed JSON in {sidecar}: {e}") from None
    if not isinstance(side, dict) or side.get("format") != FORMAT:
        raise DataError(f"{sidecar} is not a skill-library sidecar (format {FORMAT!r} expected)")
    if side.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{sidecar} has format version {side.get('format_version')!r}; this sdar-gym reads version {FORMAT_VERSION}")
    for key, kind in (("embedder", str), ("dim", int), ("count", int), ("skills", list)):
        if not isinstance(side.get(key), kind):
            raise DataError(f"{sidecar}: field {key!r} is missing or not a {kind.__name__}")
    return side


def _task_type_aliases(envs: set[str]) -> dict[str, str]:
    """Short task-type names per env mapped to the long names skills use (ALFWorld: ``clean`` -> ``pick_clean_...``)."""
    aliases: dict[str, str] = {}
    if "alfworld" in envs:
        from sdar_gym.envs.alfworld.data import TASK_TYPES

        aliases.update({short.lower(): long for long, short in TASK_TYPES.items()})
    return aliases
