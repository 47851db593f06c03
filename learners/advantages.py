"""Advantage estimators: episodes grouped by task -> one advantage per turn sample.

Every estimator is a pure function ``(groups, settings) -> advantages`` where ``groups`` holds the
finished episodes of each task (the G rollouts of one group) and the result holds, per group, per
episode, one float per turn. The learner repeats a turn's advantage over its response tokens. The
registry :data:`ESTIMATORS` is what ``--advantage NAME`` selects; each estimator composes with
every learner.

A turn's score, as the released SDAR code (a verl-agent fork) computes it:
    score = episode task reward − this turn's own invalid-action penalty
(``agent_system/reward_manager/episode.py`` puts the episode's summed env reward on every turn
sample; ``verl/trainer/ppo/ray_trainer.py`` ``apply_invalid_action_penalty`` then subtracts the
penalty of that turn only). :class:`sdar_gym.rollout.types.Turn` keeps both parts explicit:
``reward + penalty`` is the turn's task reward and ``penalty`` its own penalty.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from learners import losses
from sdar_gym.core import ConfigError
from sdar_gym.rollout.types import Episode, Turn

Groups = Sequence[Sequence[Episode]]
Advantages = list[list[list[float]]]
"""advantages[group][episode][turn]."""


@dataclass(frozen=True)
class AdvantageSettings:
    """The estimators' knobs (fields of every learner config carry them)."""

    eps: float = 1e-6
    """Epsilon in (s − mean) / (std + eps)."""
    norm_by_std: bool = True
    """GRPO's division by the group's std (``grpo``, ``grpo_episode``); False centres only (Dr. GRPO).
    Released default: ``algorithm.norm_adv_by_std_in_grpo: True`` (verl/trainer/config/ppo_trainer.yaml)."""
    gigpo_mode: str = "mean_norm"
    """GiGPO normalization: ``mean_norm`` (s − mean) or ``mean_std_norm`` ((s − mean)/(std + eps)).
    Default from verl/trainer/config/ppo_trainer.yaml (algorithm.gigpo.mode)."""
    gigpo_step_weight: float = 1.0
    """w in A = A_episode + w·A_step (ppo_trainer.yaml algorithm.gigpo.step_advantage_w)."""
    gigpo_gamma: float = 1.0
    """Discount of the step-level returns (ppo_trainer.yaml algorithm.gamma)."""


def turn_score(episode: Episode, turn: Turn) -> float:
    """The released code's GRPO score of one turn sample: episode task reward − the turn's own penalty."""
    return episode.task_reward - turn.penalty


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """verl's group statistics: a group of one has mean 0 and std 1; std is the unbiased (n − 1) one."""
    if len(values) == 1:
        return 0.0, 1.0
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _cross_step_norm(group: Sequence[Episode], eps: float, use_std: bool = True) -> list[list[float]]:
    """Each turn's :func:`turn_score` normalized over all turn samples of ``group``: (s − mean)/(std + eps), or s − mean."""
    scores = [[turn_score(e, t) for t in e.turns] for e in group]
    mean, std = _mean_std([s for ep in scores for s in ep])
    return [[(s - mean) / (std + eps) if use_std else s - mean for s in ep] for ep in scores]


def grpo(groups: Groups, settings: AdvantageSettings) -> Advantages:
    """Per-turn GRPO with statistics across steps (the released default).

    verl's ``compute_grpo_outcome_advantage`` with ``compute_mean_std_cross_steps=True``
    (verl/trainer/ppo/core_algos.py): mean and std are taken over *all turn samples* of the group,
    A = (score − mean) / (std + eps), or score − mean without ``norm_by_std``.
    """
    return [_cross_step_norm(group, settings.eps, settings.norm_by_std) for group in groups]


def grpo_episode(groups: Groups, settings: AdvantageSettings) -> Advantages:
    """Episode-level GRPO (sdar-gym's former estimator): each episode's shaped return (all its
    penalties summed), normalized over the group's episodes by :func:`learners.losses.grpo_advantages`
    and shared by all its turns; a group of one, or of equal returns, gets 0."""
    out: Advantages = []
    for group in groups:
        returns = torch.tensor([e.total_reward for e in group], dtype=torch.float32)
        adv = losses.grpo_advantages(returns, [0] * len(group), eps=settings.eps, normalize_std=settings.norm_by_std).tolist()
        out.append([[a] * len(e.turns) for a, e in zip(adv, group)])
    return out


def _discounted_returns(rewards: Sequence[float], gamma: float) -> list[float]:
    out, running = [0.0] * len(rewards), 0.0
    for i in reversed(range(len(rewards))):
        running = rewards[i] + gamma * running
        out[i] = running
    return out


def gigpo(groups: Groups, settings: AdvantageSettings) -> Advantages:
    """GiGPO (Feng et al. 2025; gigpo/core_gigpo.py of the released code): A = A_episode + w·A_step.

    - A_episode: the per-turn cross-step group normalization of :func:`grpo` (``mean_norm``: no std).
    - A_step: within each task group, turns whose anchor observation is identical form a step
      group; a turn's step score is the discounted return of the task rewards from that turn on,
      minus the turn's own penalty; it is normalized within its step group (a step group of one
      gets 0: its mean is its own score).
    """
    if settings.gigpo_mode not in ("mean_norm", "mean_std_norm"):
        raise ConfigError(f"unknown gigpo_mode {settings.gigpo_mode!r}; known: mean_norm, mean_std_norm")
    use_std = settings.gigpo_mode == "mean_std_norm"
    out: Advantages = []
    for group in groups:
        episode_adv = _cross_step_norm(group, settings.eps, use_std)

        step_scores = []
        for e in group:
            returns = _discounted_returns([t.reward + t.penalty for t in e.turns], settings.gigpo_gamma)
            step_scores.append([g - t.penalty for g, t in zip(returns, e.turns)])
        anchors: dict[str, list[float]] = {}
        for e, ep in zip(group, step_scores):
            for t, s in zip(e.turns, ep):
                anchors.setdefault(t.observation, []).append(s)
        stats = {}
        for key, values in anchors.items():
            m = sum(values) / len(values)
            sd = 1.0 if len(values) == 1 else math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
            stats[key] = (m, sd)

        def step_adv(t: Turn, s: float) -> float:
            m, sd = stats[t.observation]
            return (s - m) / (sd + settings.eps) if use_std else s - m

        out.append(
            [
                [a + settings.gigpo_step_weight * step_adv(t, s) for a, t, s in zip(ep_adv, e.turns, ep)]
                for ep_adv, e, ep in zip(episode_adv, group, step_scores)
            ]
        )
    return out


ESTIMATORS: dict[str, Callable[[Groups, AdvantageSettings], Advantages]] = {
    "grpo": grpo,
    "grpo_episode": grpo_episode,
    "gigpo": gigpo,
}


def estimator(name: str) -> Callable[[Groups, AdvantageSettings], Advantages]:
    """The registered estimator ``name``, with a clear error listing the known ones."""
    if name not in ESTIMATORS:
        raise ConfigError(f"unknown advantage estimator {name!r}; known: {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name]


def group_episodes(episodes: Sequence[Episode]) -> list[list[Episode]]:
    """Episodes grouped by ``group_id``, in order of first appearance."""
    groups: dict[str, list[Episode]] = {}
    for e in episodes:
        groups.setdefault(e.group_id, []).append(e)
    return list(groups.values())
