"""A user's own task: from a ``datasets`` object, local files, or a Hub dataset id.

The data is read and checked when the task is built, so a wrong column, an empty split or labels
that do not fit the task type fail before any training (see :mod:`hf_prune.tasks.prepare`).

Example:
    >>> from datasets import Dataset
    >>> rows = Dataset.from_dict({"a": ["x", "y"] * 10, "b": ["u", "v"] * 10, "score": [0.5, 2.0] * 10})
    >>> task = task_from_dataset("similarity", rows, text_columns=["a", "b"], label_column="score",
    ...                          task_type="regression")
    >>> task.text_columns, task.metric_names, task.num_labels
    (('sentence1', 'sentence2'), ('pearson', 'spearman'), 1)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from datasets import Dataset, DatasetDict

from ..errors import DataFileNotFoundError, InvalidConfigError
from ..metrics import check_metric_names
from .prepare import Prepared, prepare_splits
from .spec import SPLITS, Task, TaskType, canonical_text_columns, check_task_options, default_metrics

# File extension -> the datasets builder that reads it.
FILE_BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def task_from_dataset(
    name: str,
    data: Dataset | DatasetDict | Mapping[str, Dataset],
    *,
    text_columns: str | Sequence[str],
    label_column: str = "label",
    task_type: TaskType,
    metrics: Sequence[str] | None = None,
    label_names: Sequence[str] | None = None,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    source: str = "dataset",
    description: str = "",
) -> Task:
    """See :meth:`Task.from_dataset`."""
    columns = (text_columns,) if isinstance(text_columns, str) else tuple(text_columns)
    check_task_options(
        name,
        task_type=task_type,
        text_columns=columns,
        label_column=label_column,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
    )
    metric_names = check_metric_names(
        metrics if metrics is not None else default_metrics(task_type), task_type, task=name
    )
    prepared = prepare_splits(
        data,
        task=name,
        text_columns=columns,
        label_column=label_column,
        task_type=task_type,
        label_names=label_names,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        seed=seed,
    )
    return Task(
        name=name,
        task_type=task_type,
        label_names=prepared.label_names,
        text_columns=canonical_text_columns(len(columns)),
        metric_names=metric_names,
        data_version=_data_version(prepared, task_type, columns, label_column),
        source=source,
        description=description or f"{name}: {source}",
        loader=lambda: prepared.data,
    )


def task_from_files(
    name: str,
    files: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]],
    **options: Any,
) -> Task:
    """See :meth:`Task.from_files`."""
    paths = _file_paths(name, files)
    extensions = {_extension(path) for path in paths.values()}
    unsupported = sorted(e for e in extensions if e not in FILE_BUILDERS)
    if unsupported or len({FILE_BUILDERS[e] for e in extensions if e in FILE_BUILDERS}) > 1:
        raise InvalidConfigError(
            f"Task {name!r}: data files {sorted(paths.values())} have extension(s) {sorted(extensions)}; use one "
            f"of {sorted(FILE_BUILDERS)} for all splits."
        )
    builder = FILE_BUILDERS[extensions.pop()]
    from datasets import load_dataset

    try:
        raw = load_dataset(builder, data_files={split: os.path.abspath(p) for split, p in paths.items()})
    except Exception as err:  # a malformed file: datasets raises many kinds; name the file and the cause
        empty = [
            f"the {split} data file {path!r} is empty (it holds {what}, no rows)"
            for split, path in paths.items()
            if (what := _no_rows(path, builder)) is not None
        ]
        if empty:  # datasets only says 'Instruction "train" corresponds to no data!'
            raise InvalidConfigError(
                f"Task {name!r}: {'; '.join(empty)}; add the rows, or point files at the file that has them."
            ) from None
        cause = err.__cause__ or err
        raise InvalidConfigError(
            f"Task {name!r}: could not read {builder} file(s) {sorted(paths.values())}: {type(cause).__name__}: "
            f"{' '.join(str(cause).split())[:300]}"
        ) from None
    source = paths["train"] if len(paths) == 1 else ", ".join(f"{s}={p}" for s, p in paths.items())
    return task_from_dataset(name, raw, source=source, description=f"{name}: local files {source}", **options)


def _file_paths(name: str, files: object) -> dict[str, str]:
    if isinstance(files, (str, os.PathLike)):
        paths = {"train": os.fspath(files)}
    elif isinstance(files, Mapping) and all(isinstance(p, (str, os.PathLike)) for p in files.values()):
        paths = {str(split): os.fspath(path) for split, path in files.items()}
    else:
        raise InvalidConfigError(
            f"Task {name!r}: files {files!r} is not a path or a mapping of split names to paths, e.g. "
            f"{{'train': 'train.csv', 'test': 'test.csv'}}."
        )
    unknown = sorted(set(paths) - set(SPLITS))
    if unknown or "train" not in paths:
        raise InvalidConfigError(
            f"Task {name!r}: files has splits {sorted(paths)}; use 'train' (required), 'validation' and 'test'."
        )
    for split, path in paths.items():
        if not os.path.isfile(path):
            what = "is a folder, not a file" if os.path.isdir(path) else "does not exist"
            raise DataFileNotFoundError(
                f"Task {name!r}: the {split} data file {path!r} {what} ({os.path.abspath(path)}); check the path."
            )
    return paths


def _no_rows(path: str, builder: str) -> str | None:
    """How a data file that ``datasets`` could not read holds no rows (``"only a header"``,
    ``"nothing"``), or ``None`` when it has content (or cannot be read: the read error says more).

    Example:
        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "header.csv")
        >>> with open(path, "w") as file:
        ...     print("review,stars", file=file)
        >>> _no_rows(path, "csv")
        'only a header'
    """
    try:
        if builder == "csv":
            lines = 0
            with open(path, encoding="utf-8", errors="replace") as file:
                for line in file:  # stops at the second line with content: no need to read it all
                    lines += bool(line.strip())
                    if lines > 1:
                        return None
            return "only a header" if lines else "nothing"
        if builder == "json":
            if os.path.getsize(path) > 4096:  # "[]" and whitespace are short; anything longer has content
                return None
            with open(path, encoding="utf-8", errors="replace") as file:
                content = "".join(file.read().split())
            return ("nothing" if not content else f"only {content}") if content in ("", "[]", "{}") else None
        import pyarrow.parquet as pq

        return "0 rows" if pq.read_metadata(path).num_rows == 0 else None
    except Exception:  # not known to be empty; the caller reports datasets' own error
        return None


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def task_from_hub(
    name: str,
    dataset_id: str,
    *,
    config_name: str | None = None,
    splits: Mapping[str, str] | None = None,
    **options: Any,
) -> Task:
    """See :meth:`Task.from_hub`."""
    from .hub import load_hub_dataset

    if not isinstance(dataset_id, str) or not dataset_id.strip():
        raise InvalidConfigError(f"Task {name!r}: dataset id {dataset_id!r} is not a Hub id such as 'nyu-mll/glue'.")
    columns = options.get("text_columns")
    check_task_options(  # before the download
        name,
        task_type=options.get("task_type", ""),
        text_columns=(columns,) if isinstance(columns, str) else tuple(columns or ()),
        label_column=options.get("label_column", "label"),
        validation_fraction=options.get("validation_fraction", 0.1),
        test_fraction=options.get("test_fraction", 0.2),
    )
    raw = load_hub_dataset(dataset_id, config_name, task=name)
    if splits is not None:
        missing = sorted(theirs for theirs in splits.values() if theirs not in raw)
        unknown = sorted(set(splits) - set(SPLITS))
        if missing or unknown:
            raise InvalidConfigError(
                f"Task {name!r}: splits {dict(splits)} does not fit: the dataset's splits are {sorted(raw)}; the "
                f"task's are {list(SPLITS)}."
            )
        raw = DatasetDict({ours: raw[theirs] for ours, theirs in splits.items()})
    where = dataset_id + (f" ({config_name})" if config_name else "")
    return task_from_dataset(name, raw, source=where, description=f"{name}: Hub dataset {where}", **options)


def _data_version(prepared: Prepared, task_type: str, columns: tuple[str, ...], label_column: str) -> str:
    """A hash of the splits' contents (datasets fingerprints) and how they were read."""
    payload = {
        "splits": {split: data._fingerprint for split, data in prepared.data.items()},
        "labels": list(prepared.label_names),
        "task_type": task_type,
        "columns": [*columns, label_column],
    }
    return "custom-" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
