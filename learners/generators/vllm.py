"""The vLLM generator: an in-process ``vllm.LLM`` engine (the optional ``[vllm]`` extra, a CUDA GPU).

- Prompts go in as token ids (``{"prompt_token_ids": ids}``); each sample asks ``logprobs=0``, the
  sampled token's own log-prob, which is read back from ``output.logprobs[i][token_id]``.
- The engine is built with ``logprobs_mode="processed_logprobs"``, so log-probs are of the
  temperature-scaled logits, the learner's convention (:mod:`learners.hf_policy`).
- Colocated with the learner it sleeps during each update (``enable_sleep_mode``; ``sleep(level=1)``
  frees the KV cache and offloads weights) and wakes before the weights are synced.
- Weight sync after each update: full weights through the model's own ``load_weights`` (run on
  every worker with ``LLM.apply_model``), or a LoRA adapter saved to disk and named in each
  request's ``LoRARequest``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from learners.generators import GeneratorArgs, WeightSyncError, render_prompt_ids, weight_sync_mode
from sdar_gym.core import ConfigError
from sdar_gym.io import atomic_dir
from sdar_gym.rollout.types import Generation, GenerationRequest, SamplingParams


def require_vllm() -> Any:
    """The ``vllm`` module, or a ConfigError naming what is missing (the package, or a CUDA GPU)."""
    try:
        import vllm
    except ImportError:
        raise ConfigError("--generator vllm needs the vllm package, which is not installed: pip install 'sdar-gym[vllm]' "
                          "(on a machine with a CUDA GPU), or use --generator hf or openai") from None
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("--generator vllm needs a CUDA GPU and torch sees none; use --generator hf (or openai with remote servers)")
    return vllm


def sampling_kwargs(sampling: SamplingParams) -> dict[str, Any]:
    """``vllm.SamplingParams`` keyword arguments for one request (one sample, its own log-prob)."""
    return {
        "n": 1,
        "max_tokens": sampling.max_new_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k if sampling.top_k > 0 else -1,
        "seed": sampling.seed,
        "stop": list(sampling.stop) or None,
        "include_stop_str_in_output": True,
        "logprobs": 0,
    }


def to_generation(output: Any, prompt_ids: list[int]) -> Generation:
    """A :class:`Generation` from a ``vllm.RequestOutput`` (its first completion)."""
    sample = output.outputs[0]
    ids = list(sample.token_ids)
    if sample.logprobs is None or len(sample.logprobs) != len(ids):
        raise ConfigError("vLLM returned no per-token log-probs; the request must set logprobs=0")
    logprobs = [float(step[token].logprob) for step, token in zip(sample.logprobs, ids)]
    return Generation(text=sample.text, prompt_ids=list(prompt_ids), response_ids=ids, logprobs=logprobs,
                      finish_reason=sample.finish_reason or "stop")


class VLLMGenerator:
    """The rollout's Policy over an in-process ``vllm.LLM`` (build with :meth:`from_policy`)."""

    def __init__(self, llm: Any, tokenizer: Any, sync_mode: str = "full", sleep: bool = False, lora_dir: str | os.PathLike | None = None) -> None:
        self.llm = llm
        self.tokenizer = tokenizer
        self.sync_mode = sync_mode
        self.sleep = sleep
        self.asleep = False
        self.version = 0
        self.lora_dir = Path(lora_dir) if lora_dir is not None else None
        self.lora_request: Any = None

    @classmethod
    def from_policy(cls, policy: Any, args: GeneratorArgs, run_dir: str | os.PathLike | None = None, **_: Any) -> VLLMGenerator:
        vllm = require_vllm()
        mode = weight_sync_mode(args, policy)
        # The engine core in this process, so a weight sync hands tensors over instead of pickling them (as TRL's colocate mode does).
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        lora_rank = getattr(policy.config, "lora_rank", 0)
        import torch.distributed as dist

        # Under torchrun every learner rank holds its own engine (tensor parallel inside the rank's
        # group only): vLLM's external_launcher backend reuses the launcher's process environment.
        launched = {"distributed_executor_backend": "external_launcher"} if dist.is_available() and dist.is_initialized() else {}
        llm = vllm.LLM(
            model=policy.config.model,
            tokenizer=policy.config.model,
            dtype="bfloat16",
            gpu_memory_utilization=args.gpu_memory_utilization,
            tensor_parallel_size=args.tensor_parallel_size,
            max_model_len=args.max_model_len,
            enable_sleep_mode=args.sleep,
            enable_lora=mode == "lora",
            max_lora_rank=max(lora_rank, 8),
            logprobs_mode="processed_logprobs",
            **launched,
        )
        lora_dir = Path(run_dir) / "sync" if run_dir is not None else Path(tempfile.mkdtemp(prefix="sdar-gym-lora-"))
        return cls(llm, policy.tokenizer, mode, args.sleep, lora_dir)

    async def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        import asyncio

        return await asyncio.to_thread(self.generate_sync, requests)

    def generate_sync(self, requests: list[GenerationRequest]) -> list[Generation]:
        from vllm import SamplingParams as VLLMSampling

        if self.asleep:
            self.wake()
        prompts = [render_prompt_ids(self.tokenizer, r) for r in requests]
        params = [VLLMSampling(**sampling_kwargs(r.sampling)) for r in requests]
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False, lora_request=self.lora_request)
        return [to_generation(o, p) for o, p in zip(outputs, prompts)]

    def prepare_update(self) -> None:
        """Free the KV cache (and offload weights) while the learner trains on the same GPU."""
        if self.sleep and not self.asleep:
            self.llm.sleep(level=1)
            self.asleep = True

    def wake(self) -> None:
        if self.asleep:
            self.llm.wake_up()
            self.asleep = False

    def sync_weights(self, policy: Any) -> None:
        self.wake()
        self.version += 1
        try:
            if self.sync_mode == "lora":
                from vllm.lora.request import LoRARequest

                assert self.lora_dir is not None
                folder = self.lora_dir / f"v{self.version:06d}"
                with atomic_dir(folder) as tmp:
                    policy.save(tmp)
                self.lora_request = LoRARequest(f"sdar-gym-v{self.version:06d}", self.version, str(folder))
            elif self.sync_mode == "full":
                state = {k: v.detach() for k, v in policy.model.state_dict().items()}
                self.llm.apply_model(lambda model: model.load_weights(state.items()))
        except Exception as e:  # any engine-side failure: never go on with stale weights
            raise WeightSyncError(f"weight sync to the vLLM engine failed ({type(e).__name__}: {e}); stopping rather than roll out on stale weights") from e

    def close(self) -> None:
        self.llm = None
