"""How do warm starts play? Greedy success on held-out ALFWorld games, and how failed games end.

``warm_start_fit.py`` scores single answers; this plays whole games. For each model, one greedy
episode per game on ``--games`` generated valid_seen and valid_unseen games of the default set, and
``--real-games`` of the real valid_seen games in ``--real-dir`` (skipped when absent), spread evenly
so that every task type is represented. A failed game "ends in a loop" when its last
``--loop-turns`` actions are one and the same command (an action that does nothing, such as taking
an object that is not there, leaves the observation the same, and a greedy policy answers the same
again); ``loops_that_never_worked`` counts the loops whose command did nothing from its first play,
and ``failed_in_a_cycle`` the lost games whose last ``--cycle-turns`` actions hold at most 3 commands
(going round a few places, or carrying an object back and forth). Each model plays with the history
length it was built with (its ``sft.json``).
Each split also reports the share of turns that played a well-formed action that did nothing
("Nothing happens."), and the verbs played.

    sdar-gym sft --output runs/a ...                 # build the variants to compare
    python benchmarks/warm_start_play.py --model a=runs/a b=runs/b

Writes ``benchmarks/results/warm_start_play.json``, with each model's ``sft.json``.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_result  # noqa: E402
from benchmarks.learning import held_out_splits, real_valid_seen  # noqa: E402
from learners.evaluate import evaluate, table_for  # noqa: E402
from learners.trainer import EVAL_SEED  # noqa: E402
from sdar_gym.rollout import episode_metrics  # noqa: E402
from sdar_gym.rollout.types import SamplingParams  # noqa: E402


def loop_verb(actions: list[str], length: int) -> str | None:
    """The verb of the command repeated over the last ``length`` actions, or None."""
    tail = actions[-length:]
    return tail[0].split(" ", 1)[0] if len(tail) == length and len(set(tail)) == 1 else None


def in_a_cycle(actions: list[str], turns: int, commands: int = 3) -> bool:
    """Whether the last ``turns`` actions hold at most ``commands`` distinct commands: the game ends going
    round between a few places or carrying an object back and forth (a one-command loop included)."""
    tail = actions[-turns:]
    return len(tail) == turns and len(set(tail)) <= commands


def loop_never_worked(actions: list[str], seen: list[str]) -> bool:
    """Whether the command a game ends repeating did nothing from its first play on. ``seen[i]`` is the
    observation turn i acted on, so ``seen[i + 1]`` is what action i returned: the command never worked
    when its first play in the final run returned what its later plays return. A command that worked
    once (a take that picked the object up) and was then repeated answered something else the first time."""
    start = len(actions) - 1
    while start > 0 and actions[start - 1] == actions[-1]:
        start -= 1
    if start >= len(actions) - 1:
        raise ValueError("a loop needs at least two plays of its command")
    return seen[start + 1] == seen[-1]


def add_play_args(ap: argparse.ArgumentParser) -> None:
    """The options of :func:`play` and :func:`play_splits`."""
    ap.add_argument("--games", type=int, default=50, help="generated games per held-out split (each split has 50)")
    ap.add_argument("--real-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "alfworld", help="real ALFWorld data")
    ap.add_argument("--real-games", type=int, default=40, help="real valid_seen games, a fixed spread (0: none)")
    ap.add_argument("--max-turns", type=int, default=30, help="the CPU preset's")
    ap.add_argument("--loop-turns", type=int, default=5)
    ap.add_argument("--cycle-turns", type=int, default=6, help="a lost game ends in a cycle when its last this many actions hold at most 3 commands")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--choose-admissible", action="store_true", help="play only listed actions (learners.admissible_choice)")


def play_splits(args) -> dict[str, tuple[dict, list]]:
    """The held-out games :func:`add_play_args` selects: generated valid_seen and valid_unseen, real valid_seen."""
    return held_out_splits({"engine": "fast"}, ["valid_seen", "valid_unseen"], args.games) | real_valid_seen(args.real_dir, args.real_games)


def play(model: str, splits: dict[str, tuple[dict, list]], args) -> dict:
    import torch

    from learners.policy_model import PolicyModel, PolicyModelConfig
    from learners.sft import built_history_length
    from sdar_gym.agent import AgentConfig

    torch.set_num_threads(args.threads)
    policy = PolicyModel.from_pretrained(PolicyModelConfig(model=model), with_reference=False)
    sampling = SamplingParams(max_new_tokens=48, temperature=0.0)
    agent = AgentConfig(history_length=built_history_length(model))  # the past turns it learned from
    out = {}
    for split, (kwargs, tasks) in splits.items():
        start = time.perf_counter()
        episodes = evaluate(policy, "alfworld", kwargs, tasks, args.max_turns, 8, sampling, seed=EVAL_SEED, choose_admissible=args.choose_admissible, agent=agent)
        looped = [(e, v) for e in episodes if not e.won and (v := loop_verb([t.action for t in e.turns], args.loop_turns))]
        loops = collections.Counter(v for _, v in looped)
        never_worked = sum(loop_never_worked([t.action for t in e.turns], [t.observation for t in e.turns]) for e, _ in looped)
        out[split] = {
            "success": sum(e.won for e in episodes) / len(episodes), "won": sum(e.won for e in episodes), "games": len(episodes),
            "table": table_for("alfworld", episodes), "failed_in_a_loop": sum(loops.values()), "loop_verbs": dict(loops.most_common()),
            "loops_that_never_worked": never_worked,
            "failed_in_a_cycle": sum(not e.won and in_a_cycle([t.action for t in e.turns], args.cycle_turns) for e in episodes),
            "no_effect_action_ratio": episode_metrics(episodes)["no_effect_action_ratio"],
            "verbs": dict(collections.Counter(t.action.split(" ", 1)[0] or "(invalid)" for e in episodes for t in e.turns).most_common()),
            "seconds": time.perf_counter() - start,
        }
        print(f"  {split}: won {out[split]['won']}/{len(episodes)}, failed in a loop {sum(loops.values())} {dict(loops)}, "
              f"in a cycle of at most 3 commands {out[split]['failed_in_a_cycle']}, "
              f"{never_worked} of them on a command that did nothing from its first play; "
              f"{out[split]['no_effect_action_ratio']:.0%} of turns played a well-formed action that did nothing", flush=True)
    meta = Path(model) / "sft.json"
    return {"splits": out, "sft": json.loads(meta.read_text()) if meta.exists() else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", nargs="+", required=True, metavar="NAME=PATH", help="models to compare")
    add_play_args(ap)
    ap.add_argument("--out", default="warm_start_play")
    args = ap.parse_args()
    models = dict(m.split("=", 1) for m in args.model)
    splits = play_splits(args)
    results = {}
    for name, path in models.items():
        print(f"{name} ({path}):", flush=True)
        results[name] = play(path, splits, args)
    write_result(args.out, {"max_turns": args.max_turns, "loop_turns": args.loop_turns,
                            "games": {s: len(t) for s, (_, t) in splits.items()}, "models": results})


if __name__ == "__main__":
    main()
