"""A ``Trainer`` over a task mixture: per-task datasets in, mixed or task-homogeneous batches out,
every task evaluated with its own metric.

:class:`MultitaskTrainer` changes only what a mixture needs: it adds a ``task_ids`` column to
each task's dataset (the model's forward takes it, so ``remove_unused_columns`` keeps it), draws
training batches with :class:`~hf_prune.multitask.sampling.MultitaskBatchSampler` (prepared by
Accelerate, so several processes get disjoint batches), and evaluates each task on its own,
logging ``eval_<task>_<metric>`` and ``eval_average`` (the mean of each task's first metric;
``metric_for_best_model="average"`` selects on it). The training loop is the Trainer's own.
:class:`MultitaskPruningTrainer` is the same with pruning (:class:`~hf_prune.PruningTrainerMixin`).

Example:
    >>> # tasks = [get_task("movie_sentiment"), get_task("tweets_3class"), get_task("bbc_topic")]
    >>> # model = MultitaskModel.from_encoder("sentence-transformers/all-MiniLM-L6-v2", tasks)
    >>> # data = {task.name: task.tokenize(task.load(), tokenizer, 64) for task in tasks}
    >>> # trainer = MultitaskPruningTrainer(
    >>> #     model=model, args=args, processing_class=tokenizer,
    >>> #     train_dataset={name: d["train"] for name, d in data.items()},
    >>> #     eval_dataset={name: d["validation"] for name, d in data.items()},
    >>> #     compute_metrics={task.name: task.compute_metrics for task in tasks},
    >>> #     mixture=TaskMixture(sampling="temperature", temperature=2.0),
    >>> #     pruning=RPPConfig(target_sparsity=0.8))
    >>> # trainer.train(); trainer.evaluate()["eval_average"]
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, Value, concatenate_datasets
from torch import nn
from transformers import Trainer

from ..errors import InvalidConfigError, UnknownTaskError
from ..trainer import PruningTrainerMixin
from .collator import MultitaskCollator
from .model import MultitaskModel, TaskHead, unknown_task_error
from .sampling import MultitaskBatchSampler, TaskMixture, prepared_train_dataloader

TASK_ID_COLUMN = "task_ids"
# Columns the Trainer treats as labels (kept even though forward names only `labels`).
_LABEL_COLUMNS = ("label", "labels", "label_ids")


def with_task_ids(dataset: Dataset, task_id: int) -> Dataset:
    """``dataset`` with a ``task_ids`` column holding ``task_id`` on every row.

    Example:
        >>> list(with_task_ids(Dataset.from_dict({"text": ["a", "b"]}), 2)["task_ids"])
        [2, 2]
    """
    if TASK_ID_COLUMN in dataset.column_names:
        dataset = dataset.remove_columns(TASK_ID_COLUMN)
    return dataset.add_column(TASK_ID_COLUMN, [task_id] * len(dataset))


def check_labels_fit(head: TaskHead, dataset: Dataset, where: str) -> None:
    """Refuse a task dataset whose labels the task's head cannot take: a class-label column with
    another number of classes, class labels for a regression head, or a class id out of range.

    Example:
        >>> from datasets import ClassLabel, Features, Value
        >>> data = Dataset.from_dict({"labels": [0, 2]}, features=Features({"labels": ClassLabel(names=["a", "b", "c"])}))
        >>> check_labels_fit(TaskHead("t", ("x", "y")), data, "train_dataset['t']")
        Traceback (most recent call last):
        ...
        hf_prune.errors.InvalidConfigError: train_dataset['t'] has 3 classes ['a', 'b', 'c'] but the head of task 't' has 2 (['x', 'y']); build the model from the same tasks as the data (MultitaskModel.from_encoder(path, tasks)).
    """
    column = next((c for c in _LABEL_COLUMNS if c in dataset.column_names), None)
    if column is None:
        return  # prediction-only data
    feature = dataset.features[column]
    fix = "build the model from the same tasks as the data (MultitaskModel.from_encoder(path, tasks))"
    if isinstance(feature, ClassLabel):
        if head.task_type == "regression":
            raise InvalidConfigError(
                f"{where} has class labels {feature.names} but task {head.name!r} has a regression head; {fix}."
            )
        if feature.num_classes != head.num_labels:
            raise InvalidConfigError(
                f"{where} has {feature.num_classes} classes {feature.names} but the head of task {head.name!r} has "
                f"{head.num_labels} ({list(head.label_names)}); {fix}."
            )
        return
    if head.task_type == "classification" and getattr(feature, "dtype", "").startswith("int"):
        labels = np.asarray(dataset.with_format("numpy")[column][:])
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= head.num_labels:
            raise InvalidConfigError(
                f"{where} holds class ids {low}..{high} but the head of task {head.name!r} has {head.num_labels} "
                f"classes (ids 0..{head.num_labels - 1}); {fix}."
            )


class MultitaskTrainer(Trainer):
    """A ``Trainer`` for a :class:`~hf_prune.multitask.MultitaskModel` over several tasks.

    Args:
        train_dataset: ``{task name: tokenized train split}``; task ids follow the model's task
            order (``model.task_names``). A plain dataset that already has ``task_ids`` works too
            (then batches are drawn as the stock Trainer draws them).
        eval_dataset: ``{task name: tokenized split}``, evaluated task by task.
        compute_metrics: ``{task name: EvalPrediction -> {metric: value}}`` (a task's first
            metric is the one averaged into ``eval_average``), or one function for every task.
        mixture: How tasks are sampled into batches (default: proportional, task-homogeneous).
        data_collator: Default: :class:`~hf_prune.multitask.MultitaskCollator` over
            ``processing_class``.
        *args, **kwargs: The Trainer's.
    """

    def __init__(
        self,
        model: Any = None,
        args: Any = None,
        data_collator: Any = None,
        train_dataset: Mapping[str, Dataset] | Dataset | None = None,
        eval_dataset: Mapping[str, Dataset] | Dataset | None = None,
        *other: Any,
        compute_metrics: Mapping[str, Callable[..., dict[str, float]]] | Callable[..., dict[str, float]] | None = None,
        mixture: TaskMixture | None = None,
        **kwargs: Any,
    ) -> None:
        self.mixture = mixture if mixture is not None else TaskMixture()
        if not isinstance(self.mixture, TaskMixture):
            raise InvalidConfigError(
                f"mixture={mixture!r} is not a TaskMixture; pass e.g. TaskMixture(sampling='uniform')."
            )
        if model is not None:  # with model_init the model is checked once it is built (below)
            _check_multitask_model(model, train_dataset, eval_dataset)
        multitask = _multitask_model(model)
        self.task_names = self._task_names(multitask, train_dataset, eval_dataset)
        self._heads = multitask.heads_spec if multitask is not None else None
        self.task_sizes: dict[str, int] | None = None
        if isinstance(train_dataset, Mapping):
            self._check_task_keys(train_dataset, "train_dataset")
            self.task_sizes = {name: len(train_dataset[name]) for name in self.task_names}
            train_dataset = self._concatenated(train_dataset)
        if isinstance(eval_dataset, Mapping):
            self._check_task_keys(eval_dataset, "eval_dataset", allow_subset=True)
            eval_dataset = self._with_ids(eval_dataset)
        self.task_metrics = self._task_metric_functions(compute_metrics)
        if data_collator is None and multitask is not None:
            tokenizer = kwargs.get("processing_class")
            if tokenizer is not None:
                data_collator = MultitaskCollator(tokenizer, [head.task_type for head in multitask.heads_spec])
        super().__init__(model, args, data_collator, train_dataset, eval_dataset, *other, **kwargs)
        if model is None:
            _check_multitask_model(self.model, train_dataset, eval_dataset)

    # --- tasks ------------------------------------------------------------------------------------
    @staticmethod
    def _task_names(model: Any, *datasets: Any) -> list[str]:
        if isinstance(model, MultitaskModel):
            return model.task_names
        for data in datasets:  # model_init: the model is built later; the datasets give the order
            if isinstance(data, Mapping):
                return list(data)
        return []

    def _check_task_keys(self, datasets: Mapping[str, Dataset], where: str, allow_subset: bool = False) -> None:
        unknown = [name for name in datasets if name not in self.task_names]
        missing = [name for name in self.task_names if name not in datasets]
        if unknown or (missing and not allow_subset):
            problem = f"has no task {unknown}" if unknown else f"lacks the task(s) {missing}"
            raise InvalidConfigError(
                f"{where} {problem}: the model's tasks are {self.task_names}; give {where} as {{task name: dataset}} "
                f"with those names."
            )
        for name, data in datasets.items():
            if len(data) == 0:
                raise InvalidConfigError(f"{where}[{name!r}] is empty; every task needs at least one row.")
            if self._heads is not None:
                check_labels_fit(self._heads[self.task_names.index(name)], data, f"{where}[{name!r}]")

    def _with_ids(self, datasets: Mapping[str, Dataset]) -> dict[str, Dataset]:
        return {name: with_task_ids(data, self.task_names.index(name)) for name, data in datasets.items()}

    def _concatenated(self, datasets: Mapping[str, Dataset]) -> Dataset:
        """One dataset of every task's rows (task-id order), with one label type for all: each
        task's labels are its own feature (class names, floats), which datasets cannot stack."""
        parts = self._with_ids(datasets)
        regression = self._heads is not None and any(head.task_type == "regression" for head in self._heads)
        label_type = Value("float32") if regression else Value("int64")
        aligned: list[Dataset] = []
        for name in self.task_names:
            part = parts[name]
            if "label" in part.column_names and "labels" not in part.column_names:
                part = part.rename_column("label", "labels")
            if "labels" in part.column_names and part.features["labels"] != label_type:
                part = part.cast_column("labels", label_type)
            if aligned and part.features != aligned[0].features:
                common = [c for c in aligned[0].column_names if c in part.column_names]
                missing = sorted(set(aligned[0].column_names) ^ set(part.column_names))
                if missing:
                    raise InvalidConfigError(
                        f"train_dataset[{name!r}] and train_dataset[{self.task_names[0]!r}] differ in columns {missing}; "
                        f"tokenize every task with the same tokenizer (task.tokenize) so their rows can share batches."
                    )
                part = part.cast(aligned[0].features.copy()) if common else part
            aligned.append(part)
        return concatenate_datasets(aligned)

    def _task_metric_functions(self, compute_metrics: Any) -> dict[str, Callable[..., dict[str, float]]]:
        if compute_metrics is None:
            return {}
        if callable(compute_metrics):
            return {name: compute_metrics for name in self.task_names}
        if not isinstance(compute_metrics, Mapping):
            raise InvalidConfigError(
                f"compute_metrics={compute_metrics!r}: give {{task name: function}} or one function for every task."
            )
        unknown = [name for name in compute_metrics if name not in self.task_names]
        if unknown:
            raise InvalidConfigError(
                f"compute_metrics names unknown task(s) {unknown}; the tasks are {self.task_names}."
            )
        return dict(compute_metrics)

    # --- training batches -------------------------------------------------------------------------
    def get_train_dataloader(self) -> Any:
        if self.task_sizes is None:  # a plain dataset: the stock Trainer's sampling
            return super().get_train_dataloader()
        batch_size = getattr(self, "_train_batch_size", self.args.per_device_train_batch_size)
        sampler = MultitaskBatchSampler(
            self.task_sizes,
            batch_size,
            self.mixture,
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
        )
        return prepared_train_dataloader(
            self._model_columns(self.train_dataset),
            sampler,
            self.data_collator,
            self.accelerator,
            num_workers=self.args.dataloader_num_workers,
            # Pinned memory only helps copies to an accelerator (torch warns on CPU).
            pin_memory=self.args.dataloader_pin_memory and self.accelerator.device.type != "cpu",
        )

    def _model_columns(self, dataset: Any) -> Any:
        """Drop the columns the model's forward does not take (``remove_unused_columns``)."""
        if not self.args.remove_unused_columns or not isinstance(dataset, Dataset):
            return dataset
        model = self.accelerator.unwrap_model(self.model)
        keep = {*inspect.signature(model.forward).parameters, *_LABEL_COLUMNS, *(self.label_names or [])}
        unused = [column for column in dataset.column_names if column not in keep]
        return dataset.remove_columns(unused) if unused else dataset

    # --- evaluation -------------------------------------------------------------------------------
    def _eval_split(self, name: str) -> Dataset:
        """The trainer's evaluation split of task ``name`` (``evaluate("topic")``)."""
        if not isinstance(self.eval_dataset, Mapping):
            raise InvalidConfigError(
                f"evaluate({name!r}) names a task, but this trainer's eval_dataset is "
                f"{'not set' if self.eval_dataset is None else 'one dataset, not per task'}; give eval_dataset as "
                f"{{task name: dataset}}, or pass the dataset to evaluate()."
            )
        if name not in self.eval_dataset:
            if name in self.task_names:
                raise UnknownTaskError(
                    f"evaluate({name!r}): task {name!r} has no split in this trainer's eval_dataset (it has "
                    f"{list(self.eval_dataset)}); add eval_dataset[{name!r}], or pass its dataset to evaluate()."
                )
            raise unknown_task_error(name, self.task_names, f"evaluate({name!r}): this trainer")
        return self.eval_dataset[name]

    def evaluate(
        self,
        eval_dataset: Mapping[str, Dataset] | Dataset | str | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Evaluate every task of ``eval_dataset`` (default: the trainer's) with its own metric.

        Returns ``{prefix}_{task}_{metric}`` for every task and ``{prefix}_average``, the mean of
        each task's first metric (also logged). A single dataset is evaluated as the Trainer does.
        """
        datasets = self.eval_dataset if eval_dataset is None else eval_dataset
        if isinstance(datasets, str):
            datasets = {datasets: self._eval_split(datasets)}
        if not isinstance(datasets, Mapping):
            return super().evaluate(datasets, ignore_keys, metric_key_prefix)
        if eval_dataset is not None:
            self._check_task_keys(datasets, "eval_dataset", allow_subset=True)
            datasets = self._with_ids(datasets)
        metrics: dict[str, float] = {}
        primary: list[float] = []
        for name, data in datasets.items():
            prefix = f"{metric_key_prefix}_{name}"
            saved, self.compute_metrics = self.compute_metrics, self.task_metrics.get(name)
            try:
                task_metrics = super().evaluate(data, ignore_keys, prefix)
            finally:
                self.compute_metrics = saved
            metrics.update(task_metrics)
            first = next(
                (key for key in task_metrics if key.startswith(prefix + "_") and _is_metric(key, prefix)), None
            )
            if first is not None:
                primary.append(task_metrics[first])
        if primary:
            average = {f"{metric_key_prefix}_average": sum(primary) / len(primary)}
            metrics.update(average)
            self.log(average)
        return metrics


def _multitask_model(model: Any) -> MultitaskModel | None:
    """``model`` itself, or the MultitaskModel it wraps (a PEFT or other wrapper), else ``None``."""
    if isinstance(model, MultitaskModel) or not isinstance(model, nn.Module):
        return model if isinstance(model, MultitaskModel) else None
    return next((module for module in model.modules() if isinstance(module, MultitaskModel)), None)


def _check_multitask_model(model: Any, *datasets: Any) -> None:
    """Refuse per-task datasets for a model with one head: every task would train that head
    (class ids of one task read as another's), with no error anywhere later."""
    if model is None or _multitask_model(model) is not None or not any(isinstance(d, Mapping) for d in datasets):
        return
    tasks = next(list(d) for d in datasets if isinstance(d, Mapping))
    raise InvalidConfigError(
        f"MultitaskTrainer got per-task datasets (tasks {tasks}) but model is a {type(model).__name__}, not a "
        f"MultitaskModel: it has one head, so every task would train that same head. Build one head per task with "
        f"MultitaskModel.from_encoder(path, tasks) (tasks = [hf_prune.tasks.get_task(name), ...]), or train one "
        f"task with a plain Trainer / PruningTrainer and a single dataset."
    )


def _is_metric(key: str, prefix: str) -> bool:
    """A metric key of compute_metrics (not the loss or the Trainer's speed figures)."""
    name = key[len(prefix) + 1 :]
    return name not in ("loss", "runtime", "samples_per_second", "steps_per_second", "model_preparation_time")


class MultitaskPruningTrainer(PruningTrainerMixin, MultitaskTrainer):
    """:class:`MultitaskTrainer` with pruning: ``pruning=`` as for :class:`~hf_prune.PruningTrainer`.

    Only the shared encoder is pruned (it is the multitask model's ``base_model``); the heads
    stay dense. ``save_pruned`` writes the shared model and one stock model per task (``tasks/``).

    Example:
        >>> [cls.__name__ for cls in MultitaskPruningTrainer.__mro__[:4]]
        ['MultitaskPruningTrainer', 'PruningTrainerMixin', 'MultitaskTrainer', 'Trainer']
    """
