"""The collector on real ALFWorld games with the inline pool: groups, records, determinism, modes."""
from __future__ import annotations

import asyncio

import pytest
from rollout_support import ALFWORLD_KWARGS, TASK_BOOK, TASK_BOWL, require_alfworld

from sdar_gym.core import ConfigError
from sdar_gym.rollout import ExpertPolicy, RandomPolicy, SamplingParams, Task, collect, episode_metrics, make_pool


@pytest.fixture(scope="module")
def pool():
    require_alfworld()
    p = make_pool("inline", "alfworld", 4, ALFWORLD_KWARGS)  # one slot per episode: no game reloads between runs
    yield p
    asyncio.run(p.aclose())


def run(policy, pool, tasks, **kwargs):
    return asyncio.run(collect(policy, pool, tasks, **kwargs))


def trace(episodes):
    return [(e.group_id, e.task_id, [(t.response_ids, t.action, t.reward, t.logprobs) for t in e.turns]) for e in episodes]


@pytest.fixture(scope="module")
def random_run(pool):
    policy = RandomPolicy("alfworld", invalid_prob=0.4)
    return run(policy, pool, [TASK_BOWL, Task(seed=3)], group_size=2, max_turns=2, seed=7)


def test_groups_share_their_task(random_run) -> None:
    assert [e.group_id for e in random_run] == ["g0", "g0", "g1", "g1"]
    assert random_run[0].task_id == random_run[1].task_id == TASK_BOWL
    assert random_run[2].task_id == random_run[3].task_id != TASK_BOWL


def test_turns_hold_tokens_rewards_and_masks(random_run) -> None:
    turns = [t for e in random_run for t in e.turns]
    assert len(turns) == 8
    for t in turns:
        assert t.prompt_ids and len(t.response_ids) == len(t.logprobs) == len(t.response_mask)
        assert set(t.response_mask) == {1}
        assert t.task and t.task_type and t.messages[-1]["content"] == t.prompt_text
        assert t.reward == (0.0 if t.action_valid else pytest.approx(-0.1))
        assert t.action_valid == bool(t.action)
    assert any(not t.action_valid for t in turns) and any(t.action_valid for t in turns)
    assert all(e.turns[-1].truncated and not e.turns[0].truncated for e in random_run)
    assert episode_metrics(random_run)["episodes_failed"] == 0


def test_deterministic_and_lockstep_replays_async(pool, random_run) -> None:
    """Per-request seeds make a run independent of scheduling: lockstep replays the async run."""
    lockstep = run(RandomPolicy("alfworld", invalid_prob=0.4), pool, [TASK_BOWL, Task(seed=3)], group_size=2, max_turns=2, seed=7, mode="lockstep")
    assert trace(lockstep) == trace(random_run)
    # the rollouts of a group are sampled with different seeds, so they are not copies of each other
    assert trace(random_run)[0][2] != trace(random_run)[1][2]


def test_expert_wins_with_shaped_reward(pool) -> None:
    (episode,) = run(ExpertPolicy("alfworld"), pool, [TASK_BOOK], max_turns=8, sampling=SamplingParams(max_new_tokens=64))
    assert episode.won and episode.score == 1.0 and not episode.failed
    assert [t.reward for t in episode.turns] == [0.0] * (len(episode.turns) - 1) + [10.0]
    assert episode.turns[-1].terminated and not episode.turns[-1].truncated
    assert "put book" in episode.turns[-1].action


def test_skill_text_reaches_the_student_prompt(pool) -> None:
    seen = []
    (episode,) = run(RandomPolicy("alfworld"), pool, [TASK_BOOK], max_turns=1, skills=lambda task, task_type: seen.append((task, task_type)) or "- Books live on shelves.")
    assert "- Books live on shelves." in episode.turns[0].prompt_text
    assert seen == [(episode.task, episode.task_type)]


class BrokenPolicy:
    async def generate(self, requests):
        raise RuntimeError("model server went away")


@pytest.mark.parametrize("mode", ["async", "lockstep"])
def test_policy_errors_propagate(pool, mode) -> None:
    with pytest.raises(RuntimeError, match="model server went away"):
        run(BrokenPolicy(), pool, [TASK_BOOK], group_size=2, max_turns=2, mode=mode)


def test_bad_arguments(pool) -> None:
    with pytest.raises(ConfigError, match="reset options or a seed"):
        run(RandomPolicy("alfworld"), pool, [Task()])
    with pytest.raises(ConfigError, match="mode"):
        run(RandomPolicy("alfworld"), pool, [1], mode="sync")
    with pytest.raises(ConfigError, match="unknown ALFWorld task_id"):
        run(RandomPolicy("alfworld"), pool, ["no-such-task"])


def test_scripted_policies_speak_each_envs_format() -> None:
    """No env needed: the policies read what the collector puts in the request metadata."""
    from sdar_gym.agent import TextAgent
    from sdar_gym.rollout import GenerationRequest

    def ask(policy, **metadata):
        request = GenerationRequest(messages=[{"role": "user", "content": "q"}], sampling=SamplingParams(seed=1), metadata=metadata)
        return asyncio.run(policy.generate([request]))[0]

    search = ask(RandomPolicy("search-qa", fallback_actions=("search[capital of peru]",)), admissible_actions=None)
    assert TextAgent("search-qa").project(search.text).action == "search[capital of peru]"
    answer = ask(ExpertPolicy("search-qa"), expert_action="answer[lima]")
    assert TextAgent("search-qa").project(answer.text).action == "answer[lima]"
    click = ask(ExpertPolicy("webshop"), expert_action="click[buy now]")
    assert TextAgent("webshop").project(click.text).action == "click[buy now]"
    assert click.response_ids == list(click.text.encode()) and click.logprobs == [0.0] * len(click.response_ids)
    shrug = ask(RandomPolicy("alfworld", invalid_prob=1.0), admissible_actions=["look"])
    assert not TextAgent("alfworld").project(shrug.text).valid


def test_turns_record_their_own_penalty_and_anchor_observation(random_run) -> None:
    """Where each turn's score comes from is explicit: task reward, its own penalty, the anchor state."""
    for e in random_run:
        for t in e.turns:
            assert t.penalty == (0.0 if t.action_valid else pytest.approx(0.1))
            assert t.reward + t.penalty == pytest.approx(0.0)  # no win within two turns
            assert t.observation and t.observation[:40] in t.prompt_text
        assert e.task_reward == pytest.approx(0.0)


class _NamesWhatIsNotThere:
    """Answers well-formed actions: on even turns one the env does not list (no unicorn anywhere),
    on odd turns the first one it lists."""

    async def generate(self, requests):
        from sdar_gym.agent import TextAgent
        from sdar_gym.rollout.scripted import byte_ids
        from sdar_gym.rollout.types import Generation

        agent, out = TextAgent("alfworld"), []
        for r in requests:
            action = "take unicorn 1 from sofa 1" if r.metadata["turn"] % 2 == 0 else r.metadata["admissible_actions"][0]
            ids = byte_ids(agent.render_action(action))
            out.append(Generation(agent.render_action(action), [1], ids, [0.0] * len(ids)))
        return out


def test_an_action_that_did_nothing_is_penalized_when_asked(pool) -> None:
    """``no_effect_penalty`` (sdar-gym's own, 0 in the paper) costs only the turns whose
    well-formed action the env answered with "Nothing happens.", and stays with those turns."""
    from sdar_gym.agent import AgentConfig, RewardShaping, TextAgent

    for penalty in (0.0, 0.05):
        agent = TextAgent("alfworld", AgentConfig(shaping=RewardShaping(no_effect_penalty=penalty)))
        (episode,) = run(_NamesWhatIsNotThere(), pool, [TASK_BOOK], group_size=1, max_turns=4, seed=0, agent=agent)
        assert [t.info["action_valid"] for t in episode.turns] == [False, True, False, True]
        assert all(t.action_valid for t in episode.turns)
        assert [t.penalty for t in episode.turns] == pytest.approx([penalty, 0.0, penalty, 0.0])
        assert [t.reward for t in episode.turns] == pytest.approx([-penalty, 0.0, -penalty, 0.0])
        assert episode_metrics([episode])["no_effect_action_ratio"] == 0.5
        assert episode.task_reward == 0.0


@pytest.mark.parametrize("planner_late", [False, True])
def test_progress_is_rewarded_on_the_turn_that_made_it(pool, planner_late, monkeypatch) -> None:
    """With ``progress=True`` the env reports each step's progress toward the goal; ``progress_reward``
    pays it to that turn alone (the episode's task reward stays the win reward). ``planner_late``: the
    expert plans with the fast engine's fallback search, as when TextWorld's planner is late on a busy
    machine (its plan here takes a detour)."""
    from sdar_gym.agent import AgentConfig, RewardShaping, TextAgent
    from sdar_gym.envs.alfworld.fast.engine import FastEngine

    if planner_late:
        monkeypatch.setattr(FastEngine, "planner_timeout_s", 0.0)

    agent = TextAgent("alfworld", AgentConfig(shaping=RewardShaping(progress_reward=0.5)))
    progress_pool = make_pool("inline", "alfworld", 1, {**ALFWORLD_KWARGS, "progress": True})
    try:
        (won,) = run(ExpertPolicy("alfworld"), progress_pool, [TASK_BOOK], group_size=1, max_turns=6, seed=0, agent=agent)
        (lost,) = run(_NamesWhatIsNotThere(), progress_pool, [TASK_BOOK], group_size=1, max_turns=2, seed=0, agent=agent)
    finally:
        asyncio.run(progress_pool.aclose())
    # the start is 4 steps away (go, take, go, put); a detour's extra turns make no progress, so the sum is the same
    progress = [t.info["progress"] for t in won.turns]
    assert won.won and sum(progress) == 4.0
    assert [t.penalty for t in won.turns] == pytest.approx([-0.5 * x for x in progress])
    assert won.task_reward == 10.0 and won.total_reward == pytest.approx(12.0)
    assert lost.turns[0].info["progress"] == 0.0 and lost.turns[0].reward == 0.0  # "Nothing happens.": no progress
    with pytest.raises(ConfigError, match=r"progress_reward is set, but the alfworld env reports no info\['progress'\].*progress true"):
        run(ExpertPolicy("alfworld"), pool, [TASK_BOOK], group_size=1, max_turns=2, seed=0, agent=agent)


def test_a_slipping_expert_records_exactly_the_turns_it_slipped_on(pool) -> None:
    """DART-style demonstrations: the turns left out must be exactly the ones the expert did not choose."""
    expert = ExpertPolicy("alfworld", noise=0.5, seed=3)
    episodes = run(expert, pool, [TASK_BOOK, TASK_BOWL], group_size=2, max_turns=6, seed=5)
    keys = {(k, n) for k, e in enumerate(episodes) for n in range(len(e.turns))}
    assert expert.perturbed and expert.perturbed < keys
    for k, e in enumerate(episodes):
        for n, t in enumerate(e.turns):
            slipped = (k, n) in expert.perturbed
            assert ("Following the plan." not in t.response_text) == slipped
    # a slip is a move the expert would not make: replaying the same tasks without noise differs
    clean = run(ExpertPolicy("alfworld"), pool, [TASK_BOOK, TASK_BOWL], group_size=2, max_turns=6, seed=5)
    assert [[t.action for t in e.turns] for e in episodes] != [[t.action for t in e.turns] for e in clean]


def test_a_slip_repeats_the_last_move_or_takes_another_admissible_one() -> None:
    import random

    rng = random.Random(0)
    slips = {ExpertPolicy._slip("go to desk 1", ["go to desk 1", "go to bed 1", "look"], "open drawer 2", rng) for _ in range(200)}
    assert slips == {"go to bed 1", "look", "open drawer 2"}
    assert ExpertPolicy._slip("look", ["look"], None, rng) == "look"
    with pytest.raises(ConfigError, match="noise"):
        ExpertPolicy("alfworld", noise=1.0)


def test_metrics_count_the_groups_whose_rollouts_share_one_outcome() -> None:
    """A group that all won or all lost gives GRPO no outcome signal; the log must show how many."""
    from sdar_gym.rollout.types import Episode

    def episode(group: str, won: bool, failed: bool = False) -> Episode:
        return Episode(turns=[], group_id=group, task_id=group, task="t", task_type="pick", score=float(won), won=won, failed=failed)

    batch = [episode("g0", False), episode("g0", False), episode("g1", True), episode("g1", False),
             episode("g2", True), episode("g2", True), episode("g3", False), episode("g3", True, failed=True)]
    assert episode_metrics(batch, prefix="rollout")["rollout/groups_one_outcome"] == 0.75  # g0, g2, and g3 (its win failed)
