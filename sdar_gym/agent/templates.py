"""Prompt templates per env, in the style of the paper's code (verl-agent): the task, the recent
history, the current observation, the admissible actions, then reason in ``<think>`` and act.

The wording is this project's own. Templates are ``str.format`` strings filled by
:class:`sdar_gym.agent.TextAgent`; ``{history}`` is a whole block that is empty
when there is nothing to show. Skill text, when shown, goes in front of the whole prompt (``SKILLS``).
"""
from __future__ import annotations

ALFWORLD = """You are an agent acting in a text-based household from the ALFRED benchmark. Your task is to: {task}
{history}You are at step {step}. The current observation is: {observation}
The admissible actions now are: [{actions}].

Decide your next move. First reason step by step about the situation inside <think> </think>. Then give exactly one admissible action inside <action> </action>."""

WEBSHOP = """You are an agent shopping on a website for a user. Your task is to: {task}
{history}You are at step {step}. The current page is: {observation}
The admissible actions now are: [{actions}].

Decide your next move. First reason step by step about the page and the user's needs inside <think> </think>. Then give exactly one admissible action inside <action> </action>, written as search[query] or click[element]."""

SEARCH_QA = """You answer questions using a search engine. Question: {task}
{history}You are at step {step}. {observation}

First reason step by step inside <think> </think> about what you know and what is missing. Then either search for missing knowledge with <search> query </search>, whose results come back in the next observation, or, when you are sure, give a short final answer with <answer> answer </answer>. Use exactly one of the two."""

HISTORY = "You have taken {steps} step(s) so far. Your last {shown} observation(s) and action(s), oldest first:\n{pairs}\n"
"""Block shown when the history window is not empty."""

HISTORY_PAIR = "[Step {n}] Observation: {observation}\nAction: {action}"

SKILLS = "[Privileged Skill Information]\n{skills}\n\n"
"""Prefix with skill text in front of the user prompt (Skill-GRPO students, the ``in_message`` teacher):
the released code's header and place (verl/trainer/main_skill_grpo.py prepends it to the observation text)."""
