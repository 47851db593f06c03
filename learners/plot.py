"""``sdar-gym plot RUN_DIR``: PNG curves of a run's success, reward, SDAR gate mean and teacher gap."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from learners.run_log import read_metrics
from sdar_gym.core import DataError

CURVES: dict[str, tuple[str, str]] = {
    "held_out_success": ("eval/success", "held-out success (validation)"),
    "success": ("rollout/all/success", "success rate"),
    "reward": ("rollout/all/reward", "episode return (shaped)"),
    "gate_mean": ("sdar/gate_mean", "SDAR gate mean"),
    "teacher_gap": ("sdar/teacher_gap_mean", "teacher − student log-prob gap"),
}
"""PNG name -> (metric key, y label). A curve whose metric the run lacks (e.g. the gate in GRPO) is skipped."""


def _smooth(values: list[float], window: int) -> list[float]:
    out = []
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1) : i + 1]
        out.append(sum(chunk) / len(chunk))
    return out


def save_figure(fig, path: Path) -> Path:
    """Write a matplotlib figure as PNG to ``path`` atomically and close it."""
    import matplotlib.pyplot as plt

    from sdar_gym.io import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def plot_run(run_dir: str | Path, out: str | Path | None = None, smooth: int = 1) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    if not rows:
        raise DataError(f"{run_dir} has no metrics.jsonl rows to plot (is it a run folder of sdar-gym train?)")
    out_dir = Path(out) if out else run_dir / "plots"
    written = []
    for name, (key, label) in CURVES.items():
        points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if not points:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5))
        steps, values = zip(*points)
        ax.plot(steps, _smooth(list(values), max(1, smooth)))
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.set_title(f"{run_dir.name}: {label}")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        written.append(save_figure(fig, out_dir / f"{name}.png"))
    print("\n".join(str(p) for p in written))
    return written


@dataclass
class PlotArgs:
    """Save PNG curves of a run: success, reward, SDAR gate mean and teacher gap."""

    run_dir: Annotated[Path, tyro.conf.Positional]
    """A run folder written by ``sdar-gym train``."""
    out: Path | None = None
    """Folder for the PNGs (default: RUN_DIR/plots)."""
    smooth: int = 1
    """Moving-average window in steps."""

    def run(self) -> list[Path]:
        return plot_run(self.run_dir, self.out, self.smooth)
