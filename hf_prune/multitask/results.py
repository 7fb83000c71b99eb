"""What a multitask recipe reports: the per-task table and the model card's results.

Example:
    >>> results = {
    ...     "tasks": ["movie_sentiment", "bbc_topic"],
    ...     "primary_metrics": {"movie_sentiment": "accuracy", "bbc_topic": "accuracy"},
    ...     "dense": {"metrics": {"test_movie_sentiment_accuracy": 0.87, "test_bbc_topic_accuracy": 0.96,
    ...                           "test_average": 0.915}, "parameters": {"total": 100, "nonzero": 100}},
    ...     "pruned": {"method": "rpp", "target_sparsity": 0.8, "saved_sparsity": 0.8, "saved_model_sparsity": 0.6,
    ...                "parameters": {"total": 100, "nonzero": 40}, "weight_bytes": 400,
    ...                "metrics": {"test_movie_sentiment_accuracy": 0.84, "test_bbc_topic_accuracy": 0.95,
    ...                            "test_average": 0.895}}}
    >>> print(format_mixture_results(results))
    | model | movie_sentiment accuracy | bbc_topic accuracy | average | sparsity (encoder Linear, from file) | parameters | non-zero | bytes |
    |---|---|---|---|---|---|---|---|
    | dense multitask | 0.8700 | 0.9600 | 0.9150 | 0 | 100 | 100 | - |
    | rpp @ 0.8 multitask | 0.8400 | 0.9500 | 0.8950 | 0.8000 | 100 | 40 | 400 |
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .run import TEST_PREFIX


def primary_metrics(tasks: Sequence[Any]) -> dict[str, str]:
    """``{task name: its first metric}``: the metric each task is averaged and ranked by."""
    return {task.name: task.metric_names[0] for task in tasks}


def format_mixture_results(results: Mapping[str, Any]) -> str:
    """A markdown table of a multitask recipe's results: one column per task (its primary test
    metric), the average, and sparsity, parameters and bytes read from the saved file."""
    tasks = list(results["tasks"])
    metrics = results["primary_metrics"]
    columns = [f"{task} {metrics[task]}" for task in tasks]
    header = ["model", *columns, "average", "sparsity (encoder Linear, from file)", "parameters", "non-zero", "bytes"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def scores(values: Mapping[str, float]) -> list[str]:
        cells = [_number(values.get(f"{TEST_PREFIX}_{task}_{metrics[task]}")) for task in tasks]
        return [*cells, _number(values.get(f"{TEST_PREFIX}_average"))]

    dense = results.get("dense")
    if dense:
        label = "dense multitask"
        if dense.get("cached"):
            label += f" (cached: {os.path.relpath(dense['source'])})"
        params = dense["parameters"]
        rows.append(
            "| "
            + " | ".join([label, *scores(dense["metrics"]), "0", f"{params['total']:,}", f"{params['nonzero']:,}", "-"])
            + " |"
        )
    pruned = results["pruned"]
    params = pruned["parameters"]
    cells = [
        f"{pruned['method']} @ {pruned['target_sparsity']} multitask",
        *scores(pruned["metrics"]),
        f"{pruned['saved_sparsity']:.4f}",
        f"{params['total']:,}",
        f"{params['nonzero']:,}",
        f"{pruned['weight_bytes']:,}",
    ]
    rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def format_task_exports(output_dir: str, tasks: Mapping[str, Mapping[str, Any]]) -> str:
    """Lines naming each task's own export (sparsity read from its file), for the end of a run."""
    lines = []
    for name, info in tasks.items():
        lines.append(
            f"  {name}: {os.path.join(output_dir, info['folder'])} (sparsity {info['saved_sparsity']:.4f}, "
            f"{info['parameters']['total']:,} parameters, {info['bytes_after']:,} bytes)"
        )
    return "\n".join(lines)


def mixture_card_results(
    tasks: Sequence[Any], metrics: Mapping[str, float], dense: Mapping[str, float] | None, test_sizes: Mapping[str, int]
) -> list[Any]:
    """One :class:`~hf_prune.cards.TaskResult` per task and metric (test split), with the dense
    multitask model's value beside it where known."""
    from ..cards import TaskResult

    results = []
    for task in tasks:
        for metric in task.metric_names:
            key = f"{TEST_PREFIX}_{task.name}_{metric}"
            if key not in metrics:
                continue
            dense_value = (dense or {}).get(key)
            results.append(
                TaskResult(
                    task=task.name,
                    dataset_type=task.source,
                    dataset_name=task.description,
                    metric_type=metric,
                    value=float(metrics[key]),
                    num_examples=test_sizes.get(task.name),
                    dense_value=float(dense_value) if isinstance(dense_value, (int, float)) else None,
                    task_type="text-classification",
                )
            )
    return results


def describe_mixture(mixture: Any) -> str:
    """A readable line on how a :class:`~hf_prune.multitask.TaskMixture` samples tasks.

    Example:
        >>> from hf_prune.multitask import TaskMixture
        >>> describe_mixture(TaskMixture(sampling="temperature", temperature=2.0, size_cap=10000))
        'temperature sampling (p_i ~ min(n_i, 10000)^(1/2)), task-homogeneous batches'
    """
    cap = f"min(n_i, {mixture.size_cap})" if mixture.size_cap else "n_i"
    if mixture.weights:
        how = "fixed weights " + ", ".join(f"{task} {weight:g}" for task, weight in mixture.weights.items())
    elif mixture.sampling == "temperature":
        how = f"temperature sampling (p_i ~ {cap}^(1/{mixture.temperature:g}))"
    elif mixture.sampling == "proportional":
        how = f"proportional sampling (p_i ~ {cap})"
    else:
        how = "uniform sampling"
    batches = "task-homogeneous batches" if mixture.batches == "homogeneous" else "mixed batches"
    return f"{how}, {batches}"


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"
