"""Skill-SD (arXiv 2604.10674) as the released SDAR code runs it: GRPO + λ · SDL.

Skills condition only the teacher; the student acts on the plain prompt. The self-distillation
loss (verl/trainer/ppo/skillsd_utils.py ``compute_sdl_loss``) is an on-policy-corrected k3
estimate of KL(π_θ ‖ π_T) on the sampled tokens: :func:`learners.losses.skill_sd_loss`. λ 0.001
and no warm-down (examples/skillsd_trainer/run_*_3b.sh). Here the teacher is the current student
scored once per update; in this gym the skills come from the shared skill library, as for SDAR.
"""
from __future__ import annotations

from dataclasses import dataclass

from learners import losses
from learners.base import Batch, LearnerConfig, PolicyGradientLearner


@dataclass
class SkillSDConfig(LearnerConfig):
    """Skill-SD's distillation settings on top of GRPO's."""

    distill_coef: float = 0.001
    """λ: weight of the self-distillation loss (released ``sdl_lambda``)."""
    max_log_ratio: float = 10.0
    """Cap on log(π_θ / π_old) before exponentiation (ρ ≤ e^10, as released)."""


class SkillSD(PolicyGradientLearner):
    uses_teacher = True

    def loss(self, batch: Batch):
        assert batch.teacher_logp is not None
        c = self.config
        rl, stats = self.rl_terms(batch)
        distill = losses.skill_sd_loss(batch.logp, batch.teacher_logp, batch.old_logp, batch.mask, max_log_ratio=c.max_log_ratio)
        stats["distill_loss"] = distill.detach()
        return rl + c.distill_coef * distill, stats
