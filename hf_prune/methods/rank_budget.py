"""Reaching rank pruning's parameter budget: the multiplier controller (training) and the fit (finalize).

:class:`AntiWindupMultipliers` updates the augmented Lagrangian's multipliers while the gates
train (see :mod:`hf_prune.methods.rank` for why it replaced the multipliers' Adam ascent). At
finalize the frozen gates rarely land exactly on the budget: :func:`project_down` drops the least
probable kept components until the compiled size fits; :func:`fill_up` re-admits the most probable
dropped ones while they still fit. Sizes are compiled sizes: ``min(r * (in + out), in * out)``
per matrix.

Example:
    >>> import torch
    >>> shapes = {"a": (4, 4), "b": (4, 4)}
    >>> keep = {"a": torch.tensor([True, True, True, False]), "b": torch.tensor([True, False, False, False])}
    >>> probs = {"a": torch.tensor([0.9, 0.8, 0.2, 0.1]), "b": torch.tensor([0.95, 0.7, 0.3, 0.05])}
    >>> # a at rank 3 compiles dense (16), b at rank 1 factored (8): 24 > 16. Dropping a's 0.2
    >>> # component saves nothing (rank 2 still costs 16), dropping its 0.8 one then fits.
    >>> project_down(keep, probs, shapes, budget=16, fixed=0)
    2
    >>> keep["a"].tolist(), fill_up(keep, probs, shapes, budget=16, fixed=0)
    ([True, False, False, False], 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..factorization import compiled_size, factorized_is_smaller


def compiled_params(ranks: dict[str, int], shapes: dict[str, tuple[int, int]], fixed: int) -> int:
    """Parameters kept (budget units) when matrix ``name`` has rank ``ranks[name]``, plus ``fixed``."""
    return fixed + sum(compiled_size(ranks[name], *shapes[name]) for name in shapes)


def components_by_probability(probs: dict[str, torch.Tensor], descending: bool) -> list[tuple[str, int]]:
    """Every (matrix, component) pair ordered by ``P(z != 0)`` (stable: ties in model order)."""
    names = list(probs)
    flat = torch.cat([probs[n].float().cpu() for n in names])
    owner = [n for n in names for _ in range(probs[n].numel())]
    index = [i for n in names for i in range(probs[n].numel())]
    order = torch.argsort(flat, descending=descending, stable=True).tolist()
    return [(owner[p], index[p]) for p in order]


def project_down(
    keep: dict[str, torch.Tensor],
    probs: dict[str, torch.Tensor],
    shapes: dict[str, tuple[int, int]],
    budget: int,
    fixed: int,
) -> int:
    """Drop the least probable kept components (in place) until the budget holds; returns how many."""
    ranks = {name: int(mask.sum()) for name, mask in keep.items()}
    total = compiled_params(ranks, shapes, fixed)
    if total <= budget:
        return 0
    before = {name: mask.clone() for name, mask in keep.items()}
    for name, index in components_by_probability(probs, descending=False):
        if total <= budget:
            break
        if not bool(keep[name][index]) or ranks[name] <= 1:  # the reachability check allows rank 1
            continue
        total -= compiled_size(ranks[name], *shapes[name]) - compiled_size(ranks[name] - 1, *shapes[name])
        ranks[name] -= 1
        keep[name][index] = False
    for name in keep:
        if not factorized_is_smaller(*shapes[name], ranks[name]):
            keep[name] = before[name]  # compiled dense anyway: its dropped components cost nothing
    return sum(int(before[n].sum()) - int(keep[n].sum()) for n in keep)


def fill_up(
    keep: dict[str, torch.Tensor],
    probs: dict[str, torch.Tensor],
    shapes: dict[str, tuple[int, int]],
    budget: int,
    fixed: int,
) -> int:
    """Re-admit (in place) the most probable dropped components that still fit; returns how many."""
    ranks = {name: int(mask.sum()) for name, mask in keep.items()}
    total = compiled_params(ranks, shapes, fixed)
    added = 0
    for name, index in components_by_probability(probs, descending=True):
        if bool(keep[name][index]):
            continue
        cost = compiled_size(ranks[name] + 1, *shapes[name]) - compiled_size(ranks[name], *shapes[name])
        if total + cost <= budget:
            total += cost
            ranks[name] += 1
            keep[name][index] = True
            added += 1
    return added


@dataclass
class AntiWindupMultipliers:
    """Gradient ascent on ``(l1, l2)`` proportional to the gap, with ``l1`` reset before a crossing.

    The Lagrangian is ``l1 * gap + l2 * gap^2`` with ``gap = s - t`` (expected minus target
    sparsity): ``l1`` acts like the integral term of a controller, ``2 * l2 * gap`` like a
    proportional one. Each step (``step_size`` = eta):

    * ``l1 += eta * gap`` and ``l2 += eta * gap^2``: plain ascent, so ``l1`` stops moving as the
      gap closes (Adam's normalised steps kept it moving at full speed, and its slow second-moment
      memory then slowed it down as the gap shrank, the worst of both);
    * anti-windup: ``l1`` is set to 0 whenever it would push the sparsity past the target, i.e.
      when ``l1`` and the *predicted* gap have opposite signs. The prediction is
      ``gap + horizon * velocity`` (velocity: a moving average of the gap's change per step):
      once the push stops, the gates' own Adam momentum keeps them moving for about
      ``1 / (1 - beta1)`` = 10 steps, so ``l1`` is released that far ahead of the crossing.
      What ``l1`` built up while the gates were slow to start (their gradient through
      ``P(z != 0)`` is tiny while they are wide open) is thereby dropped instead of unwound.

    Example:
        >>> lambdas = torch.zeros(2)
        >>> control = AntiWindupMultipliers(step_size=0.5)
        >>> for gap in (-0.4, -0.3):  # below the target: l1 < 0 pushes the sparsity up
        ...     control.update(lambdas, gap)
        >>> [round(v, 3) for v in lambdas.tolist()]
        [-0.35, 0.125]
        >>> control.update(lambdas, -0.1)  # closing at 0.2 a step: the gates will coast past the target
        >>> lambdas.tolist()[0]
        0.0
    """

    step_size: float
    horizon: float = 10.0
    smoothing: float = 0.9
    last_gap: float | None = None
    velocity: float = 0.0

    def predicted_gap(self, gap: float) -> float:
        """Where the gap would be after ``horizon`` more steps at the current velocity."""
        return gap + self.horizon * self.velocity

    @torch.no_grad()
    def update(self, lambdas: torch.Tensor, gap: float) -> None:
        """Update ``lambdas`` = ``(l1, l2)`` in place for the gap measured at this step."""
        if self.last_gap is not None:
            change = gap - self.last_gap
            self.velocity = self.smoothing * self.velocity + (1.0 - self.smoothing) * change
        self.last_gap = gap
        l1 = float(lambdas[0]) + self.step_size * gap
        if l1 * self.predicted_gap(gap) < 0.0:
            l1 = 0.0  # it would push past the target: release it rather than let it unwind
        l2 = float(lambdas[1]) + self.step_size * gap * gap
        lambdas.copy_(torch.tensor([l1, l2], dtype=lambdas.dtype))

    def state(self) -> dict[str, Any]:
        """JSON-able state for resuming (the multipliers themselves are saved by the method)."""
        return {"last_gap": self.last_gap, "velocity": self.velocity}

    def load_state(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state` (``None``: a fresh controller)."""
        state = state or {}
        self.last_gap = state.get("last_gap")
        self.velocity = float(state.get("velocity", 0.0))
