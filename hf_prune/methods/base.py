"""The interface every pruning method implements, and the shared element-wise mask logic.

A method owns all of its pruning logic; the Trainer integration only calls these hooks:

* ``attach(model)``: find the target modules (and change the model if the method must),
  before the optimizer is built.
* ``begin(total_steps)``: resolve the schedule once the run length is known.
* ``step(step, optimizer)``: after optimizer step number ``step`` (1-based).
* ``owned_tensors()`` / ``unscale_gradients(scale)``: the method's own trainable tensors, and
  dividing their gradients by an fp16 loss scale (the task loss is never changed: a method with
  a penalty applies its gradient itself in ``step()``).
* ``stats()``: numbers to log under ``prune/``.
* ``finalize()``: reach the final state (the target sparsity, a frozen mask) and return a report;
  the module structure stays as during training, so checkpoints keep loading.
* ``materialize()``: turn the model into its exported form (remove parametrizations, compile
  rank-pruned layers into two small Linear layers); called by the export, after ``finalize()``.
* ``state_dict()`` / ``load_state_dict()``: everything needed to resume exactly.

Methods with trainable pruning state (movement scores, hard-concrete gate logits, Lagrange
multipliers) keep those tensors *out of* ``model.parameters()``: they live in the method (a
parametrization may hold a plain tensor attribute, not an ``nn.Parameter``), the method owns a
small optimizer for them, and in ``step()`` it adds its penalty's gradient, steps that optimizer
and zeroes their gradients. The Trainer's optimizer, its param groups and its checkpoint format
are then identical with and without pruning, a stock ``Trainer`` + callback works unchanged, and
the method's tensors and optimizer state go into the method's ``state_dict()`` (saved beside each
checkpoint by the callback). Under multi-process training the method all-reduces their gradients
itself (DDP only reduces model parameters).

The same calls work in a plain Accelerate or PyTorch loop:

Example:
    >>> import torch
    >>> from transformers import BertConfig, BertForSequenceClassification
    >>> from hf_prune import MagnitudeConfig, create_method
    >>> model = BertForSequenceClassification(BertConfig(
    ...     hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    >>> method = create_method(MagnitudeConfig(target_sparsity=0.5, begin_step=0, end_step=4))
    >>> method.attach(model); method.begin(total_steps=5)
    >>> optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    >>> for step in range(1, 6):
    ...     optimizer.step(); method.step(step, optimizer)
    >>> round(method.sparsity(), 3)
    0.5
"""

from __future__ import annotations

import logging
import weakref
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from ..config import PruningConfig
from ..errors import CheckpointMismatchError, InvalidConfigError, MethodOrderError
from ..formats.registry import WeightStructure, formats_for
from ..state_dicts import StateGroups
from ..targets import find_targets, layer_group, weight_of

logger = logging.getLogger(__name__)


class PruningMethod(ABC):
    """Base class of pruning methods; see the module docstring for the hook contract."""

    config_class: ClassVar[type[PruningConfig]]
    # What the pruned weights look like once materialized; the export formats that store this
    # structure are the method's formats (hf_prune.formats.registry), so no method lists formats.
    # (A class attribute a method may override per instance, e.g. FrozenMask on a factored model.)
    weight_structure: WeightStructure = "elementwise"

    def __init__(self, config: PruningConfig) -> None:
        if not isinstance(config, self.config_class):
            raise InvalidConfigError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}."
            )
        self.config = config
        self.targets: dict[str, nn.Module] = {}
        self.total_steps: int | None = None
        self._model_ref: weakref.ReferenceType[nn.Module] | None = None

    @property
    def name(self) -> str:
        return self.config.method

    @property
    def export_formats(self) -> list[str]:
        """The registered export formats that can store this method's result.

        Example:
            >>> from hf_prune import RankConfig, RPPConfig, create_method
            >>> create_method(RPPConfig()).export_formats, create_method(RankConfig()).export_formats
            (['dense', 'compact', 'masks'], ['dense', 'factored'])
        """
        return formats_for(self.weight_structure)

    @property
    def attached(self) -> bool:
        return bool(self.targets)

    def attach(self, model: nn.Module) -> None:
        """Find the modules to prune; errors on bad patterns happen here, before training."""
        self._model_ref = weakref.ref(model)
        self.targets = find_targets(
            model,
            include=self.config.include,
            exclude=self.config.exclude,
            include_embeddings=self.config.include_embeddings,
        )

    def begin(self, total_steps: int) -> None:
        """Called when training starts, with the run's total number of optimizer steps.

        Raises:
            InvalidConfigError: ``total_steps`` is not a whole number >= 0.
        """
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 0:
            raise InvalidConfigError(
                f"begin(total_steps={total_steps!r}): the run length must be a whole number of optimizer steps >= 0."
            )
        self.require_attached("begin")
        self.total_steps = total_steps

    def require_attached(self, call: str) -> None:
        """Raise :class:`MethodOrderError` unless :meth:`attach` has run (``call`` names the caller)."""
        if not self.attached:
            raise MethodOrderError(
                f"{type(self).__name__}.{call}() before attach(model): call method.attach(model) first (before "
                f"building the optimizer: some methods add parameters)."
            )

    def require_begun(self, call: str) -> None:
        """Raise :class:`MethodOrderError` unless :meth:`begin` has run (``call`` names the caller)."""
        self.require_attached(call)
        if self.total_steps is None:
            raise MethodOrderError(
                f"{type(self).__name__}.{call}() before begin(total_steps): call method.begin(total_steps) first; "
                f"the schedule needs the run length."
            )

    @abstractmethod
    def step(self, step: int, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Update after optimizer step number ``step`` (1-based) has been applied."""

    def owned_tensors(self) -> list[torch.Tensor]:
        """Method-owned trainable tensors that get gradients from the Trainer's backward pass
        (movement scores, gate logits); empty for methods without any."""
        return []

    @torch.no_grad()
    def unscale_gradients(self, scale: float) -> None:
        """Divide the owned tensors' gradients by the loss scale of an fp16 ``GradScaler``.

        The scaler unscales only the gradients of the optimizer it steps; gradients the scaled
        loss left on method-owned tensors would otherwise reach the method's own optimizer
        ``scale`` times too large (Adam is scale-invariant, but the penalty added in ``step()``
        would be drowned). The Trainer integration calls this before each optimizer step; in a
        plain loop call ``method.unscale_gradients(scaler.get_scale())`` before ``scaler.step``.

        Example:
            >>> from hf_prune import MagnitudeConfig, create_method
            >>> create_method(MagnitudeConfig()).unscale_gradients(1024.0)   # nothing owned: no-op
        """
        if scale == 1.0:
            return
        for tensor in self.owned_tensors():
            if tensor.grad is not None:
                tensor.grad.div_(scale)

    def on_skipped_step(self) -> None:  # noqa: B027  (an optional hook, not abstract)
        """The Trainer's optimizer skipped a step (fp16 overflow); methods with their own
        trainable tensors drop those tensors' gradients here."""

    def reapply(self) -> None:  # noqa: B027  (an optional hook, not abstract)
        """Re-impose the final pattern on the model's current weights (e.g. after the Trainer
        reloaded the best checkpoint); element-wise methods re-zero their masks."""

    def attached_to(self, model: nn.Module) -> bool:
        """Whether ``model`` is the model this method was attached to."""
        return self._model_ref is not None and self._model_ref() is model

    def materialize(self) -> None:  # noqa: B027  (an optional hook, not abstract)
        """Turn the model into its exported form; the default (in-place zeros) needs nothing."""

    @abstractmethod
    def stats(self) -> dict[str, float]:
        """Scalars to log, keys without the ``prune/`` prefix."""

    @abstractmethod
    def finalize(self) -> dict[str, Any]:
        """Reach the method's final state and return a JSON-able report."""

    @property
    @abstractmethod
    def finished(self) -> bool:
        """Whether :meth:`finalize` has been reached (by the schedule or by a call)."""

    def state_dict(self) -> tuple[StateGroups, dict[str, Any]]:
        """Tensors (as named groups, see :mod:`hf_prune.state_dicts`) and JSON-able metadata
        needed to resume exactly."""
        return {}, {"method": self.name, "targets": list(self.targets)}

    def load_state_dict(self, tensors: StateGroups, metadata: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; refuses state from another method or other targets."""
        if metadata.get("method") != self.name:
            raise CheckpointMismatchError(
                f"The checkpoint's pruning state is for method {metadata.get('method')!r}, but this "
                f"run uses {self.name!r}; resume with the same pruning config or start a new run."
            )
        if metadata.get("targets") != list(self.targets):
            raise CheckpointMismatchError(
                "The checkpoint's pruning state covers other modules than this run's targets "
                f"({len(metadata.get('targets') or [])} vs {len(self.targets)}); resume with the same "
                "include/exclude patterns and model."
            )


class ElementwiseMaskMethod(PruningMethod):
    """Shared logic of methods whose result is a per-weight 0/1 mask kept as exact zeros.

    The mask is applied to the weights in place after each optimizer step (``mul_`` by the kept
    mask), so the model's parameters and state-dict keys are untouched and a forward pass costs
    nothing extra. Weight decay and Adam's momentum cannot revive a pruned weight: it is zeroed again
    right after every step.
    """

    def __init__(self, config: PruningConfig) -> None:
        super().__init__(config)
        self.pruned = {}  # name -> bool, True where the weight is zero (see the property)
        self.frozen = False

    @property
    def pruned(self) -> dict[str, torch.Tensor]:
        """Name -> bool tensor, True where the weight is pruned (zero)."""
        return self._pruned

    @pruned.setter
    def pruned(self, masks: dict[str, torch.Tensor]) -> None:
        # apply_masks multiplies by the complement, cached here: on CPU ``mul_`` by a bool mask is
        # ~2.5x faster than ``masked_fill_`` (benchmarks/mask_apply.py), and the inversion is done
        # once per mask change instead of after every optimizer step.
        self._pruned = masks
        self._kept = {name: ~mask for name, mask in masks.items()}

    @property
    def finished(self) -> bool:
        return self.frozen

    def weight(self, name: str) -> torch.Tensor:
        """The weight tensor of target ``name`` (what the mask applies to)."""
        return weight_of(self.targets[name])

    def stored_weight(self, name: str) -> torch.Tensor:
        """The tensor the optimizer updates for target ``name`` (where the zeros are written)."""
        return self.weight(name)

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero every pruned weight in place."""
        for name, kept in self._kept.items():
            self.stored_weight(name).mul_(kept)

    def reapply(self) -> None:
        if self.frozen:
            self.apply_masks()

    @torch.no_grad()
    def freeze_current_zeros(self) -> None:
        """Freeze the pattern as it stands: every weight that is exactly zero stays zero."""
        self.pruned = {name: self.weight(name) == 0 for name in self.targets}
        self.frozen = True

    @torch.no_grad()
    def sparsity_per_matrix(self) -> dict[str, float]:
        """Fraction of exact zeros in each target weight, read from the weights."""
        return {name: (self.weight(name) == 0).float().mean().item() for name in self.targets}

    @torch.no_grad()
    def sparsity(self) -> float:
        """Fraction of exact zeros over all target weights, read from the weights."""
        zeros = sum(int((self.weight(n) == 0).sum()) for n in self.targets)
        total = sum(self.weight(n).numel() for n in self.targets)
        return zeros / max(total, 1)

    @torch.no_grad()
    def group_sparsity(self) -> dict[str, float]:
        """Sparsity per coarse layer group (attention / ffn / embeddings)."""
        zeros: dict[str, int] = {}
        totals: dict[str, int] = {}
        for name, module in self.targets.items():
            group = layer_group(name, module)
            weight = weight_of(module)
            zeros[group] = zeros.get(group, 0) + int((weight == 0).sum())
            totals[group] = totals.get(group, 0) + weight.numel()
        return {group: zeros[group] / totals[group] for group in totals}

    def stats(self) -> dict[str, float]:
        stats = {"sparsity": self.sparsity(), "frozen": float(self.frozen)}
        stats.update({f"sparsity/{g}": s for g, s in self.group_sparsity().items()})
        return stats

    def state_dict(self) -> tuple[StateGroups, dict[str, Any]]:
        tensors, metadata = super().state_dict()
        tensors["pruned"] = dict(self.pruned)
        metadata["frozen"] = self.frozen
        return tensors, metadata

    def load_state_dict(self, tensors: StateGroups, metadata: dict[str, Any]) -> None:
        super().load_state_dict(tensors, metadata)
        self.pruned = {
            name: mask.to(device=self.weight(name).device, dtype=torch.bool)
            for name, mask in (tensors.get("pruned") or {}).items()
        }
        self.frozen = bool(metadata["frozen"])
        self.apply_masks()

    def report(self) -> dict[str, Any]:
        """Sparsity per matrix and overall, from the weights."""
        return {
            "method": self.name,
            "sparsity": self.sparsity(),
            "sparsity_per_matrix": self.sparsity_per_matrix(),
            "group_sparsity": self.group_sparsity(),
        }


def keep_topk_mask(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Boolean mask that is True at exactly the ``keep`` largest entries of ``scores``.

    Exact even with ties (``topk`` picks indices, not a threshold), which is what makes the
    target sparsity exact.

    Example:
        >>> keep_topk_mask(torch.tensor([3.0, 1.0, 1.0, 2.0]), 2).tolist()
        [True, False, False, True]
    """
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    if keep > 0:
        indices = torch.topk(scores.flatten(), keep, sorted=False).indices
        mask[indices] = True
    return mask.view_as(scores)


def pruned_masks_for_target(
    scores: dict[str, torch.Tensor], sparsity: float, distribution: str
) -> dict[str, torch.Tensor]:
    """Pruned-weight masks (True = zero) keeping the highest scores at exactly ``sparsity``.

    ``distribution="per_matrix"`` gives every matrix that sparsity; ``"global"`` ranks all
    scores together so only the total is exact.
    """
    if distribution == "per_matrix":
        return {name: ~keep_topk_mask(s, s.numel() - round(sparsity * s.numel())) for name, s in scores.items()}
    flat = torch.cat([s.flatten() for s in scores.values()])
    keep = keep_topk_mask(flat, flat.numel() - round(sparsity * flat.numel()))
    masks, offset = {}, 0
    for name, s in scores.items():
        masks[name] = ~keep[offset : offset + s.numel()].view_as(s)
        offset += s.numel()
    return masks


def approximate_keep_masks(
    scores: dict[str, torch.Tensor], sparsity: float, distribution: str, sample_size: int = 1 << 16
) -> dict[str, torch.Tensor]:
    """Kept-weight masks (True = kept) at about ``sparsity``, from a threshold on a strided sample.

    An exact top-k of every matrix is ~40x dearer on CPU than a threshold. The threshold is the
    ``sparsity`` quantile of an evenly strided sample of about ``sample_size`` scores (per matrix,
    or over all matrices with ``distribution="global"``), so the kept fraction is within a
    fraction of a percent of the target. Where ties at the threshold (e.g. scores still all 0)
    make a matrix miss by more than 1%, it falls back to the exact :func:`keep_topk_mask`.

    Example:
        >>> masks = approximate_keep_masks({"w": torch.arange(1000.0).view(10, 100)}, 0.3, "per_matrix")
        >>> int(masks["w"].sum())
        700
        >>> int(approximate_keep_masks({"w": torch.zeros(10, 10)}, 0.3, "per_matrix")["w"].sum())  # ties: exact
        70
    """

    def threshold(values: list[torch.Tensor]) -> torch.Tensor | None:
        total = sum(v.numel() for v in values)
        stride = max(1, total // sample_size)
        sample = torch.cat([v.flatten()[::stride] for v in values])
        k = round(sparsity * sample.numel())
        return None if k == 0 else torch.kthvalue(sample.float(), k).values

    if distribution == "per_matrix":
        cuts = {name: threshold([s]) for name, s in scores.items()}
    else:
        cut = threshold(list(scores.values()))
        cuts = dict.fromkeys(scores, cut)
    masks = {}
    for name, s in scores.items():
        cut = cuts[name]
        masks[name] = torch.ones_like(s, dtype=torch.bool) if cut is None else s > cut
    # Kept counts of all matrices in one transfer (one host sync per step on an accelerator).
    kept = torch.stack([m.sum() for m in masks.values()]).tolist()
    sizes = [s.numel() for s in scores.values()]
    if distribution != "per_matrix":
        if abs(sum(kept) / max(sum(sizes), 1) - (1.0 - sparsity)) > 0.01:
            masks = {name: ~p for name, p in pruned_masks_for_target(scores, sparsity, distribution).items()}
        return masks
    for (name, s), count, size in zip(scores.items(), kept, sizes):
        if abs(count / size - (1.0 - sparsity)) > 0.01:
            masks[name] = keep_topk_mask(s, size - round(sparsity * size))
    return masks


def make_adam(params: list[torch.Tensor], lr: float) -> torch.optim.Adam:
    """Adam for method-owned tensors, fused where PyTorch has a fused kernel for their device.

    On CPU the fused kernel is ~9x faster than the default multi-tensor one (MiniLM's 10.6M
    movement scores: 6 ms vs 50 ms a step, one thread).

    Example:
        >>> make_adam([torch.zeros(3, requires_grad=True)], lr=0.1).defaults["lr"]
        0.1
    """
    devices = {p.device.type for p in params}
    fused = bool(params) and devices <= {"cpu", "cuda", "mps"} and all(p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, fused=fused or None)
