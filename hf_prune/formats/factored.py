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
    >>> from hf_prune.factorization import FactorizedLinear, densified_state_dict, factored_modules
    >>> model = nn.Sequential(FactorizedLinear.from_linear_svd(nn.Linear(8, 6), rank=2))
    >>> factored_modules(model)
    {'0': {'in_features': 8, 'out_features': 6, 'rank': 2, 'bias': True}}
    >>> sorted(densified_state_dict(model))
    ['0.bias', '0.weight']
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from ..factorization import factored_modules
from .common import (
    build_model,
    fill_aliases,
    install_factored,
    load_strict,
    read_checked_tensors,
    save_config,
    save_tensors,
    storage_state_dict,
)
from .measure import measure_factored
from .registry import FormatSpec, register_format
from .remote_code import write_remote_loader

WEIGHTS_FILE_NAME = "model.factored.safetensors"


def save_factored(model: nn.Module, folder: str, weight_names: Sequence[str] = ()) -> dict[str, Any]:
    """Write ``config.json``, the trust_remote_code loader and the model's tensors with its factors
    as they are; returns the manifest fields.

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
    save_config(model, folder, auto_map=write_remote_loader(model, folder))
    tensors, aliases = storage_state_dict(model.state_dict())
    written = save_tensors(tensors, os.path.join(folder, WEIGHTS_FILE_NAME), "factored")
    return {**written, "factored_modules": modules, "aliases": aliases}


def measure_factored_export(folder: str, manifest: Mapping[str, Any], weight_names: Sequence[str]) -> dict[str, Any]:
    """The report's numbers, read from the checked weights file (tied weights counted once)."""
    return measure_factored(read_checked_tensors(folder, manifest), manifest, weight_names)


def load_factored(
    folder: str, manifest: Mapping[str, Any], model_class: type | None = None, **kwargs: Any
) -> nn.Module:
    """Build the model, swap in FactorizedLinear layers of the recorded shapes, load strictly."""
    path = os.path.join(folder, str(manifest.get("weights_file")))
    state = fill_aliases(read_checked_tensors(folder, manifest), manifest, path)
    model = build_model(folder, manifest, model_class, **kwargs)
    install_factored(model, manifest.get("factored_modules") or {}, folder)
    return load_strict(model, state, path)


SPEC = register_format(
    FormatSpec(
        name="factored",
        description="each rank-pruned matrix as two small Linear layers",
        structures=frozenset({"factored"}),
        save=save_factored,
        measure=measure_factored_export,
        load=load_factored,
        weights_files=(WEIGHTS_FILE_NAME,),
        loads_without_hf_prune="AutoModel*.from_pretrained(path, trust_remote_code=True)",
    )
)
