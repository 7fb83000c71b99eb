"""Export formats: how a pruned model is laid out on disk, and how it is read back.

* ``dense``: a ``save_pretrained`` folder with exact zeros; loads with plain ``from_pretrained``.
* ``compact``: pruned matrices as a 1-bit mask plus their non-zero values
  (:mod:`hf_prune.formats.compact`), much smaller on disk.
* ``factored``: rank-pruned layers as their two small factors (:mod:`hf_prune.formats.factored`).

Every folder also holds ``hf_prune_export.json`` (the manifest); :func:`load_export` reads the
compact and factored formats back into a ready model.

Example:
    >>> from hf_prune.formats import EXPORT_FORMATS
    >>> EXPORT_FORMATS
    ('dense', 'compact', 'factored')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .common import (
    EXPORT_FORMATS,
    MANIFEST_FILE_NAME,
    ExportFormat,
    ExportFormatError,
    MissingExportFileError,
    build_model,
    load_strict,
    read_checked_tensors,
    read_manifest,
    save_config,
    write_manifest,
)
from .compact import decode_state, pack_mask, save_compact, unpack_mask
from .dense import save_dense
from .factored import densified_state_dict, factored_modules, install_factored, save_factored

# Formats whose weights hf_prune reads itself (dense goes through from_pretrained).
OWN_FORMATS: tuple[str, ...] = ("compact", "factored")


def read_state(
    folder: str | os.PathLike[str], manifest: Mapping[str, Any], fill_aliases: bool = True
) -> dict[str, torch.Tensor]:
    """The state dict a compact or factored export holds, decoded and checked.

    ``fill_aliases`` puts each tied weight back under every key that shares it, so the state
    dict matches ``model.state_dict()`` key for key.
    """
    folder = os.fspath(folder)
    path = os.path.join(folder, str(manifest.get("weights_file")))
    state = decode_state(read_checked_tensors(folder, manifest), manifest, path)
    if fill_aliases:
        for alias, source in (manifest.get("aliases") or {}).items():
            if source not in state:
                raise ExportFormatError(
                    f"{path}: tied weight {alias!r} points at {source!r}, which is not "
                    f"in the file; export the model again."
                )
            state[alias] = state[source]
    return state


def load_export(folder: str | os.PathLike[str], manifest: Mapping[str, Any], **kwargs: Any) -> nn.Module:
    """Build the model of a compact or factored export and load its weights, strictly.

    ``kwargs`` go to the model class's ``_from_config`` (``dtype``, ``attn_implementation``).

    Example:
        >>> # model = load_export("out/compact", read_manifest("out/compact"))
    """
    folder = os.fspath(folder)
    if manifest.get("format") not in OWN_FORMATS:
        raise ExportFormatError(
            f"{os.path.join(folder, MANIFEST_FILE_NAME)} names format {manifest.get('format')!r}; this hf_prune "
            f"reads {list(EXPORT_FORMATS)}. Upgrade hf_prune, or export the model again."
        )
    state = read_state(folder, manifest)  # before building the model: a bad file fails fast
    model = build_model(folder, manifest, **kwargs)
    install_factored(model, manifest.get("factored_modules") or {}, folder)
    return load_strict(model, state, os.path.join(folder, str(manifest["weights_file"])))


__all__ = [
    "EXPORT_FORMATS",
    "MANIFEST_FILE_NAME",
    "OWN_FORMATS",
    "ExportFormat",
    "ExportFormatError",
    "MissingExportFileError",
    "densified_state_dict",
    "factored_modules",
    "load_export",
    "pack_mask",
    "read_manifest",
    "read_state",
    "save_compact",
    "save_config",
    "save_dense",
    "save_factored",
    "unpack_mask",
    "write_manifest",
]
