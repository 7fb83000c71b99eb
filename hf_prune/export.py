"""Exporting a pruned model: materialised weights, the pruning config and a report.

An export is not a checkpoint: it holds the final weights (pruned entries exactly zero, or
rank-pruned layers as factors) and no resume state. The formats are declared in
:mod:`hf_prune.formats.registry` (``dense``, ``compact``, ``factored``); a method's result fits
the formats that store its weight structure (``method.weight_structure``).

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
from collections.abc import Mapping
from typing import Any

import transformers
from torch import nn

from .cards import CardInfo, write_card
from .errors import InvalidConfigError, MethodOrderError
from .export_folder import atomic_directory, check_export_target, files_under
from .factorization import factored_modules
from .formats import (
    MANIFEST_FILE_NAME,
    ExportFormat,
    ExportFormatError,
    MissingExportFileError,
    get_format,
    load_export,
    read_manifest,
    weights_file_names,
    write_manifest,
)
from .formats.common import REPORT_FILE_NAME, model_class_fields
from .formats.locate import locate_export
from .formats.masks import base_model_hub_kwargs
from .formats.registry import check_format_fits
from .formats.standalone_loader import HUB_KWARGS
from .methods import PruningMethod
from .pretrained import base_model_id

logger = logging.getLogger(__name__)

# Where a multitask export keeps one stock single-task export per task.
TASKS_FOLDER = "tasks"


__all__ = [
    "REPORT_FILE_NAME",
    "ExportFormat",
    "atomic_directory",
    "load_pruned",
    "measure_export",
    "read_report",
    "save_pruned",
]


def save_pruned(
    model: nn.Module,
    output_dir: str | os.PathLike[str],
    method: PruningMethod,
    *,
    format: ExportFormat = "dense",
    processing_class: Any = None,
    card: CardInfo | None = None,
) -> dict[str, Any]:
    """Finalize ``method`` and export ``model`` to ``output_dir`` in ``format``; returns the report.

    ``format`` is any registered format that stores the method's weight structure
    (``hf_prune.formats.formats_for(method.weight_structure)``). Sparsity, parameter counts and
    bytes in the report are read back from the written weights file, not from the model. Report
    keys (all formats): ``format``, ``pruned_weights``, ``saved_sparsity``,
    ``saved_model_sparsity``, ``saved_sparsity_per_matrix``, ``sparsity_kind`` (``"zeros"``;
    ``"parameters_removed"`` for ``factored``, where sparsity is the share of the dense matrices'
    parameters the factors do not store), ``parameters`` (total / nonzero / pruned_matrices as
    loaded), ``parameters_before`` / ``parameters_after`` (the dense equivalent / values stored in
    the file, mask bits not counted), ``bytes_before`` (tensor bytes of the dense equivalent) /
    ``bytes_after`` (the weights file on disk; also ``weight_bytes``), and ``pruned_bytes`` /
    ``pruned_dense_bytes`` (the pruned matrices as stored / as dense tensors).

    ``processing_class`` (the tokenizer) is saved with the export; without it, the tokenizer of
    the local folder the model was loaded from is saved, if it has one (a warning says when none is).
    The model card (``README.md`` + ``sparsity_per_layer.png``, :func:`hf_prune.cards.write_card`)
    is written inside the export; ``card`` adds what the folder cannot know (evaluation results,
    datasets, license, the repo id).

    Raises:
        UnknownFormatError: ``format`` is not registered (before anything is done).
        FormatMismatchError: ``format`` cannot store the method's result (before anything is done).

    Example:
        >>> # report = save_pruned(model, "out/compact", method, format="compact")
        >>> # report["pruned_bytes"] / report["pruned_dense_bytes"]   # 0.131 at 90% sparsity, float32
    """
    # Everything that can be refused is refused before finalize() changes the model.
    _check_method_follows(method, model)
    spec = check_format_fits(format, method.weight_structure, method.name)
    check_export_target(output_dir)
    report = method.finalize()
    method.materialize()
    weight_names = _pruned_weight_names(method, model)
    report.update(format=spec.name, target_sparsity=getattr(method.config, "target_sparsity", None))
    # transformers 5 no longer writes _name_or_path into config.json: the card's base_model comes from here.
    base, base_revision = base_model_id(model)
    report.setdefault("base_model", base)
    report.setdefault("base_model_revision", base_revision)
    processing_class = processing_class if processing_class is not None else _tokenizer_of(model)
    from .multitask.model import MultitaskModel  # here: the multitask package imports the trainer, which imports this

    with atomic_directory(output_dir) as staging:
        # A masks-only export is the shared pattern itself: no per-task weights to cut.
        if isinstance(model, MultitaskModel) and spec.holds_weights:  # first: the manifest lists tasks/
            report["tasks"] = _write_task_exports(
                model, staging, spec, method, weight_names, report, processing_class, card
            )
        report = _write_export(staging, model, spec, method, weight_names, report, processing_class, card)
    logger.info(
        "Saved %s export to %s (sparsity %.4f, %d bytes)",
        spec.name,
        output_dir,
        report["saved_sparsity"],
        report["bytes_after"],
    )
    return report


def _write_export(
    folder: str,
    model: nn.Module,
    spec: Any,
    method: PruningMethod,
    weight_names: list[str],
    report: dict[str, Any],
    processing_class: Any,
    card: CardInfo | None,
) -> dict[str, Any]:
    """Write one complete export of ``model`` into the (empty or new) ``folder``; returns its report."""
    os.makedirs(folder, exist_ok=True)
    fields = spec.save(model, folder, weight_names)
    manifest = {"format": spec.name, **model_class_fields(model), **fields}
    report = {**report, **spec.measure(folder, manifest, weight_names)}
    if processing_class is not None:
        processing_class.save_pretrained(folder)
    method.config.save(folder)
    with open(os.path.join(folder, REPORT_FILE_NAME), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    # Written last, listing every file of the export (with the per-task exports of a multitask
    # model under tasks/): push_pruned uploads exactly these, and a later re-export keeps any other file.
    manifest["files"] = sorted({*files_under(folder), MANIFEST_FILE_NAME})
    write_manifest(folder, manifest)
    # Inside the staging folder: an export is never without its card (README.md + plot).
    write_card(folder, card)
    return report


def _write_task_exports(
    model: Any,
    staging: str,
    spec: Any,
    method: PruningMethod,
    weight_names: list[str],
    report: dict[str, Any],
    processing_class: Any,
    card: CardInfo | None,
) -> dict[str, Any]:
    """One export per task under ``tasks/<name>/``: the task's stock model (shared encoder + its
    head), loadable by itself; returns the ``tasks`` entry of the multitask report."""
    shared = f"{model.base_model_prefix}."
    task_names = [
        f"{model.head_prefix}.{name[len(shared) :]}" if name.startswith(shared) else name for name in weight_names
    ]
    tasks: dict[str, Any] = {}
    for name, task_model in model.task_models():
        folder = os.path.join(staging, TASKS_FOLDER, name)
        task_card = card.for_task(name) if card is not None else None
        task_report = _write_export(
            folder, task_model, spec, method, task_names, {**report, "task": name}, processing_class, task_card
        )
        head = model.task_head(name)
        tasks[name] = {
            "folder": f"{TASKS_FOLDER}/{name}",
            "task_type": head.task_type,
            "num_labels": head.num_labels,
            "saved_sparsity": task_report["saved_sparsity"],
            "parameters": task_report["parameters"],
            "bytes_after": task_report["bytes_after"],
        }
    return tasks


def _check_method_follows(method: Any, model: nn.Module) -> None:
    """Refuse a method that is not a method, never attached, or attached to another model: the
    export would otherwise hold an unpruned model and report it as pruned."""
    if not isinstance(method, PruningMethod):
        raise InvalidConfigError(
            f"save_pruned needs the pruning method that pruned the model, got {method!r}; pass trainer.pruning_method "
            f"(PruningTrainer) or callback.method (PruningCallback)."
        )
    if not method.attached:
        raise MethodOrderError(
            f"The {method.name} method was never attached to a model, so nothing was pruned; train with it "
            f"(PruningTrainer / PruningCallback) or call method.attach(model) first."
        )
    if not method.attached_to(model):
        raise MethodOrderError(
            f"The {method.name} method is attached to another model object than the {type(model).__name__} given "
            f"to save_pruned; pass the model it pruned (trainer.model)."
        )


def _tokenizer_of(model: nn.Module) -> Any:
    """The tokenizer saved beside the model's pretrained weights, when they came from a local
    folder that holds one (so an export is usable without the original path); else ``None``."""
    source = getattr(getattr(model, "config", None), "_name_or_path", "")
    if not source or not os.path.isdir(source):
        logger.warning(
            "No tokenizer saved with the export: pass processing_class=<tokenizer> (PruningTrainer passes its "
            "own) to make the export self-contained."
        )
        return None
    try:
        return transformers.AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError, KeyError):
        logger.warning("No tokenizer saved with the export: %s holds none; pass processing_class=.", source)
        return None


def _pruned_weight_names(method: PruningMethod, model: nn.Module) -> list[str]:
    """Dense-equivalent weight keys of the pruned matrices: the targets and any factored layer.

    A target inside a factored layer (``x.down``, ``x.up``: a factored export fine-tuned with
    its structure frozen) counts as the factored layer's dense weight ``x.weight``.
    """
    factored = list(factored_modules(model))
    names: list[str] = []
    for target in method.targets:
        owner = next((name for name in factored if target.startswith(name + ".")), None)
        key = f"{owner or target}.weight"
        if key not in names:
            names.append(key)
    names += [f"{name}.weight" for name in factored if f"{name}.weight" not in names]
    return names


def load_pruned(path: str | os.PathLike[str], *, model_class: type | None = None, **kwargs: Any) -> nn.Module:
    """Load an export of any format in one call, as the model class it was saved from.

    ``path`` is an export folder or a Hub repo id. The class is the one recorded in the export
    (imported from its module, so models outside ``transformers`` load too); ``model_class``
    overrides it. Dense exports (and plain ``save_pretrained`` folders) go through
    ``from_pretrained`` and take its keyword arguments; compact and factored exports are built
    from ``config.json`` and loaded strictly (no missing or unexpected key), taking ``dtype`` /
    ``attn_implementation``. ``revision``, ``token``, ``cache_dir``, ``subfolder``,
    ``force_download`` and ``local_files_only`` apply to Hub repos. The model comes back in eval mode.

    Raises:
        MissingExportFileError: no folder at ``path``, or a file the format needs is missing.
        ExportFormatError: a corrupted or mismatched weights file, an unknown format, or a model
            class that cannot be imported here.

    Example:
        >>> # model = load_pruned("outputs/demo")   # a BertForSequenceClassification
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise MissingExportFileError(f"load_pruned(path={path!r}): give an export folder or a Hub repo id.")
    hub = {key: kwargs.pop(key) for key in HUB_KWARGS if key in kwargs}
    folder = locate_export(path, hub)
    manifest = read_manifest(folder) if folder is not None else None
    if folder is None or manifest is None:
        if folder is not None:
            _check_plain_folder(folder)
        return _load_plain(path if folder is None else folder, model_class, hub, **kwargs)
    if manifest.get("base_model"):
        # An export that holds no weights (masks) loads its base model with the caller's token,
        # cache and download options too.
        kwargs = {**base_model_hub_kwargs(hub), **kwargs}
    return load_export(folder, manifest, model_class=model_class, **kwargs)


def _check_plain_folder(folder: str) -> None:
    """Refuse a folder without a manifest that holds hf_prune-only weights or no model at all."""
    own = sorted(
        name for name in weights_file_names() - {"model.safetensors"} if os.path.isfile(os.path.join(folder, name))
    )
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
    parametrized = _parametrized_keys(folder)
    if parametrized:
        raise ExportFormatError(
            f"{folder} is a Trainer checkpoint taken during pruning, not an export: its weights are stored "
            f"re-parametrized for exact resume (e.g. {parametrized[0]!r}), so no model class can load them. "
            f"Resume training from it (trainer.train(resume_from_checkpoint=...)), then export with "
            f"trainer.save_pruned(folder) (or hf_prune.save_pruned)."
        )


def _parametrized_keys(folder: str) -> list[str]:
    """Weight keys of a torch parametrization (``...parametrizations.weight.original``) in the
    folder's safetensors files: what movement and rank checkpoints hold."""
    from safetensors import SafetensorError, safe_open

    keys: list[str] = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors") and not name.startswith("hf_prune_state"):
            try:
                with safe_open(os.path.join(folder, name), framework="pt") as handle:
                    keys += [key for key in handle.keys() if ".parametrizations." in key]
            except SafetensorError:
                continue  # from_pretrained reports an unreadable file itself
    return keys


def _load_plain(
    path: str | os.PathLike[str], model_class: type | None, hub: Mapping[str, Any], **kwargs: Any
) -> nn.Module:
    """``from_pretrained`` of a folder or Hub repo without a manifest, with the class its config names."""
    loader: Any = model_class
    if loader is None:
        config = transformers.AutoConfig.from_pretrained(path, **hub)
        architectures = getattr(config, "architectures", None) or []
        loader = getattr(transformers, architectures[0], None) if architectures else None
        if loader is None:
            raise ValueError(
                f"{path}/config.json names no architecture transformers provides ({architectures!r}); pass "
                f"model_class=<the class> to load_pruned, or load it with the AutoModel class you need."
            )
    return loader.from_pretrained(path, **hub, **kwargs).eval()


def measure_export(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Sparsity, parameters and bytes of a local export, read again from its weights file.

    Example:
        >>> # measure_export("outputs/demo")["saved_sparsity"]   # 0.8 for the demo
    """
    folder = os.fspath(path)
    manifest = read_manifest(folder) or {"format": "dense"}
    return get_format(manifest["format"]).measure(folder, manifest, read_report(folder)["pruned_weights"])


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``pruning_report.json`` of an export.

    Example:
        >>> # read_report("outputs/demo")["saved_sparsity"]
    """
    file = os.path.join(path, REPORT_FILE_NAME)
    if not os.path.isfile(file):
        raise MissingExportFileError(
            f"{path} holds no {REPORT_FILE_NAME}, so it is not an hf_prune export (or it is incomplete); point at "
            f"the folder save_pruned wrote."
        )
    try:
        with open(file, encoding="utf-8") as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ExportFormatError(f"{file} is not valid JSON ({err}); export the model again.") from None
