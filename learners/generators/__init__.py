"""Generation backends behind the rollout's ``Policy`` protocol, chosen with ``--generator``.

Every backend takes prompt token ids (chat messages are rendered by the learner's tokenizer, so
the ids the learner trains on are the ids that were sent) and returns response ids with their
sampling log-probs. Besides ``generate`` a backend follows the learner through training:

    generator = make_generator("openai", policy, GeneratorArgs(urls=[...]))
    episodes = collect(generator, pool, tasks, ...)     # rollout
    generator.prepare_update()                          # e.g. vLLM frees its KV cache (sleep mode)
    learner.update(episodes)
    generator.sync_weights(policy)                      # new weights reach the engine, or WeightSyncError

This module stays importable without torch; each backend loads on use.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sdar_gym.core import ConfigError, SdarGymError
from sdar_gym.rollout.types import Generation, GenerationRequest


class WeightSyncError(SdarGymError):
    """The engine did not take the new weights: training stops rather than roll out on stale ones."""


@dataclass
class GeneratorArgs:
    """Settings of the vllm and openai generators (the hf generator needs none)."""

    urls: list[str] = field(default_factory=list)
    """openai: base URLs of OpenAI-compatible completion servers, e.g. http://10.0.0.2:8000 (requests are spread across them)."""
    served_model: str | None = None
    """openai: the model name the servers serve (default: the first one listed by GET /v1/models)."""
    weight_sync: Literal["auto", "full", "lora", "none"] = "auto"
    """How new weights reach the engine: full weights, a LoRA adapter (auto: lora when training LoRA),
    or none (evaluation only; never use it while training)."""
    sync_dir: str | None = None
    """openai: a folder the servers can read, where each sync writes the weights they load (default: <run>/sync)."""
    timeout_s: float = 600.0
    """openai: seconds one completion request may take before it is retried on another server."""
    retries: int = 2
    """openai: further servers tried after a request fails; then the episode is marked failed."""
    max_concurrency: int = 64
    """openai: requests in flight per server at most."""
    gpu_memory_utilization: float = 0.4
    """vllm: fraction of the GPU the engine may take (the rest is the learner's when colocated)."""
    tensor_parallel_size: int = 1
    """vllm: GPUs one engine spans."""
    sleep: bool = True
    """vllm: free the engine's KV cache (sleep mode) during each learner update, to share the GPU."""
    max_model_len: int | None = None
    """vllm: context length the engine reserves for (default: the model's)."""


class Generator(Protocol):
    """The rollout's ``Policy`` plus what training needs from an engine."""

    async def generate(self, requests: list[GenerationRequest]) -> list[Generation]: ...

    def prepare_update(self) -> None: ...

    def sync_weights(self, policy: Any) -> None: ...

    def close(self) -> None: ...


GENERATORS: dict[str, str] = {
    "hf": "learners.generators.hf:HFGenerator",
    "vllm": "learners.generators.vllm:VLLMGenerator",
    "openai": "learners.generators.openai:OpenAIGenerator",
}
"""``--generator`` name -> ``module:class``; each class has ``from_policy(policy, args, **kwargs)``."""


def make_generator(name: str, policy: Any, args: GeneratorArgs | None = None, **kwargs: Any) -> Generator:
    """The generator ``name`` serving ``policy`` (a :class:`learners.policy_model.PolicyModel`)."""
    if name not in GENERATORS:
        raise ConfigError(f"unknown generator {name!r}; known generators: {', '.join(GENERATORS)}")
    module, cls = GENERATORS[name].split(":")
    return getattr(importlib.import_module(module), cls).from_policy(policy, args or GeneratorArgs(), **kwargs)


def render_prompt_ids(tokenizer: Any, request: GenerationRequest) -> list[int]:
    """The request's prompt ids, or its chat messages rendered by the tokenizer's chat template."""
    if request.prompt_ids is not None:
        return list(request.prompt_ids)
    if not request.messages:
        raise ConfigError("a generation request needs messages or prompt_ids")
    text = tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def weight_sync_mode(args: GeneratorArgs, policy: Any) -> str:
    """``full`` or ``lora`` (or ``none``), resolving ``auto`` from whether the policy trains LoRA."""
    lora = getattr(policy.config, "lora_rank", 0) > 0
    mode = args.weight_sync if args.weight_sync != "auto" else ("lora" if lora else "full")
    if mode == "lora" and not lora:
        raise ConfigError("weight_sync=lora needs a LoRA policy (--lora-rank > 0)")
    return mode
