"""The ``sdar-gym`` command line (tyro).

Each subcommand is a dataclass of arguments with a ``run()`` method, found in the registries
below. Groups (``data``, ``skills``, ``serve``) are registries of their own. Argument classes
live beside the code they drive and must not import torch at module import.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, make_dataclass
from typing import Annotated, Any, Union

import tyro

from env_servers.env_server import ServeEnvArgs
from env_servers.retriever import ServeRetrieverArgs
from learners.cli import EvalArgs, PlotArgs, SFTArgs, TrainArgs
from sdar_gym.core import SdarGymError
from sdar_gym.envs.alfworld.equivalence import EquivalenceArgs
from sdar_gym.envs.alfworld.fast.compile import CompileArgs
from sdar_gym.envs.alfworld.generator import GenerateALFWorldArgs
from sdar_gym.envs.search_qa.generator import GenerateSearchQAArgs
from sdar_gym.envs.search_qa.retrievers import BuildSearchIndexArgs
from sdar_gym.envs.webshop.generator import GenerateWebShopArgs
from sdar_gym.play import PlayArgs
from skills.cli import SkillsBuildArgs, SkillsQueryArgs, SkillsStatsArgs


@dataclass
class EnvsArgs:
    """List the registered envs with their gymnasium ids."""

    def run(self) -> None:
        from rich.console import Console
        from rich.table import Table

        from sdar_gym.specs import ENV_SPECS

        table = Table(title="sdar-gym envs")
        for column in ("name", "gymnasium id", "description"):
            table.add_column(column)
        for e in ENV_SPECS.values():
            table.add_row(e.name, e.gym_id, e.description)
        Console().print(table)


Registry = dict[str, tuple[Any, str]]
"""Subcommand name -> (argument dataclass or nested group, one-line description)."""

DATA_COMMANDS: Registry = {
    "alfworld": (GenerateALFWorldArgs, "Generate solvable ALFWorld games offline from the alfworld wheel's files."),
    "webshop": (GenerateWebShopArgs, "Generate a WebShop catalog and goals in the original's JSON schema."),
    "search-qa": (GenerateSearchQAArgs, "Generate a synthetic encyclopedia corpus with single-hop, bridge and comparison questions."),
    "search-qa-index": (BuildSearchIndexArgs, "Build and save a BM25 or dense index of a Search-QA corpus."),
}

SERVE_COMMANDS: Registry = {
    "env": (ServeEnvArgs, "Host instances of an env over HTTP (JSON) for the http rollout pool."),
    "retriever": (ServeRetrieverArgs, "Serve a saved search index with Search-R1's POST /retrieve schema."),
}

SKILL_COMMANDS: Registry = {
    "build": (SkillsBuildArgs, "Build a skill library from skill files and/or episodes (JSONL)."),
    "query": (SkillsQueryArgs, "Retrieve skills for a task text; print them with their scores."),
    "stats": (SkillsStatsArgs, "Summarize a saved skill library."),
}

CHECK_COMMANDS: Registry = {
    "alfworld-equivalence": (
        EquivalenceArgs,
        "Replay expert and random walks in TextWorld and the fast engine; exit 1 on any difference.",
    ),
    "alfworld-compile": (CompileArgs, "Compile a split's games for the fast engine; exit 1 if any cannot be played."),
}

COMMANDS: Registry = {
    "envs": (EnvsArgs, "List the registered envs."),
    "data": (DATA_COMMANDS, "Generate offline data sets (games, catalogs, corpora)."),
    "check": (CHECK_COMMANDS, "Check engines and data for consistency."),
    "play": (PlayArgs, "Play episodes with a human, expert or random policy; print success per task type."),
    "serve": (SERVE_COMMANDS, "Run servers: env hosts for the http rollout pool, the Search-QA retriever."),
    "skills": (SKILL_COMMANDS, "Build, query and summarize skill libraries (privileged context for SDAR)."),
    "train": (TrainArgs, "Train a policy with RL (sdar, grpo and the paper's baselines)."),
    "eval": (EvalArgs, "Evaluate a policy; print the paper's Table 1 breakdown."),
    "plot": (PlotArgs, "Save PNG curves (success, reward, gate, gap) of a training run."),
    "sft": (SFTArgs, "Build the built-in tiny policy: SFT warm start on expert demonstrations."),
}


def _group(registry: Registry) -> Any:
    """A tyro union of subcommands built from a registry (nested registries become groups)."""
    options = []
    for name, (target, description) in registry.items():
        cls = _nested(name, target) if isinstance(target, dict) else target
        options.append(Annotated[cls, tyro.conf.subcommand(name, description=description)])
    if len(options) == 1:  # a one-member Union is its member, not a subcommand; a hidden None keeps it one
        options.append(Annotated[None, tyro.conf.Suppress])
    return Union[tuple(options)]  # noqa: UP007 (a runtime-built union)


def _nested(name: str, registry: Registry) -> type:
    """A dataclass holding one positional sub-subcommand, e.g. ``sdar-gym data alfworld``."""
    return make_dataclass(
        f"{name.title().replace('-', '')}Group",
        [("command", Annotated[_group(registry), tyro.conf.arg(name="")])],
        namespace={"run": lambda self: self.command.run()},
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``sdar-gym`` console script."""
    command = tyro.cli(
        _group(COMMANDS),
        args=argv,
        prog="sdar-gym",
        description="sdar-gym: an agent gym with pluggable RL learners (SDAR, GRPO and baselines).",
        config=(tyro.conf.OmitSubcommandPrefixes,),
    )
    try:
        command.run()
    except SdarGymError as e:
        print(f"sdar-gym: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
