"""The multitask side of a model card: a multitask export's per-task models, and a task model's place in one.

``save_pruned`` of a :class:`~hf_prune.multitask.MultitaskModel` writes the shared model (one
encoder, a head per task) at the top of the export, and one complete stock export per task under
``tasks/<name>/``, whose encoder weights are identical, bit for bit. The top-level report lists
them (``tasks: {name: {folder, task_type, num_labels, saved_sparsity, parameters, bytes_after}}``)
and each task's report names its task (``task``). This module reads both sides for the cards:

* :func:`task_exports`: the per-task models of a multitask export (its table and loading code);
* :func:`multitask_part`: for one task's export, the multitask export it belongs to and its tasks;
* :func:`multitask_load_sections` and :func:`task_load_sections`: the code that loads them.

The loading code follows what the format loads with (``FormatSpec.loads_without_hf_prune``): a
dense task model loads with ``AutoModelForSequenceClassification.from_pretrained(repo,
subfolder="tasks/<name>")``; a compact or factored one needs its folder's ``hf_prune_loader.py``
(``trust_remote_code=True``), which transformers looks for at the root of a repo or folder, never
in ``subfolder=``, so the card downloads the task's folder and loads it by path. The shared model
is no transformers class: only ``hf_prune.load_pruned`` (or ``MultitaskModel.from_pretrained``)
loads it; ``AutoModel.from_pretrained`` would build a bare encoder with fresh weights.

Example:
    >>> part = MultitaskPart(task="topic", folder="tasks/topic", tasks=["sentiment", "topic"])
    >>> print(task_load_sections("me/mix", part, "BertForSequenceClassification", "dense")[0][1])
    from transformers import AutoModelForSequenceClassification
    <BLANKLINE>
    model = AutoModelForSequenceClassification.from_pretrained("me/mix", subfolder="tasks/topic")
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .card_tables import UNKNOWN, _bytes, _cells, _int, _pct, _read_json
from .formats.common import REPORT_FILE_NAME

if TYPE_CHECKING:
    from .card_facts import Export

__all__ = [
    "TASK_TABLE_HEADER",
    "MultitaskPart",
    "TaskExport",
    "auto_class",
    "is_multitask_model",
    "load_note",
    "loads_with",
    "multitask_load_sections",
    "multitask_part",
    "part_text",
    "task_exports",
    "task_load_sections",
    "task_rows",
    "tasks_note",
]

# Where a multitask model's task list lives in config.json (hf_prune.multitask.model.CONFIG_KEY;
# not imported: the multitask package imports the trainer, which imports the cards).
_CONFIG_KEY = "hf_prune_multitask"
_MULTITASK_CLASS = "MultitaskModel"
TASK_TABLE_HEADER = [
    "task",
    "folder",
    "type",
    "classes",
    "parameters",
    "weights file",
    "sparsity of the pruned matrices",
]


@dataclass(frozen=True)
class TaskExport:
    """One task's own export inside a multitask export, as its report and config record it.

    Example:
        >>> TaskExport("topic", "tasks/topic", "classification", ("a", "b"), 2).classes_text()
        '2: a, b'
    """

    name: str
    folder: str  # relative to the multitask export, with "/" (the report's ``folder``)
    task_type: str
    labels: tuple[str, ...]
    num_labels: int | None
    saved_sparsity: float | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    bytes_after: int | None = None
    architecture: str = ""

    def classes_text(self) -> str:
        if self.task_type == "regression":
            return "1 output (regression)"
        if self.labels:
            return f"{len(self.labels)}: {', '.join(self.labels)}"
        return _int(self.num_labels)


@dataclass(frozen=True)
class MultitaskPart:
    """Where a task's export sits in its multitask export: its task, its folder there
    (``tasks/<name>``) and every task of the export (``[]`` when not known yet).

    Example:
        >>> MultitaskPart("topic", "tasks/topic", ["sentiment", "topic"]).up
        '../../'
    """

    task: str
    folder: str
    tasks: list[str]

    @property
    def up(self) -> str:
        """The relative path from the task's folder back to the multitask export."""
        return "../" * len([part for part in self.folder.split("/") if part])


def is_multitask_model(export: Export) -> bool:
    """Whether the export's model is a :class:`~hf_prune.multitask.MultitaskModel` (the shared model)."""
    architectures = export.model_config.get("architectures") or []
    return (
        _CONFIG_KEY in export.model_config
        or _MULTITASK_CLASS in architectures
        or export.manifest.get("model_class") == _MULTITASK_CLASS
    )


def task_exports(export: Export) -> list[TaskExport]:
    """The per-task exports the report lists (``tasks``), in the model's task order, with their
    class names (the multitask config) and architecture (each task folder's ``config.json``)."""
    tasks = export.report.get("tasks")
    if not isinstance(tasks, Mapping):
        return []
    spec = export.model_config.get(_CONFIG_KEY)
    spec = spec if isinstance(spec, Mapping) else {}
    specs = {str(t.get("name")): t for t in spec.get("tasks") or [] if isinstance(t, Mapping)}
    head_class = str(spec.get("head_class") or "").rsplit(".", 1)[-1]
    found = []
    for name, entry in tasks.items():
        if not isinstance(entry, Mapping):
            continue
        folder = str(entry.get("folder") or f"tasks/{name}").replace(os.sep, "/")
        config = _read_json(os.path.join(export.folder, folder), "config.json") or {}
        task_spec = specs.get(str(name), {})
        labels = tuple(str(label) for label in task_spec.get("label_names") or [])
        num_labels, parameters = entry.get("num_labels"), entry.get("parameters")
        found.append(
            TaskExport(
                name=str(name),
                folder=folder,
                task_type=str(entry.get("task_type") or task_spec.get("task_type") or UNKNOWN),
                labels=labels,
                num_labels=int(num_labels) if isinstance(num_labels, int) else None,
                saved_sparsity=entry.get("saved_sparsity"),
                parameters=parameters if isinstance(parameters, Mapping) else {},
                bytes_after=entry.get("bytes_after"),
                architecture=str((config.get("architectures") or [None])[0] or head_class),
            )
        )
    order = list(specs)  # the model's task order: the task ids rows carry
    return sorted(found, key=lambda t: order.index(t.name) if t.name in order else len(order))


def multitask_part(export: Export) -> MultitaskPart | None:
    """For the export of one task of a multitask export (its report names a ``task``): where it
    sits and the export's tasks, read from the multitask export's report when it is there (while
    ``save_pruned`` writes the task folders, it is not yet: the tasks are then unknown)."""
    task = export.report.get("task")
    if not isinstance(task, str) or not task:
        return None
    here = os.path.abspath(export.folder)
    root = os.path.dirname(os.path.dirname(here))
    folder = os.path.relpath(here, root).replace(os.sep, "/")
    tasks: list[str] = []
    try:
        parent = _read_json(root, REPORT_FILE_NAME) or {}
    except ValueError:  # a damaged parent report: this card still describes its own export
        parent = {}
    listed = parent.get("tasks")
    if isinstance(listed, Mapping) and task in listed:
        tasks = [str(name) for name in listed]
        entry = listed[task]
        if isinstance(entry, Mapping) and entry.get("folder"):
            folder = str(entry["folder"]).replace(os.sep, "/")
    return MultitaskPart(task=task, folder=folder, tasks=tasks)


# --- what the cards say ------------------------------------------------------------------------


def task_rows(tasks: Sequence[TaskExport]) -> list[list[str]]:
    """The per-task models table of the multitask card (columns: :data:`TASK_TABLE_HEADER`)."""
    rows = []
    for task in tasks:
        total, nonzero = task.parameters.get("total"), task.parameters.get("nonzero")
        parameters = _int(total) + (f" ({_int(nonzero)} non-zero)" if nonzero is not None else "")
        rows.append(
            [
                f"`{task.name}`",
                f"[`{task.folder}/`]({task.folder}/README.md)",
                f"{task.task_type}" + (f" (`{task.architecture}`)" if task.architecture else ""),
                task.classes_text(),
                parameters,
                _bytes(task.bytes_after),
                _pct(task.saved_sparsity),
            ]
        )
    return _cells(rows)


def tasks_note(tasks: Sequence[TaskExport]) -> str:
    """What the per-task table means: identical encoders, the shared encoder counted once."""
    if not tasks:
        return (
            f"No per-task models: this export's {REPORT_FILE_NAME} lists no `tasks` (a `MultitaskModel` exported "
            f"with `save_pruned` in a format with weights has one folder per task)."
        )
    count = len(tasks)
    return (
        f"Each folder is a complete export of its own (with its own card) holding one task's stock model: the "
        f"shared encoder and that task's head. The encoder weights are identical, bit for bit, in all {count} "
        f"folders and in the shared model; only the heads differ. The numbers at the top of this card are the "
        f"shared model's, which counts the encoder once plus all {count} heads, so they are not the sum of the "
        f"rows above (the folders together store the encoder {count} times)."
    )


def part_text(part: MultitaskPart | None) -> str:
    """The per-task card's paragraph on the multitask export it belongs to (empty for other cards)."""
    if part is None:
        return ""
    shared = f"[the multitask export]({part.up}README.md)"
    others = [task for task in part.tasks if task != part.task]
    if part.tasks:
        every = ", ".join(f"`{task}`" for task in part.tasks)
        scope = f"one encoder pruned on {len(part.tasks)} tasks at once ({every}), with a head per task"
        siblings = ", ".join(f"[`{task}`]({_sibling_link(part, task)})" for task in others)
        same = f"those of the other tasks' models ({siblings})" if others else "the shared model's"
    else:
        scope = "one encoder pruned on several tasks at once, with a head per task"
        same = "those of the other tasks' models, in the folders beside this one"
    return (
        f"This is the `{part.task}` model of a multitask export: {scope}. It is the folder `{part.folder}/` of "
        f"{shared}, whose top level holds the shared model (the encoder once and every task's head, a "
        f"`MultitaskModel` that only hf_prune loads). Its encoder weights are identical, bit for bit, to "
        f"{same}; only the classification head is this task's own. The numbers in this card are this task's "
        f"model: the encoder and its head."
    )


def _sibling_link(part: MultitaskPart, task: str) -> str:
    """The link from this task's card to a sibling's (its folder beside this task's own)."""
    parent = posixpath.dirname(part.folder)
    return posixpath.relpath(posixpath.join(parent, task, "README.md"), part.folder)


# --- loading code ------------------------------------------------------------------------------


def loads_with(export_format: str) -> Literal["plain", "remote_code", "hf_prune"]:
    """How transformers alone loads an export of the format, from the format registry:
    plain ``from_pretrained``, ``trust_remote_code=True``, or not at all (only hf_prune).

    Example:
        >>> loads_with("dense"), loads_with("factored"), loads_with("masks")
        ('plain', 'remote_code', 'hf_prune')
    """
    from .formats import get_format
    from .formats.registry import UnknownFormatError

    try:
        spec = get_format(export_format)
    except UnknownFormatError:
        return "hf_prune"
    how = spec.loads_without_hf_prune
    if not spec.holds_weights or not how.startswith("AutoModel"):
        return "hf_prune"
    return "remote_code" if "trust_remote_code=True" in how else "plain"


def auto_class(architecture: str) -> str:
    """The ``transformers`` Auto class that loads ``architecture`` (``AutoModel`` for a bare encoder).

    Example:
        >>> auto_class("BertForSequenceClassification"), auto_class("BertModel")
        ('AutoModelForSequenceClassification', 'AutoModel')
    """
    import transformers

    head = architecture[architecture.find("For") :] if "For" in architecture else ""
    return f"AutoModel{head}" if head and hasattr(transformers, f"AutoModel{head}") else "AutoModel"


_HF_PRUNE_IMPORT = "import hf_prune  # pip install hf-prune"


def multitask_load_sections(
    repo: str, tasks: Sequence[TaskExport], export_format: str, task_order: Sequence[str]
) -> list[tuple[str, str]]:
    """``(title, code)`` of the multitask card's "How to use": each task's stock model (with
    transformers where the format allows, and with hf_prune), then the shared model."""
    sections = []
    architecture = next((t.architecture for t in tasks if t.architecture), "")
    auto = auto_class(architecture) if architecture else "AutoModelForSequenceClassification"
    shown = f"a stock `{architecture}`" if architecture else "a stock model"
    how = loads_with(export_format)
    if how == "plain":
        lines = [f'    "{t.name}": {auto}.from_pretrained(repo, subfolder="{t.folder}"),' for t in tasks]
        sections.append(
            (
                f"Each task's model is {shown} in its own folder (the shared encoder and that task's head); "
                f"with transformers (the pruned weights are exact zeros):",
                f'from transformers import {auto}\n\nrepo = "{repo}"\nmodels = {{\n' + "\n".join(lines) + "\n}",
            )
        )
    elif how == "remote_code":
        folders = "\n".join(f'    "{t.name}": "{t.folder}",' for t in tasks)
        sections.append(
            (
                f"Each task's model is {shown} in its own folder (the shared encoder and that task's head). Without "
                f"hf_prune, the folder's `hf_prune_loader.py` decodes the weights (`trust_remote_code=True`); "
                f"transformers looks for that code at the root of a repo, not in `subfolder=`, so download the "
                f"task's folder and load it by path:",
                "from huggingface_hub import snapshot_download\n"
                f"from transformers import {auto}\n\n"
                f"folders = {{\n{folders}\n}}\n"
                "models = {}\n"
                "for task, folder in folders.items():\n"
                f'    root = snapshot_download("{repo}", allow_patterns=[f"{{folder}}/*"])\n'
                f'    models[task] = {auto}.from_pretrained(f"{{root}}/{{folder}}", trust_remote_code=True)',
            )
        )
    lines = [f'    "{t.name}": hf_prune.load_pruned(repo, subfolder="{t.folder}"),' for t in tasks]
    sections.append(
        (
            f"With hf_prune (any format; each is {shown} in eval mode):",
            f'{_HF_PRUNE_IMPORT}\n\nrepo = "{repo}"\nmodels = {{\n' + "\n".join(lines) + "\n}",
        )
    )
    ids = ", ".join(f"{i} = {name}" for i, name in enumerate(task_order))
    first = task_order[0] if task_order else (tasks[0].name if tasks else "<task>")
    if how == "plain":
        # hf_prune.load_pruned hands a dense Hub repo to from_pretrained of the class config.json
        # names, which transformers does not have: the class's own from_pretrained loads it.
        shared_load = (
            "from hf_prune.multitask import MultitaskModel  # pip install hf-prune\n\n"
            f'model = MultitaskModel.from_pretrained("{repo}")  # in eval mode'
        )
    else:
        shared_load = f'{_HF_PRUNE_IMPORT}\n\nmodel = hf_prune.load_pruned("{repo}")  # a MultitaskModel in eval mode'
    sections.append(
        (
            "The shared model (the encoder once, every task's head) is a `hf_prune.multitask.MultitaskModel`: only "
            "hf_prune loads it (`AutoModel.from_pretrained` would build a bare encoder with fresh weights). Each "
            "row of a batch names its task in `task_ids`:",
            f"{shared_load}\n"
            f"# outputs = model(**inputs, task_ids=...)  with task ids {ids}\n"
            f"task_model = model.task_model(\"{first}\")  # one task's stock model, sharing the encoder's tensors",
        )
    )
    return sections


def task_load_sections(repo: str, part: MultitaskPart, architecture: str, export_format: str) -> list[tuple[str, str]]:
    """``(title, code)`` of a per-task card's "How to use": its folder of the multitask repo."""
    auto = auto_class(architecture) if architecture else "AutoModelForSequenceClassification"
    folder = part.folder
    sections = []
    how = loads_with(export_format)
    if how == "plain":
        sections.append(
            (
                "With transformers (the pruned weights are exact zeros):",
                f'from transformers import {auto}\n\nmodel = {auto}.from_pretrained("{repo}", subfolder="{folder}")',
            )
        )
    elif how == "remote_code":
        sections.append(
            (
                "Without hf_prune (this folder's `hf_prune_loader.py` decodes the weights; transformers looks for "
                "that code at the root of a repo, not in `subfolder=`, so download the folder and load it by path):",
                "from huggingface_hub import snapshot_download\n"
                f"from transformers import {auto}\n\n"
                f'root = snapshot_download("{repo}", allow_patterns=["{folder}/*"])\n'
                f'model = {auto}.from_pretrained(f"{{root}}/{folder}", trust_remote_code=True)',
            )
        )
    model_class = f"a `{architecture}`" if architecture else "the saved class"
    sections.append(
        (
            f"With hf_prune (any format; returns {model_class} in eval mode):",
            f'{_HF_PRUNE_IMPORT}\n\nmodel = hf_prune.load_pruned("{repo}", subfolder="{folder}")',
        )
    )
    return sections


def load_note(repo_id: str | None, placeholder: str, export_format: str, *, part: MultitaskPart | None) -> str:
    """The sentence under the loading code: what ``repo`` stands for, and how to load a local copy."""
    where = "the multitask export's local folder, the one holding `tasks/`"
    if repo_id:
        text = f"`{repo_id}` may also be {where}"
    else:
        text = (
            f"`{placeholder}` stands for the repo the multitask export is published under (the card was written "
            f"without `CardInfo(repo_id=...)`); it may also be {where}"
        )
    if loads_with(export_format) == "remote_code":
        text += "; for a local folder, skip `snapshot_download`: `root` is that folder"
    if part is not None:
        text += ". Published as a repo of its own, this folder loads without `subfolder=`"
    return text + "."
