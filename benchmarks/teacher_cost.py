"""What the SDAR teacher costs: SDAR vs GRPO update time, peak memory and teacher/student tokens, side by side.

One recorded ALFWorld batch (a tiny Qwen2 with a byte-level BPE tokenizer trained on ALFWorld text,
about the built-in tiny policy's shape; random weights: the cost does not depend on them) is
updated by each variant below, each in a fresh process (for a clean peak-RSS reading), the variants
interleaved over rounds, on one torch thread:

- ``grpo``: the baseline;
- ``sdar_topk_in_message``: the former defaults (top-3 embedding retrieval, skills in the message);
- ``sdar_official``: the released routing and teacher prompt, no budget;
- ``sdar_official_budget``: the same with ``skills_budget_tokens``;
- ``sdar_official_budget_unbucketed``: the same, teacher micro-batches in collection order (no length
  buckets), to show what the buckets save;
- ``sdar_official_budget_unsorted_steps``: ``sdar_official_budget`` with the gradient micro-batches of each
  optimizer step in collection order, as before they were grouped by length (``Learner._micro_batches``).

    python benchmarks/teacher_cost.py --budget 256 --rounds 2 --repeats 2

``--variants A B`` runs only those, ``--out NAME`` writes ``NAME.json`` instead of ``teacher_cost.json``,
and a model already in ``--workdir``/tiny-alfworld (e.g. a link to a built warm start) is used as it is.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import args_as_json, write_result  # noqa: E402

ALFWORLD = Path(__file__).resolve().parents[2] / "shared" / "data" / "alfworld"
ENV_KWARGS = {"data_dir": str(ALFWORLD), "split": "valid_seen"}

VARIANTS = {
    "grpo": {"learner": "grpo"},
    "sdar_topk_in_message": {"learner": "sdar", "skills": "topk", "template": "in_message"},
    "sdar_official": {"learner": "sdar", "skills": "official", "template": "official"},
    "sdar_official_budget": {"learner": "sdar", "skills": "official", "template": "official", "budget": True},
    "sdar_official_budget_unbucketed": {"learner": "sdar", "skills": "official", "template": "official", "budget": True, "unbucketed": True},
    "sdar_official_budget_unsorted_steps": {"learner": "sdar", "skills": "official", "template": "official", "budget": True, "unsorted_steps": True},
}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def make_learner(variant: dict, policy, budget: int, micro_batch_size: int, mini_batches: int = 1):
    from learners.algorithms import make_learner as make
    from learners.teacher import SkillContext
    from sdar_gym.agent import TextAgent
    from skills import default_library

    skills = None
    if variant["learner"] != "grpo":
        skills = SkillContext(
            default_library("alfworld", embedder="hashing"), strategy=variant["skills"], with_skills=TextAgent("alfworld").with_skills,
            budget_tokens=budget if variant.get("budget") else None, tokenizer=policy.tokenizer,
        )
    overrides = {"lr": 1e-5, "micro_batch_size": micro_batch_size, "mini_batches": mini_batches, "max_prompt_length": 1 << 16}
    if "template" in variant:
        overrides["teacher_template"] = variant["template"]
    learner = make(variant["learner"], policy, skills, overrides)
    if variant.get("unbucketed"):
        learner._no_grad_logprobs = _unbucketed.__get__(learner)
    if variant.get("unsorted_steps"):
        learner._micro_batches = _in_collection_order.__get__(learner)
    return learner


def _in_collection_order(self, mini):
    """The former gradient micro-batches: an optimizer step's samples in collection order, whatever their lengths."""
    return [mini[i : i + self.config.micro_batch_size] for i in range(0, len(mini), self.config.micro_batch_size)]


def _unbucketed(self, samples, prompts, model=None):
    """The former scoring order: micro-batches in collection order, whatever their lengths."""
    out = []
    with torch.no_grad():
        for k in range(0, len(samples), self.config.micro_batch_size):
            chunk = samples[k : k + self.config.micro_batch_size]
            lp, _ = self.policy.response_logprobs([prompts(s) for s in chunk], [s.response_ids for s in chunk], temperature=self.config.temperature, model=model)
            out += list(lp.split([len(s.response_ids) for s in chunk]))
    return out


def _worker(name: str, folder: str, episodes, budget: int, micro: int, minis: int, repeats: int, queue) -> None:
    torch.set_num_threads(1)
    from learners.policy_model import PolicyModel, PolicyModelConfig

    policy = PolicyModel.from_pretrained(PolicyModelConfig(model=folder))
    learner = make_learner(VARIANTS[name], policy, budget, micro, minis)
    before = _rss_mb()
    learner.update(episodes)  # the first update: allocations peak here
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        learner.update(episodes)
        times.append(time.perf_counter() - t0)
    queue.put({"update_s": times, "rss_rise_mb": peak - before, "peak_rss_mb": peak})


def token_counts(name: str, folder: str, episodes, budget: int, micro: int) -> dict:
    from learners.policy_model import PolicyModel, PolicyModelConfig

    policy = PolicyModel.from_pretrained(PolicyModelConfig(model=folder), with_reference=False)
    learner = make_learner(VARIANTS[name], policy, budget, micro)
    samples = learner.samples(episodes)
    student = sum(len(s.prompt_ids) for s in samples)
    response = sum(len(s.response_ids) for s in samples)
    out = {"samples": len(samples), "student_prompt_tokens": student, "response_tokens": response}
    if learner.uses_teacher:
        teacher = sum(len(s.teacher_prompt_ids) for s in samples)
        skill_chars = [len(learner.skills.text(s.task, s.task_type)) for s in samples]
        out |= {"teacher_prompt_tokens": teacher, "teacher_student_prompt_ratio": teacher / student, "skill_chars_mean": statistics.fmean(skill_chars)}
    return out


def record_batch(folder: str, args) -> list:
    from learners.policy_model import PolicyModel, PolicyModelConfig
    from learners.trainer import TrainArgs, rollout
    from sdar_gym.registration import task_list
    from sdar_gym.rollout import make_pool

    policy = PolicyModel.from_pretrained(PolicyModelConfig(model=folder), with_reference=False)
    tasks = task_list("alfworld", ENV_KWARGS)[0][:: 17][: args.tasks]
    cfg = TrainArgs(max_turns=args.max_turns, max_new_tokens=args.max_new_tokens, num_envs=args.tasks * args.group_size, temperature=1.0)
    pool = make_pool("inline", "alfworld", cfg.num_envs, ENV_KWARGS)
    try:
        torch.manual_seed(0)
        return rollout(policy, pool, tasks, cfg, seed=0, group_size=args.group_size)
    finally:
        asyncio.run(pool.aclose())


def build_model(folder: Path) -> None:
    from learners.tiny import TinyConfig, build_tiny, env_texts

    texts = env_texts("alfworld", episodes=12, steps=10, env_kwargs=ENV_KWARGS)
    build_tiny(folder, texts, vocab_size=2048, config=TinyConfig(hidden_size=128, num_layers=3, intermediate_size=256))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=256, help="skills_budget_tokens of the *_budget variants")
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=2)
    ap.add_argument("--max-turns", type=int, default=6)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--micro-batch-size", type=int, default=8)
    ap.add_argument("--mini-batches", type=int, default=1, help="optimizer steps per update (the CPU preset: 4)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/sdar_teacher_cost"))
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), help="the variants to run (the first is the baseline of the ratios)")
    ap.add_argument("--out", default="teacher_cost", help="name of the JSON under benchmarks/results/")
    args = ap.parse_args()
    torch.set_num_threads(1)
    folder = args.workdir / "tiny-alfworld"
    built_here = not (folder / "config.json").exists() or (folder / "built_by_teacher_cost").exists()
    if not (folder / "config.json").exists():
        build_model(folder)
        (folder / "built_by_teacher_cost").touch()
    episodes = record_batch(str(folder), args)
    tokens = {name: token_counts(name, str(folder), episodes, args.budget, args.micro_batch_size) for name in args.variants}
    ctx = mp.get_context("spawn")
    runs: dict[str, list] = {name: [] for name in args.variants}
    for round_ in range(args.rounds):
        for name in args.variants if round_ % 2 == 0 else reversed(args.variants):
            q = ctx.Queue()
            p = ctx.Process(target=_worker, args=(name, str(folder), episodes, args.budget, args.micro_batch_size, args.mini_batches, args.repeats, q))
            p.start()
            runs[name].append(q.get())
            p.join()
    results = {}
    for name, rows in runs.items():
        times = [t for r in rows for t in r["update_s"]]
        results[name] = {
            "update_s_median": statistics.median(times), "update_s_all": times,
            "rss_rise_mb_median": statistics.median(r["rss_rise_mb"] for r in rows), "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
            **tokens[name],
        }
    base = results[args.variants[0]]
    for name, r in results.items():
        # forward passes per update: student (with grad) and reference on the student prompt, teacher on its own
        r["forward_tokens"] = 2 * (r["student_prompt_tokens"] + r["response_tokens"]) + r.get("teacher_prompt_tokens", -r["response_tokens"]) + r["response_tokens"]
        r["update_time_vs_baseline"] = r["update_s_median"] / base["update_s_median"]
        r["update_time_per_forward_token_vs_baseline"] = r["update_time_vs_baseline"] / (r["forward_tokens"] / base["forward_tokens"])
        r["rss_rise_vs_baseline"] = r["rss_rise_mb_median"] / max(base["rss_rise_mb_median"], 1e-9)
        print(f"{name:36s} update {r['update_s_median']:.2f}s ({r['update_time_vs_baseline']:.2f}x {args.variants[0]})  rss rise {r['rss_rise_mb_median']:.0f} MB"
              f" ({r['rss_rise_vs_baseline']:.2f}x)  teacher/student prompt tokens {r.get('teacher_student_prompt_ratio', 1.0):.2f}"
              f"  time per forward token {r['update_time_per_forward_token_vs_baseline']:.2f}x")
    model = "a random-weight tiny Qwen2 (hidden 128, 3 layers, vocab 2048)" if built_here else f"the model linked at {folder} ({folder.resolve()})"
    write_result(args.out, {
        "config": args_as_json(args),
        "baseline": args.variants[0],
        "batch": {"episodes": len(episodes), "turns": sum(len(e.turns) for e in episodes)},
        "note": f"CPU, one torch thread, {model}; peak memory is process RSS (no GPU here).",
        "results": results,
    })


if __name__ == "__main__":
    main()
