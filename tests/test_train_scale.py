"""`sdar-gym train` with the scale-out options: an OpenAI-compatible generator synced after each
update, --generator vllm without vLLM, and two data-parallel processes under torchrun with resume."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("fastapi")

from openai_test_server import serve  # noqa: E402
from test_learners_train import tiny_model  # noqa: E402,F401  (the same tiny model folder fixture)

from learners.trainer import TrainArgs  # noqa: E402
from learners.generators import GeneratorArgs  # noqa: E402
from learners.run_log import read_metrics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def args(model: str, output: Path, **over) -> list[str]:
    """Command-line arguments of a 2-step GRPO run on Search-QA."""
    base = ["train", "--learner", "grpo", "--env", "search-qa", "--model", model, "--steps", "2", "--group-size", "2", "--tasks-per-step", "2",
            "--max-turns", "2", "--max-new-tokens", "6", "--num-envs", "2", "--output", str(output), "--no-progress", "--no-tensorboard",
            "--save-every", "1", "--learner-args", "lr", "1e-2", "kl_coef", "0", "--threads", "1", "--eval-every", "0"]
    for k, v in over.items():
        base += [f"--{k.replace('_', '-')}", *([v] if isinstance(v, str) else v)]
    return base


def test_openai_generator_trains_and_serves_the_new_weights(tiny_model, tmp_path, torch_one_thread) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from learners.generators import make_generator
    from learners.policy_model import PolicyModel, PolicyModelConfig
    from sdar_gym.rollout import GenerationRequest, SamplingParams

    served = AutoModelForCausalLM.from_pretrained(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    with serve(served, tokenizer) as (url, _):
        cfg = TrainArgs(learner="grpo", env="search-qa", model=tiny_model, steps=2, group_size=2, tasks_per_step=1, max_turns=2, max_new_tokens=6,
                        num_envs=2, output=tmp_path / "run", progress=False, tensorboard=False, learner_args={"lr": "1e-2", "kl_coef": "0"},
                        generator="openai", generator_args=GeneratorArgs(urls=[url]), eval_every=1, eval_tasks=2)  # validation samples through the generator too
        last = cfg.run()
        assert last["perf/weight_sync_s"] > 0  # a full-weight sync went to the server after each update
        # the server now holds the trained weights: its greedy outputs are the trained policy's
        trained = PolicyModel.from_pretrained(PolicyModelConfig(model=tiny_model, device="cpu"), with_reference=False)
        trained.load_weights(tmp_path / "run" / "checkpoints" / "step_000002" / "model")
        reqs = [GenerationRequest(messages=[{"role": "user", "content": "which city?"}], sampling=SamplingParams(max_new_tokens=8, temperature=0.0))]
        remote = make_generator("openai", trained, GeneratorArgs(urls=[url], weight_sync="none"))
        got = asyncio.run(remote.generate(reqs))[0]
        want = asyncio.run(make_generator("hf", trained).generate(reqs))[0]
    assert got.response_ids == want.response_ids and got.logprobs == pytest.approx(want.logprobs, abs=1e-5)
    assert [r["step"] for r in read_metrics(tmp_path / "run")] == [0, 1, 2]  # step 0: the validation before the first step
    assert all("eval/success" in r for r in read_metrics(tmp_path / "run"))  # validated through the served policy


def run_cli(argv: list[str], timeout: int = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "sdar_gym.cli", *argv], cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)


def test_generator_vllm_without_vllm_fails_clearly(tiny_model, tmp_path) -> None:
    try:
        import vllm  # noqa: F401

        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    result = run_cli(args(tiny_model, tmp_path / "run", generator="vllm"))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "sdar-gym: error: --generator vllm needs the vllm package" in result.stderr
    assert "Traceback" not in result.stderr


def test_two_processes_under_torchrun_train_save_and_resume(tiny_model, tmp_path) -> None:
    run = tmp_path / "run"
    result = run_cli(args(tiny_model, run, steps="1", launcher="torchrun", num_processes="2"))
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_cli(args(tiny_model, run, launcher="torchrun", num_processes="2") + ["--resume"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["step"] for r in read_metrics(run)] == [1, 2]
    assert [r["rollout/episodes"] for r in read_metrics(run)] == [2.0, 2.0]  # rank 0's half of 2 tasks × G=2
    assert (run / "checkpoints" / "step_000002" / "model").is_dir()
    result = run_cli(args(tiny_model, tmp_path / "odd", tasks_per_step="3", launcher="torchrun", num_processes="2"))
    assert result.returncode != 0 and "must be a multiple of the 2 processes" in result.stderr


def test_a_failed_weight_sync_stops_training(tiny_model, tmp_path, torch_one_thread) -> None:
    """The server takes no new weights (another shape): the run stops after the first update, unlogged."""
    from transformers import AutoTokenizer

    from learners.generators import WeightSyncError
    from learners.tiny import TinyConfig, make_tiny_model

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    with serve(make_tiny_model(tokenizer, TinyConfig(hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1)), tokenizer) as (url, _):
        cfg = TrainArgs(learner="grpo", env="search-qa", model=tiny_model, steps=2, group_size=2, tasks_per_step=1, max_turns=1, max_new_tokens=4,
                        num_envs=2, output=tmp_path / "run", progress=False, tensorboard=False, learner_args={"kl_coef": "0"},
                        generator="openai", generator_args=GeneratorArgs(urls=[url]), eval_every=0)
        with pytest.raises(WeightSyncError, match="answered 400.*stopping rather than roll out on stale weights"):
            cfg.run()
    assert read_metrics(tmp_path / "run") == []


def test_accelerate_launch_runs_two_ranks(tiny_model, tmp_path) -> None:
    run = tmp_path / "run"
    result = run_cli(args(tiny_model, run, steps="1", launcher="accelerate", num_processes="2"))
    assert result.returncode == 0, result.stderr[-3000:]
    [row] = read_metrics(run)
    assert row["step"] == 1 and row["rollout/episodes"] == 2.0  # rank 0 rolled out 1 of the 2 tasks (× G=2): 2 ranks ran
