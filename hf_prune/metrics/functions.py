"""The task metrics as plain NumPy functions of ``(predictions, references)``.

Classification metrics take class ids; regression metrics take real values. Each returns one
float and matches scikit-learn / SciPy (``accuracy_score``, ``f1_score`` binary and
``average="macro"``, ``matthews_corrcoef``, ``pearsonr``, ``spearmanr``) without needing them.

Example:
    >>> import numpy as np
    >>> macro_f1(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]))
    0.7777777777777777
    >>> spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 30.0, 20.0]))
    0.5
"""

from __future__ import annotations

import math

import numpy as np


def accuracy(predictions: np.ndarray, references: np.ndarray) -> float:
    """Share of predictions equal to the reference."""
    return float(np.mean(predictions == references))


def f1(predictions: np.ndarray, references: np.ndarray) -> float:
    """Binary F1 of the positive class (label 1), as GLUE reports it for MRPC and QQP; 0 when
    neither the predictions nor the references hold a positive."""
    return _f1_of_class(predictions, references, 1)


def macro_f1(predictions: np.ndarray, references: np.ndarray) -> float:
    """Unweighted mean of the per-class F1 over the classes seen in predictions or references."""
    classes = np.union1d(predictions, references)
    return float(np.mean([_f1_of_class(predictions, references, c) for c in classes]))


def _f1_of_class(predictions: np.ndarray, references: np.ndarray, positive: int) -> float:
    predicted, actual = predictions == positive, references == positive
    true_positives = int(np.sum(predicted & actual))
    denominator = int(np.sum(predicted)) + int(np.sum(actual))
    return 2.0 * true_positives / denominator if denominator else 0.0


def matthews_correlation(predictions: np.ndarray, references: np.ndarray) -> float:
    """Matthews correlation coefficient (multi-class form, as ``sklearn.metrics.matthews_corrcoef``);
    0 when predictions or references hold a single class."""
    classes, encoded = np.unique(np.concatenate([references, predictions]), return_inverse=True)
    truth, guess = encoded[: len(references)], encoded[len(references) :]
    confusion = np.zeros((len(classes), len(classes)), dtype=np.float64)
    np.add.at(confusion, (truth, guess), 1.0)
    true_sums, predicted_sums = confusion.sum(axis=1), confusion.sum(axis=0)
    total, correct = confusion.sum(), np.trace(confusion)
    covariance = correct * total - true_sums @ predicted_sums
    spread = (total**2 - predicted_sums @ predicted_sums) * (total**2 - true_sums @ true_sums)
    return float(covariance / math.sqrt(spread)) if spread else 0.0


def pearson(predictions: np.ndarray, references: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant (a correlation is undefined then)."""
    x = np.asarray(predictions, dtype=np.float64) - np.mean(predictions)
    y = np.asarray(references, dtype=np.float64) - np.mean(references)
    spread = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y / spread) if spread else float("nan")


def spearman(predictions: np.ndarray, references: np.ndarray) -> float:
    """Spearman rank correlation: Pearson of the ranks, ties given their average rank."""
    return pearson(_average_ranks(predictions), _average_ranks(references))


def mse(predictions: np.ndarray, references: np.ndarray) -> float:
    """Mean squared error (lower is better)."""
    difference = np.asarray(predictions, dtype=np.float64) - np.asarray(references, dtype=np.float64)
    return float(np.mean(difference**2))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (``scipy.stats.rankdata(method="average")``)."""
    values = np.asarray(values)
    order = np.argsort(values, kind="mergesort")
    inverse = np.empty(len(values), dtype=np.intp)
    inverse[order] = np.arange(len(values))
    ordered = values[order]
    starts = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    group = np.cumsum(starts)[inverse]
    bounds = np.concatenate([np.nonzero(starts)[0], [len(values)]])
    return 0.5 * (bounds[group] + bounds[group - 1] + 1)
