"""Scripted policies for tests and demonstrations: the env's expert, and uniform random.

They implement the Policy protocol without a model. Their "tokens" are UTF-8 bytes, so token
ids still flow end to end; log-probs are those of the scripted choice (0 for the expert).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from sdar_gym.agent import TextAgent
from sdar_gym.core import ConfigError
from sdar_gym.rollout.types import Generation, GenerationRequest


def byte_ids(text: str) -> list[int]:
    """UTF-8 bytes as token ids: the scripted policies' tokenizer."""
    return list(text.encode("utf-8"))


def _prompt_ids(request: GenerationRequest) -> list[int]:
    if request.prompt_ids is not None:
        return list(request.prompt_ids)
    return byte_ids("".join(m["content"] for m in request.messages or []))


def _request_rng(request: GenerationRequest, fallback: random.Random) -> random.Random:
    """The request's own generator when it carries ``sampling.seed`` (results then do not depend on
    how requests were batched), else the policy's."""
    return random.Random(request.sampling.seed) if request.sampling.seed is not None else fallback


class ExpertPolicy:
    """Answers with the env's oracle action, which the collector supplies in
    ``request.metadata["expert_action"]`` because this policy sets ``wants_expert_action``.

    With ``noise`` > 0 it perturbs that share of turns, as DART does (Laskey et al., 2017): it plays a
    random other admissible action, or repeats its previous one (often a move that does nothing, the
    typical slip of a small policy). It records those turns in ``perturbed`` as (episode, turn) keys.
    Demonstrations keep the other turns: the expert's own choices, now also in the states a slip
    leads to, so a policy learns to recover instead of looping where the expert never went.
    """

    wants_expert_action = True

    def __init__(self, env: str, noise: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= noise < 1.0:
            raise ConfigError(f"expert noise must be in [0, 1), got {noise}")
        self.agent = TextAgent(env)
        self.noise = noise
        self.perturbed: set[tuple[int, int]] = set()
        self._previous: dict[int, str] = {}
        self._rng = random.Random(seed)

    async def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        out = []
        for request in requests:
            action, thought = request.metadata.get("expert_action"), "Following the plan."
            episode, turn = request.metadata.get("episode", -1), request.metadata.get("turn", 0)
            rng = _request_rng(request, self._rng)
            if action and self.noise and rng.random() < self.noise:
                action, thought = self._slip(action, request.metadata.get("admissible_actions") or [], self._previous.get(episode) if turn else None, rng), "Trying something."
                self.perturbed.add((episode, turn))
            self._previous[episode] = action or ""
            text = self.agent.render_action(action, thought) if action else "<think>No plan.</think>"
            ids = byte_ids(text)
            out.append(Generation(text, _prompt_ids(request), ids, [0.0] * len(ids)))
        return out

    @staticmethod
    def _slip(expert: str, admissible: list[str], previous: str | None, rng: random.Random) -> str:
        others = [a for a in admissible if a != expert]
        if previous and (not others or rng.random() < 0.5):
            return previous
        return rng.choice(others) if others else expert


@dataclass
class RandomPolicy:
    """Picks uniformly among ``metadata["admissible_actions"]`` (or ``fallback_actions`` where the
    env has none); with probability ``invalid_prob`` it answers malformed text instead.

    Each request is sampled from its own ``sampling.seed`` when set, so results do not depend on
    how requests were batched."""

    env: str
    seed: int = 0
    invalid_prob: float = 0.0
    fallback_actions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.agent = TextAgent(self.env)
        self._rng = random.Random(self.seed)

    async def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        out = []
        for request in requests:
            rng = _request_rng(request, self._rng)
            actions = request.metadata.get("admissible_actions") or list(self.fallback_actions)
            if not actions or rng.random() < self.invalid_prob:
                text, logprob = "I am not sure what to do.", 0.0
            else:
                text = self.agent.render_action(rng.choice(actions), "Trying something.")
                logprob = -math.log(len(actions))
            ids = byte_ids(text)
            out.append(Generation(text, _prompt_ids(request), ids, [logprob] + [0.0] * (len(ids) - 1)))
        return out
