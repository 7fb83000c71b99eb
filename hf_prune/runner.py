"""Train-and-evaluate of one model on one task, shared by recipes and benchmarks.

The Trainer evaluates on the task's ``validation`` split while training (when its
``eval_strategy`` asks for it); :meth:`TaskRun.train_and_evaluate` returns the metrics on the
``test`` split, keyed ``eval_<metric>`` (``eval_accuracy``, ``eval_pearson``, ...).

Example:
    >>> # run = TaskRun("sentence-transformers/all-MiniLM-L6-v2", "movie_sentiment", max_length=64)
    >>> # outcome = run.train_and_evaluate(training_args, RPPConfig(target_sparsity=0.8))
    >>> # outcome.metrics["eval_accuracy"]
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .config import PruningConfig
from .distillation import DistillationConfig
from .measure import parameter_counts
from .pretrained import resolve_model_path
from .progress import use_readable_progress
from .tasks import Task, get_task
from .trainer import PruningTrainer, PruningTrainerMixin


@dataclass
class RunOutcome:
    """A finished run: its trainer (for export), eval metrics, training time and parameter counts."""

    trainer: PruningTrainerMixin  # a PruningTrainer, or the multitask one
    metrics: dict[str, float]
    train_seconds: float
    parameters: dict[str, int]


class TaskRun:
    """A pretrained model + a tokenized task; each call trains a fresh copy of the model.

    ``task`` is a named task (:func:`hf_prune.tasks.get_task`) or a :class:`~hf_prune.tasks.Task`.
    """

    def __init__(self, model: str, task: str | Task, max_length: int = 64) -> None:
        self.task = task if isinstance(task, Task) else get_task(task)  # an unknown name fails before the model
        self.model_path = resolve_model_path(model)
        self.task_name = self.task.name
        self.max_length = max_length

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.model_path)

    @cached_property
    def datasets(self):
        """The task's train / validation / test splits, tokenized (text columns replaced by ids)."""
        return self.task.tokenize(self.task.load(), self.tokenizer, self.max_length)

    def new_model(self):
        """A fresh copy of the pretrained model with the task's head (classes or one regression output)."""
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(self.model_path, **self.task.model_config_kwargs())

    def trainer(self, args, pruning: PruningConfig | None, model=None, **kwargs: Any) -> PruningTrainer:
        """A PruningTrainer on the tokenized task (dynamic padding, the task's metrics, evaluating on
        the validation split)."""
        from transformers import DataCollatorWithPadding

        return PruningTrainer(
            model=model if model is not None else self.new_model(),
            args=args,
            train_dataset=self.datasets["train"],
            eval_dataset=self.datasets["validation"],
            processing_class=self.tokenizer,
            data_collator=DataCollatorWithPadding(self.tokenizer),
            compute_metrics=self.task.compute_metrics,
            pruning=pruning,
            **kwargs,
        )

    def train_and_evaluate(
        self, args, pruning: PruningConfig | None, distillation: DistillationConfig | None = None
    ) -> RunOutcome:
        """Train a fresh model (pruned when ``pruning`` is given, distilling from a teacher when
        ``distillation`` is), then evaluate on the test split (metrics keyed ``eval_<metric>``)."""
        trainer = self.trainer(args, pruning, distillation=distillation)
        use_readable_progress(trainer)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        metrics = trainer.evaluate(self.datasets["test"])
        if trainer.model is None:
            raise RuntimeError("The trainer lost its model during training.")
        method = trainer.pruning_method
        targets = method.targets if method is not None else None
        return RunOutcome(trainer, metrics, seconds, parameter_counts(trainer.model, targets))
