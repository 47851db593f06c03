"""Learners and the policy model (HF transformers). Torch code lives here, never in ``sdar_gym``.

Importing ``learners`` does not import torch: the names below load their module on first use,
so CLI argument classes and the gym can refer to this package cheaply.
"""
from __future__ import annotations

from sdar_gym.core import lazy_attributes

_LAZY = {
    "HFPolicy": "learners.hf_policy",
    "TinyConfig": "learners.tiny",
    "build_tiny": "learners.tiny",
    "env_texts": "learners.tiny",
    "make_tiny_model": "learners.tiny",
    "train_tokenizer": "learners.tiny",
}


__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = list(_LAZY)
