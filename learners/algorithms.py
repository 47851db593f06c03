"""The learner table: name -> config, learner class, one-line description.

Adding a learner means one module (its config dataclass and its ``loss``) and one line here.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from learners.base import LearnerConfig, PolicyGradientLearner
from learners.grpo import GRPO, GRPOConfig, SkillGRPO, SkillGRPOConfig
from learners.opsd import OPSD, OPSDConfig
from learners.policy_model import PolicyModel
from learners.rlsd import RLSD, RLSDConfig
from learners.sdar import GRPOOPSD, SDAR, GRPOOPSDConfig, SDARConfig
from learners.skill_sd import SkillSD, SkillSDConfig
from learners.teacher import SkillContext
from sdar_gym.core import ConfigError


@dataclass(frozen=True)
class LearnerEntry:
    name: str
    config_cls: type[LearnerConfig]
    learner_cls: type[PolicyGradientLearner]
    description: str


LEARNERS: dict[str, LearnerEntry] = {
    e.name: e
    for e in [
        LearnerEntry("grpo", GRPOConfig, GRPO, "GRPO: group-normalized outcome advantages, clipped surrogate, k3 KL, entropy bonus."),
        LearnerEntry("skill_grpo", SkillGRPOConfig, SkillGRPO, "Skill-GRPO: GRPO with retrieved skills in the student's own prompt."),
        LearnerEntry("sdar", SDARConfig, SDAR, "SDAR: GRPO + λ · sigmoid-gated self-distillation from the skill-conditioned teacher."),
        LearnerEntry("grpo_opsd", GRPOOPSDConfig, GRPOOPSD, "GRPO+OPSD: SDAR with β = 0, i.e. a constant gate of 0.5."),
        LearnerEntry("opsd", OPSDConfig, OPSD, "OPSD: SDAR's gated self-distillation term alone (policy-gradient weight 0), plus KL and entropy."),
        LearnerEntry("rlsd", RLSDConfig, RLSD, "RLSD: GRPO whose token advantages are rescaled (never re-signed) by the teacher–student ratio."),
        LearnerEntry("skill_sd", SkillSDConfig, SkillSD, "Skill-SD: GRPO + λ · importance-weighted k3 KL to the skill-conditioned teacher."),
    ]
}


def learner_entry(name: str) -> LearnerEntry:
    if name not in LEARNERS:
        raise ConfigError(f"unknown learner {name!r}; known learners: {', '.join(sorted(LEARNERS))}")
    return LEARNERS[name]


def _parse_bool(value: Any) -> bool:
    """``true``/``false`` (also 1/0, yes/no); anything else is an error, not a silent False."""
    text = str(value).strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    raise ValueError(text)


def make_config(name: str, overrides: dict[str, Any] | None = None) -> LearnerConfig:
    """The learner's config with ``overrides`` applied, each checked against its fields."""
    entry = learner_entry(name)
    known = {f.name: f for f in fields(entry.config_cls)}
    cfg = entry.config_cls()
    for key, value in (overrides or {}).items():
        key = key.replace("-", "_")
        if key not in known:
            raise ConfigError(f"learner {name!r} has no setting {key!r}; settings: {', '.join(sorted(known))}")
        default = getattr(cfg, key)
        try:
            value = _parse_bool(value) if isinstance(default, bool) else type(default)(value)
        except (TypeError, ValueError):
            raise ConfigError(f"learner setting {key}={value!r} is not a valid {type(default).__name__}") from None
        setattr(cfg, key, value)
    return cfg


def make_learner(name: str, policy: PolicyModel, skills: SkillContext | None = None, overrides: dict[str, Any] | None = None) -> PolicyGradientLearner:
    return learner_entry(name).learner_cls(make_config(name, overrides), policy, skills)
