"""The learners' losses, as pure functions on tensors.

Shapes: token tensors are ``[N]`` (response tokens of a batch, flattened) or ``[B, T]`` with a
``mask`` of the same shape marking response tokens; every reduction is a *token mean* over the
mask, the aggregation the paper's verl-agent code uses (``loss_agg_mode="token-mean"``).
Nothing here touches a model: log-probs come in, scalars and per-token tensors come out, so each
function is unit-tested against a hand-computed reference (``tests/test_losses.py``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from sdar_gym.rollout.types import logprob_temperature


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Token mean of ``x`` over ``mask`` (all tokens when ``mask`` is None); 0 for an empty mask."""
    if mask is None:
        return x.mean() if x.numel() else x.sum()
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def grpo_advantages(rewards: torch.Tensor, group_ids: Sequence, eps: float = 1e-6, normalize_std: bool = True) -> torch.Tensor:
    """GRPO's outcome advantage: each reward normalized within its group, (r - mean) / (std + eps).

    ``std`` is the unbiased sample standard deviation, as in DeepSeekMath's GRPO and verl's
    ``compute_grpo_outcome_advantage``; a group of one gets mean 0, std 1 (advantage 0).
    ``normalize_std=False`` gives Dr.GRPO's mean-centering only.
    """
    if rewards.dim() != 1 or len(group_ids) != rewards.numel():
        raise ValueError(f"rewards must be 1-D with one group id each, got {tuple(rewards.shape)} and {len(group_ids)} ids")
    out = torch.empty_like(rewards, dtype=torch.float32)
    index: dict = {}
    for i, g in enumerate(group_ids):
        index.setdefault(g, []).append(i)
    for members in index.values():
        idx = torch.tensor(members, device=rewards.device)
        r = rewards[idx].float()
        mean = r.mean()
        std = r.std() if len(members) > 1 else torch.ones((), device=r.device)
        centered = r - mean
        if normalize_std:  # a group with identical rewards carries no signal: 0, not 0/0
            centered = centered / (std + eps) if std > 0 else torch.zeros_like(centered)
        out[idx] = centered
    return out


def clipped_policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    clip_c: float = 3.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate with dual clip, token-mean aggregated.

    Per token, with ratio r = exp(logp - old_logp) and advantage A:
      l = max(-A·r, -A·clip(r, 1-clip_low, 1+clip_high));
      for A < 0 the loss is further capped at -A·clip_c (dual clip, Ye et al. 2020), so a
      token whose ratio exploded cannot dominate the batch.
    Returns the loss and detached statistics: the fraction of tokens clipped and the
    approximate KL to the sampling policy.
    """
    if clip_c <= 1.0:
        raise ValueError(f"dual-clip constant must exceed 1, got {clip_c}")
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    pessimistic = torch.maximum(unclipped, clipped)
    dual_capped = (advantages < 0) & (pessimistic > -advantages * clip_c)
    loss = torch.where(dual_capped, -advantages * clip_c, pessimistic)
    with torch.no_grad():
        stats = {
            "clip_frac": masked_mean((clipped > unclipped).float(), mask),
            "dual_clip_frac": masked_mean(dual_capped.float(), mask),
            "approx_kl": masked_mean(-log_ratio, mask),
        }
    return masked_mean(loss, mask), stats


def low_var_kl(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor | None = None, clamp: float = 10.0) -> torch.Tensor:
    """Schulman's k3 estimator of KL(π_θ ‖ π_ref) on tokens sampled from π_θ, token-mean.

    k3 = exp(ref - logp) - (ref - logp) - 1, which is non-negative and unbiased; clamped to
    ``[-clamp, clamp]`` like verl's ``low_var_kl`` so a rare huge ratio cannot blow up the loss.
    """
    d = ref_logp - logp
    k3 = torch.exp(d) - d - 1.0
    return masked_mean(torch.clamp(k3, -clamp, clamp), mask)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the softmax over the last dimension, per position."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def entropy_bonus(entropy: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Token-mean entropy; a learner *subtracts* ``coef · entropy_bonus`` to keep exploring."""
    return masked_mean(entropy, mask)


def sdar_gate(teacher_logp: torch.Tensor, logp: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The detached teacher–student gap Δ = log π_T − sg(log π_θ) and gate g = sg(σ(β·Δ))."""
    gap = (teacher_logp - logp).detach()
    return torch.sigmoid(beta * gap), gap


def sdar_gated_loss(
    logp: torch.Tensor,
    teacher_logp: torch.Tensor,
    mask: torch.Tensor | None = None,
    beta: float = 5.0,
    gate_threshold: float = 0.5,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SDAR's gated on-policy self-distillation term L (the learner adds ``+λ·L`` to GRPO's loss).

    Per response token, with the teacher log-prob log π_T computed without grad:
      Δ = log π_T − sg(log π_θ)         (the teacher–student gap on the sampled token)
      g = sg(σ(β·Δ))                    (the gate: a weight in (0, 1), no gradient)
      L = token-mean( g · (log π_T − log π_θ) )

    Why ``+λ·L`` pulls the student toward the teacher where the gate is open: π_T and g are
    constants, so ∂L/∂log π_θ(y_t) = −g_t / N < 0. A gradient-descent step on
    ``total = L_GRPO + λ·L`` therefore *raises* log π_θ(y_t) by an amount ∝ λ·g_t. The gate is
    open (g → 1) exactly when Δ > 0, i.e. the teacher, shown the skills, gives the sampled token
    more probability than the student does: raising log π_θ(y_t) closes that gap. When the teacher
    rejects the token (Δ < 0) the gate closes (g → 0) and the push fades instead of reversing, the
    paper's soft attenuation of teacher rejections. β = 0 gives the constant gate 0.5 (naive
    GRPO+OPSD). The value of L is the gated gap itself, so it falls toward 0 as the student
    catches up. (Subtracting λ·L instead would lower the log-prob of teacher-endorsed tokens.)

    Statistics: ``gate_mean``, ``gate_active_ratio`` (share of tokens with g > ``gate_threshold``)
    and ``teacher_gap_mean`` (mean Δ), all detached.
    """
    gate, gap = sdar_gate(teacher_logp, logp, beta)
    loss = masked_mean(gate * (teacher_logp.detach() - logp), mask)
    with torch.no_grad():
        stats = {
            "gate_mean": masked_mean(gate, mask),
            "gate_active_ratio": masked_mean((gate > gate_threshold).float(), mask),
            "teacher_gap_mean": masked_mean(gap, mask),
        }
    return loss, stats


def rlsd_token_advantages(
    advantages: torch.Tensor, logp: torch.Tensor, teacher_logp: torch.Tensor, eps_w: float = 0.2, mix: float = 1.0
) -> torch.Tensor:
    """RLSD (Self-Distilled RLVR, arXiv 2604.03128): the verifier sets the sign, the teacher the size.

    w_t = clip(exp(sign(A)·(log π_T − log π_θ)), 1 − eps_w, 1 + eps_w), detached, and the
    token advantage is A·((1 − mix) + mix·w_t). A token the teacher endorses gets a larger share
    of a positive advantage and a smaller share of a negative one; the direction always comes
    from the reward, so the privileged context cannot leak into the update's sign.
    """
    with torch.no_grad():
        w = torch.exp(torch.sign(advantages) * (teacher_logp - logp)).clamp(1.0 - eps_w, 1.0 + eps_w)
        return advantages * ((1.0 - mix) + mix * w)


def importance_weighted_reverse_kl(
    logp: torch.Tensor, teacher_logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor | None = None, max_weight: float = 2.0
) -> torch.Tensor:
    """Skill-SD's distillation term (arXiv 2604.10674): a sampled-token reverse KL to the teacher.

    On tokens sampled from the rollout policy π_old, KL(π_θ ‖ π_T) is estimated by the
    policy-gradient surrogate  ρ_t · sg(log π_θ − log π_T) · log π_θ  with the importance weight
    ρ_t = sg(min(π_θ/π_old, max_weight)) correcting for π_old ≠ π_θ. Its gradient is
    ρ·(log π_θ − log π_T)·∇log π_θ, the gradient of the reverse KL, so minimizing it moves the
    student toward the teacher on every token (no gate): up where the teacher is more confident,
    down where it is less.
    """
    with torch.no_grad():
        rho = torch.exp(logp - old_logp).clamp(max=max_weight)
        signal = logp - teacher_logp
    return masked_mean(rho * signal * logp, mask)


def skill_sd_loss(
    logp: torch.Tensor,
    teacher_logp: torch.Tensor,
    old_logp: torch.Tensor,
    mask: torch.Tensor | None = None,
    max_log_ratio: float = 10.0,
    max_neg_gap: float = 20.0,
) -> torch.Tensor:
    """Skill-SD's self-distillation loss as released (verl/trainer/ppo/skillsd_utils.py), token-mean.

    With ℓ = log π_θ − log π_T (teacher detached):
      k3 = exp(min(−ℓ, max_neg_gap)) − 1 + ℓ       (≥ 0; a sampled-token estimate of KL(π_θ‖π_T))
      ρ  = exp(min(log π_θ − log π_old, max_log_ratio))
      L  = token-mean(ρ · k3)
    ρ is *not* detached: the gradient flows through the on-policy correction as well as through k3.
    """
    ell = logp - teacher_logp.detach()
    k3 = torch.exp((-ell).clamp(max=max_neg_gap)) - 1.0 + ell
    rho = torch.exp((logp - old_logp.detach()).clamp(max=max_log_ratio))
    return masked_mean(rho * k3, mask)


def _chunk_logprobs(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor, temperature: float, want_entropy: bool):
    logits = F.linear(hidden, weight, bias).float()
    temperature = logprob_temperature(temperature)
    if temperature != 1.0:
        logits = logits / temperature
    logz = torch.logsumexp(logits, dim=-1)
    logp = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logz
    if not want_entropy:
        return logp, torch.zeros_like(logp)
    probs = torch.softmax(logits, dim=-1)
    entropy = logz - (probs * logits).sum(-1)
    return logp, entropy


def chunked_token_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: torch.Tensor | None = None,
    chunk_size: int = 1024,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs (and optionally entropies) of ``targets`` from final hidden states, chunk by chunk.

    ``hidden`` is ``[N, H]``: only the positions that predict response tokens. Logits are formed
    for ``chunk_size`` positions at a time (a ``[chunk, V]`` slab, never ``[N, V]``) and, when
    grads are on, each chunk is activation-checkpointed so backward recomputes its slab instead
    of keeping every chunk's logits alive. Peak extra memory is one ``[chunk, V]`` float tensor.
    """
    if hidden.shape[0] != targets.shape[0]:
        raise ValueError(f"{hidden.shape[0]} hidden states for {targets.shape[0]} targets")
    logps, ents = [], []
    for start in range(0, hidden.shape[0], chunk_size):
        h, t = hidden[start : start + chunk_size], targets[start : start + chunk_size]
        if torch.is_grad_enabled() and h.requires_grad:
            lp, ent = checkpoint(_chunk_logprobs, h, weight, bias, t, temperature, with_entropy, use_reentrant=False)
        else:
            lp, ent = _chunk_logprobs(h, weight, bias, t, temperature, with_entropy)
        logps.append(lp)
        ents.append(ent)
    if not logps:
        empty = hidden.new_zeros(0, dtype=torch.float32)
        return empty, (empty if with_entropy else None)
    return torch.cat(logps), (torch.cat(ents) if with_entropy else None)
