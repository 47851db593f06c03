"""One learner update on a fixed batch, in one process or as one rank of a gloo group (for
tests/test_distributed.py, which spawns this with torch.multiprocessing)."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

import torch
import torch.distributed as dist

from learners.algorithms import make_learner
from learners.policy_model import PolicyModel, PolicyModelConfig
from learners.teacher import SkillContext
from learners.tiny import TinyConfig, make_tiny_model, train_tokenizer
from sdar_gym.rollout.types import Episode, Turn

TEXTS = ["You are in the middle of a room; take mug 2 and go to the sinkbasin 1.", "<action>look</action> skills: clean it first"] * 10


@dataclass
class Context:
    context: str
    skills: tuple = ()


class FixedLibrary:
    def retrieve(self, task, task_type=None, **_):
        return Context(f"Skill for {task}: find the object, clean it, then place it.")


def batch(vocab: int, groups: int = 4, group_size: int = 2) -> list[Episode]:
    """Groups whose turns differ in length, so each rank's share has a different token count."""
    g = torch.Generator().manual_seed(0)
    episodes = []
    for gi in range(groups):
        for j in range(group_size):
            turns = []
            for k in range(1 + (gi + j) % 2):
                n = 3 + 9 * (gi % 2) + k  # groups 1, 3 (rank 1's share) have much longer responses
                turns.append(Turn(prompt_ids=torch.randint(3, vocab, (6 + gi,), generator=g).tolist(),
                                  response_ids=torch.randint(3, vocab, (n,), generator=g).tolist(),
                                  logprobs=(-torch.rand(n, generator=g) * 3).tolist(), action="look",
                                  reward=float(torch.rand((), generator=g)), info={}, task=f"task {gi}", task_type="pick"))
            episodes.append(Episode(turns, f"g{gi}", f"t{gi}", f"task {gi}", "pick", 0.0, False))
    return episodes


def updated_parameters(learner_name: str, rank: int = 0, world_size: int = 1, lora_rank: int = 0, groups: int = 4,
                       **learner_args: str) -> dict[str, torch.Tensor]:
    """Parameters after one update on the batch; rank r of W takes the groups r, r+W, ..."""
    torch.set_num_threads(1)
    tokenizer = train_tokenizer(TEXTS, vocab_size=300)
    model = make_tiny_model(tokenizer, TinyConfig(hidden_size=32, num_layers=1, intermediate_size=64))
    torch.manual_seed(1)  # LoRA adapters' initialization (identical on every rank)
    policy = PolicyModel.from_model(model, tokenizer, PolicyModelConfig(model="tiny", device="cpu", dtype="fp32", lora_rank=lora_rank))
    names = [k for k, v in policy.model.named_parameters() if v.requires_grad]  # before an engine wraps them
    skills = SkillContext(FixedLibrary()) if learner_name == "sdar" else None
    learner = make_learner(learner_name, policy, skills, {"lr": 1e-2, "micro_batch_size": 3, "entropy_coef": 0.01, "kl_coef": 0.1, **learner_args})
    episodes = [e for i, e in enumerate(batch(len(tokenizer), groups)) if int(e.group_id[1:]) % world_size == rank]
    learner.update(episodes)
    if learner.dp.sharded:  # every rank joins the gather of the full weights, and the generation with them
        gathered = learner.dp.full_state_dict(policy.scorer) or {}  # DeepSpeed gathers onto rank 0 only
        full = {k.removeprefix("model."): v for k, v in gathered.items()}
        with learner.dp.full_weights(policy.scorer):
            full["generated"] = policy.model.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=4, do_sample=False)
        learner.load_state_dict(learner.state_dict())  # the optimizer state gathered from the shards and scattered back (collectives)
        return {k: full[k].detach().clone() for k in [*names, "generated"] if k in full}
    return {k: v.detach().clone() for k, v in policy.model.named_parameters() if k in names}


def generated(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Greedy tokens of the tiny model holding ``params`` (what a sharded rank generated, unsharded)."""
    tokenizer = train_tokenizer(TEXTS, vocab_size=300)
    model = make_tiny_model(tokenizer, TinyConfig(hidden_size=32, num_layers=1, intermediate_size=64))
    model.load_state_dict(params, strict=False)
    return model.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=4, do_sample=False)


def fsdp_on_cpu():
    """A DataParallel under Accelerate's FSDP1 preparation on CPUs. Accelerate enables FSDP only on
    GPUs, though torch's FSDP1 runs on gloo: the test sets the state Accelerate would set on GPUs."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    from learners import distributed

    dp = distributed.DataParallel()
    state = dp.accelerator.state
    state.fsdp_plugin = FullyShardedDataParallelPlugin(fsdp_version=1, auto_wrap_policy="transformer_based_wrap", use_orig_params=True,
                                                        sync_module_states=False, state_dict_type="FULL_STATE_DICT")
    for shared in (state.__dict__, PartialState._shared_state):  # AcceleratorState copies PartialState's on each construction
        shared.update(distributed_type=DistributedType.FSDP, device=torch.device("cpu"))
    dp.sharded = True
    return dp


ZERO3_ENV = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3", "ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL": "true",
             "ACCELERATE_DEEPSPEED_ZERO3_INIT": "false", "ACCELERATE_MIXED_PRECISION": "no", "DS_ACCELERATOR": "cpu"}
"""What ``accelerate launch --config_file configs/accelerate/zero3.yaml`` sets (in fp32: DeepSpeed's CPU accelerator)."""


@pytest.fixture(scope="session")
def deepspeed_on_cpu() -> None:
    """Skip unless DeepSpeed is installed and its CPU accelerator comes up (it builds a shared-memory op on first use)."""
    pytest.importorskip("deepspeed")
    probe = "from deepspeed.accelerator import get_accelerator; assert get_accelerator().device_name() == 'cpu'"
    done = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "DS_ACCELERATOR": "cpu"}, capture_output=True, text=True, timeout=300)
    if done.returncode:
        pytest.skip(f"DeepSpeed's CPU accelerator does not start here: {done.stderr.strip().splitlines()[-1:]}")


def rank_main(rank: int, world_size: int, port: int, learner_name: str, out: str, groups: int = 4, learner_args: dict | None = None,
              fsdp: bool = False, zero3: bool = False) -> None:
    """Rank 0's updated parameters go to ``out``, the other ranks' to ``out.<rank>``."""
    if fsdp:
        from learners import distributed

        distributed.current = fsdp_on_cpu
    if zero3:
        os.environ.update(ZERO3_ENV)
    # what torchrun / accelerate launch set: the learner's Accelerator joins the gloo group from it
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    try:
        params = updated_parameters(learner_name, rank, world_size, groups=groups, **(learner_args or {}))
        torch.save(params, out if rank == 0 else f"{out}.{rank}")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def train_rank_main(rank: int, world_size: int, port: int, train_args: dict) -> None:
    """One rank of ``TrainArgs(**train_args).run()`` under Accelerate's FSDP preparation on CPUs (as in
    :func:`fsdp_on_cpu`): the trainer's rollout, gathers, checkpoints and resume with sharded weights."""
    from learners import distributed
    from learners.trainer import TrainArgs

    distributed.current = fsdp_on_cpu
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    try:
        TrainArgs(**train_args).run()
    except BaseException:
        if dist.is_initialized():
            dist.destroy_process_group()
        raise
    # a group left up can abort the rank at interpreter exit (SIGABRT), after a run that went well
    assert not dist.is_initialized(), "the trainer left its process group up"


def uneven_generation_rank(rank: int, world_size: int, port: int, engine: str) -> None:
    """Inside ``full_weights`` rank r runs 1 + 5r forwards (its rollout generates other lengths than the
    others'), then all meet at a barrier: no forward may need the other processes."""
    if engine == "fsdp":
        from learners import distributed

        distributed.current = fsdp_on_cpu
    else:
        os.environ.update(ZERO3_ENV)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    try:
        tokenizer = train_tokenizer(TEXTS, vocab_size=300)
        model = make_tiny_model(tokenizer, TinyConfig(hidden_size=32, num_layers=2, intermediate_size=64))
        policy = PolicyModel.from_model(model, tokenizer, PolicyModelConfig(model="tiny", device="cpu", dtype="fp32"))
        learner = make_learner("grpo", policy, None, {"micro_batch_size": 3})
        with learner.dp.full_weights(policy.scorer), torch.no_grad():
            for _ in range(1 + 5 * rank):
                policy.model(torch.tensor([[5, 6, 7, 8]]))
        learner.dp.barrier()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
