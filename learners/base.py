"""The Learner protocol, the registry of learners, and the update loop they share.

A learner is a config dataclass plus one ``loss(batch)`` method holding its whole objective
(CleanRL/TRL style: read ``grpo.py`` or ``sdar.py`` top to bottom to see the algorithm). What all
of them share lives here: turning episodes into token samples with GRPO advantages, computing the
no-grad log-probs an objective needs (teacher, reference) once before the update, token-mean
gradient accumulation over micro-batches, and the metrics.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Protocol

import torch

from learners import losses
from learners.policy_model import PolicyModel
from learners.teacher import SkillContext, teacher_prompt_ids
from sdar_gym.core import ConfigError, SdarGymError
from sdar_gym.rollout.types import Episode


class NonFiniteLossError(SdarGymError):
    """A loss term was NaN or inf; the update stopped before the optimizer step that would have used it."""

    def __init__(self, term: str, value: float) -> None:
        super().__init__(f"the loss term {term!r} is {value}; the update stopped before the optimizer step")
        self.term = term


@dataclass
class LearnerConfig:
    """Optimization settings every learner shares. Defaults: the SDAR paper's Appendix C."""

    lr: float = 1e-6
    """AdamW learning rate."""
    weight_decay: float = 0.0
    clip_ratio_low: float = 0.2
    """PPO clip: the ratio is kept above 1 - clip_ratio_low."""
    clip_ratio_high: float = 0.2
    """PPO clip: the ratio is kept below 1 + clip_ratio_high."""
    clip_ratio_c: float = 3.0
    """Dual-clip bound on the loss of negative-advantage tokens."""
    kl_coef: float = 0.01
    """Weight of the k3 KL to the reference (initial) policy; 0 skips the reference pass."""
    entropy_coef: float = 0.001
    """Weight of the entropy bonus (subtracted from the loss)."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip."""
    micro_batch_size: int = 8
    """Turns per forward/backward pass (gradients are accumulated, token-mean exact)."""
    mini_batches: int = 1
    """Optimizer steps per update (the batch of turns is split into this many parts)."""
    epochs: int = 1
    """Passes over the batch per update."""
    adv_eps: float = 1e-6
    """Epsilon in (r - mean) / (std + eps)."""
    temperature: float = 1.0
    """Sampling temperature of the rollout (log-probs are of logits / temperature)."""


@dataclass
class Batch:
    """One micro-batch as flat ``[N]`` token tensors (N = its response tokens)."""

    logp: torch.Tensor
    """Current policy's log-probs, with grad."""
    old_logp: torch.Tensor
    """Sampling log-probs stored by the rollout."""
    advantages: torch.Tensor
    """The episode's group-normalized advantage, repeated over its tokens."""
    entropy: torch.Tensor | None
    ref_logp: torch.Tensor | None
    """Reference policy's log-probs (no grad), when kl_coef > 0."""
    teacher_logp: torch.Tensor | None
    """The same policy's log-probs under the teacher prompt (no grad), for learners with a teacher."""
    mask: torch.Tensor | None = None
    """1.0 for tokens the loss uses, 0.0 for tokens the rollout masked out (None: all count)."""


@dataclass
class Sample:
    """One turn to learn from."""

    prompt_ids: list[int]
    response_ids: list[int]
    old_logprobs: list[float]
    advantage: float
    task: str
    task_type: str
    mask: list[int] | None = None
    """The turn's response mask (None: every token counts)."""
    messages: list[dict[str, str]] | None = None
    """The chat messages the prompt was rendered from, when the rollout kept them."""
    teacher_prompt_ids: list[int] | None = None

    @property
    def n_tokens(self) -> int:
        return len(self.response_ids) if self.mask is None else sum(self.mask)


class Learner(Protocol):
    config: LearnerConfig

    def update(self, episodes: list[Episode]) -> dict[str, float]: ...


class PolicyGradientLearner:
    """Shared machinery; subclasses set the class flags and implement :meth:`loss`."""

    uses_teacher: bool = False
    """Whether :meth:`loss` reads ``batch.teacher_logp`` (needs a skill library)."""
    student_skills: bool = False
    """Whether the rollout shows skill text in the *student's* prompt (Skill-GRPO)."""

    def __init__(self, config: LearnerConfig, policy: PolicyModel, skills: SkillContext | None = None) -> None:
        if self.uses_teacher and skills is None:
            raise ConfigError(f"learner {type(self).__name__} distils from a skill-conditioned teacher: give it a skill library")
        for name in ("micro_batch_size", "mini_batches", "epochs"):
            if getattr(config, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(config, name)}")
        self.config = config
        self.policy = policy
        self.skills = skills
        self.optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=config.lr, weight_decay=config.weight_decay)

    # the objective ------------------------------------------------------------------------
    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def rl_terms(self, batch: Batch, advantages: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """GRPO's loss: clipped surrogate + kl_coef·KL(π‖π_ref) − entropy_coef·H, token-mean."""
        c = self.config
        adv = batch.advantages if advantages is None else advantages
        pg, stats = losses.clipped_policy_loss(batch.logp, batch.old_logp, adv, batch.mask, c.clip_ratio_low, c.clip_ratio_high, c.clip_ratio_c)
        stats["pg_loss"] = pg.detach()
        reg, reg_stats = self.regularizers(batch)
        return pg + reg, stats | reg_stats

    def regularizers(self, batch: Batch) -> tuple[torch.Tensor | float, dict[str, torch.Tensor]]:
        """kl_coef·KL(π‖π_ref) − entropy_coef·H, token-mean; each term only when its input exists."""
        c = self.config
        total: torch.Tensor | float = 0.0
        stats: dict[str, torch.Tensor] = {}
        if batch.ref_logp is not None:
            kl = losses.low_var_kl(batch.logp, batch.ref_logp, batch.mask)
            total = total + c.kl_coef * kl
            stats["kl"] = kl.detach()
        if batch.entropy is not None:
            ent = losses.entropy_bonus(batch.entropy, batch.mask)
            total = total - c.entropy_coef * ent
            stats["entropy"] = ent.detach()
        return total, stats

    # episodes -> samples ------------------------------------------------------------------
    def samples(self, episodes: list[Episode]) -> list[Sample]:
        """Turns of the usable episodes, each with its episode's group-normalized advantage."""
        usable = [e for e in episodes if not e.failed and e.turns]
        if not usable:
            return []
        returns = torch.tensor([e.total_reward for e in usable], dtype=torch.float32)
        adv = losses.grpo_advantages(returns, [e.group_id for e in usable], eps=self.config.adv_eps)
        out = []
        for episode, a in zip(usable, adv.tolist()):
            for t in episode.turns:
                mask = list(getattr(t, "response_mask", None) or []) or None
                if t.response_ids and (mask is None or any(mask)):
                    out.append(Sample(t.prompt_ids, t.response_ids, t.logprobs, a, t.task, t.task_type, mask, getattr(t, "messages", None)))
        if self.uses_teacher:
            assert self.skills is not None
            self.skills.clear()
            for s in out:
                s.teacher_prompt_ids = teacher_prompt_ids(
                    self.policy.tokenizer, s.prompt_ids, self.skills.text(s.task, s.task_type), s.messages, self.skills.with_skills
                )
        return out

    # the update ---------------------------------------------------------------------------
    def _no_grad_logprobs(self, chunk: list[Sample]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Reference and teacher log-probs of one micro-batch, before any parameter changes."""
        ref = teacher = None
        responses = [s.response_ids for s in chunk]
        with torch.no_grad():
            if self.config.kl_coef > 0:
                with self.policy.reference() as ref_model:
                    ref, _ = self.policy.response_logprobs([s.prompt_ids for s in chunk], responses, temperature=self.config.temperature, model=ref_model)
            if self.uses_teacher:
                teacher, _ = self.policy.response_logprobs([s.teacher_prompt_ids for s in chunk], responses, temperature=self.config.temperature)
        return ref, teacher

    def update(self, episodes: list[Episode]) -> dict[str, float]:
        """One policy update on a batch of finished episodes; returns scalar metrics."""
        c = self.config
        start = time.perf_counter()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        samples = self.samples(episodes)
        if not samples:
            return {"train/skipped": 1.0}
        micro = [samples[i : i + c.micro_batch_size] for i in range(0, len(samples), c.micro_batch_size)]
        frozen = [self._no_grad_logprobs(chunk) for chunk in micro]  # computed once, before the update

        sums: dict[str, float] = defaultdict(float)
        n_stat = 0
        self.policy.model.train()
        per_mini = math.ceil(len(micro) / c.mini_batches)
        for _ in range(c.epochs):
            for m0 in range(0, len(micro), per_mini):
                group = list(range(m0, min(m0 + per_mini, len(micro))))
                n_tokens = sum(s.n_tokens for i in group for s in micro[i])
                self.optimizer.zero_grad(set_to_none=True)
                for i in group:
                    chunk = micro[i]
                    batch = self._batch(chunk, *frozen[i])
                    loss, stats = self.loss(batch)
                    _check_finite(loss, stats)
                    weight = sum(s.n_tokens for s in chunk) / n_tokens
                    (loss * weight).backward()
                    sums["loss"] += loss.item() * weight
                    for k, v in stats.items():
                        sums[k] += float(v) * weight
                n_stat += 1
                grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.trainable_parameters(), c.max_grad_norm)
                if not math.isfinite(float(grad_norm)):
                    raise NonFiniteLossError("grad_norm", float(grad_norm))
                sums["grad_norm"] += float(grad_norm)
                self.optimizer.step()
        metrics = {f"train/{k}": v / n_stat for k, v in sums.items()}
        elapsed = time.perf_counter() - start
        n_tok = sum(len(s.response_ids) + len(s.prompt_ids) for s in samples)
        metrics.update(
            {
                "perf/update_s": elapsed,
                "perf/update_tokens_per_s": n_tok * c.epochs / elapsed,
                "train/turns": float(len(samples)),
                "train/response_tokens": float(sum(len(s.response_ids) for s in samples)),
            }
        )
        if torch.cuda.is_available():
            metrics["perf/peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
        return _rename(metrics)

    def _batch(self, chunk: list[Sample], ref: torch.Tensor | None, teacher: torch.Tensor | None) -> Batch:
        dev = self.policy.device
        logp, entropy = self.policy.response_logprobs(
            [s.prompt_ids for s in chunk], [s.response_ids for s in chunk], with_entropy=self.config.entropy_coef > 0, temperature=self.config.temperature
        )
        old = torch.tensor([x for s in chunk for x in s.old_logprobs], dtype=torch.float32, device=dev)
        if old.numel() != logp.numel():
            raise ConfigError("a turn's log-probs do not match its response ids (the rollout must store one log-prob per token)")
        adv = torch.tensor([s.advantage for s in chunk for _ in s.response_ids], dtype=torch.float32, device=dev)
        mask = None
        if any(s.mask is not None for s in chunk):
            mask = torch.tensor([m for s in chunk for m in (s.mask or [1] * len(s.response_ids))], dtype=torch.float32, device=dev)
        return Batch(logp=logp, old_logp=old, advantages=adv, entropy=entropy, ref_logp=ref, teacher_logp=teacher, mask=mask)

    # checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


def _check_finite(loss: torch.Tensor, stats: dict[str, torch.Tensor]) -> None:
    """Raise :class:`NonFiniteLossError` naming the first non-finite term (the total when every term is finite)."""
    if math.isfinite(float(loss.detach())):
        return
    for term, value in stats.items():
        if not math.isfinite(float(value)):
            raise NonFiniteLossError(term, float(value))
    raise NonFiniteLossError("loss", float(loss))


_SDAR_KEYS = {"gate_mean", "gate_active_ratio", "teacher_gap_mean", "distill_loss"}


def _rename(metrics: dict[str, float]) -> dict[str, float]:
    """Put the SDAR gate statistics under ``sdar/`` as the paper's plots name them."""
    return {(f"sdar/{k[6:]}" if k.startswith("train/") and k[6:] in _SDAR_KEYS else k): v for k, v in metrics.items()}


@dataclass(frozen=True)
class LearnerEntry:
    name: str
    config_cls: type[LearnerConfig]
    learner_cls: Callable[..., PolicyGradientLearner]
    description: str


LEARNERS: dict[str, LearnerEntry] = {}


def register_learner(name: str, config_cls: type[LearnerConfig], description: str):
    """Class decorator adding a learner to :data:`LEARNERS` under ``name``."""

    def wrap(cls):
        LEARNERS[name] = LearnerEntry(name, config_cls, cls, description)
        return cls

    return wrap


def learner_entry(name: str) -> LearnerEntry:
    import learners.algorithms  # noqa: F401  (registers every learner)

    if name not in LEARNERS:
        raise ConfigError(f"unknown learner {name!r}; known learners: {', '.join(sorted(LEARNERS))}")
    return LEARNERS[name]


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
            value = type(default)(value) if not isinstance(default, bool) else str(value).lower() in ("1", "true", "yes")
        except (TypeError, ValueError):
            raise ConfigError(f"learner setting {key}={value!r} is not a valid {type(default).__name__}") from None
        setattr(cfg, key, value)
    return cfg


def make_learner(name: str, policy: PolicyModel, skills: SkillContext | None = None, overrides: dict[str, Any] | None = None) -> PolicyGradientLearner:
    return learner_entry(name).learner_cls(make_config(name, overrides), policy, skills)
