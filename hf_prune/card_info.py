"""What a model card needs that the export does not record: :class:`CardInfo` and :class:`TaskResult`.

These are the user-facing inputs of :func:`hf_prune.cards.write_card` (re-exported from
:mod:`hf_prune.cards`, where they are usually imported from). Both check their fields when
built, so a typo or a missing value fails where it is made, not when the card is rendered:
:class:`MissingCardFieldError` names a required field that is missing, :class:`InvalidConfigError`
a value of the wrong kind. Every :class:`CardInfo` field is optional; the card shows a visible
default (``unknown``, ``not recorded``) for whatever neither it nor the export gives.

Example:
    >>> info = CardInfo(base_model="sentence-transformers/all-MiniLM-L6-v2", language="en",
    ...     eval_results=[{"task": "movie_sentiment", "dataset_type": "vader_movie_reviews",
    ...                    "metric_type": "accuracy", "value": 0.79, "num_examples": 2015}])
    >>> info.language, info.eval_results[0].value, round(info.eval_results[0].standard_error(), 4)
    ('en', 0.79, 0.0091)
    >>> check_mixture({"sst2": 2, "qnli": 1}, "task_mixture")
    {'sst2': 2.0, 'qnli': 1.0}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import InvalidConfigError

__all__ = ["CardInfo", "MissingCardFieldError", "TaskResult", "check_mixture"]


class MissingCardFieldError(InvalidConfigError):
    """A field the card (or its template) needs is missing; ``field`` names it.

    Example:
        >>> try:
        ...     TaskResult(task="sst2", dataset_type="sst2", metric_type="accuracy")
        ... except MissingCardFieldError as err:
        ...     err.field
        'value'
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class TaskResult:
    """One evaluation result: a metric of the pruned model on one task's dataset split.

    Becomes one ``huggingface_hub.EvalResult`` in the card's ``model-index`` and one row of its
    results table. Required: ``task``, ``dataset_type``, ``metric_type``, ``value``.

    Args:
        task: The task's name (hf_prune's task name, e.g. ``movie_sentiment``); the Hub's task name.
        dataset_type: The dataset id (a Hub dataset id where there is one).
        metric_type: The metric id (``accuracy``, ``f1``, ...).
        value: The metric's value on the exported model.
        task_type: The Hub task type.
        dataset_name: A readable dataset name (default: ``dataset_type``).
        dataset_split: The split evaluated.
        dataset_config: The dataset configuration, if any.
        metric_name: A readable metric name (default: "<split> <metric_type>").
        stderr: Standard error of ``value``; for accuracy it defaults to the binomial
            ``sqrt(p (1 - p) / n)`` when ``num_examples`` is given.
        num_examples: Number of evaluated examples.
        dense_value: The same metric of the dense (unpruned) model trained the same way.

    Example:
        >>> TaskResult(task="movie_sentiment", dataset_type="vader_movie_reviews", metric_type="accuracy",
        ...            value=0.8, num_examples=2000).standard_error()
        0.008944271909999158
    """

    task: str | None = None
    dataset_type: str | None = None
    metric_type: str | None = None
    value: float | None = None
    task_type: str = "text-classification"
    dataset_name: str | None = None
    dataset_split: str = "test"
    dataset_config: str | None = None
    metric_name: str | None = None
    stderr: float | None = None
    num_examples: int | None = None
    dense_value: float | None = None

    def __post_init__(self) -> None:
        for name in ("task", "dataset_type", "metric_type", "value"):
            if getattr(self, name) is None:
                raise MissingCardFieldError(
                    name, f"TaskResult needs {name}=...; required: task, dataset_type, metric_type and value."
                )
        for name in ("task", "dataset_type", "metric_type", "task_type", "dataset_split"):
            _check_text(f"TaskResult.{name}", getattr(self, name), required=True)
        for name in ("dataset_name", "dataset_config", "metric_name"):
            _check_text(f"TaskResult.{name}", getattr(self, name), required=False)
        self.value = _check_number("TaskResult.value", self.value)
        self.stderr = None if self.stderr is None else _check_number("TaskResult.stderr", self.stderr, minimum=0.0)
        if self.dense_value is not None:
            self.dense_value = _check_number("TaskResult.dense_value", self.dense_value)
        if self.num_examples is not None and (
            isinstance(self.num_examples, bool) or not isinstance(self.num_examples, int) or self.num_examples < 1
        ):
            raise InvalidConfigError(f"TaskResult.num_examples={self.num_examples!r}: give a positive int or None.")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskResult:
        """Build from a mapping (a recipe's YAML, a JSON file); unknown keys are refused by name.

        Example:
            >>> TaskResult.from_dict({"task": "t", "dataset_type": "d", "metric_type": "accuracy", "value": 1}).value
            1.0
        """
        if not isinstance(data, Mapping):
            raise InvalidConfigError(f"An eval result must be a TaskResult or a mapping, got {data!r}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise InvalidConfigError(f"Unknown eval result field(s) {unknown}; the fields are {sorted(known)}.")
        return cls(**dict(data))

    def standard_error(self) -> float | None:
        """``stderr``, else the binomial standard error of an accuracy over ``num_examples``, else ``None``."""
        if self.stderr is not None:
            return self.stderr
        value = float(self.value or 0.0)
        if self.metric_type == "accuracy" and self.num_examples and 0.0 <= value <= 1.0:
            return math.sqrt(value * (1.0 - value) / self.num_examples)
        return None


@dataclass
class CardInfo:
    """What the card needs that the export folder does not record. Every field is optional.

    Args:
        base_model: Hub id of the pretrained model (default: the one the export records).
        base_model_revision: Its revision (default: the one the export records).
        license: The license id (default: the base model's, where known; else ``other``).
        datasets: Training dataset ids (default: the datasets of ``eval_results``).
        language: Language code(s) (default: the base model's, where known).
        pipeline_tag: The Hub pipeline (default: from the architecture, e.g. ``text-classification``
            for ``*ForSequenceClassification``, ``feature-extraction`` for a bare encoder).
        model_name: The card's title and ``model-index`` name (default: the repo's name).
        repo_id: Where the model is (or will be) published, for the loading code.
        eval_results: Per-task results (:class:`TaskResult` or mappings of its fields).
        task_mixture: ``{task: sampling weight}`` of a multitask run (weights need not sum to 1).
        mixture_sampling: How the mixture was sampled (e.g. "temperature T=2, task-homogeneous batches").
        tags: Extra Hub tags.
        notes: Free text for the card's notes section (markdown).

    Example:
        >>> CardInfo(task_mixture={"sst2": 2, "qnli": 1}).task_mixture
        {'sst2': 2.0, 'qnli': 1.0}
    """

    base_model: str | None = None
    base_model_revision: str | None = None
    license: str | None = None
    datasets: list[str] | None = None
    language: str | list[str] | None = None
    pipeline_tag: str | None = None
    model_name: str | None = None
    repo_id: str | None = None
    eval_results: list[TaskResult] = field(default_factory=list)
    task_mixture: dict[str, float] | None = None
    mixture_sampling: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: str | None = None

    def __post_init__(self) -> None:
        for name in ("base_model", "base_model_revision", "license", "pipeline_tag", "model_name", "repo_id"):
            _check_text(f"CardInfo.{name}", getattr(self, name), required=False)
        _check_text("CardInfo.mixture_sampling", self.mixture_sampling, required=False)
        _check_text("CardInfo.notes", self.notes, required=False)
        self.datasets = _text_list("CardInfo.datasets", self.datasets)
        language = _text_list("CardInfo.language", self.language)
        self.language = language[0] if language and len(language) == 1 else language
        self.tags = _text_list("CardInfo.tags", self.tags) or []
        if not isinstance(self.eval_results, (list, tuple)):
            raise InvalidConfigError(f"CardInfo.eval_results={self.eval_results!r}: give a list of TaskResult.")
        self.eval_results = [r if isinstance(r, TaskResult) else TaskResult.from_dict(r) for r in self.eval_results]
        if self.task_mixture is not None:
            self.task_mixture = check_mixture(self.task_mixture, "CardInfo.task_mixture")
        if self.repo_id is not None:
            from huggingface_hub.errors import HFValidationError
            from huggingface_hub.utils import validate_repo_id

            try:
                validate_repo_id(self.repo_id)
            except HFValidationError as err:
                raise InvalidConfigError(f"CardInfo.repo_id={self.repo_id!r} is not a Hub repo id: {err}") from None

    def for_task(self, task: str) -> CardInfo:
        """The card of one task's model cut from a multitask export: only ``task``'s results, and
        a model name that says which task it is. The repo id stays the multitask export's: the
        task's model is its folder ``tasks/<task>`` there, and its card loads it with
        ``subfolder=``; the card also says which multitask export it belongs to (read from the
        export itself, see :mod:`hf_prune.card_multitask`).

        Example:
            >>> info = CardInfo(model_name="minilm-mix", task_mixture={"a": 1, "b": 1}, eval_results=[
            ...     TaskResult(task="a", dataset_type="d", metric_type="accuracy", value=0.9),
            ...     TaskResult(task="b", dataset_type="e", metric_type="accuracy", value=0.8)])
            >>> one = info.for_task("b")
            >>> one.model_name, [r.value for r in one.eval_results], one.task_mixture
            ('minilm-mix (task b)', [0.8], None)
        """
        return dataclasses.replace(
            self,
            model_name=f"{self.model_name} (task {task})" if self.model_name else None,
            eval_results=[result for result in self.eval_results if result.task == task],
            datasets=None,
            task_mixture=None,
            mixture_sampling=None,
        )


def check_mixture(mixture: Any, where: str) -> dict[str, float]:
    """``{task: weight}`` with float weights, after checking it is a non-empty mapping of weights >= 0.

    Example:
        >>> check_mixture({"a": 1}, "mixture")
        {'a': 1.0}
    """
    if not isinstance(mixture, Mapping) or not mixture:
        raise InvalidConfigError(f"{where}={mixture!r}: give a non-empty mapping {{task name: sampling weight}}.")
    checked = {}
    for task, weight in mixture.items():
        _check_text(f"{where} task name", task, required=True)
        checked[task] = _check_number(f"{where}[{task!r}]", weight, minimum=0.0)
    if sum(checked.values()) <= 0:
        raise InvalidConfigError(f"{where}={mixture!r}: at least one weight must be positive.")
    return checked


# --- validation helpers --------------------------------------------------------------------------


def _check_text(where: str, value: Any, *, required: bool) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        raise InvalidConfigError(f"{where}={value!r}: give a non-empty string{'' if required else ' or None'}.")


def _check_number(where: str, value: Any, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise InvalidConfigError(f"{where}={value!r}: give a finite number.")
    if minimum is not None and value < minimum:
        raise InvalidConfigError(f"{where}={value!r}: must be >= {minimum}.")
    return float(value)


def _text_list(where: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise InvalidConfigError(f"{where}={value!r}: give a string or a list of strings.")
    for item in items:
        _check_text(where, item, required=True)
    return list(items)
