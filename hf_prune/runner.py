"""Train-and-evaluate of one model on one task, shared by recipes and benchmarks.

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
from .measure import parameter_counts
from .metrics import compute_accuracy
from .pretrained import resolve_model_path
from .tasks import TASKS, load_task
from .trainer import PruningTrainer


@dataclass
class RunOutcome:
    """A finished run: its trainer (for export), eval metrics, training time and parameter counts."""

    trainer: PruningTrainer
    metrics: dict[str, float]
    train_seconds: float
    parameters: dict[str, int]


class TaskRun:
    """A pretrained model + a tokenized task; each call trains a fresh copy of the model."""

    def __init__(self, model: str, task: str, max_length: int = 64) -> None:
        self.model_path = resolve_model_path(model)
        self.task = TASKS[task]
        self.task_name = task
        self.max_length = max_length

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.model_path)

    @cached_property
    def datasets(self):
        data = load_task(self.task_name)
        return data.map(
            lambda batch: self.tokenizer(batch["text"], truncation=True, max_length=self.max_length),
            batched=True,
            remove_columns=["text"],
        )

    def new_model(self):
        """A fresh copy of the pretrained model with a classification head for the task."""
        from transformers import AutoModelForSequenceClassification

        labels = list(self.task.labels)
        return AutoModelForSequenceClassification.from_pretrained(
            self.model_path,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)},
        )

    def trainer(self, args, pruning: PruningConfig | None, model=None, **kwargs: Any) -> PruningTrainer:
        """A PruningTrainer on the tokenized task (dynamic padding, accuracy metric)."""
        from transformers import DataCollatorWithPadding

        return PruningTrainer(
            model=model if model is not None else self.new_model(),
            args=args,
            train_dataset=self.datasets["train"],
            eval_dataset=self.datasets["test"],
            processing_class=self.tokenizer,
            data_collator=DataCollatorWithPadding(self.tokenizer),
            compute_metrics=compute_accuracy,
            pruning=pruning,
            **kwargs,
        )

    def train_and_evaluate(self, args, pruning: PruningConfig | None) -> RunOutcome:
        """Train a fresh model (pruned when ``pruning`` is given), then evaluate on the test split."""
        trainer = self.trainer(args, pruning)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        metrics = trainer.evaluate()
        if trainer.model is None:
            raise RuntimeError("The trainer lost its model during training.")
        method = trainer.pruning_method
        targets = method.targets if method is not None else None
        return RunOutcome(trainer, metrics, seconds, parameter_counts(trainer.model, targets))
