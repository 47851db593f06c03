"""RLSD, "Self-Distilled RLVR" (arXiv 2604.03128), as a baseline of the SDAR paper.

The reward decides the *direction* of each update and the self-teacher only its per-token
*magnitude*: the GRPO advantage A of a token is rescaled by
    w_t = clip(exp(sign(A) · (log π_T − log π_θ)), 1 − ε_w, 1 + ε_w)   (detached)
and mixed as A · ((1 − mix) + mix · w_t). The rest is GRPO. Our source for the form of w_t is the
paper's abstract and a public reimplementation of it; ε_w and mix are our defaults, not the
paper's (which we could not read in full here).
"""
from __future__ import annotations

from dataclasses import dataclass

from learners import losses
from learners.base import Batch, LearnerConfig, PolicyGradientLearner


@dataclass
class RLSDConfig(LearnerConfig):
    """RLSD: teacher-shaped token advantages."""

    weight_clip: float = 0.2
    """ε_w: the token weight is clipped to [1 − ε_w, 1 + ε_w]."""
    mix: float = 1.0
    """Share of the advantage that is teacher-weighted (0 recovers GRPO)."""


class RLSD(PolicyGradientLearner):
    uses_teacher = True

    def loss(self, batch: Batch):
        assert batch.teacher_logp is not None
        c = self.config
        adv = losses.rlsd_token_advantages(batch.advantages, batch.logp, batch.teacher_logp, eps_w=c.weight_clip, mix=c.mix)
        total, stats = self.rl_terms(batch, advantages=adv)
        stats["rlsd_weight_mean"] = (adv.abs().sum() / batch.advantages.abs().sum().clamp(min=1e-8)).detach()
        return total, stats
