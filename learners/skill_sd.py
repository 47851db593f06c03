"""Skill-SD (arXiv 2604.10674): GRPO plus an importance-weighted reverse KL to a skill-conditioned teacher.

Skills condition only the teacher; the student always acts on the plain prompt. The distillation
term is :func:`learners.losses.importance_weighted_reverse_kl` (no gate: every token is pulled
toward the teacher, up or down). Skill-SD keeps its teacher synchronized with the improving
student; here the teacher *is* the current student (scored once per update), the limit of that
synchronization. Skill-SD summarizes the agent's own trajectories into skills; in this gym the
skills come from the shared skill library, as for SDAR, so the two differ only in the loss.
"""
from __future__ import annotations

from dataclasses import dataclass

from learners import losses
from learners.base import Batch, LearnerConfig, PolicyGradientLearner


@dataclass
class SkillSDConfig(LearnerConfig):
    """Skill-SD's distillation settings on top of GRPO's."""

    distill_coef: float = 0.01
    """Weight of the reverse-KL distillation term (we use SDAR's λ for a like-for-like comparison)."""
    max_is_weight: float = 2.0
    """Cap on the importance weight π_θ / π_sampling."""


class SkillSD(PolicyGradientLearner):
    uses_teacher = True

    def loss(self, batch: Batch):
        assert batch.teacher_logp is not None
        c = self.config
        rl, stats = self.rl_terms(batch)
        distill = losses.importance_weighted_reverse_kl(batch.logp, batch.teacher_logp, batch.old_logp, batch.mask, max_weight=c.max_is_weight)
        stats["distill_loss"] = distill.detach()
        return rl + c.distill_coef * distill, stats
