"""DistillationCallback: distillation for a stock ``transformers.Trainer``, and for PruningTrainer.

The Trainer offers one public place for another loss, ``compute_loss_func(outputs, labels,
num_items_in_batch)``, which does not see the batch the teacher needs. So the callback is two
things at once: a ``TrainerCallback`` that loads and checks the teacher and registers a forward
pre-hook on the student (it keeps the student's keyword inputs of the current forward, and asks
for hidden states when they are matched), and the ``compute_loss_func`` itself (``__call__``),
which runs the teacher on those inputs without gradients and returns the loss. Pass the same
object twice:

    distill = DistillationCallback(DistillationConfig(teacher="outputs/dense"))
    trainer = Trainer(model=model, args=args, train_dataset=ds,
                      callbacks=[PruningCallback(RPPConfig()), distill], compute_loss_func=distill)

``PruningTrainer(distillation=...)`` does exactly that, so both paths give bit-identical weights.
Forgetting one of the two is an error before the first optimizer step.

Example:
    >>> from torch import nn
    >>> from hf_prune.distillation import DistillationConfig
    >>> callback = DistillationCallback(DistillationConfig(teacher=nn.Identity(), alpha=0.9))
    >>> callback.config.alpha, callback.prefixed_stats()
    (0.9, {})
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ..errors import DistillationSetupError, InvalidConfigError, TeacherMismatchError
from .config import DistillationConfig
from .loss import RowLosses, classification_rows, hidden_rows, regression_rows
from .teacher import TeacherLogitCache, TeacherSpec, check_teacher_fits, load_teacher, teacher_inputs

logger = logging.getLogger(__name__)

LOG_PREFIX = "distill/"


class DistillationCallback(TrainerCallback):
    """Distils a dense teacher into the model a Trainer trains; also its ``compute_loss_func``.

    Args:
        distillation: The :class:`~hf_prune.distillation.DistillationConfig`.
        log_stats: Add ``distill/task_loss``, ``distill/distill_loss`` (and ``distill/hidden_loss``)
            to the training logs in ``on_log``: per-row means since the previous log, unweighted.
            ``PruningTrainer`` sets it to ``False`` and adds them before reporting integrations run.

    Attributes:
        teacher: The teacher model once loaded (at ``on_init_end``), else ``None``.
        cache: The :class:`~hf_prune.distillation.teacher.TeacherLogitCache` with
            ``cache_teacher_logits=True``, else ``None``.
    """

    def __init__(self, distillation: DistillationConfig, *, log_stats: bool = True) -> None:
        if not isinstance(distillation, DistillationConfig):
            raise InvalidConfigError(
                f"distillation={distillation!r} is not a DistillationConfig; pass e.g. "
                f"DistillationConfig(teacher='outputs/dense', alpha=0.5, temperature=2.0)."
            )
        self.config = distillation
        self.log_stats = log_stats
        self.teacher: nn.Module | None = distillation.teacher if isinstance(distillation.teacher, nn.Module) else None
        self.cache = TeacherLogitCache() if distillation.cache_teacher_logits else None
        self._student: nn.Module | None = None
        self._spec: TeacherSpec | None = None
        self._hook: RemovableHandle | None = None
        self._captured: tuple[dict[str, Any], bool] | None = None
        self._loss_ran = False
        self._label_smoothing = 0.0
        self._gradient_accumulation_steps = 1
        self._autocast_dtype: torch.dtype | None = None
        self._sums: dict[str, torch.Tensor] = {}
        self._rows = 0

    # ----------------------------------------------------------------------------- the student
    def attach(self, model: nn.Module) -> None:
        """Load the teacher (once), check it fits ``model``, and hook ``model``'s forward.

        Raises:
            TeacherMismatchError: the teacher's classes, tasks, vocabulary, layers or hidden size
                do not fit the student (both named).
        """
        if self._student is model:
            return
        if self.teacher is None:
            self.teacher = load_teacher(str(self.config.teacher), model)
        teacher = self.teacher
        self._spec = check_teacher_fits(
            teacher, model, hidden_layers=self.config.hidden_layers, hidden=self.config.uses_hidden_states
        )
        # Frozen: no gradients, no dropout, not a child of the student (so it is never saved, pruned or
        # given to the optimizer, which only see the student's modules).
        teacher.eval()
        teacher.requires_grad_(False)
        if self._hook is not None:
            self._hook.remove()
        self._hook = model.register_forward_pre_hook(self._capture, with_kwargs=True)
        self._student = model

    def _capture(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # The Trainer calls model(**inputs): the keyword inputs are what the teacher needs.
        self._captured = (kwargs, module.training)
        if module.training and self.config.uses_hidden_states and not kwargs.get("output_hidden_states"):
            return args, {**kwargs, "output_hidden_states": True}
        return None

    def _move_teacher_to(self, device: torch.device) -> None:
        teacher = self.teacher
        if teacher is None:
            return
        parameter = next(teacher.parameters(), None)
        if parameter is not None and parameter.device != device:
            teacher.to(device)

    # ----------------------------------------------------------------------------- events
    def on_init_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        model = kwargs.get("model")
        if model is not None:
            self.attach(model)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        if args.n_gpu > 1:
            raise DistillationSetupError(
                f"Distillation under torch DataParallel ({args.n_gpu} GPUs in one process) is not supported: the "
                f"replicas' inputs cannot be matched to the teacher's. Launch one process per GPU (torchrun / "
                f"accelerate launch), or make one GPU visible."
            )
        model = kwargs["model"]
        self.attach(model)  # a model model_init built anew gets the hook and the checks too
        parameter = next(model.parameters(), None)
        if parameter is not None:
            self._move_teacher_to(parameter.device)
        if self.teacher is not None:
            self.teacher.eval()
        self._label_smoothing = float(args.label_smoothing_factor)
        self._gradient_accumulation_steps = int(args.gradient_accumulation_steps)
        self._autocast_dtype = torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else None
        self._loss_ran = False

    def on_pre_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not self._loss_ran:
            raise DistillationSetupError(
                "The DistillationCallback's loss was not called in this training step, so nothing was distilled: "
                "pass the same object as the Trainer's loss too, Trainer(..., callbacks=[distill], "
                "compute_loss_func=distill), or use PruningTrainer(..., distillation=config)."
            )
        self._loss_ran = False

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        logs = kwargs.get("logs")
        if not self.log_stats or logs is None or "loss" not in logs:
            return
        stats = self.prefixed_stats()
        logs.update(stats)
        if state.log_history:
            state.log_history[-1].update(stats)

    def prefixed_stats(self) -> dict[str, float]:
        """The unweighted loss terms' per-row means since the last call (``distill/*``), then reset."""
        if not self._rows:
            return {}
        stats = {f"{LOG_PREFIX}{name}_loss": float(value) / self._rows for name, value in self._sums.items()}
        self._sums, self._rows = {}, 0
        return stats

    # ----------------------------------------------------------------------------- the loss
    def __call__(self, outputs: Any, labels: torch.Tensor | None, num_items_in_batch: Any = None) -> torch.Tensor:
        """The Trainer's ``compute_loss_func``: the distillation loss of the batch the student just ran.

        In training: sum over rows of the per-row loss (see :class:`DistillationConfig`), divided
        by ``num_items_in_batch`` (the accumulated batch's labelled rows), else by the rows times
        the accumulation steps. In evaluation: the task loss alone, the same way.
        """
        if self._captured is None or self._spec is None:
            raise DistillationSetupError(
                "The distillation loss was called, but the DistillationCallback saw no forward pass of the model: "
                "add it to the Trainer's callbacks too, Trainer(..., callbacks=[distill], compute_loss_func=distill)."
            )
        inputs, training = self._captured
        self._captured = None
        logits = _field(outputs, "logits", 0)
        teacher_out = self._teacher_outputs(inputs, logits) if training else None
        teacher_logits = None if teacher_out is None else _field(teacher_out, "logits", 0)
        if teacher_logits is not None and teacher_logits.shape != logits.shape:
            raise TeacherMismatchError(
                f"The teacher's logits have shape {tuple(teacher_logits.shape)} and the student's "
                f"{tuple(logits.shape)}; give a teacher with the student's head (the same classes)."
            )
        total, parts = self._head_losses(logits, teacher_logits, labels, inputs)
        if training and self._spec.layers and teacher_out is not None:
            hidden = hidden_rows(
                _field(outputs, "hidden_states", None),
                _field(teacher_out, "hidden_states", None),
                self._spec.layers,
                inputs.get("attention_mask"),
            )
            total = total + self.config.hidden_weight * hidden.sum()
            parts["hidden"] = hidden.detach().sum()
        rows = len(logits)
        if training:
            self._loss_ran = True
            for name, value in parts.items():
                self._sums[name] = self._sums[name] + value if name in self._sums else value
            self._rows += rows
        if num_items_in_batch is None:
            return total / (rows * (self._gradient_accumulation_steps if training else 1))
        return total / num_items_in_batch

    def _teacher_outputs(self, inputs: Mapping[str, Any], logits: torch.Tensor) -> Any:
        teacher = self.teacher
        if teacher is None or (self.config.alpha == 0 and not self.config.uses_hidden_states):
            return None
        self._move_teacher_to(logits.device)
        given = teacher_inputs(inputs)
        autocast = (
            torch.autocast(logits.device.type, dtype=self._autocast_dtype)
            if self._autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with torch.no_grad(), autocast:
            if self.cache is not None and "input_ids" in given:
                return _Logits(self.cache.logits(teacher, given))
            if self.config.uses_hidden_states:
                return teacher(**given, output_hidden_states=True)
            return teacher(**given)

    def _head_losses(
        self,
        logits: torch.Tensor,
        teacher: torch.Tensor | None,
        labels: torch.Tensor | None,
        inputs: Mapping[str, Any],
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Sum over rows of each row's head loss (each row by its own task's head), and the
        unweighted terms' sums for the logs."""
        spec = self._spec
        if spec is None:  # attach() sets it before any forward can be captured
            raise DistillationSetupError("The DistillationCallback is not attached to a model.")
        task_ids = inputs.get("task_ids") if spec.multitask else None
        if task_ids is None:
            groups = [(None, spec.heads[0] if spec.heads else _guess_head(logits))]
        else:
            task_ids = task_ids.reshape(-1)
            groups = [(task_ids == task, spec.heads[task]) for task in torch.unique(task_ids).tolist()]
        zero = logits.new_zeros((), dtype=torch.float32)
        total, task_sum, distill_sum = zero, zero, zero
        for rows, (kind, width) in groups:
            part = self._rows_of(
                kind, _pick(logits, rows, width), _pick(teacher, rows, width), _pick(labels, rows, None)
            )
            total = total + part.total.sum()
            task_sum = task_sum + part.task.detach().sum()
            distill_sum = distill_sum + part.distill.detach().sum()
        parts = {"task": task_sum}
        if teacher is not None:
            parts["distill"] = distill_sum
        return total, parts

    def _rows_of(
        self, kind: str, logits: torch.Tensor, teacher: torch.Tensor | None, labels: torch.Tensor | None
    ) -> RowLosses:
        if kind == "regression":
            return regression_rows(logits, teacher, labels, alpha=self.config.alpha)
        if labels is not None and labels.is_floating_point():
            raise InvalidConfigError(
                f"Distillation got float labels ({labels.dtype}) for a classification head: multi-label "
                f"classification is not supported; give class ids (int64), or a regression head (num_labels=1)."
            )
        return classification_rows(
            logits,
            teacher,
            labels,
            alpha=self.config.alpha,
            temperature=self.config.temperature,
            label_smoothing=self._label_smoothing,
        )


class _Logits:
    """Cached teacher logits in the shape of a model output."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits


def _field(outputs: Any, name: str, index: int | None) -> Any:
    """``outputs.name`` of a ModelOutput / mapping / object, else ``outputs[index]`` of a tuple."""
    if isinstance(outputs, Mapping):
        if name in outputs:
            return outputs[name]
    elif hasattr(outputs, name):
        return getattr(outputs, name)
    if index is not None and isinstance(outputs, (tuple, list)):
        return outputs[index]
    if name == "hidden_states":
        raise DistillationSetupError(
            "Hidden-state matching is on, but the model returned no hidden_states although the forward was asked "
            "for them (output_hidden_states=True); set hidden_weight=0 for this model."
        )
    raise DistillationSetupError(f"The model output has no {name!r}; distillation needs the model's logits.")


def _pick(values: torch.Tensor | None, rows: torch.Tensor | None, width: int | None) -> Any:
    """``values`` restricted to ``rows`` (a boolean mask, ``None``: all) and the first ``width`` columns
    (a multitask batch pads narrower heads' logits with NaN)."""
    if values is None:
        return None
    if rows is not None:
        values = values[rows]
    return values[:, :width] if width is not None and values.dim() > 1 else values


def _guess_head(logits: torch.Tensor) -> tuple[str, int]:
    """A head whose config says nothing: one output is a regression, several are classes."""
    width = logits.shape[-1] if logits.dim() > 1 else 1
    return ("regression" if width == 1 else "classification", width)
