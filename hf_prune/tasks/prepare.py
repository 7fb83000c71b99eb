"""Turning a source dataset into a task's checked ``train`` / ``validation`` / ``test`` splits.

One path for every task, named or the user's own: check the splits are there and not empty,
that the text and label columns exist with usable types, encode the labels (``ClassLabel`` for
classification, ``float32`` for regression), carve the missing splits with a seeded random split,
and rename the columns to the task schema: ``text`` (or ``sentence1``, ``sentence2`` for pairs)
and ``label``.

A missing test split is carved first, from all the training rows (``test_fraction``); a missing
validation split then from what is left (``validation_fraction`` of it).

Example:
    >>> from datasets import Dataset
    >>> rows = Dataset.from_dict({"review": ["good", "bad"] * 10, "stars": ["pos", "neg"] * 10})
    >>> prepared = prepare_splits(rows, task="demo", text_columns=["review"], label_column="stars")
    >>> {split: len(data) for split, data in prepared.data.items()}, prepared.label_names
    ({'train': 14, 'validation': 2, 'test': 4}, ('neg', 'pos'))
    >>> prepared.data["train"].column_names
    ['text', 'label']
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

import datasets
import pyarrow as pa
import pyarrow.compute as pc
from datasets import ClassLabel, Dataset, DatasetDict, Value

from ..errors import InvalidConfigError, MissingColumnError
from .spec import LABEL_COLUMN, SPLITS, TaskType, canonical_text_columns, check_task_options

logger = logging.getLogger(__name__)

_STRING_TYPES = ("string", "large_string")


class Prepared(NamedTuple):
    """The task's splits (``train``, ``validation``, ``test``) and its class names (``()`` for regression)."""

    data: DatasetDict
    label_names: tuple[str, ...]


def prepare_splits(
    source: Dataset | DatasetDict | Mapping[str, Dataset],
    *,
    task: str,
    text_columns: Sequence[str],
    label_column: str = LABEL_COLUMN,
    task_type: TaskType = "classification",
    label_names: Sequence[str] | None = None,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Prepared:
    """The checked, encoded and completed splits of ``source`` (see the module docstring).

    Raises:
        InvalidConfigError: no ``train`` split, an empty split, too few rows to carve a split,
            labels that do not fit the task type or ``label_names``, or a text column that is
            not text.
        MissingColumnError: a text or label column is missing from a split.
    """
    text_columns = tuple(text_columns)
    check_task_options(
        task,
        task_type=task_type,
        text_columns=text_columns,
        label_column=label_column,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
    )
    splits = _as_splits(source, task)
    with _quiet_progress():
        for split, data in splits.items():
            _check_columns(data, split, task, text_columns, label_column)
            splits[split] = data.select_columns([*text_columns, label_column])
        names = _class_names(splits, task, label_column, task_type, label_names)
        for split, data in splits.items():
            splits[split] = _encode_labels(data, label_column, task_type, names)
        if "test" not in splits:
            splits["train"], splits["test"] = _split_off(splits["train"], test_fraction, seed, "test", task)
        if "validation" not in splits:
            splits["train"], splits["validation"] = _split_off(
                splits["train"], validation_fraction, seed, "validation", task
            )
        renames = dict(zip(text_columns, canonical_text_columns(len(text_columns)), strict=True))
        renames[label_column] = LABEL_COLUMN
        data = DatasetDict({split: _rename(splits[split], renames) for split in SPLITS})
    return Prepared(data, names)


def _as_splits(source: object, task: str) -> dict[str, Dataset]:
    if isinstance(source, Dataset):
        splits = {"train": source}
    elif isinstance(source, Mapping) and all(isinstance(d, Dataset) for d in source.values()):
        splits = dict(source)
    else:
        raise InvalidConfigError(
            f"Task {task!r}: the data is a {type(source).__name__}; expected a datasets.Dataset or DatasetDict."
        )
    if "train" not in splits:
        raise InvalidConfigError(
            f"Task {task!r}: the data has splits {sorted(splits)} but no 'train' split; name the training "
            f"split 'train' (validation and test splits are carved from it when missing)."
        )
    extra = sorted(set(splits) - set(SPLITS))
    if extra:
        logger.info("Task %r: ignoring split(s) %s (a task uses %s).", task, extra, list(SPLITS))
    splits = {split: data for split, data in splits.items() if split in SPLITS}
    for split, data in splits.items():
        if len(data) == 0:
            raise InvalidConfigError(
                f"Task {task!r}: split {split!r} is empty; give it rows, or leave it out to carve it."
            )
    return splits


def _check_columns(data: Dataset, split: str, task: str, text_columns: tuple[str, ...], label_column: str) -> None:
    for role, column in [*(("text", c) for c in text_columns), ("label", label_column)]:
        if column not in data.column_names:
            raise MissingColumnError(
                f"Task {task!r}: split {split!r} has no {role} column {column!r}; its columns are "
                f"{data.column_names}. Set {'text_columns' if role == 'text' else 'label_column'} to one of them."
            )
    for column in text_columns:
        feature = data.features[column]
        if not (isinstance(feature, Value) and feature.dtype in _STRING_TYPES):
            raise InvalidConfigError(
                f"Task {task!r}: text column {column!r} of split {split!r} holds {feature}, not strings; "
                f"name a text column in text_columns."
            )
        missing = _column(data, column).null_count
        if missing:
            raise InvalidConfigError(
                f"Task {task!r}: text column {column!r} of split {split!r} has {missing} empty (null) value(s); "
                f"drop or fill those rows first."
            )


def _class_names(
    splits: dict[str, Dataset],
    task: str,
    label_column: str,
    task_type: TaskType,
    label_names: Sequence[str] | None,
) -> tuple[str, ...]:
    """The class names the labels are encoded with (``()`` for regression), checked against the data."""
    given = tuple(str(name) for name in label_names) if label_names is not None else None
    if task_type == "regression":
        if given:
            raise InvalidConfigError(f"Task {task!r} is a regression task; drop label_names {list(given)}.")
        for split, data in splits.items():
            _check_numeric_labels(data, split, task, label_column)
        return ()
    found: set[str] = set()
    largest = -1
    for split, data in splits.items():
        feature, values = data.features[label_column], _column(data, label_column)
        where = f"Task {task!r}: label column {label_column!r} of split {split!r}"
        if values.null_count:
            raise InvalidConfigError(f"{where} has {values.null_count} missing label(s); drop those rows first.")
        if isinstance(feature, ClassLabel):
            if given is not None and tuple(feature.names) != given:
                raise InvalidConfigError(
                    f"{where} has class names {feature.names}, but label_names is {list(given)}; "
                    f"drop label_names or make it match."
                )
            given = tuple(feature.names)
            _check_range(values, len(given), where)
        elif isinstance(feature, Value) and (pa.types.is_integer(values.type) or pa.types.is_boolean(values.type)):
            values = values.cast(pa.int64())
            low, high = pc.min_max(values).values()
            if low.as_py() < 0:
                raise InvalidConfigError(
                    f"{where} holds the label {low.as_py()}; class ids start at 0 (a split without labels, such "
                    f"as a GLUE test split, cannot be used as a task split)."
                )
            largest = max(largest, high.as_py())
        elif isinstance(feature, Value) and feature.dtype in _STRING_TYPES:
            found.update(str(v) for v in pc.unique(values).to_pylist())
        else:
            raise InvalidConfigError(
                f"{where} holds {feature}; a classification label is a class id (int), a class name (str) or a "
                f"ClassLabel. For real-valued targets set task_type: regression."
            )
    if found and largest >= 0:
        raise InvalidConfigError(
            f"Task {task!r}: label column {label_column!r} holds class names in some splits and ids in others; "
            f"use one kind."
        )
    if found:
        if given is None:
            return tuple(sorted(found))
        unknown = sorted(found - set(given))
        if unknown:
            raise InvalidConfigError(
                f"Task {task!r}: label(s) {unknown[:5]} in column {label_column!r} are not in label_names "
                f"{list(given)}; add them or fix the data."
            )
        return given
    if given is None:
        given = tuple(str(i) for i in range(largest + 1))
    if largest >= len(given):
        raise InvalidConfigError(
            f"Task {task!r}: label column {label_column!r} holds class id {largest}, but there are only "
            f"{len(given)} class names {list(given)}; fix label_names or the data."
        )
    if len(given) < 2:
        raise InvalidConfigError(
            f"Task {task!r}: only one class {list(given)} in label column {label_column!r}; a classification "
            f"task needs at least 2 (or set label_names)."
        )
    return given


def _check_range(values: pa.ChunkedArray, size: int, where: str) -> None:
    low, high = (v.as_py() for v in pc.min_max(values).values())
    if low < 0 or high >= size:
        bad = low if low < 0 else high
        raise InvalidConfigError(
            f"{where} holds the class id {bad}, outside 0..{size - 1} (a split without labels, such as a GLUE "
            f"test split, cannot be used as a task split)."
        )


def _check_numeric_labels(data: Dataset, split: str, task: str, label_column: str) -> None:
    feature, values = data.features[label_column], _column(data, label_column)
    where = f"Task {task!r}: label column {label_column!r} of split {split!r}"
    numeric = isinstance(feature, Value) and (
        pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_boolean(values.type)
    )
    if not numeric or isinstance(feature, ClassLabel):
        raise InvalidConfigError(
            f"{where} holds {feature}, but a regression task needs numbers; set task_type: classification for "
            f"class labels."
        )
    if values.null_count or (pa.types.is_floating(values.type) and pc.any(pc.is_nan(values)).as_py()):
        raise InvalidConfigError(f"{where} has missing (null or NaN) targets; drop those rows first.")


def _encode_labels(data: Dataset, label_column: str, task_type: TaskType, names: tuple[str, ...]) -> Dataset:
    target = ClassLabel(names=list(names)) if task_type == "classification" else Value("float32")
    if data.features[label_column] == target:
        return data
    return data.cast_column(label_column, target)


def _split_off(data: Dataset, fraction: float, seed: int, split: str, task: str) -> tuple[Dataset, Dataset]:
    """``(rest, held_out)``: a seeded random ``fraction`` of ``data`` held out (``Dataset.train_test_split``)."""
    held = math.ceil(fraction * len(data))  # how datasets sizes the test part
    if len(data) - held < 1:
        raise InvalidConfigError(
            f"Task {task!r}: cannot carve a {split} split of {fraction:g} from {len(data)} training row(s): "
            f"nothing would be left to train on. Add rows, lower the fraction, or give a {split} split."
        )
    parts = data.train_test_split(test_size=fraction, seed=seed)
    return parts["train"], parts["test"]


def _rename(data: Dataset, renames: dict[str, str]) -> Dataset:
    renames = {old: new for old, new in renames.items() if old != new}
    if not renames:
        return data
    # Through temporary names: a user's label column may be called "text", say.
    temporary = {old: f"__hf_prune_{i}" for i, old in enumerate(renames)}
    data = data.rename_columns(temporary)
    return data.rename_columns({temporary[old]: new for old, new in renames.items()})


def _column(data: Dataset, column: str) -> pa.ChunkedArray:
    """The column's values as Arrow (of the selected rows when the dataset has an indices mapping)."""
    values = data.with_format("arrow")[column]
    return values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """No "Casting the dataset" bars for these small, quick steps (restored after)."""
    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()
