"""Search-QA records, exact match, and loaders for the formats users already have.

* Questions: Search-R1's and FlashRAG's sets, parquet or jsonl, one row per question with
  ``question``, ``golden_answers`` and ``data_source`` (Search-R1's parquet may instead hold the
  answers under ``reward_model.ground_truth.target``). Optional ``id`` and ``metadata``.
* Corpus: the wiki-18 jsonl, one ``{"id": ..., "contents": "\\"Title\\"\\ntext"}`` per line.
"""
from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdar_gym.core import DataError
from sdar_gym.io import read_jsonl

QUESTION_SUFFIXES = (".jsonl", ".parquet")
"""Question-file formats the loader reads, in the order a split name is looked up."""


_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """The standard SQuAD/Search-R1 normalization: lowercase, drop punctuation and articles, squeeze spaces."""
    text = text.lower().translate(_PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golden_answers: Iterable[str]) -> bool:
    """True when the normalized prediction equals any normalized golden answer."""
    pred = normalize_answer(prediction)
    return any(pred == normalize_answer(g) for g in golden_answers)


@dataclass(frozen=True)
class Passage:
    """One retrievable document."""

    id: str
    title: str
    text: str

    @property
    def contents(self) -> str:
        """The wiki-18 ``contents`` field: the quoted title, a newline, then the text."""
        return f'"{self.title}"\n{self.text}'

    def to_document(self) -> dict[str, str]:
        """The document as Search-R1's retriever returns it (a wiki-18 row)."""
        return {"id": self.id, "contents": self.contents}


def split_contents(contents: str) -> tuple[str, str]:
    """Split wiki-18 ``contents`` into (title, text); a missing title line gives an empty title."""
    first, sep, rest = contents.partition("\n")
    if not sep:
        return "", contents.strip()
    return first.strip().strip('"'), rest.strip()


@dataclass(frozen=True)
class Question:
    """One question with its golden answers and, for generated sets, its evidence."""

    id: str
    question: str
    golden_answers: tuple[str, ...]
    data_source: str
    evidence_queries: tuple[str, ...] = ()
    """Searches that retrieve the supporting passages, in hop order (what the expert issues)."""
    supporting_ids: tuple[str, ...] = ()
    """Ids of the passages that together contain the answer."""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_row(self) -> dict[str, Any]:
        """A FlashRAG/Search-R1-style jsonl row (evidence goes in ``metadata``)."""
        meta = dict(self.metadata)
        meta.update(evidence_queries=list(self.evidence_queries), supporting_ids=list(self.supporting_ids))
        return {
            "id": self.id,
            "question": self.question,
            "golden_answers": list(self.golden_answers),
            "data_source": self.data_source,
            "metadata": meta,
        }


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"question file {path} does not exist")
    if path.suffix == ".jsonl":
        return list(read_jsonl(path))
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow raises several types for unreadable files
            raise DataError(f"{path}: not a readable parquet file ({e})") from None
    raise DataError(f"{path}: unsupported question format {path.suffix!r}; expected one of {QUESTION_SUFFIXES}")


def _golden_answers(row: dict[str, Any]) -> list[str] | None:
    answers = row.get("golden_answers")
    if answers is None:  # Search-R1's processed parquet keeps them in the reward model's target
        answers = ((row.get("reward_model") or {}).get("ground_truth") or {}).get("target")
    if isinstance(answers, str):
        answers = [answers]
    if answers is None:
        return None
    return [str(a) for a in answers]


def load_questions(path: str | Path, data_source: str | None = None) -> list[Question]:
    """Read a Search-R1/FlashRAG question file (parquet or jsonl).

    Rows without an ``id`` get ``<file stem>-<row>``, stable as long as the file is. ``data_source``
    fills rows that lack one (default: the file's parent folder name, FlashRAG's layout).
    """
    path = Path(path)
    rows = _read_rows(path)
    if not rows:
        raise DataError(f"{path}: no questions")
    fallback_source = data_source or path.parent.name or path.stem
    questions = []
    for i, row in enumerate(rows):
        text, answers = row.get("question"), _golden_answers(row)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}: row {i} has no 'question' string")
        if not answers:
            raise DataError(f"{path}: row {i} has no 'golden_answers' (nor reward_model.ground_truth.target)")
        meta = row.get("metadata") or {}
        questions.append(
            Question(
                id=str(row.get("id") if row.get("id") is not None else f"{path.stem}-{i}"),
                question=text.strip(),
                golden_answers=tuple(answers),
                data_source=str(row.get("data_source") or fallback_source),
                evidence_queries=tuple(meta.get("evidence_queries") or ()),
                supporting_ids=tuple(str(s) for s in meta.get("supporting_ids") or ()),
                metadata={k: v for k, v in meta.items() if k not in ("evidence_queries", "supporting_ids")},
            )
        )
    return questions


def find_question_file(data_dir: str | Path, split: str) -> Path:
    """``<data_dir>/<split>.jsonl`` or ``<split>.parquet``, whichever exists."""
    data_dir = Path(data_dir)
    for suffix in QUESTION_SUFFIXES:
        candidate = data_dir / f"{split}{suffix}"
        if candidate.is_file():
            return candidate
    found = sorted(p.stem for p in data_dir.glob("*") if p.suffix in QUESTION_SUFFIXES and p.stem != "corpus")
    raise DataError(f"no questions for split {split!r} in {data_dir}; splits there: {found or 'none'}")


def iter_corpus(path: str | Path) -> Iterator[Passage]:
    """Stream passages from a wiki-18 style jsonl (``id`` and ``contents``; ``title``/``text`` also accepted)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"corpus file {path} does not exist")
    for i, row in enumerate(read_jsonl(path)):
        if "contents" in row:
            title, text = split_contents(str(row["contents"]))
        elif "text" in row:
            title, text = str(row.get("title", "")), str(row["text"])
        else:
            raise DataError(f"{path}: passage {i} has neither 'contents' nor 'text'")
        yield Passage(id=str(row.get("id", i)), title=title, text=text)


def load_corpus(path: str | Path) -> list[Passage]:
    passages = list(iter_corpus(path))
    if not passages:
        raise DataError(f"corpus {path} holds no passages")
    return passages
