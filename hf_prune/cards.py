"""Model cards for hf_prune exports: ``README.md`` with Hub metadata, tables and a per-layer plot.

:func:`write_card` reads an export folder's own files (``pruning_report.json``,
``hf_prune_config.json``, ``hf_prune_export.json``, ``config.json``), adds what only the user
knows (:class:`CardInfo`: base model, license, evaluation results, a task mixture, ...), and
writes ``README.md`` plus ``sparsity_per_layer.png`` into the folder. The card is rendered from
a Jinja template through ``huggingface_hub.ModelCard.from_template`` with ``ModelCardData``, so
the metadata block is exactly what huggingface_hub writes and reads back.

Four templates ship in the package (``hf_prune/model_cards/templates/``, linked from
``model_cards/`` at the repository root), chosen from the export unless ``template=`` names one:

* ``masks``: a masks-only export (the format is ``masks``): a sparsity pattern, no weights;
* ``multitask``: the top level of a ``MultitaskModel`` export (its report lists the per-task
  models under ``tasks/``), or a task mixture is known (``CardInfo.task_mixture``, or
  ``task_mixture`` in the report or manifest): one encoder pruned on several tasks, with a table
  of the per-task models, the mixture, per-task results, and the code that loads each task's model;
* ``rank``: the report has per-matrix ranks (rank pruning): kept rank per matrix;
* ``single_task``: everything else, including each task's own model of a multitask export
  (``tasks/<name>/``), whose card says which multitask export it belongs to and links back to it.

For a multitask export, :func:`write_card` on its top level also (re)writes the card of every
task's model, from ``info.for_task(name)``: only then are all the task folders there, so each
task's card can list its sibling tasks (``save_pruned`` writes the task folders first).

Metadata decisions (the templates repeat them where they apply):

* ``library_name``: ``transformers`` for exports with weights (dense loads with plain
  ``from_pretrained``; compact and factored carry ``hf_prune_loader.py`` and an ``auto_map``, so
  ``from_pretrained(..., trust_remote_code=True)`` loads them, and the ``custom_code`` tag makes
  the Hub's snippet say so); ``hf-prune`` for masks, which only hf_prune can apply, and for the
  shared model of a multitask export (a ``MultitaskModel``: ``AutoModel.from_pretrained`` would
  load a bare encoder with fresh weights, and the Hub's transformers snippet would do just that).
* ``pipeline_tag``: from the architecture's head; none for the shared model of a multitask export
  (no pipeline runs one encoder with several heads and per-row task ids; each task's model under
  ``tasks/`` carries its own, ``text-classification``).
* ``base_model_relation``: the Hub knows ``adapter``, ``merge``, ``quantized``, ``finetune``, and
  no ``pruned``. Exports with weights say ``finetune`` (their weights were trained on the task
  while pruning; ``quantized`` would list them among the base model's quantizations). Masks
  leave it out: nothing of the four describes a repo without weights, and ``adapter`` would make
  the Hub offer a PEFT snippet that cannot load it.
* Evaluation results are written as ``model-index`` (``huggingface_hub.EvalResult``): the form
  ``ModelCardData`` writes into README.md, that ``ModelCard.load`` reads back, and that the Hub
  still reads. huggingface_hub 1.4+ also has ``EvalResultEntry`` for ``.eval_results/*.yaml``,
  but it is marked work in progress, lives outside the README, and keys each score by a Hub
  *benchmark* dataset id, which hf_prune's offline tasks do not have.
* ``base_model`` is written only when it is a Hub id (a local folder would fail the Hub's check);
  ``license`` is the given one, else the base model's (read from its card when it is on this
  machine, or a table of known models), else ``other`` with a visible warning in the body.

Every slot of the body shows a visible default (``unknown``, ``not recorded``, ...) when a value
is not known: a card never shows an empty cell or ``None``.

This module holds the templates and the writing (:func:`read_template`, :func:`write_card`, the
template checks, the plot call, the manifest update). The inputs, :class:`CardInfo` and
:class:`TaskResult`, live in :mod:`hf_prune.card_info`; what the card says, read from the export,
in :mod:`hf_prune.card_facts`; the per-layer grid and plot in :mod:`hf_prune.card_plot`. All the
names above are importable from here.

Example:
    >>> import os, tempfile
    >>> from huggingface_hub import ModelCard
    >>> from transformers import BertConfig, BertForSequenceClassification
    >>> from hf_prune import MagnitudeConfig, create_method, save_pruned
    >>> model = BertForSequenceClassification(BertConfig(hidden_size=32, num_hidden_layers=2,
    ...     num_attention_heads=2, intermediate_size=64, vocab_size=100))
    >>> method = create_method(MagnitudeConfig(target_sparsity=0.5, begin_step=0, end_step=1))
    >>> method.attach(model); method.begin(2); method.step(1); method.step(2)
    >>> folder = os.path.join(tempfile.mkdtemp(), "export")
    >>> _ = save_pruned(model, folder, method, format="compact")
    >>> info = CardInfo(base_model="sentence-transformers/all-MiniLM-L6-v2", repo_id="me/minilm-magnitude-50",
    ...     eval_results=[TaskResult(task="movie_sentiment", dataset_type="vader_movie_reviews",
    ...                              metric_type="accuracy", value=0.79, num_examples=2015)])
    >>> card = ModelCard.load(write_card(folder, info))
    >>> card.data.base_model, card.data.license, card.data.pipeline_tag, card.data.eval_results[0].metric_value
    ('sentence-transformers/all-MiniLM-L6-v2', 'apache-2.0', 'text-classification', 0.79)
    >>> "![Sparsity per layer](sparsity_per_layer.png)" in card.text
    True
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence

# KNOWN_LICENSES, NOT_RECORDED, UNKNOWN and check_mixture lived here before card_info and card_facts
# were split out: the ``X as X`` imports keep them importable from hf_prune.cards.
from .card_facts import KNOWN_LICENSES as KNOWN_LICENSES
from .card_facts import NOT_RECORDED as NOT_RECORDED
from .card_facts import README_FILE_NAME, Export, Facts, card_kind, read_export
from .card_facts import UNKNOWN as UNKNOWN
from .card_info import CardInfo, MissingCardFieldError, TaskResult
from .card_info import check_mixture as check_mixture
from .card_plot import PLOT_FILE_NAME, plot_rank_per_layer, plot_sparsity_per_layer
from .errors import InvalidConfigError
from .formats import MANIFEST_FILE_NAME
from .formats.common import REPORT_FILE_NAME

logger = logging.getLogger(__name__)

__all__ = [
    "README_FILE_NAME",
    "TEMPLATE_NAMES",
    "CardInfo",
    "MissingCardFieldError",
    "TaskResult",
    "read_template",
    "write_card",
]

TEMPLATE_NAMES = ("single_task", "multitask", "rank", "masks")
_SECTIONS_TEMPLATE = "_sections"
_FIELD_HINTS = {
    "method": "pruning_report.json names no method; export the model again with save_pruned",
    "base_model": "pass CardInfo(base_model='owner/name') (a masks export records it when the model was loaded "
    "with from_pretrained)",
    "task_mixture": "pass CardInfo(task_mixture={'task': weight, ...}) with the tasks the encoder was pruned on",
    "tasks": "export a MultitaskModel with save_pruned (its report then lists the per-task models), or pass "
    "CardInfo(task_mixture={'task': weight, ...}) with the tasks the encoder was pruned on",
    "ranks": "pruning_report.json has no per-matrix ranks ('per_matrix'); use this template for rank-pruned "
    "exports only",
    "eval_results": "pass CardInfo(eval_results=[TaskResult(...), ...])",
    "repo_id": "pass CardInfo(repo_id='owner/name')",
}


def read_template(name: str) -> str:
    """The text of a packaged template (one of :data:`TEMPLATE_NAMES`), to copy and adapt.

    A template is Jinja rendered by ``ModelCard.from_template``; the macros of ``_sections.md``
    (``summary()``, ``pruning_section()``, ...) are available in it. Pass the adapted file's path
    as ``write_card(..., template=path)``.

    Example:
        >>> read_template("masks").count("{{ card_data }}")
        1
    """
    if name not in (*TEMPLATE_NAMES, _SECTIONS_TEMPLATE):
        raise InvalidConfigError(f"Unknown card template {name!r}; choose one of {list(TEMPLATE_NAMES)}.")
    return importlib.resources.files("hf_prune").joinpath(f"model_cards/templates/{name}.md").read_text("utf-8")


def write_card(
    folder: str | os.PathLike[str],
    info: CardInfo | None = None,
    *,
    template: str | os.PathLike[str] | None = None,
) -> str:
    """Write ``README.md`` (and the per-layer plot) into the export ``folder``; returns the README path.

    The card is rendered from ``template``: one of :data:`TEMPLATE_NAMES`, a path to your own
    Jinja template, or ``None`` to choose from the export (see the module docstring). The plot
    (``sparsity_per_layer.png``; kept rank per matrix for rank pruning) needs matplotlib: without
    it the card says the plot was not drawn. When the export's manifest lists its files, the
    card's files are added to it, so ``push_pruned`` uploads them and a later re-export into the
    folder replaces them (a card describes one export). For the top level of a multitask export, the
    card of every task's model (``tasks/<name>/README.md``) is rewritten too, from ``info.for_task(name)``.

    Raises:
        MissingExportFileError: ``folder`` is not an hf_prune export (no ``pruning_report.json``).
        ExportFormatError: one of its JSON files is damaged.
        MissingCardFieldError: the template needs a field that neither the export nor ``info``
            gives (``base_model`` for masks, ``task_mixture`` for multitask, ...), or uses a
            variable hf_prune does not provide; the error names it.
        InvalidConfigError: ``info`` is not a :class:`CardInfo`, or ``template`` is unknown.
    """
    from huggingface_hub import ModelCard

    if info is None:
        info = CardInfo()
    if not isinstance(info, CardInfo):
        raise InvalidConfigError(f"write_card(info={info!r}): pass a hf_prune.cards.CardInfo (or None).")
    export = read_export(os.fspath(folder))
    template_name, template_text = _load_template(template if template is not None else card_kind(export, info))
    facts = Facts(export, info)
    _check_required(template_name, template_text, facts)
    source = read_template(_SECTIONS_TEMPLATE) + template_text
    card_data = facts.card_data()
    context = facts.context()
    _check_variables(
        template_name,
        source,
        source.count("\n") - template_text.count("\n"),
        {"card_data", "plot_file", "plot_note", *context, *card_data.to_dict()},
    )
    plot_file, context["plot_note"] = _draw_plot(export, facts)
    context["plot_file"] = plot_file
    card = ModelCard.from_template(card_data, template_str=source, **context)
    path = os.path.join(export.folder, README_FILE_NAME)
    staging = path + ".tmp"
    card.save(staging)
    os.replace(staging, path)  # a reader never sees a half-written card
    _list_in_manifest(export, [README_FILE_NAME, *([plot_file] if plot_file else [])])
    logger.info("Wrote the %s model card %s", template_name, path)
    for task in facts.tasks:
        # Now that every task folder is there, each task's card can list (and link) its siblings.
        task_folder = os.path.join(export.folder, *task.folder.split("/"))
        if os.path.isfile(os.path.join(task_folder, REPORT_FILE_NAME)):
            write_card(task_folder, info.for_task(task.name))
    return path


def _load_template(template: str | os.PathLike[str]) -> tuple[str, str]:
    """``(name, text)`` of a packaged template name or a template file."""
    if isinstance(template, str) and template in TEMPLATE_NAMES:
        return template, read_template(template)
    path = os.fspath(template)
    if not os.path.isfile(path):
        raise InvalidConfigError(
            f"template={template!r} is neither one of {list(TEMPLATE_NAMES)} nor a template file; copy one with "
            f"hf_prune.cards.read_template(name) and pass its path."
        )
    with open(path, encoding="utf-8") as handle:
        return path, handle.read()


# --- checks, plot, manifest ----------------------------------------------------------------------

_REQUIRES = re.compile(r"requires:\s*([A-Za-z_][\w ,]*)")


def _check_required(template_name: str, text: str, facts: Facts) -> None:
    """Refuse a template whose declared ``requires:`` fields the export and CardInfo do not give."""
    match = _REQUIRES.search(text)
    required = [name.strip() for name in match.group(1).split(",") if name.strip()] if match else []
    provided = facts.provided()
    for name in required:
        if name not in provided:
            hint = _FIELD_HINTS.get(name, f"pass it in CardInfo or use another template ({list(TEMPLATE_NAMES)})")
            raise MissingCardFieldError(
                name,
                f"The {os.path.basename(template_name)} card needs `{name}`, which neither the export in "
                f"{facts.export.folder} nor CardInfo gives: {hint}.",
            )


def _check_variables(template_name: str, source: str, offset: int, available: set[str]) -> None:
    """Refuse a template that uses a variable hf_prune does not fill (Jinja would print nothing)."""
    import jinja2
    from jinja2 import meta

    try:
        used = meta.find_undeclared_variables(jinja2.Environment().parse(source))
    except jinja2.TemplateSyntaxError as err:
        # the shared macros come first in ``source``: report the line in the template's own file
        line = err.lineno - offset if err.lineno > offset else f"{err.lineno} of _sections.md"
        raise InvalidConfigError(
            f"The card template {template_name} is not valid Jinja: {err.message} (line {line})."
        ) from None
    missing = sorted(used - available)
    if missing:
        raise MissingCardFieldError(
            missing[0],
            f"The card template {template_name} uses `{{{{ {missing[0]} }}}}`, which hf_prune does not provide "
            f"(it provides: {', '.join(sorted(available))}); fix the template or add the value to CardInfo.notes.",
        )


def _draw_plot(export: Export, facts: Facts) -> tuple[str, str]:
    """``(file name, "")`` of the drawn plot, or ``("", why not)``."""
    report = export.report
    path = os.path.join(export.folder, PLOT_FILE_NAME)
    try:
        if facts.ranks:
            ranks = {name: (int(e["rank"]), int(e.get("full_rank") or e["rank"])) for name, e in facts.ranks.items()}
            plot_rank_per_layer(ranks, path)
            return PLOT_FILE_NAME, ""
        per_matrix = report.get("saved_sparsity_per_matrix") or report.get("sparsity_per_matrix")
        if not isinstance(per_matrix, Mapping) or not per_matrix:
            return "", f"No plot: {REPORT_FILE_NAME} has no per-matrix sparsity."
        overall = report.get("saved_sparsity")
        plot_sparsity_per_layer(
            {str(k): float(v) for k, v in per_matrix.items()},
            path,
            overall=float(overall) if isinstance(overall, (int, float)) else None,
            ylabel="parameters removed" if report.get("sparsity_kind") == "parameters_removed" else "sparsity",
        )
        return PLOT_FILE_NAME, ""
    except ImportError as err:
        logger.warning("The model card is written without its plot: %s", err)
        return "", "Plot not drawn: matplotlib was not installed when this card was written (`pip install matplotlib`)."


def _list_in_manifest(export: Export, names: Sequence[str]) -> None:
    """Add the card's files to the manifest's ``files``: push_pruned uploads exactly those."""
    files = export.manifest.get("files")
    if not isinstance(files, list) or all(name in files for name in names):
        return
    path = os.path.join(export.folder, MANIFEST_FILE_NAME)
    with open(path, encoding="utf-8") as handle:
        manifest = json.load(handle)  # re-read: only `files` changes, every other byte of meaning stays
    manifest["files"] = sorted({*manifest.get("files", []), *names})
    staging = path + ".tmp"
    with open(staging, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2)
    os.replace(staging, path)
