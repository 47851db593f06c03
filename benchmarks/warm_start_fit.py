"""How well does a warm start imitate its expert? Greedy answers on the expert's own training turns.

For each model, the prompts of ``--turns`` random turns of the default ALFWorld demonstrations (the
ones ``sdar-gym sft`` trains on, cached after the first build) are answered greedily; a turn counts
when the answer equals the expert's response exactly. Reported overall and per action verb (go,
open, take, put, ...), since a policy that never answers ``take`` wins no game whatever its score.

    sdar-gym sft --output runs/w0 --prompt-loss-weight 0       # build the variants to compare
    sdar-gym sft --output runs/w1
    python benchmarks/warm_start_fit.py --model w0=runs/w0 w1=runs/w1

Writes ``benchmarks/results/warm_start_fit.json`` with each model's ``sft.json``.
"""
from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_result  # noqa: E402
from learners.sft import SFTArgs, demo_env_kwargs, expert_demonstrations  # noqa: E402
from sdar_gym.agent import TextAgent  # noqa: E402


def verb(response: str, agent: TextAgent) -> str:
    """The first word of the response's action (``go``, ``take``, ...), read by the agent's projection."""
    return (agent.project(response).action or "").split(" ", 1)[0]


def fit(model: str, turns: list, threads: int) -> dict:
    import torch

    from learners.hf_policy import HFPolicy
    from sdar_gym.rollout.types import GenerationRequest, SamplingParams

    torch.set_num_threads(threads)
    policy = HFPolicy(model)
    start = time.perf_counter()
    requests = [GenerationRequest(messages=m, sampling=SamplingParams(temperature=0.0, max_new_tokens=48)) for m, _ in turns]
    answers = [g for i in range(0, len(requests), 25) for g in policy.generate_sync(requests[i : i + 25])]
    exact, total, agent = collections.Counter(), collections.Counter(), TextAgent("alfworld")
    for (_, expected), g in zip(turns, answers):
        text = policy.tokenizer.decode(g.response_ids, skip_special_tokens=True)
        total[verb(expected, agent)] += 1
        exact[verb(expected, agent)] += text.strip() == expected.strip()
    meta = Path(model) / "sft.json"
    return {
        "exact": sum(exact.values()), "turns": len(turns), "by_verb": {v: [exact[v], total[v]] for v in sorted(total)},
        "seconds": time.perf_counter() - start, "sft": json.loads(meta.read_text()) if meta.exists() else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", nargs="+", required=True, metavar="NAME=PATH", help="models to compare")
    ap.add_argument("--turns", type=int, default=150, help="random training turns answered by each model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="warm_start_fit")
    args = ap.parse_args()
    models = dict(m.split("=", 1) for m in args.model)
    recipe = SFTArgs()
    demos = expert_demonstrations(recipe.env, recipe.games, demo_env_kwargs(recipe.env, {}), recipe.max_turns, recipe.seed)
    turns = [(messages, response) for messages, response, *_ in demos]
    random.Random(args.seed).shuffle(turns)
    turns = turns[: args.turns]
    results = {}
    for name, path in models.items():
        results[name] = fit(path, turns, args.threads)
        print(f"{name}: {results[name]['exact']}/{len(turns)} exact; by verb {results[name]['by_verb']}", flush=True)
    write_result(args.out, {"turns": len(turns), "seed": args.seed, "demonstration_turns": len(demos), "models": results})


if __name__ == "__main__":
    main()
