"""Multitask pruning: one shared encoder, a head per task, a task mixture and its trainer.

- :class:`MultitaskModel`: a shared pretrained encoder with the architecture's own
  sequence-classification head per task; ``task_model(name)`` is a stock single-task model.
- :class:`TaskMixture` / :class:`MultitaskBatchSampler`: proportional, temperature or uniform
  task sampling, task-homogeneous or mixed batches, seeded per epoch and sharded by Accelerate.
- :class:`MultitaskCollator`: pads a batch and carries each row's task id.
- :class:`MultitaskTrainer` / :class:`MultitaskPruningTrainer`: the Trainer's loop over the
  mixture, each task evaluated with its own metric (``eval_<task>_<metric>``, ``eval_average``).
- :class:`MultitaskRun`: train-and-evaluate on named tasks, as recipes do.

Example:
    >>> from hf_prune.multitask import MultitaskModel, MultitaskPruningTrainer, TaskMixture
    >>> shares = TaskMixture(sampling="temperature", temperature=2.0).probabilities({"big": 900, "small": 100})
    >>> {task: round(share, 3) for task, share in shares.items()}   # sqrt(900) : sqrt(100) = 3 : 1
    {'big': 0.75, 'small': 0.25}
"""

from .collator import MultitaskCollator
from .model import MultitaskModel, TaskHead, task_heads
from .run import MultitaskRun
from .sampling import MultitaskBatchSampler, TaskMixture, prepared_train_dataloader
from .trainer import MultitaskPruningTrainer, MultitaskTrainer, check_labels_fit, with_task_ids

__all__ = [
    "MultitaskBatchSampler",
    "MultitaskCollator",
    "MultitaskModel",
    "MultitaskPruningTrainer",
    "MultitaskRun",
    "MultitaskTrainer",
    "TaskHead",
    "TaskMixture",
    "check_labels_fit",
    "prepared_train_dataloader",
    "task_heads",
    "with_task_ids",
]
