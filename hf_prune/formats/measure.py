"""The numbers of an export's report, read back from the weights file it just wrote.

Sparsity, parameter counts and bytes are never taken from the model in memory: each format's
``measure`` reads its own file and hands the tensors to one of these two functions, so what the
report promises is what a user loading the folder gets.

Example:
    >>> import torch
    >>> view = {"w": torch.tensor([[0.0, 1.0], [0.0, 0.0]]), "b": torch.ones(2)}
    >>> numbers = measure_zeros(view, view, 40, {}, ["w"])
    >>> numbers["saved_sparsity"], numbers["parameters"]["pruned_matrices"]
    (0.75, 4)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

MASK_SUFFIX = "::mask"
VALUES_SUFFIX = "::values"


def nbytes(tensor: torch.Tensor) -> int:
    """Bytes of ``tensor``'s elements."""
    return tensor.numel() * tensor.element_size()


def measure_zeros(
    stored: Mapping[str, torch.Tensor],
    view: Mapping[str, torch.Tensor],
    weights_bytes: int,
    manifest: Mapping[str, Any],
    weight_names: Sequence[str],
) -> dict[str, Any]:
    """Report numbers of a format that keeps pruned weights as zeros (``dense``, ``compact``).

    ``stored`` is the file's tensors as written (encoded pairs for compact), ``view`` the
    decoded state dict, ``weights_bytes`` the file size.
    """
    aliases = manifest.get("aliases") or {}
    pruned = {name: view[aliases.get(name, name)] for name in weight_names}
    per_matrix = {name: float((t == 0).sum()) / max(t.numel(), 1) for name, t in pruned.items()}
    zeros = sum(int((t == 0).sum()) for t in pruned.values())
    total = sum(t.numel() for t in pruned.values())
    floats = [t for t in view.values() if t.is_floating_point()]
    encoded = manifest.get("encoded_tensors") or {}
    sources = {aliases.get(n, n) for n in weight_names}

    def stored_bytes(key: str) -> int:
        if key in encoded:
            return nbytes(stored[key + MASK_SUFFIX]) + nbytes(stored[key + VALUES_SUFFIX])
        return nbytes(view[key])

    return {
        "pruned_weights": list(weight_names),
        "sparsity_kind": "zeros",
        "saved_sparsity": zeros / max(total, 1),
        "saved_model_sparsity": sum(int((t == 0).sum()) for t in floats) / max(sum(t.numel() for t in floats), 1),
        "saved_sparsity_per_matrix": per_matrix,
        "parameters": {
            "total": sum(t.numel() for t in view.values()),
            "nonzero": sum(int((t != 0).sum()) for t in view.values()),
            "pruned_matrices": total,
        },
        "parameters_before": sum(t.numel() for t in view.values()),
        "parameters_after": sum(t.numel() for k, t in stored.items() if not k.endswith(MASK_SUFFIX)),
        "bytes_before": sum(nbytes(t) for t in view.values()),
        "bytes_after": weights_bytes,
        "weight_bytes": weights_bytes,
        "pruned_bytes": sum(stored_bytes(key) for key in sources),
        "pruned_dense_bytes": sum(nbytes(view[key]) for key in sources),
    }


def measure_factored(
    stored: Mapping[str, torch.Tensor], manifest: Mapping[str, Any], weight_names: Sequence[str]
) -> dict[str, Any]:
    """Report numbers of a ``factored`` export: sparsity is the share of parameters not stored.

    ``stored`` is the file's tensors (tied weights once), ``manifest`` lists the factored modules.
    """
    modules = manifest["factored_modules"]
    after = sum(t.numel() for t in stored.values())
    before = after
    stored_count: dict[str, int] = {}
    dense_count: dict[str, int] = {}
    itemsize: dict[str, int] = {}
    for name, spec in modules.items():
        factors = spec["rank"] * (spec["in_features"] + spec["out_features"])
        dense = spec["in_features"] * spec["out_features"]
        before += dense - factors
        stored_count[f"{name}.weight"], dense_count[f"{name}.weight"] = factors, dense
        itemsize[f"{name}.weight"] = stored[f"{name}.up.weight"].element_size()
    for name in weight_names:
        if name not in stored_count:  # a target left as one Linear: stored whole
            tensor = stored[(manifest.get("aliases") or {}).get(name, name)]
            stored_count[name] = dense_count[name] = tensor.numel()
            itemsize[name] = tensor.element_size()
    per_matrix = {name: 1.0 - stored_count[name] / max(dense_count[name], 1) for name in weight_names}
    weights_bytes = int(manifest["weights_bytes"])
    dense_bytes = sum(nbytes(t) for t in stored.values()) + sum(
        (dense_count[n] - stored_count[n]) * itemsize[n] for n in stored_count
    )
    return {
        "pruned_weights": list(weight_names),
        "sparsity_kind": "parameters_removed",
        "saved_sparsity": 1.0 - sum(stored_count.values()) / max(sum(dense_count.values()), 1),
        "saved_model_sparsity": 1.0 - after / max(before, 1),
        "saved_sparsity_per_matrix": per_matrix,
        "factored_modules": dict(modules),
        "parameters": {
            "total": after,
            "nonzero": sum(int((t != 0).sum()) for t in stored.values()),
            "pruned_matrices": sum(stored_count.values()),
        },
        "parameters_before": before,
        "parameters_after": after,
        "bytes_before": dense_bytes,
        "bytes_after": weights_bytes,
        "weight_bytes": weights_bytes,
        "pruned_bytes": sum(stored_count[n] * itemsize[n] for n in stored_count),
        "pruned_dense_bytes": sum(dense_count[n] * itemsize[n] for n in stored_count),
    }
