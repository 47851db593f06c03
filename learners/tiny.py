"""A tiny policy built here, offline: a byte-level BPE tokenizer trained on env text, with a
ChatML chat template, and a random-init Qwen2-config causal LM. For tests and benchmarks of the
rollout and learner plumbing; it generates noise, but real token ids with real log-probs.

    tokenizer = train_tokenizer(env_texts("alfworld", env_kwargs=...), vocab_size=1024)
    model = make_tiny_model(tokenizer, TinyConfig())
    build_tiny("runs/tiny", texts)  # both, saved with save_pretrained; reload by path
"""
from __future__ import annotations

import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdar_gym.core import ConfigError

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
"""Padding, message start, message end (= end of a response, the EOS the policy samples)."""

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""ChatML, the format of Qwen2 instruct models, so prompts look like the real thing."""


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts`` (any text still encodes).

    It normalizes and pre-tokenizes exactly as ``Qwen2Tokenizer`` does (NFC, Qwen2's split regex,
    which isolates each digit, then byte level), because ``AutoTokenizer`` reloads it from a Qwen2
    model folder as a ``Qwen2Tokenizer``, which rebuilds that pipeline around the saved vocabulary
    and merges. Any other pre-tokenizer would encode differently after a reload than in training.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(SPECIAL_TOKENS):
        raise ConfigError(f"vocab_size must be at least {len(alphabet) + len(SPECIAL_TOKENS)}, got {vocab_size}")
    core = Tokenizer(models.BPE())
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=alphabet, show_progress=False)
    core.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def random_play(env: str = "alfworld", episodes: int = 2, steps: int = 8, env_kwargs: dict[str, Any] | None = None, seed: int = 0) -> list[tuple[str, list[str], str]]:
    """(agent prompt, listed actions, action played) of each turn of random play of ``env``."""
    from sdar_gym.agent import TextAgent
    from sdar_gym.registration import make_env

    agent, rng = TextAgent(env), random.Random(seed)
    target = make_env(env, **(env_kwargs or {})).unwrapped
    turns = []
    for episode in range(episodes):
        obs, info = target.reset(seed=seed + episode)
        history = agent.new_history()
        for _ in range(steps):
            listed = list(info["admissible_actions"])
            action = rng.choice(listed or ["look"])
            turns.append((agent.prompt(obs, info, history), listed, action))
            history.append(obs, action)
            obs, _, terminated, truncated, info = target.step(action)
            if terminated or truncated:
                break
    target.close()
    return turns


def env_texts(env: str = "alfworld", episodes: int = 2, steps: int = 8, env_kwargs: dict[str, Any] | None = None, seed: int = 0) -> list[str]:
    """Text to train a tokenizer on: agent prompts and tagged actions from random play of ``env``."""
    from sdar_gym.agent import TextAgent

    agent = TextAgent(env)
    return [text for prompt, _, action in random_play(env, episodes, steps, env_kwargs, seed)
            for text in (prompt, agent.render_action(action, "I should look around and act."))]


@dataclass
class TinyConfig:
    """Shape of the tiny Qwen2 model."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    """Fewer KV heads than query heads, as in Qwen2 (grouped-query attention)."""
    intermediate_size: int = 128
    max_position_embeddings: int = 8192
    """Multi-turn prompts with admissible-action lists run to a few thousand tokens."""
    seed: int = 0
    """Seed of the random initialization."""


def make_tiny_model(tokenizer: Any, config: TinyConfig | None = None) -> Any:
    """A random-init ``Qwen2ForCausalLM`` sized for ``tokenizer``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = config or TinyConfig()
    torch.manual_seed(config.seed)
    model_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return Qwen2ForCausalLM(model_config).eval()


def build_tiny(folder: str | os.PathLike, texts: Iterable[str], vocab_size: int = 1024, config: TinyConfig | None = None) -> tuple[Any, Any]:
    """Train the tokenizer, build the model, save both into ``folder`` (atomically); returns them.

    Reload with ``HFPolicy(folder)`` or ``AutoModelForCausalLM.from_pretrained(folder)``.
    """
    from sdar_gym.io import atomic_dir

    tokenizer = train_tokenizer(texts, vocab_size)
    model = make_tiny_model(tokenizer, config)
    with atomic_dir(Path(folder)) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return model, tokenizer
