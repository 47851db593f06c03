"""The openai generator against a small OpenAI-compatible server serving the tiny policy:
same ids and log-probs as the HF generator, weight sync, retries, failures, tokenizer check."""
from __future__ import annotations

import asyncio
import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from openai_test_server import serve  # noqa: E402

from learners.generators import GeneratorArgs, WeightSyncError, make_generator  # noqa: E402
from learners.generators.openai import OpenAIGenerator, completion_body, parse_completion  # noqa: E402
from learners.policy_model import PolicyModel, PolicyModelConfig  # noqa: E402
from learners.tiny import TinyConfig, make_tiny_model, train_tokenizer  # noqa: E402
from sdar_gym.core import ConfigError, DataError  # noqa: E402
from sdar_gym.rollout import GenerationRequest, SamplingParams, collect, make_pool  # noqa: E402
from sdar_gym.rollout.types import Generation  # noqa: E402

TEXTS = ["You are in the middle of a room. Look around: countertop 1, sinkbasin 1, mug 2.",
         "<action>go to sinkbasin 1</action> Probe: take mug 2 from it; 3.5 × 7 = 24.5 — héllo"] * 20


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=600)


@pytest.fixture()
def policy(tokenizer, torch_one_thread):
    model = make_tiny_model(tokenizer, TinyConfig(hidden_size=64, num_layers=2))
    return PolicyModel.from_model(model, tokenizer, PolicyModelConfig(model="tiny", device="cpu"), with_reference=False)


def requests(n: int = 4, temperature: float = 0.0) -> list[GenerationRequest]:
    prompts = ["go to the sinkbasin", "look around the room " * 3, "take mug 2", "a fourth prompt, about countertop 1"]
    return [GenerationRequest(messages=[{"role": "user", "content": prompts[i % 4]}], sampling=SamplingParams(max_new_tokens=10, temperature=temperature, seed=i))
            for i in range(n)]


def generate(generator, reqs):
    return asyncio.run(generator.generate(reqs))


def rounded(generations) -> list:
    """Ids and log-probs to 4 decimals (log-probs differ by ~1e-7 between batch shapes)."""
    return [(g.response_ids, [round(x, 4) for x in g.logprobs]) for g in generations]


def perturb(module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.5)


def test_greedy_ids_and_logprobs_match_the_hf_generator(policy, tokenizer) -> None:
    hf = make_generator("hf", policy)
    with serve(copy.deepcopy(policy.model), tokenizer) as (url, _):
        remote = make_generator("openai", policy, GeneratorArgs(urls=[url], weight_sync="none"))
        got, want = generate(remote, requests()), generate(hf, requests())
    for g, w in zip(got, want):
        assert not g.error
        assert g.prompt_ids == w.prompt_ids and g.response_ids == w.response_ids and len(g.response_ids) > 0
        assert g.logprobs == pytest.approx(w.logprobs, abs=1e-5)
        assert g.finish_reason == w.finish_reason


def test_a_full_weight_sync_changes_the_served_outputs(policy, tokenizer, tmp_path) -> None:
    with serve(copy.deepcopy(policy.model), tokenizer) as (url, _):
        remote = make_generator("openai", policy, GeneratorArgs(urls=[url], sync_dir=str(tmp_path / "sync")))
        assert remote.sync_mode == "full"
        before = generate(remote, requests())
        perturb(policy.model)
        remote.sync_weights(policy)
        after = generate(remote, requests())
    want = generate(make_generator("hf", policy), requests())
    assert rounded(after) != rounded(before)
    assert rounded(after) == rounded(want)


def test_a_lora_sync_loads_the_adapter_and_serves_it(tokenizer, tmp_path, torch_one_thread) -> None:
    base = make_tiny_model(tokenizer, TinyConfig(hidden_size=64, num_layers=2))
    served = copy.deepcopy(base)
    policy = PolicyModel.from_model(base, tokenizer, PolicyModelConfig(model="tiny", device="cpu", lora_rank=4))
    perturb(policy.model)  # moves the adapters (only they are trainable)
    with serve(served, tokenizer) as (url, _):
        remote = make_generator("openai", policy, GeneratorArgs(urls=[url], sync_dir=str(tmp_path / "sync")))
        assert remote.sync_mode == "lora"
        remote.sync_weights(policy)
        assert remote.model == "sdar-gym-v000001"
        after = generate(remote, requests())
    want = generate(make_generator("hf", policy), requests())
    assert rounded(after) == rounded(want)


def test_a_stalled_server_is_retried_on_another(policy, tokenizer) -> None:
    want = generate(make_generator("hf", policy), requests(6))
    with serve(copy.deepcopy(policy.model), tokenizer) as (good, _), serve(copy.deepcopy(policy.model), tokenizer) as (bad, bad_app):
        remote = OpenAIGenerator([bad, good], tokenizer, timeout_s=0.5, retries=1)
        bad_app.state.stall_s = 1.5
        got = generate(remote, requests(6))
    assert [g.error for g in got] == [""] * 6
    assert [g.response_ids for g in got] == [g.response_ids for g in want]


def test_after_the_retries_the_episode_fails_and_the_step_goes_on(policy, tokenizer, search_qa_data_dir) -> None:
    with serve(copy.deepcopy(policy.model), tokenizer) as (a, app_a), serve(copy.deepcopy(policy.model), tokenizer) as (b, app_b):
        remote = OpenAIGenerator([a, b], tokenizer, timeout_s=0.3, retries=1)
        app_a.state.stall_s = app_b.state.stall_s = 1.0
        [g] = generate(remote, requests(1))
        assert g.error.startswith("generation failed on 2 tries") and a in g.error and b in g.error
        pool = make_pool("inline", "search-qa", 2, {"data_dir": str(search_qa_data_dir)})
        try:
            episodes = asyncio.run(collect(remote, pool, [0, 1], group_size=1, max_turns=2, sampling=SamplingParams(max_new_tokens=4)))
        finally:
            asyncio.run(pool.aclose())
    assert [e.failed for e in episodes] == [True, True]
    assert all("generation failed" in e.failure_reason for e in episodes)


def test_a_failed_weight_sync_raises(policy, tokenizer, tmp_path) -> None:
    with serve(copy.deepcopy(policy.model), tokenizer) as (url, _):
        remote = make_generator("openai", policy, GeneratorArgs(urls=[url], sync_dir=str(tmp_path / "sync")))
    with pytest.raises(WeightSyncError, match="unreachable.*stale weights"):
        remote.sync_weights(policy)  # the server is gone
    with serve(make_tiny_model(tokenizer, TinyConfig(hidden_size=32, num_layers=1)), tokenizer) as (url, _):
        remote = make_generator("openai", policy, GeneratorArgs(urls=[url], sync_dir=str(tmp_path / "sync2")))
        with pytest.raises(WeightSyncError, match="answered 400"):
            remote.sync_weights(policy)  # weights of another shape


def test_mismatched_tokenizers_are_caught_at_start_up(policy, tokenizer) -> None:
    other = train_tokenizer(TEXTS[:2] + ["completely different text to learn merges from"] * 5, vocab_size=300)
    with serve(make_tiny_model(other, TinyConfig(hidden_size=32, num_layers=1)), other) as (url, _):
        with pytest.raises(ConfigError, match="tokenizes differently"):
            OpenAIGenerator([url], tokenizer)
    with pytest.raises(ConfigError, match="did not answer GET /v1/models"):
        OpenAIGenerator([url], tokenizer)
    with pytest.raises(ConfigError, match="at least one server URL"):
        OpenAIGenerator([], tokenizer)


def test_request_and_response_conventions() -> None:
    body = completion_body([5, 6], SamplingParams(max_new_tokens=3, temperature=0.7, top_k=5, seed=2, stop=["</action>"]), "m")
    assert body["prompt"] == [5, 6] and body["logprobs"] == 1 and body["return_tokens_as_token_ids"] is True
    assert (body["max_tokens"], body["top_k"], body["seed"], body["stop"]) == (3, 5, 2, ["</action>"])
    assert "top_k" not in completion_body([5], SamplingParams(), "m")
    payload = {"choices": [{"text": "ab", "finish_reason": "length", "logprobs": {"tokens": ["token_id:7", "token_id:9"], "token_logprobs": [-0.5, -1.25]}}]}
    assert parse_completion(payload, [1]) == Generation("ab", [1], [7, 9], [-0.5, -1.25], "length")
    payload["choices"][0]["token_ids"] = [7, 10]
    assert parse_completion(payload, [1]).response_ids == [7, 10]
    with pytest.raises(DataError, match="return_tokens_as_token_ids"):
        parse_completion({"choices": [{"text": "a", "logprobs": {"tokens": ["a"], "token_logprobs": [-1.0]}}]}, [1])
    with pytest.raises(DataError, match="2 token ids but 1 log-probs"):
        parse_completion({"choices": [{"text": "a", "logprobs": {"tokens": ["token_id:1", "token_id:2"], "token_logprobs": [-1.0]}}]}, [1])
