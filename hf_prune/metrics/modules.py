"""The registered metrics as ``evaluate.Metric`` subclasses, usable without the Hub.

Example:
    >>> scores = Pearson(keep_in_memory=True).compute(predictions=[1.0, 2.0, 3.0], references=[2.0, 4.0, 7.0])
    >>> round(scores["pearson"], 4)
    0.9934
"""

from __future__ import annotations

from typing import Any, ClassVar

import evaluate
import numpy as np
from datasets import Features, Value

from ..errors import InvalidConfigError
from . import METRICS, metric_names


class LocalMetric(evaluate.Metric):
    """An ``evaluate.Metric`` computing one registered metric (subclasses set ``metric_name``)."""

    metric_name: ClassVar[str]

    def _info(self) -> Any:
        spec = METRICS[self.metric_name]
        dtype = "int64" if spec.task_type == "classification" else "float64"
        return evaluate.MetricInfo(
            description=f"{spec.name}: {spec.description} (hf_prune, computed locally).",
            citation="",
            features=Features({"predictions": Value(dtype), "references": Value(dtype)}),
        )

    def _compute(self, predictions: Any = None, references: Any = None, **kwargs: Any) -> dict[str, float]:
        function = METRICS[self.metric_name].function
        return {self.metric_name: function(np.asarray(predictions), np.asarray(references))}


class Accuracy(LocalMetric):
    metric_name = "accuracy"


class F1(LocalMetric):
    metric_name = "f1"


class MacroF1(LocalMetric):
    metric_name = "macro_f1"


class MatthewsCorrelation(LocalMetric):
    metric_name = "matthews_correlation"


class Pearson(LocalMetric):
    metric_name = "pearson"


class Spearman(LocalMetric):
    metric_name = "spearman"


class MeanSquaredError(LocalMetric):
    metric_name = "mse"


_CLASSES: dict[str, type[LocalMetric]] = {
    cls.metric_name: cls for cls in (Accuracy, F1, MacroF1, MatthewsCorrelation, Pearson, Spearman, MeanSquaredError)
}


def metric_class(name: str) -> type[LocalMetric]:
    """The ``evaluate.Metric`` subclass of a registered metric."""
    if name not in _CLASSES:
        raise InvalidConfigError(f"Unknown metric {name!r}; choose from {metric_names()}.")
    return _CLASSES[name]
