"""``sdar-gym skills build | query | stats``: argument dataclasses (no torch at import), and the registry
that plugs them into the gym's CLI."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from sdar_gym.core import ConfigError


@dataclass
class SkillsBuildArgs:
    """Build a skill library from skill files and/or episodes, and save it."""

    out: str
    """Folder to write the library to (replaced atomically)."""
    env: str = "alfworld"
    """Env whose built-in skills are used when --src is not given; also the env of episode skills."""
    src: str | None = None
    """A skill file or folder (.md/.json/.jsonl) to use instead of the env's built-in skills."""
    from_episodes: str | None = None
    """An episode JSONL file (schema in skills/builders.py) to turn into skills."""
    include_base: bool = True
    """With --from-episodes, also include the --src / built-in skills."""
    embedder: str = "default"
    """'default' (bundled MiniLM), 'hashing[-DIM]', or a sentence-transformers / HF model id or path."""
    index: Literal["auto", "flat", "ivf"] = "auto"
    """FAISS index kind; auto switches to IVF for large libraries."""
    summarizer: Literal["template", "hf"] = "template"
    """How episodes become skills: offline templates, or a Hugging Face model (--llm-model)."""
    llm_model: str | None = None
    """HF model id or path for --summarizer hf."""
    merge_threshold: float = 0.9
    """Cosine similarity at which near-duplicate episode skills are merged."""
    success_score: float = 1.0
    """Episodes without 'won' count as successes at this score or above."""

    def run(self) -> None:
        from rich.console import Console

        from skills.builders import SUMMARIZERS, EpisodeSkillBuilder, load_episodes
        from skills.builtin import builtin_dir
        from skills.embedders import make_embedder
        from skills.library import SkillLibrary
        from skills.records import load_skills

        embedder = make_embedder(self.embedder)
        skills = []
        if self.from_episodes is None or self.include_base:
            skills += load_skills(self.src) if self.src else load_skills(builtin_dir(self.env))
        if self.from_episodes is not None:
            episodes = load_episodes(self.from_episodes, self.success_score)
            summarize = SUMMARIZERS[self.summarizer](model=self.llm_model, source=f"episodes:{Path(self.from_episodes).name}")
            builder = EpisodeSkillBuilder(summarize, embedder, self.merge_threshold)
            built = builder.build(episodes, self.env)
            Console().print(f"{len(episodes)} episodes -> {len(built)} skills after merging near-duplicates")
            skills += built
        meta = {"built_from": {"env": self.env, "src": self.src, "from_episodes": self.from_episodes}}
        library = SkillLibrary.build(skills, embedder, index=self.index, meta=meta)
        library.save(self.out)
        Console().print(f"saved {len(library)} skills ({library.index_kind} index, {embedder.name}, dim {library.dim}) to {self.out}")


@dataclass
class SkillsQueryArgs:
    """Retrieve skills for a task text and print them with their scores."""

    text: tyro.conf.Positional[str]
    """The task text to retrieve skills for."""
    library: str
    """A saved library folder."""
    k: int = 3
    """How many skills to retrieve."""
    strategy: str = "topk"
    """Retrieval strategy: full, task_type, topk, kmeans, ucb or random."""
    task_type: str | None = None
    """The task's type (needed by task_type; narrows ucb)."""
    budget_chars: int | None = None
    """Character budget of the rendered context."""
    seed: int | None = None
    """Seed for random, ucb tie-breaks and kmeans clustering."""
    show_context: bool = False
    """Also print the rendered privileged context."""

    def run(self) -> None:
        from rich.console import Console
        from rich.table import Table

        from skills.library import SkillLibrary
        from skills.strategies import STRATEGIES

        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r}; expected one of {', '.join(STRATEGIES)}")
        library = SkillLibrary.load(self.library)
        r = library.retrieve(self.text, self.task_type, self.k, self.strategy, self.budget_chars, self.seed)
        table = Table(title=f"{self.strategy} skills for: {self.text}")
        table.add_column("rank", justify="right", no_wrap=True)
        table.add_column("score", justify="right", no_wrap=True)
        table.add_column("id", no_wrap=True)  # ids are what users copy: never cut them
        table.add_column("title", overflow="fold")
        table.add_column("task types", overflow="fold")
        for rank, (skill, score) in enumerate(zip(r.skills, r.scores), start=1):
            table.add_row(str(rank), f"{score:.4f}", skill.id, skill.title, ", ".join(skill.task_types) or "(general)")
        console = Console()
        console.print(table)
        if self.show_context:
            console.print(r.context, markup=False, highlight=False)


@dataclass
class SkillsStatsArgs:
    """Summarize a saved library: size, embedder, index, skills per env, task type and source."""

    library: str
    """A saved library folder."""

    def run(self) -> None:
        from rich.console import Console
        from rich.table import Table

        from skills.library import SkillLibrary

        library = SkillLibrary.load(self.library)
        console = Console()
        console.print(
            f"{len(library)} skills; embedder {library.embedder.name} (dim {library.dim}); {library.index_kind} index; "
            f"{int(library.ucb.counts.sum())} UCB updates"
        )
        for title, counter in (
            ("env", Counter(s.env or "-" for s in library.skills)),
            ("task type", Counter(t for s in library.skills for t in (s.task_types or ["(general)"]))),
            ("source", Counter(s.source for s in library.skills)),
        ):
            table = Table(title=f"skills per {title}")
            table.add_column(title)
            table.add_column("skills", justify="right")
            for key, n in sorted(counter.items()):
                table.add_row(key, str(n))
            console.print(table)
        if library.ucb.counts.sum():
            table = Table(title="most-shown skills (UCB)")
            for column in ("id", "shown", "mean reward"):
                table.add_column(column)
            for i in library.ucb.counts.argsort()[::-1][:10]:
                if library.ucb.counts[i]:
                    table.add_row(library.skills[i].id, str(int(library.ucb.counts[i])), f"{library.ucb.sums[i] / library.ucb.counts[i]:.3f}")
            console.print(table)


COMMANDS = {
    "skills": (
        {
            "build": (SkillsBuildArgs, "Build a skill library from skill files and/or episodes (JSONL)."),
            "query": (SkillsQueryArgs, "Retrieve skills for a task text; print them with their scores."),
            "stats": (SkillsStatsArgs, "Summarize a saved skill library."),
        },
        "Build, query and summarize skill libraries (privileged context for SDAR).",
    ),
}
"""``sdar-gym skills ...``, plugged into the gym's CLI through the entry-point group ``sdar_gym.commands``."""
