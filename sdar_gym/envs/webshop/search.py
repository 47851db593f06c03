"""BM25 product search with ``bm25s``, configured like the original's Pyserini/Lucene index.

The original indexes, per product, ``title + description + first bullet + option text`` lowercased
(``search_engine/convert_product_file_format.py``) with Anserini's defaults: Lucene's English
stop words, the Porter stemmer, and BM25 with k1=0.9, b=0.4. We do the same with ``bm25s``
(``method="lucene"``). Porter stemming needs PyStemmer; without it terms are left unstemmed.
Only documents sharing a term with the query are returned, best first, ties by catalog order.
The index's vocabulary holds exactly the indexed terms (no bm25s "empty token", which has no score
column), so a query keeps the terms the index knows and drops the rest: any text is a valid query.

Building the index of a big catalog takes a while (about 20 s for 100k products), so an index can
be cached on disk (bm25s's own pickle-free format), keyed by a hash of the documents and settings.
"""
from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import bm25s
import numpy as np

from sdar_gym.envs.webshop.catalog import Product
from sdar_gym.io import atomic_dir

SEARCH_RETURN_N = 50
LUCENE_STOPWORDS = (
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
    "they this to was will with"
).split()
TOKEN_PATTERN = r"(?u)\b\w+\b"
_TOKEN = re.compile(TOKEN_PATTERN)
_STOPWORDS = frozenset(LUCENE_STOPWORDS)
K1, B = 0.9, 0.4


@functools.lru_cache(maxsize=1)
def porter_stemmer() -> Callable[[list[str]], list[str]] | None:
    """PyStemmer's Porter stemmer (Lucene's PorterStemFilter algorithm), or None if not installed."""
    try:
        import Stemmer
    except ImportError:
        return None
    return Stemmer.Stemmer("porter").stemWords


def product_document(p: Product) -> str:
    """The text the original indexes for a product."""
    option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in p.options.items())
    first_bullet = p.bullets[0] if p.bullets else ""
    return " ".join([p.title, p.description, first_bullet, option_text]).lower()


def _index_key(documents: list[str]) -> str:
    h = hashlib.sha256(repr((bm25s.__version__, "no-empty-token", K1, B, TOKEN_PATTERN, LUCENE_STOPWORDS,
                             porter_stemmer() is not None)).encode())
    for doc in documents:
        h.update(doc.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


class ProductSearch:
    """A BM25 index over products; :meth:`search` returns up to 50 asins, best first.

    ``cache_dir``: where to load the index from, or save it to after building (None: no cache).
    """

    def __init__(self, products: Sequence[Product], cache_dir: Path | None = None) -> None:
        self.asins = [p.asin for p in products]
        documents = [product_document(p) for p in products]
        path = cache_dir / f"bm25-{_index_key(documents)}" if cache_dir is not None else None
        if path is not None and (path / "params.index.json").is_file():
            try:
                self._bm25 = bm25s.BM25.load(path, show_progress=False)
                return
            except (OSError, EOFError, ValueError, KeyError):
                pass  # a damaged cache entry is rebuilt below
        corpus = bm25s.tokenize(
            documents,
            token_pattern=TOKEN_PATTERN,
            stopwords=LUCENE_STOPWORDS,
            stemmer=porter_stemmer(),
            show_progress=False,
        )
        self._bm25 = bm25s.BM25(k1=K1, b=B, method="lucene")
        self._bm25.index(corpus, show_progress=False, create_empty_token=False)
        if path is not None:
            with atomic_dir(path) as tmp:
                self._bm25.save(tmp, show_progress=False)

    def _query_tokens(self, query: str) -> list[str]:
        """The corpus's tokenization (lowercase, split, drop stop words, stem), indexed terms only.

        Done here rather than with ``bm25s.tokenize``, whose per-call setup costs ~10 ms. A term the
        index does not know (for instance the empty stem Porter makes of "s") is dropped.
        """
        words = [w for w in _TOKEN.findall(query.lower()) if w not in _STOPWORDS]
        stem = porter_stemmer()
        tokens = stem(words) if stem is not None else words
        return [t for t in tokens if t in self._bm25.vocab_dict]

    def search(self, query: str, k: int = SEARCH_RETURN_N) -> list[str]:
        tokens = self._query_tokens(query)
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        order = np.lexsort((hits, -scores[hits]))
        return [self.asins[i] for i in hits[order]]
