"""Export formats: how a pruned model is laid out on disk, and how it is read back.

Each format is declared once, as a :class:`~hf_prune.formats.registry.FormatSpec` registered by
its own module (importing this package registers the built-in ones):

* ``dense``: a ``save_pretrained`` folder with exact zeros; loads with plain ``from_pretrained``.
* ``compact``: pruned matrices as a 1-bit mask plus their non-zero values
  (:mod:`hf_prune.formats.compact`), much smaller on disk.
* ``factored``: rank-pruned layers as their two small factors (:mod:`hf_prune.formats.factored`).

Every folder also holds ``hf_prune_export.json`` (the manifest); :func:`load_export` reads any
format back into a ready model.

Example:
    >>> from hf_prune.formats import available_formats, formats_for
    >>> available_formats(), formats_for("elementwise")
    (['dense', 'compact', 'factored', 'masks'], ['dense', 'compact', 'masks'])
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torch import nn

from ..factorization import densified_state_dict, factored_modules

# isort: off
# Importing registers each format; the order is the order users see (dense, the default, first).
from . import dense, compact, factored, masks  # noqa: F401

# isort: on
from .common import (
    MANIFEST_FILE_NAME,
    ExportFormat,
    ExportFormatError,
    MissingExportFileError,
    read_manifest,
    write_manifest,
)
from .compact import pack_mask, unpack_mask
from .registry import (
    FormatMismatchError,
    FormatSpec,
    UnknownFormatError,
    available_formats,
    check_format_fits,
    format_table,
    formats_for,
    get_format,
    register_format,
    weights_file_names,
)


def load_export(
    folder: str | os.PathLike[str], manifest: Mapping[str, Any], model_class: type | None = None, **kwargs: Any
) -> nn.Module:
    """Load an export folder with its format's loader (checked against the manifest), in eval mode.

    Example:
        >>> # model = load_export("out/compact", read_manifest("out/compact"))
    """
    folder = os.fspath(folder)
    name = manifest.get("format")
    if name not in available_formats():
        raise ExportFormatError(
            f"{os.path.join(folder, MANIFEST_FILE_NAME)} names format {name!r}; this hf_prune reads "
            f"{available_formats()}. Upgrade hf_prune, or export the model again."
        )
    return get_format(str(name)).load(folder, manifest, model_class=model_class, **kwargs)


__all__ = [
    "MANIFEST_FILE_NAME",
    "ExportFormat",
    "ExportFormatError",
    "FormatMismatchError",
    "FormatSpec",
    "MissingExportFileError",
    "UnknownFormatError",
    "available_formats",
    "check_format_fits",
    "densified_state_dict",
    "factored_modules",
    "format_table",
    "formats_for",
    "get_format",
    "load_export",
    "pack_mask",
    "read_manifest",
    "register_format",
    "unpack_mask",
    "weights_file_names",
    "write_manifest",
]
