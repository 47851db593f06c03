"""One GPU's speed for SDAR training: generation tokens/s (HF and vLLM on the same prompts), a GRPO
and an SDAR train step on the same batch (time, ratio, peak memory), the learner's model-FLOPs
utilization (MFU), and the time to sync the learner's weights into vLLM (and to sleep/wake it).

The model is a random-init Qwen2.5-1.5B-shaped Qwen2 in bf16 (no download needed); the batch is
synthetic: ``groups`` groups of ``group_size`` turns with random prompt and response ids, random
rewards, and a skill context of ``context_tokens`` tokens for the SDAR teacher. Only speed and
memory are measured, so random weights are fine.

    python benchmarks/gpu_step.py                    # on a GPU: writes benchmarks/results/gpu_<card>.json
    python benchmarks/gpu_step.py --shape tiny       # CPU smoke check of the same code path (no vLLM)

Needs a CUDA GPU for the real shape (it stops with a one-line message without one); the vLLM part
needs the ``[vllm]`` extra and is reported as skipped, with the reason, when vLLM is missing.
Sized so that one run on an H100/H200 takes well under 10 minutes.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learners.algorithms import make_learner  # noqa: E402
from learners.hf_policy import HFPolicy  # noqa: E402
from learners.policy_model import PolicyModel, PolicyModelConfig  # noqa: E402
from learners.teacher import SkillContext  # noqa: E402
from sdar_gym.io import atomic_write_json  # noqa: E402
from sdar_gym.rollout.types import Episode, GenerationRequest, SamplingParams, Turn  # noqa: E402

SHAPES = {
    # Qwen2.5-1.5B's config.json: 28 layers, hidden 1536, 12 query / 2 KV heads, MLP 8960, vocab 151936, tied embeddings.
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2, vocab_size=151936),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=1024),
}

PEAK_BF16_TFLOPS = {"H100 SXM": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}
"""Dense bf16 tensor-core peaks from NVIDIA's data sheets, matched against the device name (first match wins)."""


class StubTokenizer:
    """What the learner and HFPolicy need from a tokenizer when prompts are given as ids."""

    chat_template = None
    all_special_tokens: list[str] = []

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self.pad_token_id = 0
        self.eos_token_id = 1

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [2 + b % (self.vocab_size - 2) for b in text.encode("utf-8")]

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return ""


@dataclass
class FixedContext:
    context: str
    skills: tuple = ()


class FixedLibrary:
    """A skill library stand-in returning a context of a fixed size."""

    def __init__(self, chars: int) -> None:
        self.text = ("Skill: go to the receptacle, take the object, then put it in place. " * (chars // 70 + 1))[:chars]

    def retrieve(self, task, task_type=None, **_):
        return FixedContext(self.text)


def card_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()})"


def peak_tflops(name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():
        if all(part in name for part in key.split()):
            return value
    return None


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def make_batch(vocab: int, groups: int, group_size: int, prompt_len: int, response_len: int, seed: int) -> list[Episode]:
    g = torch.Generator().manual_seed(seed)
    episodes = []
    for gi in range(groups):
        for j in range(group_size):
            prompt = torch.randint(2, vocab, (prompt_len,), generator=g).tolist()
            response = torch.randint(2, vocab, (response_len,), generator=g).tolist()
            reward = float(torch.rand((), generator=g) < 0.5) * 10.0
            turn = Turn(prompt_ids=prompt, response_ids=response, logprobs=[-float(torch.rand((), generator=g)) * 5 for _ in response],
                        action="", reward=reward, info={}, task=f"task {gi}", task_type="bench")
            episodes.append(Episode([turn], f"g{gi}", f"t{gi}", f"task {gi}", "bench", reward / 10, reward > 0))
    return episodes


def time_update(learner, episodes, repeats: int) -> tuple[list[float], float | None, dict]:
    times, peak, metrics = [], None, {}
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        synchronize()
        t0 = time.perf_counter()
        metrics = learner.update(episodes)
        synchronize()
        times.append(time.perf_counter() - t0)
        if torch.cuda.is_available():
            peak = max(peak or 0.0, torch.cuda.max_memory_allocated() / 2**30)
    return times, peak, metrics


def timed_generation(generator, requests: list[GenerationRequest]) -> tuple[int, float]:
    """(new tokens, seconds) of one batch, after a 2-request warm-up."""
    generator.generate_sync(requests[:2])
    synchronize()
    t0 = time.perf_counter()
    out = generator.generate_sync(requests)
    synchronize()
    return sum(len(o.response_ids) for o in out), time.perf_counter() - t0


def measure_vllm(policy: PolicyModel, tokenizer: StubTokenizer, requests: list[GenerationRequest], args) -> dict:
    """vLLM tokens/s on the same prompts, then the full-weight sync, sleep and wake times; the
    engine is left asleep (KV cache freed) so the learner steps measured next have the GPU."""
    import tempfile

    try:
        from learners.generators.vllm import VLLMGenerator, require_vllm

        vllm = require_vllm()
    except Exception as e:  # report, do not fail: the learner numbers still come
        return {"skipped": str(e)}
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    folder = Path(tempfile.mkdtemp(prefix="gpu_step_model_"))
    policy.model.save_pretrained(folder)  # the same random weights; no tokenizer (prompts are ids)
    t0 = time.perf_counter()
    llm = vllm.LLM(model=str(folder), skip_tokenizer_init=True, dtype="bfloat16", gpu_memory_utilization=args.vllm_memory, enable_sleep_mode=True,
                   max_model_len=args.gen_prompt_len + args.gen_tokens + 16, logprobs_mode="processed_logprobs", seed=0)
    init_s = time.perf_counter() - t0
    gen = VLLMGenerator(llm, tokenizer, sync_mode="full", sleep=True)
    tokens, seconds = timed_generation(gen, requests)
    syncs = []
    for _ in range(3):
        synchronize()
        t0 = time.perf_counter()
        gen.sync_weights(policy)
        synchronize()
        syncs.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    gen.prepare_update()
    sleep_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    gen.wake()
    wake_s = time.perf_counter() - t0
    gen.prepare_update()
    return {"version": vllm.__version__, "init_s": init_s, "new_tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds,
            "weight_sync_s": statistics.median(syncs), "weight_sync_s_all": syncs, "sleep_s": sleep_s, "wake_s": wake_s,
            "gpu_memory_utilization": args.vllm_memory}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-1.5b")
    ap.add_argument("--groups", type=int, default=4, help="tasks per batch")
    ap.add_argument("--group-size", type=int, default=8, help="G, turns per task")
    ap.add_argument("--prompt-len", type=int, default=1024)
    ap.add_argument("--response-len", type=int, default=128)
    ap.add_argument("--context-tokens", type=int, default=400, help="skill context added to the teacher prompt")
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--gen-batch", type=int, default=32)
    ap.add_argument("--gen-prompt-len", type=int, default=512)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="timed updates per learner (after one warm-up)")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--vllm-memory", type=float, default=0.3, help="vLLM's gpu_memory_utilization (the learner shares the GPU)")
    ap.add_argument("--no-vllm", action="store_true", help="skip the vLLM measurements")
    ap.add_argument("--output", type=Path, default=None, help="default: benchmarks/results/gpu_<card>.json on a GPU, no file on CPU")
    args = ap.parse_args(argv)
    if args.shape != "tiny" and not torch.cuda.is_available():
        raise SystemExit(f"gpu_step.py: the {args.shape} shape needs a CUDA GPU and torch sees none (try --shape tiny for a CPU smoke check)")

    from transformers import Qwen2Config, Qwen2ForCausalLM

    cuda = torch.cuda.is_available()
    shape = SHAPES[args.shape]
    if args.shape == "tiny":
        args.prompt_len, args.response_len, args.gen_prompt_len, args.gen_tokens = min(args.prompt_len, 64), min(args.response_len, 16), min(args.gen_prompt_len, 32), min(args.gen_tokens, 8)
        args.groups, args.gen_batch, args.context_tokens = min(args.groups, 2), min(args.gen_batch, 4), min(args.context_tokens, 32)
    torch.manual_seed(0)
    config = Qwen2Config(**shape, max_position_embeddings=32768, tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    with torch.device("cuda" if cuda else "cpu"):
        model = Qwen2ForCausalLM(config)
    tokenizer = StubTokenizer(shape["vocab_size"])
    pcfg = PolicyModelConfig(model=args.shape, dtype="auto", gradient_checkpointing=args.gradient_checkpointing)
    policy = PolicyModel.from_model(model, tokenizer, pcfg)
    n_params = sum(p.numel() for p in policy.model.parameters())
    card = card_name()
    print(f"{card}: {args.shape} ({n_params / 1e9:.2f}B params, {next(policy.model.parameters()).dtype})")

    # generation through the rollout's HFPolicy
    gen = HFPolicy(policy.model, tokenizer, max_batch_size=args.gen_batch)
    g = torch.Generator().manual_seed(1)
    requests = [
        GenerationRequest(prompt_ids=torch.randint(2, shape["vocab_size"], (args.gen_prompt_len,), generator=g).tolist(),
                          sampling=SamplingParams(max_new_tokens=args.gen_tokens, temperature=1.0, seed=i))
        for i in range(args.gen_batch)
    ]
    gen_tokens, gen_s = timed_generation(gen, requests)
    vllm_report = measure_vllm(policy, tokenizer, requests, args) if cuda and not args.no_vllm else {"skipped": "no CUDA GPU" if not cuda else "--no-vllm"}

    # GRPO and SDAR updates on the same batch
    episodes = make_batch(shape["vocab_size"], args.groups, args.group_size, args.prompt_len, args.response_len, seed=2)
    skills = SkillContext(FixedLibrary(args.context_tokens))
    overrides = {"micro_batch_size": args.micro_batch, "lr": 1e-6}
    results = {}
    for name in ("grpo", "sdar"):
        learner = make_learner(name, policy, skills if name == "sdar" else None, overrides=overrides)
        time_update(learner, episodes, 1)  # warm-up (allocator, kernels)
        times, peak, metrics = time_update(learner, episodes, args.repeats)
        del learner
        if cuda:
            torch.cuda.empty_cache()
        results[name] = {"step_s": statistics.median(times), "step_s_all": times, "peak_memory_gb": peak, "loss": metrics.get("train/loss")}

    turns = args.groups * args.group_size
    seq = args.prompt_len + args.response_len
    # model FLOPs: 6·N per token of the trained pass, 2·N per token of each no-grad pass (reference; SDAR adds the teacher)
    flops = {
        "grpo": 6 * n_params * turns * seq + 2 * n_params * turns * seq,
        "sdar": 6 * n_params * turns * seq + 2 * n_params * turns * seq + 2 * n_params * turns * (seq + args.context_tokens),
    }
    peak = peak_tflops(card) if cuda else None
    for name, r in results.items():
        achieved = flops[name] / r["step_s"] / 1e12
        r["achieved_tflops"] = achieved
        r["mfu"] = achieved / peak if peak else None
    report = {
        "card": card,
        "shape": args.shape,
        "params": n_params,
        "dtype": str(next(policy.model.parameters()).dtype),
        "torch": torch.__version__,
        "batch": {"turns": turns, "prompt_len": args.prompt_len, "response_len": args.response_len, "context_tokens": args.context_tokens, "micro_batch": args.micro_batch},
        "generation": {"batch": args.gen_batch, "prompt_len": args.gen_prompt_len, "new_tokens": gen_tokens, "seconds": gen_s, "tokens_per_s": gen_tokens / gen_s},
        "vllm": vllm_report,
        "vllm_over_hf_generation_tokens_per_s": (vllm_report["tokens_per_s"] / (gen_tokens / gen_s)) if "tokens_per_s" in vllm_report else None,
        "grpo": results["grpo"],
        "sdar": results["sdar"],
        "sdar_over_grpo_step_time": results["sdar"]["step_s"] / results["grpo"]["step_s"],
        "sdar_over_grpo_peak_memory": (results["sdar"]["peak_memory_gb"] / results["grpo"]["peak_memory_gb"]) if cuda else None,
        "peak_bf16_tflops_assumed": peak,
    }
    print(f"generation: {report['generation']['tokens_per_s']:.1f} tokens/s (batch {args.gen_batch})")
    if report["vllm_over_hf_generation_tokens_per_s"] is not None:
        v = report["vllm"]
        print(f"vLLM generation: {v['tokens_per_s']:.1f} tokens/s, {report['vllm_over_hf_generation_tokens_per_s']:.1f}x HF; "
              f"weight sync {v['weight_sync_s']:.2f} s, sleep {v['sleep_s']:.2f} s, wake {v['wake_s']:.2f} s")
    else:
        print(f"vLLM: skipped ({report['vllm'].get('skipped')})")
    for name in ("grpo", "sdar"):
        r = results[name]
        mem = f"{r['peak_memory_gb']:.1f} GiB" if r["peak_memory_gb"] is not None else "n/a"
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        print(f"{name}: step {r['step_s']:.3f} s, peak memory {mem}, {r['achieved_tflops']:.2f} TFLOP/s, MFU {mfu}")
    print(f"SDAR / GRPO step time: {report['sdar_over_grpo_step_time']:.2f}x")
    output = args.output
    if output is None and cuda:
        output = Path(__file__).resolve().parent / "results" / f"gpu_{re.sub(r'[^a-z0-9]+', '_', card.lower()).strip('_')}.json"
    if output is not None:
        atomic_write_json(output, report)
        print(f"wrote {output}")
    return report


if __name__ == "__main__":
    main()
