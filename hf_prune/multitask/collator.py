"""Collator for multitask batches: pads per batch and carries every row's task id.

Name the task id column ``task_ids`` in the training datasets. ``Trainer`` drops dataset columns
that the model's ``forward`` does not take (``remove_unused_columns``); the multitask model's
``forward`` takes ``task_ids``, so a column of that name survives, and any other spelling is
removed before it reaches this collator.

Example:
    >>> from transformers import AutoTokenizer
    >>> from hf_prune.multitask.collator import MultitaskCollator
    >>> from hf_prune.pretrained import resolve_model_path
    >>> tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("sentence-transformers/all-MiniLM-L6-v2"))
    >>> rows = [
    ...     {**tokenizer("a fine film"), "label": 1, "task_ids": 0},
    ...     {**tokenizer("how sad?", "very"), "label": 0.8, "task_ids": 1},
    ... ]
    >>> batch = MultitaskCollator(tokenizer, ["classification", "regression"])(rows)
    >>> sorted(batch)
    ['attention_mask', 'input_ids', 'labels', 'task_ids', 'token_type_ids']
    >>> batch["input_ids"].shape, batch["labels"].dtype, batch["task_ids"].tolist()
    (torch.Size([2, 7]), torch.float32, [0, 1])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import torch
from transformers.data.data_collator import pad_without_fast_tokenizer_warning

from ..errors import InvalidConfigError, MissingColumnError

TaskType = Literal["classification", "regression"]

TASK_ID_COLUMN = "task_ids"
# Accepted too, for datasets used with remove_unused_columns=False (Trainer would drop it otherwise).
_TASK_ID_ALIASES = (TASK_ID_COLUMN, "task_id")
_LABEL_KEYS = ("labels", "label")

__all__ = ["TASK_ID_COLUMN", "MultitaskCollator"]


class MultitaskCollator:
    """Turns rows of several tasks into one padded batch with ``task_ids`` and ``labels``.

    Rows hold tokenizer output (``input_ids``, ``attention_mask``, ``token_type_ids`` for a text
    pair, whatever the tokenizer gives), a ``task_ids`` int (the task's index in
    ``task_types``) and optionally ``label`` or ``labels``. One batch may mix tasks, single
    texts and text pairs.

    Args:
        tokenizer: The encoder's tokenizer; its ``pad`` pads each batch to its longest row.
        task_types: ``"classification"`` or ``"regression"`` for task id 0, 1, ...
        pad_to_multiple_of: Pad lengths to a multiple of this (e.g. 8 for tensor cores).

    Returns (from a call): ``dict`` of tensors. ``labels`` is float32 when any task is a
    regression (the model casts per task), int64 otherwise; ``task_ids`` is int64.

    Example:
        >>> from transformers import AutoTokenizer
        >>> from hf_prune.pretrained import resolve_model_path
        >>> tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("sentence-transformers/all-MiniLM-L6-v2"))
        >>> collate = MultitaskCollator(tokenizer, ["classification"], pad_to_multiple_of=8)
        >>> batch = collate([{**tokenizer("good"), "labels": 1, "task_ids": 0}])
        >>> batch["input_ids"].shape, batch["labels"].dtype
        (torch.Size([1, 8]), torch.int64)
        >>> collate([{**tokenizer("good"), "labels": 1}])
        Traceback (most recent call last):
        ...
        hf_prune.errors.MissingColumnError: Row 0 of the batch has no 'task_ids' (keys: ['attention_mask', 'input_ids', 'labels', 'token_type_ids']). Give every task's dataset a task id column named 'task_ids' before concatenating, e.g. dataset.add_column('task_ids', [task_index] * len(dataset)); with another name Trainer's remove_unused_columns drops it.
    """

    def __init__(self, tokenizer: Any, task_types: Sequence[str], *, pad_to_multiple_of: int | None = None) -> None:
        choices = get_args(TaskType)
        if isinstance(task_types, str) or not isinstance(task_types, Sequence) or len(task_types) == 0:
            raise InvalidConfigError(
                f"task_types={task_types!r} must be a non-empty list with one of {list(choices)} per task id, "
                "e.g. ['classification', 'regression']."
            )
        bad = [(i, t) for i, t in enumerate(task_types) if t not in choices]
        if bad:
            raise InvalidConfigError(
                f"task_types has invalid entries {bad} (task id, type); each must be one of {list(choices)}."
            )
        if pad_to_multiple_of is not None and (
            not isinstance(pad_to_multiple_of, int) or isinstance(pad_to_multiple_of, bool) or pad_to_multiple_of < 1
        ):
            raise InvalidConfigError(
                f"pad_to_multiple_of={pad_to_multiple_of!r} must be a whole number >= 1, or None for no rounding."
            )
        self.tokenizer = tokenizer
        self.task_types: tuple[str, ...] = tuple(task_types)
        self.pad_to_multiple_of = pad_to_multiple_of
        # One dtype for the whole batch, fixed per run (not per batch): a homogeneous batch of a
        # classification task must not come out int64 in one step and float32 in the next.
        self.label_dtype = torch.float32 if "regression" in self.task_types else torch.int64

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if len(features) == 0:
            raise InvalidConfigError("MultitaskCollator got an empty batch; the sampler must yield at least one row.")
        task_ids = [self._task_id(i, row) for i, row in enumerate(features)]
        labels = [self._label(row) for row in features]
        has_label = [label is not None for label in labels]
        if any(has_label) and not all(has_label):
            raise MissingColumnError(
                f"Rows {[i for i, flag in enumerate(has_label) if not flag]} of the batch have no 'label'/'labels' "
                "while others do; give every task's training dataset a label column."
            )
        inputs = self._aligned_inputs(
            [{k: v for k, v in row.items() if k not in _TASK_ID_ALIASES + _LABEL_KEYS} for row in features]
        )
        padded = pad_without_fast_tokenizer_warning(
            self.tokenizer, inputs, padding=True, pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt"
        )
        batch = dict(padded)
        batch[TASK_ID_COLUMN] = torch.tensor(task_ids, dtype=torch.int64)
        if all(has_label):
            batch["labels"] = torch.tensor(labels, dtype=self.label_dtype)
        return batch

    def _task_id(self, position: int, row: Mapping[str, Any]) -> int:
        key = next((k for k in _TASK_ID_ALIASES if k in row), None)
        if key is None:
            raise MissingColumnError(
                f"Row {position} of the batch has no {TASK_ID_COLUMN!r} (keys: {sorted(row)}). Give every task's "
                f"dataset a task id column named {TASK_ID_COLUMN!r} before concatenating, e.g. "
                f"dataset.add_column({TASK_ID_COLUMN!r}, [task_index] * len(dataset)); with another name Trainer's "
                "remove_unused_columns drops it."
            )
        value = row[key]
        task_id = int(value.item() if isinstance(value, torch.Tensor) else value)
        if not 0 <= task_id < len(self.task_types):
            raise InvalidConfigError(
                f"Row {position} has {key}={task_id}, but the collator knows {len(self.task_types)} task(s) "
                f"(task_types={list(self.task_types)}); task ids run 0..{len(self.task_types) - 1} in task order."
            )
        return task_id

    @staticmethod
    def _label(row: Mapping[str, Any]) -> Any:
        for key in _LABEL_KEYS:
            if key in row and row[key] is not None:
                value = row[key]
                return value.tolist() if isinstance(value, torch.Tensor) else value
        return None

    @staticmethod
    def _aligned_inputs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Give every row the same keys: datasets tokenized separately (one task's pairs with
        ``token_type_ids``, another's single texts without) meet in one mixed batch."""
        keys = set().union(*rows)
        missing = {key for key in keys if any(key not in row for row in rows)}
        if not missing:
            return rows
        if "input_ids" in missing:
            raise MissingColumnError("Some rows of the batch have no 'input_ids'; tokenize every task's dataset.")
        fill = {"token_type_ids": 0, "attention_mask": 1}  # single text = segment 0; every real token attended
        unknown = sorted(missing - set(fill))
        if unknown:
            raise MissingColumnError(
                f"Column(s) {unknown} are in some rows of the batch but not in others; give every task's dataset "
                "the same columns, or remove these before training."
            )
        return [{**{k: [fill[k]] * len(row["input_ids"]) for k in missing if k not in row}, **row} for row in rows]
