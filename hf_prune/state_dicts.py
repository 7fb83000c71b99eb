"""One layout for a method's resume tensors: named groups, flattened to ``group::key`` on disk.

A method's :meth:`~hf_prune.PruningMethod.state_dict` returns its tensors as groups, each a
tensor (``{"lambdas": t}``) or a mapping of tensors (``{"pruned": {target name: mask}}``); the
checkpoint file stores them flat under ``"<group>::<key>"`` (module names never hold ``::``).
A method's own optimizer is stored as one group through :func:`optimizer_tensors` and restored
with :func:`load_optimizer_tensors`, the same way for every method.

Example:
    >>> import torch
    >>> flat = flatten_state({"lambdas": torch.zeros(2), "pruned": {"layer.0": torch.ones(1)}})
    >>> sorted(flat)
    ['lambdas', 'pruned::layer.0']
    >>> sorted(unflatten_state(flat)["pruned"])
    ['layer.0']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .errors import CheckpointMismatchError

SEPARATOR = "::"

# A method's resume tensors: group name -> a tensor, or a mapping of key -> tensor.
StateGroups = dict[str, Any]


def flatten_state(groups: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """``{"group": {"key": t}, "single": t}`` -> ``{"group::key": t, "single": t}``.

    Raises:
        ValueError: a group name or key holds the separator, so it could not be read back.
    """
    flat: dict[str, torch.Tensor] = {}
    for group, value in groups.items():
        if SEPARATOR in group:
            raise ValueError(f"State group name {group!r} must not contain {SEPARATOR!r}.")
        if isinstance(value, torch.Tensor):
            flat[group] = value
            continue
        for key, tensor in value.items():
            if SEPARATOR in key:
                raise ValueError(f"State key {key!r} in group {group!r} must not contain {SEPARATOR!r}.")
            flat[f"{group}{SEPARATOR}{key}"] = tensor
    return flat


def unflatten_state(flat: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The inverse of :func:`flatten_state` (split at the first separator).

    Example:
        >>> import torch
        >>> unflatten_state({"alpha::a": torch.ones(1), "gamma": torch.zeros(1)})["alpha"]["a"].tolist()
        [1.0]
    """
    groups: dict[str, Any] = {}
    for key, tensor in flat.items():
        group, separator, inner = key.partition(SEPARATOR)
        if not separator:
            groups[group] = tensor
        else:
            groups.setdefault(group, {})[inner] = tensor
    return groups


def optimizer_tensors(optimizer: torch.optim.Optimizer | None) -> dict[str, torch.Tensor]:
    """A method-owned optimizer's per-parameter state as ``{"<param index>.<field>": tensor}``.

    Plain numbers in the state (some optimizers keep ``step`` as an int) become 0-d tensors.

    Example:
        >>> import torch
        >>> p = torch.zeros(2, requires_grad=True); opt = torch.optim.Adam([p])
        >>> p.grad = torch.ones(2); opt.step()
        >>> sorted(optimizer_tensors(opt))
        ['0.exp_avg', '0.exp_avg_sq', '0.step']
    """
    if optimizer is None:
        return {}
    tensors: dict[str, torch.Tensor] = {}
    for index, state in optimizer.state_dict()["state"].items():
        for field, value in state.items():
            tensors[f"{index}.{field}"] = value if isinstance(value, torch.Tensor) else torch.tensor(value)
    return tensors


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor] | None) -> None:
    """Restore what :func:`optimizer_tensors` saved into ``optimizer`` (same parameters, same order).

    Raises:
        CheckpointMismatchError: a key that is not ``<index>.<field>`` or an index the optimizer lacks.
    """
    count = sum(len(group["params"]) for group in optimizer.param_groups)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in (tensors or {}).items():
        index, _, field = key.partition(".")
        if not index.isdigit() or not field or int(index) >= count:
            raise CheckpointMismatchError(
                f"The checkpoint's optimizer state has entry {key!r}, which does not fit this method's "
                f"optimizer ({count} tensors); resume with the same pruning config and model."
            )
        state.setdefault(int(index), {})[field] = value
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
