"""The vLLM generator without vLLM: request building, log-prob extraction from vLLM-shaped
outputs, sleep/wake and weight sync against a fake engine, and the errors when vLLM or a GPU is missing."""
from __future__ import annotations

import asyncio
import sys
import types
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from learners.generators import GeneratorArgs, WeightSyncError, make_generator  # noqa: E402
from learners.generators.vllm import VLLMGenerator, require_vllm, sampling_kwargs, to_generation  # noqa: E402
from sdar_gym.core import ConfigError  # noqa: E402
from sdar_gym.rollout.types import Generation, GenerationRequest, SamplingParams  # noqa: E402


def fake_output(ids, logprobs, text="go", finish="stop"):
    """A ``vllm.RequestOutput`` as vLLM shapes it: per step, a dict token id -> Logprob (sampled token included)."""
    steps = [{t: SimpleNamespace(logprob=lp, rank=1), t + 1: SimpleNamespace(logprob=lp - 3, rank=2)} for t, lp in zip(ids, logprobs)]
    return SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids, logprobs=steps, text=text, finish_reason=finish)])


class FakeLLM:
    """What VLLMGenerator calls on ``vllm.LLM``, recorded."""

    def __init__(self, model=None):
        self.calls: list[str] = []
        self.model = model

    def generate(self, prompts, params, use_tqdm=False, lora_request=None):
        self.calls.append("generate")
        self.params, self.lora_request = params, lora_request
        return [fake_output([p["prompt_token_ids"][-1] + 1, 2], [-0.25, -1.5]) for p in prompts]

    def sleep(self, level=1):
        self.calls.append(f"sleep{level}")

    def wake_up(self):
        self.calls.append("wake")

    def apply_model(self, fn):
        self.calls.append("apply_model")
        return [fn(self.model)]


@pytest.fixture()
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.SamplingParams = lambda **kw: kw
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


class Tok:
    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}


def test_without_vllm_the_error_names_the_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails as when not installed
    with pytest.raises(ConfigError, match=r"needs the vllm package.*sdar-gym\[vllm\]"):
        require_vllm()
    policy = SimpleNamespace(config=SimpleNamespace(model="m", lora_rank=0), tokenizer=Tok())
    with pytest.raises(ConfigError, match="vllm package"):
        make_generator("vllm", policy, GeneratorArgs())


def test_without_a_gpu_the_error_names_the_gpu(fake_vllm, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        require_vllm()


def test_unknown_generator_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown generator 'sglang'; known generators: hf, vllm, openai"):
        make_generator("sglang", None)


def test_sampling_params_and_logprob_extraction() -> None:
    kw = sampling_kwargs(SamplingParams(max_new_tokens=7, temperature=0.5, top_p=0.9, seed=3, stop=["</action>"]))
    assert kw == {"n": 1, "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "top_k": -1, "seed": 3, "stop": ["</action>"],
                  "include_stop_str_in_output": True, "logprobs": 0}
    assert sampling_kwargs(SamplingParams(top_k=4))["top_k"] == 4 and sampling_kwargs(SamplingParams())["stop"] is None
    # the sampled token's log-prob is picked, not the other candidate's
    assert to_generation(fake_output([5, 9], [-0.5, -2.0], finish="length"), [1, 2]) == Generation("go", [1, 2], [5, 9], [-0.5, -2.0], "length")
    missing = SimpleNamespace(outputs=[SimpleNamespace(token_ids=[5], logprobs=None, text="", finish_reason="stop")])
    with pytest.raises(ConfigError, match="no per-token log-probs"):
        to_generation(missing, [1])


def test_generate_sends_prompt_ids_and_sleeps_around_updates(fake_vllm) -> None:
    llm = FakeLLM()
    gen = VLLMGenerator(llm, Tok(), sync_mode="none", sleep=True)
    reqs = [GenerationRequest(prompt_ids=[3, 4]), GenerationRequest(messages=None, prompt_ids=[8], sampling=SamplingParams(temperature=0.0))]
    out = asyncio.run(gen.generate(reqs))
    assert [o.response_ids for o in out] == [[5, 2], [9, 2]] and out[0].logprobs == [-0.25, -1.5]
    assert llm.params[1]["temperature"] == 0.0
    gen.prepare_update()
    gen.prepare_update()  # already asleep: no second sleep
    gen.sync_weights(None)
    asyncio.run(gen.generate(reqs[:1]))
    assert llm.calls == ["generate", "sleep1", "wake", "generate"]


def test_full_weight_sync_loads_the_learner_state_and_failures_stop(fake_vllm) -> None:
    class Engine:
        def __init__(self):
            self.loaded = {}

        def load_weights(self, weights):
            self.loaded = dict(weights)

    learner = torch.nn.Linear(2, 2)
    engine = Engine()
    gen = VLLMGenerator(FakeLLM(engine), Tok(), sync_mode="full")
    gen.sync_weights(SimpleNamespace(model=learner))
    assert set(engine.loaded) == {"weight", "bias"} and torch.equal(engine.loaded["weight"], learner.weight)

    class Broken(FakeLLM):
        def apply_model(self, fn):
            raise RuntimeError("worker died")

    with pytest.raises(WeightSyncError, match="worker died.*stale weights"):
        VLLMGenerator(Broken(), Tok(), sync_mode="full").sync_weights(SimpleNamespace(model=learner))
