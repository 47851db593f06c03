"""`sdar-gym train` end to end on each env with a tiny model: 2 steps, checkpoints, resume, eval, plot."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from learners.evaluate import EvalArgs
from learners.plot import PlotArgs
from learners.trainer import TrainArgs
from learners.run_log import read_metrics
from sdar_gym.core import ConfigError, DataError
from sdar_gym.specs import ENV_SPECS as ENVS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

ENV_KWARGS = {
    "alfworld": {"data_dir": str(DATA / "alfworld"), "split": "valid_seen"},
}
"""Constructor arguments that make each env cheap to run in a test (envs not listed use their defaults)."""


def env_kwargs(env: str) -> dict[str, str]:
    if env == "alfworld" and not (DATA / "alfworld" / "json_2.1.1" / "valid_seen").is_dir():
        pytest.skip(f"ALFWorld games not found under {DATA}")
    return ENV_KWARGS.get(env, {})


@pytest.fixture(scope="module", autouse=True)
def one_thread(torch_one_thread):
    """Every test here runs on one torch thread (see conftest)."""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    """A random-init tiny Qwen2 with a tokenizer trained on a few agent-like lines (no env needed)."""
    from learners.tiny import TinyConfig, make_tiny_model, train_tokenizer

    lines = ["<think>I should open the fridge.</think><action>go to fridge 1</action>", "Your task is to: put a clean mug in coffeemachine."] * 20
    tokenizer = train_tokenizer(lines, vocab_size=300)
    model = make_tiny_model(tokenizer, TinyConfig(hidden_size=32, intermediate_size=64, max_position_embeddings=4096))
    folder = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def train_args(env: str, model: str, output: Path, **over) -> TrainArgs:
    base = dict(
        env=env, model=model, steps=2, group_size=2, tasks_per_step=1, max_turns=2, max_new_tokens=6, num_envs=2,
        env_kwargs=env_kwargs(env), output=output, skills_embedder="hashing", progress=False, tensorboard=False,
        save_every=1, learner_args={"lr": "1e-3"}, eval_every=0,
    )
    base.update(over)
    return TrainArgs(**base)


@pytest.mark.parametrize("env", sorted(ENVS))
def test_two_step_sdar_train_end_to_end(env, tiny_model, tmp_path):
    args = train_args(env, tiny_model, tmp_path / "run", tensorboard=True, eval_every=1, eval_tasks=2)
    last = args.run()
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == [0, 1, 2]  # step 0: the validation of the starting policy
    assert all(0.0 <= r["eval/success"] <= 1.0 and r["eval/episodes"] == 2 for r in rows)
    for key in ("rollout/all/success", "rollout/all/reward", "sdar/gate_mean", "sdar/gate_active_ratio", "sdar/teacher_gap_mean",
                "train/kl", "train/entropy", "train/clip_frac", "perf/step_s", "perf/update_tokens_per_s"):
        assert key in last, key
    assert 0.0 < last["sdar/gate_mean"] < 1.0
    assert (tmp_path / "run" / "checkpoints" / "step_000002" / "model").is_dir()
    assert list((tmp_path / "run" / "tensorboard").iterdir())
    # eval from the run folder, and the plots
    row = EvalArgs(env=env, checkpoint=tmp_path / "run", episodes=2, batch_size=2, max_turns=2, max_new_tokens=6, choose_admissible=True,
                   env_kwargs=env_kwargs(env), output=tmp_path / "eval.json").run()
    assert row and all(0.0 <= v <= 100.0 for v in row.values())
    pngs = PlotArgs(tmp_path / "run").run()
    assert {p.name for p in pngs} == {"held_out_success.png", "success.png", "reward.png", "gate_mean.png", "teacher_gap.png"}


def test_resume_continues_from_the_same_state(tiny_model, tmp_path):
    """2 steps straight == 1 step, stop, --resume to 2: same weights, same logged metrics."""
    straight = train_args("alfworld", tiny_model, tmp_path / "a", learner="grpo", learner_args={"lr": "1e-2", "kl_coef": "0"})
    straight.run()
    first = train_args("alfworld", tiny_model, tmp_path / "b", learner="grpo", learner_args={"lr": "1e-2", "kl_coef": "0"}, steps=1)
    first.run()
    with pytest.raises(ConfigError, match="--resume"):
        train_args("alfworld", tiny_model, tmp_path / "b", learner="grpo", steps=2).run()
    resumed = train_args("alfworld", tiny_model, tmp_path / "b", learner="grpo", learner_args={"lr": "1e-2", "kl_coef": "0"}, resume=True)
    resumed.run()
    from safetensors.torch import load_file

    a = load_file(tmp_path / "a" / "checkpoints" / "step_000002" / "model" / "model.safetensors")
    b = load_file(tmp_path / "b" / "checkpoints" / "step_000002" / "model" / "model.safetensors")
    init = load_file(Path(tiny_model) / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], init[k]) for k in a)  # training did change the weights
    ra, rb = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [r["step"] for r in rb] == [1, 2]
    assert ra[1]["train/pg_loss"] == pytest.approx(rb[1]["train/pg_loss"])


@pytest.fixture(scope="module")
def half_valid_model(tmp_path_factory) -> str:
    """A tiny model that sometimes answers ``<think>ok</think><action>look</action>``, whatever the prompt.

    Its attention outputs are zeroed, so each next token depends on the current token only; a few
    steps of supervised training raise that one answer's probability. Rollouts mix valid and
    invalid actions, so GRPO's advantages (and its policy-gradient loss) are not zero.
    """
    from learners.tiny import TinyConfig, make_tiny_model, train_tokenizer

    lines = ["<think>I should open the fridge.</think><action>go to fridge 1</action>", "Your task is to: put a clean mug in coffeemachine."] * 20
    tokenizer = train_tokenizer(lines, vocab_size=300)
    torch.manual_seed(0)
    model = make_tiny_model(tokenizer, TinyConfig(hidden_size=32, intermediate_size=64, max_position_embeddings=4096))
    for layer in model.model.layers:
        torch.nn.init.zeros_(layer.self_attn.o_proj.weight)
        layer.self_attn.o_proj.weight.requires_grad_(False)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Your task is to: look."}], tokenize=False, add_generation_prompt=True)
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    t = tokenizer("<think>ok</think><action>look</action><|im_end|>", add_special_tokens=False)["input_ids"]
    ids, labels = torch.tensor([p + t]), torch.tensor([[-100] * len(p) + t])
    optimizer = torch.optim.Adam([w for w in model.parameters() if w.requires_grad], lr=1e-2)
    for _ in range(200):  # a bigram model cannot make the answer certain: some rollouts stay invalid
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    folder = tmp_path_factory.mktemp("half_valid")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_resume_is_bit_identical_with_a_nonzero_policy_gradient(half_valid_model, tmp_path):
    """2 steps straight == 1 step, stop, --resume to 2, on a run whose advantages are not zero."""
    kw = dict(learner="grpo", learner_args={"lr": "1e-2", "kl_coef": "0"}, group_size=4, tasks_per_step=2, num_envs=8, max_new_tokens=16)
    train_args("alfworld", half_valid_model, tmp_path / "a", **kw).run()
    train_args("alfworld", half_valid_model, tmp_path / "b", steps=1, **kw).run()
    train_args("alfworld", half_valid_model, tmp_path / "b", resume=True, **kw).run()
    from safetensors.torch import load_file

    a = load_file(tmp_path / "a" / "checkpoints" / "step_000002" / "model" / "model.safetensors")
    b = load_file(tmp_path / "b" / "checkpoints" / "step_000002" / "model" / "model.safetensors")
    ra, rb = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [r["step"] for r in ra] == [r["step"] for r in rb] == [1, 2]
    assert all(r["train/pg_loss"] != 0.0 for r in ra), [r["train/pg_loss"] for r in ra]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert ra == rb or all(ra[i][k] == rb[i][k] for i in range(2) for k in ra[i] if k.startswith(("train/", "rollout/")))


def test_bad_arguments_fail_clearly(tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="unknown learner"):
        train_args("alfworld", tiny_model, tmp_path / "x", learner="ppo").run()
    with pytest.raises(ConfigError, match="group_size"):
        train_args("alfworld", tiny_model, tmp_path / "x", group_size=0).run()
    with pytest.raises(ConfigError, match="lora_rank must be >= 0"):  # not a silent fall-back to full fine-tuning
        train_args("alfworld", tiny_model, tmp_path / "x", lora_rank=-1).run()
    with pytest.raises(DataError, match="no checkpoint"):
        train_args("alfworld", tiny_model, tmp_path / "y", resume=True).run()
    with pytest.raises(DataError, match="does not exist"):
        train_args("alfworld", str(tmp_path / "no" / "model"), tmp_path / "z").run()


def test_cli_parses_train_and_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, tyro\n"
        "from sdar_gym import cli\n"
        "assert 'torch' not in sys.modules, 'the CLI imported torch at import time'\n"
        "args = tyro.cli(cli._group(cli.COMMANDS), args=['train', '--learner', 'grpo', '--env', 'alfworld', '--steps', '3',"
        " '--group-size', '4', '--skills', 'ucb', '--env-pool', 'process', '--output', 'runs/x', '--env-kwargs', 'split', 'train',"
        " '--learner-args', 'lr', '1e-5'], config=(tyro.conf.OmitSubcommandPrefixes,))\n"
        "assert type(args).__name__ == 'TrainArgs' and args.steps == 3 and args.group_size == 4 and args.skills == 'ucb'\n"
        "assert args.env_kwargs == {'split': 'train'} and args.learner_args == {'lr': '1e-5'} and args.env_pool == 'process'\n"
        "assert 'torch' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr[-2000:]


def test_sft_warm_start_fits_demonstrations_and_is_cached(tmp_path, monkeypatch):
    """The SFT recipe on fixed demonstrations (the slow expert is replaced): loss falls, the cache is reused."""
    import json

    from learners import sft
    from learners.sft import SFTArgs

    demos = [
        ([{"role": "user", "content": f"Your task is to: put a mug in cabinet {i % 3}. Admissible: 'go to cabinet {i % 3}', 'look'"}],
         f"<think>Following the plan.</think><action>go to cabinet {i % 3}</action>")
        for i in range(12)
    ]
    calls = []
    monkeypatch.setattr(sft, "expert_demonstrations", lambda *a, **k: calls.append(a) or demos)
    monkeypatch.setenv("SDAR_GYM_HOME", str(tmp_path / "home"))
    args = SFTArgs(env="alfworld", games=3, epochs=25, lr=1e-2, batch_size=4, vocab_size=300, hidden_size=32, num_layers=1,
                   env_kwargs=env_kwargs("alfworld"))
    folder = sft.build_sft_policy(args, progress=False)
    assert folder == sft.tiny_policy_dir("alfworld")
    meta = json.loads((folder / "sft.json").read_text())
    assert meta["final_loss"] < 0.5 * meta["first_loss"]
    assert meta["history_length"] == 2  # ALFWorld's own, which train shows by default
    assert sft.ensure_tiny_policy("alfworld", progress=False) == folder and len(calls) == 1  # cached: not rebuilt
    (folder / "sft.json").write_text(json.dumps({**meta, "recipe": sft.RECIPE_VERSION - 1}))
    assert sft.ensure_tiny_policy("alfworld", progress=False) == folder and len(calls) == 2  # an older recipe's model is rebuilt
    assert json.loads((folder / "sft.json").read_text())["recipe"] == sft.RECIPE_VERSION
    assert calls[0][2]["engine"] == "fast" and calls[0][5] is None  # fast engine; all task types by default
    assert calls[0][2]["data_dir"] == env_kwargs("alfworld")["data_dir"]  # --env-kwargs still win
    skip = SFTArgs(**{**vars(args), "skip_task_types": ["pick_two_obj_and_place"], "force": True, "epochs": 1})
    sft.build_sft_policy(skip, progress=False)
    tasks = calls[2][5]  # an explicit skip leaves those task types out of the demonstrations
    assert tasks and not any(t.startswith("pick_two_obj_and_place") for t in tasks)
    assert any(t.startswith("pick_and_place_simple") for t in tasks)


def test_an_envs_own_sft_games_and_epochs_are_the_defaults_and_options_override_them():
    import tyro

    from learners.sft import SFTArgs

    assert (SFTArgs().games, SFTArgs().epochs) == (200, 4)  # ALFWorld's
    assert (SFTArgs(env="search-qa").games, SFTArgs(env="search-qa").epochs) == (500, 8)  # EnvSpec.sft_defaults
    parsed = tyro.cli(SFTArgs, args=["--env", "sdar_gym/SearchQA-v0"])
    assert (parsed.games, parsed.epochs) == (500, 8)
    parsed = tyro.cli(SFTArgs, args=["--env", "search-qa", "--games", "7", "--epochs", "1"])
    assert (parsed.games, parsed.epochs) == (7, 1)


def test_expert_demonstrations_show_the_history_asked_for(tmp_path, monkeypatch):
    """``sdar-gym sft --history-length``: the demonstrations' prompts show that many past turns, as a
    ``train --history-length`` run's prompts do, and are cached apart from the env's own number."""
    from learners.sft import expert_demonstrations

    monkeypatch.setenv("SDAR_GYM_HOME", str(tmp_path))
    own = expert_demonstrations("search-qa", 3, {}, 10)  # 4 past turns, Search-QA's own
    none = expert_demonstrations("search-qa", 3, {}, 10, history_length=0)
    assert [r[1] for r in none] == [r[1] for r in own]  # the same expert turns
    lengths = [(len(a[0][-1]["content"]), len(b[0][-1]["content"])) for a, b in zip(own, none)]
    assert all(b <= a for a, b in lengths) and any(b < a for a, b in lengths)  # later turns lose their history
    assert len(list((tmp_path / "demos").iterdir())) == 2


def test_training_a_policy_built_with_another_history_warns(tmp_path):
    import warnings

    from learners.trainer import _warn_on_other_history

    (tmp_path / "sft.json").write_text(json.dumps({"history_length": 6}))
    with pytest.warns(UserWarning, match="--history-length 6"):
        _warn_on_other_history(str(tmp_path), TrainArgs(env="alfworld"))  # ALFWorld shows 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_on_other_history(str(tmp_path), TrainArgs(env="alfworld", history_length=6))
        _warn_on_other_history("Qwen/Qwen2.5-1.5B-Instruct", TrainArgs(env="alfworld"))  # not one sft built: nothing to compare


def test_sft_demonstrations_default_to_generated_train_games():
    from learners.sft import demo_env_kwargs

    # no data_dir: the generated set; the explorer expert, whose moves follow from the prompt, planned by
    # the fast engine's search (no TextWorld process per game)
    assert demo_env_kwargs("alfworld", {}) == {"engine": "fast", "split": "train", "expert": "explorer", "planner": "search"}
    assert demo_env_kwargs("alfworld", {"split": "valid_seen"})["split"] == "valid_seen"
    assert demo_env_kwargs("webshop", {"x": 1}) == {"x": 1}


def test_eval_does_not_depend_on_batch_size(tiny_model):
    from learners.evaluate import evaluate
    from learners.policy_model import PolicyModel, PolicyModelConfig
    from sdar_gym.registration import task_list
    from sdar_gym.rollout.types import SamplingParams

    kwargs = env_kwargs("alfworld")
    policy = PolicyModel.from_pretrained(PolicyModelConfig(model=tiny_model), with_reference=False)
    tasks = task_list("alfworld", kwargs)[0][:3]
    sampling = SamplingParams(max_new_tokens=6, temperature=1.0)
    one = evaluate(policy, "alfworld", kwargs, tasks, max_turns=2, batch_size=1, sampling=sampling, seed=3)
    three = evaluate(policy, "alfworld", kwargs, tasks, max_turns=2, batch_size=3, sampling=sampling, seed=3)
    assert [e.task_id for e in one] == [e.task_id for e in three]
    assert [[t.response_ids for t in e.turns] for e in one] == [[t.response_ids for t in e.turns] for e in three]


@pytest.mark.parametrize("temperature", [0.5, 0.0])
def test_rollout_logprobs_equal_the_learners_at_step_zero_at_any_temperature(temperature, tiny_model, tmp_path):
    """Importance ratio exactly 1 before any update: the learner recomputes log-probs at the rollout's
    temperature, greedy (0) included, which both score at temperature 1."""
    from learners.trainer import Trainer, rollout
    from sdar_gym.rollout import make_pool

    args = train_args("alfworld", tiny_model, tmp_path / "r", learner="grpo", temperature=temperature, group_size=2, max_new_tokens=12,
                      learner_args={"kl_coef": "0"})
    trainer = Trainer(args)
    pool = make_pool("inline", "alfworld", 2, trainer.env_kwargs)
    try:
        episodes = rollout(trainer.policy, pool, trainer.tasks[:1], args, seed=1, group_size=2)
    finally:
        import asyncio

        asyncio.run(pool.aclose())
    samples = trainer.learner.samples(episodes)
    with torch.no_grad():
        batch = trainer.learner._batch(samples, None, None)
    assert batch.logp.numel() > 10
    assert torch.allclose(batch.logp, batch.old_logp, atol=1e-4), (batch.logp - batch.old_logp).abs().max()


def test_choose_admissible_plays_listed_actions_and_keeps_ratio_one_at_step_zero(half_valid_model, tmp_path):
    """--choose-admissible: every well-formed action is one the prompt listed, and the learner recomputes the stored log-probs."""
    from learners.admissible_choice import AdmissibleChoice
    from learners.trainer import Trainer, rollout
    from sdar_gym.rollout import make_pool

    args = train_args("alfworld", half_valid_model, tmp_path / "r", learner="grpo", temperature=0.5, max_turns=4, max_new_tokens=40,
                      choose_admissible=True, learner_args={"kl_coef": "0"})
    trainer = Trainer(args)
    pool = make_pool("inline", "alfworld", 2, trainer.env_kwargs)
    try:
        episodes = rollout(trainer.policy, pool, trainer.tasks[:1], args, seed=1, group_size=2, generator=trainer.generator)
    finally:
        import asyncio

        asyncio.run(pool.aclose())
    played = [t for e in episodes for t in e.turns if t.action_valid]
    assert isinstance(trainer.generator, AdmissibleChoice) and played
    assert all(f"'{t.action}'" in t.prompt_text.rsplit("The admissible actions now are:", 1)[1] for t in played)
    batch = trainer.learner._batch(trainer.learner.samples(episodes), None, None)
    assert torch.allclose(batch.logp, batch.old_logp, atol=1e-4), (batch.logp - batch.old_logp).abs().max()


def test_evaluate_chooses_among_listed_actions_when_asked(half_valid_model, monkeypatch):
    from learners.admissible_choice import AdmissibleChoice
    from learners.evaluate import evaluate
    from learners.policy_model import PolicyModel, PolicyModelConfig
    from sdar_gym.registration import task_list
    from sdar_gym.rollout.types import SamplingParams

    chosen = []
    choose = AdmissibleChoice._choose
    monkeypatch.setattr(AdmissibleChoice, "_choose", lambda self, r, *rest: chosen.append(r) or choose(self, r, *rest))
    policy = PolicyModel.from_pretrained(PolicyModelConfig(model=half_valid_model), with_reference=False)
    tasks = task_list("alfworld", env_kwargs("alfworld"))[0][:2]
    sampling = SamplingParams(max_new_tokens=40, temperature=0.0)
    evaluate(policy, "alfworld", env_kwargs("alfworld"), tasks, 2, 2, sampling, seed=0)
    assert not chosen
    evaluate(policy, "alfworld", env_kwargs("alfworld"), tasks, 2, 2, sampling, seed=0, choose_admissible=True)
    assert len(chosen) == 4  # every turn of the 2 games went through the choice


def test_nan_loss_stops_the_update_naming_step_and_term_and_keeps_the_checkpoint(tiny_model, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from learners import losses
    from sdar_gym.core import SdarGymError

    real, poison = losses.sdar_gated_loss, []

    def poisoned(*a, **k):  # the distillation term turns NaN once step 1 is done
        loss, stats = real(*a, **k)
        return (loss * float("nan"), stats) if poison else (loss, stats)

    monkeypatch.setattr(losses, "sdar_gated_loss", poisoned)
    from learners.trainer import Trainer

    trainer = Trainer(train_args("alfworld", tiny_model, tmp_path / "n", learner_args={"lr": "1e-2"}))
    original = trainer.train_step
    trainer.train_step = lambda pool: (original(pool), poison.append(1))[0]
    with pytest.raises(SdarGymError, match=r"step 2: the loss term 'sdar/distill_loss' is nan.*step_000001\) is intact"):
        trainer.train()
    ckpt = tmp_path / "n" / "checkpoints"
    assert (ckpt / "latest").read_text().strip() == "step_000001" and not (ckpt / "step_000002").exists()
    saved = load_file(ckpt / "step_000001" / "model" / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in saved.values())
    assert [r["step"] for r in read_metrics(tmp_path / "n")] == [1]


def test_success_collapse_is_reported_loudly(tiny_model, tmp_path, capsys):
    from learners.trainer import Trainer

    # 32 rollouts a step: a collapse is 2 steps without a win (learners.trainer.COLLAPSE_ROLLOUTS)
    trainer = Trainer(train_args("alfworld", tiny_model, tmp_path / "c", learner="grpo", steps=6, tasks_per_step=4, group_size=8))
    values = iter([0.5, 0.0, 0.0, 0.0, 0.25, 0.0])

    def fake_step(pool):
        trainer.step += 1
        return {"rollout/all/success": next(values)}

    trainer.train_step = fake_step
    trainer.train()
    err = capsys.readouterr().err
    assert "WARNING: step 3: success collapsed to 0 on every rollout of the last 2 step(s)" in err
    assert err.count("WARNING") == 1  # once per collapse; one step without a win (step 6) is noise, not a collapse
    rows = read_metrics(tmp_path / "c")
    assert [r.get("warn/success_collapsed") for r in rows] == [None, None, 1.0, None, None, None]


def test_validation_runs_first_and_every_n_steps_and_the_last_line_compares_to_the_warm_start(tiny_model, tmp_path, capsys):
    from learners.trainer import Trainer

    trainer = Trainer(train_args("alfworld", tiny_model, tmp_path / "v", learner="grpo", steps=4, eval_every=3, progress=True))
    assert trainer.eval_env_kwargs["split"] == "valid_seen" and len(trainer.eval_tasks) == trainer.cfg.eval_tasks
    held_out = iter([0.25, 0.0, 0.5])
    trainer.train_step = lambda pool: setattr(trainer, "step", trainer.step + 1) or {"rollout/all/success": 0.5}
    trainer.validate = lambda: {"eval/success": next(held_out), "eval/episodes": 8.0, "perf/eval_s": 1.0}
    trainer.train()
    rows = read_metrics(tmp_path / "v")
    assert [(r["step"], r.get("eval/success")) for r in rows] == [(0, 0.25), (1, None), (2, None), (3, 0.0), (4, 0.5)]
    out, err = capsys.readouterr()
    assert "WARNING: step 3: held-out success collapsed to 0" in err and rows[3]["warn/eval_success_collapsed"] == 1.0
    assert out.strip().splitlines()[-1].startswith("held-out success: 0.250 at step 0 (warm start) -> 0.500 at step 4, +25.0 points, above")


def test_a_held_out_collapse_is_reported_once_not_at_every_validation_at_zero(tiny_model, tmp_path, capsys):
    from learners.trainer import Trainer

    trainer = Trainer(train_args("alfworld", tiny_model, tmp_path / "z", learner="grpo", steps=6, eval_every=2))
    held_out = iter([0.25, 0.0, 0.0, 0.0])
    trainer.train_step = lambda pool: setattr(trainer, "step", trainer.step + 1) or {"rollout/all/success": 0.5}
    trainer.validate = lambda: {"eval/success": next(held_out), "eval/episodes": 8.0, "perf/eval_s": 1.0}
    trainer.train()
    err = capsys.readouterr().err
    assert err.count("held-out success collapsed") == 1 and "step 2: held-out success collapsed" in err
    assert [r.get("warn/eval_success_collapsed") for r in read_metrics(tmp_path / "z") if "eval/success" in r] == [None, 1.0, None, None]


def test_validation_without_held_out_tasks_fails_clearly(tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="--eval-every 0"):
        train_args("alfworld", tiny_model, tmp_path / "x", eval_every=5, eval_env_kwargs={"split": "no_such_split"}).run()


def test_cpu_preset_fills_defaults_for_the_tiny_policy_without_gpu(capsys, monkeypatch):
    from dataclasses import replace

    from learners.settings import CPU_PRESET
    from learners.trainer import resolve_cpu_preset as resolve_preset

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    threads = torch.get_num_threads()
    try:
        cfg = resolve_preset(TrainArgs(steps=7, learner_args={"lr": "3e-4"}))
    finally:
        torch.set_num_threads(threads)
    assert cfg.steps == 7  # what the user set wins
    assert cfg.group_size == CPU_PRESET["group_size"] and cfg.tasks_per_step == CPU_PRESET["tasks_per_step"]
    assert cfg.threads == 1 and cfg.update_threads == 0  # the rollout on one thread, the update's count tuned
    assert cfg.choose_admissible is True and resolve_preset(TrainArgs(choose_admissible=False)).choose_admissible is False
    assert cfg.learner_args == {"lr": "3e-4", "mini_batches": CPU_PRESET["learner_args"]["mini_batches"]}
    out = capsys.readouterr().out
    assert "CPU preset (built-in tiny policy, no GPU)" in out and f"tasks_per_step={CPU_PRESET['tasks_per_step']}" in out and "--preset paper" in out
    try:
        chosen = resolve_preset(TrainArgs(model="some/model", preset="cpu"))
    finally:
        torch.set_num_threads(threads)
    assert chosen.group_size == CPU_PRESET["group_size"]
    assert "CPU preset (--preset cpu)" in capsys.readouterr().out  # asked for, not inferred: the message says so
    assert resolve_preset(TrainArgs(model="some/model")) == TrainArgs(model="some/model")  # a real model: no preset
    paper = replace(TrainArgs(), **{"preset": "paper"}) if "preset" in TrainArgs.__dataclass_fields__ else None
    if paper is not None:
        assert resolve_preset(paper) == paper
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_preset(TrainArgs()) == TrainArgs()  # a GPU: the paper's values


def test_stage_progress_prints_plain_lines_in_a_log():
    import io

    from sdar_gym.progress import StageProgress

    log = io.StringIO()
    with StageProgress(True, every_s=0.0, stream=log) as p:
        s = p.add("1/3 demos", total=4)
        for _ in range(4):
            p.update(s, advance=1, status="ok")
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("[1/3 demos] 0/4 (0%)") and lines[-1].startswith("[1/3 demos] 4/4 (100%)") and len(lines) == 5
    silent = io.StringIO()
    with StageProgress(False, stream=silent) as p:
        p.update(p.add("x", total=1), advance=1)
    assert silent.getvalue() == ""


def test_sft_builds_with_ten_optimizer_steps(tmp_path, monkeypatch):
    """10 steps made OneCycleLR's warm-up 0 steps long, a ZeroDivisionError (the learning benchmark's tiny configuration)."""
    from learners import sft
    from learners.sft import SFTArgs

    demos = [([{"role": "user", "content": f"Your task is to: look {i}"}], "<action>look</action>") for i in range(10)]
    monkeypatch.setattr(sft, "expert_demonstrations", lambda *a, **k: demos)
    args = SFTArgs(env="alfworld", output=tmp_path / "m", epochs=1, batch_size=1, vocab_size=300, hidden_size=32, num_layers=1)
    assert (sft.build_sft_policy(args, progress=False) / "sft.json").exists()


def test_thread_tuner_keeps_the_faster_count_and_notices_when_the_load_changes():
    """Probes alternate the candidates; the faster per unit of work wins, and a later probe switches
    back when the other count has become faster (a shared machine's load changed)."""
    import torch

    from learners.policy_model import ThreadTuner

    cost = {1: 1.0, 2: 0.5}  # seconds per unit of work; the fake clock advances by it
    now = [0.0]
    tuner = ThreadTuner((1, 2), probe_rounds=2, exploit_steps=3, clock=lambda: now[0])
    used = []
    for step in range(30):
        if step == 14:  # after the second probe (steps 7-10) and inside the doubled stretch (11-16)
            cost[2] = 9.0  # other jobs now share the cores: 2 threads became slow
        with tuner.step(work=2.0) as n:
            assert torch.get_num_threads() == n
            now[0] += cost[n] * 2.0
            used.append(n)
    assert used[:4] == [1, 2, 1, 2]  # the first probe alternates
    assert used[4:7] == [2, 2, 2]  # then the faster count
    assert tuner.chosen[:2] == [2, 2] and tuner.chosen[-1] == 1
    assert used[-1] == 1
    torch.set_num_threads(1)
    fixed = ThreadTuner((3,))
    with fixed.step() as n:
        assert n == 3 and torch.get_num_threads() == 3
    assert torch.get_num_threads() == 1  # the caller's count is back after a step
    with pytest.raises(RuntimeError), fixed.step():
        raise RuntimeError("a step that fails (a NaN in the loss)")
    assert torch.get_num_threads() == 1  # and after one that raised


def test_sft_build_times_its_thread_counts_and_gives_the_callers_back(tmp_path, monkeypatch):
    """``threads=0`` tunes the SFT's thread count (recorded in sft.json); afterwards the caller's count
    (the CPU preset's 1 thread for RL) is set again."""
    import json

    import torch

    from learners import policy_model, sft
    from learners.sft import SFTArgs

    demos = [([{"role": "user", "content": f"Your task is to: look {i}"}], "<action>look</action>") for i in range(16)]
    monkeypatch.setattr(sft, "expert_demonstrations", lambda *a, **k: demos)
    monkeypatch.setattr(policy_model, "thread_candidates", lambda: (1, 2))
    torch.set_num_threads(1)
    args = SFTArgs(env="alfworld", output=tmp_path / "m", epochs=1, batch_size=1, vocab_size=300, hidden_size=32, num_layers=1)
    meta = json.loads((sft.build_sft_policy(args, progress=False) / "sft.json").read_text())
    assert meta["threads_chosen"] and set(meta["threads_chosen"]) <= {1, 2}
    assert torch.get_num_threads() == 1
    fixed = SFTArgs(**{**vars(args), "threads": 2, "force": True})
    assert json.loads((sft.build_sft_policy(fixed, progress=False) / "sft.json").read_text())["threads_chosen"] == [2]
    assert torch.get_num_threads() == 1


def test_sft_loss_adds_the_prompt_tokens_token_mean_weighted(tiny_model):
    """The warm start's loss: the responses' token-mean NLL plus ``w`` times the prompts' (from their
    second token), which teaches a from-scratch policy to read its prompt."""
    import torch

    from learners.policy_model import PolicyModel, PolicyModelConfig
    from learners.sft import sft_loss

    policy = PolicyModel.from_pretrained(PolicyModelConfig(model=tiny_model), with_reference=False)
    tok = policy.tokenizer
    batch = [(tok("Your task is to: put a mug")["input_ids"], tok("<action>go to fridge 1</action>")["input_ids"]),
             (tok("open the fridge")["input_ids"], tok("<action>look</action>")["input_ids"])]
    with torch.no_grad():
        logits = [policy.model(torch.tensor([p + r])).logits[0].log_softmax(-1) for p, r in batch]
        token_logp = [lp[:-1].gather(1, torch.tensor([p + r])[0, 1:, None])[:, 0] for lp, (p, r) in zip(logits, batch)]
        response = torch.cat([t[len(p) - 1 :] for t, (p, _) in zip(token_logp, batch)]).mean()
        prompt = torch.cat([t[: len(p) - 1] for t, (p, _) in zip(token_logp, batch)]).mean()
        torch.testing.assert_close(sft_loss(policy, batch, 0.0), -response)
        torch.testing.assert_close(sft_loss(policy, batch, 0.5), -response - 0.5 * prompt)


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf")])
def test_sft_refuses_a_prompt_loss_weight_that_is_not_finite_and_non_negative(weight, tmp_path, monkeypatch):
    """A negative weight would push the prompts' likelihood down, NaN or inf would poison every step."""
    from learners import sft
    from learners.sft import SFTArgs

    demos = [([{"role": "user", "content": f"Your task is to: look {i}"}], "<action>look</action>") for i in range(4)]
    monkeypatch.setattr(sft, "expert_demonstrations", lambda *a, **k: demos)  # an unchecked build finishes fast
    args = SFTArgs(output=tmp_path / "m", epochs=1, batch_size=2, vocab_size=300, hidden_size=32, num_layers=1, prompt_loss_weight=weight)
    with pytest.raises(ConfigError, match="prompt_loss_weight must be a finite number >= 0"):
        sft.build_sft_policy(args, progress=False)
    assert not (tmp_path / "m").exists()


def test_sft_oversample_lists_the_named_verbs_turns_that_many_times(tiny_model):
    from transformers import AutoTokenizer

    from learners.sft import SFTArgs, _encode_demos

    tok = AutoTokenizer.from_pretrained(tiny_model)
    actions = ["go to desk 1", "take pen 1 from desk 1", "put pen 1 in/on shelf 1", "look"]
    demos = [([{"role": "user", "content": f"Your task is to: turn {i}"}], f"<think>ok</think><action>{a}</action>") for i, a in enumerate(actions)]
    plain, _ = _encode_demos(tok, demos, {}, SFTArgs(), set())
    over, _ = _encode_demos(tok, demos, {}, SFTArgs(oversample={"take": 3, "put": 2}), set())
    assert len(plain) == 4
    assert [over.count(turn) for turn in plain] == [1, 3, 2, 1]


@pytest.mark.parametrize("count", [0, -2, True])
def test_sft_refuses_an_oversample_count_below_one(count, tmp_path):
    from learners import sft
    from learners.sft import SFTArgs

    with pytest.raises(ConfigError, match="oversample counts must be whole numbers >= 1"):
        sft.build_sft_policy(SFTArgs(output=tmp_path / "m", oversample={"take": count}), progress=False)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("field, value, message", [
    ("games", 0, "games must be at least 1, got 0"), ("games", -5, "games must be at least 1, got -5"),
    ("epochs", 0, "epochs must be at least 1, got 0"), ("batch_size", 0, "batch_size must be at least 1"),
    ("max_turns", 0, "max_turns must be at least 1"), ("hidden_size", 3, "hidden_size must be a multiple of 8"),
    ("lr", -1.0, "lr must be a finite number > 0"), ("teacher_fraction", 2.0, r"teacher_fraction must be in \[0, 1\]"),
    ("held_out_fraction", 1.5, r"held_out_fraction must be in \[0, 1\)"), ("demo_noise", 1.0, r"demo_noise must be in \[0, 1\)"),
])
def test_sft_refuses_settings_that_cannot_build_a_policy_before_playing_any(field, value, message, tmp_path, monkeypatch):
    from learners import sft
    from learners.sft import SFTArgs

    monkeypatch.setattr(sft, "expert_demonstrations", lambda *a, **k: pytest.fail("played demonstrations before checking its arguments"))
    with pytest.raises(ConfigError, match=message):
        sft.build_sft_policy(SFTArgs(output=tmp_path / "m", **{field: value}), progress=False)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("over, message", [
    ({"temperature": -1.0}, "temperature must be >= 0"), ({"eval_temperature": -0.5}, "eval_temperature must be >= 0"),
    ({"max_new_tokens": 0}, "max_new_tokens must be at least 1"), ({"eval_every": -1}, r"eval_every must be >= 0 \(0: never\)"),
    ({"eval_every": 5, "eval_tasks": 0}, "eval_tasks at least 1"),
])
def test_train_refuses_bad_sampling_or_validation_settings_before_loading_the_policy(over, message, tmp_path, monkeypatch):
    from learners import trainer

    monkeypatch.setattr(trainer, "load_policy", lambda cfg: pytest.fail("loaded the policy before checking its arguments"))
    with pytest.raises(ConfigError, match=message):
        trainer.Trainer(train_args("alfworld", "unused", tmp_path / "r", **over))


@pytest.mark.parametrize("lr", ["-1", "nan", "inf"])
def test_a_learner_refuses_a_learning_rate_adamw_cannot_take(lr, tiny_model, tmp_path):
    from learners.trainer import Trainer

    with pytest.raises(ConfigError, match="lr must be a finite number >= 0"):
        Trainer(train_args("alfworld", tiny_model, tmp_path / "r", learner="grpo", learner_args={"lr": lr}))


@pytest.mark.parametrize("rounds, games", [(-1, 240), (2, 0)])
def test_sft_refuses_negative_dagger_rounds_or_no_dagger_games(rounds, games, tmp_path):
    from learners import sft
    from learners.sft import SFTArgs

    with pytest.raises(ConfigError, match="dagger_rounds must be >= 0 and dagger_games >= 1"):
        sft.build_sft_policy(SFTArgs(output=tmp_path / "m", dagger_rounds=rounds, dagger_games=games), progress=False)
    assert not (tmp_path / "m").exists()


def test_update_threads_reach_the_learner(tiny_model, tmp_path):
    """--update-threads 0 tunes the update's thread count (1, 2, 4 as the cores allow), N fixes it; unset, the
    update runs on --threads."""
    from learners.policy_model import thread_candidates
    from learners.trainer import Trainer

    threads = torch.get_num_threads()
    try:
        for n, counts in [(0, thread_candidates()), (3, (3,)), (None, None)]:
            trainer = Trainer(train_args("search-qa", tiny_model, tmp_path / f"run{n}", update_threads=n))
            tuners = trainer.learner.thread_tuners
            assert (sorted(tuners), {t.candidates for t in tuners.values()}) == (["score", "train"], {counts}) if counts else not tuners
        with pytest.raises(ConfigError, match="update_threads must be >= 0"):
            Trainer(train_args("search-qa", tiny_model, tmp_path / "bad", update_threads=-1))
    finally:
        torch.set_num_threads(threads)


def test_dagger_labels_each_state_the_policy_visits_with_the_experts_answer(tmp_path, monkeypatch):
    """DAgger's data: the states are the policy's own (here it only looks, which changes nothing), the
    answers are the expert's (so every one is the expert's first move in that game)."""
    from learners import sft
    from sdar_gym.registration import task_list
    from sdar_gym.rollout.types import Generation

    class LooksAround:
        async def generate(self, requests):
            return [Generation("<think>Looking.</think><action>look</action>", [], [1], [0.0]) for _ in requests]

    class Model:
        def as_policy(self, **_):
            return LooksAround()

    monkeypatch.setenv("SDAR_GYM_HOME", str(tmp_path))
    kwargs = {**env_kwargs("alfworld"), "engine": "fast", "expert": "explorer", "planner": "search"}
    tasks = task_list("alfworld", kwargs)[0][:2]
    rows, won = sft.dagger_labels(Model(), "alfworld", kwargs, games=2, max_turns=3, seed=0, tasks=tasks)
    assert len(rows) == 6 and won == 0  # 2 games x 3 turns, each labeled; looking wins nothing
    demos = sft.expert_demonstrations("alfworld", 2, kwargs, 30, tasks=tasks)
    first_move = {}
    for _, response, task, _ in demos:
        first_move.setdefault(task, response)
    for task in first_move:
        turns = [(messages, response) for messages, response, t, _ in rows if t == task]
        assert len(turns) == 3
        assert "Action: look" in turns[1][0][-1]["content"]  # the policy's state: its own look in the history
        assert all(response == first_move[task] for _, response in turns)  # the expert's answer, not the policy's
        assert "look" not in first_move[task]


def test_sft_dagger_rounds_play_the_policy_and_train_on_every_labeled_state_so_far(tmp_path, monkeypatch):
    from learners import sft
    from learners.policy_model import PolicyModel, PolicyModelConfig
    from learners.sft import SFTArgs

    demos = [([{"role": "user", "content": f"Your task is to: {verb} {i}"}], f"<action>{answer}</action>", f"{verb} {i}", "t")
             for verb, answer in (("look", "look"), ("walk", "go to desk 1")) for i in range(8)]
    stuck = [{"role": "user", "content": "Your task is to: look 0. Nothing happens."}]
    calls = []

    def labels(policy, env, kwargs, games, max_turns, seed, tasks=None, on_progress=None, history_length=None):
        calls.append((policy, games, seed, history_length))
        return [(stuck, "<action>go to desk 1</action>", f"task {seed}", "t")] * 20, seed - 1

    monkeypatch.setattr(sft, "expert_demonstrations", lambda *a, **k: demos)
    monkeypatch.setattr(sft, "dagger_labels", labels)
    args = SFTArgs(env="alfworld", output=tmp_path / "m", epochs=1, batch_size=4, vocab_size=300, hidden_size=32, num_layers=1,
                   teacher_fraction=0.0, dagger_rounds=2, dagger_games=7, dagger_lr=1e-2, history_length=5)
    meta = json.loads((sft.build_sft_policy(args, progress=False) / "sft.json").read_text())
    assert [(type(p), g, s, h) for p, g, s, h in calls] == [(PolicyModel, 7, 1, 5), (PolicyModel, 7, 2, 5)]  # played with the demonstrations' history
    assert meta["dagger"] == {"rounds": 2, "games": 7, "won_per_round": [0, 1], "labeled_states": 40}  # DAgger aggregates the rounds' labels
    policy = PolicyModel.from_pretrained(PolicyModelConfig(model=str(tmp_path / "m")), with_reference=False)

    def logprob(response):
        prompt, ids = sft.encode_turn(policy.tokenizer, stuck, response)
        with torch.no_grad():
            return float(policy.response_logprobs([prompt], [ids])[0].sum())

    # the labels were learned: at their state the expert's answer beats the demonstrations' only one
    assert logprob("<action>go to desk 1</action>") > logprob("<action>look</action>")


def test_a_lora_adapter_starts_from_the_runs_seed(tiny_model, tmp_path):
    """A LoRA adapter's random initialization is a function of ``--seed``, not of how many random numbers
    the process drew before (learning.py evaluates the warm start first; it had made two runs of one
    setting differ from their second step)."""
    from learners.trainer import Trainer

    def adapter(seed: int, draws: int) -> dict[str, torch.Tensor]:
        torch.rand(draws)  # other work in the same process
        trainer = Trainer(train_args("alfworld", tiny_model, tmp_path / f"s{seed}-{draws}", lora_rank=4, seed=seed))
        return {n: p.detach().clone() for n, p in trainer.policy.model.named_parameters() if "lora_A" in n}

    first, after_other_draws, other_seed = adapter(0, 1), adapter(0, 5), adapter(1, 1)
    assert first and all(torch.equal(first[n], after_other_draws[n]) for n in first)
    assert any(not torch.equal(first[n], other_seed[n]) for n in first)


def test_demo_coef_trains_on_the_experts_turns_of_training_games(tiny_model, tmp_path, capsys):
    """``--learner-args demo_coef``: the trainer has the env's expert play ``demo_games`` training tasks and hands
    their turns, in the rollout's prompts, to the learner, whose update reports their NLL."""
    from learners.trainer import Trainer

    args = train_args("search-qa", tiny_model, tmp_path / "run", steps=1, demo_games=3, learner="grpo",
                      learner_args={"lr": "1e-3", "demo_coef": "0.5", "demo_batch": "4"})
    trainer = Trainer(args)
    demos = trainer.learner.demonstrations
    assert demos and all(prompt and response[-1] == trainer.policy.tokenizer.eos_token_id for prompt, response in demos)
    out = capsys.readouterr().out
    assert "the search-qa expert plays 3 training games" in out and "expert turns of 3 training games" in out  # before and after the wait
    assert trainer.train()["train/demo_nll"] > 0
    with pytest.raises(ConfigError, match="demo_games >= 1"):
        Trainer(replace(args, demo_games=0, output=tmp_path / "zero"))
    shorter = Trainer(replace(args, history_length=0, output=tmp_path / "history")).learner.demonstrations  # the run's own prompts
    assert len(shorter) == len(demos) and sum(map(len, (p for p, _ in shorter))) < sum(map(len, (p for p, _ in demos)))
    assert Trainer(replace(args, learner_args={"lr": "1e-3"}, output=tmp_path / "off")).learner.demonstrations == []  # off: no expert games
