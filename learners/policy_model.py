"""The policy being trained: a Hugging Face causal LM and its tokenizer, optionally with LoRA.

One object serves the learner (log-probs of stored response tokens, with or without grad, in
memory-bounded chunks; the reference policy for the KL term) and the rollout (``as_policy()``
wraps it in :class:`learners.hf_policy.HFPolicy` for batched sampling with log-probs).
"""
from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from learners.losses import chunked_token_logprobs
from sdar_gym.core import ConfigError, DataError


@dataclass
class PolicyModelConfig:
    model: str
    """Hugging Face model id or local folder (loaded offline when it is a folder)."""
    dtype: str = "auto"
    """``auto`` (bf16 on a GPU, fp32 on CPU), ``bf16``, ``fp16`` or ``fp32``."""
    device: str = "auto"
    """``auto`` (cuda when available, else cpu), or a torch device string."""
    lora_rank: int = 0
    """LoRA rank through peft; 0 trains all weights."""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha/rank)."""
    lora_dropout: float = 0.0
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    """Module names LoRA adapts (Qwen2/Llama naming)."""
    gradient_checkpointing: bool = False
    """Recompute transformer activations in backward (saves memory on long multi-turn prompts)."""
    logprob_chunk: int = 1024
    """Response positions per logits slab when computing log-probs (bounds the [chunk, vocab] tensor)."""


def set_threads(n: int) -> None:
    """Torch CPU threads for a command's ``--threads`` (0 keeps torch's default)."""
    if n < 0:
        raise ConfigError(f"threads must be >= 0, got {n}")
    if n:
        torch.set_num_threads(n)


def thread_candidates() -> tuple[int, ...]:
    """Thread counts worth timing on this machine's usable cores: 1, 2 and 4 (a tiny model gains nothing from more)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return tuple(sorted({1, min(cores, 2), min(cores, 4)}))


class ThreadTuner:
    """Picks torch's CPU thread count for a loop of similar steps by timing the steps themselves.

    More threads pay off on idle cores and ruin a step on busy ones: one SFT batch of the tiny policy
    took 0.29 s with 2 threads against 0.48 s with 1 on 2 idle cores, and 4.3 s against 0.47 s while
    other jobs shared the cores. So the tuner alternates the ``candidates`` for ``probe_rounds`` steps
    each, keeps the one with the lowest median seconds per unit of ``work`` for ``exploit_steps``
    steps, then probes again (a shared machine's load changes), doubling the stretch each time the
    choice stands. With one candidate it only sets that count.
    """

    def __init__(self, candidates: Sequence[int], probe_rounds: int = 3, exploit_steps: int = 100, clock=None) -> None:
        if not candidates or any(n < 1 for n in candidates):
            raise ConfigError(f"thread candidates must be whole numbers >= 1, got {list(candidates)}")
        self.candidates = tuple(dict.fromkeys(candidates))
        self.probe_rounds, self.exploit_steps = probe_rounds, exploit_steps
        self.clock = clock or time.perf_counter
        self.chosen: list[int] = []
        """The thread count each probe chose, in order."""
        self._queue: list[int] = []
        self._samples: dict[int, list[float]] | None = None  # set while probing

    def _plan(self) -> None:
        if self._samples is not None:  # a probe has just ended
            best = min(self._samples, key=lambda n: sorted(self._samples[n])[len(self._samples[n]) // 2])
            if self.chosen and self.chosen[-1] == best:
                self.exploit_steps *= 2
            self.chosen.append(best)
            self._samples, self._queue = None, [best] * self.exploit_steps
        elif len(self.candidates) == 1:
            self._queue = [self.candidates[0]] * self.exploit_steps
        else:
            self._samples = {n: [] for n in self.candidates}
            self._queue = [n for _ in range(self.probe_rounds) for n in self.candidates]

    @contextlib.contextmanager
    def step(self, work: float = 1.0) -> Iterator[int]:
        """Run one step (the ``with`` body) on the thread count its turn gives; yields that count. The
        caller's count is back afterwards, also when the body raises (the RL update's rollout runs on it)."""
        if not self._queue:
            self._plan()
        n = self._queue.pop(0)
        before = torch.get_num_threads()
        torch.set_num_threads(n)
        start = self.clock()
        try:
            yield n
            if self._samples is not None:
                self._samples[n].append((self.clock() - start) / max(work, 1e-9))
        finally:
            torch.set_num_threads(before)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in table:
        raise ConfigError(f"unknown dtype {dtype!r}; expected auto, {', '.join(table)}")
    return table[dtype]


class PolicyModel:
    """A causal LM plus tokenizer with what the learners need from it."""

    def __init__(self, model: nn.Module, tokenizer, config: PolicyModelConfig, reference: nn.Module | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.device = next(model.parameters()).device
        self._reference = reference
        self._is_lora = config.lora_rank > 0
        self.scorer: nn.Module = ResponseScorer(model, config.logprob_chunk)
        """What the learner trains: the model behind a log-prob forward (the data-parallel engine wraps this)."""

    # construction -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, config: PolicyModelConfig, with_reference: bool = True) -> PolicyModel:
        """Load ``config.model``; with LoRA the reference policy is the base with adapters off,
        otherwise (when ``with_reference``) a frozen copy of the initial weights."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = resolve_device(config.device)
        dtype = resolve_dtype(config.dtype, device)
        local = Path(config.model).expanduser()
        if not local.is_dir() and (os.sep in config.model or config.model.startswith(".")):
            raise DataError(f"model folder {config.model!r} does not exist")
        try:
            tokenizer = AutoTokenizer.from_pretrained(config.model)
            model = AutoModelForCausalLM.from_pretrained(config.model, dtype=dtype)
        except OSError as e:
            raise DataError(f"cannot load model {config.model!r}: {e}") from None
        return cls.from_model(model, tokenizer, config, with_reference=with_reference)

    @classmethod
    def from_model(cls, model: nn.Module, tokenizer, config: PolicyModelConfig, with_reference: bool = True) -> PolicyModel:
        device = resolve_device(config.device)
        model = model.to(device=device, dtype=resolve_dtype(config.dtype, device))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        if config.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        reference = None
        if config.lora_rank > 0:
            from peft import LoraConfig, get_peft_model

            present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
            targets = [t for t in config.lora_target_modules if t in present]
            if not targets:
                raise ConfigError(f"none of the LoRA target modules {config.lora_target_modules} exist in {config.model!r}")
            model = get_peft_model(
                model, LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, target_modules=targets)
            )
        elif with_reference:
            reference = copy.deepcopy(model).eval().requires_grad_(False)
        return cls(model, tokenizer, config, reference)

    # log-probs ----------------------------------------------------------------------------
    def response_logprobs(
        self,
        prompts: Sequence[Sequence[int]],
        responses: Sequence[Sequence[int]],
        with_entropy: bool = False,
        temperature: float = 1.0,
        model: nn.Module | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-probs of each response token given its prompt, flattened in order ``[sum |r|]``.

        One forward pass of the right-padded batch through :attr:`scorer` (the policy, wrapped by the
        data-parallel engine when there is one) or through ``model`` (e.g. the frozen reference).
        Grad mode is the caller's (wrap in ``torch.no_grad()`` for old/teacher/reference log-probs).
        """
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts for {len(responses)} responses")
        seqs = [list(p) + list(r) for p, r in zip(prompts, responses)]
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        attention = torch.zeros((len(seqs), width), dtype=torch.long)
        rows, cols, targets = [], [], []
        for i, (p, r) in enumerate(zip(prompts, responses)):
            if not p:
                raise ValueError("every prompt needs at least one token")
            input_ids[i, : len(seqs[i])] = torch.tensor(seqs[i])
            attention[i, : len(seqs[i])] = 1
            rows += [i] * len(r)
            cols += range(len(p) - 1, len(p) + len(r) - 1)
            targets += list(r)
        scorer = self.scorer if model is None or model is self.model else ResponseScorer(model, self.config.logprob_chunk)
        dev = self.device
        return scorer(input_ids.to(dev), attention.to(dev), torch.tensor(rows, device=dev), torch.tensor(cols, device=dev),
                      torch.tensor(targets, device=dev, dtype=torch.long), with_entropy=with_entropy, temperature=temperature)

    @contextlib.contextmanager
    def reference(self) -> Iterator[nn.Module]:
        """The frozen reference policy for the KL term (LoRA: the same model with adapters off)."""
        if self._is_lora:
            with self.model.disable_adapter():
                yield self.model
        elif self._reference is not None:
            yield self._reference
        else:
            raise ConfigError("this policy was built without a reference model; set kl_coef=0 or build it with_reference=True")

    # rollout and persistence --------------------------------------------------------------
    def as_policy(self, **kwargs):
        """The rollout-facing :class:`~sdar_gym.rollout.types.Policy` sampling from this model."""
        from learners.hf_policy import HFPolicy

        return HFPolicy(self.model, self.tokenizer, **kwargs)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def save(self, folder: str | os.PathLike, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """Write weights (adapters only with LoRA) and tokenizer into ``folder`` (safetensors); ``state_dict``:
        the full weights of :attr:`scorer` gathered from a sharded learner."""
        if state_dict is not None:
            state_dict = {k.removeprefix("model."): v for k, v in state_dict.items()}
        self.model.save_pretrained(folder, state_dict=state_dict)
        self.tokenizer.save_pretrained(folder)

    def load_weights(self, folder: str | os.PathLike) -> None:
        """Load weights written by :meth:`save` into this model in place (for ``--resume``)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        files = sorted(folder.glob("*.safetensors"))
        if not files:
            raise DataError(f"no safetensors weights in checkpoint {str(folder)!r}")
        if self._is_lora:
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(self.model, load_file(files[0]))
            return
        state = {}
        for f in files:
            state.update(load_file(f))
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        missing = [m for m in missing if "lm_head" not in m]  # tied heads are not saved separately
        if missing or unexpected:
            raise DataError(f"checkpoint {str(folder)!r} does not match the model: missing {missing[:3]}, unexpected {unexpected[:3]}")


class ResponseScorer(nn.Module):
    """Log-probs of response tokens as a module's ``forward``, so that DDP/FSDP/DeepSpeed wrapping it
    see every pass (gradient hooks, gathering sharded weights). Logits are formed only at the positions
    that predict response tokens, ``chunk`` at a time (bounds the ``[chunk, vocab]`` tensor)."""

    def __init__(self, model: nn.Module, chunk: int) -> None:
        super().__init__()
        self.model = model
        self.chunk = chunk
        self._no_split_modules = getattr(self._base(), "_no_split_modules", None)  # FSDP's auto-wrap units (the decoder layers)

    def _base(self) -> nn.Module:
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def external_parameters(self) -> list[nn.Parameter]:
        """Parameters :meth:`forward` reads directly rather than through their module's forward."""
        return list(self._base().get_output_embeddings().parameters())

    def forward(self, input_ids, attention_mask, rows, cols, targets, with_entropy: bool = False, temperature: float = 1.0):
        base = self._base()
        head = base.get_output_embeddings()
        hidden = base.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return chunked_token_logprobs(hidden[rows, cols], head.weight, targets, bias=head.bias, chunk_size=self.chunk,
                                      temperature=temperature, with_entropy=with_entropy)
