"""Exporting a pruned model: materialised weights, the pruning config and a report.

An export is not a checkpoint: it holds the final weights (pruned entries exactly zero) and no
resume state. The ``dense`` format is a normal ``save_pretrained`` folder that loads with plain
``AutoModel*.from_pretrained``. Every export is written into a temporary sibling folder and
moved into place at the end, so a crash never leaves a half-written export behind, and an
existing export at the same path is only replaced once the new one is complete.

Example:
    >>> # report = save_pruned(model, "outputs/demo", method, processing_class=tokenizer)
    >>> # model = load_pruned("outputs/demo")
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import Any, Literal

import transformers
from torch import nn

from .measure import folder_bytes, parameter_counts, saved_sparsity
from .methods import PruningMethod

logger = logging.getLogger(__name__)

REPORT_FILE_NAME = "pruning_report.json"
ExportFormat = Literal["dense"]
EXPORT_FORMATS: tuple[str, ...] = ("dense",)


@contextmanager
def atomic_directory(output_dir: str | os.PathLike[str]):
    """Yield a temporary folder that replaces ``output_dir`` only if the block succeeds.

    Example:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "export")
        >>> with atomic_directory(target) as tmp:
        ...     open(os.path.join(tmp, "a.txt"), "w").close()
        >>> os.listdir(target)
        ['a.txt']
    """
    output_dir = os.path.abspath(output_dir)
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.tmp-", dir=parent)
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
    """Finalize ``method`` and export ``model`` to ``output_dir``; returns the report.

    The folder holds the weights (``model.safetensors``), the model config, the tokenizer when
    given, ``hf_prune_config.json`` and ``pruning_report.json``. Sparsity in the report is read
    back from the written safetensors file.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose one of {list(EXPORT_FORMATS)}.")
    report = method.finalize()
    method.materialize()
    weight_names = [f"{name}.weight" for name in method.targets]
    with atomic_directory(output_dir) as staging:
        model.save_pretrained(staging)
        if processing_class is not None:
            processing_class.save_pretrained(staging)
        method.config.save(staging)
        measured = saved_sparsity(staging, weight_names)
        report.update(
            format=format,
            saved_sparsity=measured["pruned"],
            saved_model_sparsity=measured["model"],
            target_sparsity=getattr(method.config, "target_sparsity", None),
            pruned_weights=weight_names,
            parameters=parameter_counts(model, weight_names),
            weight_bytes=folder_bytes(staging),
        )
        with open(os.path.join(staging, REPORT_FILE_NAME), "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
    logger.info("Saved %s export to %s (sparsity %.4f)", format, output_dir, measured["pruned"])
    return report


def load_pruned(path: str | os.PathLike[str], **kwargs: Any) -> nn.Module:
    """Load an export in one call, with the model class named in its config.

    Example:
        >>> # model = load_pruned("outputs/demo")   # a BertForSequenceClassification
    """
    config = transformers.AutoConfig.from_pretrained(path)
    architectures = getattr(config, "architectures", None) or []
    if not architectures or not hasattr(transformers, architectures[0]):
        raise ValueError(
            f"{path}/config.json names no loadable architecture ({architectures!r}); load it with the "
            f"AutoModel class you need, e.g. AutoModelForSequenceClassification.from_pretrained(path)."
        )
    return getattr(transformers, architectures[0]).from_pretrained(path, **kwargs)


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``pruning_report.json`` of an export."""
    with open(os.path.join(path, REPORT_FILE_NAME), encoding="utf-8") as handle:
        return json.load(handle)
