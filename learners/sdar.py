"""SDAR (arXiv 2605.15155): GRPO plus a gated on-policy self-distillation term.

The teacher is the current policy shown the student's prompt plus skills retrieved for the task;
its log-probs of the sampled response tokens are computed once, without grad, before the update.
    total = pg_coef · PG + KL + entropy terms + λ · L,   L = token-mean( g · (log π_T − log π_θ) ),
    g = sg(σ(β · (log π_T − sg(log π_θ)))).
The gate strengthens distillation on tokens the teacher endorses (positive gap) and softly
attenuates teacher rejections (negative gap). See :func:`learners.losses.sdar_gated_loss` for why
``+λ·L`` moves the student toward the teacher. Defaults from the released scripts
(examples/sdar_trainer/run_*_3b.sh: sdar_coef 0.01, gate_beta 5.0). GRPO+OPSD is the same with
β = 0 (examples/grpo_opsd_trainer); OPSD is the same with pg_coef = 0 (examples/opsd_trainer,
``pg_loss_coef=0``): the gated term alone, plus KL and entropy.
"""
from __future__ import annotations

from dataclasses import dataclass

from learners import losses
from learners.base import Batch, LearnerConfig, PolicyGradientLearner


SDAR_METRICS = ("gate_mean", "gate_active_ratio")
"""Gate statistics logged as ``sdar/<name>``, as the paper's plots name them (with ``sdar/distill_loss``;
the teacher gap, ``sdar/teacher_gap_mean``, is logged by the shared update for every learner with a teacher)."""


@dataclass
class SDARConfig(LearnerConfig):
    """SDAR with the released scripts' defaults."""

    distill_coef: float = 0.01
    """λ: weight of the gated distillation term."""
    gate_beta: float = 5.0
    """β: sharpness of the sigmoid gate on the teacher–student gap."""
    pg_coef: float = 1.0
    """Weight of the clipped policy-gradient term (the released ``pg_loss_coef``)."""


class SDAR(PolicyGradientLearner):
    uses_teacher = True

    def loss(self, batch: Batch):
        assert batch.teacher_logp is not None
        c = self.config
        rl, stats = self.rl_terms(batch, pg_coef=c.pg_coef)
        distill, gate_stats = losses.sdar_gated_loss(batch.logp, batch.teacher_logp, batch.mask, beta=c.gate_beta)
        stats.update({f"sdar/{k}": gate_stats[k] for k in SDAR_METRICS})
        stats["sdar/distill_loss"] = distill.detach()
        return rl + c.distill_coef * distill, stats


@dataclass
class GRPOOPSDConfig(SDARConfig):
    """Naive GRPO+OPSD: SDAR's objective with an ungated (β = 0, constant 0.5) distillation term."""

    gate_beta: float = 0.0


class GRPOOPSD(SDAR):
    pass
