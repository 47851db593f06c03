"""Fidelity to the released SDAR code (github ZJU-REAL/SDAR, a verl-agent fork).

Each learner's loss on fixed tensors is checked, value and gradient, against a reference written
here from the released formulas (verl/trainer/ppo/core_algos.py ``compute_policy_loss`` and
``kl_penalty``, verl/workers/actor/dp_actor.py, sdar_utils.py, rlsd_utils.py, skillsd_utils.py),
independently of ``learners.losses``. Then the teacher prompt, the skill routing and the presets.
"""
from __future__ import annotations

import math

import pytest
import torch

from learners.algorithms import learner_entry, make_learner
from learners.base import Batch
from learners.teacher import SkillContext
from sdar_gym.core import ConfigError

# ---- fixed tensors: 2 turn samples (3 + 3 tokens, one masked), advantages +1.5 and -0.8 ----------
LOGP = [-0.3, -1.2, -2.0, -0.7, -0.1, -1.6]
OLD = [-0.5, -1.0, -2.6, -0.2, -0.4, -1.5]
REF = [-0.4, -1.5, -1.9, -0.9, -0.2, -1.0]
TEACHER = [-0.1, -2.0, -1.0, -0.3, -0.6, -2.5]
ENTROPY = [1.1, 0.7, 2.0, 0.4, 0.9, 1.3]
ADV = [1.5, 1.5, 1.5, -0.8, -0.8, -0.8]
MASK = [1.0, 1.0, 1.0, 1.0, 0.0, 1.0]


def batch() -> Batch:
    t = lambda xs: torch.tensor(xs, dtype=torch.float64)  # noqa: E731
    logp = t(LOGP).requires_grad_(True)
    return Batch(logp=logp, old_logp=t(OLD), advantages=t(ADV), entropy=t(ENTROPY), ref_logp=t(REF), teacher_logp=t(TEACHER), mask=t(MASK))


def token_mean(x: torch.Tensor) -> torch.Tensor:
    m = torch.tensor(MASK, dtype=x.dtype)
    return (x * m).sum() / m.sum()


def verl_pg(logp, adv, clip_low=0.2, clip_high=0.2, clip_c=3.0):
    """compute_policy_loss (vanilla) as released, token-mean."""
    old = torch.tensor(OLD, dtype=logp.dtype)
    ratio = torch.exp(logp - old)
    l1 = -adv * ratio
    l2 = -adv * torch.clamp(ratio, 1 - clip_low, 1 + clip_high)
    c1 = torch.maximum(l1, l2)
    c2 = torch.min(-adv * clip_c, c1)
    return token_mean(torch.where(adv < 0, c2, c1))


def verl_rest(logp, kl_coef, ent_coef=0.001):
    """− entropy_coeff·H + kl_loss_coef·low_var_kl, as dp_actor.py adds them."""
    ref = torch.tensor(REF, dtype=logp.dtype)
    kl = ref - logp
    kld = torch.clamp(torch.exp(kl) - kl - 1, -10, 10)
    return -ent_coef * token_mean(torch.tensor(ENTROPY, dtype=logp.dtype)) + kl_coef * token_mean(kld)


def sdar_term(logp, beta):
    """sdar_utils.compute_sdar_loss."""
    teacher = torch.tensor(TEACHER, dtype=logp.dtype)
    gate = torch.sigmoid(beta * (teacher - logp.detach())).detach()
    return token_mean(gate * (teacher - logp))


def sdl_term(logp):
    """skillsd_utils.compute_sdl_loss."""
    teacher, old = torch.tensor(TEACHER, dtype=logp.dtype), torch.tensor(OLD, dtype=logp.dtype)
    ell = logp - teacher
    k3 = torch.exp((-ell).clamp(max=20.0)) - 1.0 + ell
    rho = torch.exp((logp - old).clamp(max=10.0))
    return token_mean(rho * k3)


def rlsd_advantages(lam, eps=0.2):
    """rlsd_utils.compute_rlsd_token_advantage, with the pre-update (old) log-probs."""
    a = torch.tensor(ADV, dtype=torch.float64)
    delta = torch.tensor(TEACHER, dtype=torch.float64) - torch.tensor(OLD, dtype=torch.float64)
    w = torch.clamp(torch.exp(torch.sign(a) * delta), 1 - eps, 1 + eps)
    return a * ((1 - lam) + lam * w)


def reference(name: str, logp: torch.Tensor, updates: int) -> torch.Tensor:
    adv = torch.tensor(ADV, dtype=logp.dtype)
    if name in ("grpo", "skill_grpo"):
        return verl_pg(logp, adv) + verl_rest(logp, 0.01)
    if name == "sdar":
        return verl_pg(logp, adv) + verl_rest(logp, 0.01) + 0.01 * sdar_term(logp, 5.0)
    if name == "grpo_opsd":
        return verl_pg(logp, adv) + verl_rest(logp, 0.01) + 0.01 * sdar_term(logp, 0.0)
    if name == "opsd":  # pg_loss_coef = 0
        return 0.0 * verl_pg(logp, adv) + verl_rest(logp, 0.01) + 0.01 * sdar_term(logp, 5.0)
    if name == "rlsd":
        lam = 0.0 if updates >= 100 else 0.5 * (1 - updates / 100)
        return verl_pg(logp, rlsd_advantages(lam)) + verl_rest(logp, 0.01)
    if name == "skill_sd":
        return verl_pg(logp, adv) + verl_rest(logp, 0.01) + 0.001 * sdl_term(logp)
    raise KeyError(name)


class StubPolicy:
    """Just enough of a PolicyModel for a learner's constructor; ``loss`` never touches the model."""

    def __init__(self):
        self.param = torch.nn.Parameter(torch.zeros(1))
        self.scorer = torch.nn.Module()  # what the learner hands to the data-parallel engine

    def trainable_parameters(self):
        return [self.param]


class NoLibrary:
    def retrieve(self, *a, **k):
        raise AssertionError("loss() must not retrieve skills")


LEARNER_NAMES = ["grpo", "skill_grpo", "sdar", "grpo_opsd", "opsd", "rlsd", "skill_sd"]


@pytest.mark.parametrize(("name", "updates"), [(n, 1) for n in LEARNER_NAMES] + [("rlsd", 37), ("rlsd", 100)])
def test_loss_value_and_gradient_match_the_released_formulas(name, updates):
    entry = learner_entry(name)
    skills = SkillContext(NoLibrary()) if entry.learner_cls.uses_teacher else None
    learner = make_learner(name, StubPolicy(), skills)
    learner.updates = updates
    b = batch()
    loss, _ = learner.loss(b)
    (grad,) = torch.autograd.grad(loss, b.logp)
    logp = torch.tensor(LOGP, dtype=torch.float64, requires_grad=True)
    ref = reference(name, logp, updates)
    (ref_grad,) = torch.autograd.grad(ref, logp)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-9, abs=1e-12)
    assert torch.allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


def test_released_coefficients():
    from learners.algorithms import make_config

    assert (make_config("sdar").distill_coef, make_config("sdar").gate_beta, make_config("sdar").pg_coef) == (0.01, 5.0, 1.0)
    assert (make_config("opsd").distill_coef, make_config("opsd").gate_beta, make_config("opsd").pg_coef) == (0.01, 5.0, 0.0)
    assert make_config("grpo_opsd").gate_beta == 0.0
    rlsd = make_config("rlsd")
    assert (rlsd.rlsd_lambda, rlsd.warmdown_steps, rlsd.weight_clip) == (0.5, 100, 0.2)
    assert (make_config("skill_sd").distill_coef, make_config("skill_sd").max_log_ratio) == (0.001, 10.0)
    for name in LEARNER_NAMES:
        assert make_config(name).advantage == "grpo" and make_config(name).teacher_template == "official"
        assert make_config(name).norm_adv_by_std  # ppo_trainer.yaml algorithm.norm_adv_by_std_in_grpo
    assert make_config("grpo", {"norm_adv_by_std": "false"}).norm_adv_by_std is False
    with pytest.raises(ConfigError, match="norm_adv_by_std='flase' is not a valid bool"):
        make_config("grpo", {"norm_adv_by_std": "flase"})  # a typo is an error, not a silent False


def test_unknown_estimator_and_template_are_refused():
    with pytest.raises(ConfigError, match="known: grpo, grpo_episode, gigpo"):
        make_learner("grpo", StubPolicy(), overrides={"advantage": "vtrace"})
    with pytest.raises(ConfigError, match="known: official, in_message"):
        make_learner("sdar", StubPolicy(), SkillContext(NoLibrary()), overrides={"teacher_template": "system"})


# ---- the official teacher prompt --------------------------------------------------------------------
@pytest.fixture(scope="module")
def chatml_tokenizer():
    from learners.tiny import train_tokenizer

    lines = ["<think>I should open the fridge.</think><action>go to fridge 1</action>", "Your task is to: put a clean mug in coffeemachine."] * 20
    return train_tokenizer(lines, vocab_size=300)


class FixedLibrary:
    def __init__(self, text):
        self.text = text

    def retrieve(self, task, task_type=None, k=3, strategy="official", budget_chars=None, seed=None):
        from types import SimpleNamespace

        return SimpleNamespace(context=self.text, skills=[])


def one_turn_episode(tokenizer, content: str):
    from sdar_gym.rollout.types import Episode, Turn

    prompt = tokenizer.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    response = tokenizer.encode("<action>go to fridge 1</action>", add_special_tokens=False)
    turn = Turn(prompt_ids=prompt_ids, response_ids=response, logprobs=[-1.0] * len(response), action="go to fridge 1", reward=0.0,
                info={}, task="put a mug", task_type="pick_and_place_simple", messages=[{"role": "user", "content": content}])
    return Episode([turn], "g", "t", "put a mug", "pick_and_place_simple", 0.0, False)


def test_official_teacher_prompt_is_the_released_construction(chatml_tokenizer):
    from learners.policy_model import PolicyModel, PolicyModelConfig
    from learners.tiny import TinyConfig, make_tiny_model

    tok = chatml_tokenizer
    policy = PolicyModel.from_model(make_tiny_model(tok, TinyConfig(hidden_size=16, intermediate_size=32)), tok, PolicyModelConfig(model="tiny"))
    skills = "- Heat food in the microwave.\n- Cool food in the fridge."
    content = "Your task is to: put a clean mug in coffeemachine."
    learner = make_learner("sdar", policy, SkillContext(FixedLibrary(skills)))
    (sample,) = learner.samples([one_turn_episode(tok, content)])
    by_hand = (
        "[Privileged Skill Information]\n- Heat food in the microwave.\n- Cool food in the fridge.\n\n"
        "<|im_start|>user\nYour task is to: put a clean mug in coffeemachine.<|im_end|>\n<|im_start|>assistant\n"
    )
    assert sample.teacher_prompt_ids == tok.encode(by_hand, add_special_tokens=False)
    assert learner.teacher_truncated == 0
    assert "Privileged" not in tok.decode(sample.prompt_ids) and "microwave" not in tok.decode(sample.prompt_ids)
    # longer than max_prompt_length: the released left truncation, counted in the metrics
    short = make_learner("sdar", policy, SkillContext(FixedLibrary(skills)), overrides={"max_prompt_length": 12, "kl_coef": 0})
    metrics = short.update([one_turn_episode(tok, content)])
    (sample,) = short.samples([one_turn_episode(tok, content)])
    assert sample.teacher_prompt_ids == tok.encode(by_hand, add_special_tokens=False)[-12:]
    assert metrics["teacher/truncated_prompts"] == 1.0


# ---- skill routing ----------------------------------------------------------------------------------
def test_official_routing_is_general_plus_the_task_types_skills():
    from skills import default_library

    lib = default_library("alfworld", embedder="hashing")
    general = [s.id for s in lib.skills if s.is_general]
    assert general
    for task_type in ("pick_and_place_simple", "pick_clean_then_place_in_recep", "pick_heat_then_place_in_recep",
                      "pick_cool_then_place_in_recep", "look_at_obj_in_light", "pick_two_obj_and_place"):
        typed = [lib.skills[i].id for i in lib.typed_indices(task_type)]
        got = lib.retrieve("put a clean mug in coffeemachine", task_type=task_type, strategy="official")
        assert [s.id for s in got.skills] == general + typed and typed, task_type
    from learners.trainer import TrainArgs

    assert TrainArgs().skills == "official" and SkillContext(lib).strategy == "official"


# ---- presets -----------------------------------------------------------------------------------------
def test_paper_preset_values_and_overrides():
    from learners.evaluate import EvalArgs
    from learners.trainer import TrainArgs
    from learners.settings import resolve_eval, resolve_train

    cfg, agent = resolve_train(TrainArgs(env="search-qa"))
    assert (cfg.tasks_per_step, cfg.group_size, cfg.max_turns, cfg.max_new_tokens, cfg.steps) == (128, 8, 4, 512, 150)
    la = cfg.learner_args
    assert (la["kl_coef"], la["weight_decay"], la["ppo_mini_batch_size"], la["lr_warmup_steps"], la["max_prompt_length"]) == (0.001, 0.01, 256, 15, 4096)
    assert (agent.history_length, agent.shaping.invalid_penalty, agent.shaping.win_reward) == (4, 0.01, 1.0)
    assert agent.shaping.no_effect_penalty == 0.0  # the released projections check only the form
    assert resolve_train(TrainArgs(env="alfworld", no_effect_penalty=0.05))[1].shaping.no_effect_penalty == 0.05
    cfg, agent = resolve_train(TrainArgs(env="webshop", tasks_per_step=3, learner_args={"kl_coef": "0.05"}))
    assert cfg.tasks_per_step == 3 and cfg.max_turns == 15 and cfg.learner_args["kl_coef"] == "0.05"
    assert cfg.learner_args["ppo_mini_batch_size"] == 64 and cfg.learner_args["lr_warmup_steps"] == 0
    assert resolve_train(TrainArgs(env="alfworld", learner_args={"mini_batches": "4"}))[0].learner_args["ppo_mini_batch_size"] == 0
    cfg, agent = resolve_train(TrainArgs(env="alfworld", preset="none"))
    assert (cfg.tasks_per_step, cfg.max_new_tokens, cfg.learner_args["weight_decay"], cfg.learner_args["ppo_mini_batch_size"]) == (16, 256, 0.0, 0)
    args, _ = resolve_eval(EvalArgs(env="alfworld"))
    assert (args.temperature, args.max_turns, args.max_new_tokens) == (0.4, 50, 512)
    assert resolve_eval(EvalArgs(env="search-qa"))[0].temperature == 0.0
    with pytest.raises(ConfigError, match="known: none, paper"):
        resolve_train(TrainArgs(preset="verl"))


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_lr_warmup_is_verls_constant_schedule():
    learner = make_learner("grpo", StubPolicy(), overrides={"lr": 1.0, "lr_warmup_steps": 4})
    lrs = []
    for _ in range(6):  # the learner steps the scheduler once per update, after the optimizer steps
        lrs.append(learner.scheduler.get_last_lr()[0])
        learner.scheduler.step()
    assert lrs == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]  # get_constant_schedule_with_warmup: step / warmup, then 1


def test_ppo_mini_batch_size_makes_several_optimizer_steps():
    learner = make_learner("grpo", StubPolicy(), overrides={"ppo_mini_batch_size": 4, "micro_batch_size": 3})
    from learners.base import Sample

    samples = [Sample([1], [2], [-1.0], 0.0, "t", "x") for _ in range(10)]
    minis = learner._mini_batches(samples)
    assert [[len(m) for m in mini] for mini in minis] == [[3, 1], [3, 1], [2]]


def test_micro_batches_group_similar_lengths_within_each_optimizer_step():
    """Each optimizer step keeps its samples (in order, as before) but packs them into micro-batches of
    similar length, so a padded batch is mostly tokens: here 4 micro-batches of 3 instead of mixed ones."""
    from learners.base import Sample

    learner = make_learner("grpo", StubPolicy(), overrides={"mini_batches": 2, "micro_batch_size": 3})
    lengths = [9, 1, 5, 8, 2, 6, 30, 10, 20, 11, 31, 21]
    samples = [Sample([1] * n, [2], [-1.0], 0.0, "t", "x") for n in lengths]
    minis = learner._mini_batches(samples)
    assert [sorted(map(id, (s for micro in mini for s in micro))) for mini in minis] == [sorted(map(id, samples[:6])), sorted(map(id, samples[6:]))]
    assert [[len(s.prompt_ids) for s in micro] for mini in minis for micro in mini] == [[1, 2, 5], [6, 8, 9], [10, 11, 20], [21, 30, 31]]


def test_an_update_is_the_same_whatever_its_micro_batches(tokenizer):
    """The loss is a token mean over each optimizer step, so how the step's samples are grouped into
    micro-batches (sorted by length, or one sample each, unpadded) leaves the update as it is."""
    base = tiny_policy(tokenizer)
    eps = episodes(tokenizer, base)
    updated = []
    for micro_batch_size in (1, 4):  # both make optimizer steps of 4 of the 8 turn samples
        policy = __import__("copy").deepcopy(base)
        make_learner("sdar", policy, SkillContext(FakeLibrary()), overrides={"lr": 1e-2, "mini_batches": 2, "micro_batch_size": micro_batch_size}).update(eps)
        updated.append(params(policy))
    for x, y in zip(*updated, strict=True):
        torch.testing.assert_close(x, y, atol=1e-4, rtol=0)  # an Adam step moves each weight by about lr = 1e-2


def test_stratified_eval_sample_keeps_each_types_share():
    from learners.evaluate import stratified_sample

    tasks = [f"a{i}" for i in range(35)] + [f"b{i}" for i in range(13)] + [f"c{i}" for i in range(2)]
    types = {t: t[0] for t in tasks}
    picked = stratified_sample(tasks, types, 10, seed=3)
    counts = {k: sum(t[0] == k for t in picked) for k in "abc"}
    assert counts == {"a": 7, "b": 3, "c": 0} or counts == {"a": 7, "b": 2, "c": 1}
    assert len(picked) == 10 and picked == [t for t in tasks if t in picked]
    assert picked == stratified_sample(tasks, types, 10, seed=3) and picked != stratified_sample(tasks, types, 10, seed=4)
    assert stratified_sample(tasks, types, 100, seed=0) == tasks
    # a 50-task sample of six types of unequal size keeps every type
    many = [f"{k}{i}" for k, n in zip("pqrstu", (40, 25, 20, 15, 10, 5)) for i in range(n)]
    assert {t[0] for t in stratified_sample(many, {t: t[0] for t in many}, 50, seed=0)} == set("pqrstu")
    assert math.isclose(sum(1 for t in stratified_sample(many, {t: t[0] for t in many}, 50, seed=0) if t[0] == "p"), 17, abs_tol=1)


# ---- every learner composes with every estimator -------------------------------------------------------
from test_learners import FakeLibrary, episodes, params, tiny_policy, tokenizer  # noqa: E402,F401  (tokenizer is a fixture)


@pytest.mark.parametrize("advantage", ["grpo", "grpo_episode", "gigpo"])
@pytest.mark.parametrize("name", LEARNER_NAMES)
def test_every_learner_trains_with_every_estimator(tokenizer, name, advantage, torch_one_thread):  # noqa: F811
    policy = tiny_policy(tokenizer)
    skills = SkillContext(FakeLibrary()) if learner_entry(name).learner_cls.uses_teacher else None
    learner = make_learner(name, policy, skills, overrides={"lr": 1e-3, "advantage": advantage, "ppo_mini_batch_size": 4})
    eps = episodes(tokenizer, policy)
    for i, e in enumerate(eps):  # distinct anchors per step, one invalid turn: GiGPO's step groups are not trivial
        for j, t in enumerate(e.turns):
            t.observation = f"obs {j}"
            if i == j:
                t.penalty, t.reward = 0.1, t.reward - 0.1
    before = params(policy)
    metrics = learner.update(eps)
    assert any(not torch.equal(x, y) for x, y in zip(before, params(policy)))
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    assert metrics["train/optimizer_steps"] == 2.0  # 8 turn samples, 4 per optimizer step


def test_docs_hold_the_preset_table():
    from pathlib import Path

    from sdar_gym.presets import markdown_table
    from sdar_gym.specs import ENV_SPECS

    assert markdown_table({s.name: s.paper_preset for s in ENV_SPECS.values()}) in (Path(__file__).resolve().parents[1] / "docs" / "presets.md").read_text(encoding="utf-8")


def test_frozen_logprobs_are_scored_in_length_buckets(tokenizer, torch_one_thread):  # noqa: F811
    policy = tiny_policy(tokenizer)
    learner = make_learner("grpo", policy, overrides={"micro_batch_size": 2})
    samples = learner.samples(episodes(tokenizer, policy, rewards=(10.0, 0.0, 0.0, 10.0, 0.0)))
    for i, s in enumerate(samples):  # prompts of very different lengths, in no order
        s.prompt_ids = s.prompt_ids + [7] * ((i * 7) % 11)
    widths = []
    real = policy.response_logprobs

    def spy(prompts, responses, **kw):
        widths.append(sorted(len(p) + len(r) for p, r in zip(prompts, responses)))
        return real(prompts, responses, **kw)

    policy.response_logprobs = spy
    got = learner._no_grad_logprobs(samples, lambda s: s.prompt_ids)
    flat = [w for batch in widths for w in batch]
    assert flat == sorted(flat) and len(widths) == 5  # 10 samples, 2 per micro-batch, shortest first
    for s, lp in zip(samples, got):  # each sample's values come back in its own place
        alone, _ = real([s.prompt_ids], [s.response_ids])
        assert torch.allclose(lp, alone, atol=1e-5)


def test_skill_budget_in_tokens_reaches_the_library(chatml_tokenizer):
    from skills import default_library

    lib = default_library("alfworld", embedder="hashing")
    ctx = SkillContext(lib, budget_tokens=120, tokenizer=chatml_tokenizer)
    text = ctx.text("put a clean mug in coffeemachine", "pick_clean_then_place_in_recep")
    assert text and len(chatml_tokenizer.encode(text, add_special_tokens=False)) <= 120
    assert len(SkillContext(lib).text("put a clean mug in coffeemachine", "pick_clean_then_place_in_recep")) > len(text)


def test_eval_table_counts_the_games_of_each_column():
    from learners.evaluate import column_counts, table_for
    from sdar_gym.rollout.types import Episode

    def ep(task_type, won):
        return Episode([], "g", "t", "t", task_type, float(won), won)

    games = [ep("pick_and_place_simple", True)] * 3 + [ep("look_at_obj_in_light", False)] * 2 + [ep("pick_two_obj_and_place", True)]
    row = table_for("alfworld", games)
    assert column_counts("alfworld", games, row) == {"Pick": 3, "Look": 2, "Pick2": 1, "All": 6}


def test_sdar_student_never_sees_skills_and_its_teacher_gets_the_task_types(tmp_path):
    """End to end on real ALFWorld games: the student's prompts hold no skill text; the teacher's hold the
    general skills and its task type's skill (the released code once gave its ALFWorld teacher only the general ones)."""
    from test_learners_train import env_kwargs, train_args  # noqa: F401

    from learners.trainer import Trainer

    kwargs = env_kwargs("alfworld")
    from learners.tiny import TinyConfig, make_tiny_model, train_tokenizer

    tok = train_tokenizer(["<think>open the fridge.</think><action>go to fridge 1</action>", "Your task is to: put a mug."] * 20, vocab_size=300)
    folder = tmp_path / "tiny"
    make_tiny_model(tok, TinyConfig(hidden_size=16, intermediate_size=32)).save_pretrained(folder)
    tok.save_pretrained(folder)
    trainer = Trainer(train_args("alfworld", str(folder), tmp_path / "run", env_kwargs=kwargs, steps=1, learner_args={"max_prompt_length": "100000"}))
    seen = []
    update = trainer.learner.update
    trainer.learner.update = lambda episodes: seen.extend(episodes) or update(episodes)
    trainer.train()
    lib = trainer.skills.library
    for e in seen:
        typed = [lib.skills[i] for i in lib.typed_indices(e.task_type)]
        general = [s for s in lib.skills if s.is_general]
        for t in e.turns:
            student = tok.decode(t.prompt_ids)
            assert "Privileged" not in student and all(s.text[:60] not in student for s in general + typed)
    samples = trainer.learner.samples(seen)
    for s in samples:
        teacher = tok.decode(s.teacher_prompt_ids)
        typed = [lib.skills[i] for i in lib.typed_indices(s.task_type)]
        assert teacher.startswith("[Privileged Skill Information]\n") and typed
        assert all(sk.title in teacher for sk in typed + [g for g in lib.skills if g.is_general])


def test_learner_passes_norm_adv_by_std_to_the_estimator(tokenizer, torch_one_thread):  # noqa: F811
    policy = tiny_policy(tokenizer)
    eps = episodes(tokenizer, policy, rewards=(10.0, 0.0, 0.0, 0.0))  # 2 turns each: scores 10, 10, then six 0s
    scaled = [s.advantage for s in make_learner("grpo", policy).samples(eps)]
    centred = [s.advantage for s in make_learner("grpo", policy, overrides={"norm_adv_by_std": "false"}).samples(eps)]
    assert centred == pytest.approx([7.5, 7.5] + [-2.5] * 6)  # score − mean 2.5
    assert scaled == pytest.approx([a / math.sqrt(150 / 7) for a in centred], rel=1e-5)  # unbiased std of the 8 scores
