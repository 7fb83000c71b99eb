"""Train-and-evaluate of one multitask model on a task mixture, shared by recipes and benchmarks.

The multitask counterpart of :class:`hf_prune.runner.TaskRun`: a pretrained encoder, the tasks
tokenized once, and a fresh :class:`MultitaskModel` per call, trained with
:class:`MultitaskPruningTrainer` (evaluating on each task's validation split when the arguments
ask for evaluation during training) and then evaluated on each task's **test** split.

Example:
    >>> # run = MultitaskRun("sentence-transformers/all-MiniLM-L6-v2",
    >>> #                    [get_task("movie_sentiment"), get_task("bbc_topic")], max_length=64)
    >>> # outcome = run.train_and_evaluate(training_args, RPPConfig(target_sparsity=0.8))
    >>> # outcome.metrics["test_average"], outcome.metrics["test_bbc_topic_accuracy"]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from ..config import PruningConfig
from ..distillation import DistillationConfig
from ..measure import parameter_counts
from ..pretrained import resolve_model_path
from ..progress import use_readable_progress
from ..runner import RunOutcome
from .model import MultitaskModel
from .sampling import TaskMixture
from .trainer import MultitaskPruningTrainer

TEST_PREFIX = "test"


class MultitaskRun:
    """A pretrained encoder + tokenized tasks; each call trains a fresh multitask model.

    Args:
        model: Hub id or local folder of the pretrained encoder.
        tasks: :class:`hf_prune.tasks.Task` objects (named, or a user's own), in task-id order.
        max_length: Tokenizer truncation length.
        mixture: How training batches sample the tasks.
    """

    def __init__(
        self, model: str, tasks: Sequence[Any], max_length: int = 64, mixture: TaskMixture | None = None
    ) -> None:
        self.model_path = resolve_model_path(model)
        self.tasks = list(tasks)
        self.max_length = max_length
        self.mixture = mixture if mixture is not None else TaskMixture()

    @property
    def task_names(self) -> list[str]:
        return [task.name for task in self.tasks]

    @cached_property
    def tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.model_path)

    @cached_property
    def datasets(self) -> dict[str, Any]:
        """``{task name: tokenized DatasetDict}`` (train / validation / test)."""
        return {task.name: task.tokenize(task.load(), self.tokenizer, self.max_length) for task in self.tasks}

    def split(self, name: str) -> dict[str, Any]:
        """``{task name: that task's tokenized split}``."""
        return {task: data[name] for task, data in self.datasets.items()}

    def new_model(self) -> MultitaskModel:
        """A fresh multitask model: the pretrained encoder, a new head per task."""
        return MultitaskModel.from_encoder(self.model_path, self.tasks)

    def trainer(self, args: Any, pruning: PruningConfig | None, **kwargs: Any) -> MultitaskPruningTrainer:
        """A :class:`MultitaskPruningTrainer` over the tasks (validation splits for evaluation)."""
        return MultitaskPruningTrainer(
            model=kwargs.pop("model", None) or self.new_model(),
            args=args,
            train_dataset=self.split("train"),
            eval_dataset=self.split("validation"),
            processing_class=self.tokenizer,
            compute_metrics={task.name: task.compute_metrics for task in self.tasks},
            mixture=self.mixture,
            pruning=pruning,
            **kwargs,
        )

    def train_and_evaluate(
        self, args: Any, pruning: PruningConfig | None, distillation: DistillationConfig | None = None
    ) -> RunOutcome:
        """Train a fresh model (pruned when ``pruning`` is given, distilling each task from its own
        head of a dense multitask teacher when ``distillation`` is), then evaluate every task's test split.

        ``metrics`` holds ``test_<task>_<metric>`` for every task and ``test_average``.
        """
        trainer = self.trainer(args, pruning, distillation=distillation)
        use_readable_progress(trainer)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        metrics = trainer.evaluate(self.split("test"), metric_key_prefix=TEST_PREFIX)
        if trainer.model is None:
            raise RuntimeError("The trainer lost its model during training.")
        method = trainer.pruning_method
        targets = method.targets if method is not None else None
        return RunOutcome(trainer, metrics, seconds, parameter_counts(trainer.model, targets))
