"""Task metrics, computed locally: ``evaluate.load("accuracy")`` needs the Hub for its script.

Each metric is a NumPy function (:mod:`.functions`) registered here with the task type it fits;
:func:`load_metric` wraps one as an ``evaluate.Metric`` for code that wants evaluate's API
(``add_batch`` / ``compute``, ``evaluate.combine``). A task's ``compute_metrics`` calls the
functions directly: the Trainer has already gathered the predictions of every process, and
evaluate's per-call cache files and locks would add nothing there.

Example:
    >>> import numpy as np
    >>> from transformers import EvalPrediction
    >>> compute_accuracy(EvalPrediction(predictions=np.array([[0.1, 0.9], [0.8, 0.2]]), label_ids=np.array([1, 1])))
    {'accuracy': 0.5}
    >>> scores = compute_metrics(["pearson", "spearman"], np.array([0.1, 0.5, 0.9]), np.array([1.0, 2.0, 4.0]))
    >>> {name: round(value, 4) for name, value in scores.items()}
    {'pearson': 0.982, 'spearman': 1.0}
    >>> check_metric_names(["accuracy"], "regression", task="movie_intensity")
    Traceback (most recent call last):
    ...
    hf_prune.errors.InvalidConfigError: Task 'movie_intensity': metric 'accuracy' is a classification metric but the task is a regression task; choose from ['mse', 'pearson', 'spearman'].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import InvalidConfigError
from . import functions

if TYPE_CHECKING:
    from transformers import EvalPrediction

TaskType = Literal["classification", "regression"]


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: its name, the task type it fits, and the function computing it."""

    name: str
    task_type: TaskType
    function: Callable[[np.ndarray, np.ndarray], float]
    description: str


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("accuracy", "classification", functions.accuracy, "share of correct class predictions"),
        MetricSpec("f1", "classification", functions.f1, "F1 of the positive class (label 1), binary tasks"),
        MetricSpec("macro_f1", "classification", functions.macro_f1, "mean of the per-class F1"),
        MetricSpec("matthews_correlation", "classification", functions.matthews_correlation, "Matthews correlation"),
        MetricSpec("pearson", "regression", functions.pearson, "Pearson correlation"),
        MetricSpec("spearman", "regression", functions.spearman, "Spearman rank correlation"),
        MetricSpec("mse", "regression", functions.mse, "mean squared error (lower is better)"),
    )
}

DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy",),
    "regression": ("pearson", "spearman"),
}


def metric_names(task_type: TaskType | None = None) -> list[str]:
    """The registered metric names, all or those fitting ``task_type``."""
    return sorted(name for name, spec in METRICS.items() if task_type in (None, spec.task_type))


def check_metric_names(
    names: Sequence[str], task_type: TaskType, *, task: str, num_labels: int | None = None
) -> tuple[str, ...]:
    """``names`` as a tuple, after checking each exists and fits the task.

    Raises:
        InvalidConfigError: an unknown metric, one of the other task type, a repeated one,
            ``f1`` on a task with other than 2 classes, or no metric at all.
    """
    if isinstance(names, str):  # a lone name is a common slip for a list of one
        names = [names]
    names = tuple(names)
    choices = metric_names(task_type)
    if not names:
        raise InvalidConfigError(f"Task {task!r}: no metric given; choose from {choices}.")
    for name in names:
        if name not in METRICS:
            raise InvalidConfigError(f"Task {task!r}: unknown metric {name!r}; choose from {choices}.")
        kind = METRICS[name].task_type
        if kind != task_type:
            raise InvalidConfigError(
                f"Task {task!r}: metric {name!r} is a {kind} metric but the task is a {task_type} task; "
                f"choose from {choices}."
            )
    if len(set(names)) != len(names):
        raise InvalidConfigError(f"Task {task!r}: metrics {list(names)} name one metric twice; list each once.")
    if "f1" in names and num_labels is not None and num_labels != 2:
        raise InvalidConfigError(
            f"Task {task!r}: metric 'f1' is the F1 of the positive class of a binary task, but the task has "
            f"{num_labels} classes; use 'macro_f1'."
        )
    return names


def compute_metrics(names: Sequence[str], predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
    """``{name: value}`` for each metric in ``names`` (class ids, or real values for regression)."""
    return {name: METRICS[name].function(predictions, references) for name in names}


def compute_accuracy(prediction: EvalPrediction) -> dict[str, float]:
    """Accuracy of arg-max logits, for ``Trainer(compute_metrics=...)``."""
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return {"accuracy": float((np.argmax(logits, axis=-1) == prediction.label_ids).mean())}


def load_metric(name: str, **kwargs: Any) -> Any:
    """The metric ``name`` as an ``evaluate.Metric`` (no Hub needed); ``kwargs`` go to its constructor.

    Example:
        >>> metric = load_metric("macro_f1", keep_in_memory=True)
        >>> metric.compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2])
        {'macro_f1': 0.7777777777777777}
    """
    from .modules import metric_class  # imports evaluate, which takes seconds: only when asked

    return metric_class(name)(**kwargs)


__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "MetricSpec",
    "check_metric_names",
    "compute_accuracy",
    "compute_metrics",
    "load_metric",
    "metric_names",
]
