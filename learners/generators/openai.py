"""The OpenAI-compatible generator: completion servers (``vllm serve``, SGLang) reached by URL.

Token ids end to end, in vLLM's conventions for the ``/v1/completions`` API:
- the prompt goes out as a list of token ids (rendered by the learner's tokenizer);
- ``logprobs=1`` with ``return_tokens_as_token_ids=true`` brings back each sampled token as
  ``"token_id:<id>"`` with its log-prob (a ``token_ids`` list in the choice is used when present).

Requests are spread over the servers (fewest in flight first). A request that fails or times out
is retried on another server; after ``retries`` more tries it comes back as a generation with
``error`` set, and the collector marks that episode failed and goes on with the step.

Weight sync, after each learner update (the weights are written to ``sync_dir`` first, a folder
the servers can read):
- ``lora``: ``POST /v1/load_lora_adapter {"lora_name", "lora_path"}`` (vLLM with ``--enable-lora`` and
  ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``), then requests name the new adapter as their model;
- ``full``: ``POST /update_weights_from_disk {"model_path"}`` (SGLang's endpoint).
Any server that does not answer 200 stops training with :class:`WeightSyncError`.

At start-up each server's ``POST /tokenize`` of a probe text must give the learner's ids, so a
server with a different tokenizer is caught before it produces ids the learner misreads.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from pathlib import Path
from typing import Any

import httpx

from learners.generators import GeneratorArgs, WeightSyncError, render_prompt_ids, weight_sync_mode
from sdar_gym.core import ConfigError, DataError
from sdar_gym.io import atomic_dir
from sdar_gym.rollout.types import Generation, GenerationRequest, SamplingParams

PROBE_TEXT = "Probe: go to countertop 1, take mug 2 from it; 3.5 × 7 = 24.5 — héllo <action>look</action>"
"""Text whose ids must agree between the learner and each server (digits, accents, symbols, markup)."""


def completion_body(prompt_ids: list[int], sampling: SamplingParams, model: str) -> dict[str, Any]:
    """The ``/v1/completions`` request for one prompt (sampled token's log-prob, ids as tokens)."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": list(prompt_ids),
        "max_tokens": sampling.max_new_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "logprobs": 1,
        "return_tokens_as_token_ids": True,
        "include_stop_str_in_output": True,
    }
    if sampling.top_k > 0:
        body["top_k"] = sampling.top_k
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    return body


def parse_completion(payload: dict[str, Any], prompt_ids: list[int]) -> Generation:
    """A :class:`Generation` from a ``/v1/completions`` response; DataError when ids or log-probs are missing."""
    try:
        choice = payload["choices"][0]
        logprobs = choice.get("logprobs") or {}
        values = [float(x) for x in logprobs["token_logprobs"]]
        if choice.get("token_ids") is not None:
            ids = [int(x) for x in choice["token_ids"]]
        else:
            ids = [_token_id(t) for t in logprobs["tokens"]]
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise DataError(f"completion response without token ids and log-probs ({type(e).__name__}: {e}); "
                        "the server must support logprobs and return_tokens_as_token_ids (vLLM's OpenAI server does)") from None
    if len(ids) != len(values):
        raise DataError(f"completion response has {len(ids)} token ids but {len(values)} log-probs")
    return Generation(text=choice.get("text", ""), prompt_ids=list(prompt_ids), response_ids=ids, logprobs=values,
                      finish_reason=choice.get("finish_reason") or "stop")


def _token_id(token: str) -> int:
    if not token.startswith("token_id:"):
        raise ValueError(f"token {token!r} is not 'token_id:<id>' (send return_tokens_as_token_ids)")
    return int(token[len("token_id:"):])


class OpenAIGenerator:
    """The rollout's Policy over one or more OpenAI-compatible completion servers."""

    shared = True
    """Every learner rank uses the same servers: rank 0 alone syncs their weights."""

    def __init__(self, urls: list[str], tokenizer: Any, served_model: str | None = None, timeout_s: float = 600.0,
                 retries: int = 2, max_concurrency: int = 64, sync_mode: str = "none", sync_dir: str | os.PathLike | None = None) -> None:
        if not urls:
            raise ConfigError("the openai generator needs at least one server URL (--generator-args.urls http://HOST:PORT ...)")
        if retries < 0 or max_concurrency < 1 or timeout_s <= 0:
            raise ConfigError(f"need retries >= 0, max_concurrency >= 1 and timeout_s > 0; got {retries}, {max_concurrency}, {timeout_s}")
        if sync_mode != "none" and sync_dir is None:
            raise ConfigError("weight sync needs a sync_dir the servers can read")
        self.urls = [u.rstrip("/") for u in urls]
        self.tokenizer = tokenizer
        self.timeout_s, self.retries, self.max_concurrency = timeout_s, retries, max_concurrency
        self.sync_mode = sync_mode
        self.sync_dir = Path(sync_dir) if sync_dir is not None else None
        self.version = 0
        self.in_flight = dict.fromkeys(self.urls, 0)
        self._turn = itertools.count()
        self.base_model = served_model or self._served_model()
        self.model = self.base_model
        """The model name requests carry: the base model, or the latest LoRA adapter."""
        self.check_tokenizer()

    @classmethod
    def from_policy(cls, policy: Any, args: GeneratorArgs, run_dir: str | os.PathLike | None = None, **_: Any) -> OpenAIGenerator:
        mode = weight_sync_mode(args, policy)
        sync_dir = args.sync_dir or (Path(run_dir) / "sync" if run_dir is not None else None)
        return cls(args.urls, policy.tokenizer, args.served_model, args.timeout_s, args.retries, args.max_concurrency, mode, sync_dir)

    # start-up ----------------------------------------------------------------------------
    def _get(self, url: str, path: str) -> dict[str, Any]:
        try:
            r = httpx.get(url + path, timeout=30)
            r.raise_for_status()
            return r.json()
        except (httpx.HTTPError, ValueError) as e:
            raise ConfigError(f"generator server {url} did not answer GET {path}: {e}") from None

    def _served_model(self) -> str:
        models = self._get(self.urls[0], "/v1/models").get("data") or []
        if not models:
            raise ConfigError(f"generator server {self.urls[0]} lists no model at /v1/models")
        return str(models[0]["id"])

    def check_tokenizer(self) -> None:
        """Every server must tokenize the probe text to the learner's ids (ConfigError otherwise)."""
        mine = list(self.tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"])
        for url in self.urls:
            try:
                r = httpx.post(url + "/tokenize", json={"model": self.base_model, "prompt": PROBE_TEXT, "add_special_tokens": False}, timeout=30)
                r.raise_for_status()
                theirs = [int(t) for t in r.json()["tokens"]]
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
                raise ConfigError(f"generator server {url}: cannot check its tokenizer with POST /tokenize ({e})") from None
            if theirs != mine:
                at = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
                raise ConfigError(f"generator server {url} tokenizes differently from the learner (the ids of a probe text differ "
                                  f"from position {at}: learner {mine[at:at + 4]}, server {theirs[at:at + 4]}); serve the learner's model and tokenizer")

    # generation --------------------------------------------------------------------------
    async def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        limits = {u: asyncio.Semaphore(self.max_concurrency) for u in self.urls}
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            return list(await asyncio.gather(*(self._one(client, limits, r) for r in requests)))

    def _pick(self, tried: set[str]) -> str:
        """The untried server with fewest requests in flight (round robin among ties)."""
        candidates = [u for u in self.urls if u not in tried] or self.urls
        start = next(self._turn)
        order = [candidates[(start + i) % len(candidates)] for i in range(len(candidates))]
        return min(order, key=lambda u: self.in_flight[u])

    async def _one(self, client: httpx.AsyncClient, limits: dict[str, asyncio.Semaphore], request: GenerationRequest) -> Generation:
        prompt = render_prompt_ids(self.tokenizer, request)
        body = completion_body(prompt, request.sampling, self.model)
        tried: set[str] = set()
        errors: list[str] = []
        for _ in range(self.retries + 1):
            url = self._pick(tried)
            tried.add(url)
            self.in_flight[url] += 1
            try:
                async with limits[url]:
                    r = await client.post(url + "/v1/completions", json=body)
                r.raise_for_status()
                return parse_completion(r.json(), prompt)
            except (httpx.HTTPError, ValueError, DataError) as e:
                errors.append(f"{url}: {type(e).__name__}: {e}")
            finally:
                self.in_flight[url] -= 1
        return Generation(text="", prompt_ids=prompt, response_ids=[], logprobs=[], finish_reason="error",
                          error=f"generation failed on {len(errors)} tries: " + " | ".join(errors))

    # weight sync -------------------------------------------------------------------------
    def prepare_update(self) -> None:
        pass

    def sync_weights(self, policy: Any) -> None:
        """Write the policy's weights to ``sync_dir`` and have every server load them."""
        if self.sync_mode == "none":
            return
        assert self.sync_dir is not None
        self.version += 1
        folder = (self.sync_dir / f"v{self.version:06d}").resolve()
        with atomic_dir(folder) as tmp:
            policy.save(tmp)  # adapters only when training LoRA
        if self.version > 2:  # servers have loaded the last two; older folders are not needed
            shutil.rmtree(self.sync_dir / f"v{self.version - 2:06d}", ignore_errors=True)
        if self.sync_mode == "lora":
            name = f"sdar-gym-v{self.version:06d}"
            self._post_all("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(folder)})
            self.model = name
        else:
            self._post_all("/update_weights_from_disk", {"model_path": str(folder)})

    def _post_all(self, path: str, body: dict[str, Any]) -> None:
        for url in self.urls:
            try:
                r = httpx.post(url + path, json=body, timeout=self.timeout_s)
            except httpx.HTTPError as e:
                raise WeightSyncError(f"weight sync failed: {url}{path} unreachable ({type(e).__name__}: {e}); "
                                      "stopping rather than roll out on stale weights") from None
            if r.status_code != 200:
                raise WeightSyncError(f"weight sync failed: {url}{path} answered {r.status_code} ({r.text[:300]}); "
                                      "stopping rather than roll out on stale weights")

    def close(self) -> None:
        pass
