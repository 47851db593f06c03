"""Data parallel over turn samples, through Accelerate.

Launch any entry point with ``accelerate launch --config_file configs/accelerate/<ddp|fsdp|zero3>.yaml``
or ``torchrun`` (or ``sdar-gym train --launcher ... --num-processes N``). The learner's scoring module
(:class:`learners.policy_model.ResponseScorer`) and optimizer go through ``Accelerator.prepare``, so
DDP, FSDP or DeepSpeed ZeRO-3 come from the launch's accelerate config; this module adds no sharding
or gradient sync of its own. Each process then:
- rolls out its share of the step's task groups (so advantages stay within whole groups);
- computes the reference and teacher log-probs of its own turn samples;
- backpropagates its samples' losses, each weighted by (its tokens / the *global* token count,
  all-reduced) × the number of processes: the engines average gradients over processes, so the
  result is exactly the token-mean over the global batch.

One process (no launcher) runs the same code: ``prepare`` leaves the module unwrapped and every
collective is the identity.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import torch
from torch import nn

from sdar_gym.core import ConfigError, SdarGymError


class DataParallel:
    """One process's view of the data-parallel group: an ``accelerate.Accelerator`` plus the
    collectives the update loop needs."""

    def __init__(self) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs, DistributedType, InitProcessGroupKwargs

        requested = [k for k in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED") if os.environ.get(k, "").lower() == "true"]
        use_deepspeed = "ACCELERATE_USE_DEEPSPEED" in requested
        if use_deepspeed and importlib.util.find_spec("deepspeed") is None:
            raise ConfigError("ACCELERATE_USE_DEEPSPEED is set, but the deepspeed package is not installed (pip install 'sdar-gym[deepspeed]')")
        gpu = torch.cuda.is_available()
        if "ACCELERATE_USE_FSDP" in requested and not gpu:
            # Accelerate enables FSDP for accelerators only (state.py lists no MULTI_CPU among them): on CPUs it would
            # replicate the model silently, or stop deep inside its FSDP plugin (fsdp_sync_module_states)
            raise ConfigError("ACCELERATE_USE_FSDP is set, but Accelerate shards with FSDP only on GPUs; "
                              "launch with configs/accelerate/ddp.yaml or zero3.yaml on CPUs")
        # DeepSpeed runs on CPUs through its own CPU accelerator (gloo), in processes a launcher started; Accelerate
        # reaches it only from a launch not marked cpu, and needs the backend named, else it counts each process
        # a world of one
        deepspeed_on_cpu = use_deepspeed and not gpu and "LOCAL_RANK" in os.environ
        # buffers (rotary tables) are constants: no broadcast in each forward, whose count differs between processes
        handlers = [DistributedDataParallelKwargs(broadcast_buffers=False)] + ([InitProcessGroupKwargs(backend="gloo")] if deepspeed_on_cpu else [])
        self.accelerator = Accelerator(cpu=not gpu and not deepspeed_on_cpu, kwargs_handlers=handlers)
        kind = self.accelerator.distributed_type
        if requested and kind not in (DistributedType.FSDP, DistributedType.DEEPSPEED):
            # not silently replicated: on CPUs Accelerate enables DeepSpeed only in processes a launcher started
            engine, where = ("DeepSpeed", " or in processes a launcher started") if use_deepspeed else ("FSDP", "")
            raise ConfigError(f"{requested[0]} is set, but Accelerate shards with {engine} only on GPUs{where}, and this process is "
                              f"{kind.value}; on CPUs launch with configs/accelerate/zero3.yaml or ddp.yaml")
        self.deepspeed = kind == DistributedType.DEEPSPEED
        """Whether DeepSpeed's engine runs the update (its optimizer state is checkpointed in its own format)."""
        self.sharded = kind == DistributedType.FSDP or (self.deepspeed and self.accelerator.state.deepspeed_plugin.zero_stage == 3)
        """Whether each process holds only a shard of the weights (FSDP, ZeRO-3)."""
        if self.deepspeed:
            plugin = self.accelerator.state.deepspeed_plugin
            if self.sharded and not plugin.deepspeed_config["zero_optimization"].get("stage3_gather_16bit_weights_on_model_save"):
                raise ConfigError("checkpoints of a ZeRO-3 learner hold the full weights: set zero3_save_16bit_model: true in the accelerate config")
            if not plugin.zero3_init_flag:
                # Accelerate hands its ZeRO config to transformers even with zero3_init_flag off, and every
                # from_pretrained would then shard the model as it is built, a collective that each process must
                # join in step; the learner loads whole models and prepare() shards the scorer
                from transformers.integrations import unset_hf_deepspeed_config

                unset_hf_deepspeed_config()
        self.rank = self.accelerator.process_index
        self.world_size = self.accelerator.num_processes

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def sum(self, value: float) -> float:
        """``value`` summed over processes (float64, so token counts stay exact)."""
        return self._reduce(value, "sum")

    def max(self, value: float) -> float:
        """The largest ``value`` over processes (so every process runs the same number of steps)."""
        return self._reduce(value, "max")

    def _reduce(self, value: float, op: str) -> float:
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.accelerator.device)
        if op == "max":
            return float(self.accelerator.gather(t).max().item())
        return float(self.accelerator.reduce(t, "sum").item())

    def prepare(self, module: nn.Module, optimizer: torch.optim.Optimizer, micro_batch_size: int = 1,
                max_grad_norm: float = 1.0) -> tuple[nn.Module, torch.optim.Optimizer]:
        """Wrap ``module`` and ``optimizer`` with the launch's engine (DDP, FSDP, DeepSpeed; none in one process),
        in one ``prepare`` call (FSDP and DeepSpeed rebuild the optimizer over their own parameters). The
        policy stays on the device it was loaded on. DeepSpeed clips inside its own step, so it takes the
        learner's ``max_grad_norm``; ``micro_batch_size`` only fills its batch-size bookkeeping (the learner
        feeds it micro-batches itself)."""
        if self.deepspeed:
            import deepspeed

            self.accelerator.state.deepspeed_plugin.deepspeed_config.update(
                train_micro_batch_size_per_gpu=micro_batch_size, gradient_clipping=max_grad_norm)
            for p in module.external_parameters():  # the scorer reads the output head's weight itself: ZeRO-3 must gather it
                deepspeed.zero.register_external_parameter(module, p)
            return tuple(self.accelerator.prepare(module, optimizer))  # DeepSpeed places the module itself
        return tuple(self.accelerator.prepare(module, optimizer, device_placement=[False, False]))

    def backward(self, loss: torch.Tensor, module: nn.Module, sync: bool) -> None:
        """Accumulate ``loss``'s gradients; ``sync`` on the last micro-batch of an optimizer step
        starts the engine's gradient all-reduce (every process must call it as often)."""
        if self.deepspeed:
            # Accelerate's DeepSpeed backward, told the optimizer step's boundary (DeepSpeed steps there):
            # accelerator.backward would mark every micro-batch a boundary outside its accumulate() counter
            self.accelerator.deepspeed_engine_wrapped.backward(loss, sync_gradients=sync)
            return
        context = contextlib.nullcontext() if sync else self.accelerator.no_sync(module)
        with context:
            self.accelerator.backward(loss)

    def clip_grad_norm_(self, module: nn.Module, max_norm: float) -> float:
        """Clip the (synced) gradients to ``max_norm``; returns their norm before clipping."""
        if self.deepspeed:  # DeepSpeed clips inside its step (the config's gradient_clipping)
            return float(module.get_global_grad_norm() or 0.0)
        return float(self.accelerator.clip_grad_norm_(list(module.parameters()), max_norm))

    @contextlib.contextmanager
    def full_weights(self, module: nn.Module) -> Iterator[None]:
        """Every process holds the full weights inside (generation, weight sync); a no-op unless sharded."""
        if not self.sharded:
            yield
        elif self.deepspeed:
            from deepspeed.runtime.zero.stage3 import unwrap_model_for_generation

            # gathered once, with ZeRO-3's hooks off meanwhile: they would all-gather again in every forward, a
            # collective that processes generating different numbers of tokens never match
            with unwrap_model_for_generation(module):
                yield
        elif self.accelerator.is_fsdp2:
            raise ConfigError("generation needs the full weights; set fsdp_version: 1 in the accelerate config (FSDP1 gathers them)")
        else:
            from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

            with FSDP.summon_full_params(module, writeback=False), _fsdp_units_bypassed(module):
                yield

    def _full(self):
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        # copies to host memory from GPUs (torch's offload of CPU tensors crashes, and they are on the host already)
        return StateDictOptions(full_state_dict=True, cpu_offload=self.accelerator.device.type != "cpu")

    def full_state_dict(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """The module's full state dict, gathered from the shards (every process must call this)."""
        if self.deepspeed:
            return self.accelerator.get_state_dict(module)
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return get_model_state_dict(module, options=self._full())

    def optimizer_state(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> dict | None:
        """The optimizer's full state (gathered from the shards when sharded); None under DeepSpeed, whose
        processes each write their shards with :meth:`save_engine_state`."""
        if self.deepspeed:
            return None
        if not self.sharded:
            return optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(module, optimizer, options=self._full())

    def load_optimizer_state(self, module: nn.Module, optimizer: torch.optim.Optimizer, state: dict | None) -> None:
        """Load what :meth:`optimizer_state` returned (nothing under DeepSpeed: :meth:`load_engine_state` did)."""
        if (state is None) != self.deepspeed:
            written, now = ("with DeepSpeed", "without it") if state is None else ("without DeepSpeed", "under DeepSpeed")
            raise ConfigError(f"this checkpoint's optimizer state was written {written} and this run is launched {now}; "
                              "resume with the accelerate config it was written with")
        if self.deepspeed:
            return
        if not self.sharded:
            optimizer.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        set_optimizer_state_dict(module, optimizer, state, options=self._full())

    def save_engine_state(self, folder: os.PathLike) -> None:
        """DeepSpeed: every process writes its shards of the optimizer state and fp32 master weights into
        ``folder`` (DeepSpeed's checkpoint format, through ``Accelerator.save_state``). All processes call this."""
        if self.rank == 0:
            shutil.rmtree(folder, ignore_errors=True)  # what a killed save left at this step
        self.barrier()
        self.accelerator.save_state(str(folder))
        self.barrier()

    def load_engine_state(self, folder: os.PathLike) -> None:
        """Load what :meth:`save_engine_state` wrote (all processes). DeepSpeed unpickles its own files: resume
        only checkpoints you wrote."""
        if not self.deepspeed:
            raise ConfigError(f"{folder} holds a DeepSpeed learner's state; resume it under the DeepSpeed config it was written with")
        self.accelerator.load_state(str(folder))

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def close(self) -> None:
        """Take the process group down (a no-op in one process). Left up, gloo's worker threads outlive the
        interpreter and a rank can abort at exit ("terminate called without an active exception", SIGABRT)
        after a run that went well: torch asks every program to destroy its group (pytorch issue 190489)."""
        self.accelerator.state.destroy_process_group()


@contextlib.contextmanager
def _fsdp_units_bypassed(root: nn.Module) -> Iterator[None]:
    """Each FSDP unit below ``root`` replaced by the module it wraps. Inside ``summon_full_params`` those
    hold the full weights, so a forward stays local; through the wrappers every forward would all-gather
    again (torch runs no forward inside ``summon_full_params``), which processes generating different
    lengths never match."""
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    units = [(parent, name, child) for parent in root.modules() for name, child in parent.named_children() if isinstance(child, FSDP)]
    for parent, name, child in units:
        setattr(parent, name, child.module)
    try:
        yield
    finally:
        for parent, name, child in reversed(units):
            setattr(parent, name, child)


def current() -> DataParallel:
    """This process's data-parallel group, from the environment ``accelerate launch`` / ``torchrun``
    set (``RANK``, ``WORLD_SIZE``, ``ACCELERATE_USE_FSDP``...): NCCL on GPUs, gloo on CPUs."""
    return DataParallel()


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
