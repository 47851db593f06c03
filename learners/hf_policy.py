"""``HFPolicy``: the Policy protocol over a Hugging Face causal LM, for rollouts.

It renders chat messages with the tokenizer's chat template, samples a left-padded batch with a
KV cache, and returns for each request the prompt ids, the sampled response ids (the EOS
included when sampled) and each token's sampling log-prob.

Log-prob convention: ``log softmax(logits / temperature)`` at the sampled token, before top-k /
top-p truncation. That is what a learner recomputes with one forward pass over
``prompt_ids + response_ids`` at the same temperature, so the stored values are the behaviour
policy's log-probs for importance ratios. Temperature 0 means greedy, with log-probs at
temperature 1.
"""
from __future__ import annotations

import asyncio
import inspect
import os
from typing import Any

import torch

from learners.generators import render_prompt_ids
from sdar_gym.core import ConfigError
from sdar_gym.rollout.types import Generation, GenerationRequest, SamplingParams


_ADDITIVE_MASK_ATTENTION = ("eager", "sdpa")
"""Attention implementations that add a custom 4D float mask to their scores (flash attention takes none)."""


def _shared_prefix_length(sequences: list[list[int]]) -> int:
    """How many first tokens all ``sequences`` share, leaving each at least its last token."""
    shared, shortest = 0, min(len(s) for s in sequences)
    while shared < shortest - 1 and all(s[shared] == sequences[0][shared] for s in sequences):
        shared += 1
    return shared


class HFPolicy:
    """Batched sampling from a causal LM given by a Hugging Face id, a local folder, or objects.

    Args:
        model: a model id or folder (loaded with ``from_pretrained``), or a loaded model.
        tokenizer: the tokenizer object; required when ``model`` is an object.
        max_batch_size: most requests sampled together (larger calls are split).
        device: where to load a model given by name (an object stays where it is).
        seed: seeds requests that carry no ``sampling.seed``.
    """

    def __init__(self, model: str | os.PathLike | Any, tokenizer: Any = None, max_batch_size: int = 16, device: str = "cpu", seed: int = 0) -> None:
        if isinstance(model, (str, os.PathLike)):
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
            model = AutoModelForCausalLM.from_pretrained(model).to(device)
        elif tokenizer is None:
            raise ConfigError("HFPolicy needs the tokenizer when given a model object")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.model = model.eval()
        # transformers 5 renamed the KV-cache argument and output from ``past_key_values`` to ``cache``; a PEFT
        # wrapper's forward takes **kwargs, so the name is read from the model it wraps
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        self._cache_key = "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"
        self._keeps_logits = "logits_to_keep" in inspect.signature(inner.forward).parameters
        self._attention = getattr(inner.config, "_attn_implementation", "eager")
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self._generator = torch.Generator().manual_seed(seed)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    async def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        """Sample in a worker thread, so the event loop keeps stepping envs meanwhile."""
        return await asyncio.to_thread(self.generate_sync, requests)

    def generate_sync(self, requests: list[GenerationRequest]) -> list[Generation]:
        out: list[Generation] = []
        for i in range(0, len(requests), self.max_batch_size):
            out += self._sample(requests[i : i + self.max_batch_size])
        return out

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The request's prompt ids, or its messages rendered by the chat template and tokenized."""
        return render_prompt_ids(self.tokenizer, request)

    @torch.no_grad()
    def _sample(self, requests: list[GenerationRequest]) -> list[Generation]:
        device, pad = self.device, self.tokenizer.pad_token_id
        prompts = [self.prompt_ids(r) for r in requests]
        params = [r.sampling for r in requests]
        generators = [self._row_generator(p) for p in params]
        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        temperature = torch.tensor([p.temperature if p.temperature > 0 else 1.0 for p in params], device=device)[:, None]

        responses: list[list[int]] = [[] for _ in requests]
        logprobs: list[list[float]] = [[] for _ in requests]
        finish = [""] * len(requests)
        last_only = {"logits_to_keep": 1} if self._keeps_logits else {}  # the prompt's other rows' logits are never read
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, **last_only)
        for _ in range(max(p.max_new_tokens for p in params)):
            logits = out.logits[:, -1, :].float() / temperature
            token_logprobs = torch.log_softmax(logits, dim=-1)
            next_ids = torch.full((len(requests),), pad, dtype=torch.long, device=device)
            for i, p in enumerate(params):
                if finish[i]:
                    continue
                token = self._pick(logits[i], p, generators[i])
                next_ids[i] = token
                responses[i].append(token)
                logprobs[i].append(float(token_logprobs[i, token]))
                finish[i] = self._finished(responses[i], p)
            if all(finish):
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
            positions = positions[:, -1:] + 1
            cache = {self._cache_key: getattr(out, self._cache_key)}
            out = self.model(input_ids=next_ids[:, None], attention_mask=mask, position_ids=positions, use_cache=True, **cache)
        return [
            Generation(
                text=self.tokenizer.decode(ids, skip_special_tokens=True),
                prompt_ids=prompt,
                response_ids=ids,
                logprobs=lps,
                finish_reason=reason or "length",
            )
            for prompt, ids, lps, reason in zip(prompts, responses, logprobs, finish)
        ]

    def check_continuation_scoring(self) -> None:
        """Raise a ConfigError unless :meth:`continuation_logprobs` can run on this model (at start-up, not mid-run)."""
        if self._attention not in _ADDITIVE_MASK_ATTENTION:
            raise ConfigError(
                f"scoring continuations needs an attention that takes a 4D mask ({', '.join(_ADDITIVE_MASK_ATTENTION)}); "
                f"this model uses {self._attention!r}: load it with attn_implementation='sdpa'"
            )

    @torch.no_grad()
    def continuation_logprobs(self, prompt_ids: list[int], continuations: list[list[int]], temperature: float) -> list[list[float]]:
        """Each continuation's token log-probs after ``prompt_ids``, by this module's convention (tempered;
        temperature 0 scores at 1).

        One forward pass of batch 1 scores them all: the prompt and the continuations' shared first
        tokens once, then each continuation's own tokens, packed one after the other, each seeing the
        prompt, the shared tokens and its own earlier tokens only (a 4D attention mask; positions
        restart for each). Against a batch over a repeated KV cache this was 2.07-2.17x faster at the
        built-in tiny policy's shape (real ALFWorld prompts of ~430 tokens, ~28 listed actions), the
        same log-probs to float rounding (benchmarks/results/choice_scoring.json).
        """
        if not continuations or not all(continuations):
            raise ValueError("continuation_logprobs needs at least one non-empty continuation")
        self.check_continuation_scoring()
        device, dtype = self.device, next(self.model.parameters()).dtype
        shared = _shared_prefix_length(continuations)
        head = prompt_ids + continuations[0][:shared]
        tails = [c[shared:-1] for c in continuations]  # fed after the head; a last token is scored, never fed
        owner = torch.tensor([-1] * len(head) + [i for i, tail in enumerate(tails) for _ in tail], device=device)
        positions = list(range(len(head))) + [len(head) + j for tail in tails for j in range(len(tail))]
        ids = head + [t for tail in tails for t in tail]
        causal = torch.ones(len(ids), len(ids), dtype=torch.bool, device=device).tril()
        other_tail = (owner[:, None] >= 0) & (owner[None, :] >= 0) & (owner[:, None] != owner[None, :])
        mask = torch.zeros(1, 1, len(ids), len(ids), dtype=dtype, device=device).masked_fill(~(causal & ~other_tail), torch.finfo(dtype).min)
        kept = torch.arange(len(prompt_ids) - 1, len(ids), device=device)  # the rows that predict a continuation token
        logits = self.model(
            input_ids=torch.tensor([ids], device=device), attention_mask=mask, position_ids=torch.tensor([positions], device=device),
            **({"logits_to_keep": kept} if self._keeps_logits else {}),
        ).logits[0]
        logits = logits if self._keeps_logits else logits[kept]
        logprobs = torch.log_softmax(logits.float() / (temperature if temperature > 0 else 1.0), dim=-1)
        scores, row = [], len(head) - len(prompt_ids) + 1  # rows 0..shared predict the shared tokens and each first own token
        for c, tail in zip(continuations, tails):
            rows = list(range(shared + 1)) + list(range(row, row + len(tail)))
            scores.append(logprobs[rows, c].tolist())
            row += len(tail)
        return scores

    def _row_generator(self, params: SamplingParams) -> torch.Generator:
        if params.seed is None:
            return self._generator
        return torch.Generator().manual_seed(params.seed)

    @staticmethod
    def _pick(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> int:
        """One token from one row's tempered logits, with top-k and top-p filtering."""
        if params.temperature <= 0:
            return int(logits.argmax())
        if params.top_k > 0:
            kth = torch.topk(logits, min(params.top_k, logits.numel())).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if params.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True)
            cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
            drop = cumulative - torch.softmax(sorted_logits, dim=-1) >= params.top_p  # keep the first past top_p
            logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
        probs = torch.softmax(logits, dim=-1).cpu()
        return int(torch.multinomial(probs, 1, generator=generator))

    def _finished(self, ids: list[int], params: SamplingParams) -> str:
        """'stop' after EOS or a stop string, 'length' at max_new_tokens, '' otherwise."""
        if ids[-1] == self.tokenizer.eos_token_id:
            return "stop"
        if params.stop and any(s in self.tokenizer.decode(ids[-16:]) for s in params.stop):
            return "stop"
        return "length" if len(ids) >= params.max_new_tokens else ""
