"""The ``masks`` format: only the sparsity pattern, applied to the base model when loaded.

The smallest way to share a pattern (RPP's "universal" pattern is exactly this): one bit per
weight of each pruned matrix and the id (and revision) of the pretrained model it applies to; no
weight values. ``masks.safetensors`` holds ``<key>::mask`` per pruned matrix, bit-packed as in
the compact format (:mod:`hf_prune.formats.compact`; 1 = kept), with ``<key>`` relative to the
backbone (``encoder.layer.0.attention.self.query.weight``), so a pattern found on one head class
applies to any other of the same architecture (``BertForMaskedLM`` -> ``BertForSequenceClassification``).

Loading (``hf_prune.load_pruned``) builds the recorded class from the base model and zeroes the
pruned weights; the weights are the *base model's*, not the fine-tuned ones, and a task head is
freshly initialised. The base model is loaded with the caller's Hub options (``token``,
``cache_dir``, ...) at the commit the export recorded, where one was known (see
:func:`hf_prune.pretrained.base_model_id`). ``FrozenMaskConfig(masks_from=path_or_repo)`` starts fine-tuning from it.

Example:
    >>> from hf_prune.formats import get_format
    >>> sorted(get_format("masks").structures)
    ['elementwise']
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import DataUnavailableError
from ..pretrained import base_model_id, may_be_hub_id, resolve_model_path
from ..targets import backbone_prefix
from .common import (
    ExportFormatError,
    MissingExportFileError,
    dtype_name,
    model_class_of,
    read_checked_tensors,
    read_manifest,
    save_config,
    save_tensors,
)
from .compact import pack_mask
from .locate import locate_export
from .measure import MASK_SUFFIX
from .registry import FormatSpec, register_format
from .standalone_loader import unpack_mask

logger = logging.getLogger(__name__)

WEIGHTS_FILE_NAME = "masks.safetensors"


def save_masks(model: nn.Module, folder: str, weight_names: Sequence[str]) -> dict[str, Any]:
    """Write ``config.json`` and the bit-packed pattern of ``weight_names``; returns the manifest fields.

    Raises:
        ExportFormatError: the model does not say which pretrained model it came from (nothing to
            apply the pattern to), or a pruned weight lies outside its backbone.
    """
    base, revision = base_model_id(model)
    if base is None:
        raise ExportFormatError(
            "format='masks' records the pretrained model the pattern applies to, but this model's config has no "
            "_name_or_path; load the model with from_pretrained(<Hub id or folder>) before pruning, or export "
            "in the compact format, which holds the weights themselves."
        )
    if os.path.isdir(base):
        logger.warning("The masks export applies to the local folder %s; it loads only where that folder exists.", base)
    prefix = backbone_prefix(model)
    parameters = dict(model.named_parameters(remove_duplicate=False))
    tensors: dict[str, torch.Tensor] = {}
    entries: dict[str, Any] = {}
    for name in weight_names:
        if not name.startswith(prefix) or name not in parameters:
            raise ExportFormatError(
                f"format='masks': pruned weight {name!r} is not a parameter under the backbone {prefix!r}; "
                f"export in the compact or dense format."
            )
        weight = parameters[name].detach()
        key = name[len(prefix) :]
        kept = weight != 0
        tensors[key + MASK_SUFFIX] = pack_mask(kept)
        entries[key] = {"shape": list(weight.shape), "dtype": dtype_name(weight.dtype), "nnz": int(kept.sum())}
    save_config(model, folder)
    written = save_tensors(tensors, os.path.join(folder, WEIGHTS_FILE_NAME), "masks")
    return {**written, "base_model": base, "base_model_revision": revision, "masked_tensors": entries}


def read_pattern(folder: str, manifest: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """``{backbone-relative key: bool tensor (True = kept)}`` of a masks export, checked."""
    path = os.path.join(folder, str(manifest.get("weights_file")))
    stored = read_checked_tensors(folder, manifest)
    pattern = {}
    for key, entry in (manifest.get("masked_tensors") or {}).items():
        packed = stored.get(key + MASK_SUFFIX)
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if packed is None or not isinstance(shape, list):
            raise ExportFormatError(f"{path}: the mask of {key!r} is missing or has no shape; export again.")
        numel = math.prod(shape)
        if packed.dtype != torch.uint8 or packed.numel() != math.ceil(numel / 8):
            raise ExportFormatError(f"{path}: the mask of {key!r} does not fit shape {shape}; export again.")
        kept = unpack_mask(packed, numel)
        if int(kept.sum()) != entry.get("nnz"):
            raise ExportFormatError(f"{path}: the mask of {key!r} disagrees with the manifest; export again.")
        pattern[key] = kept.view(*shape)
    return pattern


@torch.no_grad()
def apply_pattern(model: nn.Module, pattern: Mapping[str, torch.Tensor], where: str) -> None:
    """Zero ``model``'s weights outside ``pattern`` (keys relative to its backbone).

    Raises:
        ExportFormatError: a masked weight is missing from ``model`` or has another shape (a
            pattern found on another architecture or size).
    """
    prefix = backbone_prefix(model)
    parameters = dict(model.named_parameters(remove_duplicate=False))
    for key, kept in pattern.items():
        weight = parameters.get(prefix + key)
        if weight is None or tuple(weight.shape) != tuple(kept.shape):
            found = "no such weight" if weight is None else f"shape {list(weight.shape)}"
            raise ExportFormatError(
                f"{where}: the pattern of {key!r} ({list(kept.shape)}) does not fit this {type(model).__name__} "
                f"({found}); apply it to the base model it was found on, or one of the same size."
            )
        weight.mul_(kept.to(device=weight.device, dtype=weight.dtype))


def apply_masks_from(model: nn.Module, path: str | os.PathLike[str], **hub: Any) -> None:
    """Apply the pattern of a masks export (a folder or a Hub repo id) to ``model``.

    Raises:
        MissingExportFileError: no such export.
        ExportFormatError: not a masks export, or a pattern that does not fit the model.
    """
    folder = locate_export(path, hub)
    manifest = read_manifest(folder) if folder is not None else None
    if folder is None or manifest is None or manifest.get("format") != "masks":
        found = "no hf_prune export" if manifest is None else f"a {manifest.get('format')!r} export"
        raise MissingExportFileError(
            f"{os.fspath(path)!r} is {found}, not a masks export; export a pattern with save_pruned(..., "
            f"format='masks')."
        )
    apply_pattern(model, read_pattern(folder, manifest), os.path.join(folder, WEIGHTS_FILE_NAME))


def measure_masks(folder: str, manifest: Mapping[str, Any], weight_names: Sequence[str]) -> dict[str, Any]:
    """The report's numbers: sparsity of each masked matrix; the file holds no parameters."""
    pattern = read_pattern(folder, manifest)
    keys = list(pattern)
    # weight_names are the exporting model's full names, written in the same order as the keys.
    names = list(weight_names) if len(weight_names) == len(keys) else keys
    total = sum(kept.numel() for kept in pattern.values())
    kept_count = sum(int(kept.sum()) for kept in pattern.values())
    entries = manifest["masked_tensors"]
    dense_bytes = sum(
        kept.numel() * torch.empty((), dtype=getattr(torch, entries[key]["dtype"])).element_size()
        for key, kept in pattern.items()
    )
    weights_bytes = int(manifest["weights_bytes"])
    per_matrix = {name: 1.0 - float(pattern[key].float().mean()) for name, key in zip(names, keys)}
    return {
        "pruned_weights": names,
        "sparsity_kind": "zeros",
        "saved_sparsity": 1.0 - kept_count / max(total, 1),
        "saved_model_sparsity": None,  # the other weights are the base model's, not in the file
        "saved_sparsity_per_matrix": per_matrix,
        "parameters": {"total": 0, "nonzero": 0, "pruned_matrices": total},
        "parameters_before": total,
        "parameters_after": 0,
        "bytes_before": dense_bytes,
        "bytes_after": weights_bytes,
        "weight_bytes": weights_bytes,
        "pruned_bytes": weights_bytes,
        "pruned_dense_bytes": dense_bytes,
        "base_model": manifest.get("base_model"),
    }


# ``from_pretrained`` options that say how to reach the Hub, not which repo: they apply to the base
# model as to the export (``load_pruned``'s ``revision`` and ``subfolder`` name the export's own).
BASE_MODEL_HUB_KWARGS = ("token", "cache_dir", "force_download", "local_files_only")


def base_model_hub_kwargs(hub: Mapping[str, Any]) -> dict[str, Any]:
    """The options of ``hub`` (``load_pruned``'s Hub options) that also apply to the base model.

    Example:
        >>> base_model_hub_kwargs({"token": "hf_x", "revision": "v1", "subfolder": "a", "cache_dir": None})
        {'token': 'hf_x'}
    """
    return {key: hub[key] for key in BASE_MODEL_HUB_KWARGS if hub.get(key) is not None}


def load_masks(folder: str, manifest: Mapping[str, Any], model_class: type | None = None, **kwargs: Any) -> nn.Module:
    """The recorded class built from the base model, with the pattern applied (eval mode).

    ``kwargs`` go to the base model's ``from_pretrained``: the Hub options ``token``,
    ``cache_dir``, ``force_download``, ``local_files_only`` (see :func:`base_model_hub_kwargs`),
    and ``dtype`` and the like. The base model is loaded at the revision the export recorded
    (``base_model_revision`` in the manifest), unless ``revision=`` is given.

    Raises:
        ExportFormatError: the manifest names no base model.
        DataUnavailableError: the base model cannot be loaded here (offline and not cached, a
            private or gated repo without a token that may read it, a revision that is gone).
    """
    base = manifest.get("base_model")
    if not isinstance(base, str) or not base:
        raise ExportFormatError(f"{folder}: the masks manifest names no base model; export the pattern again.")
    pattern = read_pattern(folder, manifest)  # before the (possibly large) base model loads
    cls = model_class_of(folder, manifest, model_class)
    recorded = manifest.get("base_model_revision")
    options: dict[str, Any] = {"revision": recorded} if isinstance(recorded, str) and recorded else {}
    options.update(kwargs)
    try:
        model = cls.from_pretrained(resolve_model_path(base), **options)
    except OSError as err:  # transformers' answer to a folder, repo, revision or file it cannot get
        at = f" at revision {options['revision']!r}" if options.get("revision") else ""
        reason = " ".join(str(err).split())[:300]
        if os.path.isdir(resolve_model_path(base)) or not may_be_hub_id(base):
            fix = (
                f"the pattern was found on the local folder {os.path.abspath(base)}: put that model there again, "
                f"or export in the compact format, which holds the weights themselves"
            )
        else:
            fix = (
                "pass token= when the base model is private or gated, cache_dir= where it is cached, or load it "
                "once while the Hub is reachable"
            )
        raise DataUnavailableError(
            f"{folder} is a masks export: it holds only the pattern, applied to its base model {base!r}{at}, which "
            f"cannot be loaded here ({type(err).__name__}: {reason}). To load it, {fix}."
        ) from None
    apply_pattern(model, pattern, os.path.join(folder, WEIGHTS_FILE_NAME))
    return model.eval()


SPEC = register_format(
    FormatSpec(
        name="masks",
        description="only the sparsity pattern (1 bit per weight) + the base model id",
        structures=frozenset({"elementwise"}),
        save=save_masks,
        measure=measure_masks,
        load=load_masks,
        weights_files=(WEIGHTS_FILE_NAME,),
        loads_without_hf_prune="no (hf_prune.load_pruned applies the pattern to the base model)",
        holds_weights=False,
    )
)
