"""``AdmissibleChoice``: a rollout policy wrapper that only ever plays admissible actions.

It overrides one thing, the action. The inner policy samples its response as usual; when that
response is well formed and the env listed admissible actions, the action inside the tags is
replaced by one of the admissible actions, drawn from the model's own sequence probabilities:
each candidate is the sampled response with that action written in, scored by the sum of its
token log-probs, and one is drawn from the softmax of those sums (the best one when greedy).
This is the action-scoring policy of Carta et al., 2023 (GLAM), applied after free reasoning.

Why: a policy that names an object the room does not hold (``take pen 1 from armchair 2``) plays
a move that does nothing, and a small policy repeats it until the episode ends. Scoring only the
listed actions removes that failure. The released code (verl-agent) plays the free text, so this is
an option (``--choose-admissible``): off in the paper preset, on in the CPU preset of the built-in
tiny policy (``learners.settings``).

What a learner sees: the turn's ``response_ids`` are the chosen candidate's tokens and its
``logprobs`` those tokens' log-probs by :class:`~learners.hf_policy.HFPolicy`'s convention, so a
learner's recomputed log-probs match them. The draw among candidates is not itself a token
distribution: the importance ratios are of the token log-probs, as for any constrained decoder.
Malformed responses are kept as sampled, so the format penalty still applies. A listed entry that
is not a playable action (WebShop's ``search[<your query>]`` stands for any query) keeps the sampled
action among the candidates.
"""
from __future__ import annotations

import asyncio

import torch

from learners.hf_policy import HFPolicy
from sdar_gym.agent import AgentConfig, TextAgent
from sdar_gym.agent.projection import replace_action
from sdar_gym.core import ConfigError
from sdar_gym.registration import env_entry
from sdar_gym.rollout.types import Generation, GenerationRequest


class AdmissibleChoice:
    """Wraps an :class:`HFPolicy` or the hf generator (anything with ``sample_and_score``, ``check_continuation_scoring`` and a ``tokenizer``);
    everything else (a generator's ``sync_weights``, ``close``, ...) is the inner policy's."""

    def __init__(self, inner: HFPolicy, env: str, agent: AgentConfig | None = None, seed: int = 0) -> None:
        if not hasattr(inner, "check_continuation_scoring"):
            raise ConfigError(f"choosing among admissible actions scores them with the model in this process: use the hf generator, not {type(inner).__name__}")
        inner.check_continuation_scoring()
        self.inner = inner
        self.agent = TextAgent(env_entry(env).name, agent)
        """The env's agent, as the collector builds it from ``agent``: its action format and projection."""
        self._generator = torch.Generator().manual_seed(seed)

    def __getattr__(self, name: str):
        if name == "inner":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)

    async def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        return await asyncio.to_thread(self.generate_sync, requests)

    def generate_sync(self, requests: list[GenerationRequest]) -> list[Generation]:
        """Sample, then score each turn's candidates on the cache the sampling left (``sample_and_score``)."""
        candidates: dict[int, tuple[list[str], list[list[int]]]] = {}  # by id(request): texts and their token ids

        def candidate_ids(request: GenerationRequest, sampled: Generation) -> list[list[int]]:
            texts, ids = self._candidate_texts(request, sampled), []
            if texts:
                tokenizer = self.inner.tokenizer
                ids = [encoded + [tokenizer.eos_token_id] for encoded in tokenizer(texts, add_special_tokens=False)["input_ids"]]
            candidates[id(request)] = texts, ids
            return ids

        scored = self.inner.sample_and_score(requests, candidate_ids)
        return [self._choose(r, sampled, *candidates[id(r)], logprobs) for r, (sampled, logprobs) in zip(requests, scored)]

    def _candidate_texts(self, request: GenerationRequest, sampled: Generation) -> list[str]:
        """The turn's candidates (none for an error, a malformed answer or a turn with no listed actions)."""
        actions = request.metadata.get("admissible_actions") or []
        projection = self.agent.project(sampled.text)
        if sampled.error or not actions or not projection.valid:
            return []
        return self._candidates(sampled.text, actions, projection.action)

    def _choose(self, request: GenerationRequest, sampled: Generation, texts: list[str], ids: list[list[int]], logprobs: list[list[float]]) -> Generation:
        """The candidate drawn from the softmax of the sums of its token log-probs (the best when greedy), or
        the sampled answer when there is nothing to choose from."""
        if not texts:
            return sampled
        totals = torch.tensor([sum(lp) for lp in logprobs])
        temperature = request.sampling.temperature
        if temperature <= 0:
            pick = int(totals.argmax())
        else:
            generator = self._generator if request.sampling.seed is None else torch.Generator().manual_seed(request.sampling.seed + 1)
            pick = int(torch.multinomial(torch.softmax(totals, dim=0), 1, generator=generator))
        return Generation(text=texts[pick], prompt_ids=sampled.prompt_ids, response_ids=ids[pick], logprobs=logprobs[pick], finish_reason="stop")

    def _candidates(self, text: str, actions: list[str], sampled_action: str) -> list[str]:
        """``text`` with each playable listed action written in. A listed entry that is not playable as
        written is a template for free text (WebShop's ``search[<your query>]``): the sampled action then
        stays a candidate too."""
        fmt, out, templates = self.agent.spec.action_format, [], False
        for action in dict.fromkeys(actions):
            try:
                candidate = replace_action(text, fmt, action)
            except ValueError:  # of no form the model can write: not playable
                continue
            if self.agent.project(candidate).action == action:
                out.append(candidate)
            else:
                templates = True
        if templates and sampled_action not in actions:
            out.append(text)
        return out
