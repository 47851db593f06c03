"""A run's metric log: JSONL (the source of truth), TensorBoard, and optionally Weights & Biases.

``metrics.jsonl`` has one JSON object per step; each line is appended and flushed whole, and on
``--resume`` lines past the checkpoint's step are dropped so the file always matches the weights.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sdar_gym.io import atomic_write_text, read_jsonl

METRICS_FILE = "metrics.jsonl"


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All rows of a run's ``metrics.jsonl`` (skipping a torn last line, if any)."""
    path = Path(run_dir) / METRICS_FILE
    return list(read_jsonl(path, skip_invalid=True)) if path.exists() else []


class RunLog:
    def __init__(self, run_dir: Path, resume_step: int = 0, tensorboard: bool = True, wandb_project: str | None = None, config: dict | None = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_metrics(self.run_dir) if r.get("step", 0) < resume_step]
        atomic_write_text(self.run_dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in kept))
        self._file = open(self.run_dir / METRICS_FILE, "a", encoding="utf-8")
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=resume_step)
        self._wandb = None
        if wandb_project:
            try:
                import wandb
            except ImportError:
                from sdar_gym.core import ConfigError

                raise ConfigError("--wandb-project needs the wandb package: pip install wandb") from None
            self._wandb = wandb.init(project=wandb_project, config=config, dir=str(self.run_dir), resume="allow")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": step, **{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(metrics, step=step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
