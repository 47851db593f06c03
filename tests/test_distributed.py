"""Data parallel over turn samples: two gloo processes make exactly the update one process makes."""
from __future__ import annotations

import socket
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
mp = pytest.importorskip("torch.multiprocessing")

from distributed_support import deepspeed_on_cpu, generated, rank_main, uneven_generation_rank, updated_parameters  # noqa: E402,F401  (a fixture)

from learners.distributed import DataParallel, current  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("learner", ["grpo", "sdar"])
def test_two_processes_update_like_one(learner, tmp_path) -> None:
    """Rank shares differ in token count, so a rank-local token-mean would give other weights."""
    out = tmp_path / "rank0.pt"
    mp.start_processes(rank_main, args=(2, free_port(), learner, str(out)), nprocs=2, start_method="spawn", join=True)
    two = torch.load(out, weights_only=True)
    one = updated_parameters(learner)
    assert two.keys() == one.keys() and one
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-5, rtol=0, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("learner", ["grpo", "sdar"])
def test_fsdp_two_processes_update_like_one(learner, tmp_path) -> None:
    """The same under Accelerate's FSDP preparation (sharded weights, gradients and AdamW state); the
    full weights gathered afterwards generate what the one-process model generates."""
    assert_sharded_update_like_one(learner, tmp_path, fsdp=True)


def assert_sharded_update_like_one(learner: str, tmp_path, fsdp: bool = False, zero3: bool = False) -> None:
    out = tmp_path / "rank0.pt"
    mp.start_processes(rank_main, args=(2, free_port(), learner, str(out), 4, None, fsdp, zero3), nprocs=2, start_method="spawn", join=True)
    two = torch.load(out, weights_only=True)
    one = updated_parameters(learner)
    assert torch.equal(two.pop("generated"), generated(one))
    assert two.keys() == one.keys() and one
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-5, rtol=0, msg=lambda m, n=name: f"{n}: {m}")


def test_ranks_with_unequal_shares_stay_in_step(tmp_path) -> None:
    """3 groups over 2 ranks with 3 samples per optimizer step: rank 1 has no samples for the second
    step and must still join its gradient sync (else both hang); the replicas stay identical."""
    out = tmp_path / "rank0.pt"
    mp.start_processes(rank_main, args=(2, free_port(), "grpo", str(out), 3, {"ppo_mini_batch_size": "3"}), nprocs=2, start_method="spawn", join=True)
    zero, one = torch.load(out, weights_only=True), torch.load(f"{out}.1", weights_only=True)
    start = updated_parameters("grpo", groups=3, lr="0")
    assert zero.keys() == one.keys() == start.keys()
    for name in zero:
        torch.testing.assert_close(zero[name], one[name], atol=0, rtol=0)
    assert any(not torch.equal(zero[n], start[n]) for n in zero)  # an update happened


def test_one_process_is_the_identity() -> None:
    from learners.policy_model import ResponseScorer

    dp = current()
    assert (dp.rank, dp.world_size, dp.active, dp.sharded) == (0, 1, False, False)
    assert dp.sum(3.0) == 3.0 and dp.max(2.0) == 2.0
    module = ResponseScorer(torch.nn.Linear(2, 2), chunk=4)
    wrapped, _ = dp.prepare(module, torch.optim.SGD(module.parameters(), lr=0.1))
    assert wrapped is module  # no engine in one process: the policy's own module


@pytest.mark.parametrize("flag", ["ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"])
def test_sharding_on_cpus_is_refused_not_ignored(flag, monkeypatch) -> None:
    """Accelerate shards only on accelerators; on CPUs it would silently replicate the model."""
    if torch.cuda.is_available():
        pytest.skip("a GPU machine can shard")
    from sdar_gym.core import ConfigError

    monkeypatch.setenv(flag, "true")
    with pytest.raises(ConfigError, match=f"{flag} is set, but (Accelerate shards .* only on GPUs|the deepspeed package is not installed)"):
        DataParallel()


@pytest.mark.parametrize("learner", ["grpo", "sdar"])
def test_zero3_two_processes_update_like_one(learner, tmp_path, deepspeed_on_cpu) -> None:
    """The same under Accelerate's DeepSpeed ZeRO-3 (CPU accelerator, gloo), with two micro-batches per
    optimizer step: DeepSpeed must step once, at the boundary the learner marks."""
    assert_sharded_update_like_one(learner, tmp_path, zero3=True)


def test_the_fsdp_config_on_cpus_is_refused_clearly(monkeypatch) -> None:
    """What `accelerate launch --config_file configs/accelerate/fsdp.yaml` sets in each process: on CPUs
    Accelerate's FSDP plugin would stop deep inside with 'no available devices'."""
    if torch.cuda.is_available():
        pytest.skip("a GPU machine can shard")
    from sdar_gym.core import ConfigError

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_SYNC_MODULE_STATES", "true")
    with pytest.raises(ConfigError, match="ACCELERATE_USE_FSDP is set, but Accelerate shards with FSDP only on GPUs"):
        DataParallel()


def test_a_checkpoint_resumes_only_under_the_engine_that_wrote_it(tmp_path) -> None:
    """DeepSpeed's optimizer state lives in its own shard files: a run launched the other way says so."""
    from sdar_gym.core import ConfigError

    dp = current()
    with pytest.raises(ConfigError, match="holds a DeepSpeed learner's state; resume it under the DeepSpeed config"):
        dp.load_engine_state(tmp_path / "engine")
    module = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    with pytest.raises(ConfigError, match="optimizer state was written with DeepSpeed and this run is launched without it"):
        dp.load_optimizer_state(module, optimizer, None)
    dp.load_optimizer_state(module, optimizer, optimizer.state_dict())


@pytest.mark.parametrize("engine", ["fsdp", "zero3"])
def test_ranks_generating_different_lengths_do_not_hang(engine, request) -> None:
    """Rollouts differ in length between processes; with the full weights gathered, a forward must not
    wait for the other processes (ZeRO-3's own hooks would all-gather in each one)."""
    if engine == "zero3":
        request.getfixturevalue("deepspeed_on_cpu")
    ranks = mp.start_processes(uneven_generation_rank, args=(2, free_port(), engine), nprocs=2, start_method="spawn", join=False)
    deadline = time.monotonic() + 240
    while not ranks.join(timeout=5):
        if time.monotonic() > deadline:
            for process in ranks.processes:
                process.kill()
            pytest.fail(f"{engine}: the processes hung after forwards of different counts with the full weights gathered")
