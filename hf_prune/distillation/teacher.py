"""The teacher: loading it, checking it fits the student, running it, caching its logits.

Example:
    >>> from transformers import BertConfig, BertForSequenceClassification
    >>> config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
    ...                     intermediate_size=32, num_labels=2)
    >>> student, teacher = BertForSequenceClassification(config), BertForSequenceClassification(config)
    >>> spec = check_teacher_fits(teacher, student, hidden_layers="auto", hidden=True)
    >>> spec.layers, spec.heads
    ([0, 1, 2], [('classification', 2)])
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ..errors import InvalidConfigError, TeacherMismatchError

logger = logging.getLogger(__name__)

TaskKind = Literal["classification", "regression"]
# Keys of the student's forward call that are not model inputs, so the teacher does not get them.
_SHAPE = ("num_hidden_layers", "hidden_size")
_NOT_INPUTS = {"labels", "num_items_in_batch", "output_hidden_states", "output_attentions", "return_dict", "use_cache"}


@dataclass
class TeacherSpec:
    """What the loss needs to know about a checked student/teacher pair.

    ``heads``: ``(kind, num_labels)`` per task id (one entry for a single-task model);
    ``multitask``: rows carry ``task_ids``; ``layers``: hidden-state indices to match (``[]``: none).
    """

    heads: list[tuple[TaskKind, int]]
    multitask: bool
    layers: list[int]


def load_teacher(source: str, student: nn.Module) -> nn.Module:
    """The teacher at ``source`` (a folder, an hf_prune export, or a Hub id), as the kind of model
    the student is: a :class:`~hf_prune.multitask.MultitaskModel` for a multitask student, else
    the sequence-classification class its config names."""
    from ..export import load_pruned
    from ..multitask import MultitaskModel
    from ..pretrained import resolve_model_path

    model_class = MultitaskModel if isinstance(student, MultitaskModel) else None
    try:
        teacher = load_pruned(resolve_model_path(source), model_class=model_class)
    except (OSError, ValueError) as err:
        raise InvalidConfigError(
            f"DistillationConfig.teacher={source!r} could not be loaded as a teacher ({err}); give a folder written by "
            f"save_pretrained / save_pruned (or a Hub id) of a fine-tuned "
            f"{'MultitaskModel' if model_class else 'sequence-classification model'}, or pass the loaded model."
        ) from None
    logger.info("Loaded the distillation teacher %s (%s)", source, type(teacher).__name__)
    return teacher


def check_teacher_fits(
    teacher: nn.Module, student: nn.Module, *, hidden_layers: Literal["auto"] | list[int], hidden: bool
) -> TeacherSpec:
    """Refuse a teacher that cannot teach ``student``, naming both sides; returns the pair's spec.

    Checked: not the student itself (nor sharing a tensor with it); the same tasks and class counts
    (multitask: the same task names, types and class counts per head); the same vocabulary size;
    with hidden-state matching, the same hidden size, and the same layer count (``"auto"``) or
    layer indices both have.
    """
    _check_separate(teacher, student)
    spec = TeacherSpec(heads=_heads(student, "student"), multitask=_is_multitask(student), layers=[])
    _check_heads(teacher, student, spec)
    student_config, teacher_config = getattr(student, "config", None), getattr(teacher, "config", None)
    vocab = (getattr(student_config, "vocab_size", None), getattr(teacher_config, "vocab_size", None))
    if None not in vocab and vocab[0] != vocab[1]:
        raise TeacherMismatchError(
            f"The teacher's vocabulary has {vocab[1]} tokens and the student's {vocab[0]}: the teacher reads the "
            f"student's token ids, so both need the same tokenizer; use a teacher fine-tuned from the same "
            f"pretrained model."
        )
    if hidden:
        spec.layers = _hidden_layers(student_config, teacher_config, hidden_layers)
        for name, model in (("student", student), ("teacher", teacher)):
            if not _takes_output_hidden_states(model):
                raise TeacherMismatchError(
                    f"Hidden-state matching needs the {name}'s forward to take output_hidden_states; "
                    f"{type(model).__name__}.forward does not. Set hidden_weight=0."
                )
    return spec


def _check_separate(teacher: nn.Module, student: nn.Module) -> None:
    if teacher is student:
        raise TeacherMismatchError(
            "The teacher is the student model itself; load the dense fine-tuned teacher separately "
            "(e.g. AutoModelForSequenceClassification.from_pretrained(teacher_folder))."
        )
    student_storage = {p.untyped_storage().data_ptr() for p in student.parameters()}
    shared = [name for name, p in teacher.named_parameters() if p.untyped_storage().data_ptr() in student_storage]
    if shared:
        raise TeacherMismatchError(
            f"The teacher shares {len(shared)} tensors with the student (e.g. {shared[0]!r}), so pruning the student "
            f"would prune the teacher too; give the teacher its own copy (copy.deepcopy(model) or load it again)."
        )


def _is_multitask(model: nn.Module) -> bool:
    from ..multitask import MultitaskModel

    return isinstance(model, MultitaskModel)


def _heads(model: nn.Module, role: str) -> list[tuple[TaskKind, int]]:
    """``(kind, num_labels)`` per task id of ``model``."""
    from ..multitask import MultitaskModel

    if isinstance(model, MultitaskModel):
        return [(head.task_type, head.num_labels) for head in model.heads_spec]
    config = getattr(model, "config", None)
    num_labels = getattr(config, "num_labels", None)
    if not isinstance(num_labels, int):
        return []  # unknown: the first batch's logits are compared instead
    if getattr(config, "problem_type", None) == "multi_label_classification":
        raise InvalidConfigError(
            f"The {role} is a multi-label classifier (problem_type='multi_label_classification'); distillation "
            f"supports single-label classification and regression heads."
        )
    return [("regression" if num_labels == 1 else "classification", num_labels)]


def _check_heads(teacher: nn.Module, student: nn.Module, spec: TeacherSpec) -> None:
    if spec.multitask:
        if not _is_multitask(teacher):
            raise TeacherMismatchError(
                f"The student is a MultitaskModel with tasks {getattr(student, 'task_names', '?')} but the teacher is "
                f"a {type(teacher).__name__}; each task is distilled from its own head, so give a dense MultitaskModel "
                f"fine-tuned on the same tasks."
            )
        ours = [(head.name, head.task_type, head.num_labels) for head in getattr(student, "heads_spec", [])]
        theirs = [(head.name, head.task_type, head.num_labels) for head in getattr(teacher, "heads_spec", [])]
        if ours != theirs:
            raise TeacherMismatchError(
                f"The teacher's task heads (name, type, classes) {theirs} differ from the student's {ours}; give a "
                f"teacher fine-tuned on the same tasks, in the same order."
            )
        return
    teacher_heads = _heads(teacher, "teacher")
    if spec.heads and teacher_heads and spec.heads != teacher_heads:
        raise TeacherMismatchError(
            f"The teacher's head has num_labels={teacher_heads[0][1]} and the student's num_labels={spec.heads[0][1]}; "
            f"distillation compares the two outputs class by class, so give a teacher fine-tuned on the same task "
            f"(the same classes, in the same order)."
        )


def _hidden_layers(student_config: Any, teacher_config: Any, wanted: Literal["auto"] | list[int]) -> list[int]:
    found = [getattr(config, name, None) for config in (student_config, teacher_config) for name in _SHAPE]
    numbers = [value for value in found if isinstance(value, int)]
    if len(numbers) != len(found):
        raise TeacherMismatchError(
            f"Hidden-state matching needs num_hidden_layers and hidden_size in both configs; the student has "
            f"{found[0]} layers of size {found[1]}, the teacher {found[2]} of size {found[3]}. Set hidden_weight=0."
        )
    counts, sizes = (numbers[0], numbers[2]), (numbers[1], numbers[3])
    if sizes[0] != sizes[1]:
        raise TeacherMismatchError(
            f"Hidden-state matching compares hidden states element by element, but the student's hidden_size is "
            f"{sizes[0]} and the teacher's {sizes[1]}; use a teacher of the same width, or hidden_weight=0."
        )
    if wanted == "auto":
        if counts[0] != counts[1]:
            raise TeacherMismatchError(
                f"hidden_layers='auto' matches every layer, but the student has {counts[0]} layers and the teacher "
                f"{counts[1]}; list the hidden-state indices to match (hidden_layers=[...], 0 = embeddings), or "
                f"hidden_weight=0."
            )
        return list(range(counts[0] + 1))
    limit = min(counts[0], counts[1])
    beyond = [index for index in wanted if index > limit]
    if beyond:
        raise TeacherMismatchError(
            f"hidden_layers={wanted} names hidden states {beyond}, but the student has {counts[0]} layers and the "
            f"teacher {counts[1]} (indices 0..{limit} exist in both; 0 = embeddings)."
        )
    return list(wanted)


def _takes_output_hidden_states(model: nn.Module) -> bool:
    parameters = inspect.signature(model.forward).parameters.values()
    return any(p.name == "output_hidden_states" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def teacher_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The student's forward keyword arguments that are model inputs (no labels, loss kwargs or flags).

    Example:
        >>> sorted(teacher_inputs({"input_ids": 1, "labels": 2, "num_items_in_batch": 3}))
        ['input_ids']
    """
    return {key: value for key, value in inputs.items() if key not in _NOT_INPUTS}


def select_rows(inputs: Mapping[str, Any], rows: torch.Tensor) -> dict[str, Any]:
    """``inputs`` with only ``rows`` of every batch tensor."""
    return {
        key: value.index_select(0, rows) if isinstance(value, torch.Tensor) and value.dim() > 0 else value
        for key, value in inputs.items()
    }


class TeacherLogitCache:
    """Teacher logits per training row, keyed by the row's content (its attended token ids, token
    types and task id), so a row that comes again in any order, batch or padding reuses them.

    Example:
        >>> cache = TeacherLogitCache()
        >>> batch = {"input_ids": torch.tensor([[5, 6, 0], [5, 6, 7]]), "attention_mask": torch.tensor([[1, 1, 0], [1, 1, 1]])}
        >>> teacher = lambda **kw: type("Out", (), {"logits": kw["input_ids"].float()[:, :2]})()
        >>> cache.logits(teacher, batch).tolist(), cache.hits, cache.misses
        ([[5.0, 6.0], [5.0, 6.0]], 0, 2)
        >>> _ = cache.logits(teacher, {"input_ids": torch.tensor([[5, 6]]), "attention_mask": torch.tensor([[1, 1]])})
        >>> cache.hits, len(cache)
        (1, 2)
    """

    def __init__(self) -> None:
        self._rows: dict[bytes, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def logits(self, teacher: Any, inputs: Mapping[str, Any]) -> torch.Tensor:
        """The teacher's logits for every row of ``inputs``; only rows not seen before run the teacher."""
        keys = self._keys(inputs)
        missing = [i for i, key in enumerate(keys) if key not in self._rows]
        if missing:
            rows = torch.tensor(missing, device=inputs["input_ids"].device)
            computed = teacher(**select_rows(inputs, rows)).logits.detach()
            for row, value in zip(missing, computed):
                self._rows[keys[row]] = value
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        return torch.stack([self._rows[key] for key in keys])

    @staticmethod
    def _keys(inputs: Mapping[str, Any]) -> list[bytes]:
        ids = inputs["input_ids"].detach().cpu()
        mask = inputs.get("attention_mask")
        valid = mask.detach().cpu().bool() if mask is not None else torch.ones_like(ids, dtype=torch.bool)
        extras: Sequence[torch.Tensor] = [
            inputs[name].detach().cpu() for name in ("token_type_ids", "task_ids") if inputs.get(name) is not None
        ]
        keys = []
        for row in range(len(ids)):
            parts = [ids[row][valid[row]].numpy().tobytes()]
            for extra in extras:
                value = extra[row]
                parts.append((value[valid[row]] if value.dim() else value).numpy().tobytes())
            keys.append(b"".join(len(part).to_bytes(4, "little") + part for part in parts))
        return keys
