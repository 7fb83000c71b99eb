"""Counting parameters, zeros and bytes, from a model or straight from safetensors files.

Sparsity promises are checked against the saved files, not against the schedule.

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 2), nn.Linear(2, 1))
    >>> parameter_counts(model, {"0": model[0]})["pruned_matrices"]
    8
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from .targets import _backbone, weight_of


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


def parameter_counts(model: nn.Module, targets: Mapping[str, nn.Module] | None = None) -> dict[str, int]:
    """Total, non-zero, and pruned-matrix parameter counts of ``model`` (shared tensors once).

    ``targets`` (a method's ``targets``) are the pruned modules; ``pruned_matrices`` counts their
    weights as the model computes them (a parametrized weight counts at its dense size).
    """
    seen: set[int] = set()
    total = nonzero = 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        nonzero += int((param != 0).sum())
    pruned_total = sum(weight_of(module).numel() for module in (targets or {}).values())
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
