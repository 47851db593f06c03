"""The training loop every learner shares: roll out, update, log, checkpoint, repeat.

    policy = PolicyModel(...)                       # --model, or the built-in tiny SFT policy
    for step in range(start, steps):
        tasks    = tasks_per_step task ids, drawn with a seed fixed by (seed, step)
        episodes = collect(policy, pool, tasks, group_size=G, max_turns=T)   # sdar_gym.rollout
        metrics  = learner.update(episodes)          # learners/<name>.py holds the objective
        log(metrics); checkpoint every save_every steps

Every random choice of step k is seeded from (seed, k), so ``--resume`` from the checkpoint of
step k replays steps k+1… exactly as an uninterrupted run would (inline pool).
"""
from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from learners.base import NonFiniteLossError, PolicyGradientLearner, learner_entry, make_learner
from learners.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from learners.cli import TrainArgs, parse_env_kwargs
from learners.metrics import episode_metrics
from learners.policy_model import PolicyModel, PolicyModelConfig
from learners.run_log import RunLog
from learners.teacher import SkillContext
from sdar_gym.core import ConfigError, DataError, SdarGymError
from sdar_gym.io import atomic_write_json
from sdar_gym.rollout.types import Episode, SamplingParams


def task_list(env: str, env_kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, str]]:
    """The env's task ids (or reset seeds when it has none) and each id's task type when known."""
    from sdar_gym.registration import make_env

    target = make_env(env, **env_kwargs).unwrapped
    try:
        ids = list(target.task_ids)
        types = {g.task_id: g.task_type for g in getattr(target, "games", [])}
    finally:
        target.close()
    return (ids or list(range(10_000))), types


def step_tasks(all_tasks: list[Any], n: int, seed: int, step: int) -> list[Any]:
    """The tasks of one step: a fixed function of (seed, step), so resumed runs replay them."""
    rng = random.Random(seed * 1_000_003 + step)
    return rng.sample(all_tasks, n) if n <= len(all_tasks) else [rng.choice(all_tasks) for _ in range(n)]


def load_policy(cfg: TrainArgs) -> PolicyModel:
    model = cfg.model
    if model is None:
        from learners.sft import ensure_tiny_policy

        model = str(ensure_tiny_policy(cfg.env, progress=cfg.progress, env_kwargs=parse_env_kwargs(cfg.env_kwargs)))
    pcfg = PolicyModelConfig(model=model, lora_rank=cfg.lora_rank, dtype=cfg.dtype, device=cfg.device)
    kl = float(cfg.learner_args.get("kl_coef", learner_entry(cfg.learner).config_cls.kl_coef))  # type: ignore[arg-type]
    return PolicyModel.from_pretrained(pcfg, with_reference=kl > 0)


def load_skills(cfg: TrainArgs, needed: bool) -> SkillContext | None:
    if not needed:
        return None
    from sdar_gym.agent import TextAgent
    from sdar_gym.registration import env_entry
    from skills import default_library

    name = env_entry(cfg.env).name
    # The skill library names its folders with underscores (search_qa) where env names use a hyphen (search-qa).
    library = default_library(name if name != "search-qa" else "search_qa", embedder=cfg.skills_embedder)
    return SkillContext(library, strategy=cfg.skills, k=cfg.skills_k, budget_chars=cfg.skills_budget_chars, seed=cfg.seed, with_skills=TextAgent(name).with_skills)


def rollout(policy: PolicyModel, pool, tasks: list[Any], cfg: TrainArgs, seed: int, group_size: int, skills=None, temperature: float | None = None) -> list[Episode]:
    """G episodes of each task through the rollout layer's async collector."""
    from sdar_gym.rollout import collect

    sampling = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature if temperature is None else temperature)
    hf = policy.as_policy(max_batch_size=max(1, cfg.num_envs))
    return asyncio.run(collect(hf, pool, tasks, group_size=group_size, max_turns=cfg.max_turns, sampling=sampling, seed=seed, skills=skills))


def resolve_preset(cfg: TrainArgs, announce: bool = True) -> TrainArgs:
    """The CPU preset (learners.cpu_preset) fills defaults for the built-in tiny policy on a machine without a GPU."""
    from learners.cpu_preset import apply_cpu_preset, wants_cpu_preset

    if not wants_cpu_preset(cfg, torch.cuda.is_available()):
        return cfg
    cfg, applied = apply_cpu_preset(cfg)
    if announce and applied:
        values = ", ".join(f"{k}={v}" for k, v in applied.items())
        print(f"CPU preset (built-in tiny policy, no GPU): {values}. Pass --preset paper for the paper's values.", flush=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return cfg


class Trainer:
    def __init__(self, cfg: TrainArgs, policy: PolicyModel | None = None, skills: SkillContext | None = None) -> None:
        if policy is None:
            cfg = resolve_preset(cfg, announce=cfg.progress)
        entry = learner_entry(cfg.learner)
        for name in ("steps", "group_size", "tasks_per_step", "max_turns", "num_envs"):
            if getattr(cfg, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(cfg, name)}")
        self.cfg = cfg
        self.env_kwargs = parse_env_kwargs(cfg.env_kwargs)
        self.policy = policy or load_policy(cfg)
        needs_skills = entry.learner_cls.uses_teacher or entry.learner_cls.student_skills
        self.skills = skills if skills is not None or not needs_skills else load_skills(cfg, needs_skills)
        # the learner recomputes log-probs at the rollout's temperature unless told otherwise: ratio 1 at step 0
        learner_args = {"temperature": str(cfg.temperature), **cfg.learner_args}
        self.learner: PolicyGradientLearner = make_learner(cfg.learner, self.policy, self.skills, learner_args)
        self.tasks, self.task_types = task_list(cfg.env, self.env_kwargs)
        self.step = 0
        self.best_success = 0.0
        """Best rollout success of a step so far (a drop to 0 after it is reported loudly)."""
        self.run_dir = Path(cfg.output)
        if cfg.resume:
            ckpt = latest_checkpoint(self.run_dir)
            if ckpt is None:
                raise DataError(f"--resume: no checkpoint under {self.run_dir}/checkpoints")
            self.step = int(load_checkpoint(ckpt, self.policy, self.learner)["step"])
        elif latest_checkpoint(self.run_dir) is not None:
            raise ConfigError(f"{self.run_dir} already holds a run; pass --resume to continue it or choose another --output")

    def _student_skills(self):
        if not self.learner.student_skills:
            return None
        assert self.skills is not None
        return self.skills.text

    def train(self) -> dict[str, float]:
        from learners.progress import StageProgress
        from sdar_gym.rollout import make_pool

        cfg = self.cfg
        atomic_write_json(self.run_dir / "config.json", _jsonable(asdict(cfg)))
        log = RunLog(self.run_dir, resume_step=self.step + 1, tensorboard=cfg.tensorboard, wandb_project=cfg.wandb_project, config=_jsonable(asdict(cfg)))
        pool = make_pool(cfg.env_pool, cfg.env, cfg.num_envs, self.env_kwargs)
        last: dict[str, float] = {}
        try:
            with StageProgress(cfg.progress, every_s=0.0) as progress:
                bar = progress.add(f"{cfg.learner} on {cfg.env}", total=cfg.steps, completed=self.step)
                while self.step < cfg.steps:
                    try:
                        last = self.train_step(pool)
                    except NonFiniteLossError as e:
                        saved = latest_checkpoint(self.run_dir)
                        kept = f"the last checkpoint ({saved.name}) is intact" if saved else "no checkpoint was written yet"
                        raise SdarGymError(f"step {self.step + 1}: {e}; nothing of this step was saved and {kept}") from None
                    success = last.get("rollout/all/success", 0.0)
                    if success == 0.0 and self.best_success > 0.0:
                        last["warn/success_collapsed"] = 1.0
                        print(f"WARNING: step {self.step}: success collapsed to 0 on every rollout of the step (best step so far: {self.best_success:.2f})", file=sys.stderr, flush=True)
                    self.best_success = max(self.best_success, success)
                    log.log(self.step, last)
                    progress.update(bar, completed=self.step, status=f"success {success:.2f}  reward {last.get('rollout/all/reward', 0):.2f}  step {last.get('perf/step_s', 0):.0f}s")
                    if self.step % cfg.save_every == 0 or self.step == cfg.steps:
                        save_checkpoint(self.run_dir, self.step, self.policy, self.learner, {"config": _jsonable(asdict(cfg))})
        finally:
            asyncio.run(pool.aclose())
            log.close()
        return last

    def train_step(self, pool) -> dict[str, float]:
        """One RL step (rollout on this step's tasks, then one learner update); returns its metrics."""
        cfg = self.cfg
        step = self.step + 1
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        t0 = time.perf_counter()
        tasks = step_tasks(self.tasks, cfg.tasks_per_step, cfg.seed, step)
        episodes = rollout(self.policy, pool, tasks, cfg, seed=cfg.seed * 7919 + step, group_size=cfg.group_size, skills=self._student_skills())
        t_roll = time.perf_counter() - t0
        metrics = episode_metrics(episodes)
        metrics.update(self.learner.update(episodes))
        if self.skills is not None:
            for e in episodes:
                if not e.failed:
                    self.skills.feedback(e.task, e.task_type, e.score)
        gen_tokens = sum(len(t.response_ids) for e in episodes for t in e.turns)
        metrics.update(
            {
                "perf/rollout_s": t_roll,
                "perf/step_s": time.perf_counter() - t0,
                "perf/generation_tokens_per_s": gen_tokens / max(t_roll, 1e-9),
            }
        )
        if torch.cuda.is_available():
            metrics["perf/peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
        else:
            import resource

            metrics["perf/peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        self.step = step
        return metrics


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
