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
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from .targets import _backbone


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


def unique_numel(parameters: Any, seen: set[int] | None = None) -> int:
    """Elements of ``parameters``, each shared tensor counted once (``seen`` carries across calls)."""
    seen = set() if seen is None else seen
    total = 0
    for param in parameters:
        if id(param) not in seen:
            seen.add(id(param))
            total += param.numel()
    return total


def encoder_parameter_count(model: nn.Module) -> int:
    """Parameters of the encoder backbone without its embeddings and pooler.

    The backbone's children named ``embeddings*`` (e.g. ELECTRA's ``embeddings_project`` too)
    and ``pooler`` are left out, matching which Linear layers :func:`hf_prune.find_targets` offers.

    Example:
        >>> from transformers import BertConfig, BertModel
        >>> encoder_parameter_count(BertModel(BertConfig(
        ...     hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)))
        8544
    """
    base, _ = _backbone(model)
    seen: set[int] = set()
    total = unique_numel(base.parameters(recurse=False), seen)
    for name, child in base.named_children():
        if not (name.startswith("embeddings") or name == "pooler"):
            total += unique_numel(child.parameters(), seen)
    return total
