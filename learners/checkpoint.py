"""Atomic training checkpoints: ``<run>/checkpoints/step_<N>/`` plus a ``latest`` pointer.

A checkpoint folder is written under a temporary name and renamed into place
(:func:`sdar_gym.io.atomic_dir`), then ``latest`` is atomically rewritten, so a crash at any
moment leaves the previous checkpoint intact and ``--resume`` never sees a torn one. The
temporary folders a killed save leaves behind are removed at the next save or resume.
Optimizer state is a tensor-only ``torch.save`` file loaded with ``weights_only=True``, except under
DeepSpeed: there every process writes its shards in DeepSpeed's own format (``engine/``, which
DeepSpeed unpickles when it loads them), into a staging folder that the atomic save takes in whole.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from sdar_gym.core import DataError
from sdar_gym.io import atomic_dir, atomic_write_text


ENGINE = "engine"
"""A checkpoint's folder of DeepSpeed's engine state (optimizer shards, fp32 master weights)."""


def engine_staging(run_dir: Path, step: int) -> Path:
    """Where every process of a DeepSpeed learner writes its engine state before :func:`save_checkpoint` takes it in."""
    return Path(run_dir) / "checkpoints" / f".step_{step:06d}.{ENGINE}"


def remove_stale_temps(root: Path, keep: Path | None = None) -> None:
    """Delete the hidden ``.step_*`` folders :func:`sdar_gym.io.atomic_dir` (or a DeepSpeed staging) leaves
    when a save is killed; ``keep``: the staging of the save under way."""
    for p in Path(root).glob(".step_*"):
        if p.is_dir() and p != keep:
            shutil.rmtree(p, ignore_errors=True)


def save_checkpoint(run_dir: Path, step: int, policy, learner, state: dict[str, Any], keep: int = 2,
                    weights: dict[str, torch.Tensor] | None = None, learner_state: dict[str, Any] | None = None,
                    engine: Path | None = None) -> Path:
    """Write a checkpoint; ``weights`` and ``learner_state``, when given, were gathered beforehand by
    every process of a sharded learner, and ``engine`` (:func:`engine_staging`) written by every process
    of a DeepSpeed learner (only rank 0 calls this)."""
    root = Path(run_dir) / "checkpoints"
    name = f"step_{step:06d}"
    remove_stale_temps(root, keep=engine)
    with atomic_dir(root / name) as tmp:
        if engine is not None:
            os.replace(engine, tmp / ENGINE)
        if weights is None:
            policy.save(tmp / "model")
        else:
            policy.save(tmp / "model", state_dict=weights)
        torch.save(learner.state_dict() if learner_state is None else learner_state, tmp / "learner.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, **state}, indent=1), encoding="utf-8")
    atomic_write_text(root / "latest", name)
    old = sorted(p for p in root.glob("step_*") if p.is_dir())
    for p in old[:-keep] if keep > 0 else []:
        shutil.rmtree(p, ignore_errors=True)
    return root / name


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = Path(run_dir) / "checkpoints" / "latest"
    if not pointer.exists():
        return None
    path = pointer.parent / pointer.read_text(encoding="utf-8").strip()
    if not (path / "state.json").exists():
        raise DataError(f"checkpoint pointer {pointer} names {path.name}, which is missing or incomplete")
    return path


def load_checkpoint(path: Path, policy, learner, weights: bool = True) -> dict[str, Any]:
    """Load weights (unless ``weights`` is False: loaded before a sharded learner was built) and optimizer
    state in place; return the saved trainer state (with ``step``)."""
    remove_stale_temps(Path(path).parent)
    if weights:
        policy.load_weights(path / "model")
    if (path / ENGINE).is_dir():
        learner.dp.load_engine_state(path / ENGINE)
    learner.load_state_dict(torch.load(path / "learner.pt", map_location=policy.device, weights_only=True))
    return json.loads((path / "state.json").read_text(encoding="utf-8"))
