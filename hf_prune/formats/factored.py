"""The ``factored`` format: rank-pruned layers kept as their two small factors.

After ``method.materialize()`` a rank-pruned model holds
:class:`~hf_prune.factorization.FactorizedLinear` modules. ``model.factored.safetensors`` stores
the model's state dict as it is (``<name>.down.weight``, ``<name>.up.weight``,
``<name>.up.bias`` for each of them), and the manifest lists each factored module with its
``in_features``, ``out_features``, ``rank`` and whether it has a bias; a loader builds the model
from its config, swaps those ``nn.Linear`` layers for ``FactorizedLinear`` of the recorded shapes
and loads the state dict strictly.

For the ``dense`` format the same models are written with every factored layer multiplied back
into one ``nn.Linear`` weight (:func:`densified_state_dict`), so the folder loads with plain
``from_pretrained``. That builds a new state dict and leaves the model untouched: changing the
model in place would silently undo the compiled form the caller may still fine-tune or export.

Example:
    >>> from torch import nn
    >>> from hf_prune.factorization import FactorizedLinear
    >>> model = nn.Sequential(FactorizedLinear.from_linear_svd(nn.Linear(8, 6), rank=2))
    >>> factored_modules(model)
    {'0': {'in_features': 8, 'out_features': 6, 'rank': 2, 'bias': True}}
    >>> sorted(densified_state_dict(model))
    ['0.bias', '0.weight']
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..factorization import FactorizedLinear, replace_module
from .common import MANIFEST_FILE_NAME, ExportFormatError, save_tensors, storage_state_dict

WEIGHTS_FILE_NAME = "model.factored.safetensors"


def factored_modules(model: nn.Module) -> dict[str, dict[str, Any]]:
    """``{module name: {in_features, out_features, rank, bias}}`` of every FactorizedLinear."""
    return {
        name: {
            "in_features": module.in_features,
            "out_features": module.out_features,
            "rank": module.rank,
            "bias": module.up.bias is not None,
        }
        for name, module in model.named_modules()
        if isinstance(module, FactorizedLinear)
    }


@torch.no_grad()
def densified_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with each FactorizedLinear's factors replaced by ``up @ down``."""
    state = model.state_dict()
    for name, module in model.named_modules():
        if not isinstance(module, FactorizedLinear):
            continue
        for key in [f"{name}.down.weight", f"{name}.up.weight", f"{name}.up.bias"]:
            state.pop(key, None)
        state[f"{name}.weight"] = module.up.weight @ module.down.weight
        if module.up.bias is not None:
            state[f"{name}.bias"] = module.up.bias.detach()
    return state


def save_factored(model: nn.Module, folder: str) -> dict[str, Any]:
    """Write the model's tensors with its factors as they are; returns the manifest fields.

    Raises:
        ValueError: the model holds no FactorizedLinear (nothing rank-pruned was compiled).
    """
    modules = factored_modules(model)
    if not modules:
        raise ValueError(
            f"format='factored' stores rank-pruned layers as two factors, but this {type(model).__name__} "
            f"holds no FactorizedLinear after materialize(); use a rank-pruning method, or export "
            f"element-wise sparsity with format='compact' or format='dense'."
        )
    tensors, aliases = storage_state_dict(model.state_dict())
    written = save_tensors(tensors, os.path.join(folder, WEIGHTS_FILE_NAME), "factored")
    return {**written, "factored_modules": modules, "aliases": aliases}


def install_factored(model: nn.Module, modules: Mapping[str, Any], folder: str) -> None:
    """Swap each listed ``nn.Linear`` of a freshly built model for a FactorizedLinear of its shape."""
    where = os.path.join(folder, MANIFEST_FILE_NAME)
    if not isinstance(modules, Mapping):
        raise ExportFormatError(f"{where}: 'factored_modules' is not a mapping; export the model again.")
    for name, spec in modules.items():
        try:
            linear = model.get_submodule(name)
            in_features, out_features, rank = (int(spec[k]) for k in ("in_features", "out_features", "rank"))
            bias = bool(spec["bias"])
        except (AttributeError, KeyError, TypeError, ValueError):
            raise ExportFormatError(
                f"{where}: factored module {name!r} ({spec!r}) is not a valid entry for this model; "
                f"export the model again."
            ) from None
        if not isinstance(linear, nn.Linear) or (linear.in_features, linear.out_features) != (
            in_features,
            out_features,
        ):
            raise ExportFormatError(
                f"{where}: factored module {name!r} is {in_features}->{out_features}, but the model built from "
                f"config.json has {linear!r} there; the folder mixes exports. Export the model again."
            )
        replace_module(
            model,
            name,
            FactorizedLinear(
                in_features,
                out_features,
                rank,
                bias=bias,
                device=linear.weight.device,
                dtype=linear.weight.dtype,
            ),
        )
