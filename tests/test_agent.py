"""The agent layer: projection cases, prompt templates, history window, shaping defaults."""
from __future__ import annotations

import subprocess
import sys

import pytest

from sdar_gym.agent import AGENTS, AgentConfig, HistoryWindow, RewardShaping, TextAgent
from sdar_gym.core import ConfigError

INFO = {"task": "put a mug in sinkbasin.", "task_type": "pick_and_place_simple", "admissible_actions": ["look", "go to sinkbasin 1"]}


@pytest.mark.parametrize(
    "env, text, action",
    [
        ("alfworld", "<think>the sink</think><action>go to sinkbasin 1</action>", "go to sinkbasin 1"),
        ("alfworld", "<think>a\nb</think>\n<action> Put Mug 1 in/on SinkBasin 1 </action>", "put mug 1 in/on sinkbasin 1"),
        ("webshop", "<think>find it</think><action>search[red shoes size 9]</action>", "search[red shoes size 9]"),
        ("webshop", "<think>buy</think><action>click[Buy Now]</action>", "click[Buy Now]"),
        ("search-qa", "<think>look up</think><search>capital of france</search>", "search[capital of france]"),
        ("search-qa", "<think>known</think><answer>Paris</answer>", "answer[Paris]"),
    ],
)
def test_valid_projection(env: str, text: str, action: str) -> None:
    p = TextAgent(env).project(text)
    assert (p.action, p.valid, p.reason) == (action, True, "")


@pytest.mark.parametrize(
    "env, text, reason",
    [
        ("alfworld", "<action>look</action>", "missing <think>"),
        ("alfworld", "<think>hmm</think> I will look.", "missing <action>"),
        ("alfworld", "<think>hmm</think><action>look", "missing <action>"),
        ("alfworld", "<think><action>look</action></think>", "missing <action>"),
        ("alfworld", "<think>x</think><action>look</action><action>inventory</action>", "2 actions"),
        ("alfworld", "<think>x</think><action>  </action>", "empty"),
        ("alfworld", "<think>x</think><action>go to [sink]</action>", "not of the form"),
        ("alfworld", "<think>x</think><action>" + "look " * 100 + "</action>", "longer than"),
        ("webshop", "<think>x</think><action>buy[shoes]</action>", "not of the form"),
        ("webshop", "<think>x</think><action>red shoes</action>", "not of the form"),
        ("search-qa", "<think>x</think><action>paris</action>", "missing <search>"),
        ("search-qa", "<think>x</think><search>a</search><answer>b</answer>", "2 actions"),
    ],
)
def test_invalid_projection(env: str, text: str, reason: str) -> None:
    p = TextAgent(env).project(text)
    assert not p.valid and p.action == ""
    assert reason in p.reason


def test_think_can_be_optional() -> None:
    assert TextAgent("alfworld", AgentConfig(require_think=False)).project("<action>look</action>").action == "look"


@pytest.mark.parametrize("env, action", [("alfworld", "go to sinkbasin 1"), ("webshop", "click[buy now]"), ("search-qa", "search[who wrote hamlet]"), ("search-qa", "answer[shakespeare]")])
def test_render_action_round_trips(env: str, action: str) -> None:
    agent = TextAgent(env)
    assert agent.project(agent.render_action(action, "plan")).action == action


def test_replace_action_rewrites_only_the_tagged_action() -> None:
    from sdar_gym.agent.projection import replace_action

    agent = TextAgent("alfworld")
    text = "<think>The <action>look</action> idea.</think> <action>take pen 1 from armchair 2</action> done"
    out = replace_action(text, agent.spec.action_format, "go to desk 1")
    assert out == "<think>The <action>look</action> idea.</think> <action>go to desk 1</action> done"
    assert agent.project(out).action == "go to desk 1"
    search = TextAgent("search-qa")
    assert search.project(replace_action("<think>t</think><search>a</search>", search.spec.action_format, "answer[b]")).action == "answer[b]"
    with pytest.raises(ValueError, match="no tagged action"):
        replace_action("<think>t</think>nothing", agent.spec.action_format, "look")


def test_registry_defaults_follow_the_paper() -> None:
    assert set(AGENTS) >= {"alfworld", "webshop", "search-qa"}
    assert [AGENTS[e].history_length for e in ("alfworld", "webshop", "search-qa")] == [2, 2, 4]
    assert AGENTS["alfworld"].shaping == RewardShaping(win_reward=10.0, invalid_penalty=0.1)
    assert AGENTS["search-qa"].shaping.invalid_penalty == 0.01
    shaping = RewardShaping()
    assert shaping(1.0, won=True, action_valid=True) == 10.0
    assert shaping(0.0, won=False, action_valid=False) == pytest.approx(-0.1)
    assert RewardShaping(env_reward_coef=1.0)(0.5, won=False, action_valid=True) == 0.5
    did_nothing = {"action_valid": False, "progress": 0.0}
    assert shaping(0.0, won=False, action_valid=True, info=did_nothing) == 0.0  # the paper has neither optional term
    assert shaping(0.0, won=False, action_valid=True, info={"progress": 2.0}) == 0.0
    with pytest.warns(UserWarning, match="a malformed answer then costs less than an action that does nothing"):
        strict = RewardShaping(no_effect_penalty=0.5, progress_reward=0.25)
    assert strict(0.0, won=False, action_valid=True, info=did_nothing) == pytest.approx(-0.5)
    assert strict(0.0, won=False, action_valid=False, info=did_nothing) == pytest.approx(-0.1)  # malformed: the invalid penalty alone
    assert strict(0.0, won=False, action_valid=True, info={"action_valid": True, "progress": 2.0}) == pytest.approx(0.5)
    assert strict(1.0, won=True, action_valid=True, info={"progress": 1.0}) == pytest.approx(10.25)
    assert strict.task_reward(1.0, won=True) == 10.0 and strict(1.0, won=True, action_valid=True) == 10.0  # no info: no turn term


def test_history_window_keeps_last_h() -> None:
    h = HistoryWindow(2)
    for i in range(5):
        h.append(f"obs{i}", f"act{i}")
    assert h.steps == 5
    assert h.recent() == [(4, "obs3", "act3"), (5, "obs4", "act4")]


def test_prompt_layout() -> None:
    agent = TextAgent("alfworld")
    h = agent.new_history()
    first = agent.prompt("You arrive in a kitchen.", INFO, h)
    assert "Your task is to: put a mug in sinkbasin." in first
    assert "'look', 'go to sinkbasin 1'" in first and "<think>" in first and "<action>" in first
    assert "step 1" in first and "so far" not in first
    for i in range(3):
        h.append(f"observation {i}", "look" if i else "")
    later = agent.prompt("You see a sinkbasin.", INFO, h)
    assert "taken 3 step(s)" in later and "observation 0" not in later
    assert "[Step 2] Observation: observation 1" in later and "step 4" in later
    assert "observation 2" in TextAgent("alfworld", AgentConfig(history_length=1)).prompt("x", INFO, h)
    assert "so far" not in TextAgent("alfworld", AgentConfig(history_length=0)).prompt("x", INFO, HistoryWindow(0))
    search = TextAgent("search-qa").prompt("Question: who wrote hamlet?", {"task": "who wrote hamlet?", "admissible_actions": None}, HistoryWindow(4))
    assert "<search>" in search and "<answer>" in search and "<action>" not in search


def test_skill_text_in_student_prompt_and_teacher_from_stored_messages() -> None:
    agent = TextAgent("alfworld", AgentConfig(system_prompt="Be brief."))
    h = agent.new_history()
    h.append("o", "look")
    student = agent.messages("You see a sinkbasin.", INFO, h)
    assert student[0] == {"role": "system", "content": "Be brief."} and "Skills" not in student[1]["content"]
    with_skill = agent.messages("You see a sinkbasin.", INFO, h, skills="- Go to the sink before cleaning.")
    assert "- Go to the sink before cleaning." in with_skill[1]["content"]
    assert agent.with_skills(student, "- Go to the sink before cleaning.") == with_skill


def test_unknown_env_and_bad_config() -> None:
    with pytest.raises(ConfigError, match="no agent spec"):
        TextAgent("chess")
    with pytest.raises(ConfigError, match="history_length"):
        TextAgent("alfworld", AgentConfig(history_length=-1))


def test_gym_layers_do_not_import_torch() -> None:
    code = "import sys, sdar_gym.agent, sdar_gym.rollout, sdar_gym.cli, learners; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
