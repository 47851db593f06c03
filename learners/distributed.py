"""Data parallel over turn samples: the few collectives a multi-process learner needs.

Launch any entry point with ``torchrun`` or ``accelerate launch`` (or ``sdar-gym train
--launcher ... --num-processes N``); each process then:
- rolls out its share of the step's task groups (so advantages stay within whole groups);
- computes the reference and teacher log-probs of its own turn samples;
- backpropagates its samples' losses, each weighted by (its tokens / the *global* token count,
  all-reduced), so the summed gradients are exactly the token-mean over the global batch;
- sums the gradients over processes before clipping and the optimizer step, which therefore
  keeps every replica's weights identical (what DDP does, written out).

One process (no process group) makes every call below the identity, so the update loop in
:mod:`learners.base` reads the same with or without it.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from sdar_gym.core import ConfigError, SdarGymError


@dataclass(frozen=True)
class DataParallel:
    rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def sum(self, value: float) -> float:
        """``value`` summed over processes (float64, so token counts stay exact)."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=_device())
        dist.all_reduce(t)
        return float(t.item())

    def max(self, value: float) -> float:
        """The largest ``value`` over processes (so every process runs the same number of steps)."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    def sync_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Sum each gradient over processes (a process without samples contributes zeros)."""
        if not self.active:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)

    def broadcast_parameters(self, module: nn.Module) -> None:
        """Rank 0's weights everywhere (e.g. randomly initialized LoRA adapters)."""
        if self.active:
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def current() -> DataParallel:
    """The process group's rank and size, or a single process when there is none."""
    if dist.is_available() and dist.is_initialized():
        return DataParallel(dist.get_rank(), dist.get_world_size())
    return DataParallel()


def init_from_env() -> DataParallel:
    """Join the process group that ``torchrun`` / ``accelerate launch`` describe in the environment
    (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...): NCCL on GPUs, gloo on CPUs."""
    sharded = [k for k in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED") if os.environ.get(k, "").lower() == "true"]
    if sharded:
        raise ConfigError(f"{sharded[0]} is set, but the learner replicates the model on every process (DDP-style) and does not shard it "
                          "with FSDP or DeepSpeed ZeRO yet; launch with configs/accelerate/ddp.yaml (or LoRA to fit a large model)")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return current()


def _device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


LAUNCHED = "SDAR_GYM_LAUNCHED"
"""Set in the environment of the processes :func:`launch` starts."""


def launch(launcher: str, num_processes: int, accelerate_config: os.PathLike | None = None) -> dict[str, float]:
    """Re-run this ``sdar-gym train`` command as ``num_processes`` ranks under torchrun or accelerate launch."""
    argv = sys.argv[1:]
    if not argv or argv[0] != "train":
        raise ConfigError("--launcher works from the `sdar-gym train` command line; elsewhere start torchrun or accelerate launch yourself")
    if num_processes < 1:
        raise ConfigError(f"num_processes must be at least 1, got {num_processes}")
    if launcher == "torchrun":
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(num_processes)]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes)]
        # without a config file, --multi_gpu is what makes accelerate start one process per rank (gloo on CPUs)
        cmd += ["--config_file", str(accelerate_config)] if accelerate_config else (["--multi_gpu"] if num_processes > 1 else [])
    env = {**os.environ, LAUNCHED: "1"}  # the ranks run the same command line: they must not launch again
    rc = subprocess.run(cmd + ["-m", "sdar_gym.cli", *argv], env=env).returncode
    if rc:
        raise SdarGymError(f"{launcher} exited with status {rc}")
    return {}
