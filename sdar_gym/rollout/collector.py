"""The collector: run G rollouts of each task through a pool and a policy, recording tokens.

``mode="async"`` (default): every episode is its own coroutine. An episode holds an env slot,
asks for a generation, steps its env, and asks again; requests from all episodes are batched
into ``policy.generate`` calls as they arrive, so env steps overlap generation for other envs
and there is no barrier between turns.

``mode="lockstep"``: verl-agent's synchronous loop, for comparison. Up to ``pool.num_envs``
episodes run as a wave; each turn generates for every live episode in one batch, then steps all
their envs and waits for the slowest before the next turn.

With the inline pool and a seed, results are deterministic: each request carries its own
sampling seed derived from (seed, episode, turn), independent of how requests were batched.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from sdar_gym.agent import AgentConfig, HistoryWindow, TextAgent
from sdar_gym.core import ConfigError, DataError
from sdar_gym.rollout.pools.base import EnvPool, EnvWorkerError
from sdar_gym.rollout.types import Episode, Generation, GenerationRequest, Policy, SamplingParams, Turn

log = logging.getLogger("sdar_gym.rollout")

SkillFn = Callable[[str, str], "str | None"]
"""(task, task_type) -> skill text for the student prompt, or None (Skill-GRPO / Skill-Prompt)."""


@dataclass(frozen=True)
class Task:
    """What the G rollouts of a group share: the env's reset ``options`` and/or ``seed``."""

    options: dict[str, Any] | None = None
    """Env reset options naming the task, e.g. ``{"task_id": "..."}``."""
    seed: int | None = None
    """Reset seed; envs that pick their task from the seed give every rollout the same task."""

    @classmethod
    def of(cls, task: Task | dict[str, Any] | str | int) -> Task:
        """Accept a Task, reset options (dict), a task id (str) or a reset seed (int)."""
        if isinstance(task, Task):
            found = task
        elif isinstance(task, dict):
            found = cls(options=task)
        elif isinstance(task, str):
            found = cls(options={"task_id": task})
        elif isinstance(task, int) and not isinstance(task, bool):
            found = cls(seed=task)
        else:
            raise ConfigError(f"a task is a Task, reset options (dict), a task id (str) or a seed (int); got {task!r}")
        if found.options is None and found.seed is None:
            raise ConfigError("a task needs reset options or a seed, so that its group shares one game")
        return found


def request_seed(seed: int, episode: int, turn: int) -> int:
    """The sampling seed of one request: a fixed function of (run seed, episode index, turn)."""
    return (seed * 1_000_003 + episode * 10_007 + turn) % (2**31 - 1)


class _Batcher:
    """Gathers single requests from concurrent episodes into ``policy.generate`` batches.

    A batch goes out when it is full, when every running episode is waiting for a generation
    (nothing more can arrive), or ``max_wait_s`` after its first request, whichever comes first.
    The short wait lets episodes whose env steps end a moment apart share one forward pass.
    """

    def __init__(self, policy: Policy, max_batch_size: int, max_wait_s: float) -> None:
        self.policy = policy
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.running = 0
        """Episodes holding an env slot (see :meth:`join` and :meth:`leave`)."""
        self.pending: list[tuple[GenerationRequest, asyncio.Future]] = []
        self._arrived = asyncio.Event()
        self._drainer: asyncio.Task | None = None

    async def submit(self, request: GenerationRequest) -> Generation:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((request, future))
        self._arrived.set()
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    def join(self) -> None:
        """An episode started: one more request may arrive."""
        self.running += 1

    def leave(self) -> None:
        """An episode ended: one fewer request to wait for."""
        self.running -= 1
        self._arrived.set()

    def _ready(self) -> bool:
        return len(self.pending) >= min(self.max_batch_size, max(self.running, 1))

    async def _drain(self) -> None:
        while self.pending:
            deadline = asyncio.get_running_loop().time() + self.max_wait_s
            while not self._ready() and (left := deadline - asyncio.get_running_loop().time()) > 0:
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except asyncio.TimeoutError:
                    break
            batch, self.pending = self.pending[: self.max_batch_size], self.pending[self.max_batch_size :]
            try:
                generations = await _generate(self.policy, [r for r, _ in batch])
            except Exception as e:
                for _, future in batch:
                    if not future.done():  # a cancelled episode no longer waits
                        future.set_exception(e)
                continue
            for (_, future), generation in zip(batch, generations):
                if not future.done():
                    future.set_result(generation)


async def _generate(policy: Policy, requests: list[GenerationRequest]) -> list[Generation]:
    generations = await policy.generate(requests)
    if len(generations) != len(requests):
        raise RuntimeError(f"policy returned {len(generations)} generations for {len(requests)} requests")
    return generations


@dataclass
class _Settings:
    policy: Policy
    pool: EnvPool
    agent: TextAgent
    max_turns: int
    sampling: SamplingParams
    seed: int | None
    skills: SkillFn | None
    mask_truncated: bool


class _Rollout:
    """One episode's state; its methods are the steps both modes drive."""

    def __init__(self, s: _Settings, index: int, task: Task, group_id: str) -> None:
        self.s, self.index, self.task, self.group_id = s, index, task, group_id
        self.slot = -1
        self.turns: list[Turn] = []
        self.history: HistoryWindow = s.agent.new_history()
        self.observation = ""
        self.info: dict[str, Any] = {}
        self.done = False
        self.failure = ""
        self._request: GenerationRequest | None = None

    async def start(self, slot: int) -> None:
        self.slot = slot
        try:
            self.observation, self.info = await self.s.pool.reset(slot, seed=self.task.seed, options=self.task.options)
        except EnvWorkerError as e:
            self._fail(e)

    async def request(self) -> GenerationRequest:
        skill_text = self.s.skills(self.info.get("task", ""), self.info.get("task_type", "")) if self.s.skills else None
        messages = self.s.agent.messages(self.observation, self.info, self.history, skill_text)
        metadata: dict[str, Any] = {
            "episode": self.index,
            "turn": len(self.turns),
            "task_id": self.info.get("task_id", ""),
            "admissible_actions": self.info.get("admissible_actions"),
        }
        if getattr(self.s.policy, "wants_expert_action", False):
            try:
                metadata["expert_action"] = await self.s.pool.expert_action(self.slot)
            except EnvWorkerError as e:
                self._fail(e)
        sampling = self.s.sampling
        if sampling.seed is None and self.s.seed is not None:
            sampling = replace(sampling, seed=request_seed(self.s.seed, self.index, len(self.turns)))
        self._request = GenerationRequest(messages=messages, sampling=sampling, metadata=metadata)
        return self._request

    async def advance(self, generation: Generation) -> None:
        assert self._request is not None
        if generation.error:
            self._fail(RuntimeError(generation.error))
            return
        agent = self.s.agent
        projection = agent.project(generation.text)
        try:
            result = await self.s.pool.step(self.slot, projection.action)
        except EnvWorkerError as e:
            self._fail(e)
            return
        info = dict(result.info)
        won = bool(info.get("won")) and result.terminated
        last = result.terminated or result.truncated or len(self.turns) + 1 >= self.s.max_turns
        masked = self.s.mask_truncated and generation.finish_reason == "length"
        if agent.spec.shaping.progress_reward and "progress" not in info:
            raise ConfigError(f"progress_reward is set, but the {self.s.pool.env_name} env reports no info['progress'] "
                              "(ALFWorld reports it with --env-kwargs progress true)")
        reward = agent.reward(result.reward, won, projection.valid, info)
        self.turns.append(
            Turn(
                prompt_ids=list(generation.prompt_ids),
                response_ids=list(generation.response_ids),
                logprobs=list(generation.logprobs),
                action=projection.action,
                reward=reward,
                info=info,
                task=self.info.get("task", ""),
                task_type=self.info.get("task_type", ""),
                prompt_text=(self._request.messages or [{"content": ""}])[-1]["content"],
                response_text=generation.text,
                action_valid=projection.valid,
                env_reward=result.reward,
                terminated=result.terminated,
                truncated=result.truncated or (last and not result.terminated),
                messages=self._request.messages or [],
                penalty=agent.reward(result.reward, won, True) - reward,
                observation=self.observation,
                response_mask=[0 if masked else 1] * len(generation.response_ids),
            )
        )
        self.history.append(self.observation, projection.action)
        self.observation, self.info = result.observation, info
        self.done = last

    def _fail(self, error: Exception) -> None:
        log.warning("episode %d (group %s) failed: %s", self.index, self.group_id, error)
        self.failure = str(error)
        self.done = True

    def episode(self) -> Episode:
        info = self.info
        return Episode(
            turns=self.turns,
            group_id=self.group_id,
            task_id=info.get("task_id", ""),
            task=info.get("task", ""),
            task_type=info.get("task_type", ""),
            score=float(info.get("score", 0.0)),
            won=bool(info.get("won", False)) and not self.failure,
            failed=bool(self.failure),
            failure_reason=self.failure,
        )


async def _all_or_cancel(coroutines: Iterable[Awaitable[Any]]) -> list[Any]:
    """``gather``, except that when one fails the others are cancelled instead of left running."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _run_async(rollouts: list[_Rollout], s: _Settings, max_batch_size: int, batch_wait_s: float) -> None:
    batcher = _Batcher(s.policy, max_batch_size, batch_wait_s)
    free: asyncio.Queue[int] = asyncio.Queue()
    for slot in range(s.pool.num_envs):
        free.put_nowait(slot)

    async def run(r: _Rollout) -> None:
        slot = await free.get()
        batcher.join()
        try:
            await r.start(slot)
            while not r.done:
                request = await r.request()
                if r.done:  # the worker died while fetching metadata
                    break
                await r.advance(await batcher.submit(request))
        finally:
            batcher.leave()
            free.put_nowait(slot)

    await _all_or_cancel(run(r) for r in rollouts)


async def _run_lockstep(rollouts: list[_Rollout], s: _Settings, max_batch_size: int, batch_wait_s: float) -> None:
    for first in range(0, len(rollouts), s.pool.num_envs):
        wave = rollouts[first : first + s.pool.num_envs]
        await _all_or_cancel(r.start(slot) for slot, r in enumerate(wave))
        while live := [r for r in wave if not r.done]:
            requests = await _all_or_cancel(r.request() for r in live)
            live_requests = [(r, q) for r, q in zip(live, requests) if not r.done]
            generations: list[Generation] = []
            for i in range(0, len(live_requests), max_batch_size):
                generations += await _generate(s.policy, [q for _, q in live_requests[i : i + max_batch_size]])
            await _all_or_cancel(r.advance(g) for (r, _), g in zip(live_requests, generations))


MODES = {"async": _run_async, "lockstep": _run_lockstep}


async def collect(
    policy: Policy,
    pool: EnvPool,
    tasks: Sequence[Task | dict[str, Any] | str | int],
    group_size: int = 1,
    max_turns: int = 50,
    *,
    mode: Literal["async", "lockstep"] = "async",
    sampling: SamplingParams | None = None,
    agent: AgentConfig | TextAgent | None = None,
    skills: SkillFn | None = None,
    seed: int | None = 0,
    max_batch_size: int | None = None,
    mask_truncated: bool = False,
    batch_wait_s: float = 0.05,
    group_prefix: str = "g",
) -> list[Episode]:
    """Roll out ``group_size`` episodes of each task; episodes come back grouped, in task order.

    Args:
        policy: anything with ``async generate(requests) -> generations``.
        pool: an :class:`EnvPool`; its env decides the agent's prompts and projection.
        tasks: one entry per group (see :meth:`Task.of`).
        group_size: G, rollouts per task.
        max_turns: T, turns per episode at most (the last turn is marked truncated).
        mode: ``"async"`` or ``"lockstep"`` (see the module docstring).
        sampling: sampling settings of every request (default: ``SamplingParams()``).
        agent: agent overrides (history length, shaping, ...) or a ready TextAgent.
        skills: optional skill text for the student prompt, by (task, task_type).
        seed: derives a sampling seed per request; None leaves seeding to the policy.
        max_batch_size: most requests per ``generate`` call (default: ``pool.num_envs``).
        mask_truncated: zero the response mask of responses cut by ``max_new_tokens``.
        batch_wait_s: async mode: how long a generation batch may wait for more requests.
        group_prefix: group ids are ``f"{group_prefix}{task_index}"``.

    Episodes whose env worker crashed come back with ``failed=True`` and a ``failure_reason``.
    """
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if group_size < 1 or max_turns < 1:
        raise ConfigError(f"group_size and max_turns must be >= 1, got {group_size} and {max_turns}")
    if max_batch_size is not None and max_batch_size < 1:
        raise ConfigError(f"max_batch_size must be >= 1, got {max_batch_size}")
    parsed = [Task.of(t) for t in tasks]
    text_agent = agent if isinstance(agent, TextAgent) else TextAgent(pool.env_name, agent)
    s = _Settings(policy, pool, text_agent, max_turns, sampling or SamplingParams(), seed, skills, mask_truncated)
    rollouts = [
        _Rollout(s, i * group_size + j, task, f"{group_prefix}{i}") for i, task in enumerate(parsed) for j in range(group_size)
    ]
    if batch_wait_s < 0:
        raise ConfigError(f"batch_wait_s must be >= 0, got {batch_wait_s}")
    await MODES[mode](rollouts, s, max_batch_size or pool.num_envs, batch_wait_s)
    episodes = [r.episode() for r in rollouts]
    _check_groups(episodes)
    return episodes


def _check_groups(episodes: list[Episode]) -> None:
    """Every group must have played one task; otherwise GRPO's group baseline is meaningless."""
    seen: dict[str, str] = {}
    for e in episodes:
        if e.failed or not e.task_id:
            continue
        if seen.setdefault(e.group_id, e.task_id) != e.task_id:
            raise DataError(
                f"rollouts of group {e.group_id} reset to different tasks ({seen[e.group_id]!r} and {e.task_id!r}); "
                "name tasks by reset options (e.g. {'task_id': ...}) or a seed the env honors"
            )


def episode_metrics(episodes: list[Episode], prefix: str = "") -> dict[str, float]:
    """Mean return, success and native score over a batch of episodes, overall (``all/``) and per
    task type, for logs; failed episodes are counted, not scored. Keys start with ``prefix/``.

    ``groups_one_outcome`` is the share of groups whose rollouts all won or all lost: such a group
    gives a group-relative advantage no signal from the outcome, only from per-turn penalties."""

    def key(name: str) -> str:
        return f"{prefix}/{name}" if prefix else name

    done = [e for e in episodes if not e.failed]
    out: dict[str, float] = {key("episodes"): float(len(done)), key("episodes_failed"): float(len(episodes) - len(done))}
    if not done:
        return out
    by_type: dict[str, list[Episode]] = defaultdict(list)
    for e in done:
        by_type[e.task_type].append(e)
    for name, group in [("all", done), *sorted(by_type.items())]:
        out[key(f"{name}/success")] = sum(e.won for e in group) / len(group)
        out[key(f"{name}/reward")] = sum(e.total_reward for e in group) / len(group)
        out[key(f"{name}/score")] = sum(e.score for e in group) / len(group)
    turns = [t for e in done for t in e.turns]
    out[key("turns_mean")] = len(turns) / len(done)
    out[key("invalid_action_ratio")] = sum(not t.action_valid for t in turns) / max(1, len(turns))
    out[key("no_effect_action_ratio")] = sum(t.action_valid and not t.info.get("action_valid", True) for t in turns) / max(1, len(turns))
    outcomes: dict[str, set[bool]] = defaultdict(set)
    for e in done:
        outcomes[e.group_id].add(e.won)
    out[key("groups_one_outcome")] = sum(len(o) == 1 for o in outcomes.values()) / len(outcomes)
    return out
