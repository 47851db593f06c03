"""Building skills from experience: episodes in, summarized and de-duplicated skills out.

**Episode file** (JSONL, one episode per line)::

    {"task": "put a clean mug in coffeemachine.",        # required: the instruction or question
     "task_type": "pick_clean_then_place_in_recep",      # optional ('' = general)
     "env": "alfworld",                                   # optional, else the --env given
     "task_id": "...",                                    # optional
     "won": true,                                         # optional when score is given
     "score": 1.0,                                        # optional when won is given
     "turns": [{"action": "go to countertop 1",          # required: the actions in order, each with
                "observation": "You arrive at ...",       #   the env's reply to it
                "action_valid": true}]}                   #   (optional; else 'Nothing happens.' marks invalid)

An episode counts as a success when ``won`` is true (or, without ``won``, when ``score`` reaches
``success_score``). Successes become *plan* skills (the working action sequence); failures become
*pitfall* skills (invalid and looping actions). A summarizer turns one episode into one skill: the
offline :class:`TemplateSummarizer`, or :class:`LLMSummarizer` around any ``prompt -> text`` callable
(:func:`hf_generate` makes one from a Hugging Face model). Near-duplicates are then merged by
embedding similarity (:func:`merge_near_duplicates`).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdar_gym.core import ConfigError, DataError
from sdar_gym.io import read_jsonl
from skills.embedders import Embedder, make_embedder
from skills.library import embed_skills
from skills.records import Skill, slugify

INVALID_OBSERVATIONS = ("Nothing happens.",)
"""Observations that mean the action had no effect, for episodes whose turns lack ``action_valid``."""
MAX_PLAN_STEPS = 30


@dataclass
class EpisodeTurn:
    action: str
    observation: str = ""
    action_valid: bool = True


@dataclass
class EpisodeRecord:
    """One finished episode, as read from an episode file (see the module docstring)."""

    task: str
    turns: list[EpisodeTurn]
    won: bool
    score: float
    task_type: str = ""
    env: str = ""
    task_id: str = ""

    @property
    def valid_actions(self) -> list[str]:
        return [t.action for t in self.turns if t.action_valid]


def _episode_from_dict(data: Any, where: str, success_score: float) -> EpisodeRecord:
    if not isinstance(data, dict):
        raise DataError(f"{where}: an episode must be a JSON object, got {type(data).__name__}")
    if not isinstance(data.get("task"), str) or not data["task"].strip():
        raise DataError(f"{where}: episode field 'task' must be a non-empty string")
    if "won" not in data and "score" not in data:
        raise DataError(f"{where}: an episode needs 'won' or 'score'")
    score = data.get("score", 1.0 if data.get("won") else 0.0)
    if not isinstance(score, (int, float)) or isinstance(score, bool):
        raise DataError(f"{where}: episode field 'score' must be a number")
    won = data.get("won", score >= success_score)
    if not isinstance(won, bool):
        raise DataError(f"{where}: episode field 'won' must be true or false")
    turns_raw = data.get("turns")
    if not isinstance(turns_raw, list):
        raise DataError(f"{where}: episode field 'turns' must be a list of {{action, observation}} objects")
    turns = []
    for j, t in enumerate(turns_raw):
        if not isinstance(t, dict) or not isinstance(t.get("action"), str):
            raise DataError(f"{where}: turn {j} must be an object with a string 'action'")
        obs = t.get("observation", "")
        if not isinstance(obs, str):
            raise DataError(f"{where}: turn {j} 'observation' must be a string")
        valid = t.get("action_valid", obs.strip() not in INVALID_OBSERVATIONS)
        turns.append(EpisodeTurn(t["action"].strip(), obs, bool(valid)))
    for key in ("task_type", "env", "task_id"):
        if not isinstance(data.get(key, ""), str):
            raise DataError(f"{where}: episode field {key!r} must be a string")
    return EpisodeRecord(
        data["task"].strip(), turns, won, float(score), data.get("task_type", ""), data.get("env", ""), data.get("task_id", "")
    )


def load_episodes(path: str | os.PathLike, success_score: float = 1.0) -> list[EpisodeRecord]:
    """Read an episode JSONL file (see the module docstring for the schema)."""
    path = Path(path).expanduser()
    episodes = [_episode_from_dict(data, f"{path}:{lineno}", success_score) for lineno, data in read_jsonl(path, line_numbers=True)]
    if not episodes:
        raise DataError(f"no episodes in {path}")
    return episodes


def _verb(action: str) -> str:
    """The command word of an action: ``go to``, ``take``, ``search``, ``click``, ..."""
    m = re.match(r"\s*([A-Za-z]+)", action)
    word = m.group(1).lower() if m else action[:12]
    return "go to" if word == "go" else word


def _dedupe_consecutive(items: list[str]) -> list[str]:
    return [a for i, a in enumerate(items) if i == 0 or a != items[i - 1]]


def _skill_id(env: str, kind: str, ep: EpisodeRecord) -> str:
    digest = hashlib.sha1(json.dumps([ep.task, [t.action for t in ep.turns]]).encode()).hexdigest()[:6]
    return f"{env or 'env'}-{kind}-{slugify(ep.task, 24)}-{digest}"


Summarizer = Callable[[EpisodeRecord], "Skill | None"]
"""Turns one episode into one skill (or None to skip it)."""


@dataclass
class TemplateSummarizer:
    """Offline, rule-based summaries: the working plan of a success, the mistakes of a failure."""

    source: str = "episodes"

    def __call__(self, ep: EpisodeRecord) -> Skill | None:
        return self._plan(ep) if ep.won else self._pitfalls(ep)

    def _base(self, ep: EpisodeRecord, kind: str, title: str, text: str) -> Skill:
        return Skill(
            id=_skill_id(ep.env, kind, ep),
            title=title,
            text=text,
            env=ep.env,
            task_types=[ep.task_type] if ep.task_type else [],
            tags=[kind, "from-episodes"],
            source=self.source,
            examples=[ep.task],
            meta={"kind": kind, "support": 1, "score": ep.score, "steps": len(ep.turns)},
        )

    def _plan(self, ep: EpisodeRecord) -> Skill | None:
        steps = _dedupe_consecutive(ep.valid_actions)
        if not steps:
            return None
        lines = [f"{i}. `{a}`" for i, a in enumerate(steps[:MAX_PLAN_STEPS], start=1)]
        if len(steps) > MAX_PLAN_STEPS:
            lines.append(f"... and {len(steps) - MAX_PLAN_STEPS} more steps.")
        pattern = " -> ".join(_dedupe_consecutive([_verb(a) for a in steps]))
        text = (
            f'These {len(steps)} commands solved the task "{ep.task}" (score {ep.score:.2f}); '
            f"reuse the pattern with this task's own objects and places.\n" + "\n".join(lines) + f"\nPattern: {pattern}."
        )
        return self._base(ep, "plan", f"A working plan for: {ep.task}", text)

    def _pitfalls(self, ep: EpisodeRecord) -> Skill | None:
        if not ep.turns:
            return None
        notes = []
        invalid = Counter(t.action for t in ep.turns if not t.action_valid)
        if invalid:
            shown = ", ".join(f"`{a}` ({n}x)" for a, n in invalid.most_common(5))
            notes.append(f"- These commands had no effect; check names, numbers and your location instead of repeating them: {shown}.")
        repeats = [(a, n) for a, n in Counter(ep.valid_actions).most_common(3) if n >= 3]
        if repeats:
            shown = ", ".join(f"`{a}` ({n}x)" for a, n in repeats)
            notes.append(f"- The agent looped on {shown}; after a place has been checked, move on to one not yet visited.")
        tail = " -> ".join(f"`{a}`" for a in _dedupe_consecutive([t.action for t in ep.turns])[-4:])
        notes.append(f"- The attempt ended after {len(ep.turns)} commands without reaching the goal; its last commands were {tail}.")
        text = f'An attempt at the task "{ep.task}" failed (score {ep.score:.2f}). Avoid its mistakes:\n' + "\n".join(notes)
        return self._base(ep, "pitfall", f"Pitfalls seen on: {ep.task}", text)


LLM_PROMPT = """You write short, reusable advice ("skills") for an agent acting in a text environment.
Below is one {outcome} episode. Write advice that would help on similar tasks: general steps, the
exact command formats that worked, and mistakes to avoid. Do not restate this episode step by step.

Task: {task}
Task type: {task_type}
Outcome: {outcome} (score {score:.2f})
Trajectory:
{trajectory}

Answer in this format:
Title: <one line>
<the advice, at most 8 lines>
"""


@dataclass
class LLMSummarizer:
    """Summaries written by a language model: any ``prompt -> completion`` callable.

    The completion's first ``Title:`` line (or first line) becomes the title, the rest the text.
    An empty completion skips the episode.
    """

    generate: Callable[[str], str]
    name: str = "llm"
    max_turns: int = 40
    """Longer trajectories are cut to their last ``max_turns`` turns in the prompt."""

    def __call__(self, ep: EpisodeRecord) -> Skill | None:
        trajectory = "\n".join(f"> {t.action}\n{t.observation.strip()[:300]}" for t in ep.turns[-self.max_turns :])
        outcome = "successful" if ep.won else "failed"
        prompt = LLM_PROMPT.format(outcome=outcome, task=ep.task, task_type=ep.task_type or "-", score=ep.score, trajectory=trajectory)
        completion = self.generate(prompt)
        if not isinstance(completion, str):
            raise ConfigError(f"the LLM summarizer's generate() must return a str, got {type(completion).__name__}")
        lines = [line for line in completion.strip().splitlines()]
        if not lines or not completion.strip():
            return None
        title_at = next((i for i, line in enumerate(lines) if line.lower().startswith("title:")), None)
        if title_at is None:
            title, body = lines[0].lstrip("# ").strip(), lines[1:]
        else:
            title, body = lines[title_at].split(":", 1)[1].strip(), lines[title_at + 1 :]
        text = "\n".join(body).strip() or title
        title = title[:120]  # a model that never ends its title line must not make a page-long heading
        kind = "plan" if ep.won else "pitfall"
        return Skill(
            id=_skill_id(ep.env, f"llm-{kind}", ep),
            title=title or f"Advice for: {ep.task}",
            text=text,
            env=ep.env,
            task_types=[ep.task_type] if ep.task_type else [],
            tags=[kind, "from-episodes", "llm"],
            source=f"llm:{self.name}",
            examples=[ep.task],
            meta={"kind": kind, "support": 1, "score": ep.score},
        )


def hf_generate(model: str, max_new_tokens: int = 256, device: str | None = None) -> Callable[[str], str]:
    """A greedy ``prompt -> completion`` callable over a Hugging Face causal LM (loaded now, lazily imported)."""
    try:
        from transformers import pipeline
    except ImportError:
        raise ConfigError("the HF summarizer needs transformers (pip install 'sdar-gym[train]')") from None
    pipe = pipeline("text-generation", model=model, device=device)

    def generate(prompt: str) -> str:
        messages = [{"role": "user", "content": prompt}]
        chat = getattr(pipe.tokenizer, "chat_template", None)
        out = pipe(messages if chat else prompt, max_new_tokens=max_new_tokens, do_sample=False, return_full_text=False)
        text = out[0]["generated_text"]
        return text[-1]["content"] if isinstance(text, list) else text

    return generate


SUMMARIZERS: dict[str, Callable[..., Summarizer]] = {
    "template": lambda model=None, source="episodes": TemplateSummarizer(source=source),
    "hf": lambda model=None, source="episodes": LLMSummarizer(hf_generate(_need_model(model)), name=f"hf:{model}"),
}
"""Summarizers by name; each factory takes ``model`` (HF id or path, for ``hf``) and ``source``."""


def _need_model(model: str | None) -> str:
    if not model:
        raise ConfigError("the 'hf' summarizer needs a model id or path (--llm-model)")
    return model


def merge_near_duplicates(skills: list[Skill], embedder: Embedder | str | None = None, threshold: float = 0.9) -> list[Skill]:
    """Merge skills whose embeddings have cosine similarity >= ``threshold``.

    Only skills of the same env, task types and kind (plan/pitfall/handwritten) merge. Order is
    priority: the earlier skill is kept, and absorbs the later one's examples, tags and support
    count; its ``meta['merged']`` lists the ids merged into it.
    """
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"merge threshold must be in (0, 1], got {threshold}")
    if not skills:
        return []
    vectors = embed_skills(skills, make_embedder(embedder))
    kept: list[int] = []
    merged: list[Skill] = []
    by_id: dict[str, Skill] = {}
    for i, skill in enumerate(skills):
        group = (skill.env, tuple(sorted(skill.task_types)), skill.meta.get("kind", "handwritten"))
        target = by_id.get(skill.id)  # the same id (e.g. the same episode twice) always merges
        if target is None and kept:
            sims = vectors[kept] @ vectors[i]
            for j in np.argsort(-sims, kind="stable"):
                if sims[j] < threshold:
                    break
                other = merged[j]
                if (other.env, tuple(sorted(other.task_types)), other.meta.get("kind", "handwritten")) == group:
                    target = other
                    break
        if target is None:
            kept.append(i)
            merged.append(Skill(**skill.to_dict()))  # a deep copy: merging never edits the input
            by_id[skill.id] = merged[-1]
            continue
        target.meta["support"] = target.meta.get("support", 1) + skill.meta.get("support", 1)
        target.meta.setdefault("merged", []).append(skill.id)
        target.examples += [e for e in skill.examples if e not in target.examples][: max(0, 5 - len(target.examples))]
        target.tags += [t for t in skill.tags if t not in target.tags]
    return merged


@dataclass
class EpisodeSkillBuilder:
    """Episodes -> skills: summarize each (best successes first), then merge near-duplicates."""

    summarizer: Summarizer = field(default_factory=TemplateSummarizer)
    embedder: Embedder | str | None = None
    """Embedder for merging (default: the bundled MiniLM)."""
    merge_threshold: float = 0.9
    """Cosine similarity at and above which two skills of one group are merged."""

    def build(self, episodes: list[EpisodeRecord], env: str = "") -> list[Skill]:
        for ep in episodes:
            ep.env = ep.env or env
        ordered = sorted(episodes, key=lambda e: (not e.won, -e.score, len(e.turns)))
        skills = [s for s in map(self.summarizer, ordered) if s is not None]
        return merge_near_duplicates(skills, self.embedder, self.merge_threshold)
