"""The update loop every learner shares.

A learner is a config dataclass plus one ``loss(batch)`` method holding its whole objective
(CleanRL/TRL style: read ``grpo.py`` or ``sdar.py`` top to bottom to see the algorithm), listed in
the static table of :mod:`learners.algorithms`. What all of them share lives here: turning
episodes into token samples with the configured advantage estimator (``learners.advantages``),
building teacher prompts, computing the no-grad log-probs an objective needs (teacher, reference)
once before the update, optimizer steps of ``ppo_mini_batch_size`` turn samples with token-mean
gradient accumulation, the lr warm-up, the teacher–student gap of learners with a teacher, and the
metrics.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from learners import advantages, distributed, losses
from learners.policy_model import PolicyModel, ThreadTuner
from learners.teacher import SkillContext, teacher_template
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
    norm_adv_by_std: bool = True
    """GRPO divides each group's centred scores by their std (released: ``algorithm.norm_adv_by_std_in_grpo:
    True``, verl/trainer/config/ppo_trainer.yaml). False centres only (Dr. GRPO): a group where every
    episode fails then keeps its small invalid-action penalties small instead of scaling them to unit size."""
    temperature: float = 1.0
    """Sampling temperature of the rollout (log-probs are of logits / temperature; 0, greedy, is scored at 1)."""
    advantage: str = "grpo"
    """Advantage estimator (:data:`learners.advantages.ESTIMATORS`): grpo (per turn, the released
    default), grpo_episode, gigpo."""
    gigpo_mode: str = "mean_norm"
    """GiGPO normalization, mean_norm or mean_std_norm (released ppo_trainer.yaml default: mean_norm)."""
    gigpo_step_weight: float = 1.0
    """GiGPO's weight of the step-level advantage (released ppo_trainer.yaml: 1.0)."""
    gigpo_gamma: float = 1.0
    """GiGPO's discount of step returns (released ppo_trainer.yaml algorithm.gamma: 1.0)."""
    teacher_template: str = "official"
    """How the teacher prompt is built (:data:`learners.teacher.TEACHER_TEMPLATES`): official, in_message."""
    max_prompt_length: int = 2048
    """Teacher prompts longer than this are left-truncated (official template; released ALFWorld: 2048)."""
    ppo_mini_batch_size: int = 0
    """Turn samples per optimizer step (released: 256, WebShop 64); 0 uses ``mini_batches``."""
    lr_warmup_steps: int = 0
    """Updates over which the lr rises linearly from 0 (verl's constant schedule with warm-up)."""
    demo_coef: float = 0.0
    """Weight of a supervised loss (token-mean NLL) on expert demonstration turns added at every optimizer
    step, as PPO-ptx adds its pretraining loss (Ouyang et al., 2022): RL moves the policy where its rewards
    agree while the demonstrations hold it near its warm start's imitation elsewhere. sdar-gym's own: the
    released code has no such term (0); the trainer supplies the demonstrations (``--demo-games``)."""
    demo_batch: int = 8
    """Demonstration turns in that loss per optimizer step and process (each process draws its own)."""


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


TEACHER_GAP = "sdar/teacher_gap_mean"
"""Metric of every learner with a teacher: token-mean log π_T − log π_θ of the sampled tokens
(positive: the skill-conditioned teacher endorses what the student sampled). The paper plots it
under SDAR's name."""


class PolicyGradientLearner:
    """Shared machinery; subclasses set the class flags and implement :meth:`loss`.

    :meth:`loss` returns the loss and its statistics; a statistic named without a ``/`` is logged
    as ``train/<name>``, one with a ``/`` (e.g. ``sdar/gate_mean``) under its own name.
    """

    uses_teacher: bool = False
    """Whether :meth:`loss` reads ``batch.teacher_logp`` (needs a skill library)."""
    student_skills: bool = False
    """Whether the rollout shows skill text in the *student's* prompt (Skill-GRPO)."""

    def __init__(self, config: LearnerConfig, policy: PolicyModel, skills: SkillContext | None = None) -> None:
        if self.uses_teacher and skills is None:
            raise ConfigError(f"learner {type(self).__name__} distils from a skill-conditioned teacher: give it a skill library")
        if not 0.0 <= config.lr < math.inf:
            raise ConfigError(f"lr must be a finite number >= 0, got {config.lr}")
        for name in ("micro_batch_size", "mini_batches", "epochs"):
            if getattr(config, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(config, name)}")
        if config.ppo_mini_batch_size < 0 or config.lr_warmup_steps < 0:
            raise ConfigError("ppo_mini_batch_size and lr_warmup_steps must be >= 0")
        if not 0.0 <= config.demo_coef < math.inf or config.demo_batch < 1:
            raise ConfigError(f"demo_coef must be a finite number >= 0 and demo_batch at least 1, got {config.demo_coef} and {config.demo_batch}")
        self.estimator = advantages.estimator(config.advantage)
        self.teacher_template = teacher_template(config.teacher_template)
        if config.max_prompt_length < 1:
            raise ConfigError(f"max_prompt_length must be at least 1, got {config.max_prompt_length}")
        self.teacher_truncated = 0
        """Teacher prompts left-truncated at max_prompt_length in the last update."""
        self.thread_tuners: dict[str, ThreadTuner] = {}
        """Set by :meth:`tune_threads`; empty: the update runs on the caller's torch thread count."""
        self.config = config
        self.policy = policy
        self.skills = skills
        self.dp = distributed.current()
        """Data-parallel engine and collectives (identity in one process): see :mod:`learners.distributed`."""
        optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=config.lr, weight_decay=config.weight_decay)
        # DDP / FSDP / ZeRO-3 from the launch
        policy.scorer, self.optimizer = self.dp.prepare(policy.scorer, optimizer, config.micro_batch_size, config.max_grad_norm)
        warmup = config.lr_warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda n: min(n / warmup, 1.0) if warmup else 1.0)
        self.updates = 0
        """Policy updates done (RLSD's λ schedule and the lr warm-up count them)."""
        self.demonstrations: list[tuple[list[int], list[int]]] = []
        """(prompt ids, response ids) of expert turns, for the ``demo_coef`` loss (set by the trainer)."""

    # the objective ------------------------------------------------------------------------
    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def rl_terms(self, batch: Batch, advantages: torch.Tensor | None = None, pg_coef: float = 1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """GRPO's loss: pg_coef·clipped surrogate + kl_coef·KL(π‖π_ref) − entropy_coef·H, token-mean.

        ``pg_coef`` is the released actor's ``pg_loss_coef`` (verl/workers/actor/dp_actor.py; 0 for OPSD).
        """
        c = self.config
        adv = batch.advantages if advantages is None else advantages
        pg, stats = losses.clipped_policy_loss(batch.logp, batch.old_logp, adv, batch.mask, c.clip_ratio_low, c.clip_ratio_high, c.clip_ratio_c)
        stats["pg_loss"] = pg.detach()
        reg, reg_stats = self.regularizers(batch)
        return pg_coef * pg + reg, stats | reg_stats

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
        """Turns of the usable episodes, each with its advantage from the configured estimator."""
        usable = [e for e in episodes if not e.failed and e.turns]
        if not usable:
            return []
        c = self.config
        groups = advantages.group_episodes(usable)
        settings = advantages.AdvantageSettings(
            eps=c.adv_eps, norm_by_std=c.norm_adv_by_std, gigpo_mode=c.gigpo_mode, gigpo_step_weight=c.gigpo_step_weight, gigpo_gamma=c.gigpo_gamma
        )
        out = []
        for group, group_adv in zip(groups, self.estimator(groups, settings)):
            for episode, turn_adv in zip(group, group_adv):
                for t, a in zip(episode.turns, turn_adv):
                    mask = list(getattr(t, "response_mask", None) or []) or None
                    if t.response_ids and (mask is None or any(mask)):
                        out.append(Sample(t.prompt_ids, t.response_ids, t.logprobs, a, t.task, t.task_type, mask, getattr(t, "messages", None)))
        if self.uses_teacher:
            assert self.skills is not None
            self.skills.clear()
            self.teacher_truncated = 0
            for s in out:
                s.teacher_prompt_ids, truncated = self.teacher_template(
                    self.policy.tokenizer, s.prompt_ids, self.skills.text(s.task, s.task_type), s.messages, self.skills.with_skills, c.max_prompt_length
                )
                self.teacher_truncated += truncated
        return out

    # the update ---------------------------------------------------------------------------
    def tune_threads(self, counts: Sequence[int]) -> None:
        """Run the update's passes on CPU thread counts picked by timing them (:class:`ThreadTuner`): one
        tuner for the no-grad scoring passes and one for the gradient micro-batches, whose costs per token
        differ. Each pass gives the caller's count (the rollout's) back."""
        self.thread_tuners = {"score": ThreadTuner(counts), "train": ThreadTuner(counts)}

    def _threads(self, phase: str, work: float):
        tuner = self.thread_tuners.get(phase)
        return tuner.step(work) if tuner and work else contextlib.nullcontext()  # no work (an idle rank's pass): not timed

    def _no_grad_logprobs(self, samples: list[Sample], prompts: Callable[[Sample], list[int]], model=None) -> list[torch.Tensor]:
        """Log-probs of every sample's response under ``prompts(sample)``, without grad, before any update.

        Samples are scored in micro-batches of similar total length (sorted), so a long teacher
        prompt does not pad a batch of short ones; the results come back in ``samples`` order.
        """
        order = sorted(range(len(samples)), key=lambda i: len(prompts(samples[i])) + len(samples[i].response_ids))
        out: list[torch.Tensor] = [torch.empty(0)] * len(samples)
        mbs = self.config.micro_batch_size
        n_batches = math.ceil(len(order) / mbs)
        with torch.no_grad():
            for _ in range(int(self.dp.max(n_batches)) - n_batches if self.dp.sharded else 0):
                self._idle_loss(model)  # a sharded engine gathers weights in every forward: each process runs as many
            for k in range(0, len(order), mbs):
                idx = order[k : k + mbs]
                with self._threads("score", sum(len(prompts(samples[i])) + len(samples[i].response_ids) for i in idx)):
                    lp, _ = self.policy.response_logprobs(
                        [prompts(samples[i]) for i in idx], [samples[i].response_ids for i in idx], temperature=self.config.temperature, model=model
                    )
                for i, part in zip(idx, lp.split([len(samples[i].response_ids) for i in idx])):
                    out[i] = part
        return out

    def _frozen(self, samples: list[Sample]) -> tuple[list[torch.Tensor] | None, list[torch.Tensor] | None]:
        """Reference and teacher log-probs of every sample (each only when the objective needs it)."""
        ref = teacher = None
        if self.config.kl_coef > 0:
            with self.policy.reference() as ref_model:
                ref = self._no_grad_logprobs(samples, lambda s: s.prompt_ids, ref_model)
        if self.uses_teacher:
            teacher = self._no_grad_logprobs(samples, lambda s: s.teacher_prompt_ids)
        return ref, teacher

    def update(self, episodes: list[Episode]) -> dict[str, float]:
        """One policy update on a batch of finished episodes; returns scalar metrics."""
        c = self.config
        start = time.perf_counter()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        samples = self.samples(episodes)  # this process's share of the batch (all of it with one process)
        if not self.dp.sum(len(samples)):
            return {"train/skipped": 1.0}
        if c.demo_coef and not self.demonstrations:
            raise ConfigError("demo_coef > 0 needs expert demonstrations: the trainer loads them (--demo-games), or set learner.demonstrations")
        minis = self._mini_batches(samples)
        micro = [chunk for mini in minis for chunk in mini]
        ref_all, teacher_all = self._frozen(samples)  # computed once, before the update
        position = {id(s): i for i, s in enumerate(samples)}

        def gather(values: list[torch.Tensor] | None, chunk: list[Sample]) -> torch.Tensor | None:
            return None if values is None else torch.cat([values[position[id(s)]] for s in chunk])

        frozen = [(gather(ref_all, chunk), gather(teacher_all, chunk)) for chunk in micro]

        sums: dict[str, float] = defaultdict(float)
        n_stat = 0
        self.policy.model.train()
        bounds = list(itertools.accumulate(len(mini) for mini in minis))
        self.updates += 1
        for epoch in range(c.epochs):
            for m in range(int(self.dp.max(len(minis)))):  # the same number of optimizer steps on every process
                group = list(range(bounds[m - 1] if m else 0, bounds[m])) if m < len(minis) else []
                n_tokens = self.dp.sum(sum(s.n_tokens for i in group for s in micro[i]))  # global: exact token-mean
                if not n_tokens:
                    continue
                self.optimizer.zero_grad(set_to_none=True)
                n_micro = int(self.dp.max(len(group)))  # every process joins each gradient sync, even with fewer micro-batches
                for j in range(n_micro):
                    chunk = micro[group[j]] if j < len(group) else []
                    with self._threads("train", sum(len(s.prompt_ids) + len(s.response_ids) for s in chunk)):
                        if chunk:
                            batch = self._batch(chunk, *frozen[group[j]])
                            loss, stats = self.loss(batch)
                            _check_finite(loss, stats)
                            if batch.teacher_logp is not None:
                                stats[TEACHER_GAP] = losses.masked_mean(batch.teacher_logp - batch.logp.detach(), batch.mask).detach()
                            weight = sum(s.n_tokens for s in chunk) / n_tokens
                            sums["loss"] += loss.item() * weight
                            for k, v in stats.items():
                                sums[k] += float(v) * weight
                        else:
                            loss, weight = self._idle_loss(), 0.0
                        # the engine averages gradients over processes; the weights sum to 1 over all of them
                        loss = loss * weight * self.dp.world_size
                        if c.demo_coef and j == n_micro - 1:  # once per optimizer step on every process, averaged by the engine
                            demo = self._demo_nll(f"{self.updates}/{epoch}/{m}/{self.dp.rank}")
                            _check_finite(demo, {"demo_nll": demo.detach()})
                            sums["demo_nll"] += demo.item()
                            loss = loss + c.demo_coef * demo
                        self.dp.backward(loss, self.policy.scorer, sync=j == n_micro - 1)
                n_stat += 1
                grad_norm = self.dp.clip_grad_norm_(self.policy.scorer, c.max_grad_norm)
                if not math.isfinite(grad_norm):
                    raise NonFiniteLossError("grad_norm", grad_norm)
                sums["grad_norm"] += grad_norm
                self.optimizer.step()
        metrics = {(k if "/" in k else f"train/{k}"): v / max(n_stat, 1) for k, v in sums.items()}
        metrics.update({f"perf/{phase}_threads": float(t.chosen[-1]) for phase, t in self.thread_tuners.items() if t.chosen})
        metrics["train/lr"] = self.scheduler.get_last_lr()[0]
        metrics["train/optimizer_steps"] = float(n_stat)
        self.scheduler.step()
        elapsed = time.perf_counter() - start
        n_tok = sum(len(s.response_ids) + len(s.prompt_ids) for s in samples)
        metrics.update(
            {
                "perf/update_s": elapsed,
                "perf/update_tokens_per_s": n_tok * c.epochs / elapsed,
                "train/turns": float(len(samples)),
                "teacher/truncated_prompts": float(self.teacher_truncated),
                "train/response_tokens": float(sum(len(s.response_ids) for s in samples)),
            }
        )
        if torch.cuda.is_available():
            metrics["perf/peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
        return metrics

    def _mini_batches(self, samples: list[Sample]) -> list[list[list[Sample]]]:
        """Optimizer steps of one epoch, each a list of micro-batches.

        With ``ppo_mini_batch_size`` each step takes that many turn samples, in order (verl's
        ``batch.split(ppo_mini_batch_size)``); otherwise the samples are split into ``mini_batches``
        equal runs of micro-batches. Within a step, the micro-batches group samples of similar length,
        so little of a padded batch is padding (verl groups by length too, with ``use_dynamic_bsz``); the
        step's gradient is the same, its loss being a token mean over the whole step.
        """
        c = self.config
        size = c.ppo_mini_batch_size or c.micro_batch_size * math.ceil(math.ceil(len(samples) / c.micro_batch_size) / c.mini_batches)
        return [self._micro_batches(samples[i : i + size]) for i in range(0, len(samples), size)]

    def _micro_batches(self, mini: list[Sample]) -> list[list[Sample]]:
        by_length = sorted(mini, key=lambda s: len(s.prompt_ids) + len(s.response_ids))
        return [by_length[i : i + self.config.micro_batch_size] for i in range(0, len(by_length), self.config.micro_batch_size)]

    def _demo_nll(self, draw: str) -> torch.Tensor:
        """Token-mean NLL of ``demo_batch`` demonstration turns, drawn by a seed fixed by ``draw`` (the update,
        epoch, optimizer step and rank), so that a resumed run draws the same turns."""
        from learners.sft import sft_loss

        turns = random.Random(draw).sample(self.demonstrations, min(self.config.demo_batch, len(self.demonstrations)))
        return sft_loss(self.policy, turns, prompt_weight=0.0)

    def _idle_loss(self, model=None) -> torch.Tensor:
        """A zero loss through the policy, for a process with no micro-batch left in an optimizer step."""
        pad = self.policy.tokenizer.pad_token_id or 0
        return self.policy.response_logprobs([[pad]], [[pad]], model=model)[0].sum() * 0.0

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
        """Optimizer (gathered from the shards under FSDP: every process must call this; under DeepSpeed
        in the engine state it saves itself), schedule, update count."""
        optimizer = self.dp.optimizer_state(self.policy.scorer, self.optimizer)
        return {"optimizer": optimizer, "scheduler": self.scheduler.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dp.load_optimizer_state(self.policy.scorer, self.optimizer, state["optimizer"])
        if "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        self.updates = int(state.get("updates", 0))


def _check_finite(loss: torch.Tensor, stats: dict[str, torch.Tensor]) -> None:
    """Raise :class:`NonFiniteLossError` naming the first non-finite term (the total when every term is finite)."""
    if math.isfinite(float(loss.detach())):
        return
    for term, value in stats.items():
        if not math.isfinite(float(value)):
            raise NonFiniteLossError(term, float(value))
    raise NonFiniteLossError("loss", float(loss))
