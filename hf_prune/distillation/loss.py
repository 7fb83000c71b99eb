"""The distillation loss as pure tensor functions, one value per row.

Rows are summed by the caller and divided by the accumulated batch's labelled-row count, which is
how the Trainer normalises a loss under gradient accumulation (``num_items_in_batch``).

Example:
    >>> import torch
    >>> student = torch.tensor([[2.0, 0.0]]); teacher = torch.tensor([[0.0, 2.0]]); labels = torch.tensor([0])
    >>> rows = classification_rows(student, teacher, labels, alpha=0.5, temperature=1.0)
    >>> [round(v, 4) for v in rows.task.tolist()], [round(v, 4) for v in rows.distill.tolist()]
    ([0.1269], [1.5232])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


@dataclass
class RowLosses:
    """Per-row loss terms of a batch (each a 1-D tensor with one value per row).

    ``total`` is what is summed into the training loss; ``task`` and ``distill`` are the
    unweighted terms, for the logs.
    """

    total: torch.Tensor
    task: torch.Tensor
    distill: torch.Tensor


def classification_rows(
    student: torch.Tensor,
    teacher: torch.Tensor | None,
    labels: torch.Tensor | None,
    *,
    alpha: float,
    temperature: float,
    label_smoothing: float = 0.0,
) -> RowLosses:
    """``(1 - alpha) * CE(student, label) + alpha * T^2 * KL(p_teacher^T || p_student^T)`` per row.

    ``student`` / ``teacher`` are ``(rows, classes)`` logits (``teacher=None``: the task term
    only, as in evaluation); labels equal to -100 give a zero task term. Computed in float32.
    """
    student = student.float()
    task = _zeros(student) if labels is None else _cross_entropy_rows(student, labels, label_smoothing)
    if teacher is None:
        return RowLosses(task, task, _zeros(student))
    log_p_student = F.log_softmax(student / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher.float() / temperature, dim=-1)
    distill = F.kl_div(log_p_student, log_p_teacher, reduction="none", log_target=True).sum(dim=-1)
    distill = distill * temperature**2
    return RowLosses((1 - alpha) * task + alpha * distill, task, distill)


def regression_rows(
    student: torch.Tensor, teacher: torch.Tensor | None, labels: torch.Tensor | None, *, alpha: float
) -> RowLosses:
    """``(1 - alpha) * (student - label)^2 + alpha * (student - teacher)^2`` per row (one output)."""
    student = student.float().reshape(len(student), -1)[:, 0]
    task = _zeros(student) if labels is None else (student - labels.float().reshape(-1)) ** 2
    if teacher is None:
        return RowLosses(task, task, _zeros(student))
    distill = (student - teacher.float().reshape(len(teacher), -1)[:, 0]) ** 2
    return RowLosses((1 - alpha) * task + alpha * distill, task, distill)


def hidden_rows(
    student: Sequence[torch.Tensor],
    teacher: Sequence[torch.Tensor],
    layers: Sequence[int],
    attention_mask: torch.Tensor | None,
) -> torch.Tensor:
    """Mean over ``layers`` of each row's mean squared hidden-state difference over its attended
    tokens and the hidden size: one value per row.

    Example:
        >>> s = [torch.ones(1, 2, 4)]; t = [torch.zeros(1, 2, 4)]
        >>> hidden_rows(s, t, [0], torch.tensor([[1, 0]])).tolist()
        [1.0]
    """
    per_layer = []
    for index in layers:
        difference = (student[index].float() - teacher[index].float()) ** 2  # (rows, tokens, hidden)
        per_token = difference.mean(dim=-1)
        if attention_mask is None:
            per_layer.append(per_token.mean(dim=-1))
        else:
            mask = attention_mask.to(per_token.dtype)
            per_layer.append((per_token * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1))
    return torch.stack(per_layer).mean(dim=0)


def _cross_entropy_rows(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    return F.cross_entropy(
        logits,
        labels.long().reshape(-1),
        reduction="none",
        ignore_index=IGNORE_INDEX,
        label_smoothing=label_smoothing,
    )


def _zeros(like: torch.Tensor) -> torch.Tensor:
    return like.new_zeros(len(like))
