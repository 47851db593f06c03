"""A save killed mid-write leaves a hidden temp folder; the next save or resume removes it."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from learners.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint


class _Policy:
    device = "cpu"

    def save(self, folder: Path) -> None:
        folder.mkdir()
        (folder / "weights.bin").write_bytes(b"w" * 10)

    def load_weights(self, folder: Path) -> None:
        assert (folder / "weights.bin").exists()


class _Learner:
    def state_dict(self) -> dict:
        return {"t": torch.zeros(2)}

    def load_state_dict(self, state: dict) -> None:
        assert torch.equal(state["t"], torch.zeros(2))


def _killed_save(root: Path, name: str) -> list[Path]:
    """What a SIGKILL during ``atomic_dir`` leaves: a partial temp folder and a half-swapped old one."""
    tmp = root / f".{name}.k3j2x9.tmp"
    (tmp / "model").mkdir(parents=True)
    (tmp / "model" / "part.safetensors").write_bytes(b"x" * 1000)
    old = root / f".{name}.old"
    old.mkdir()
    return [tmp, old]


def _hidden(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def test_next_save_removes_temp_folders_of_a_killed_save(tmp_path):
    root = tmp_path / "checkpoints"
    save_checkpoint(tmp_path, 1, _Policy(), _Learner(), {})
    stale = _killed_save(root, "step_000002")
    save_checkpoint(tmp_path, 2, _Policy(), _Learner(), {})
    assert not any(p.exists() for p in stale)
    assert _hidden(root) == []
    assert latest_checkpoint(tmp_path).name == "step_000002"


def test_resume_removes_temp_folders_of_a_killed_save(tmp_path):
    root = tmp_path / "checkpoints"
    save_checkpoint(tmp_path, 1, _Policy(), _Learner(), {"seed": 0})
    stale = _killed_save(root, "step_000002")
    state = load_checkpoint(latest_checkpoint(tmp_path), _Policy(), _Learner())
    assert state == {"step": 1, "seed": 0}
    assert not any(p.exists() for p in stale)
    assert _hidden(root) == [] and json.loads((root / "step_000001" / "state.json").read_text())["step"] == 1
