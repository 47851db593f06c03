"""What scoring the listed actions costs (``--choose-admissible``), side by side on the same turns.

At every turn the choice scores each listed action written into the sampled response
(:class:`learners.admissible_choice.AdmissibleChoice`). Two comparisons:

1. Scoring one turn's candidates after its prompt:
   - ``repeated_cache``: the prompt once, its KV cache repeated for every candidate, the candidates as one
     right-padded batch (how ``HFPolicy.continuation_logprobs`` scored before; kept here as the baseline);
   - ``packed``: ``HFPolicy.continuation_logprobs`` as it is: the prompt's pass, then the candidates'
     shared first tokens once and each candidate's own tokens after them under a 4D mask.
2. A batch of turns, sampled and then scored, as the rollout does (``--batch`` turns at a time, the CPU
   preset's ``num_envs``; ``--max-new-tokens`` about the tiny policy's answer length, since a random
   model rarely stops by itself):
   - ``sample_then_score``: ``generate_sync``, then ``continuation_logprobs`` turn by turn, which runs
     each prompt again (how ``AdmissibleChoice`` scored before; kept here as the baseline);
   - ``sample_and_score``: ``HFPolicy.sample_and_score`` as it is: the packed candidates of the whole
     batch in one pass over the KV cache the sampling left.

Turns come from random play of ALFWorld games (the real ``valid_seen`` games in ``../shared/data`` when
present, else the generated ones), on a random-init model of the built-in tiny policy's shape with a
tokenizer trained on those turns (the cost does not depend on the weights), one torch thread. Both
ways run over all turns, alternating which goes first, and must agree to float rounding.
Writes ``benchmarks/results/choice_scoring.json``.

    python benchmarks/choice_scoring.py            # 60 turns, 3 rounds of each comparison: about 2 minutes
"""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, replace
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
    batch: int = 8
    """Turns sampled together in the second comparison (the CPU preset's num_envs)."""
    max_new_tokens: int = 17
    """Tokens sampled per turn in the second comparison (the candidates' mean length is about 17)."""
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
    from sdar_gym.rollout.types import GenerationRequest, SamplingParams

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
    one_turn = side_by_side(ways, lambda way: [way(p, c) for p, c in cases], args.rounds, f"{len(cases)} turns")

    sampling = SamplingParams(temperature=0.7, max_new_tokens=args.max_new_tokens)
    batches = []
    for i in range(0, len(cases), args.batch):
        part = turns[i : i + args.batch]
        requests = [GenerationRequest(messages=[{"role": "user", "content": p}], sampling=replace(sampling, seed=args.seed + i + k)) for k, (p, _) in enumerate(part)]
        batches.append((requests, {id(r): c for r, (_, c) in zip(requests, cases[i : i + args.batch])}))

    def sample_then_score(requests, candidates):
        return [policy.continuation_logprobs(g.prompt_ids, candidates[id(r)], 0.7) for r, g in zip(requests, policy.generate_sync(requests))]

    def sample_and_score(requests, candidates):
        return [scores for _, scores in policy.sample_and_score(requests, lambda r, g: candidates[id(r)])]

    turn_ways = {"sample_then_score": sample_then_score, "sample_and_score": sample_and_score}
    batched = side_by_side(turn_ways, lambda way: [scores for requests, candidates in batches for scores in way(requests, candidates)], args.rounds, f"{len(cases)} sampled turns in batches of {args.batch}")
    write_result("choice_scoring", {
        "args": vars(args), "source": source, "threads": 1,
        "model": {"hidden_size": shape.hidden_size, "num_layers": shape.num_layers, "vocab_size": len(tokenizer)},
        "turns": len(cases),
        "prompt_tokens_mean": statistics.mean(len(p) for p, _ in cases),
        "candidates_mean": statistics.mean(len(c) for _, c in cases),
        "candidate_tokens_mean": statistics.mean(len(x) for _, c in cases for x in c),
        "one_turn": one_turn,
        "sampled_batches": batched,
    })


def side_by_side(ways: dict, run, rounds: int, what: str) -> dict:
    """Time ``run(way)`` for each way, ``rounds`` times, alternating which goes first; the ways must agree."""
    (base, base_way), (new, new_way) = ways.items()
    worst = max(abs(a - b) for ra, rb in zip(run(base_way), run(new_way), strict=True) for sa, sb in zip(ra, rb, strict=True) for a, b in zip(sa, sb, strict=True))
    if worst > 1e-4:
        raise SystemExit(f"{base} and {new} disagree by {worst:.2e} nats: the benchmark would compare different things")
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for round_ in range(rounds):
        for name in ways if round_ % 2 == 0 else reversed(list(ways)):
            start = time.perf_counter()
            run(ways[name])
            seconds[name].append(time.perf_counter() - start)
            print(f"round {round_ + 1}/{rounds} {name}: {seconds[name][-1]:.2f} s for {what}", flush=True)
    ratio = sum(seconds[base]) / sum(seconds[new])
    print(f"{new} is {ratio:.2f}x as fast as {base} (max difference {worst:.1e} nats)")
    return {"seconds": seconds, "speedup": ratio, "max_abs_difference_nats": worst}


if __name__ == "__main__":
    main(tyro.cli(Args))
