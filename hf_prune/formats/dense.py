"""The ``dense`` format: a normal ``save_pretrained`` folder, pruned entries stored as zeros.

It loads with plain ``AutoModel*.from_pretrained``. A model holding FactorizedLinear layers is
written with each multiplied back into one ``nn.Linear`` weight (the model itself is left as it
is; see :mod:`hf_prune.formats.factored`), so the folder still matches its config.

Example:
    >>> # manifest_fields = save_dense(model, folder, weight_names); model = AutoModel.from_pretrained(folder)
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from typing import Any, cast

import transformers
from torch import nn

from ..factorization import densified_state_dict, factored_modules
from ..measure import folder_bytes, read_safetensors
from .common import check_file, file_sha256, model_class_of
from .measure import measure_zeros
from .registry import FormatSpec, register_format


def save_dense(model: nn.Module, folder: str, weight_names: Sequence[str] = ()) -> dict[str, Any]:
    """``model.save_pretrained(folder)``, factors multiplied out; returns the manifest fields
    (each weights file with its size and SHA-256, so a damaged copy is refused on load)."""
    densified = sorted(factored_modules(model))
    state = densified_state_dict(model) if densified else None
    cast(transformers.PreTrainedModel, model).save_pretrained(folder, state_dict=state)
    files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, "*.safetensors")))
    return {
        "weights_files": files,
        "weights_files_bytes": {name: os.path.getsize(os.path.join(folder, name)) for name in files},
        "weights_files_sha256": {name: file_sha256(os.path.join(folder, name)) for name in files},
        "densified_modules": densified,
    }


def check_dense_files(folder: str, manifest: Mapping[str, Any]) -> None:
    """Refuse a dense export whose weights files are missing, truncated or corrupted.

    Exports written before checksums were recorded are only checked for presence.

    Raises:
        MissingExportFileError: a weights file the manifest lists is missing.
        ExportFormatError: a file's size or SHA-256 differs from the manifest.
    """
    sizes, digests = manifest.get("weights_files_bytes") or {}, manifest.get("weights_files_sha256") or {}
    for name in manifest.get("weights_files") or []:
        check_file(folder, str(name), "dense", sizes.get(name), digests.get(name))


def measure_dense(folder: str, manifest: Mapping[str, Any], weight_names: Sequence[str]) -> dict[str, Any]:
    """The report's numbers, read from the folder's checked safetensors files."""
    check_dense_files(folder, manifest)
    tensors = read_safetensors(folder)
    return measure_zeros(tensors, tensors, folder_bytes(folder), manifest, weight_names)


def load_dense(folder: str, manifest: Mapping[str, Any], model_class: type | None = None, **kwargs: Any) -> nn.Module:
    """``from_pretrained`` of the class the export was saved from (``kwargs`` go to it), after
    checking the weights files against the manifest."""
    check_dense_files(folder, manifest)
    cls = model_class_of(folder, manifest, model_class)
    return cls.from_pretrained(folder, **kwargs).eval()


SPEC = register_format(
    FormatSpec(
        name="dense",
        description="every weight, pruned ones as exact zeros",
        structures=frozenset({"elementwise", "factored"}),
        save=save_dense,
        measure=measure_dense,
        load=load_dense,
        weights_files=("model.safetensors",),
        loads_without_hf_prune="AutoModel*.from_pretrained(path)",
    )
)
