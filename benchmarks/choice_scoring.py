"""What scoring the listed actions costs (``--choose-admissible``): one packed pass against a batch over a
repeated KV cache, side by side on the same turns.

At every turn the choice scores each listed action written into the sampled response
(:class:`learners.admissible_choice.AdmissibleChoice`). Two ways to get those log-probs:

- ``repeated_cache``: the prompt once, its KV cache repeated for every candidate, the candidates as one
  right-padded batch (how ``HFPolicy.continuation_logprobs`` scored before; kept here as the baseline);
- ``packed``: ``HFPolicy.continuation_logprobs`` as it is: one pass of batch 1, the prompt and the
  candidates' shared first tokens once, each candidate's own tokens after them under a 4D mask.

Turns come from random play of ALFWorld games (the real ``valid_seen`` games in ``../shared/data`` when
present, else the generated ones), on a random-init model of the built-in tiny policy's shape with a
tokenizer trained on those turns (the cost does not depend on the weights), one torch thread. Both
ways run over all turns, alternating which goes first, and must agree to float rounding.
Writes ``benchmarks/results/choice_scoring.json``.

    python benchmarks/choice_scoring.py            # 60 turns, 3 rounds: about a minute
"""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_result  # noqa: E402

ALFWORLD = Path(__file__).resolve().parents[2] / "shared" / "data" / "alfworld"
THOUGHT = "Following the plan."


@dataclass
class Args:
    episodes: int = 6
    """Games played at random for turns (one per game)."""
    turns: int = 10
    """Most turns kept per game."""
    rounds: int = 3
    """Timed passes over all turns for each way, alternating which goes first."""
    seed: int = 0


@torch.no_grad()
def repeated_cache_logprobs(policy, prompt_ids: list[int], continuations: list[list[int]], temperature: float) -> list[list[float]]:
    """The baseline: the prompt's KV cache repeated per candidate, the candidates as a padded batch."""
    count, width = len(continuations), max(len(c) for c in continuations)
    out = policy.model(input_ids=torch.tensor([prompt_ids]), use_cache=True)
    cache = getattr(out, policy._cache_key)
    cache.batch_repeat_interleave(count)
    ids = torch.tensor([c + [policy.tokenizer.pad_token_id] * (width - len(c)) for c in continuations])
    mask = torch.tensor([[1] * (len(prompt_ids) + len(c)) + [0] * (width - len(c)) for c in continuations])
    positions = torch.arange(len(prompt_ids), len(prompt_ids) + width).expand(count, -1)
    rest = policy.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **{policy._cache_key: cache})
    scale = temperature if temperature > 0 else 1.0
    scores = []
    for i, c in enumerate(continuations):
        logits = torch.cat([out.logits[0, -1:], rest.logits[i, : len(c) - 1]]).float() / scale
        scores.append(torch.log_softmax(logits, dim=-1).gather(-1, ids[i, : len(c), None]).squeeze(-1).tolist())
    return scores


def played_turns(args: Args) -> tuple[list[tuple[str, list[str]]], dict]:
    """(prompt text, listed actions) of random play, and where the games came from."""
    from learners.tiny import random_play

    real = (ALFWORLD / "json_2.1.1" / "valid_seen").is_dir()
    env_kwargs = {"data_dir": str(ALFWORLD), "split": "valid_seen"} if real else {"split": "valid_seen"}
    turns = [(prompt, listed) for prompt, listed, _ in random_play("alfworld", args.episodes, args.turns, env_kwargs, args.seed) if listed]
    return turns, {"games": "real valid_seen" if real else "generated valid_seen", **env_kwargs}


def main(args: Args) -> None:
    from learners.hf_policy import HFPolicy
    from learners.sft import SFTArgs, model_shape
    from learners.tiny import make_tiny_model, train_tokenizer
    from sdar_gym.agent import TextAgent
    from sdar_gym.rollout.types import GenerationRequest

    torch.set_num_threads(1)
    agent = TextAgent("alfworld")
    turns, source = played_turns(args)
    shape = SFTArgs()
    tokenizer = train_tokenizer([p for p, _ in turns] + [agent.render_action(a, THOUGHT) for _, acts in turns for a in acts], shape.vocab_size)
    policy = HFPolicy(make_tiny_model(tokenizer, model_shape(shape)), tokenizer)
    cases = []
    for prompt, actions in turns:
        prompt_ids = policy.prompt_ids(GenerationRequest(messages=[{"role": "user", "content": prompt}]))
        texts = [agent.render_action(a, THOUGHT) for a in actions]
        cases.append((prompt_ids, [ids + [tokenizer.eos_token_id] for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]))

    ways = {"repeated_cache": lambda p, c: repeated_cache_logprobs(policy, p, c, 0.7), "packed": lambda p, c: policy.continuation_logprobs(p, c, 0.7)}
    worst = max(abs(a - b) for p, c in cases for ra, rb in zip(ways["repeated_cache"](p, c), ways["packed"](p, c)) for a, b in zip(ra, rb, strict=True))
    if worst > 1e-4:
        raise SystemExit(f"the two ways disagree by {worst:.2e} nats: the benchmark would compare different things")
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for round_ in range(args.rounds):
        for name in ways if round_ % 2 == 0 else reversed(list(ways)):
            start = time.perf_counter()
            for prompt_ids, candidates in cases:
                ways[name](prompt_ids, candidates)
            seconds[name].append(time.perf_counter() - start)
            print(f"round {round_ + 1}/{args.rounds} {name}: {seconds[name][-1]:.2f} s for {len(cases)} turns", flush=True)
    ratio = sum(seconds["repeated_cache"]) / sum(seconds["packed"])
    print(f"packed is {ratio:.2f}x as fast as repeated_cache (max difference {worst:.1e} nats)")
    write_result("choice_scoring", {
        "args": vars(args), "source": source, "threads": 1,
        "model": {"hidden_size": shape.hidden_size, "num_layers": shape.num_layers, "vocab_size": len(tokenizer)},
        "turns": len(cases),
        "prompt_tokens_mean": statistics.mean(len(p) for p, _ in cases),
        "candidates_mean": statistics.mean(len(c) for _, c in cases),
        "candidate_tokens_mean": statistics.mean(len(x) for _, c in cases for x in c),
        "seconds": seconds,
        "ms_per_turn": {name: 1000 * statistics.median(s) / len(cases) for name, s in seconds.items()},
        "speedup_packed": ratio,
        "max_abs_difference_nats": worst,
    })


if __name__ == "__main__":
    main(tyro.cli(Args))
