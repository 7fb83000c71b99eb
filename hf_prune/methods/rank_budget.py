"""Fitting rank pruning's frozen gates to the parameter budget (used by ``RankPruning.finalize``).

The gates rarely land exactly on the budget. :func:`project_down` drops the least probable kept
components until the compiled size fits; :func:`fill_up` re-admits the most probable dropped ones
while they still fit. Sizes are compiled sizes: ``min(r * (in + out), in * out)`` per matrix.

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
