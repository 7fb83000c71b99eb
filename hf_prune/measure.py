"""Counting parameters, zeros and bytes, from a model or straight from safetensors files.

Sparsity promises are checked against the saved files, not against the schedule.

Example:
    >>> import torch
    >>> tensor_sparsity(torch.tensor([0.0, 1.0, 0.0, 2.0]))
    0.5
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable

import torch
from safetensors import safe_open
from torch import nn


def tensor_sparsity(tensor: torch.Tensor) -> float:
    """Fraction of exact zeros."""
    return float((tensor == 0).sum()) / max(tensor.numel(), 1)


def read_safetensors(folder: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Every tensor of every ``*.safetensors`` file in ``folder`` (model weights only)."""
    tensors: dict[str, torch.Tensor] = {}
    files = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
    files = [f for f in files if not os.path.basename(f).startswith("hf_prune_state")]
    if not files:
        raise FileNotFoundError(f"No .safetensors weight file in {folder}.")
    for path in files:
        with safe_open(path, framework="pt") as handle:
            for key in handle.keys():
                tensors[key] = handle.get_tensor(key)
    return tensors


def saved_sparsity(folder: str | os.PathLike[str], weight_names: Iterable[str]) -> dict[str, float]:
    """Sparsity of the named weights as stored in ``folder``'s safetensors files.

    Returns ``{"pruned": ..., "model": ...}``: zeros over the named weights, and zeros over every
    stored floating-point tensor (embeddings included).
    """
    tensors = read_safetensors(folder)
    names = list(weight_names)
    missing = [n for n in names if n not in tensors]
    if missing:
        raise KeyError(f"{len(missing)} pruned weights are not in {folder} (e.g. {missing[:3]}).")
    zeros = sum(int((tensors[n] == 0).sum()) for n in names)
    total = sum(tensors[n].numel() for n in names)
    floats = [t for t in tensors.values() if t.is_floating_point()]
    model_zeros = sum(int((t == 0).sum()) for t in floats)
    model_total = sum(t.numel() for t in floats)
    return {"pruned": zeros / max(total, 1), "model": model_zeros / max(model_total, 1)}


def parameter_counts(model: nn.Module, weight_names: Iterable[str] = ()) -> dict[str, int]:
    """Total, non-zero, and pruned-matrix parameter counts of ``model`` (shared tensors once)."""
    seen: set[int] = set()
    total = nonzero = 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        nonzero += int((param != 0).sum())
    params = dict(model.named_parameters(remove_duplicate=False))
    pruned_total = sum(params[n].numel() for n in weight_names)
    return {"total": total, "nonzero": nonzero, "pruned_matrices": pruned_total}


def folder_bytes(folder: str | os.PathLike[str], pattern: str = "*.safetensors") -> int:
    """Bytes of the files matching ``pattern`` in ``folder``."""
    return sum(os.path.getsize(p) for p in glob.glob(os.path.join(folder, pattern)))
