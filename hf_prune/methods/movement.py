"""Movement pruning (Sanh, Wolf, Rush 2020, arXiv 2005.07683).

Every target weight ``W`` gets a score ``S`` of the same shape (float32; initialised from the
standardised ``|W|`` by default, or 0 as in the paper with ``score_init="zeros"``: see
:meth:`MovementPruning._initial_scores`). The forward pass
uses ``W' = W * M(S)`` through a ``torch.nn.utils.parametrize`` parametrization, and ``M`` is a
straight-through binary mask: its forward is 0/1, its backward passes the gradient on to ``S``
unchanged, so ``dL/dS = dL/dW' * W``. Scores grow for weights moving away from zero and shrink
for weights moving toward it, which is what is kept or pruned.

* ``variant="hard"``: ``M`` keeps the top-v of ``S`` in each matrix (or over all targets with
  ``sparsity_distribution="global"``); the kept fraction v follows the cubic schedule of
  :func:`~hf_prune.schedules.cubic_sparsity` between ``begin`` (before it: warm-up, every weight
  kept, the scores already learn) and ``end`` (after it: cool-down with the final mask frozen).
* ``variant="soft"``: ``M`` keeps ``sigmoid(S) > r * sigmoid(soft_threshold)``, with ``r`` the
  same cubic ramp going 0 -> 1 between begin and end, so at the end the rule is
  ``S > soft_threshold``: ``soft_threshold`` is on the *raw score scale* (the default 0 means
  "keep weights whose net movement, penalty included, is positive", i.e. sigmoid(S) > 0.5). The
  sparsity comes from the penalty ``lambda_t * mean(sigmoid(S))`` (mean per matrix, averaged over
  matrices, as in the authors' code), ``lambda_t = soft_regularization * r``. Ramping threshold and
  penalty together is what the authors' ``sigmoied_threshold`` runs did; a fixed rule from the
  first step would cut about half the weights at once.

The scores are method-owned tensors, not ``nn.Parameter``s (see ``methods/base.py``): they are a
plain attribute of the parametrization, their own Adam (``score_learning_rate``) steps them in
:meth:`MovementPruning.step`, and they travel in the method's state, not the model's. At the
schedule's end the mask is fixed at exactly ``target_sparsity`` (top scores, per matrix or
global), the pruned weights are zeroed, and the pattern is frozen. The parametrization stays on
until :meth:`MovementPruning.materialize` (the export), so every checkpoint of a run has the
same state-dict keys (``...weight`` lives at ``...parametrizations.weight.original``).

Example:
    >>> from hf_prune import MovementConfig
    >>> cfg = MovementConfig(target_sparsity=0.9, variant="soft", soft_regularization=5.0)
    >>> cfg.method, cfg.soft_threshold
    ('movement', 0.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..config import InvalidConfigError, ScheduledSparsityConfig, check_range
from ..errors import CheckpointMismatchError, MethodOrderError
from ..parametrize import MovementMask, all_reduce_grads_mean, stored_tensor
from ..registry import register_method
from ..schedules import cubic_sparsity
from ..state_dicts import StateGroups, load_optimizer_tensors, optimizer_tensors
from ..targets import weight_of
from .base import ElementwiseMaskMethod, approximate_keep_masks, make_adam, pruned_masks_for_target


@dataclass
class MovementConfig(ScheduledSparsityConfig):
    """Movement pruning, hard (top-v) or soft (threshold + penalty).

    Example:
        >>> MovementConfig(target_sparsity=0.8, score_learning_rate=1e-2).variant
        'hard'
    """

    method = "movement"

    variant: Literal["hard", "soft"] = field(
        default="hard",
        metadata={"help": "'hard': keep the top-v scores on the cubic schedule; 'soft': threshold + penalty."},
    )
    score_learning_rate: float = field(
        default=1e-2, metadata={"help": "Learning rate (> 0) of the scores' own Adam optimizer."}
    )
    score_init: Literal["magnitude", "zeros"] = field(
        default="magnitude",
        metadata={
            "help": "'magnitude': S starts as the matrix's standardised |W| times score_init_scale, so "
            "the first cuts follow magnitude until movement has evidence; 'zeros': the paper's S = 0."
        },
    )
    score_init_scale: float = field(
        default=1.0,
        metadata={"help": "'magnitude' init: spread (>= 0) of the initial scores, in score units (lr x steps)."},
    )
    soft_threshold: float = field(
        default=0.0,
        metadata={"help": "Soft variant: at the end keep S > this value (raw score scale; 0 = sigmoid(S) > 0.5)."},
    )
    soft_regularization: float = field(
        default=1.0,
        metadata={"help": "Soft variant: lambda (>= 0) of the penalty lambda * mean(sigmoid(S)), ramped in."},
    )

    def validate(self) -> None:
        super().validate()
        check_range(
            "score_learning_rate", self.score_learning_rate, 0.0, math.inf, low_inclusive=False, high_inclusive=False
        )
        check_range("soft_regularization", self.soft_regularization, 0.0, math.inf, high_inclusive=False)
        check_range("score_init_scale", self.score_init_scale, 0.0, math.inf, high_inclusive=False)
        if self.score_init not in ("magnitude", "zeros"):
            raise InvalidConfigError(f"score_init={self.score_init!r} is not one of 'magnitude', 'zeros'.")
        if not math.isfinite(self.soft_threshold):
            raise InvalidConfigError(
                f"soft_threshold={self.soft_threshold!r} must be a finite number (a raw score, e.g. 0.0)."
            )


class MovementPruning(ElementwiseMaskMethod):
    """Movement pruning; see the module docstring. Phases: warm-up -> schedule -> frozen.

    Example:
        >>> from transformers import BertConfig, BertForSequenceClassification
        >>> from hf_prune import MovementConfig, create_method
        >>> model = BertForSequenceClassification(BertConfig(
        ...     hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
        >>> method = create_method(MovementConfig(target_sparsity=0.5, begin_step=0, end_step=3))
        >>> method.attach(model); method.begin(total_steps=4)
        >>> for step in range(1, 5):
        ...     method.step(step)
        >>> method.frozen, round(method.sparsity(), 3)
        (True, 0.5)
    """

    config_class = MovementConfig
    config: MovementConfig

    def __init__(self, config: MovementConfig) -> None:
        super().__init__(config)
        self.masks: dict[str, MovementMask] = {}
        self.score_optimizer: torch.optim.Adam | None = None
        self.begin_step = 0
        self.end_step = 0
        self.last_step = 0
        self.scheduled_sparsity = 0.0
        self.penalty_lambda = 0.0
        self.soft_sparsity: float | None = None  # soft: zeros the threshold gave before projection

    # -- model surgery -------------------------------------------------------------------------
    def attach(self, model: nn.Module) -> None:
        super().attach(model)
        for name, module in self.targets.items():
            scores = self._initial_scores(weight_of(module).detach()).requires_grad_(True)
            mask = MovementMask(scores)
            parametrize.register_parametrization(module, "weight", mask)
            self.masks[name] = mask
        self.score_optimizer = make_adam(self.scores(), lr=self.config.score_learning_rate)

    def _initial_scores(self, weight: torch.Tensor) -> torch.Tensor:
        """Zeros (the paper), or ``scale * (|W| - mean|W|) / std|W|`` per matrix.

        Why magnitude: the scores learn only from the steps they have seen. With the paper's
        zeros and a fine-tuning run of a few hundred steps, the first top-v cut is made on ~50
        steps of noisy evidence, close to a random cut, and MiniLM collapsed to chance at 80%
        (benchmarks/results/quality_single_task.md, ``movement-init0``). Standardised |W| gives the
        early cuts the magnitude ranking; Adam moves each score by about ``score_learning_rate`` a
        step, so a weight whose movement is consistent overtakes a one-std magnitude gap in about
        ``score_init_scale / score_learning_rate`` steps. Centred on 0, so the soft variant's
        threshold at raw score 0 starts by splitting at the mean magnitude.
        """
        magnitude = weight.abs().float()
        if self.config.score_init == "zeros" or self.config.score_init_scale == 0.0:
            return torch.zeros_like(magnitude)
        std = magnitude.std().clamp_min(torch.finfo(torch.float32).tiny)
        return (magnitude - magnitude.mean()) / std * self.config.score_init_scale

    def scores(self) -> list[torch.Tensor]:
        """The score tensors, in target order (what the score optimizer steps)."""
        return [mask.scores for mask in self.masks.values()]

    def owned_tensors(self) -> list[torch.Tensor]:
        return self.scores()

    def raw_weight(self, name: str) -> torch.Tensor:
        """The stored weight (before the mask), which the Trainer's optimizer updates."""
        module = self.targets[name]
        if parametrize.is_parametrized(module, "weight"):
            return stored_tensor(module)
        return weight_of(module)

    def stored_weight(self, name: str) -> torch.Tensor:
        # The zeros go in the stored weight: ``module.weight`` is recomputed from it on every access.
        return self.raw_weight(name)

    def begin(self, total_steps: int) -> None:
        super().begin(total_steps)
        self.begin_step, self.end_step = self.config.resolve_steps(total_steps)
        # The scores are not module state, so model.to() did not move them: follow the weights.
        # Assigning .data keeps the tensors the score optimizer holds.
        for name, mask in self.masks.items():
            device = self.raw_weight(name).device
            if mask.scores.device != device:
                mask.scores.data = mask.scores.data.to(device)
                if mask.keep is not None:
                    mask.keep = mask.keep.to(device)
        if self.score_optimizer is not None and not self.score_optimizer.state:
            # Rebuilt on the scores' device: fused Adam is device-specific (no state yet to lose).
            self.score_optimizer = make_adam(self.scores(), lr=self.config.score_learning_rate)

    # -- training ------------------------------------------------------------------------------
    def step(self, step: int, optimizer: torch.optim.Optimizer | None = None) -> None:
        self.require_attached("step")
        self.last_step = step
        if self.frozen:
            self.apply_masks()
            return
        self.require_begun("step")
        self._step_scores()
        if step >= self.end_step:
            self.finalize()
            return
        self._update_masks(step)

    def _optimizer(self) -> torch.optim.Adam:
        if self.score_optimizer is None:
            raise MethodOrderError("MovementPruning needs attach(model) before training or resuming.")
        return self.score_optimizer

    def on_skipped_step(self) -> None:
        # The Trainer skipped its step (fp16 overflow): drop the scores' inf/nan gradients too.
        self._optimizer().zero_grad(set_to_none=True)

    def _step_scores(self) -> None:
        scores = self.scores()
        if self.config.variant == "soft" and self.penalty_lambda > 0:
            with torch.enable_grad():
                self._soft_penalty().backward()
        grads = []
        for score in scores:
            if score.grad is None:  # a module the forward skipped: still take part in the all-reduce
                score.grad = torch.zeros_like(score)
            grads.append(score.grad)
        all_reduce_grads_mean(scores)
        # An overflowed fp16 step (the Trainer skips it) must not poison the scores either; one
        # reduction, so one host sync per step.
        if bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
            self._optimizer().step()
        self._optimizer().zero_grad(set_to_none=True)

    def _soft_penalty(self) -> torch.Tensor:
        terms = [torch.sigmoid(score).mean() for score in self.scores()]
        return self.penalty_lambda * torch.stack(terms).mean()

    @torch.no_grad()
    def _update_masks(self, step: int) -> None:
        """Set the mask the next forward passes use, from the scores and the schedule at ``step``.

        The scores only change here, so computing the top-v / threshold once per optimizer step
        gives the mask a per-forward computation would, without a top-k in every micro-batch.
        """
        cfg = self.config
        keep: dict[str, torch.Tensor | None]
        self.scheduled_sparsity = cubic_sparsity(step, 0.0, cfg.target_sparsity, self.begin_step, self.end_step)
        ramp = cubic_sparsity(step, 0.0, 1.0, self.begin_step, self.end_step)
        if cfg.variant == "hard":
            if self.scheduled_sparsity == 0.0:
                keep = {name: None for name in self.masks}
            else:
                scores = {name: mask.scores.detach() for name, mask in self.masks.items()}
                # Sampled threshold, not an exact top-k: the cut moves every step, and an exact
                # top-k over every matrix costs ~0.2 s a step on CPU for MiniLM (more than the
                # rest of the method). finalize() makes the final cut exact.
                keep = dict(approximate_keep_masks(scores, self.scheduled_sparsity, cfg.sparsity_distribution))
        else:
            self.penalty_lambda = cfg.soft_regularization * ramp
            threshold = ramp / (1.0 + math.exp(-cfg.soft_threshold))  # ramp * sigmoid(tau)
            keep = {
                name: (torch.sigmoid(mask.scores.detach()) > threshold) if ramp > 0 else None
                for name, mask in self.masks.items()
            }
        for name, mask in self.masks.items():
            mask.keep = keep[name]

    # -- end of the schedule -------------------------------------------------------------------
    @torch.no_grad()
    def finalize(self) -> dict[str, Any]:
        self.require_attached("finalize")
        if not self.frozen:
            scores = {name: mask.scores.detach() for name, mask in self.masks.items()}
            if self.config.variant == "soft":
                below = sum(int((s <= self.config.soft_threshold).sum()) for s in scores.values())
                self.soft_sparsity = below / max(sum(s.numel() for s in scores.values()), 1)
            self.pruned = pruned_masks_for_target(
                scores, self.config.target_sparsity, self.config.sparsity_distribution
            )
            for name, mask in self.masks.items():
                mask.keep = ~self.pruned[name]
                mask.frozen = True
            self.apply_masks()  # so sparsity read from the weights is exact, not only masked
            self.frozen = True
            self.scheduled_sparsity = self.config.target_sparsity
            self.penalty_lambda = 0.0
            if self.score_optimizer is not None:
                self.score_optimizer.state.clear()  # Adam moments are dead weight from here on
        report = self.report()
        report["variant"] = self.config.variant
        if self.soft_sparsity is not None:
            report.update(
                soft_threshold_sparsity=self.soft_sparsity,
                projection_added=self.config.target_sparsity - self.soft_sparsity,
            )
        return report

    def materialize(self) -> None:
        """Remove the parametrizations: plain weights holding exact zeros (finalizes first)."""
        if not self.frozen:
            self.finalize()
        for module in self.targets.values():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)

    # -- reporting -----------------------------------------------------------------------------
    # The base class reads sparsity from ``self.weight(name)``, i.e. ``module.weight``: with the
    # parametrization on that is ``W * M``, so during training it reports the current mask, and
    # once frozen the stored weights hold the same zeros.

    def stats(self) -> dict[str, float]:
        stats = {**super().stats(), "scheduled_sparsity": self.scheduled_sparsity}
        if self.config.variant == "soft":
            stats["penalty_lambda"] = self.penalty_lambda
            if self.soft_sparsity is not None:
                stats["soft_threshold_sparsity"] = self.soft_sparsity
        return stats

    # -- resume --------------------------------------------------------------------------------
    def state_dict(self) -> tuple[StateGroups, dict[str, Any]]:
        """Scores, their Adam state and the current masks until frozen; then the final mask only."""
        tensors, metadata = super().state_dict()
        metadata.update(
            variant=self.config.variant,
            last_step=self.last_step,
            scheduled_sparsity=self.scheduled_sparsity,
            penalty_lambda=self.penalty_lambda,
            soft_sparsity=self.soft_sparsity,
        )
        if self.frozen:
            return tensors, metadata
        tensors["scores"] = {name: mask.scores.detach() for name, mask in self.masks.items()}
        tensors["keep"] = {name: mask.keep for name, mask in self.masks.items() if mask.keep is not None}
        tensors["optimizer"] = optimizer_tensors(self.score_optimizer)
        return tensors, metadata

    def load_state_dict(self, tensors: StateGroups, metadata: dict[str, Any]) -> None:
        if metadata.get("variant") != self.config.variant:
            raise CheckpointMismatchError(
                f"The checkpoint's movement state is for variant={metadata.get('variant')!r}, but this run "
                f"uses variant={self.config.variant!r}; resume with the same MovementConfig."
            )
        super().load_state_dict(tensors, metadata)  # final masks, frozen flag, zeros re-applied
        self.last_step = int(metadata["last_step"])
        self.scheduled_sparsity = float(metadata["scheduled_sparsity"])
        self.penalty_lambda = float(metadata["penalty_lambda"])
        self.soft_sparsity = metadata["soft_sparsity"]
        if self.frozen:
            for name, mask in self.masks.items():
                mask.keep, mask.frozen = ~self.pruned[name], True
            if self.score_optimizer is not None:
                self.score_optimizer.state.clear()
            return
        scores, kept = tensors.get("scores") or {}, tensors.get("keep") or {}
        with torch.no_grad():
            for name, mask in self.masks.items():
                mask.scores.copy_(scores[name])
                keep = kept.get(name)
                mask.keep = None if keep is None else keep.to(device=mask.scores.device, dtype=torch.bool)
                mask.frozen = False
        load_optimizer_tensors(self._optimizer(), tensors.get("optimizer"))


register_method(MovementConfig, MovementPruning)
