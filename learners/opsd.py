"""OPSD as the released code runs it: SDAR's gated self-distillation term without the RL term.

examples/opsd_trainer/run_*_3b.sh run ``verl.trainer.main_sdar`` with ``pg_loss_coef=0``: the
loss is λ·L_SDAR (λ 0.01, β 5) plus the KL-to-reference and entropy terms; the reward never
enters the update. See :mod:`learners.sdar` for L.
"""
from __future__ import annotations

from dataclasses import dataclass

from learners.sdar import SDAR, SDARConfig


@dataclass
class OPSDConfig(SDARConfig):
    """SDAR's settings with the policy-gradient weight set to 0."""

    pg_coef: float = 0.0


class OPSD(SDAR):
    pass
