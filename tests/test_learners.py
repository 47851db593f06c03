"""Learners on a tiny random Qwen2 model with hand-made episodes (no env, no rollout)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import pytest
import torch

from learners.algorithms import LEARNERS, learner_entry, make_config, make_learner
from learners.base import NonFiniteLossError
from learners.policy_model import PolicyModel, PolicyModelConfig
from learners.teacher import SkillContext, insert_context, user_header_ids
from sdar_gym.core import ConfigError
from sdar_gym.rollout.types import Episode, Turn

WORDS = "go to open take put the a in on from cabinet 1 2 3 apple fridge sink mug heat cool clean look task your is you see nothing happens skill: first find then".split()
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module", autouse=True)
def one_thread(torch_one_thread):
    """Every test here runs on one torch thread (see conftest)."""


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<|im_start|>", "<|im_end|>", "<unk>"]
    vocab = {w: i for i, w in enumerate(specials + ["\n", ":", "."] + WORDS + ["user", "assistant", "system"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split("\n", behavior="isolated"), pre_tokenizers.WhitespaceSplit()])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>", unk_token="<unk>")
    fast.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    fast.chat_template = CHATML
    return fast


def tiny_policy(tokenizer, seed: int = 0, **cfg) -> PolicyModel:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True,
    )
    return PolicyModel.from_model(Qwen2ForCausalLM(config), tokenizer, PolicyModelConfig(model="tiny", logprob_chunk=7, **cfg))


@dataclass
class Retrieval:
    context: str
    skills: list = field(default_factory=list)


class FakeLibrary:
    """Stands in for skills.SkillLibrary: a fixed skill text per task type."""

    def __init__(self):
        self.calls = []

    def retrieve(self, task, task_type=None, k=3, strategy="topk", budget_chars=None, seed=None):
        self.calls.append((task, task_type, strategy))
        return Retrieval(context=f"skill: first find the {task_type} then open the fridge")


def episodes(tokenizer, policy: PolicyModel, rewards=(10.0, 0.0, 0.0, 10.0), seed: int = 1) -> list[Episode]:
    """One group of episodes with two turns each; responses sampled at random, log-probs recomputed."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, r in enumerate(rewards):
        turns = []
        for step in range(2):
            prompt = tokenizer.apply_chat_template(
                [{"role": "user", "content": f"your task is put a apple in fridge . you see cabinet {step + 1}"}], add_generation_prompt=True, return_dict=False
            )
            response = torch.randint(7, 7 + len(WORDS), (3 + i,), generator=g).tolist()
            with torch.no_grad():
                lp, _ = policy.response_logprobs([prompt], [response])
            turns.append(
                Turn(prompt_ids=prompt, response_ids=response, logprobs=lp.tolist(), action="open fridge", reward=r if step == 1 else 0.0,
                     info={}, task="put a apple in fridge", task_type="apple")
            )
        out.append(Episode(turns=turns, group_id="g0", task_id="t0", task="put a apple in fridge", task_type="apple", score=float(r > 0), won=r > 0))
    return out


def params(policy: PolicyModel) -> list[torch.Tensor]:
    return [p.detach().clone() for p in policy.model.parameters()]


def test_registry_lists_all_paper_learners():
    learner_entry("grpo")
    assert {"grpo", "sdar", "opsd", "grpo_opsd", "skill_grpo", "rlsd", "skill_sd"} <= set(LEARNERS)
    assert make_config("grpo_opsd").gate_beta == 0.0
    c = make_config("sdar")
    assert (c.lr, c.clip_ratio_low, c.kl_coef, c.distill_coef, c.gate_beta, c.entropy_coef) == (1e-6, 0.2, 0.01, 0.01, 5.0, 0.001)
    with pytest.raises(ConfigError, match="unknown learner"):
        learner_entry("ppo2")
    with pytest.raises(ConfigError, match="no setting 'gate'"):
        make_config("sdar", {"gate": 1})


def test_response_logprobs_match_full_forward(tokenizer):
    policy = tiny_policy(tokenizer)
    prompts = [[1, 5, 6, 7], [1, 8]]
    responses = [[9, 10, 11], [12, 13, 14, 15, 16]]
    lp, ent = policy.response_logprobs(prompts, responses, with_entropy=True)
    ref = []
    for p, r in zip(prompts, responses):
        logits = policy.model(torch.tensor([p + r])).logits[0]
        full = torch.log_softmax(logits, -1)
        ref.append(full[len(p) - 1 : len(p) + len(r) - 1].gather(-1, torch.tensor(r)[:, None]).squeeze(-1))
    assert torch.allclose(lp, torch.cat(ref), atol=1e-5)
    assert ent is not None and ent.shape == lp.shape and (ent > 0).all()


def test_teacher_prompt_has_skills_student_prompt_does_not(tokenizer):
    policy = tiny_policy(tokenizer)
    library = FakeLibrary()
    learner = make_learner("sdar", policy, SkillContext(library, strategy="task_type"), {"teacher_template": "in_message"})
    samples = learner.samples(episodes(tokenizer, policy))
    skill_text = "skill: first find the apple then open the fridge"
    for s in samples:
        student, teacher = tokenizer.decode(s.prompt_ids), tokenizer.decode(s.teacher_prompt_ids)
        assert skill_text not in student
        assert skill_text in teacher
        # the teacher prompt is the student prompt with the context inserted after the user header
        header = user_header_ids(tokenizer)
        assert teacher.replace("Privileged guidance (skills retrieved for this task):\n", "").count("skill:") == 1
        assert s.teacher_prompt_ids[: len(header)] == header
        assert s.teacher_prompt_ids[-len(s.prompt_ids) + len(header) :] == s.prompt_ids[len(header) :]
    assert library.calls == [("put a apple in fridge", "apple", "task_type")]  # retrieved once per key
    assert insert_context(tokenizer, [1, 2, 3], "") == [1, 2, 3]


def test_sdar_equals_grpo_when_lambda_is_zero(tokenizer):
    base = tiny_policy(tokenizer)
    eps = episodes(tokenizer, base)
    a, b = base, copy.deepcopy(base)
    overrides = {"lr": 1e-2, "micro_batch_size": 3}
    ma = make_learner("grpo", a, overrides=overrides).update(eps)
    mb = make_learner("sdar", b, SkillContext(FakeLibrary()), overrides={**overrides, "distill_coef": 0.0}).update(eps)
    for x, y in zip(params(a), params(b)):
        assert torch.equal(x, y)
    assert ma["train/pg_loss"] == pytest.approx(mb["train/pg_loss"])
    # and with λ > 0 they differ
    c = copy.deepcopy(base)
    make_learner("sdar", c, SkillContext(FakeLibrary()), overrides={**overrides, "distill_coef": 1.0}).update(eps)
    assert any(not torch.equal(x, y) for x, y in zip(params(a), params(c)))


def test_grpo_update_raises_logprob_of_rewarded_responses(tokenizer):
    policy = tiny_policy(tokenizer)
    eps = episodes(tokenizer, policy, rewards=(10.0, 0.0))
    learner = make_learner("grpo", policy, overrides={"lr": 3e-3, "kl_coef": 0.0, "entropy_coef": 0.0})
    good, bad = eps[0].turns[1], eps[1].turns[1]

    def lp(t):
        with torch.no_grad():
            return policy.response_logprobs([t.prompt_ids], [t.response_ids])[0].sum().item()

    before = (lp(good), lp(bad))
    for _ in range(3):
        learner.update(eps)
    assert lp(good) > before[0] and lp(bad) < before[1]


def test_demo_coef_trains_on_demonstrations_beside_rl(tokenizer):
    """PPO-ptx's term: with equal rewards (no RL signal, no KL or entropy) the update leaves the policy as it is,
    unless demo_coef > 0, when it raises the demonstrations' likelihood; it also reports their NLL."""
    base = tiny_policy(tokenizer)
    eps = episodes(tokenizer, base, rewards=(5.0, 5.0))
    demo = (tokenizer.apply_chat_template([{"role": "user", "content": "your task is put a apple in fridge"}], add_generation_prompt=True, return_dict=False),
            tokenizer("go to fridge 1 open fridge 1", add_special_tokens=False)["input_ids"])

    def nll(policy):
        with torch.no_grad():
            return -policy.response_logprobs([demo[0]], [demo[1]])[0].mean().item()

    quiet = {"lr": 3e-3, "kl_coef": 0.0, "entropy_coef": 0.0}
    off, on = copy.deepcopy(base), copy.deepcopy(base)
    make_learner("grpo", off, overrides=quiet).update(eps)
    assert all(torch.equal(x, y) for x, y in zip(params(base), params(off)))
    learner = make_learner("grpo", on, overrides={**quiet, "demo_coef": 1.0, "demo_batch": 2})
    learner.demonstrations = [demo]
    metrics = learner.update(eps)
    assert metrics["train/demo_nll"] == pytest.approx(nll(base), rel=1e-4)
    assert nll(on) < nll(base)
    broken = make_learner("grpo", copy.deepcopy(base), overrides={**quiet, "demo_coef": 1.0})
    broken.demonstrations = [demo]
    broken._demo_nll = lambda draw: torch.tensor(float("nan"), requires_grad=True)  # e.g. an overflow in a long demonstration
    with pytest.raises(NonFiniteLossError, match="'demo_nll'"):
        broken.update(eps)
    assert all(torch.equal(x, y) for x, y in zip(params(base), params(broken.policy)))  # stopped before the optimizer step
    with pytest.raises(ConfigError, match="needs expert demonstrations"):
        make_learner("grpo", copy.deepcopy(base), overrides={"demo_coef": 1.0}).update(eps)
    for bad in ({"demo_coef": -1.0}, {"demo_coef": float("nan")}, {"demo_batch": 0}):
        with pytest.raises(ConfigError, match="demo_coef must be"):
            make_learner("grpo", copy.deepcopy(base), overrides=bad)


def test_tuned_update_threads_probe_both_passes_and_restore_the_callers_count(tokenizer, monkeypatch):
    """``tune_threads``: the scoring passes and the gradient micro-batches each run on the counts being timed,
    the result is the untuned update's up to float rounding, and the rollout's count is back afterwards."""
    base = tiny_policy(tokenizer)
    eps = episodes(tokenizer, base)
    overrides = {"lr": 1e-2, "micro_batch_size": 1}
    plain, tuned = base, copy.deepcopy(base)
    make_learner("sdar", plain, SkillContext(FakeLibrary()), overrides=overrides).update(eps)
    learner = make_learner("sdar", tuned, SkillContext(FakeLibrary()), overrides=overrides)
    learner.tune_threads((1, 3))
    used = []
    set_threads = torch.set_num_threads
    set_threads(2)  # the rollout's count, none of the candidates
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (used.append(n), set_threads(n)))
    try:
        metrics = learner.update(eps)  # 8 turn samples in micro-batches of 1: each tuner's probe of 3 rounds ends
        assert torch.get_num_threads() == 2  # restored
    finally:
        set_threads(1)
    assert used.count(3) >= 6  # 3 probe rounds in each of the two passes
    assert metrics["perf/train_threads"] in (1.0, 3.0) and metrics["perf/score_threads"] in (1.0, 3.0)
    for x, y in zip(params(plain), params(tuned)):
        torch.testing.assert_close(x, y, atol=1e-4, rtol=0)  # an Adam step moves each weight by about lr = 1e-2


@pytest.mark.parametrize("name", ["grpo", "sdar", "opsd", "grpo_opsd", "skill_grpo", "rlsd", "skill_sd"])
def test_every_learner_updates_and_reports_metrics(tokenizer, name):
    policy = tiny_policy(tokenizer)
    entry = learner_entry(name)
    skills = SkillContext(FakeLibrary()) if entry.learner_cls.uses_teacher else None
    learner = make_learner(name, policy, skills, overrides={"lr": 1e-3, "mini_batches": 2})
    before = params(policy)
    metrics = learner.update(episodes(tokenizer, policy))
    assert any(not torch.equal(x, y) for x, y in zip(before, params(policy)))
    assert all(isinstance(v, float) and v == v for v in metrics.values())
    assert {"train/loss", "train/grad_norm", "train/entropy", "perf/update_s", "perf/update_tokens_per_s"} <= set(metrics)
    if name != "opsd":
        assert {"train/clip_frac", "train/kl"} <= set(metrics)
    if name in ("sdar", "grpo_opsd"):
        assert {"sdar/gate_mean", "sdar/gate_active_ratio", "sdar/teacher_gap_mean"} <= set(metrics)
        assert 0.0 < metrics["sdar/gate_mean"] < 1.0
    if name == "grpo_opsd":
        assert metrics["sdar/gate_mean"] == pytest.approx(0.5)


def test_teacher_learners_require_a_skill_library(tokenizer):
    with pytest.raises(ConfigError, match="skill library"):
        make_learner("sdar", tiny_policy(tokenizer))


def test_lora_reference_is_the_base_model(tokenizer):
    policy = tiny_policy(tokenizer, lora_rank=4, lora_target_modules=["q_proj", "v_proj"])
    trainable = policy.trainable_parameters()
    assert trainable and all("lora" in n for n, p in policy.model.named_parameters() if p.requires_grad)
    eps = episodes(tokenizer, policy)
    make_learner("grpo", policy, overrides={"lr": 5e-2}).update(eps)
    t = eps[0].turns[0]
    with torch.no_grad():
        now, _ = policy.response_logprobs([t.prompt_ids], [t.response_ids])
        with policy.reference() as ref_model:
            ref, _ = policy.response_logprobs([t.prompt_ids], [t.response_ids], model=ref_model)
    assert torch.allclose(ref, torch.tensor(t.logprobs), atol=1e-5)  # adapters off = the initial policy
    assert not torch.allclose(now, ref, atol=1e-5)
