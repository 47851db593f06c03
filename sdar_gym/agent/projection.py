"""Action projection: from the model's free text to one env action, flagging invalid output.

A response is valid when it reasons inside ``<think>…</think>`` (if required), then names exactly
one action inside one of the env's action tags, and that action has the env's form. Invalid
responses still cost a turn: the collector steps the env with ``""`` and the agent layer applies
the invalid-action penalty.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Projection:
    action: str
    """The env action ('' when the response is invalid)."""
    valid: bool
    reason: str = ""
    """Why the response is invalid ('' when valid)."""


@dataclass(frozen=True)
class ActionFormat:
    """How one env's actions are written by the model and read by the env."""

    tags: dict[str, str]
    """Model tag -> env action template, e.g. ``{"search": "search[{}]"}`` or ``{"action": "{}"}``."""
    pattern: str = r"[^<>\n]+"
    """Regex the whole projected env action must match (the action's form)."""
    lowercase: bool = False
    """Lower-case the tag content before templating (ALFWorld commands are lower case)."""
    max_length: int = 300
    """Longer actions are rejected: they are almost always runaway generations."""

    def render(self, env_action: str, tag: str | None = None) -> str:
        """The inverse of projection: the model text that projects to ``env_action``.

        Used by the scripted expert and for SFT warm starts. With several tags, the tag whose
        template matches ``env_action`` is chosen (``search[q]`` -> ``<search>q</search>``).
        """
        for name, template in self.tags.items():
            if tag not in (None, name):
                continue
            prefix, _, suffix = template.partition("{}")
            if env_action.startswith(prefix) and env_action.endswith(suffix):
                inner = env_action[len(prefix) : len(env_action) - len(suffix) if suffix else None]
                return f"<{name}>{inner}</{name}>"
        raise ValueError(f"{env_action!r} matches none of the action forms {list(self.tags.values())}")


_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def project(text: str, fmt: ActionFormat, require_think: bool = True) -> Projection:
    """Project one response to an env action; see the module docstring for the rules."""
    if require_think and not _THINK.search(text):
        return Projection("", False, "missing <think>…</think>")
    after_think = text[text.rfind("</think>") + len("</think>") :] if require_think else text
    names = "|".join(re.escape(t) for t in fmt.tags)
    found = re.findall(rf"<({names})>(.*?)</\1>", after_think, re.DOTALL)
    if not found:
        expected = " or ".join(f"<{t}>…</{t}>" for t in fmt.tags)
        return Projection("", False, f"missing {expected}")
    if len(found) > 1:
        return Projection("", False, f"{len(found)} actions given; exactly one is allowed")
    tag, content = found[0]
    content = content.strip()
    if fmt.lowercase:
        content = content.lower()
    action = fmt.tags[tag].format(content)
    if not content:
        return Projection("", False, f"empty <{tag}>")
    if len(action) > fmt.max_length:
        return Projection("", False, f"action longer than {fmt.max_length} characters")
    if not re.fullmatch(fmt.pattern, action):
        return Projection("", False, f"action {action[:60]!r} is not of the form {fmt.pattern}")
    return Projection(action, True)


def replace_action(text: str, fmt: ActionFormat, env_action: str) -> str:
    """``text`` with its one tagged action (after ``</think>``) rewritten to ``env_action``; the
    reasoning and anything around the tags are kept. ``text`` must project to a valid action."""
    start = text.rfind("</think>") + len("</think>") if "</think>" in text else 0
    names = "|".join(re.escape(t) for t in fmt.tags)
    found = re.search(rf"<({names})>(.*?)</\1>", text[start:], re.DOTALL)
    if found is None:
        raise ValueError(f"no tagged action in {text[:80]!r}")
    return text[: start + found.start()] + fmt.render(env_action) + text[start + found.end() :]
