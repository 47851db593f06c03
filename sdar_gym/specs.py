"""One entry per env: everything the gym, the rollout and the learners need to know about it.

To add an env, write its package under ``sdar_gym/envs/`` and add one :class:`EnvSpec` to
:data:`ENV_SPECS`. Its gymnasium id is registered from here (``sdar_gym.registration``), the agent
layer reads its prompt and action format from here, ``sdar-gym eval`` its Table 1 columns, the
trainer its skills folder, and ``sdar-gym sft`` its demonstration settings.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sdar_gym import presets
from sdar_gym.agent import templates
from sdar_gym.agent.projection import ActionFormat
from sdar_gym.agent.shaping import RewardShaping


class ScoredEpisode(Protocol):
    """What a breakdown reads of a finished episode (:class:`sdar_gym.rollout.types.Episode` has it)."""

    task_type: str
    won: bool
    score: float


Breakdown = Callable[[list[ScoredEpisode]], dict[str, float]]
"""Finished episodes -> the env's columns of the paper's Table 1 (percentages)."""


@dataclass(frozen=True)
class AgentSpec:
    """Everything env-specific that turns observations into prompts and responses into actions."""

    template: str
    """Prompt template (see :mod:`sdar_gym.agent.templates`)."""
    action_format: ActionFormat
    history_length: int
    """H, the (observation, action) pairs shown: 2 for ALFWorld and WebShop, 4 for Search."""
    shaping: RewardShaping = field(default_factory=RewardShaping)
    """Reward scale (10 for a win) and the invalid-action penalty."""
    observation_limit: int = 2000
    """Characters of each observation kept in the prompt (long pages and passages are cut)."""


def _by_type(episodes: list[ScoredEpisode], value: Callable[[ScoredEpisode], float]) -> dict[str, float]:
    groups: dict[str, list[float]] = defaultdict(list)
    for e in episodes:
        groups[e.task_type].append(value(e))
    return {k: 100.0 * sum(v) / len(v) for k, v in sorted(groups.items())}


def success_per_task_type(episodes: list[ScoredEpisode]) -> dict[str, float]:
    """Success rate (%) per task type, then All: the breakdown of envs that name no other."""
    row = _by_type(episodes, lambda e: float(e.won))
    row["All"] = 100.0 * sum(e.won for e in episodes) / len(episodes)
    return row


def alfworld_breakdown(episodes: list[ScoredEpisode]) -> dict[str, float]:
    """Success rate (%) per task type in the paper's order (Pick … Pick2), then All."""
    from sdar_gym.envs.alfworld.data import TASK_TYPES

    per = _by_type(episodes, lambda e: float(e.won))
    row = {short: per[long] for long, short in TASK_TYPES.items() if long in per}
    row["All"] = 100.0 * sum(e.won for e in episodes) / len(episodes)
    return row


def webshop_breakdown(episodes: list[ScoredEpisode]) -> dict[str, float]:
    """Score: mean final reward × 100; Acc: share of episodes with a full-reward purchase (%)."""
    return {"Score": 100.0 * sum(e.score for e in episodes) / len(episodes), "Acc": 100.0 * sum(e.won for e in episodes) / len(episodes)}


def search_qa_breakdown(episodes: list[ScoredEpisode]) -> dict[str, float]:
    """Exact match (%) per source data set, then the average over sources."""
    row = _by_type(episodes, lambda e: e.score)
    row["Avg"] = sum(row.values()) / len(row)
    return row


@dataclass(frozen=True)
class EnvSpec:
    """One env: its ids, how the agent talks to it, how it is scored, its skills and demonstrations."""

    name: str
    """Short name used by the CLI (``--env alfworld``)."""
    gym_id: str
    """Gymnasium id (``sdar_gym/ALFWorld-v0``)."""
    entry_point: str | Callable[..., Any]
    """``module:Class`` of the env (or a callable returning one), for ``gymnasium.register``."""
    description: str
    agent: AgentSpec
    """Prompt template, action format, history window, penalty and reward scale."""
    breakdown: Breakdown = success_per_task_type
    """The env's Table 1 columns in ``sdar-gym eval``."""
    skills_folder: str | None = None
    """Folder of its built-in skills under ``skills/data/`` (default: the short name)."""
    demo_env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Env arguments the SFT warm start's expert demonstrations use unless ``--env-kwargs`` overrides them."""
    sft_defaults: Mapping[str, Any] = field(default_factory=dict)
    """The built-in tiny policy's SFT settings where this env's differ from ``learners.sft.SFTArgs``' own
    (``games`` and ``epochs``, which suit ALFWorld)."""
    paper_preset: Mapping[str, presets.Setting] = field(default_factory=dict)
    """The released code's settings for this env (setting name -> value and source): ``--preset paper``."""
    eval_env_kwargs: Mapping[str, Any] = field(default_factory=lambda: {"split": "test"})
    """Env arguments (over the run's own) of the held-out tasks ``sdar-gym train`` validates on."""

    @property
    def skills_dir_name(self) -> str:
        return self.skills_folder or self.name


ENV_SPECS: dict[str, EnvSpec] = {
    s.name: s
    for s in [
        EnvSpec(
            name="alfworld",
            gym_id="sdar_gym/ALFWorld-v0",
            entry_point="sdar_gym.envs.alfworld.env:ALFWorldEnv",
            description="ALFWorld text household tasks (six task types), on real or generated games",
            agent=AgentSpec(
                template=templates.ALFWORLD,
                action_format=ActionFormat(tags={"action": "{}"}, pattern=r"[a-z0-9 /,'\-]+", lowercase=True),
                history_length=2,
            ),
            breakdown=alfworld_breakdown,
            # The generated train split (the default game set when no data_dir is given; its planner
            # takes hundredths of a second per game, unlike the real games' minutes) on the fast engine,
            # so a few hundred expert games take about a minute; and the ``explorer`` expert, which
            # searches for objects it has not seen instead of walking straight to them, so its moves
            # follow from the prompt.
            demo_env_kwargs={"engine": "fast", "split": "train", "expert": "explorer", "planner": "search"},
            paper_preset=presets.PAPER_ALFWORLD,
            # the released validation plays the seen split (eval_in_distribution: agent_system/environments/env_manager.py)
            eval_env_kwargs={"split": "valid_seen"},
        ),
        EnvSpec(
            name="webshop",
            gym_id="sdar_gym/WebShop-v0",
            entry_point="sdar_gym.envs.webshop.env:WebShopEnv",
            description="WebShop text shopping (search, choose options, buy), on a generated or the original catalog",
            agent=AgentSpec(
                template=templates.WEBSHOP,
                action_format=ActionFormat(tags={"action": "{}"}, pattern=r"(search|click)\[[^\[\]<>\n]+\]"),
                history_length=2,
            ),
            breakdown=webshop_breakdown,
            paper_preset=presets.PAPER_WEBSHOP,
        ),
        EnvSpec(
            name="search-qa",
            gym_id="sdar_gym/SearchQA-v0",
            entry_point="sdar_gym.envs.search_qa.env:SearchQAEnv",
            description="Multi-turn search and answer (exact match) over a BM25, dense or HTTP retriever",
            agent=AgentSpec(
                template=templates.SEARCH_QA,
                action_format=ActionFormat(tags={"search": "search[{}]", "answer": "answer[{}]"}, pattern=r"(search|answer)\[[^<>\n]+\]"),
                history_length=4,
                shaping=RewardShaping(invalid_penalty=0.01),
            ),
            breakdown=search_qa_breakdown,
            skills_folder="search_qa",
            # its whole generated train split, 8 passes (README, "The built-in tiny policy"): with 200 games x 4
            # it sent one fixed query whatever the question and won 0 of 100 test questions; 500 x 8 won 25
            sft_defaults={"games": 500, "epochs": 8},
            paper_preset=presets.PAPER_SEARCH_QA,
        ),
    ]
}
"""Env short name -> its spec. The one table of envs."""

