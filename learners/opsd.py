"""OPSD: on-policy self-distillation alone, no reward.

The student samples; the same policy, shown the skills, is the teacher; the student minimizes a
sampled-token estimate of the reverse KL(π_θ ‖ π_T) on its own tokens (on-policy distillation as
in Agarwal et al. 2024 / Thinking Machines' OPD, with a self-teacher as in OPSD). We use the
reverse-KL surrogate rather than SDAR's L alone because L's gradient, −g·∇log π_θ, does not
depend on the teacher except through the gate: without the RL term and with β = 0 it would be
plain self-imitation, not distillation. The KL-to-reference and entropy terms are kept.
"""
from __future__ import annotations

from dataclasses import dataclass

from learners import losses
from learners.base import Batch, LearnerConfig, PolicyGradientLearner


@dataclass
class OPSDConfig(LearnerConfig):
    """Distillation-only learner."""

    distill_coef: float = 1.0
    """Weight of the reverse-KL distillation term (the only task signal here)."""
    max_is_weight: float = 2.0
    """Cap on the importance weight π_θ / π_sampling."""


class OPSD(PolicyGradientLearner):
    uses_teacher = True

    def loss(self, batch: Batch):
        assert batch.teacher_logp is not None
        c = self.config
        distill = losses.importance_weighted_reverse_kl(batch.logp, batch.teacher_logp, batch.old_logp, batch.mask, max_weight=c.max_is_weight)
        stats = {"distill_loss": distill.detach()}
        reg, reg_stats = self.regularizers(batch)
        return c.distill_coef * distill + reg, stats | reg_stats
