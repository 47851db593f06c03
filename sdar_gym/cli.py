"""The ``sdar-gym`` command line (tyro).

Each subcommand is a dataclass of arguments with a ``run()`` method; groups (``data``, ``check``,
``serve``, ``skills``) are registries of their own. The gym's own subcommands are listed here.
Packages above the gym (learners, skills, env_servers) plug theirs in through the entry-point
group ``sdar_gym.commands`` (pyproject.toml), as pytest and flake8 plugins do: each entry names a
registry of the same shape, so the gym never imports them. Argument classes live beside the code
they drive and must not import torch at module import.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, make_dataclass
from importlib.metadata import entry_points
from typing import Annotated, Any, Union

import tyro

from sdar_gym.core import ConfigError, SdarGymError
from sdar_gym.envs.alfworld.equivalence import EquivalenceArgs
from sdar_gym.envs.alfworld.fast.compile import CompileArgs
from sdar_gym.envs.alfworld.generator import GenerateALFWorldArgs
from sdar_gym.envs.search_qa.generator import GenerateSearchQAArgs
from sdar_gym.envs.search_qa.retrievers import BuildSearchIndexArgs
from sdar_gym.envs.webshop.generator import GenerateWebShopArgs
from sdar_gym.play import PlayArgs


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
"""Subcommand name -> (argument dataclass or nested registry, one-line description)."""

PLUGIN_GROUP = "sdar_gym.commands"
"""Entry-point group through which upper packages add subcommands: ``name = "package.module:COMMANDS"``."""

DATA_COMMANDS: Registry = {
    "alfworld": (GenerateALFWorldArgs, "Generate solvable ALFWorld games offline from the alfworld wheel's files."),
    "webshop": (GenerateWebShopArgs, "Generate a WebShop catalog and goals in the original's JSON schema."),
    "search-qa": (GenerateSearchQAArgs, "Generate a synthetic encyclopedia corpus with single-hop, bridge and comparison questions."),
    "search-qa-index": (BuildSearchIndexArgs, "Build and save a BM25 or dense index of a Search-QA corpus."),
}

CHECK_COMMANDS: Registry = {
    "alfworld-equivalence": (
        EquivalenceArgs,
        "Replay expert and random walks in TextWorld and the fast engine; exit 1 on any difference.",
    ),
    "alfworld-compile": (CompileArgs, "Compile a split's games for the fast engine; exit 1 if any cannot be played."),
}

GYM_COMMANDS: Registry = {
    "envs": (EnvsArgs, "List the registered envs."),
    "data": (DATA_COMMANDS, "Generate offline data sets (games, catalogs, corpora)."),
    "check": (CHECK_COMMANDS, "Check engines and data for consistency."),
    "play": (PlayArgs, "Play episodes with a human, expert or random policy; print success per task type."),
}


def plugin_commands() -> Registry:
    """The subcommands installed packages plug in (entry points of :data:`PLUGIN_GROUP`, by name)."""
    out: Registry = {}
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name):
        for name, command in ep.load().items():
            if name in out or name in GYM_COMMANDS:
                raise ConfigError(f"two packages define the subcommand {name!r} (the second is {ep.value})")
            out[name] = command
    return out


COMMANDS: Registry = {**GYM_COMMANDS, **plugin_commands()}


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
    if COMMANDS.keys() == GYM_COMMANDS.keys():
        print(
            f"sdar-gym: note: no package plugs subcommands into {PLUGIN_GROUP!r} (train, eval, serve, skills, ...); "
            "the installed metadata is stale: reinstall with `pip install -e .`",
            file=sys.stderr,
        )
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
