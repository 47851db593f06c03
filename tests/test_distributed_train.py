"""Sharded learners through the whole trainer on CPUs: train, checkpoint, resume (2 processes).

ZeRO-3 runs under a real ``accelerate launch`` with the shipped configs/accelerate/zero3.yaml (DeepSpeed's
CPU accelerator over gloo). FSDP cannot: Accelerate enables FSDP on accelerators only, so its test sets
the state Accelerate would set on GPUs (tests/distributed_support.py) and runs the trainer in each rank.
"""
from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
mp = pytest.importorskip("torch.multiprocessing")

from distributed_support import deepspeed_on_cpu, train_rank_main  # noqa: E402,F401  (a fixture)
from test_distributed import free_port  # noqa: E402
from test_learners_train import tiny_model  # noqa: E402,F401  (the same tiny model folder fixture)
from test_train_scale import args, run_cli  # noqa: E402

from learners.run_log import read_metrics  # noqa: E402


def weights(run: Path, step: int = 2) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run / "checkpoints" / f"step_{step:06d}" / "model" / "model.safetensors")


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys() and a
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=0, rtol=0, msg=lambda m, k=k: f"{k}: {m}")


def test_zero3_launch_trains_saves_and_resumes(tiny_model, tmp_path, deepspeed_on_cpu) -> None:
    """`sdar-gym train --launcher accelerate --accelerate-config configs/accelerate/zero3.yaml`: 2 steps
    straight == 1 step, stop, --resume to 2, bit for bit (the optimizer shards and fp32 master weights come
    back from engine/; the bf16 weights of model/ alone would not give them)."""
    zero3 = dict(launcher="accelerate", accelerate_config="configs/accelerate/zero3.yaml", num_processes="2")
    env = {"DS_ACCELERATOR": "cpu"}
    for run, steps, resume in [("a", "2", []), ("b", "1", []), ("b", "2", ["--resume"])]:
        result = run_cli(args(tiny_model, tmp_path / run, steps=steps, **zero3) + resume, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert_same_weights(a, b)
    assert {v.dtype for v in a.values()} == {torch.bfloat16}  # the config's bf16, gathered from the shards
    assert any(not torch.equal(a[k], v) for k, v in weights(tmp_path / "a", 1).items())  # step 2 changed the weights
    ra, rb = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [r["step"] for r in ra] == [r["step"] for r in rb] == [1, 2]
    assert ra[1]["train/loss"] == rb[1]["train/loss"] and ra[1]["train/grad_norm"] == rb[1]["train/grad_norm"]
    engine = tmp_path / "b" / "checkpoints" / "step_000002" / "engine" / "pytorch_model"
    assert sorted(p.name for p in engine.glob("*optim_states.pt")) == [f"bf16_zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1)]
    assert not [p for p in (tmp_path / "b" / "checkpoints").iterdir() if p.name.startswith(".")]  # no staging left behind


def test_fsdp_trainer_trains_saves_and_resumes(tiny_model, tmp_path) -> None:
    """The trainer in 2 ranks under Accelerate's FSDP1 preparation: 2 steps straight == 1 step, stop,
    --resume to 2, bit for bit (full weights and AdamW state gathered from the shards, then sharded back)."""
    base = dict(learner="grpo", env="search-qa", model=tiny_model, group_size=2, tasks_per_step=2, max_turns=2, max_new_tokens=6, num_envs=2,
                progress=False, tensorboard=False, save_every=1, threads=1, learner_args={"lr": "1e-2", "kl_coef": "0"}, eval_every=0)
    for run, steps, resume in [("a", 2, False), ("b", 1, False), ("b", 2, True)]:
        kw = base | dict(output=tmp_path / run, steps=steps, resume=resume)
        mp.start_processes(train_rank_main, args=(2, free_port(), kw), nprocs=2, start_method="spawn", join=True)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert_same_weights(a, b)
    assert any(not torch.equal(a[k], v) for k, v in weights(tmp_path / "a", 1).items())  # step 2 changed the weights
    ra, rb = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [r["step"] for r in ra] == [r["step"] for r in rb] == [1, 2]
    assert ra[1]["train/loss"] == rb[1]["train/loss"]
    state = torch.load(tmp_path / "b" / "checkpoints" / "step_000002" / "learner.pt", weights_only=True)
    assert state["updates"] == 2 and state["optimizer"]["state"]  # the full AdamW state, gathered from both ranks
