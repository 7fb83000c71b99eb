"""Exporting a pruned model: materialised weights, the pruning config and a report.

An export is not a checkpoint: it holds the final weights (pruned entries exactly zero) and no
resume state. Three formats (see :mod:`hf_prune.formats`):

* ``dense``: a normal ``save_pretrained`` folder that loads with plain
  ``AutoModel*.from_pretrained``;
* ``compact``: each pruned matrix as a 1-bit mask plus its non-zero values, several times
  smaller on disk (element-wise methods);
* ``factored``: rank-pruned layers as their two small factors (rank pruning).

Every export holds ``config.json``, the tokenizer when given, ``hf_prune_config.json``,
``pruning_report.json`` and the manifest ``hf_prune_export.json``, and loads back with one
:func:`load_pruned` call. Every export is written into a temporary sibling folder and moved into
place at the end, so a crash never leaves a half-written export behind, and an existing export
at the same path is only replaced once the new one is complete.

Example:
    >>> # report = save_pruned(model, "outputs/demo", method, format="compact", processing_class=tokenizer)
    >>> # model = load_pruned("outputs/demo")
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import transformers
from torch import nn

from .formats import (
    EXPORT_FORMATS,
    MANIFEST_FILE_NAME,
    ExportFormat,
    MissingExportFileError,
    factored_modules,
    load_export,
    read_manifest,
    read_state,
    save_compact,
    save_config,
    save_dense,
    save_factored,
    write_manifest,
)
from .formats.common import read_checked_tensors
from .formats.compact import MASK_SUFFIX, VALUES_SUFFIX, decode_state
from .formats.compact import WEIGHTS_FILE_NAME as COMPACT_WEIGHTS_FILE_NAME
from .formats.factored import WEIGHTS_FILE_NAME as FACTORED_WEIGHTS_FILE_NAME
from .formats.remote_code import write_remote_loader
from .measure import folder_bytes, read_safetensors
from .methods import ElementwiseMaskMethod, PruningMethod

logger = logging.getLogger(__name__)

REPORT_FILE_NAME = "pruning_report.json"
_HUB_KWARGS = ("revision", "token", "cache_dir")

__all__ = [
    "EXPORT_FORMATS",
    "REPORT_FILE_NAME",
    "ExportFormat",
    "atomic_directory",
    "load_pruned",
    "read_report",
    "save_pruned",
]


def _is_replaceable(folder: str) -> bool:
    """An existing folder may be replaced only if it is empty or a previous hf_prune export."""
    entries = os.listdir(folder)
    return not entries or MANIFEST_FILE_NAME in entries or REPORT_FILE_NAME in entries


@contextmanager
def atomic_directory(output_dir: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary folder that replaces ``output_dir`` only if the block succeeds.

    An existing ``output_dir`` is replaced only when it is empty or a previous export; any other
    folder (a Trainer ``output_dir`` with checkpoints, a project folder) is refused before
    anything is written, so an export never deletes unrelated files.

    Example:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "export")
        >>> with atomic_directory(target) as tmp:
        ...     open(os.path.join(tmp, "a.txt"), "w").close()
        >>> os.listdir(target)
        ['a.txt']
    """
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and not (os.path.isdir(output_dir) and _is_replaceable(output_dir)):
        raise FileExistsError(
            f"{output_dir} exists and is not an hf_prune export (no {MANIFEST_FILE_NAME}); refusing to "
            f"replace it. Export into a new or empty folder (not the Trainer's output_dir)."
        )
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.tmp-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it 0700; an export is meant to be shared
    try:
        yield staging
        if os.path.exists(output_dir):
            retired = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.old-", dir=parent)
            os.rmdir(retired)
            os.replace(output_dir, retired)
            os.replace(staging, output_dir)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def save_pruned(
    model: nn.Module,
    output_dir: str | os.PathLike[str],
    method: PruningMethod,
    *,
    format: ExportFormat = "dense",
    processing_class: Any = None,
) -> dict[str, Any]:
    """Finalize ``method`` and export ``model`` to ``output_dir`` in ``format``; returns the report.

    Sparsity, parameter counts and bytes in the report are read back from the written weights
    file, not from the model. Report keys (all formats): ``format``, ``pruned_weights``,
    ``saved_sparsity``, ``saved_model_sparsity``, ``saved_sparsity_per_matrix``,
    ``sparsity_kind`` (``"zeros"``; ``"parameters_removed"`` for ``factored``, where sparsity is
    the share of the dense matrices' parameters the factors do not store), ``parameters``
    (total / nonzero / pruned_matrices as loaded), ``parameters_before`` / ``parameters_after``
    (the dense equivalent / values stored in the file, mask bits not counted), ``bytes_before``
    (tensor bytes of the dense equivalent) / ``bytes_after`` (the weights file on disk; also
    ``weight_bytes``), and ``pruned_bytes`` / ``pruned_dense_bytes`` (the pruned matrices as
    stored / as dense tensors).

    Raises:
        ValueError: ``format`` is unknown (before anything is done), ``compact`` is asked for
            factored layers, or ``factored`` for a model without factored layers.

    Example:
        >>> # report = save_pruned(model, "out/compact", method, format="compact")
        >>> # report["pruned_bytes"] / report["pruned_dense_bytes"]   # 0.131 at 90% sparsity, float32
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose one of {list(EXPORT_FORMATS)}.")
    _check_format_fits_method(format, method)
    report = method.finalize()
    method.materialize()
    weight_names = _pruned_weight_names(method, model)
    with atomic_directory(output_dir) as staging:
        if format == "dense":
            fields = save_dense(model, staging)
        else:
            save_config(model, staging, auto_map=write_remote_loader(model, staging))
            fields = (
                save_compact(model, staging, weight_names) if format == "compact" else save_factored(model, staging)
            )
        manifest = {"format": format, "model_class": type(model).__name__, **fields}
        write_manifest(staging, manifest)
        report.update(format=format, target_sparsity=getattr(method.config, "target_sparsity", None))
        report.update(_measure(staging, manifest, weight_names))
        if processing_class is not None:
            processing_class.save_pretrained(staging)
        method.config.save(staging)
        with open(os.path.join(staging, REPORT_FILE_NAME), "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
    logger.info(
        "Saved %s export to %s (sparsity %.4f, %d bytes)",
        format,
        output_dir,
        report["saved_sparsity"],
        report["bytes_after"],
    )
    return report


def _check_format_fits_method(format: str, method: PruningMethod) -> None:
    """Refuse a format the method cannot produce, before finalize() changes the model."""
    elementwise = isinstance(method, ElementwiseMaskMethod)
    if format == "factored" and elementwise:
        raise ValueError(
            f"format='factored' stores rank-pruned (factorised) layers, but {method.name!r} prunes "
            f"element-wise; use format='compact' (smaller on disk) or 'dense'."
        )
    if format == "compact" and not elementwise and method.name == "rank":
        raise ValueError("format='compact' stores element-wise zeros; rank pruning exports as 'factored' or 'dense'.")


def _pruned_weight_names(method: PruningMethod, model: nn.Module) -> list[str]:
    """Dense-equivalent weight keys of the pruned matrices: the targets and any factored layer."""
    names = [f"{name}.weight" for name in method.targets]
    names += [f"{name}.weight" for name in factored_modules(model) if f"{name}.weight" not in names]
    return names


def _measure(folder: str, manifest: Mapping[str, Any], weight_names: Sequence[str]) -> dict[str, Any]:
    """The report's numbers, read back from the weights file just written."""
    if manifest["format"] == "factored":
        return _measure_factored(folder, manifest, weight_names)
    if manifest["format"] == "dense":
        stored = view = read_safetensors(folder)
        weights_bytes = folder_bytes(folder)
    else:
        stored = read_checked_tensors(folder, manifest)
        view = decode_state(dict(stored), manifest, os.path.join(folder, manifest["weights_file"]))
        weights_bytes = int(manifest["weights_bytes"])
    aliases = manifest.get("aliases") or {}
    pruned = {name: view[aliases.get(name, name)] for name in weight_names}
    per_matrix = {name: float((t == 0).sum()) / max(t.numel(), 1) for name, t in pruned.items()}
    zeros = sum(int((t == 0).sum()) for t in pruned.values())
    total = sum(t.numel() for t in pruned.values())
    floats = [t for t in view.values() if t.is_floating_point()]
    encoded = manifest.get("encoded_tensors") or {}

    def stored_bytes(name: str) -> int:
        key = aliases.get(name, name)
        if key in encoded:
            return _nbytes(stored[key + MASK_SUFFIX]) + _nbytes(stored[key + VALUES_SUFFIX])
        return _nbytes(view[key])

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
        "bytes_before": sum(_nbytes(t) for t in view.values()),
        "bytes_after": weights_bytes,
        "weight_bytes": weights_bytes,
        "pruned_bytes": sum(stored_bytes(name) for name in {aliases.get(n, n) for n in weight_names}),
        "pruned_dense_bytes": sum(_nbytes(view[key]) for key in {aliases.get(n, n) for n in weight_names}),
    }


def _measure_factored(folder: str, manifest: Mapping[str, Any], weight_names: Sequence[str]) -> dict[str, Any]:
    """Report numbers of a factored export: sparsity is the share of parameters not stored."""
    stored = read_state(folder, manifest, fill_aliases=False)
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
    dense_bytes = sum(_nbytes(t) for t in stored.values()) + sum(
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


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def load_pruned(path: str | os.PathLike[str], **kwargs: Any) -> nn.Module:
    """Load an export of any format in one call, as the model class it was saved from.

    ``path`` is an export folder or a Hub repo id. Dense exports (and plain ``save_pretrained``
    folders) go through ``from_pretrained`` and take its keyword arguments; compact and factored
    exports are built from ``config.json`` and loaded strictly (no missing or unexpected key),
    taking ``dtype`` / ``attn_implementation``. ``revision``, ``token`` and ``cache_dir`` apply
    to Hub repos. The model comes back in eval mode.

    Raises:
        MissingExportFileError: no folder at ``path``, or a file the format needs is missing.
        ExportFormatError: a corrupted or mismatched weights file, or an unknown format.

    Example:
        >>> # model = load_pruned("outputs/demo")   # a BertForSequenceClassification
    """
    hub = {key: kwargs.pop(key) for key in _HUB_KWARGS if key in kwargs}
    folder = _local_folder(path, hub)
    manifest = read_manifest(folder) if folder is not None else None
    if folder is None or manifest is None:
        if folder is not None:
            _check_plain_folder(folder)
        return _load_dense(path if folder is None else folder, **hub, **kwargs)
    if manifest["format"] == "dense":
        return _load_dense(folder, **kwargs)
    return load_export(folder, manifest, **kwargs)


def _looks_local(path: str) -> bool:
    """Whether ``path`` can only be a folder (a Hub repo id is ``name`` or ``owner/name``)."""
    return os.path.isabs(path) or path.startswith((".", "~")) or path.count("/") > 1 or os.sep in path.replace("/", "")


def _local_folder(path: str | os.PathLike[str], hub: Mapping[str, Any]) -> str | None:
    """The local folder holding the export, downloading a compact/factored Hub repo; ``None``
    when ``path`` is a Hub repo that ``from_pretrained`` should load itself (a dense one)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return path
    if _looks_local(path):
        raise MissingExportFileError(f"No export folder at {path!r}; check the path (save_pruned writes one).")
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        RepositoryNotFoundError,
    )

    try:
        manifest_file = hf_hub_download(path, MANIFEST_FILE_NAME, **hub)
    except EntryNotFoundError:  # a plain Hub model, or offline (LocalEntryNotFoundError) without it
        return None  # cached: from_pretrained then loads it, or says why it cannot
    except (HFValidationError, RepositoryNotFoundError):
        raise MissingExportFileError(
            f"{path!r} is neither an export folder nor an existing Hub repo; check the path."
        ) from None
    manifest = read_manifest(os.path.dirname(manifest_file))
    if manifest is None or manifest["format"] == "dense":
        return None
    # Only what the loader reads: the JSON files and the one weights file.
    return snapshot_download(path, allow_patterns=["*.json", str(manifest.get("weights_file"))], **hub)


def _check_plain_folder(folder: str) -> None:
    """Refuse a folder without a manifest that holds compact/factored weights or no model at all."""
    own = [
        name
        for name in (COMPACT_WEIGHTS_FILE_NAME, FACTORED_WEIGHTS_FILE_NAME)
        if os.path.isfile(os.path.join(folder, name))
    ]
    if own:
        raise MissingExportFileError(
            f"{os.path.join(folder, MANIFEST_FILE_NAME)} is missing, so {own[0]} cannot be decoded; copy the "
            f"whole export folder again (every file), or export the model again."
        )
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise MissingExportFileError(
            f"{folder} holds neither {MANIFEST_FILE_NAME} nor config.json, so it is not an export; point "
            f"load_pruned at the folder save_pruned wrote."
        )


def _load_dense(path: str | os.PathLike[str], **kwargs: Any) -> nn.Module:
    """``from_pretrained`` with the class named in ``config.json``."""
    config = transformers.AutoConfig.from_pretrained(path, **{k: v for k, v in kwargs.items() if k in _HUB_KWARGS})
    architectures = getattr(config, "architectures", None) or []
    if not architectures or not hasattr(transformers, architectures[0]):
        raise ValueError(
            f"{path}/config.json names no loadable architecture ({architectures!r}); load it with the "
            f"AutoModel class you need, e.g. AutoModelForSequenceClassification.from_pretrained(path)."
        )
    return getattr(transformers, architectures[0]).from_pretrained(path, **kwargs)


def measure_export(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Sparsity, parameters and bytes of a local export, read again from its weights file.

    Example:
        >>> # measure_export("outputs/demo")["saved_sparsity"]   # 0.8 for the demo
    """
    folder = os.fspath(path)
    manifest = read_manifest(folder) or {"format": "dense"}
    return _measure(folder, manifest, read_report(folder)["pruned_weights"])


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``pruning_report.json`` of an export.

    Example:
        >>> # read_report("outputs/demo")["saved_sparsity"]
    """
    with open(os.path.join(path, REPORT_FILE_NAME), encoding="utf-8") as handle:
        return json.load(handle)
