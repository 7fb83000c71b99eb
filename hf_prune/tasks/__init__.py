"""Named real tasks, built as ``datasets.DatasetDict`` objects that work offline.

Example:
    >>> from hf_prune.tasks import available_tasks
    >>> "movie_sentiment" in available_tasks()
    True
    >>> # data = load_task("movie_sentiment")   # train 8,057 / test 2,015, columns text, label
"""

from __future__ import annotations

from dataclasses import dataclass

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from .vader import read_vader_subset


@dataclass(frozen=True)
class TaskSpec:
    """A named task: where its text comes from and how labels are made.

    Attributes:
        name: Task name used in recipes.
        source: VADER subset the rows come from.
        min_abs_score: Rows whose |mean rating| is below this are dropped (near-neutral).
        labels: Class names, index = label id.
    """

    name: str
    source: str
    min_abs_score: float = 0.5
    labels: tuple[str, ...] = ("negative", "positive")


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("movie_sentiment", "movie"),
        TaskSpec("tweet_sentiment", "tweets"),
        TaskSpec("amazon_sentiment", "amazon"),
        TaskSpec("nyt_sentiment", "nyt"),
    )
}


def available_tasks() -> list[str]:
    """Names accepted by :func:`load_task` and by recipes' ``task`` key."""
    return sorted(TASKS)


def load_task(name: str, *, test_fraction: float = 0.2, seed: int = 0, cache_dir: str | None = None) -> DatasetDict:
    """Train/test split of a named task with columns ``text`` (str) and ``label`` (ClassLabel).

    The split is a seeded random split (seed 0, 20% test by default), so every run and every
    method sees the same data.
    """
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; available tasks: {available_tasks()}.")
    spec = TASKS[name]
    rows = [
        (text, score) for text, score in read_vader_subset(spec.source, cache_dir) if abs(score) >= spec.min_abs_score
    ]
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(spec.labels))})
    dataset = Dataset.from_dict(
        {"text": [t for t, _ in rows], "label": [int(s > 0) for _, s in rows]}, features=features
    )
    return dataset.train_test_split(test_size=test_fraction, seed=seed)
