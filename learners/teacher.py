"""The self-distillation teacher's prompt: the student's prompt plus retrieved skill text.

The teacher is the current policy itself; only its prompt differs, and it scores the very
response ids the student sampled. Two templates (:data:`TEACHER_TEMPLATES`):

- ``official`` (default), as the released SDAR code builds it (verl/trainer/ppo/rlsd_ray_trainer.py,
  ``build_teacher_batch``): decode the student's whole prompt (special tokens kept), put
  ``[Privileged Skill Information]\n{skills}\n\n`` in front of everything, re-tokenize, and keep
  the last ``max_prompt_length`` tokens (left truncation).
- ``in_message``: the skill block inserted at the token level at the start of the last user
  message, every other student token kept exactly; never truncated.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

_SENTINEL = "\u2063SDAR_SENTINEL\u2063"

SKILL_HEADER = "Privileged guidance (skills retrieved for this task):\n"
"""Header of the ``in_message`` template."""
OFFICIAL_HEADER = "[Privileged Skill Information]\n{skills}\n\n"
"""The released code's skill prefix (rlsd_ray_trainer.py ``build_teacher_batch``; also Skill-GRPO's
observation prefix in verl/trainer/main_skill_grpo.py)."""


def _find_last(haystack: Sequence[int], needle: Sequence[int]) -> int:
    n = len(needle)
    for start in range(len(haystack) - n, -1, -1):
        if list(haystack[start : start + n]) == list(needle):
            return start
    return -1


@lru_cache(maxsize=16)
def _user_header(tokenizer) -> tuple[int, ...]:
    """The token ids that open a user message in this tokenizer's chat template ([] if none).

    Found by rendering a one-message chat around a sentinel and keeping the text from the last
    special token before it, e.g. ``<|im_start|>user\\n`` for Qwen's ChatML template.
    """
    if not getattr(tokenizer, "chat_template", None):
        return ()
    text = tokenizer.apply_chat_template([{"role": "user", "content": _SENTINEL}], tokenize=False)
    before = text[: text.index(_SENTINEL)]
    specials = [s for s in getattr(tokenizer, "all_special_tokens", []) if s and s in before]
    start = max((before.rindex(s) for s in specials), default=0)
    return tuple(tokenizer.encode(before[start:], add_special_tokens=False))


def user_header_ids(tokenizer) -> list[int]:
    """The token ids that open a user message in the tokenizer's chat template (cached per tokenizer)."""
    return list(_user_header(tokenizer))


def insert_context(tokenizer, prompt_ids: Sequence[int], context: str, header_ids: Sequence[int] | None = None) -> list[int]:
    """``prompt_ids`` with ``context`` tokens placed right after the last user-message header.

    Without a chat template (or when the header is absent) the context goes first. An empty
    context returns the prompt unchanged.
    """
    if not context:
        return list(prompt_ids)
    ctx = tokenizer.encode(SKILL_HEADER + context.strip() + "\n\n", add_special_tokens=False)
    header = user_header_ids(tokenizer) if header_ids is None else list(header_ids)
    at = _find_last(prompt_ids, header) if header else -1
    cut = at + len(header) if at >= 0 else 0
    return list(prompt_ids[:cut]) + ctx + list(prompt_ids[cut:])


def teacher_prompt_ids(tokenizer, prompt_ids: Sequence[int], context: str, messages: list[dict[str, str]] | None = None, with_skills=None) -> list[int]:
    """The teacher's prompt ids for one stored student turn.

    With the turn's chat ``messages`` and the agent's ``with_skills(messages, text)`` (which puts
    the skill block where the agent's template puts skills for Skill-GRPO), the teacher prompt is
    those messages re-rendered by the chat template, provided that rendering the student messages
    reproduces the stored ``prompt_ids`` exactly; otherwise the context is inserted at the token
    level (:func:`insert_context`).
    """
    if not context:
        return list(prompt_ids)
    if messages and with_skills is not None:
        if _render(tokenizer, messages) == list(prompt_ids):
            return _render(tokenizer, with_skills(messages, context))
    return insert_context(tokenizer, prompt_ids, context)


def official_teacher_prompt_ids(tokenizer, prompt_ids: Sequence[int], context: str, max_prompt_length: int) -> tuple[list[int], bool]:
    """The released code's teacher prompt; returns the ids and whether they were left-truncated."""
    text = OFFICIAL_HEADER.format(skills=context) + tokenizer.decode(list(prompt_ids), skip_special_tokens=False)
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) > max_prompt_length:
        return ids[-max_prompt_length:], True
    return ids, False


def _in_message(tokenizer, prompt_ids, context, messages, with_skills, max_prompt_length) -> tuple[list[int], bool]:
    return teacher_prompt_ids(tokenizer, prompt_ids, context, messages, with_skills), False


def _official(tokenizer, prompt_ids, context, messages, with_skills, max_prompt_length) -> tuple[list[int], bool]:
    return official_teacher_prompt_ids(tokenizer, prompt_ids, context, max_prompt_length)


TEACHER_TEMPLATES = {"official": _official, "in_message": _in_message}
"""name -> (tokenizer, prompt_ids, context, messages, with_skills, max_prompt_length) -> (ids, truncated)."""


def teacher_template(name: str):
    """The teacher template ``name``, with a clear error listing the known ones."""
    if name not in TEACHER_TEMPLATES:
        from sdar_gym.core import ConfigError

        raise ConfigError(f"unknown teacher_template {name!r}; known: {', '.join(TEACHER_TEMPLATES)}")
    return TEACHER_TEMPLATES[name]


def _render(tokenizer, messages: list[dict[str, str]]) -> list[int]:
    """Chat messages to prompt ids exactly as :class:`learners.hf_policy.HFPolicy` renders them."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@dataclass
class SkillContext:
    """Retrieves (and caches per update) the skill context for a (task, task_type) key."""

    library: Any
    """A :class:`skills.SkillLibrary` (anything with ``retrieve(task, task_type=, k=, strategy=)``)."""
    strategy: str = "official"
    k: int = 3
    budget_chars: int | None = None
    budget_tokens: int | None = None
    """Cap on the skill context in tokens of ``tokenizer`` (the teacher's)."""
    tokenizer: Any = None
    seed: int | None = None
    with_skills: Any = None
    """The agent's ``with_skills(messages, text)`` placing skill text in chat messages (optional)."""
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def retrieve(self, task: str, task_type: str):
        key = (task, task_type)
        if key not in self._cache:
            tokens = {"budget_tokens": self.budget_tokens, "tokenizer": self.tokenizer} if self.budget_tokens is not None else {}
            self._cache[key] = self.library.retrieve(
                task, task_type=task_type, k=self.k, strategy=self.strategy, budget_chars=self.budget_chars, seed=self.seed, **tokens
            )
        return self._cache[key]

    def text(self, task: str, task_type: str) -> str:
        return self.retrieve(task, task_type).context

    def clear(self) -> None:
        self._cache.clear()

    def feedback(self, task: str, task_type: str, reward: float) -> None:
        """Credit the skills shown for this key (bandit strategies such as UCB learn from it)."""
        retrieval = self._cache.get((task, task_type))
        if retrieval is not None and hasattr(self.library, "update"):
            self.library.update([s.id for s in retrieval.skills], reward)
