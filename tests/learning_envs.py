"""Toy envs for the learning tests (tests only; not in the gym's registry).

``DoorEnv``: one turn. The prompt names a task ("Task 3: which code opens the prize door?"); the
code is a few letters from a-d, the same in every task; reward 1 for the whole code, else 0. The
student can only find it by trial (reward is learnable: 1 in 4 per letter by chance). The
privileged skill text states the code, which the student's prompt does not. With a long code most
groups of G rollouts all fail and give GRPO no signal, while a teacher shown the skill endorses each
right letter a rollout samples, even in a failed answer: the token-level guidance SDAR adds.

``warm_start`` builds a tiny Qwen2 that answers a uniformly random door from the student prompt and
the prize door from the teacher's template (skill text in the prompt; trained on other tasks'
ids), so the teacher branch is in distribution, as the built-in tiny policy's SFT makes it.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from types import SimpleNamespace

import torch

from learners.hf_policy import HFPolicy
from learners.policy_model import PolicyModel, PolicyModelConfig
from learners.teacher import SkillContext, insert_context
from sdar_gym.rollout.types import Episode, GenerationRequest, SamplingParams, Turn

DOORS = ("a", "b", "c", "d")


@dataclass
class DoorEnv:
    tasks: int = 8
    code: tuple[str, ...] = ("c",)
    """The prize code, the same in every task."""

    def answer(self, task: int) -> str:
        return " ".join(self.code)

    def messages(self, task: int) -> list[dict[str, str]]:
        n = len(self.code)
        return [{"role": "user", "content": f"Task {task}: which code opens the prize door? Answer with {n} letters, each one of a, b, c, d."}]

    def skill(self, task: int) -> str:
        return f"The prize door opens with the code {self.answer(task)}."

    def reward(self, task: int, text: str) -> float:
        return float(text.split() == list(self.code))

    def skills(self) -> SkillContext:
        return task_skills(self.skill)


def task_skills(skill) -> SkillContext:
    """A SkillContext over a library that returns ``skill(n)`` for the task text "Task n..."."""

    class Library:
        def retrieve(self, task, task_type=None, **_):
            return SimpleNamespace(context=skill(int(task.split()[1].rstrip(":"))), skills=[], ids=[])

    return SkillContext(Library())


def fit_warm_start(lines: list[str], name: str, steps: int, seed: int, example) -> PolicyModel:
    """A tiny Qwen2 (its tokenizer trained on ``lines``) fitted on ``steps`` batches of 8 examples.

    Each ``example(policy, rng)`` gives (student prompt ids, skill text, student answer, teacher
    answer): the student prompt learns the student answer, and the same prompt with the skill text
    in the teacher's template learns the teacher answer.
    """
    from learners.tiny import TinyConfig, make_tiny_model, train_tokenizer

    rng = random.Random(seed)
    tokenizer = train_tokenizer(lines, vocab_size=320)
    model = make_tiny_model(tokenizer, TinyConfig(hidden_size=64, intermediate_size=128, num_layers=2, max_position_embeddings=512, seed=seed))
    policy = PolicyModel.from_model(model, tokenizer, PolicyModelConfig(model=name, dtype="fp32", device="cpu"), with_reference=False)
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=3e-3)
    eos = tokenizer.eos_token_id
    policy.model.train()
    for _ in range(steps):
        prompts, responses = [], []
        for _ in range(8):
            student, skill, guess, answer = example(policy, rng)
            prompts += [student, insert_context(tokenizer, student, skill)]
            responses += [tokenizer.encode(guess) + [eos], tokenizer.encode(answer) + [eos]]
        logp, _ = policy.response_logprobs(prompts, responses)
        optimizer.zero_grad()
        (-logp.mean()).backward()
        optimizer.step()
    policy.model.eval()
    return policy


def warm_start(env: DoorEnv, steps: int = 120, seed: int = 0) -> PolicyModel:
    def example(policy, rng):
        task = rng.randrange(100, 10_000)  # never an RL task
        guess = " ".join(rng.choice(DOORS) for _ in env.code)
        return prompt_ids(policy, env.messages(task)), env.skill(task), guess, env.answer(task)

    lines = [env.messages(t)[0]["content"] + " " + env.skill(t) for t in range(200)] + [f"{x} {y}" for x in DOORS for y in DOORS]
    return fit_warm_start(lines * 3, "door", steps, seed, example)


def prompt_ids(policy: PolicyModel, messages: list[dict[str, str]]) -> list[int]:
    return HFPolicy(policy.model, policy.tokenizer).prompt_ids(GenerationRequest(messages=messages))


def success(policy: PolicyModel, env: DoorEnv) -> float:
    """Expected success: the policy's probability of answering each task's door, averaged over tasks."""
    tok = policy.tokenizer
    with torch.no_grad():
        logp, _ = policy.response_logprobs(
            [prompt_ids(policy, env.messages(t)) for t in range(env.tasks)], [tok.encode(env.answer(t)) + [tok.eos_token_id] for t in range(env.tasks)]
        )
    return float(logp.view(env.tasks, -1).sum(-1).exp().mean())


def rollout(policy: PolicyModel, env: DoorEnv, group_size: int, seed: int) -> list[Episode]:
    """G sampled answers per task, as the rollout layer records them (ids, sampling log-probs, reward)."""
    hf = HFPolicy(policy.model, policy.tokenizer, max_batch_size=64)
    requests = [
        GenerationRequest(messages=env.messages(t), sampling=SamplingParams(max_new_tokens=len(env.code) + 2, temperature=1.0, seed=seed * 10_000 + t * group_size + g))
        for t in range(env.tasks)
        for g in range(group_size)
    ]
    episodes = []
    for i, gen in enumerate(hf.generate_sync(requests)):
        task = i // group_size
        reward = env.reward(task, gen.text)
        text = env.messages(task)[0]["content"]
        turn = Turn(gen.prompt_ids, gen.response_ids, gen.logprobs, gen.text, reward, {}, task=text, task_type="door", response_text=gen.text)
        episodes.append(Episode([turn], group_id=f"t{task}", task_id=str(task), task=text, task_type="door", score=reward, won=reward > 0))
    return episodes


def train(learner: str, env, steps: int, seed: int = 0, **overrides) -> list[float]:
    """Success before and after each of ``steps`` RL steps of ``learner`` from the env's warm start
    (a DoorEnv or a RoomsEnv: :data:`PLAYS` holds each one's warm start, success and rollout)."""
    from learners.algorithms import make_learner

    fit, measure, play = PLAYS[type(env)]
    torch.manual_seed(seed)
    policy = fit(env, seed=seed)
    settings = {"lr": 1e-3, "kl_coef": 0.0, "entropy_coef": 0.0, "mini_batches": 2, "micro_batch_size": 64, **overrides}
    learner_obj = make_learner(learner, policy, env.skills() if learner != "grpo" else None, settings)
    curve = [measure(policy, env)]
    for step in range(steps):
        learner_obj.update(play(policy, env, group_size=8, seed=seed * 1_000 + step))
        policy.model.eval()
        curve.append(measure(policy, env))
    return curve


@dataclass
class RoomsEnv:
    """Several turns: the agent crosses ``len(code)`` rooms, one door per turn, seeing the doors it took.

    The episode is won only if every room's door was right (reward 10, as ALFWorld's win), so every
    turn of an episode shares its outcome and the per-turn estimator must credit them together. An
    answer that is no door (the warm start says "e" one time in five) is an invalid action: it
    costs ``penalty`` and the agent stays in the room, as an inadmissible ALFWorld command does.
    """

    tasks: int = 8
    code: tuple[str, ...] = ("c", "c")
    """The right door of each room, the same in every task. The same door in every room by default: the
    warm start answers alike in every room, and with ("c", "a") GRPO stalled at 1/2 · 1/2 on 2 of 3
    seeds while the tiny model learnt to tell the rooms apart (a representation problem, not the
    multi-turn credit this env tests)."""
    penalty: float = 0.1
    max_turns: int = 4

    def messages(self, task: int, taken: list[str]) -> list[dict[str, str]]:
        doors = " ".join(taken) or "none"
        return [{"role": "user", "content": f"Task {task}: room {len(taken) + 1} of {len(self.code)}. Doors taken so far: {doors}. Which door opens? Answer one of a, b, c, d."}]

    def skill(self, task: int) -> str:
        return f"The rooms open with the doors {' '.join(self.code)}, in order."

    def skills(self) -> SkillContext:
        return task_skills(self.skill)


def rooms_warm_start(env: RoomsEnv, steps: int = 150, seed: int = 0) -> PolicyModel:
    """A tiny Qwen2 that answers a random door (or "e", no door, one time in five) in every room from
    the student prompt, and the right door from the teacher's template, trained on other tasks' ids."""

    def example(policy, rng):
        task = rng.randrange(100, 10_000)  # never an RL task
        taken = [rng.choice(DOORS) for _ in range(rng.randrange(len(env.code)))]
        guess = "e" if rng.random() < 0.2 else rng.choice(DOORS)
        return prompt_ids(policy, env.messages(task, taken)), env.skill(task), guess, env.code[len(taken)]

    lines = [env.messages(t, list(env.code[:k]))[0]["content"] + " " + env.skill(t) for t in range(200) for k in range(len(env.code))]
    return fit_warm_start(lines * 3 + [" ".join(DOORS + ("e",))] * 20, "rooms", steps, seed, example)


def rooms_success(policy: PolicyModel, env: RoomsEnv) -> float:
    """Expected success in one try per room: the probability of the right door in every room, along the right path."""
    tok = policy.tokenizer
    prompts = [prompt_ids(policy, env.messages(t, list(env.code[:k]))) for t in range(env.tasks) for k in range(len(env.code))]
    responses = [tok.encode(env.code[k]) + [tok.eos_token_id] for _ in range(env.tasks) for k in range(len(env.code))]
    with torch.no_grad():
        logp, _ = policy.response_logprobs(prompts, responses)
    return float(logp.view(env.tasks, -1).sum(-1).exp().mean())


def rooms_rollout(policy: PolicyModel, env: RoomsEnv, group_size: int, seed: int) -> list[Episode]:
    """G episodes per task played turn by turn (all live episodes sampled together each turn), recorded
    as the collector records turns: ids, sampling log-probs, shaped reward, own penalty, validity."""
    hf = HFPolicy(policy.model, policy.tokenizer, max_batch_size=128)
    live = [(t, g) for t in range(env.tasks) for g in range(group_size)]
    taken: dict = {key: [] for key in live}
    turns: dict = {key: [] for key in live}
    for turn in range(env.max_turns):
        requests = [
            GenerationRequest(messages=env.messages(t, taken[(t, g)]), sampling=SamplingParams(max_new_tokens=3, temperature=1.0, seed=seed * 100_003 + (t * group_size + g) * 97 + turn))
            for t, g in live
        ]
        still = []
        for (t, g), request, gen in zip(live, requests, hf.generate_sync(requests)):
            door = gen.text.strip()
            valid = door in DOORS
            room = len(taken[(t, g)])
            taken[(t, g)] += [door] if valid else []
            done = len(taken[(t, g)]) == len(env.code)
            won = done and tuple(taken[(t, g)]) == env.code
            penalty = 0.0 if valid else env.penalty
            turns[(t, g)].append(
                Turn(gen.prompt_ids, gen.response_ids, gen.logprobs, door if valid else "", 10.0 * won - penalty, {}, task=f"Task {t}", task_type="rooms",
                     response_text=gen.text, action_valid=valid, penalty=penalty, observation=f"room {room}", terminated=done, messages=request.messages)
            )
            if not done:
                still.append((t, g))
        live = still
    return [
        Episode(turns[(t, g)], group_id=f"t{t}", task_id=str(t), task=f"Task {t}", task_type="rooms", score=float(won), won=won)
        for t in range(env.tasks)
        for g in range(group_size)
        for won in [tuple(taken[(t, g)]) == env.code]
    ]


PLAYS = {DoorEnv: (warm_start, success, rollout), RoomsEnv: (rooms_warm_start, rooms_success, rooms_rollout)}
"""Each toy env's warm start, expected success and rollout, for :func:`train`."""
