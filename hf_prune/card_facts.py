"""What a model card says about an export: its files read back, and the card's data and slots.

:func:`read_export` reads an export folder's own JSON files (``pruning_report.json``,
``hf_prune_config.json``, ``hf_prune_export.json``, ``config.json``) into an :class:`Export`.
:class:`Facts` joins it with the user's :class:`~hf_prune.card_info.CardInfo` and turns both into
what :func:`hf_prune.cards.write_card` renders: the Hub metadata (:meth:`Facts.card_data`, a
``ModelCardData``) and the template's variables (:meth:`Facts.context`: the summary, settings,
sparsity, size, per-layer, rank, evaluation, mixture, loading and version tables), every slot
with a visible default (``unknown``, ``not recorded``, ...). The base model's license and
language come from its card when that is on this machine (nothing is downloaded), else from
:data:`KNOWN_LICENSES`. Why the metadata says what it says is in :mod:`hf_prune.cards`.

Nothing here writes a file; the templates, the plot and the writing are :mod:`hf_prune.cards`.

Example:
    >>> import json, os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> report = {"method": "magnitude", "format": "dense", "saved_sparsity": 0.5,
    ...           "saved_sparsity_per_matrix": {"encoder.layer.0.output.dense.weight": 0.4,
    ...                                         "encoder.layer.1.output.dense.weight": 0.6}}
    >>> with open(os.path.join(folder, "pruning_report.json"), "w", encoding="utf-8") as handle:
    ...     json.dump(report, handle)
    >>> facts = Facts(read_export(folder), CardInfo(repo_id="me/tiny-magnitude"))
    >>> facts.kind, facts.model_name, facts.pipeline_tag(), facts.card_data().license
    ('single_task', 'tiny-magnitude', 'feature-extraction', 'other')
    >>> facts.context()["layer_rows"]
    [['0', '40.0%', '40.0%'], ['1', '60.0%', '60.0%']]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from .card_info import CardInfo, check_mixture
from .card_multitask import (
    TASK_TABLE_HEADER,
    auto_class,
    is_multitask_model,
    load_note,
    multitask_load_sections,
    multitask_part,
    part_text,
    task_exports,
    task_load_sections,
    task_rows,
    tasks_note,
)
from .card_plot import LayerGrid, group_by_layer
from .card_tables import (
    NOT_RECORDED,
    UNKNOWN,
    _bytes,
    _capitalised,
    _cells,
    _change,
    _int,
    _join,
    _layer_mean,
    _matrix_sizes,
    _model_sparsity,
    _num,
    _pct,
    _pruned_count,
    _rank_cell,
    _rank_value,
    _ranks,
    _read_json,
    _unique,
    _value,
)
from .config import CONFIG_FILE_NAME
from .formats import MANIFEST_FILE_NAME, MissingExportFileError, read_manifest
from .formats.common import REPORT_FILE_NAME
from .pretrained import PACKAGED_MODELS, resolve_model_path

if TYPE_CHECKING:
    from huggingface_hub import ModelCardData

logger = logging.getLogger(__name__)

__all__ = [
    "KNOWN_LICENSES",
    "NOT_RECORDED",
    "README_FILE_NAME",
    "UNKNOWN",
    "Export",
    "Facts",
    "card_kind",
    "read_export",
]

# The model card's file: the one hf_prune.cards writes into an export, and the base model's, read here.
README_FILE_NAME = "README.md"
# Licenses of base models whose card may not be on this machine (the card, when found, wins).
KNOWN_LICENSES = {"sentence-transformers/all-MiniLM-L6-v2": "apache-2.0"}
# The head a class name ends with -> the Hub's pipeline tag. A bare encoder (``BertModel``) or an
# unknown head is a feature extractor.
_PIPELINE_OF_HEAD = {
    "ForSequenceClassification": "text-classification",
    "ForTokenClassification": "token-classification",
    "ForQuestionAnswering": "question-answering",
    "ForMaskedLM": "fill-mask",
    "ForPreTraining": "fill-mask",
}
# Written to stand inside a sentence; tables capitalise the first letter.
_METHOD_TITLES = {
    "rpp": "reweighted proximal pruning (RPP)",
    "magnitude": "gradual magnitude pruning",
    "movement": "movement pruning",
    "rank": "rank pruning: factorised low-rank with hard-concrete gates",
    "frozen": "fine-tuning with a frozen sparsity pattern",
}
_FORMAT_LIMITATIONS = {
    "dense": "Pruned weights are stored as exact zeros in dense tensors: the download and the loaded model are "
    "as large as the base model's, and dense kernels run no faster. The compact export is smaller to download.",
    "compact": "Smaller to download; once loaded, the weights are dense tensors holding zeros, so memory and speed "
    "are the dense model's.",
    "factored": "Each pruned matrix is two small Linear layers (or one, where that is smaller): smaller on disk and "
    "in memory, and faster where the kept rank r is below in * out / (in + out).",
    "masks": "No weights: the model is the base model with the pattern applied. A task head is initialised fresh, "
    "so it is useful only after fine-tuning (the pattern stays frozen with FrozenMaskConfig).",
}


# --- reading the export ------------------------------------------------------------------------


@dataclass
class Export:
    """An export folder's own JSON files, as :func:`read_export` found them (``{}`` for one that is absent).

    Attributes:
        folder: The export folder.
        report: ``pruning_report.json``: method, sparsity per matrix, sizes, ranks, ...
        manifest: ``hf_prune_export.json``: format, files, base model, versions, ...
        settings: ``hf_prune_config.json``: the pruning method's settings.
        model_config: ``config.json``: the model's transformers config.

    Example:
        >>> Export("out", report={"format": "compact"}, manifest={}, settings={}, model_config={}).format
        'compact'
    """

    folder: str
    report: dict[str, Any]
    manifest: dict[str, Any]
    settings: dict[str, Any]
    model_config: dict[str, Any]

    @property
    def format(self) -> str:
        """The export format (the manifest's, else the report's), or ``unknown``."""
        return str(self.manifest.get("format") or self.report.get("format") or UNKNOWN)


def read_export(folder: str) -> Export:
    """The export's JSON files; the report is required, the others are read when present.

    Raises:
        MissingExportFileError: ``folder`` is not a folder, or not an hf_prune export (no report).
        ExportFormatError: one of its JSON files is damaged.

    Example:
        >>> import tempfile
        >>> try:
        ...     read_export(tempfile.mkdtemp())  # an empty folder
        ... except MissingExportFileError as err:
        ...     "is not an hf_prune export" in str(err)
        True
    """
    if not os.path.isdir(folder):
        raise MissingExportFileError(f"{folder} is not a folder; give the folder save_pruned or hf-prune train wrote.")
    manifest = read_manifest(folder)
    if not os.path.isfile(os.path.join(folder, REPORT_FILE_NAME)):
        missing = REPORT_FILE_NAME if manifest is not None else f"{REPORT_FILE_NAME} nor {MANIFEST_FILE_NAME}"
        raise MissingExportFileError(
            f"{folder} is not an hf_prune export (it has no {missing}), so there is nothing to describe; write a "
            f"card for the folder save_pruned or hf-prune train wrote."
        )
    return Export(
        folder=folder,
        report=_read_json(folder, REPORT_FILE_NAME) or {},
        manifest=manifest or {},
        settings=_read_json(folder, CONFIG_FILE_NAME) or {},
        model_config=_read_json(folder, "config.json") or {},
    )


def _export_mixture(export: Export) -> dict[str, float] | None:
    """The task mixture a multitask export records (``task_mixture`` in its report or manifest)."""
    mixture = export.report.get("task_mixture", export.manifest.get("task_mixture"))
    return check_mixture(mixture, f"{export.folder}: task_mixture") if mixture is not None else None


def card_kind(export: Export, info: CardInfo) -> str:
    """The packaged template that fits the export: ``masks``, ``multitask``, ``rank`` or ``single_task``.

    ``multitask``: a task mixture is known (``CardInfo.task_mixture``, or the export's), or the
    report lists per-task exports (the top level of a ``MultitaskModel`` export). A task's own
    export inside one (its report names a ``task``) is a ``single_task`` (or ``rank``) card.

    Example:
        >>> export = Export("out", report={"format": "compact"}, manifest={}, settings={}, model_config={})
        >>> card_kind(export, CardInfo()), card_kind(export, CardInfo(task_mixture={"sst2": 1}))
        ('single_task', 'multitask')
    """
    if export.format == "masks":
        return "masks"
    if info.task_mixture or _export_mixture(export) or task_exports(export):
        return "multitask"
    if _ranks(export.report):
        return "rank"
    return "single_task"


# --- what the card says ------------------------------------------------------------------------


class Facts:
    """Everything the card says, from the export and ``CardInfo``, with visible defaults.

    :meth:`card_data` is the card's metadata, :meth:`context` the template's variables and
    :meth:`provided` the fields a template may require that are known. See the module docstring
    for an example.
    """

    def __init__(self, export: Export, info: CardInfo) -> None:
        self.export, self.info = export, info
        report, manifest = export.report, export.manifest
        self.method = str(report.get("method") or export.settings.get("method") or UNKNOWN)
        self.kind = card_kind(export, info)
        self.mixture = info.task_mixture or _export_mixture(export)
        self.ranks = _ranks(report)
        self.multitask_model = is_multitask_model(export)
        self.tasks = task_exports(export)  # the per-task exports of a multitask export
        self.part = multitask_part(export)  # where a task's export sits in its multitask export
        base = info.base_model or manifest.get("base_model") or report.get("base_model")
        base = base or export.model_config.get("_name_or_path") or None
        self.base_ref: str | None = _packaged_hub_id(str(base)) if base else None
        self.base_hub_id = self.base_ref if self.base_ref and _is_hub_id(self.base_ref) else None
        self.revision = info.base_model_revision or manifest.get("base_model_revision") or None
        inherited = _base_card_data(self.base_hub_id, self.revision)
        self.license: str | None = info.license or inherited.license
        self.license_source: str | None = "given" if info.license else inherited.license_source
        self.language = info.language or inherited.language
        self.datasets = info.datasets or _unique(r.dataset_type for r in info.eval_results)
        self.architecture = str(
            (export.model_config.get("architectures") or [None])[0] or manifest.get("model_class") or ""
        )
        self.auto_map = export.model_config.get("auto_map") or {}
        self.repo_id = info.repo_id
        self.model_name = info.model_name or self._default_name()
        if self.part and not info.model_name:
            self.model_name = f"{self.model_name} (task {self.part.task})"

    def _default_name(self) -> str:
        if self.part and not self.repo_id and not self.base_hub_id:
            # a task's folder is named after the task: the multitask export's folder names the model
            root = os.path.dirname(os.path.dirname(os.path.abspath(self.export.folder)))
            return os.path.basename(root) or f"hf-prune-{self.method}"
        if self.repo_id:
            return self.repo_id.rsplit("/", 1)[-1]
        if self.base_hub_id:
            return f"{self.base_hub_id.rsplit('/', 1)[-1]}-{self.method}-{self.export.format}"
        return os.path.basename(os.path.abspath(self.export.folder)) or f"hf-prune-{self.method}"

    def _repo(self) -> str:
        """The repo the loading code names: ``CardInfo.repo_id``, else a placeholder. A task's own
        export is a folder of its multitask export's repo, named without the task."""
        if self.repo_id:
            return self.repo_id
        name = self.model_name
        if self.part and name.endswith(f" (task {self.part.task})"):
            name = name[: -len(f" (task {self.part.task})")]
        return f"<your-username>/{name}"

    def provided(self) -> set[str]:
        """The fields a template may require that are actually known."""
        known = {
            "method": self.method != UNKNOWN,
            "tasks": bool(self.mixture or self.tasks),
            "base_model": self.base_ref is not None,
            "base_model_revision": self.revision is not None,
            "task_mixture": bool(self.mixture),
            "ranks": bool(self.ranks),
            "eval_results": bool(self.info.eval_results),
            "repo_id": self.repo_id is not None,
            "license": self.license is not None,
            "language": bool(self.language),
            "datasets": bool(self.datasets),
        }
        return {name for name, present in known.items() if present}

    # --- metadata

    def pipeline_tag(self) -> str | None:
        """The given pipeline tag, else one from the architecture's head (``feature-extraction`` without
        one); none for the shared model of a multitask export."""
        if self.info.pipeline_tag:
            return self.info.pipeline_tag
        if self.multitask_model and self.export.format != "masks":
            # No pipeline loads a MultitaskModel: text-classification would make the Hub offer a widget
            # and a pipeline(...) snippet that cannot run (one repo, several label sets, task_ids per
            # row), and feature-extraction an AutoModel snippet that loads a bare encoder with fresh
            # weights. So none: each task's stock model (tasks/<name>/) carries its own tag.
            return None
        if self.kind in ("masks", "multitask"):
            # masks: the head is initialised fresh on load; multitask: the artefact is the shared encoder.
            return "feature-extraction"
        for head, tag in _PIPELINE_OF_HEAD.items():
            if self.architecture.endswith(head):
                return tag
        return "feature-extraction"

    def library_name(self) -> str:
        """``hf-prune`` for masks and for a multitask export's shared model (only hf_prune loads
        them), else ``transformers``."""
        return "hf-prune" if self.export.format == "masks" or self.multitask_model else "transformers"

    def tags(self) -> list[str]:
        """The Hub tags: hf_prune's, the method's, the card kind's, then ``CardInfo.tags``."""
        tags = ["hf-prune", "pruned", "pruning", "sparsity", self.method]
        tags += {"rank": ["low-rank"], "multitask": ["multitask"], "masks": ["sparsity-pattern"]}.get(self.kind, [])
        if self.auto_map:
            tags.append("custom_code")  # compact/factored load through hf_prune_loader.py
        return _unique([*tags, *self.info.tags])

    def card_data(self) -> ModelCardData:
        """The card's metadata block (base model, license, ``model-index`` results, tags, ...)."""
        from huggingface_hub import EvalResult, ModelCardData

        results = [
            EvalResult(
                task_type=r.task_type,
                task_name=r.task,
                dataset_type=str(r.dataset_type),
                dataset_name=r.dataset_name or str(r.dataset_type),
                dataset_config=r.dataset_config,
                dataset_split=r.dataset_split,
                metric_type=str(r.metric_type),
                metric_name=r.metric_name or f"{r.dataset_split} {r.metric_type}",
                metric_value=r.value,
            )
            for r in self.info.eval_results
        ]
        extra: dict[str, Any] = {}
        if self.base_hub_id and self.export.format != "masks":
            extra["base_model_relation"] = "finetune"  # why: see the docstring of hf_prune.cards
        return ModelCardData(
            base_model=self.base_hub_id,
            datasets=self.datasets or None,
            eval_results=results or None,
            language=self.language or None,
            library_name=self.library_name(),
            license=self.license or "other",  # "other" is the Hub's value for a license it cannot name
            metrics=_unique(str(r.metric_type) for r in self.info.eval_results) or None,
            # ModelCardData writes model_name only inside model-index; alone it would be a stray key.
            model_name=self.model_name if results else None,
            pipeline_tag=self.pipeline_tag(),
            tags=self.tags(),
            **extra,
        )

    # --- body

    def context(self) -> dict[str, Any]:
        """The variables the templates (and the macros of ``_sections.md``) read, each with a visible default."""
        report = self.export.report
        return {
            "model_name": self.model_name,
            "headline": self._headline(),
            "summary_rows": self._summary_rows(),
            "base_model_text": self._base_text(),
            "base_model_revision_text": f"`{self.revision}`" if self.revision else "not pinned (its default branch)",
            "method": self.method,
            "method_title": _METHOD_TITLES.get(self.method, self.method),
            "export_format": self.export.format,
            "format_description": _format_description(self.export.format),
            "settings_rows": self._settings_rows(),
            "sparsity_rows": self._sparsity_rows(),
            "size_rows": self._size_rows(),
            **self._layer_table(),
            "plot_title": "Kept rank per layer" if self.ranks else "Sparsity per layer",
            "eval_rows": self._eval_rows(),
            "eval_note": self._eval_note(),
            "mixture_rows": self._mixture_rows(),
            "mixture_sampling": self.info.mixture_sampling
            or str(report.get("mixture_sampling") or "sampling scheme not recorded"),
            **self._rank_tables(),
            "task_header": TASK_TABLE_HEADER if self.tasks else [],
            "task_rows": task_rows(self.tasks),
            "tasks_note": tasks_note(self.tasks),
            "multitask_part": part_text(self.part),
            "load_sections": self._load_sections(),
            "load_note": self._load_note(),
            "limitations": self._limitations(),
            "notes": self.info.notes or "No further notes.",
            "versions_rows": self._versions_rows(),
            "hf_prune_version": _hf_prune_version(),
        }

    def _base_text(self) -> str:
        if self.base_hub_id:
            return f"[{self.base_hub_id}](https://huggingface.co/{self.base_hub_id})"
        if self.base_ref:
            return f"`{self.base_ref}` (a local folder, not a Hub model)"
        return "unknown (the export does not record it; pass CardInfo(base_model=...))"

    def _sparsity_text(self) -> str:
        sparsity = _pct(self.export.report.get("saved_sparsity"))
        count = _pruned_count(self.export.report)
        if self.export.report.get("sparsity_kind") == "parameters_removed":
            return f"removed {sparsity} of the parameters of its {count} pruned matrices"
        return f"set {sparsity} of the weights of its {count} pruned matrices to zero"

    def _headline(self) -> str:
        method = _METHOD_TITLES.get(self.method, self.method)
        base = self._base_text()
        if self.kind == "masks":
            return (
                f"A sparsity pattern for {base}, found with {method}: it {self._sparsity_text()}. It holds no "
                f"weights: loading applies it to the base model."
            )
        names = list(self.mixture or {}) or [task.name for task in self.tasks]
        tasks = f" on the tasks {', '.join(f'`{t}`' for t in names)}" if names else ""
        if self.part:
            tasks = f" as one task (`{self.part.task}`) of a multitask export"
        what = f"{base} pruned" if self.base_ref else "A model pruned"
        unknown_base = "" if self.base_ref else f" Its base model is {base[0].lower()}{base[1:]}."
        if self.multitask_model:
            stock = next((f"`{t.architecture}`" for t in self.tasks if t.architecture), "stock model")
            exported = (
                f"One shared encoder with a head per task, exported in the `{self.export.format}` format; each "
                f"task's model is also a {stock} of its own, in `tasks/<task>/`."
                if self.tasks
                else f"One shared encoder with a head per task, exported in the `{self.export.format}` format."
            )
        else:
            exported = f"Exported in the `{self.export.format}` format ({self.pipeline_tag()})."
        return f"{what} with {method}{tasks}: pruning {self._sparsity_text()}. {exported}{unknown_base}"

    def _summary_rows(self) -> list[list[str]]:
        report = self.export.report
        license_text = {
            "given": f"`{self.license}`",
            "base card": f"`{self.license}` (the base model's, from its model card)",
            "known": f"`{self.license}` (the base model's)",
        }.get(
            self.license_source or "", "unknown: the metadata says `other`; check the base model's license before use"
        )
        rows = [
            ["Base model", self._base_text()],
            ["Base model revision", f"`{self.revision}`" if self.revision else "not pinned"],
            ["Method", f"{_capitalised(_METHOD_TITLES.get(self.method, self.method))} (`{self.method}`)"],
            ["Export format", f"`{self.export.format}`: {_format_description(self.export.format)}"],
            ["Sparsity of the pruned matrices", _pct(report.get("saved_sparsity"))],
            ["Sparsity of the whole model", _model_sparsity(report, self.export.format)],
            ["Parameters", f"{_int(report.get('parameters_before'))} → {_int(report.get('parameters_after'))}"],
            [
                "Size (dense → this export)",
                f"{_bytes(report.get('bytes_before'))} → {_bytes(report.get('bytes_after'))}",
            ],
            ["Architecture", self._architecture_text()],
            ["Pipeline", self.pipeline_tag() or "none: one encoder with a head per task (see Per-task models)"],
            ["License", license_text],
            ["Language", _join(self.language) if self.language else NOT_RECORDED],
            ["Training data", _join(self.datasets) if self.datasets else NOT_RECORDED],
        ]
        names = list(self.mixture or {}) or [task.name for task in self.tasks]
        if names:
            rows.append(["Tasks", ", ".join(f"`{task}`" for task in names)])
        if self.part:
            rows.append(
                ["Multitask export", f"task `{self.part.task}` of [the multitask export]({self.part.up}README.md)"]
            )
        return _cells(rows)

    def _architecture_text(self) -> str:
        if not self.architecture:
            return UNKNOWN
        if self.multitask_model:
            return f"`{self.architecture}` (hf_prune.multitask: one encoder, a head per task)"
        return f"`{self.architecture}`"

    def _settings_rows(self) -> list[list[str]]:
        hidden = {"hf_prune_config_version", "method"}
        rows = [[f"`{key}`", _value(value)] for key, value in self.export.settings.items() if key not in hidden]
        return _cells(rows or [["settings", f"{NOT_RECORDED} (no {CONFIG_FILE_NAME})"]])

    def _sparsity_rows(self) -> list[list[str]]:
        report = self.export.report
        kind = report.get("sparsity_kind")
        meaning = {
            "zeros": "share of their weights that are exactly zero",
            "parameters_removed": "share of their dense parameters the factors do not store",
        }.get(str(kind), "meaning not recorded")
        rows = [
            ["target sparsity", _pct(report.get("target_sparsity"), default="not set")],
            ["sparsity of the pruned matrices", f"{_pct(report.get('saved_sparsity'))} ({meaning})"],
            ["sparsity of the whole model", _model_sparsity(report, self.export.format)],
            ["pruned matrices", str(_pruned_count(report))],
        ]
        groups = report.get("group_sparsity")
        if isinstance(groups, Mapping):
            rows += [[f"sparsity of the {group} matrices", _pct(value)] for group, value in groups.items()]
        return _cells(rows)

    def _size_rows(self) -> list[list[str]]:
        report = self.export.report
        stored = "parameters stored" if self.export.format != "masks" else "parameters stored (a pattern stores none)"
        rows: list[tuple[str, Any, Any, Callable[[Any], str]]] = [
            (stored, report.get("parameters_before"), report.get("parameters_after"), _int),
            ("weights (bytes: dense tensors → file)", report.get("bytes_before"), report.get("bytes_after"), _bytes),
            ("pruned matrices (bytes)", report.get("pruned_dense_bytes"), report.get("pruned_bytes"), _bytes),
        ]
        return _cells(
            [[label, show(before), show(after), _change(before, after)] for label, before, after, show in rows]
        )

    def _layer_table(self) -> dict[str, Any]:
        report = self.export.report
        per_matrix = report.get("saved_sparsity_per_matrix") or report.get("sparsity_per_matrix") or {}
        word = "parameters removed" if report.get("sparsity_kind") == "parameters_removed" else "sparsity"
        empty = {"layer_header": [], "layer_rows": [], "other_rows": [], "other_value_header": word}
        if not isinstance(per_matrix, Mapping) or not per_matrix:
            return {**empty, "layer_note": f"No per-matrix sparsity in {REPORT_FILE_NAME}: {NOT_RECORDED}."}
        grid = group_by_layer({str(k): float(v) for k, v in per_matrix.items() if isinstance(v, (int, float))})
        sizes = _matrix_sizes(self.export, list(per_matrix))
        weighted = all(name in sizes for name in per_matrix)
        rows = []
        for layer in grid.layers:
            names = [grid.names[(layer, kind)] for kind in grid.kinds if (layer, kind) in grid.cells]
            values = [grid.cells[(layer, kind)] for kind in grid.kinds if (layer, kind) in grid.cells]
            cells = [_pct(grid.cells.get((layer, kind)), default="not pruned") for kind in grid.kinds]
            rows.append([layer, *cells, _pct(_layer_mean(values, names, sizes if weighted else None))])
        note = f"Each cell is the {word} of one matrix; the last column " + (
            "weighs the layer's matrices by their number of weights."
            if weighted
            else "is the plain mean of the layer's matrices (their sizes are not recorded)."
        )
        return {
            "layer_header": ["layer", *[f"`{kind}`" for kind in grid.kinds], f"layer {word}"],
            "layer_rows": _cells(rows),
            "layer_note": note,
            "other_rows": _cells([[f"`{name}`", _pct(value)] for name, value in grid.others.items()]),
            "other_value_header": word,
        }

    def _rank_tables(self) -> dict[str, Any]:
        if not self.ranks:
            return {"rank_header": [], "rank_rows": [], "rank_summary_rows": []}
        grid: LayerGrid[dict[str, Any]] = group_by_layer(self.ranks)
        rows = []
        for layer in grid.layers:
            entries = [grid.cells[(layer, kind)] for kind in grid.kinds if (layer, kind) in grid.cells]
            cells = [_rank_cell(grid.cells.get((layer, kind))) for kind in grid.kinds]
            kept = sum(int(e.get("compiled_params") or 0) for e in entries)
            dense = sum(int(e.get("dense_params") or 0) for e in entries)
            rows.append([layer, *cells, _pct(kept / dense if dense else None)])
        rows += [[f"`{name}`", _rank_cell(entry), UNKNOWN] for name, entry in grid.others.items()]
        report = self.export.report
        labels = {
            "budget_of": "budget counted over",
            "target_params_fraction": "target: share of parameters kept",
            "achieved_fraction": "achieved share of parameters kept",
            "budget_params": "parameter budget",
            "gate_fraction": "share of kept components chosen by the gates alone",
            "projection_dropped_components": "components dropped to meet the budget",
            "fill_added_components": "components added back to fill the budget",
            "revived_components": "components revived",
        }
        summary = [[label, _rank_value(key, report[key])] for key, label in labels.items() if key in report]
        if "params_before" in report or "params_after" in report:
            summary.append(
                [
                    "pruned matrices' parameters",
                    f"{_int(report.get('params_before'))} → {_int(report.get('params_after'))}",
                ]
            )
        return {
            "rank_header": ["layer", *[f"`{kind}`" for kind in grid.kinds], "kept parameters"],
            "rank_rows": _cells(rows),
            "rank_summary_rows": _cells(summary or [["result", NOT_RECORDED]]),
        }

    def _eval_rows(self) -> list[list[str]]:
        rows = []
        for r in self.info.eval_results:
            stderr = r.standard_error()
            derived = r.stderr is None and stderr is not None
            rows.append(
                [
                    f"`{r.task}` ({r.task_type})",
                    (f"{r.dataset_name} (`{r.dataset_type}`" if r.dataset_name else f"`{r.dataset_type}`")
                    + (f", config `{r.dataset_config}`" if r.dataset_config else "")
                    + (")" if r.dataset_name else ""),
                    r.dataset_split,
                    r.metric_name or str(r.metric_type),
                    _num(r.value),
                    (f"± {stderr:.2g}" + (f" (binomial, n = {r.num_examples:,})" if derived else ""))
                    if stderr is not None
                    else "not reported",
                    _num(r.dense_value) if r.dense_value is not None else "not measured",
                ]
            )
        return _cells(rows)

    def _eval_note(self) -> str:
        if not self.info.eval_results:
            return (
                "Not evaluated: no evaluation results were given for this export (pass "
                "`CardInfo(eval_results=[...])` to `hf_prune.cards.write_card`)."
            )
        return (
            "The same results are in this card's `model-index` metadata. A binomial standard error is "
            "sqrt(p (1 - p) / n) over the n evaluated examples."
        )

    def _mixture_rows(self) -> list[list[str]]:
        if not self.mixture:
            return []
        total = sum(self.mixture.values())
        rows = []
        for task, weight in self.mixture.items():
            results = [f"{r.metric_type} {_num(r.value)}" for r in self.info.eval_results if r.task == task]
            rows.append([f"`{task}`", _num(weight), _pct(weight / total), "; ".join(results) or "not evaluated"])
        return _cells(rows)

    def _load_sections(self) -> list[tuple[str, str]]:
        repo = self._repo()
        fmt = self.export.format
        if self.multitask_model and fmt != "masks":
            spec = self.export.model_config.get("hf_prune_multitask") or {}
            order = [str(t.get("name")) for t in spec.get("tasks") or [] if isinstance(t, Mapping)]
            return multitask_load_sections(repo, self.tasks, fmt, order or [t.name for t in self.tasks])
        if self.part:
            return task_load_sections(repo, self.part, self.architecture, fmt)
        model_class = self.architecture or "the saved class"
        hf_prune_code = f'import hf_prune  # pip install hf-prune\n\nmodel = hf_prune.load_pruned("{repo}")'
        if fmt == "masks":
            base = self.base_ref or "<the base model>"
            return [
                (
                    f"With hf_prune: it downloads `{base}` and applies the pattern (a `{model_class}`):",
                    hf_prune_code + "  # the base model's weights, pruned by the pattern",
                ),
                (
                    "Fine-tune a model of the same architecture on your task with the pattern frozen:",
                    "from transformers import AutoModelForSequenceClassification\n"
                    "from hf_prune import FrozenMaskConfig, PruningTrainer\n\n"
                    f'model = AutoModelForSequenceClassification.from_pretrained("{base}", num_labels=2)\n'
                    f'pruning = FrozenMaskConfig(masks_from="{repo}")  # applies the pattern, then keeps it\n'
                    "trainer = PruningTrainer(model=model, args=args, train_dataset=train, pruning=pruning)",
                ),
            ]
        sections = []
        if fmt == "dense":
            auto = auto_class(self.architecture)
            sections.append(
                (
                    "With transformers (the pruned weights are exact zeros):",
                    f'from transformers import {auto}\n\nmodel = {auto}.from_pretrained("{repo}")',
                )
            )
        sections.append((f"With hf_prune (any format; returns a `{model_class}` in eval mode):", hf_prune_code))
        auto_keys = [key for key in self.auto_map if str(key).startswith("AutoModel")]
        if fmt != "dense" and auto_keys:
            auto = str(auto_keys[0])
            sections.append(
                (
                    "Without hf_prune (the repo's `hf_prune_loader.py` decodes the weights):",
                    f'from transformers import {auto}\n\nmodel = {auto}.from_pretrained("{repo}", trust_remote_code=True)',
                )
            )
        return sections

    def _load_note(self) -> str:
        if self.part or (self.multitask_model and self.tasks):
            return load_note(self.repo_id, self._repo(), self.export.format, part=self.part)
        if self.repo_id:
            return f"`{self.repo_id}` may also be the local export folder."
        return (
            f"`{self._repo()}` stands for the repo this model is published under (the card was "
            f"written without `CardInfo(repo_id=...)`); a local export folder works too."
        )

    def _limitations(self) -> list[str]:
        if self.ranks and self.export.format == "dense":
            # a dense export of a rank-pruned model multiplies the factors back out: no zeros at all
            first = (
                "The low-rank factors are multiplied back out into dense matrices: as large and as fast as the "
                "base model; the factored export is smaller and faster."
            )
        else:
            first = _FORMAT_LIMITATIONS.get(self.export.format, f"Export format `{self.export.format}`.")
        lines = [first]
        if self.multitask_model:
            lines.append(
                "The shared model is a `MultitaskModel`, which only hf_prune loads; transformers alone loads the "
                "per-task models."
            )
        lines.append(
            "Evaluated only on the tasks listed above; pruning can change behaviour on other inputs more than "
            "dense fine-tuning does."
            if self.info.eval_results
            else "Not evaluated here: measure it on your task before relying on it."
        )
        base = self.base_hub_id or self.base_ref or "the base model"
        lines.append(f"The biases and limitations of {base} carry over; see its model card.")
        return lines

    def _versions_rows(self) -> list[list[str]]:
        versions = self.export.manifest.get("versions")
        rows = (
            [[name, str(v) if v else NOT_RECORDED] for name, v in versions.items()]
            if isinstance(versions, Mapping)
            else []
        )
        if not rows and self.export.model_config.get("transformers_version"):
            rows = [["transformers", str(self.export.model_config["transformers_version"])]]
        return _cells(rows or [["versions", f"{NOT_RECORDED} (the manifest has no `versions`)"]])


# --- small helpers -------------------------------------------------------------------------------


def _is_hub_id(ref: str) -> bool:
    """Whether ``ref`` can be a Hub model id (and is not a folder on this machine)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if os.path.isabs(ref) or ref.startswith((".", "~")) or ref.count("/") > 1 or os.path.isdir(ref):
        return False
    try:
        validate_repo_id(ref)
    except HFValidationError:
        return False
    return True


def _packaged_hub_id(ref: str) -> str:
    """The Hub id of a packaged model's folder (the demo loads MiniLM from site-packages)."""
    for hub_id in PACKAGED_MODELS:
        folder = resolve_model_path(hub_id)
        if folder != hub_id and os.path.abspath(ref) == os.path.abspath(folder):
            return hub_id
    return ref


class _Inherited(NamedTuple):
    license: str | None = None
    license_source: str | None = None  # "base card" or "known"
    language: str | list[str] | None = None


def _base_card_data(hub_id: str | None, revision: str | None) -> _Inherited:
    """The base model's license and language, from its card where it is on this machine (the
    packaged copy or the Hub cache: nothing is downloaded), else from :data:`KNOWN_LICENSES`."""
    if hub_id is None:
        return _Inherited()
    from huggingface_hub import ModelCard, try_to_load_from_cache

    candidates = []
    folder = resolve_model_path(hub_id)
    if os.path.isdir(folder):
        candidates.append(os.path.join(folder, README_FILE_NAME))
    cached = try_to_load_from_cache(hub_id, README_FILE_NAME, revision=revision)
    if isinstance(cached, str):
        candidates.append(cached)
    language = None
    for path in candidates:
        if not os.path.isfile(path):
            continue
        try:
            data = ModelCard.load(path, ignore_metadata_errors=True).data
        except (OSError, ValueError) as err:  # a damaged card: fall back to what else is known
            logger.debug("Could not read the base model card %s: %s", path, err)
            continue
        found = data.get("language")
        language = found if isinstance(found, (str, list)) else language
        if isinstance(data.get("license"), str):
            return _Inherited(data.get("license"), "base card", language)
    if hub_id in KNOWN_LICENSES:
        return _Inherited(KNOWN_LICENSES[hub_id], "known", language)
    return _Inherited(language=language)


def _format_description(name: str) -> str:
    from .formats import get_format
    from .formats.registry import UnknownFormatError

    try:
        return get_format(name).description
    except UnknownFormatError:
        return "a format this hf_prune does not know"


def _hf_prune_version() -> str:
    from . import __version__

    return __version__
