"""Gradual magnitude pruning (Zhu & Gupta 2017), the NIP baseline of the RPP paper.

Every ``prune_interval`` optimizer steps between the schedule's begin and end, the weights with
the smallest magnitude are zeroed so that sparsity follows the cubic schedule; at the end the
mask is frozen at ``target_sparsity``. Between updates the current mask is re-applied after
every step, so pruned weights stay exactly zero.

Example:
    >>> from hf_prune import MagnitudeConfig
    >>> MagnitudeConfig(target_sparsity=0.9, prune_interval=10).prune_interval
    10
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import InvalidConfigError, ScheduledSparsityConfig, check_range
from ..registry import register_method
from ..schedules import cubic_sparsity
from ..state_dicts import StateGroups
from .base import ElementwiseMaskMethod, pruned_masks_for_target


@dataclass
class MagnitudeConfig(ScheduledSparsityConfig):
    """Gradual magnitude pruning with the cubic schedule.

    Example:
        >>> MagnitudeConfig(target_sparsity=0.8).method
        'magnitude'
    """

    method = "magnitude"

    initial_sparsity: float = field(
        default=0.0, metadata={"help": "Sparsity at the schedule's begin step, in [0, target]."}
    )
    prune_interval: int = field(default=10, metadata={"help": "Optimizer steps between mask updates (dt), >= 1."})

    def validate(self) -> None:
        super().validate()
        check_range("initial_sparsity", self.initial_sparsity, 0.0, self.target_sparsity)
        if self.prune_interval < 1:
            raise InvalidConfigError(f"prune_interval={self.prune_interval} must be >= 1.")


class MagnitudePruning(ElementwiseMaskMethod):
    """Gradual magnitude pruning; see the module docstring."""

    config_class = MagnitudeConfig
    config: MagnitudeConfig

    def __init__(self, config: MagnitudeConfig) -> None:
        super().__init__(config)
        self.begin_step = 0
        self.end_step = 0
        self.scheduled_sparsity = 0.0

    def begin(self, total_steps: int) -> None:
        super().begin(total_steps)
        self.begin_step, self.end_step = self.config.resolve_steps(total_steps)

    @torch.no_grad()
    def _prune_to(self, sparsity: float) -> None:
        scores = {name: self.weight(name).abs() for name in self.targets}
        self.pruned = pruned_masks_for_target(scores, sparsity, self.config.sparsity_distribution)
        self.scheduled_sparsity = sparsity
        self.apply_masks()

    def step(self, step: int, optimizer: torch.optim.Optimizer | None = None) -> None:
        self.require_attached("step")
        if self.frozen:
            self.apply_masks()
            return
        self.require_begun("step")
        if step >= self.end_step:
            self._prune_to(self.config.target_sparsity)
            self.frozen = True
            return
        on_grid = (step - self.begin_step) % self.config.prune_interval == 0
        if step >= self.begin_step and on_grid:
            sparsity = cubic_sparsity(
                step, self.config.initial_sparsity, self.config.target_sparsity, self.begin_step, self.end_step
            )
            self._prune_to(sparsity)
        else:
            self.apply_masks()

    def finalize(self) -> dict[str, Any]:
        self.require_attached("finalize")
        if not self.frozen:
            self._prune_to(self.config.target_sparsity)
            self.frozen = True
        return self.report()

    def stats(self) -> dict[str, float]:
        return {**super().stats(), "scheduled_sparsity": self.scheduled_sparsity}

    def state_dict(self) -> tuple[StateGroups, dict[str, Any]]:
        tensors, metadata = super().state_dict()
        metadata["scheduled_sparsity"] = self.scheduled_sparsity
        return tensors, metadata

    def load_state_dict(self, tensors: StateGroups, metadata: dict[str, Any]) -> None:
        super().load_state_dict(tensors, metadata)
        self.scheduled_sparsity = float(metadata["scheduled_sparsity"])


register_method(MagnitudeConfig, MagnitudePruning)
