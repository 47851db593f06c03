"""The tiny HF policy: sampling log-probs match a forward pass over the stored ids, end to end."""
from __future__ import annotations

import asyncio
import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rollout_support import ALFWORLD_KWARGS, TASK_BOOK, require_alfworld

from learners.hf_policy import HFPolicy
from learners.tiny import TinyConfig, build_tiny, make_tiny_model, train_tokenizer
from sdar_gym.agent import TextAgent
from sdar_gym.rollout import GenerationRequest, SamplingParams, collect, make_pool


def corpus() -> list[str]:
    agent = TextAgent("alfworld")
    info = {"task": "put a clean mug in coffeemachine.", "admissible_actions": ["look", "go to sinkbasin 1", "take mug 1 from countertop 1"]}
    prompt = agent.prompt("You are in the middle of a room. You see a countertop 1 and a sinkbasin 1.", info, agent.new_history())
    return [prompt, agent.render_action("go to sinkbasin 1", "The mug must be clean first.")] * 20


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on 2 busy CI cores, torch's thread pool makes a tiny model ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny():
    tokenizer = train_tokenizer(corpus(), vocab_size=600)
    return make_tiny_model(tokenizer, TinyConfig(hidden_size=64, num_layers=2)), tokenizer


def recomputed_logprobs(model, prompt_ids, response_ids, temperature):
    ids = torch.tensor([prompt_ids + response_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float() / temperature
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(response_ids)[:, None])[:, 0]


def request(text: str, **sampling) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], sampling=SamplingParams(**sampling))


def test_sampling_logprobs_match_a_forward_pass(tiny) -> None:
    model, tokenizer = tiny
    policy = HFPolicy(model, tokenizer, max_batch_size=3)
    requests = [
        request("go", max_new_tokens=12, temperature=0.7, seed=1),
        request("look around the room " * 6, max_new_tokens=20, temperature=1.0, top_p=0.9, seed=2),
        request("take mug", max_new_tokens=5, temperature=1.3, top_k=20, seed=3),
        request("a fourth request, in a second batch", max_new_tokens=8, temperature=0.9, seed=4),
    ]
    generations = asyncio.run(policy.generate(requests))
    for g, r in zip(generations, requests):
        assert 0 < len(g.response_ids) <= r.sampling.max_new_tokens and len(g.logprobs) == len(g.response_ids)
        generation_prompt = tokenizer("<|im_start|>assistant\n")["input_ids"]
        assert g.prompt_ids == policy.prompt_ids(r) and g.prompt_ids[-len(generation_prompt) :] == generation_prompt
        expected = recomputed_logprobs(model, g.prompt_ids, g.response_ids, r.sampling.temperature)
        torch.testing.assert_close(torch.tensor(g.logprobs), expected, atol=1e-4, rtol=1e-4)
        assert g.finish_reason in ("stop", "length")
    # a request's seed fixes its sample whatever else is in the batch
    alone = asyncio.run(policy.generate([requests[1]]))[0]
    assert alone.response_ids == generations[1].response_ids


def test_greedy_stop_strings_and_saved_folder(tiny, tmp_path) -> None:
    model, tokenizer = tiny
    policy = HFPolicy(model, tokenizer)
    greedy = policy.generate_sync([request("go", max_new_tokens=10, temperature=0.0)] * 2)
    assert greedy[0].response_ids == greedy[1].response_ids
    ids = torch.tensor([greedy[0].prompt_ids + greedy[0].response_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(greedy[0].prompt_ids) - 1 : -1]
    assert logits.argmax(-1).tolist() == greedy[0].response_ids
    torch.testing.assert_close(torch.tensor(greedy[0].logprobs), torch.log_softmax(logits.float(), -1).max(-1).values, atol=1e-4, rtol=1e-4)
    first_token = tokenizer.decode(greedy[0].response_ids[:1])
    stopped = policy.generate_sync([request("go", max_new_tokens=10, temperature=0.0, stop=[first_token])])[0]
    assert stopped.finish_reason == "stop" and stopped.response_ids == greedy[0].response_ids[:1]

    saved_model, saved_tokenizer = build_tiny(tmp_path / "tiny", corpus(), vocab_size=600)
    reloaded = HFPolicy(str(tmp_path / "tiny"))
    same = HFPolicy(saved_model, saved_tokenizer)
    r = request("take mug 1", max_new_tokens=8, seed=5)
    a, b = reloaded.generate_sync([r])[0], same.generate_sync([r])[0]
    assert (a.prompt_ids, a.response_ids) == (b.prompt_ids, b.response_ids)


def test_saved_tiny_tokenizer_encodes_the_same_after_reload(tmp_path) -> None:
    """AutoTokenizer reloads a Qwen2 folder as Qwen2Tokenizer, which rebuilds the pre-tokenizer:
    the trained one must already be Qwen2's, or a reloaded policy reads different ids than it learned."""
    from transformers import AutoTokenizer

    _, trained = build_tiny(tmp_path / "tiny", corpus(), vocab_size=600)
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "tiny")
    messages = [{"role": "user", "content": corpus()[0] + " go to cabinet 12, take mug 10 from shelf 3. Ünïcode café"}]
    texts = [trained.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), corpus()[1] + "<|im_end|>"]
    assert reloaded.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == texts[0]
    for text in texts:
        assert reloaded(text, add_special_tokens=False)["input_ids"] == trained(text, add_special_tokens=False)["input_ids"]
    assert (reloaded.eos_token_id, reloaded.pad_token_id) == (trained.eos_token_id, trained.pad_token_id)


def test_token_ids_preserved_through_an_alfworld_rollout(tiny) -> None:
    require_alfworld()
    model, tokenizer = tiny
    policy = HFPolicy(model, tokenizer)

    async def main():
        pool = make_pool("inline", "alfworld", 2, ALFWORLD_KWARGS)
        try:
            return await collect(policy, pool, [TASK_BOOK], group_size=2, max_turns=2, sampling=SamplingParams(max_new_tokens=16, temperature=0.8), mask_truncated=True)
        finally:
            await pool.aclose()

    episodes = asyncio.run(main())
    turns = [t for e in episodes for t in e.turns]
    assert len(turns) == 4 and all(e.task_id == TASK_BOOK for e in episodes)
    for t in turns:
        text = tokenizer.apply_chat_template(t.messages, tokenize=False, add_generation_prompt=True)
        assert t.prompt_ids == tokenizer(text, add_special_tokens=False)["input_ids"]
        expected = recomputed_logprobs(model, t.prompt_ids, t.response_ids, 0.8)
        torch.testing.assert_close(torch.tensor(t.logprobs), expected, atol=1e-4, rtol=1e-4)
        truncated = len(t.response_ids) == 16 and t.response_ids[-1] != tokenizer.eos_token_id
        assert t.response_mask == [0 if truncated else 1] * len(t.response_ids)
    assert "Action:" in turns[1].prompt_text  # the second turn's prompt shows the first in its history


def test_a_lora_model_samples_through_the_current_cache_argument(tiny) -> None:
    """PEFT's wrapper forwards ``**kwargs``, so its own signature names no cache argument: the policy must
    read the wrapped model's, not fall back to the deprecated ``past_key_values`` (removed in a later transformers)."""
    import warnings

    peft = pytest.importorskip("peft")
    model, tokenizer = tiny
    lora = peft.get_peft_model(copy.deepcopy(model), peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))  # B = 0: the same function
    r = request("go", max_new_tokens=8, temperature=0.0)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*past_key_values.*")
        adapted = HFPolicy(lora, tokenizer).generate_sync([r])[0]
        (_, adapted_scores), = HFPolicy(lora, tokenizer).sample_and_score([r], lambda *_: [[5, 6], [7]])
    assert adapted.response_ids == HFPolicy(model, tokenizer).generate_sync([r])[0].response_ids
    (_, scores), = HFPolicy(model, tokenizer).sample_and_score([r], lambda *_: [[5, 6], [7]])
    torch.testing.assert_close(torch.tensor(adapted_scores[0]), torch.tensor(scores[0]))  # and scores through the cache


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_continuation_logprobs_match_a_forward_pass_over_each(tiny, attention, temperature) -> None:
    """Packed into one pass, each continuation's log-probs are those of its own forward pass: shared first
    tokens, own tokens of different lengths, a duplicate, and (second set) a one-token continuation."""
    model, tokenizer = tiny
    model = copy.deepcopy(model)
    model.set_attn_implementation(attention)
    policy = HFPolicy(model, tokenizer)
    prompt = policy.prompt_ids(request("You arrive at armchair 2. On the armchair 2, you see a keychain 1."))
    agent = TextAgent("alfworld")
    actions = ["go to desk 1", "look", "take keychain 1 from armchair 2", "look"]
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    with_shared_start = [encode(agent.render_action(a, "The pen.")) for a in actions]
    assert len({c[0] for c in with_shared_start}) == 1 and len({len(c) for c in with_shared_start}) > 1
    for continuations in (with_shared_start, [encode("look"), [tokenizer.eos_token_id], encode("go to desk 1")]):
        scores = policy.continuation_logprobs(prompt, continuations, temperature)
        for continuation, score in zip(continuations, scores, strict=True):
            expected = recomputed_logprobs(model, prompt, continuation, temperature or 1.0)
            torch.testing.assert_close(torch.tensor(score), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_sample_and_score_scores_on_the_sampling_cache_as_a_forward_pass_would(tiny, attention) -> None:
    """Scored on the cache a batch's sampling left: each row's continuations get the log-probs of their own
    forward pass after that row's prompt, whatever the row's left padding and the tokens sampled after it."""
    model, tokenizer = tiny
    model = copy.deepcopy(model)
    model.set_attn_implementation(attention)
    policy = HFPolicy(model, tokenizer)
    agent = TextAgent("alfworld")
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    wanted = {
        "You arrive at armchair 2. On the armchair 2, you see a keychain 1 and a pen 3.": [encode(agent.render_action(a, "The pen.")) for a in ("look", "take pen 3 from armchair 2", "go to desk 1")],
        "Nothing happens.": [],
        "You open the drawer 1.": [encode("look"), [tokenizer.eos_token_id]],
    }
    temperatures = [0.7, 0.7, 0.0]
    requests = [request(text, temperature=t, seed=i, max_new_tokens=5 + 3 * i) for i, (text, t) in enumerate(zip(wanted, temperatures))]
    scored = policy.sample_and_score(requests, lambda r, g: wanted[r.messages[0]["content"]])
    assert len({len(g.prompt_ids) for g, _ in scored}) == 3 and all(g.response_ids for g, _ in scored)
    for (generation, scores), continuations, t in zip(scored, wanted.values(), temperatures, strict=True):
        assert len(scores) == len(continuations)
        for continuation, score in zip(continuations, scores, strict=True):
            expected = recomputed_logprobs(model, generation.prompt_ids, continuation, t or 1.0)
            torch.testing.assert_close(torch.tensor(score), expected, atol=1e-5, rtol=1e-5)


def test_continuation_logprobs_name_an_attention_that_takes_no_mask(tiny) -> None:
    from sdar_gym.core import ConfigError

    model, tokenizer = tiny
    model = copy.deepcopy(model)
    model.config._attn_implementation = "flash_attention_2"  # what a user may load on a GPU; not run here
    with pytest.raises(ConfigError, match="flash_attention_2.*attn_implementation='sdpa'"):
        HFPolicy(model, tokenizer).continuation_logprobs([1, 2], [[3]], 1.0)
    from learners.admissible_choice import AdmissibleChoice

    with pytest.raises(ConfigError, match="flash_attention_2"):  # when the run starts, not at its first scored turn
        AdmissibleChoice(HFPolicy(model, tokenizer), "alfworld")


class FixedAnswer(HFPolicy):
    """Answers ``text`` to every request in place of what it sampled, so the choice among actions is what is
    tested (the prompt's cache is the sampling's, which the scoring reads)."""

    text = ""

    def _sample(self, requests):
        from sdar_gym.rollout.types import Generation

        _, prompt_cache = super()._sample(requests)
        ids = self.tokenizer(self.text, add_special_tokens=False)["input_ids"]
        return [Generation(self.text, self.prompt_ids(r), ids, [0.0] * len(ids)) for r in requests], prompt_cache


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_admissible_choice_plays_the_listed_action_the_model_scores_best(tiny, temperature) -> None:
    from learners.admissible_choice import AdmissibleChoice

    model, tokenizer = tiny
    agent = TextAgent("alfworld")
    inner = FixedAnswer(model, tokenizer)
    inner.text = agent.render_action("take pen 1 from armchair 2", "The pen.")
    admissible = ["go to desk 1", "look", "take keychain 1 from armchair 2", "go to sinkbasin 1"]
    r = request("You arrive at armchair 2. On the armchair 2, you see a keychain 1.", temperature=0.0)
    r.metadata["admissible_actions"] = admissible
    (chosen,) = asyncio.run(AdmissibleChoice(inner, "alfworld").generate([r]))
    totals = []
    for action in admissible:
        ids = tokenizer(agent.render_action(action, "The pen."), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        totals.append(float(recomputed_logprobs(model, chosen.prompt_ids, ids, 1.0).sum()))
    assert chosen.text == agent.render_action(admissible[max(range(4), key=totals.__getitem__)], "The pen.")
    assert chosen.response_ids[-1] == tokenizer.eos_token_id and chosen.finish_reason == "stop"
    # what a learner recomputes over the stored ids is what was stored, at the request's temperature
    r.sampling.temperature = temperature
    if temperature > 0:
        r.sampling.seed = 5
        (chosen,) = asyncio.run(AdmissibleChoice(inner, "alfworld").generate([r]))
        assert agent.project(chosen.text).action in admissible
    expected = recomputed_logprobs(model, chosen.prompt_ids, chosen.response_ids, temperature or 1.0)
    torch.testing.assert_close(torch.tensor(chosen.logprobs), expected, atol=1e-4, rtol=1e-4)


def test_admissible_choice_keeps_malformed_answers_and_unlisted_turns(tiny) -> None:
    from learners.admissible_choice import AdmissibleChoice

    model, tokenizer = tiny
    inner = FixedAnswer(model, tokenizer)
    inner.text = "take pen 1 from armchair 2"  # no tags: the format penalty must still apply
    listed, unlisted = request("a room", temperature=0.0), request("a room", temperature=0.0)
    listed.metadata["admissible_actions"] = ["look"]
    out = asyncio.run(AdmissibleChoice(inner, "alfworld").generate([listed, unlisted]))
    assert [g.text for g in out] == [inner.text] * 2
    inner.text = TextAgent("alfworld").render_action("take pen 1 from armchair 2", "x")
    out = asyncio.run(AdmissibleChoice(inner, "alfworld").generate([listed, unlisted]))
    assert [TextAgent("alfworld").project(g.text).action for g in out] == ["look", "take pen 1 from armchair 2"]


def test_admissible_choice_keeps_free_text_where_the_list_holds_a_template(tiny) -> None:
    """WebShop lists ``search[<your query>]`` on its search page: the sampled query is played, never the placeholder."""
    from learners.admissible_choice import AdmissibleChoice

    model, tokenizer = tiny
    agent = TextAgent("webshop")
    inner = FixedAnswer(model, tokenizer)
    inner.text = agent.render_action("search[red running shoes]", "x")
    search_page, results_page = request("a page", temperature=0.0), request("a page", temperature=0.0)
    search_page.metadata["admissible_actions"] = ["search[<your query>]"]
    results_page.metadata["admissible_actions"] = ["click[back to search]", "click[b0001]"]
    out = asyncio.run(AdmissibleChoice(inner, "webshop").generate([search_page, results_page]))
    assert agent.project(out[0].text).action == "search[red running shoes]"
    assert agent.project(out[1].text).action in {"click[back to search]", "click[b0001]"}
    both = AdmissibleChoice(inner, "webshop")._candidates(inner.text, ["search[<your query>]", "click[b0001]"], "search[red running shoes]")
    assert [agent.project(t).action for t in both] == ["click[b0001]", "search[red running shoes]"]


def test_admissible_choice_needs_a_policy_it_can_score_with() -> None:
    from learners.admissible_choice import AdmissibleChoice
    from sdar_gym.core import ConfigError
    from sdar_gym.rollout.scripted import RandomPolicy

    with pytest.raises(ConfigError, match="use the hf generator, not RandomPolicy"):
        AdmissibleChoice(RandomPolicy("alfworld"), "alfworld")
