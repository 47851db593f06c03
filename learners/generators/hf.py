"""The Hugging Face generator: sampling with ``generate``-style decoding in the learner's own process.

It samples from the very model the learner trains, so there is nothing to sync or free.
"""
from __future__ import annotations

from typing import Any

from learners.generators import GeneratorArgs
from learners.hf_policy import HFPolicy


class HFGenerator(HFPolicy):
    @classmethod
    def from_policy(cls, policy: Any, args: GeneratorArgs, max_batch_size: int = 16, **_: Any) -> HFGenerator:
        return cls(policy.model, policy.tokenizer, max_batch_size=max_batch_size)

    def prepare_update(self) -> None:
        pass

    def sync_weights(self, policy: Any) -> None:
        """Nothing to send (the generator samples from the learner's own model); back to eval mode."""
        self.model.eval()

    def close(self) -> None:
        pass
