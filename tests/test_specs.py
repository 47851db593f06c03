"""One entry per env: an env added through a single EnvSpec is registered, prompted, trained and scored."""
from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

from learners.trainer import TrainArgs, Trainer
from sdar_gym.agent import TextAgent
from sdar_gym.agent.projection import ActionFormat
from sdar_gym.core import ConfigError, TextEnv
from sdar_gym.registration import env_entry, make_env, parse_env_kwargs, register_envs
from sdar_gym.specs import ENV_SPECS, AgentSpec, EnvSpec

TOY_TEMPLATE = "Task: {task}\n{history}Step {step}. You see: {observation}\nActions: [{actions}]. Think in <think></think>, act in <action></action>."


class ToyEnv(TextEnv):
    """Say the magic word: two tasks, two actions, won by saying the task's word."""

    WORDS = {"toy-0": "open", "toy-1": "close"}

    def __init__(self, max_steps: int = 3, render_mode: str | None = None) -> None:
        super().__init__(render_mode)
        self.max_steps = max_steps
        self._task = "toy-0"
        self._steps = 0

    @property
    def task_ids(self) -> list[str]:
        return list(self.WORDS)

    def _info(self, won: bool, valid: bool) -> dict:
        return {"task": f"say {self.WORDS[self._task]}", "task_id": self._task, "task_type": "say", "admissible_actions": ["open", "close"],
                "won": won, "score": float(won), "action_valid": valid}

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self._task = (options or {}).get("task_id") or list(self.WORDS)[(seed or 0) % 2]
        self._steps = 0
        return "a door", self._info(False, True)

    def step(self, action):
        action = self.check_action(action)
        self._steps += 1
        won = action == self.WORDS[self._task]
        return "a door", float(won), won, self._steps >= self.max_steps and not won, self._info(won, action in ("open", "close"))

    def expert_action(self) -> str | None:
        return self.WORDS[self._task]


TOY = EnvSpec(
    name="toy",
    gym_id="sdar_gym/Toy-v0",
    entry_point=ToyEnv,
    description="A two-word test env",
    agent=AgentSpec(template=TOY_TEMPLATE, action_format=ActionFormat(tags={"action": "{}"}, pattern=r"[a-z]+"), history_length=1),
    demo_env_kwargs={"max_steps": 2},
)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(ENV_SPECS, "toy", TOY)
    yield TOY
    gym.registry.pop(TOY.gym_id, None)


def test_one_spec_registers_the_env_and_its_agent(toy):
    register_envs()
    assert toy.gym_id in gym.registry
    assert env_entry("sdar_gym/Toy-v0") is toy and isinstance(make_env("toy").unwrapped, ToyEnv)
    agent = TextAgent("toy")
    assert agent.spec is toy.agent and agent.project("<think>x</think><action>open</action>").action == "open"
    assert "Task: say open" in agent.prompt("a door", ToyEnv().reset(options={"task_id": "toy-0"})[1], agent.new_history())
    assert toy.breakdown([type("E", (), {"task_type": "say", "won": True, "score": 1.0})()]) == {"say": 100.0, "All": 100.0}


def test_train_one_step_on_an_env_added_by_one_spec(toy, tmp_path: Path, torch_one_thread):
    from learners.tiny import TinyConfig, make_tiny_model, train_tokenizer

    tokenizer = train_tokenizer(["<think>say it</think><action>open</action>", TOY_TEMPLATE] * 10, vocab_size=300)
    model = make_tiny_model(tokenizer, TinyConfig(hidden_size=32, intermediate_size=64, max_position_embeddings=2048))
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    args = TrainArgs(learner="grpo", env="toy", model=str(tmp_path / "tiny"), steps=1, group_size=2, tasks_per_step=2, max_turns=2,
                     max_new_tokens=4, num_envs=2, output=tmp_path / "run", progress=False, tensorboard=False, learner_args={"lr": "1e-3"}, eval_every=0)
    trainer = Trainer(args)
    assert sorted(trainer.tasks) == ["toy-0", "toy-1"]
    metrics = trainer.train()
    assert trainer.step == 1 and metrics["rollout/episodes"] == 4.0 and "rollout/say/success" in metrics and "train/loss" in metrics


def test_one_rule_for_env_kwargs_of_every_subcommand():
    parsed = parse_env_kwargs({"max_steps": "5", "coef": "0.5", "shuffle": "true", "split": "train", "ids": '["a", "b"]', "none": "null", "keep": 3})
    assert parsed == {"max_steps": 5, "coef": 0.5, "shuffle": True, "split": "train", "ids": ["a", "b"], "none": None, "keep": 3}


def test_unknown_env_names_the_known_ones():
    with pytest.raises(ConfigError, match="known envs: alfworld, webshop, search-qa"):
        env_entry("chess")


def test_an_unknown_env_kwarg_names_the_ones_the_env_takes():
    with pytest.raises(ConfigError, match=r"alfworld takes no keyword argument 'bogus_key'; it takes: .*data_dir"):
        make_env("alfworld", bogus_key=1)
