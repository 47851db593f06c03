"""Atomic file and folder writes: a crash never leaves a half-written file where a reader looks."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterator

from sdar_gym.core import DataError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False))


def atomic_write_jsonl(path: str | os.PathLike, rows: list[Any]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: str | os.PathLike, skip_invalid: bool = False, line_numbers: bool = False) -> Iterator[Any]:
    """Yield the JSON objects of a JSONL file, one per non-blank line, streaming.

    A line that is not a JSON object is a :class:`DataError` naming ``path:line``, unless
    ``skip_invalid`` (a log being appended to may end in a torn line). With ``line_numbers``,
    yield ``(line number, object)`` so callers can name the line of a bad record.
    """
    path = Path(path)
    try:
        f = path.open(encoding="utf-8")
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                if skip_invalid:
                    continue
                raise DataError(f"malformed JSON in {path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                if skip_invalid:
                    continue
                raise DataError(f"{path}:{lineno}: each line must be a JSON object, got {type(row).__name__}")
            yield (lineno, row) if line_numbers else row


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` in one rename.

    Readers never see a partly written folder: either the old one (or none) or the complete new one.
    Writers of the same ``path`` at once (threads or processes filling one cache entry) each publish
    theirs whole, and the last one stays.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        _publish(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _publish(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` to ``path``, moving what is there aside first. Checking first and renaming after
    raced a concurrent writer (its folder appeared in between: ENOTEMPTY), so the rename is tried
    first and retried after each move aside; each writer moves aside under a name of its own."""
    aside: list[Path] = []
    try:
        while True:
            try:
                os.replace(tmp, path)
                return
            except OSError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR):
                    raise
            aside.append(path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old"))
            with contextlib.suppress(FileNotFoundError):  # another writer moved it first
                os.replace(path, aside[-1])
    finally:
        for old in aside:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
