"""The GLUE tasks, loaded from the Hugging Face Hub (``nyu-mll/glue``) through ``datasets``.

GLUE's own test splits have no labels, so a task's ``test`` split is GLUE's validation split
(``validation_matched`` for MNLI) and its ``validation`` split is 10% of GLUE's training split
(seed 0). Sentence pairs keep both sentences (``sentence1``, ``sentence2``). Offline, loading
fails at once with the list of the tasks that work offline (see :mod:`hf_prune.tasks.hub`).

Example:
    >>> task = glue_task("mrpc")
    >>> task.text_columns, task.metric_names, task.offline
    (('sentence1', 'sentence2'), ('f1', 'accuracy'), False)
"""

from __future__ import annotations

from dataclasses import dataclass

from datasets import DatasetDict

from .hub import load_hub_dataset
from .prepare import prepare_splits
from .spec import Task, TaskType

GLUE_ID = "nyu-mll/glue"


@dataclass(frozen=True)
class _Glue:
    columns: tuple[str, ...]
    label_names: tuple[str, ...]
    metrics: tuple[str, ...]
    description: str
    task_type: TaskType = "classification"
    test_split: str = "validation"


_ENTAILMENT = ("entailment", "not_entailment")
GLUE_TASKS: dict[str, _Glue] = {
    "sst2": _Glue(("sentence",), ("negative", "positive"), ("accuracy",), "SST-2 movie review sentiment"),
    "cola": _Glue(
        ("sentence",), ("unacceptable", "acceptable"), ("matthews_correlation",), "CoLA grammatical acceptability"
    ),
    "mrpc": _Glue(("sentence1", "sentence2"), ("not_equivalent", "equivalent"), ("f1", "accuracy"), "MRPC paraphrase"),
    "qnli": _Glue(("question", "sentence"), _ENTAILMENT, ("accuracy",), "QNLI question answering entailment"),
    "rte": _Glue(("sentence1", "sentence2"), _ENTAILMENT, ("accuracy",), "RTE textual entailment"),
    "stsb": _Glue(
        ("sentence1", "sentence2"), (), ("pearson", "spearman"), "STS-B sentence similarity (0-5)", "regression"
    ),
    "mnli": _Glue(
        ("premise", "hypothesis"),
        ("entailment", "neutral", "contradiction"),
        ("accuracy",),
        "MultiNLI natural language inference (test: validation_matched)",
        test_split="validation_matched",
    ),
    "qqp": _Glue(
        ("question1", "question2"), ("not_duplicate", "duplicate"), ("f1", "accuracy"), "QQP duplicate questions"
    ),
}


def glue_task(name: str) -> Task:
    """The GLUE task ``name`` (its data is loaded from the Hub by ``task.load()``)."""
    spec = GLUE_TASKS[name]
    return Task(
        name=name,
        task_type=spec.task_type,
        label_names=spec.label_names,
        text_columns=("text",) if len(spec.columns) == 1 else ("sentence1", "sentence2"),
        metric_names=spec.metrics,
        data_version=f"{GLUE_ID}:{name}:train-val0.1-seed0:test={spec.test_split}:v1",
        source=f"glue/{name}",
        description=f"GLUE {spec.description} ({GLUE_ID} on the Hugging Face Hub)",
        loader=lambda: _glue_splits(name),
        offline=False,
        hub_id=GLUE_ID,
        hub_config=name,
    )


def _glue_splits(name: str) -> DatasetDict:
    spec = GLUE_TASKS[name]
    raw = load_hub_dataset(GLUE_ID, name, task=name)
    source = {"train": raw["train"], "test": raw[spec.test_split]}
    return prepare_splits(
        source,
        task=name,
        text_columns=spec.columns,
        task_type=spec.task_type,
        label_names=spec.label_names or None,
    ).data
