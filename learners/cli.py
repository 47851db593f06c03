"""Arguments of ``sdar-gym train``, ``eval``, ``plot`` and ``sft`` (tyro dataclasses).

This module must stay importable without torch: ``run()`` imports the heavy code on use.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro


@dataclass
class TrainArgs:
    """Train a policy with RL on an env: ``sdar-gym train --learner sdar --env alfworld``."""

    learner: str = "sdar"
    """Learner name: grpo, sdar, opsd, grpo_opsd, skill_grpo, rlsd, skill_sd."""
    env: str = "alfworld"
    """Env short name or gymnasium id (see ``sdar-gym envs``)."""
    model: str | None = None
    """Hugging Face id or local folder; omitted, the built-in tiny policy is used (built on first use)."""
    steps: int = 100
    """RL steps (one rollout batch and one policy update each)."""
    group_size: int = 8
    """G: rollouts per task; advantages are normalized within each group."""
    tasks_per_step: int = 16
    """Tasks (groups) per step; a step rolls out tasks_per_step × group_size episodes."""
    max_turns: int = 50
    """Turns per episode at most."""
    skills: str = "topk"
    """Skill retrieval strategy for the teacher (and the student, for skill_grpo): full, task_type, topk, kmeans, ucb, random."""
    skills_k: int = 3
    """Skills retrieved per task."""
    skills_embedder: str = "default"
    """Embedder of the skill library: default (MiniLM), hashing, or a sentence-transformers id."""
    skills_budget_chars: int | None = None
    """Cap on the rendered skill context, in characters."""
    env_pool: Literal["inline", "process", "ray", "http"] = "inline"
    """Where envs run: in this process, worker processes, Ray actors, or HTTP env servers."""
    num_envs: int = 8
    """Env slots in the pool (and the generation batch size)."""
    env_kwargs: dict[str, str] = field(default_factory=dict)
    """Extra env constructor arguments, e.g. ``--env-kwargs data_dir DIR split train``."""
    output: Path = Path("runs/run")
    """Run folder: metrics.jsonl, tensorboard/, checkpoints/, config.json."""
    resume: bool = False
    """Continue the run in --output from its latest checkpoint."""
    seed: int = 0
    """Seed of task sampling and generation; a resumed run replays the same choices."""
    temperature: float = 1.0
    """Sampling temperature of the rollout."""
    max_new_tokens: int = 256
    """Tokens per response at most."""
    learner_args: dict[str, str] = field(default_factory=dict)
    """Learner settings, e.g. ``--learner-args lr 1e-5 distill_coef 0.02 gate_beta 5``."""
    lora_rank: int = 0
    """LoRA rank (0: full fine-tuning)."""
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """Model dtype (auto: bf16 on a GPU, fp32 on CPU)."""
    device: str = "auto"
    """Torch device (auto: cuda when available)."""
    save_every: int = 10
    """Checkpoint every this many steps (and at the end)."""
    threads: int = 0
    """Torch CPU threads (0: torch's default; 1 is often faster on a busy shared CPU)."""
    tensorboard: bool = True
    """Also write TensorBoard event files."""
    wandb_project: str | None = None
    """Log to this Weights & Biases project (needs wandb installed)."""
    progress: bool = True
    """Show a rich progress bar."""

    def run(self) -> dict[str, float]:
        _threads(self.threads)
        from learners.trainer import Trainer

        return Trainer(self).train()


@dataclass
class EvalArgs:
    """Evaluate a policy and print the paper's Table 1 breakdown for the env."""

    env: str = "alfworld"
    """Env short name or gymnasium id."""
    model: str | None = None
    """Hugging Face id or local folder (omit both this and --checkpoint for the built-in tiny policy)."""
    checkpoint: Path | None = None
    """A training run folder or one of its checkpoints/step_N folders."""
    split: str | None = None
    """Data split for envs that have splits (ALFWorld: valid_seen, valid_unseen)."""
    episodes: int = 50
    """Tasks to evaluate (each played once); the first N task ids of the split, in order."""
    batch_size: int = 8
    """Episodes run side by side; results do not depend on it."""
    max_turns: int = 50
    temperature: float = 0.0
    """0 is greedy decoding."""
    max_new_tokens: int = 256
    seed: int = 0
    env_pool: Literal["inline", "process", "ray", "http"] = "inline"
    env_kwargs: dict[str, str] = field(default_factory=dict)
    """Extra env constructor arguments."""
    output: Path | None = None
    """Also write the breakdown as JSON here."""
    threads: int = 0
    """Torch CPU threads (0: default)."""

    def run(self) -> dict[str, float]:
        _threads(self.threads)
        from learners.evaluate import run_eval

        return run_eval(self)


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
        from learners.plot import plot_run

        return plot_run(self.run_dir, self.out, self.smooth)


@dataclass
class SFTArgs:
    """Build the built-in tiny policy: a tokenizer trained on env text and a small Qwen2 model
    warm-started by supervised learning on the env's expert demonstrations."""

    env: str = "alfworld"
    """Env whose expert demonstrations to learn from."""
    output: Path | None = None
    """Where to save the model (default: the cache the trainer uses when --model is omitted)."""
    games: int = 200
    """Expert episodes (one per task) to learn from (ALFWorld's generated train split has 200)."""
    epochs: int = 10
    """Passes over the demonstrations."""
    lr: float = 2e-3
    batch_size: int = 8
    vocab_size: int = 2048
    """Size of the byte-level BPE vocabulary trained on the demonstrations' text."""
    hidden_size: int = 128
    """Big enough to reach a non-trivial held-out success (about 15% on generated ALFWorld), small
    enough to build in about 10 minutes on one CPU core (see benchmarks/results/learning.json)."""
    num_layers: int = 3
    max_turns: int = 30
    skip_task_types: list[str] = field(default_factory=list)
    """Task types left out of the demonstrations (e.g. pick_two_obj_and_place when demonstrating on
    real ALFWorld games, whose planner can take minutes per Pick2 game on a small CPU)."""
    env_kwargs: dict[str, str] = field(default_factory=dict)
    """Extra env constructor arguments (e.g. data_dir, split); for ALFWorld they default to the
    generated train split on the fast engine (``learners.sft.DEMO_ENV_KWARGS``)."""
    teacher_fraction: float = 0.3
    """Share of turns shown in SDAR's teacher template (skill text in the prompt), so the teacher branch is in distribution."""
    skills_embedder: str = "hashing"
    """Embedder retrieving the skill text of teacher-template turns (as ``train --skills-embedder``)."""
    skills_budget_chars: int | None = 800
    """Cap on that skill text (as ``train --skills-budget-chars``; the CPU preset uses the same): the full
    top-3 context is about 2,000 characters, twice a student prompt, and would double the build time."""
    held_out_fraction: float = 0.1
    """Share of demonstrated tasks kept out of training to measure the teacher−student gap (sft.json)."""
    seed: int = 0
    force: bool = False
    """Rebuild even if the output already holds a model."""
    threads: int = 0
    """Torch CPU threads (0: default)."""

    def run(self) -> Path:
        _threads(self.threads)
        from learners.sft import build_sft_policy

        return build_sft_policy(self)


def _threads(n: int) -> None:
    if n < 0:
        from sdar_gym.core import ConfigError

        raise ConfigError(f"threads must be >= 0, got {n}")
    if n:
        import torch

        torch.set_num_threads(n)


def parse_env_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """CLI strings to Python values where they look like numbers or booleans."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if not isinstance(value, str):
            out[key] = value
        elif value.lower() in ("true", "false"):
            out[key] = value.lower() == "true"
        else:
            try:
                out[key] = int(value)
            except ValueError:
                try:
                    out[key] = float(value)
                except ValueError:
                    out[key] = value
    return out
