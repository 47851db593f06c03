"""RLSD, "Self-Distilled RLVR" (arXiv 2604.03128), as the released SDAR code runs it.

The reward decides the *direction* of each update and the self-teacher only its per-token
*magnitude* (verl/trainer/ppo/rlsd_utils.py ``compute_rlsd_token_advantage``):
    w_t = clip(exp(sign(A) · (log π_T − log π_old)), 1 − ε_w, 1 + ε_w)
    Â_t = A · ((1 − λ) + λ · w_t),
with the gap taken on the log-probs fixed before the update, and λ decayed linearly to 0:
λ(k) = λ0 · (1 − k / W) for update k < W, else 0, k counting from 1
(verl/trainer/ppo/rlsd_ray_trainer.py ``_get_rlsd_lambda``). Defaults from
examples/rlsd_trainer/run_*_3b.sh: λ0 0.5, W 100, ε_w 0.2. The rest is GRPO.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from learners import losses
from learners.base import Batch, LearnerConfig, PolicyGradientLearner


@dataclass
class RLSDConfig(LearnerConfig):
    """RLSD: teacher-shaped token advantages with a decaying mix."""

    rlsd_lambda: float = 0.5
    """λ0: the teacher-weighted share of the advantage at the first update."""
    warmdown_steps: int = 100
    """W: updates over which λ decays linearly to 0."""
    weight_clip: float = 0.2
    """ε_w: the token weight is clipped to [1 − ε_w, 1 + ε_w]."""


def rlsd_lambda(lambda0: float, warmdown_steps: int, update: int) -> float:
    """λ at update ``update`` (1-based), as the released ``_get_rlsd_lambda``."""
    return 0.0 if update >= warmdown_steps else lambda0 * (1.0 - update / warmdown_steps)


class RLSD(PolicyGradientLearner):
    uses_teacher = True

    def loss(self, batch: Batch):
        assert batch.teacher_logp is not None
        c = self.config
        lam = rlsd_lambda(c.rlsd_lambda, c.warmdown_steps, self.updates)
        adv = losses.rlsd_token_advantages(batch.advantages, batch.old_logp, batch.teacher_logp, eps_w=c.weight_clip, mix=lam)
        total, stats = self.rl_terms(batch, advantages=adv)
        stats["rlsd_weight_mean"] = (adv.abs().sum() / batch.advantages.abs().sum().clamp(min=1e-8)).detach()
        stats["rlsd_lambda"] = torch.tensor(lam)
        return total, stats
