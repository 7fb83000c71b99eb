"""Fine-tuning with a frozen sparsity pattern: every weight that is zero now stays zero.

Use it to fine-tune a pruned model further (a loaded export, another task) without losing a
single zero.

Example:
    >>> from hf_prune import FrozenMaskConfig
    >>> FrozenMaskConfig().method
    'frozen'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..config import PruningConfig
from ..factorization import factored_modules
from ..formats.masks import apply_masks_from
from ..registry import register_method
from .base import ElementwiseMaskMethod


@dataclass
class FrozenMaskConfig(PruningConfig):
    """Keep the zeros the target weights have when training starts.

    Args:
        masks_from: A masks export (folder or Hub repo id, ``save_pruned(..., format="masks")``)
            whose pattern is applied to the model first: fine-tune any task on a pattern found
            elsewhere (RPP's universal pattern).

    Example:
        >>> FrozenMaskConfig(include_embeddings=True).include_embeddings
        True
    """

    method = "frozen"

    masks_from: str | None = field(
        default=None,
        metadata={"help": "A masks export (folder or Hub repo id) to apply before training; None: the model's zeros."},
    )


class FrozenMask(ElementwiseMaskMethod):
    """Re-applies the pattern found at :meth:`attach` after every optimizer step."""

    config_class = FrozenMaskConfig
    config: FrozenMaskConfig

    def attach(self, model: nn.Module) -> None:
        super().attach(model)
        if self.config.masks_from is not None:
            apply_masks_from(model, self.config.masks_from)
        if factored_modules(model):
            # A rank-pruned (factored) model: its structure is the factors' shapes, which training
            # keeps; it exports as factored or dense, not as element-wise compact.
            self.weight_structure = "factored"
        self.freeze_current_zeros()

    def step(self, step: int, optimizer: torch.optim.Optimizer | None = None) -> None:
        self.require_attached("step")
        self.apply_masks()

    def finalize(self) -> dict[str, Any]:
        self.require_attached("finalize")
        self.apply_masks()
        return self.report()


register_method(FrozenMaskConfig, FrozenMask)
