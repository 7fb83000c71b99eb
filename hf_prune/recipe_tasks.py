"""A recipe's tasks: ``task:`` (one) or ``tasks:`` (a mixture) and ``mixture:``, checked as a whole.

A task entry is a named task (``movie_sentiment``), a named task with options
(``{name: nyt_sentiment, max_train_examples: 500}``: a low-resource version of it), or the user's
own task from local files or a Hub dataset::

    tasks:
      - movie_sentiment
      - {name: nyt_sentiment, max_train_examples: 500}
      - name: my_reviews
        files: {train: data/train.csv, test: data/test.csv}   # or one file, split for you
        text_columns: [review]
        label_column: stars
        task_type: classification
        metrics: [accuracy]
    mixture: {sampling: temperature, temperature: 2.0, batches: homogeneous}

:func:`parse_task_entries` checks the entries' shape, names and keys without reading anything;
:func:`build_tasks` then makes the :class:`~hf_prune.tasks.Task` objects (user files are read and
checked; a Hub task fails at once offline), still before any model is loaded.

Example:
    >>> entries = parse_task_entries(["movie_sentiment", {"name": "nyt_sentiment", "max_train_examples": 500}])
    >>> [(entry.name, entry.max_train_examples) for entry in entries]
    [('movie_sentiment', None), ('nyt_sentiment', 500)]
    >>> parse_task_entries(["movie_sentiment", "movie_sentiment"])
    Traceback (most recent call last):
    ...
    hf_prune.errors.InvalidConfigError: tasks: 'movie_sentiment' appears twice; each task of a mixture needs its own name.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidConfigError
from .recipe_checks import describe_value

# Keys of a user's own task (the arguments of Task.from_files / Task.from_hub).
_SOURCE_KEYS = ("files", "hub_dataset")
_USER_TASK_KEYS = (
    "text_columns",
    "label_column",
    "task_type",
    "metrics",
    "label_names",
    "validation_fraction",
    "test_fraction",
    "seed",
    "hub_config",
    "splits",
)
_COMMON_KEYS = ("name", "max_train_examples")
_ALL_KEYS = (*_COMMON_KEYS, *_SOURCE_KEYS, *_USER_TASK_KEYS)
_EXAMPLE = "{name: my_reviews, files: data/reviews.csv, text_columns: [review], label_column: stars, task_type: classification}"


@dataclass(frozen=True)
class TaskEntry:
    """One checked task entry of a recipe: a named task, or ``options`` that define the user's own."""

    name: str
    options: Mapping[str, Any] | None = None  # None: a named task
    max_train_examples: int | None = None


def parse_task_entries(value: Any, where: str = "tasks") -> list[TaskEntry]:
    """The checked entries of a recipe's ``tasks:`` list (or of ``task:`` as a one-entry list)."""
    if isinstance(value, (str, Mapping)):  # task: one entry
        return [_entry(value, where)]
    if not isinstance(value, list) or not value:
        raise InvalidConfigError(
            f"{where}: {value!r} is {describe_value(value)}; expected a list of tasks, e.g. "
            f"{where}: [movie_sentiment, tweets_3class, bbc_topic]."
        )
    entries = [_entry(item, f"{where}[{index}]") for index, item in enumerate(value)]
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise InvalidConfigError(
                f"{where}: {entry.name!r} appears twice; each task of a mixture needs its own name."
            )
        seen.add(entry.name)
    return entries


def _entry(item: Any, where: str) -> TaskEntry:
    from .tasks import available_tasks

    if isinstance(item, str):
        _check_named(item, where)
        return TaskEntry(item)
    if not isinstance(item, Mapping):
        raise InvalidConfigError(
            f"{where}: {item!r} is {describe_value(item)}; a task is a task name (e.g. movie_sentiment) or a mapping "
            f"that defines your own, e.g. {_EXAMPLE}."
        )
    unknown = [key for key in item if key not in _ALL_KEYS]
    if unknown:
        close = [m for key in unknown for m in difflib.get_close_matches(str(key), _ALL_KEYS, n=1)]
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise InvalidConfigError(f"{where}: unknown key(s) {unknown}{hint}; the keys are {list(_ALL_KEYS)}.")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidConfigError(f"{where}: the task has no name; add one, e.g. name: my_reviews.")
    limit = item.get("max_train_examples")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidConfigError(
            f"{where}: max_train_examples {limit!r} is not a whole number >= 1; e.g. max_train_examples: 500."
        )
    sources = [key for key in _SOURCE_KEYS if key in item]
    if not sources:
        own = [key for key in item if key in _USER_TASK_KEYS]
        if own:
            raise InvalidConfigError(
                f"{where}: task {name!r} sets {own} but no data: add files: <path or {{split: path}}> or "
                f"hub_dataset: <dataset id>, or drop them to use the named task."
            )
        _check_named(name, where)
        return TaskEntry(name, None, limit)
    if len(sources) > 1:
        raise InvalidConfigError(f"{where}: task {name!r} sets both files and hub_dataset; keep one of them.")
    hub_only = [key for key in ("hub_config", "splits") if key in item and "files" in item]
    if hub_only:
        raise InvalidConfigError(
            f"{where}: task {name!r} reads files, so {hub_only} do not apply (they select a Hub dataset's config and "
            f"splits); give files as {{train: path, validation: path, test: path}} instead."
        )
    if name in available_tasks():
        raise InvalidConfigError(f"{where}: {name!r} is the name of a built-in task; give your own task another name.")
    for key in ("text_columns", "task_type"):
        if key not in item:
            raise InvalidConfigError(f"{where}: task {name!r} has no {key}; your own task needs it, e.g. {_EXAMPLE}.")
    options = {key: value for key, value in item.items() if key not in _COMMON_KEYS}
    return TaskEntry(name, options, limit)


def _check_named(name: str, where: str) -> None:
    from .tasks import available_tasks, offline_tasks

    if name not in available_tasks():
        close = difflib.get_close_matches(name, available_tasks(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidConfigError(
            f"{where}: unknown task {name!r}{hint}. Named tasks: offline {offline_tasks()}, from the Hub "
            f"{sorted(set(available_tasks()) - set(offline_tasks()))}; or define your own, e.g. {_EXAMPLE}."
        )


def build_tasks(entries: list[TaskEntry], base_dir: str) -> list[Any]:
    """The :class:`~hf_prune.tasks.Task` of every entry (file paths relative to ``base_dir``, the
    recipe's folder), each checked to be loadable here (a Hub task offline fails now)."""
    from .tasks import Task, get_task

    tasks = []
    for entry in entries:
        if entry.options is None:
            task = get_task(entry.name)
        else:
            options = dict(entry.options)
            if "files" in options:
                files = options.pop("files")
                task = Task.from_files(entry.name, _relative_to(files, base_dir), **_task_kwargs(options))
            else:
                dataset = options.pop("hub_dataset")
                config_name = options.pop("hub_config", None)
                task = Task.from_hub(entry.name, dataset, config_name=config_name, **_task_kwargs(options))
        task.check_available()
        if entry.max_train_examples is not None:
            task = limit_train_examples(task, entry.max_train_examples)
        tasks.append(task)
    return tasks


def _task_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    if isinstance(options.get("text_columns"), str):
        options["text_columns"] = [options["text_columns"]]
    return options


def _relative_to(files: Any, base_dir: str) -> Any:
    """Paths in a recipe are relative to the recipe file."""
    if isinstance(files, str):
        return os.path.normpath(os.path.join(base_dir, files))
    if isinstance(files, Mapping):
        return {split: _relative_to(path, base_dir) for split, path in files.items()}
    raise InvalidConfigError(
        f"files: {files!r} is {describe_value(files)}; give a path, or {{train: path, validation: path, test: path}}."
    )


def limit_train_examples(task: Any, count: int, seed: int = 0) -> Any:
    """``task`` with at most ``count`` training rows (a seeded sample; validation and test unchanged):
    the low-resource version of a task.

    Example:
        >>> # small = limit_train_examples(get_task("nyt_sentiment"), 500)
        >>> # len(small.load()["train"])   # 500
    """
    load = task.loader

    def limited() -> Any:
        splits = dict(load())
        train = splits["train"]
        if len(train) > count:
            splits["train"] = train.shuffle(seed=seed).select(range(count))
        return splits

    return dataclasses.replace(task, loader=limited, data_version=f"{task.data_version}-train{count}")


def parse_mixture(value: Any, task_names: list[str]) -> Any:
    """The recipe's ``mixture:`` as a :class:`~hf_prune.multitask.TaskMixture` (default when
    absent), its weights checked against the recipe's tasks."""
    from .multitask.sampling import TaskMixture

    if value is None:
        return TaskMixture()
    if not isinstance(value, Mapping):
        raise InvalidConfigError(
            f"mixture: {value!r} is {describe_value(value)}; expected a mapping, e.g. "
            f"mixture: {{sampling: temperature, temperature: 2.0}}."
        )
    try:
        mixture = TaskMixture.from_dict(value)
    except InvalidConfigError as err:
        raise InvalidConfigError(f"mixture: {err}") from None
    unknown = [name for name in (mixture.weights or {}) if name not in task_names]
    if unknown:
        raise InvalidConfigError(
            f"mixture.weights names task(s) {unknown} that the recipe does not list; its tasks are {task_names}."
        )
    missing = [name for name in task_names if mixture.weights is not None and name not in mixture.weights]
    if missing:
        raise InvalidConfigError(
            f"mixture.weights has no weight for task(s) {missing}; give every task a weight (0 leaves a task out)."
        )
    return mixture
