"""``sdar-gym play``: run episodes of any env with a human, the expert, or a random policy."""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Literal

from rich.console import Console
from rich.table import Table

from sdar_gym.core import ConfigError, StepInfo, TextEnv

ActionChooser = Callable[[TextEnv, str, StepInfo, random.Random], str]


def _human(env: TextEnv, obs: str, info: StepInfo, rng: random.Random) -> str:
    actions = info.get("admissible_actions")
    if actions:
        print("Admissible:", " | ".join(actions))
    return input("> ")


def _expert(env: TextEnv, obs: str, info: StepInfo, rng: random.Random) -> str:
    return env.expert_action() or ""


def _random(env: TextEnv, obs: str, info: StepInfo, rng: random.Random) -> str:
    actions = info.get("admissible_actions")
    return rng.choice(actions) if actions else ""


PLAY_POLICIES: dict[str, ActionChooser] = {"human": _human, "expert": _expert, "random": _random}


@dataclass
class PlayArgs:
    """Play episodes of an env and print success per task type."""

    env: str = "alfworld"
    """Env short name or gymnasium id (see `sdar-gym envs`)."""
    policy: Literal["human", "expert", "random"] = "expert"
    """Who chooses actions: you at the terminal, the env's oracle, or uniform over admissible actions."""
    episodes: int = 5
    """Number of episodes to play."""
    split: str | None = None
    """Data split for envs that have splits (ALFWorld: train, valid_seen, valid_unseen)."""
    seed: int = 0
    """Seed of the first episode; episode i uses seed+i."""
    max_steps: int | None = None
    """Override the env's step limit."""
    data_dir: str | None = None
    """Data folder for the env (defaults to the env's own default data)."""
    verbose: bool = False
    """Print every observation and action."""
    env_kwargs: dict[str, str] = field(default_factory=dict)
    """Extra keyword arguments for the env constructor (values parsed as JSON when they parse, else text)."""

    def run(self) -> dict[str, dict[str, float]]:
        from sdar_gym.registration import make_env, parse_env_kwargs

        if self.episodes < 1:
            raise ConfigError(f"episodes must be at least 1, got {self.episodes}")
        kwargs = parse_env_kwargs(self.env_kwargs)
        for key in ("split", "max_steps", "data_dir"):
            if getattr(self, key) is not None:
                kwargs[key] = getattr(self, key)
        env = make_env(self.env, **kwargs).unwrapped
        return play(env, PLAY_POLICIES[self.policy], self.episodes, self.seed, self.verbose or self.policy == "human")


def play(env: TextEnv, choose: ActionChooser, episodes: int, seed: int = 0, verbose: bool = False) -> dict[str, dict[str, float]]:
    """Play ``episodes`` episodes; print and return success rate and mean score per task type."""
    console = Console()
    rng = random.Random(seed)
    results: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        if verbose:
            console.print(f"[bold]Episode {ep}[/bold] ({info['task_type']})\n{obs}")
        steps = 0
        while True:
            action = choose(env, obs, info, rng)
            obs, reward, terminated, truncated, info = env.step(action)
            steps += 1
            if verbose:
                console.print(f"[cyan]> {action}[/cyan]\n{obs}")
            if terminated or truncated:
                break
        results[info["task_type"]].append((bool(info["won"]), float(info["score"])))
        console.print(f"episode {ep}: {info['task_type']} won={info['won']} score={info['score']:.2f} steps={steps}")
    return _summary(console, results)


def _summary(console: Console, results: dict[str, list[tuple[bool, float]]]) -> dict[str, dict[str, float]]:
    table = Table(title="Success per task type")
    for column in ("task type", "episodes", "success", "mean score"):
        table.add_column(column)
    summary = {}
    rows = sorted(results.items()) + [("all", [r for rs in results.values() for r in rs])]
    for task_type, rs in rows:
        success = sum(w for w, _ in rs) / len(rs)
        score = sum(s for _, s in rs) / len(rs)
        summary[task_type] = {"episodes": len(rs), "success": success, "score": score}
        table.add_row(task_type, str(len(rs)), f"{success:.1%}", f"{score:.3f}")
    console.print(table)
    return summary
