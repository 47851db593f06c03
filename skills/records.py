"""The skill record and its two file formats: markdown with front matter, and JSON/JSONL.

**Markdown** (one skill per ``.md`` file)::

    ---
    id: alfworld-clean
    title: Clean an object, then place it
    env: alfworld
    task_types: ["pick_clean_then_place_in_recep"]
    tags: ["clean", "sinkbasin"]
    examples: ["put a clean mug in coffeemachine", "clean some mug and put it in coffeemachine"]
    ---
    The skill text, in markdown. Everything after the closing ``---`` is the text.

The front matter is one ``key: value`` per line. A value is read as JSON when it parses as JSON
(lists, numbers, quoted strings, ``true``), else as the bare string, so ``title: Clean it`` works
without quotes. This is a strict subset of YAML: the files read the same in any YAML tool. ``id``
defaults to the file stem and ``env`` to the parent folder's name.

**JSON / JSONL**: a ``.json`` file holds one skill object or a list of them; a ``.jsonl`` file holds
one skill object per line. Keys are the :class:`Skill` fields; only ``title`` and ``text`` are required.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sdar_gym.core import DataError
from sdar_gym.io import atomic_write_json, atomic_write_jsonl, atomic_write_text, read_jsonl

SKILL_SUFFIXES = (".md", ".json", ".jsonl")
_ID_CHARS = re.compile(r"[^a-z0-9]+")


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second (the ``created`` stamp of new skills)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def slugify(text: str, max_len: int = 60) -> str:
    """A lowercase id fragment from free text (``"Clean it, then place!"`` -> ``clean-it-then-place``)."""
    return _ID_CHARS.sub("-", text.lower()).strip("-")[:max_len].rstrip("-") or "skill"


@dataclass
class Skill:
    """One piece of reusable know-how, shown to the teacher as privileged context."""

    id: str
    """Unique within a library."""
    title: str
    """A short headline; rendered as the skill's heading."""
    text: str
    """The advice itself (markdown)."""
    env: str = ""
    """The env the skill is for (``alfworld``, ``webshop``, ``search_qa``)."""
    task_types: list[str] = field(default_factory=list)
    """Task types the skill applies to; empty means a general skill for every task of ``env``."""
    tags: list[str] = field(default_factory=list)
    """Free keywords, for people and for filtering."""
    source: str = "handwritten"
    """Where the skill came from: ``handwritten``, ``episodes:<file>``, ``llm:<model>``, ..."""
    created: str = field(default_factory=now_iso)
    """ISO 8601 creation time."""
    examples: list[str] = field(default_factory=list)
    """Task texts the skill fits; the skill's embedding is the mean over them and the title."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Anything else (e.g. how many episodes support a built skill, which skills were merged in)."""

    @property
    def is_general(self) -> bool:
        return not self.task_types

    def key_texts(self) -> list[str]:
        """The texts whose mean embedding is the skill's key: the title and each task example.

        Without examples, the title and the advice. Task texts are short ("put a clean mug in
        coffeemachine."); averaging over examples with varied objects cancels the object words and
        keeps what marks the task type ("clean", "two", "hot"), which the advice text would blur.
        """
        texts = [self.title, *(self.examples or [self.text])]
        return [t.strip() for t in texts if t.strip()]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "skill") -> Skill:
        """Build a skill from a mapping, rejecting unknown keys and wrong types with a clear error."""
        if not isinstance(data, dict):
            raise DataError(f"{where}: a skill must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DataError(f"{where}: unknown skill field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        for key in ("title", "text"):
            if not isinstance(data.get(key), str) or not data[key].strip():
                raise DataError(f"{where}: skill field {key!r} must be a non-empty string")
        for key in ("id", "env", "source", "created"):
            if key in data and not isinstance(data[key], str):
                raise DataError(f"{where}: skill field {key!r} must be a string, got {type(data[key]).__name__}")
        for key in ("task_types", "tags", "examples"):
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DataError(f"{where}: skill field {key!r} must be a list of strings")
        if not isinstance(data.get("meta", {}), dict):
            raise DataError(f"{where}: skill field 'meta' must be an object")
        data = dict(data)
        data.setdefault("id", slugify(data["title"]))
        data["text"] = data["text"].strip()
        return cls(**data)


def parse_markdown(text: str, where: str = "skill", defaults: dict[str, Any] | None = None) -> Skill:
    """Parse one skill from markdown with front matter (see the module docstring)."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise DataError(f"{where}: a markdown skill must start with a '---' front matter line")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise DataError(f"{where}: the front matter has no closing '---' line") from None
    data: dict[str, Any] = dict(defaults or {})
    for lineno, line in enumerate(lines[1:end], start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip().isidentifier():
            raise DataError(f"{where}:{lineno}: expected 'key: value' in the front matter, got {line!r}")
        value = value.strip()
        try:
            data[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            data[key.strip()] = value
    data["text"] = "\n".join(lines[end + 1 :]).strip()
    return Skill.from_dict(data, where)


def to_markdown(skill: Skill) -> str:
    """Write a skill as markdown with front matter; :func:`parse_markdown` reads it back unchanged."""
    head = {k: v for k, v in skill.to_dict().items() if k != "text" and v not in ([], {}, "")}
    lines = ["---", *(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in head.items()), "---", skill.text, ""]
    return "\n".join(lines)


def load_skill_file(path: str | os.PathLike) -> list[Skill]:
    """Read the skills of one ``.md``, ``.json`` or ``.jsonl`` file."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(f"cannot read skill file {path}: {e.strerror}") from None
    defaults = {"id": path.stem, "env": path.parent.name}
    if path.suffix == ".md":
        return [parse_markdown(raw, str(path), defaults)]
    if path.suffix == ".json":
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise DataError(f"malformed JSON in {path}: {e}") from None
        items = data if isinstance(data, list) else [data]
        return [Skill.from_dict(d, f"{path}[{i}]") for i, d in enumerate(items)]
    if path.suffix == ".jsonl":
        return [Skill.from_dict(d, f"{path}:{lineno}") for lineno, d in read_jsonl(path, line_numbers=True)]
    raise DataError(f"{path}: unsupported skill file type {path.suffix!r}; expected one of {', '.join(SKILL_SUFFIXES)}")


def load_skills(path: str | os.PathLike) -> list[Skill]:
    """Read the skills of a file, or of every skill file in a folder (sorted by name, not recursive)."""
    path = Path(path).expanduser()
    if path.is_file():
        skills = load_skill_file(path)
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in SKILL_SUFFIXES and p.is_file())
        if not files:
            raise DataError(f"no skill files ({', '.join(SKILL_SUFFIXES)}) in {path}")
        skills = [s for f in files for s in load_skill_file(f)]
    else:
        raise DataError(f"skill source {str(path)!r} does not exist")
    check_unique_ids(skills, str(path))
    return skills


def check_unique_ids(skills: list[Skill], where: str) -> None:
    seen: set[str] = set()
    for s in skills:
        if s.id in seen:
            raise DataError(f"{where}: duplicate skill id {s.id!r}")
        seen.add(s.id)


def save_skills(skills: list[Skill], path: str | os.PathLike) -> Path:
    """Write skills atomically: a ``.json``/``.jsonl`` file, or else a folder of ``.md`` files."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return atomic_write_jsonl(path, [s.to_dict() for s in skills])
    if path.suffix == ".json":
        return atomic_write_json(path, [s.to_dict() for s in skills])
    for s in skills:
        atomic_write_text(path / f"{slugify(s.id, 120)}.md", to_markdown(s))
    return path
