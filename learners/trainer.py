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
import collections
import math
import os
import random
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from learners.generators import GeneratorArgs
from learners.run_log import RunLog
from learners.settings import resolve_train
from learners.teacher import SkillContext
from sdar_gym.core import ConfigError, DataError, SdarGymError
from sdar_gym.io import atomic_write_json
from sdar_gym.registration import parse_env_kwargs, task_list
from sdar_gym.rollout.collector import episode_metrics
from sdar_gym.rollout.types import Episode, SamplingParams

if TYPE_CHECKING:
    from learners.base import PolicyGradientLearner
    from learners.policy_model import PolicyModel

# torch loads on use (below), so that `sdar-gym` parses TrainArgs without it.


@dataclass
class TrainArgs:
    """Train a policy with RL on an env: ``sdar-gym train --learner sdar --env alfworld``."""

    learner: str = "sdar"
    """Learner name: grpo, sdar, opsd, grpo_opsd, skill_grpo, rlsd, skill_sd."""
    env: str = "alfworld"
    """Env short name or gymnasium id (see ``sdar-gym envs``)."""
    model: str | None = None
    """Hugging Face id or local folder; omitted, the built-in tiny policy is used (built on first use)."""
    preset: str = "auto"
    """Per-env defaults (``sdar_gym.presets``; docs/presets.md): paper (the released code's values), none
    (sdar-gym's own), cpu (the CPU preset of ``learners.settings`` over paper), or auto: cpu for the built-in
    tiny policy on a machine without a GPU, else paper. Every value can be overridden by its own option or by
    --learner-args."""
    advantage: str = "grpo"
    """Advantage estimator: grpo (per turn, the released default), grpo_episode, gigpo."""
    teacher_template: str = "official"
    """Teacher prompt: official (the released construction, left-truncated) or in_message."""
    steps: int | None = None
    """RL steps (one rollout batch and one policy update each); None: the preset's."""
    group_size: int | None = None
    """G: rollouts per task; advantages are normalized within each group; None: the preset's."""
    tasks_per_step: int | None = None
    """Tasks (groups) per step; a step rolls out tasks_per_step × group_size episodes; None: the preset's."""
    max_turns: int | None = None
    """Turns per episode at most; None: the preset's."""
    history_length: int | None = None
    """(observation, action) pairs shown in the prompt; None: the preset's (else the env's agent spec)."""
    invalid_penalty: float | None = None
    """Penalty of a turn whose response fails projection; None: the preset's."""
    no_effect_penalty: float | None = None
    """Penalty of a well-formed turn the env reports as without effect (ALFWorld: "Nothing happens."); sdar-gym's
    own, 0 in the paper preset; None: the preset's."""
    progress_reward: float | None = None
    """Reward per unit of the env's ``info["progress"]`` (ALFWorld: ``--env-kwargs progress true``), kept by the
    turn that made it; sdar-gym's own, 0 in the paper preset; None: the preset's."""
    win_reward: float | None = None
    """Reward of a won episode's last turn; None: the preset's."""
    skills: str = "official"
    """Skill retrieval strategy for the teacher (and the student, for skill_grpo): official (general skills plus
    the task type's, as the released code), full, task_type, topk, kmeans, ucb, random."""
    skills_k: int = 3
    """Skills retrieved per task."""
    skills_embedder: str = "default"
    """Embedder of the skill library: default (MiniLM), hashing, or a sentence-transformers id."""
    skills_budget_chars: int | None = None
    """Cap on the rendered skill context, in characters."""
    skills_budget_tokens: int | None = None
    """Cap on the rendered skill context, in tokens of the policy's tokenizer."""
    env_pool: Literal["inline", "process", "ray", "http"] = "inline"
    """Where envs run: in this process, worker processes, Ray actors, or HTTP env servers."""
    num_envs: int = 8
    """Env slots in the pool (and the generation batch size)."""
    env_kwargs: dict[str, str] = field(default_factory=dict)
    """Extra env constructor arguments, e.g. ``--env-kwargs data_dir DIR split train``."""
    output: Path = Path("runs/run")
    """Run folder: metrics.jsonl, tensorboard/, checkpoints/, config.json."""
    resume: bool = False
    """Continue the run in --output from its latest checkpoint."""
    seed: int = 0
    """Seed of task sampling, generation and a LoRA adapter's initialization; a resumed run replays the same choices."""
    temperature: float = 1.0
    """Sampling temperature of the rollout (0: greedy, whose turns are scored at temperature 1)."""
    max_new_tokens: int | None = None
    """Tokens per response at most; None: the preset's."""
    learner_args: dict[str, str] = field(default_factory=dict)
    """Learner settings, e.g. ``--learner-args lr 1e-5 distill_coef 0.02 gate_beta 5``."""
    lora_rank: int = 0
    """LoRA rank (0: full fine-tuning)."""
    demo_games: int = 200
    """Tasks of the training set on which the env's expert plays the demonstrations of ``--learner-args demo_coef``
    (a supervised loss beside RL; off by default, as in the released code); unused without it."""
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """Model dtype (auto: bf16 on a GPU, fp32 on CPU)."""
    device: str = "auto"
    """Torch device (auto: cuda when available)."""
    save_every: int = 10
    """Checkpoint every this many steps (and at the end)."""
    eval_every: int | None = None
    """Validate every this many steps, before the first step and after the last: held-out success, logged as
    ``eval/success``; 0: never; None: the preset's (paper: 5, the released trainer.test_freq)."""
    eval_tasks: int | None = None
    """Held-out tasks per validation, a fixed sample stratified by task type, each played once; None: the
    preset's (paper: 128, the released val_data_size)."""
    eval_temperature: float | None = None
    """Sampling temperature of validation (0: greedy); None: the preset's."""
    eval_env_kwargs: dict[str, str] = field(default_factory=dict)
    """Env arguments of the held-out tasks, over --env-kwargs (default: the env spec's held-out split, e.g.
    ALFWorld's valid_seen)."""
    threads: int = 0
    """Torch CPU threads (0: torch's default; 1 is often faster on a busy shared CPU)."""
    update_threads: int | None = None
    """Torch CPU threads of the policy update in one process on a CPU (None: as --threads; 0: picked as the
    run goes by timing the update's passes at 1, 2 and 4 threads, see learners.policy_model.ThreadTuner; N:
    always N). The rollout keeps --threads. A tuned run is the same up to float rounding, not bit for bit."""
    tensorboard: bool = True
    """Also write TensorBoard event files."""
    wandb_project: str | None = None
    """Log to this Weights & Biases project (needs wandb installed)."""
    progress: bool = True
    """Show a rich progress bar."""
    generator: Literal["hf", "vllm", "openai"] = "hf"
    """Rollout generation backend: hf (this process), vllm (in-process engine; the [vllm] extra and a GPU),
    openai (OpenAI-compatible servers given by --generator-args.urls)."""
    generator_args: GeneratorArgs = field(default_factory=GeneratorArgs)
    """Settings of the vllm and openai generators."""
    choose_admissible: bool | None = None
    """Play only listed actions: the sampled action is replaced by the admissible one drawn from the model's own
    sequence probabilities (learners.admissible_choice; hf generator). sdar-gym's own: False in the paper preset
    (the released code plays the free text); None: the preset's."""
    launcher: Literal["none", "torchrun", "accelerate"] = "none"
    """Start --num-processes data-parallel learner processes with torchrun or accelerate launch."""
    num_processes: int = 1
    """Processes (one per GPU) for --launcher."""
    accelerate_config: Path | None = None
    """accelerate launch's config file (e.g. configs/accelerate/ddp.yaml; multi-node settings live there)."""

    def run(self) -> dict[str, float]:
        from learners.policy_model import set_threads

        set_threads(self.threads)
        if self.launcher != "none" and "SDAR_GYM_LAUNCHED" not in os.environ:  # learners.distributed.LAUNCHED (torch-free here)
            from learners.distributed import launch

            return launch(self.launcher, self.num_processes, self.accelerate_config)
        return Trainer(self).train()


def step_tasks(all_tasks: list[Any], n: int, seed: int, step: int) -> list[Any]:
    """The tasks of one step: a fixed function of (seed, step), so resumed runs replay them."""
    rng = random.Random(seed * 1_000_003 + step)
    return rng.sample(all_tasks, n) if n <= len(all_tasks) else [rng.choice(all_tasks) for _ in range(n)]


def load_policy(cfg: TrainArgs) -> PolicyModel:
    import torch

    from learners.algorithms import learner_entry
    from learners.policy_model import PolicyModel, PolicyModelConfig

    model = cfg.model
    if model is None:
        from learners.sft import ensure_tiny_policy

        model = str(ensure_tiny_policy(cfg.env, progress=cfg.progress, env_kwargs=parse_env_kwargs(cfg.env_kwargs)))
    _warn_on_other_history(model, cfg)
    pcfg = PolicyModelConfig(model=model, lora_rank=cfg.lora_rank, dtype=cfg.dtype, device=cfg.device)
    kl = float(cfg.learner_args.get("kl_coef", learner_entry(cfg.learner).config_cls.kl_coef))  # type: ignore[arg-type]
    torch.manual_seed(cfg.seed)  # a LoRA adapter's random init follows the run's seed, whatever the process drew before
    return PolicyModel.from_pretrained(pcfg, with_reference=kl > 0)


def _warn_on_other_history(model: str, cfg: TrainArgs) -> None:
    """A tiny policy built by ``sdar-gym sft --history-length N`` learned prompts with N past turns; warn when this run shows another number."""
    from learners.sft import built_history_length
    from sdar_gym.agent import AgentConfig, TextAgent
    from sdar_gym.registration import env_entry

    built = built_history_length(model)
    shown = TextAgent(env_entry(cfg.env).name, AgentConfig(history_length=cfg.history_length)).spec.history_length
    if built is not None and built != shown:
        warnings.warn(f"{model} learned from prompts with {built} past turns (sdar-gym sft --history-length); this run shows {shown}: "
                      f"pass --history-length {built} to train as it learned", stacklevel=2)


def load_skills(cfg: TrainArgs, needed: bool, tokenizer=None) -> SkillContext | None:
    if not needed:
        return None
    from sdar_gym.agent import TextAgent
    from sdar_gym.registration import env_entry
    from skills import default_library

    name = env_entry(cfg.env).name
    library = default_library(name, embedder=cfg.skills_embedder)
    return SkillContext(library, strategy=cfg.skills, k=cfg.skills_k, budget_chars=cfg.skills_budget_chars, budget_tokens=cfg.skills_budget_tokens,
        tokenizer=tokenizer, seed=cfg.seed, with_skills=TextAgent(name).with_skills,
    )


def rollout(policy: PolicyModel, pool, tasks: list[Any], cfg: TrainArgs, seed: int, group_size: int, skills=None, temperature: float | None = None,
            agent=None, generator=None) -> list[Episode]:
    """G episodes of each task through the rollout layer's async collector (sampled by ``generator``,
    by default the HF generator over ``policy``)."""
    from sdar_gym.rollout import collect

    sampling = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature if temperature is None else temperature)
    generator = generator or policy.as_policy(max_batch_size=max(1, cfg.num_envs))
    return asyncio.run(collect(generator, pool, tasks, group_size=group_size, max_turns=cfg.max_turns, sampling=sampling, seed=seed, skills=skills, agent=agent))


def resolve_cpu_preset(cfg: TrainArgs, announce: bool = True) -> TrainArgs:
    """With ``--preset auto`` (the default), the CPU preset (learners.settings) fills the options left
    unset for the built-in tiny policy on a machine without a GPU; otherwise ``auto`` is the paper preset."""
    import torch

    from learners.settings import apply_cpu_preset, wants_cpu_preset

    if not wants_cpu_preset(cfg, torch.cuda.is_available()):
        return cfg
    why = "--preset cpu" if cfg.preset == "cpu" else "built-in tiny policy, no GPU"
    cfg, applied = apply_cpu_preset(cfg)
    cfg = replace(cfg, preset="cpu")
    if announce and applied:
        values = ", ".join(f"{k}={v}" for k, v in applied.items())
        print(f"CPU preset ({why}): {values}. Pass --preset paper for the paper's values.", flush=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return cfg


COLLAPSE_ROLLOUTS = 64
"""Rollouts, over the latest steps, that must all fail before training success is reported as
collapsed: on the CPU preset's steps of 16 rollouts one step without a win is ordinary."""


class Trainer:
    def __init__(self, cfg: TrainArgs, policy: PolicyModel | None = None, skills: SkillContext | None = None) -> None:
        from learners import distributed
        from learners.algorithms import learner_entry, make_learner
        from learners.checkpoint import latest_checkpoint, load_checkpoint
        from learners.generators import make_generator
        from learners.policy_model import thread_candidates

        if policy is None:
            cfg = resolve_cpu_preset(cfg, announce=cfg.progress)
        entry = learner_entry(cfg.learner)
        cfg, self.agent = resolve_train(cfg)  # the preset fills every option left unset
        for name in ("steps", "group_size", "tasks_per_step", "max_turns", "max_new_tokens", "num_envs"):
            if getattr(cfg, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(cfg, name)}")
        if cfg.eval_every < 0 or (cfg.eval_every and cfg.eval_tasks < 1):
            raise ConfigError(f"eval_every must be >= 0 (0: never) and eval_tasks at least 1, got {cfg.eval_every} and {cfg.eval_tasks}")
        for name in ("temperature", "eval_temperature"):
            if not 0.0 <= getattr(cfg, name) < math.inf:
                raise ConfigError(f"{name} must be >= 0 (0: greedy), got {getattr(cfg, name)}")
        if cfg.update_threads is not None and cfg.update_threads < 0:
            raise ConfigError(f"update_threads must be >= 0, got {cfg.update_threads}")
        if cfg.lora_rank < 0:
            raise ConfigError(f"lora_rank must be >= 0 (0: full fine-tuning), got {cfg.lora_rank}")
        self.cfg = cfg
        self.env_kwargs = parse_env_kwargs(cfg.env_kwargs)
        self.dp = distributed.current()
        if cfg.tasks_per_step % self.dp.world_size:
            raise ConfigError(f"tasks_per_step ({cfg.tasks_per_step}) must be a multiple of the {self.dp.world_size} processes (each rolls out whole groups)")
        if self.dp.rank > 0:
            self.dp.barrier()  # rank 0 loads first (and builds the default tiny policy when it is missing)
        self.policy = policy or load_policy(cfg)
        if self.dp.rank == 0:
            self.dp.barrier()
        self.run_dir = Path(cfg.output)
        ckpt = latest_checkpoint(self.run_dir)
        if cfg.resume and ckpt is None:
            raise DataError(f"--resume: no checkpoint under {self.run_dir}/checkpoints")
        if not cfg.resume and ckpt is not None:
            raise ConfigError(f"{self.run_dir} already holds a run; pass --resume to continue it or choose another --output")
        if cfg.resume:
            self.policy.load_weights(ckpt / "model")  # before the learner's engine shards the weights
        needs_skills = entry.learner_cls.uses_teacher or entry.learner_cls.student_skills
        self.skills = skills if skills is not None or not needs_skills else load_skills(cfg, needs_skills, self.policy.tokenizer)
        # the learner recomputes log-probs at the rollout's temperature unless told otherwise: ratio 1 at step 0
        learner_args = {"temperature": str(cfg.temperature), **cfg.learner_args}
        self.learner: PolicyGradientLearner = make_learner(cfg.learner, self.policy, self.skills, learner_args)
        self.tasks, self.task_types = task_list(cfg.env, self.env_kwargs)
        if self.learner.config.demo_coef:
            if self.dp.rank > 0:
                self.dp.barrier()  # rank 0 plays the expert games and caches them
            self.learner.demonstrations = self._demonstrations()
            if self.dp.rank == 0:
                self.dp.barrier()
        if cfg.update_threads is not None and self.policy.device.type == "cpu" and self.dp.world_size == 1:
            self.learner.tune_threads((cfg.update_threads,) if cfg.update_threads else thread_candidates())
        self.dp = self.learner.dp  # the Accelerator that prepared the engine: DeepSpeed's checkpoints go through it
        self.eval_env_kwargs, self.eval_tasks = self._held_out()
        self.step = 0
        self.best_success = 0.0
        """Best rollout success of a step so far."""
        self.recent_success: collections.deque[float] = collections.deque(maxlen=-(-COLLAPSE_ROLLOUTS // (cfg.tasks_per_step * cfg.group_size)))
        """Success of the latest steps holding at least COLLAPSE_ROLLOUTS rollouts (a drop to 0 on all of them is reported loudly, once)."""
        self.collapse_reported = False
        self.best_eval = self.last_eval = 0.0
        """Best held-out success so far, and the last validation's (likewise)."""
        if cfg.resume:
            self.step = int(load_checkpoint(ckpt, self.policy, self.learner, weights=False)["step"])
        self.generator = make_generator(cfg.generator, self.policy, cfg.generator_args, run_dir=self.run_dir, max_batch_size=max(1, cfg.num_envs))
        if cfg.choose_admissible:
            from learners.admissible_choice import AdmissibleChoice

            self.generator = AdmissibleChoice(self.generator, cfg.env, self.agent, seed=cfg.seed)
        if self.step > 0:
            self.sync_generator()  # a resumed run's engine starts from the base weights

    def _demonstrations(self) -> list[tuple[list[int], list[int]]]:
        """(prompt ids, response ids) of each turn of the env expert's won games on ``demo_games`` of the
        training tasks, in the rollout's prompts (the warm start's recipe: ``learners.sft``), with this run's history length."""
        from learners.sft import demo_env_kwargs, encode_turn, expert_demonstrations

        cfg = self.cfg
        if cfg.demo_games < 1:
            raise ConfigError(f"demo_coef > 0 needs demo_games >= 1, got {cfg.demo_games}")
        games = min(cfg.demo_games, len(self.tasks))
        print(f"demo_coef {self.learner.config.demo_coef}: the {cfg.env} expert plays {games} training games (cached for later runs)", flush=True)
        rows = expert_demonstrations(cfg.env, cfg.demo_games, demo_env_kwargs(cfg.env, self.env_kwargs), cfg.max_turns, cfg.seed, self.tasks,
                                     history_length=cfg.history_length)
        print(f"demo_coef {self.learner.config.demo_coef}: {len(rows)} expert turns of {games} training games", flush=True)
        return [encode_turn(self.policy.tokenizer, messages, response) for messages, response, *_ in rows]

    def _held_out(self) -> tuple[dict[str, Any], list[Any]]:
        """Validation's env arguments and tasks: a fixed sample, stratified by task type, of the held-out split."""
        from learners.evaluate import stratified_sample
        from sdar_gym.registration import env_entry

        cfg = self.cfg
        if cfg.eval_every < 1:
            return {}, []
        kwargs = {**self.env_kwargs, **env_entry(cfg.env).eval_env_kwargs, **parse_env_kwargs(cfg.eval_env_kwargs)}
        try:
            ids, types = task_list(cfg.env, kwargs)
        except (ConfigError, DataError) as e:
            raise ConfigError(f"validation has no held-out tasks ({e}); name them with --eval-env-kwargs, or pass --eval-every 0") from None
        return kwargs, stratified_sample(ids, types, cfg.eval_tasks, seed=0)

    def validate(self) -> dict[str, float]:
        """Held-out success of the current policy (rank 0 plays, the others wait): each validation task once, at
        ``eval_temperature``, episode i sampling from a seed fixed by i, as ``sdar-gym eval`` plays them."""
        from learners.evaluate import evaluate

        cfg = self.cfg
        t0 = time.perf_counter()
        episodes: list[Episode] = []
        sampling = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.eval_temperature)
        with self.dp.full_weights(self.policy.scorer):
            if self.dp.rank == 0:
                episodes = evaluate(self.policy, cfg.env, self.eval_env_kwargs, self.eval_tasks, cfg.max_turns, cfg.num_envs, sampling,
                                    seed=EVAL_SEED, agent=self.agent, generator=self.generator)
        self.dp.barrier()
        played = [e for e in episodes if not e.failed]
        if not played:
            return {}
        return {"eval/success": sum(e.won for e in played) / len(played), "eval/episodes": float(len(played)), "perf/eval_s": time.perf_counter() - t0}

    def _report_collapse(self, metrics: dict[str, float]) -> None:
        """A drop of rollout success to 0 over the latest COLLAPSE_ROLLOUTS rollouts, after a success, is reported loudly, once."""
        success = metrics.get("rollout/all/success", 0.0)
        self.recent_success.append(success)
        if success > 0.0:
            self.collapse_reported = False
        elif self.best_success > 0.0 and not self.collapse_reported and len(self.recent_success) == self.recent_success.maxlen and not any(self.recent_success):
            metrics["warn/success_collapsed"] = 1.0
            self.collapse_reported = True
            print(f"WARNING: step {self.step}: success collapsed to 0 on every rollout of the last {len(self.recent_success)} step(s) "
                  f"(best step so far: {self.best_success:.2f})", file=sys.stderr, flush=True)
        self.best_success = max(self.best_success, success)

    def _report_validation(self, step: int, metrics: dict[str, float], say) -> None:
        """One line per validation; a collapse to zero after a success is reported loudly, once."""
        success = metrics.get("eval/success")
        if success is None:
            return
        if success == 0.0 and self.last_eval > 0.0:
            metrics["warn/eval_success_collapsed"] = 1.0
            print(f"WARNING: step {step}: held-out success collapsed to 0 on all {metrics['eval/episodes']:.0f} validation tasks "
                  f"(best so far: {self.best_eval:.3f})", file=sys.stderr, flush=True)
        self.best_eval, self.last_eval = max(self.best_eval, success), success
        say(f"step {step}: held-out success {success:.3f} ({metrics['eval/episodes']:.0f} tasks, {metrics['perf/eval_s']:.0f}s)")

    def sync_generator(self) -> None:
        """The learner's new weights into the generator (WeightSyncError stops training: no stale rollouts).
        Servers shared by every rank are synced once, by rank 0."""
        with self.dp.full_weights(self.policy.scorer):
            if self.dp.rank == 0 or not getattr(self.generator, "shared", False):
                self.generator.sync_weights(self.policy)
        self.dp.barrier()

    def _student_skills(self):
        if not self.learner.student_skills:
            return None
        assert self.skills is not None
        return self.skills.text

    def train(self) -> dict[str, float]:
        from learners.base import NonFiniteLossError
        from learners.checkpoint import engine_staging, latest_checkpoint, save_checkpoint
        from sdar_gym.progress import StageProgress
        from sdar_gym.rollout import make_pool

        cfg = self.cfg
        main = self.dp.rank == 0  # only rank 0 writes the run folder
        if main:
            atomic_write_json(self.run_dir / "config.json", _jsonable(asdict(cfg) | {"learner_config": asdict(self.learner.config)}))
            log = RunLog(self.run_dir, resume_step=self.step + 1, tensorboard=cfg.tensorboard, wandb_project=cfg.wandb_project, config=_jsonable(asdict(cfg)))
        pool = make_pool(cfg.env_pool, cfg.env, cfg.num_envs, self.env_kwargs)
        last: dict[str, float] = {}
        try:
            with StageProgress(cfg.progress and main, every_s=0.0) as progress:
                bar = progress.add(f"{cfg.learner} on {cfg.env}", total=cfg.steps, completed=self.step)
                if self.step == 0 and self.eval_tasks:  # the warm start's held-out success, the run's baseline
                    first = self.validate()
                    self._report_validation(0, first, progress.line)
                    if main and first:
                        log.log(0, first)
                while self.step < cfg.steps:
                    try:
                        last = self.train_step(pool)
                    except NonFiniteLossError as e:
                        saved = latest_checkpoint(self.run_dir)
                        kept = f"the last checkpoint ({saved.name}) is intact" if saved else "no checkpoint was written yet"
                        raise SdarGymError(f"step {self.step + 1}: {e}; nothing of this step was saved and {kept}") from None
                    self._report_collapse(last)
                    if self.eval_tasks and (self.step % cfg.eval_every == 0 or self.step == cfg.steps):
                        last.update(self.validate())
                        self._report_validation(self.step, last, progress.line)
                    if main:
                        log.log(self.step, last)
                    progress.update(bar, completed=self.step, status=f"success {last.get('rollout/all/success', 0):.2f}  reward {last.get('rollout/all/reward', 0):.2f}  step {last.get('perf/step_s', 0):.0f}s")
                    if self.step % cfg.save_every == 0 or self.step == cfg.steps:
                        # every process joins the gathers of a sharded learner; rank 0 writes the checkpoint of all
                        weights = self.dp.full_state_dict(self.policy.scorer) if self.dp.sharded else None
                        learner_state = self.learner.state_dict()
                        engine = engine_staging(self.run_dir, self.step) if self.dp.deepspeed else None
                        if engine is not None:
                            self.dp.save_engine_state(engine)  # each process its shards of the optimizer state
                        if main:
                            save_checkpoint(self.run_dir, self.step, self.policy, self.learner, {"config": _jsonable(asdict(cfg))},
                                            weights=weights, learner_state=learner_state, engine=engine)
                    self.dp.barrier()
        finally:
            asyncio.run(pool.aclose())
            self.generator.close()
            if main:
                log.close()
            self.dp.close()
        if main and cfg.progress:
            summary = validation_summary(self.run_dir)
            if summary:
                print(summary, flush=True)
        return last

    def train_step(self, pool) -> dict[str, float]:
        """One RL step (rollout on this step's tasks, then one learner update); returns its metrics."""
        import torch

        cfg = self.cfg
        step = self.step + 1
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        t0 = time.perf_counter()
        tasks = step_tasks(self.tasks, cfg.tasks_per_step, cfg.seed, step)[self.dp.rank :: self.dp.world_size]  # this rank's groups
        seed = cfg.seed * 7919 + step + 104_729 * self.dp.rank
        with self.dp.full_weights(self.policy.scorer):  # a sharded learner gathers the weights to generate
            episodes = rollout(self.policy, pool, tasks, cfg, seed=seed, group_size=cfg.group_size, skills=self._student_skills(), agent=self.agent, generator=self.generator)
        t_roll = time.perf_counter() - t0
        metrics = episode_metrics(episodes, prefix="rollout")
        self.generator.prepare_update()
        metrics.update(self.learner.update(episodes))
        t_sync = time.perf_counter()
        self.sync_generator()
        metrics["perf/weight_sync_s"] = time.perf_counter() - t_sync
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


EVAL_SEED = 12345
"""Sampling seed of validation episodes: the same for every validation and every run, so that they compare."""


def validation_summary(run_dir: Path) -> str | None:
    """The run's last line: held-out success at the warm start (step 0) and at the last validation."""
    from learners.run_log import read_metrics

    points = [(r["step"], r["eval/success"], r.get("eval/episodes")) for r in read_metrics(run_dir) if r.get("eval/success") is not None]
    if not points:
        return None
    (s0, first, n), (s1, final, _) = points[0], points[-1]
    verdict = "above" if final > first else "not above"
    return (f"held-out success: {first:.3f} at step {s0} (warm start) -> {final:.3f} at step {s1}, {100 * (final - first):+.1f} points, "
            f"{verdict} the warm start ({n:.0f} validation tasks)")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
