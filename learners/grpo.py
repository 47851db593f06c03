"""GRPO (Shao et al. 2024, DeepSeekMath) for multi-turn agents, and Skill-GRPO.

Each turn is a sample whose advantage comes from the configured estimator (by default the released
code's per-turn GRPO: the episode's reward minus the turn's own penalty, normalized over all turn
samples of the group of G rollouts of the same task). The loss, token-mean over response tokens:
    clipped surrogate (dual clip)  +  kl_coef · k3-KL to the initial policy  −  entropy_coef · H.
Skill-GRPO is the same objective with retrieved skill text in front of the *student's* prompt at
rollout time, under the released header (verl/trainer/main_skill_grpo.py): skills without distillation.
"""
from __future__ import annotations

from dataclasses import dataclass

from learners.base import Batch, LearnerConfig, PolicyGradientLearner


@dataclass
class GRPOConfig(LearnerConfig):
    """GRPO with the paper's Appendix C defaults."""


class GRPO(PolicyGradientLearner):
    def loss(self, batch: Batch):
        return self.rl_terms(batch)


@dataclass
class SkillGRPOConfig(LearnerConfig):
    """Skill-GRPO: GRPO whose rollouts show retrieved skills in the student prompt."""


class SkillGRPO(GRPO):
    student_skills = True
