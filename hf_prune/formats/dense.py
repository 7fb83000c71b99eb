"""The ``dense`` format: a normal ``save_pretrained`` folder, pruned entries stored as zeros.

It loads with plain ``AutoModel*.from_pretrained``. A model holding FactorizedLinear layers is
written with each multiplied back into one ``nn.Linear`` weight (the model itself is left as it
is; see :mod:`hf_prune.formats.factored`), so the folder still matches its config.

Example:
    >>> # manifest_fields = save_dense(model, folder); model = AutoModel.from_pretrained(folder)
"""

from __future__ import annotations

import glob
import os
from typing import Any, cast

import transformers
from torch import nn

from .factored import densified_state_dict, factored_modules


def save_dense(model: nn.Module, folder: str) -> dict[str, Any]:
    """``model.save_pretrained(folder)``, factors multiplied out; returns the manifest fields."""
    densified = sorted(factored_modules(model))
    state = densified_state_dict(model) if densified else None
    cast(transformers.PreTrainedModel, model).save_pretrained(folder, state_dict=state)
    files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, "*.safetensors")))
    return {"weights_files": files, "densified_modules": densified}
