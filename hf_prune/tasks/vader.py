"""The human-rated sentiment sets of the VADER paper (Hutto & Gilbert, ICWSM 2014), offline.

They ship inside the ``vaderSentiment==3.3.2`` source distribution on PyPI
(``additional_resources/hutto_ICWSM_2014.tar.gz``). :func:`ensure_vader_files` fetches that
sdist with pip into the local data cache once. Each file is TSV
``id<TAB>mean score in [-4, 4]<TAB>text`` in latin-1. Two kinds of task are built on them:

* binary sentiment (``movie_sentiment``, ``tweet_sentiment``, ``amazon_sentiment``,
  ``nyt_sentiment``): label = sign of the mean rating, rows with ``|rating| < 0.5`` dropped;
* sentiment intensity (``movie_intensity``): regression on the movie snippets' mean rating, kept
  on its original scale ``[-4, 4]`` (Pearson and Spearman do not depend on the scale).

Example:
    >>> vader_binary_task("movie_sentiment", "movie").label_names
    ('negative', 'positive')
    >>> # folder = ensure_vader_files()   # ~/.cache/hf_prune/data/hutto_ICWSM_2014
"""

from __future__ import annotations

import os
import shutil
import tarfile

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from ..errors import DataUnavailableError
from .fetch import data_cache_dir, ensure_extracted
from .prepare import prepare_splits
from .spec import Task

__all__ = ["SUBSETS", "data_cache_dir", "ensure_vader_files", "read_vader_subset", "vader_binary_task"]

SDIST = "vaderSentiment==3.3.2"
ARCHIVE_MEMBER = "additional_resources/hutto_ICWSM_2014.tar.gz"
FOLDER_NAME = "hutto_ICWSM_2014"
SUBSETS = {
    "movie": "movieReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}
_DESCRIPTIONS = {
    "movie": "movie review snippets (Rotten Tomatoes sentences)",
    "tweets": "tweets",
    "amazon": "Amazon product review snippets",
    "nyt": "New York Times editorial snippets",
}
MIN_ABS_SCORE = 0.5  # binary tasks drop near-neutral rows


def ensure_vader_files(cache_dir: str | None = None) -> str:
    """The folder holding the four ground-truth files, fetched once if missing."""
    folder = os.path.join(cache_dir or data_cache_dir(), FOLDER_NAME)
    if all(os.path.isfile(os.path.join(folder, name)) for name in SUBSETS.values()):
        return folder
    return ensure_extracted(folder, SDIST, _extract_ground_truth, source_distribution=True, what=ARCHIVE_MEMBER)


def _extract_ground_truth(sdist_path: str, staging: str) -> None:
    with tarfile.open(sdist_path) as sdist:
        member = next((m for m in sdist.getmembers() if m.name.endswith(ARCHIVE_MEMBER)), None)
        inner = sdist.extractfile(member) if member is not None else None
        if inner is None:
            raise DataUnavailableError(f"{os.path.basename(sdist_path)} has no {ARCHIVE_MEMBER}; expected {SDIST}.")
        with tarfile.open(fileobj=inner) as archive:
            for name in SUBSETS.values():
                source = archive.extractfile(f"{FOLDER_NAME}/{name}")
                if source is None:  # a directory or link where the sdist has a file
                    raise DataUnavailableError(f"{FOLDER_NAME}/{name} in the vaderSentiment sdist is not a file.")
                with open(os.path.join(staging, name), "wb") as target:
                    shutil.copyfileobj(source, target)


def read_vader_subset(subset: str, cache_dir: str | None = None) -> list[tuple[str, float]]:
    """``(text, mean rating)`` pairs of one subset ('movie', 'tweets', 'amazon', 'nyt'), in file order."""
    if subset not in SUBSETS:
        raise ValueError(f"Unknown VADER subset {subset!r}; choose one of {sorted(SUBSETS)}.")
    path = os.path.join(ensure_vader_files(cache_dir), SUBSETS[subset])
    rows = []
    with open(path, encoding="latin-1", newline="") as handle:
        for line in handle:
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) == 3:
                rows.append((parts[2].strip(), float(parts[1])))
    return rows


def vader_binary_task(name: str, subset: str) -> Task:
    """Binary sentiment on one VADER subset.

    The test split is the one hf_prune has always used (``train_test_split(test_size=0.2,
    seed=0)`` of the rows with ``|rating| >= 0.5``), so test numbers stay comparable; validation
    is 10% of the remaining rows (seed 0).
    """
    return Task(
        name=name,
        task_type="classification",
        label_names=("negative", "positive"),
        text_columns=("text",),
        metric_names=("accuracy",),
        # v2: validation carved from the old train split (v1 had train/test only).
        data_version=f"{SDIST}:{subset}:abs>={MIN_ABS_SCORE}:test0.2-val0.1-seed0:v2",
        source=subset,
        description=f"VADER {_DESCRIPTIONS[subset]} (Hutto & Gilbert 2014), binary sentiment",
        loader=lambda: _binary_splits(name, subset),
    )


def _binary_splits(name: str, subset: str) -> DatasetDict:
    rows = [(text, score) for text, score in read_vader_subset(subset) if abs(score) >= MIN_ABS_SCORE]
    features = Features({"text": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    data = Dataset.from_dict({"text": [t for t, _ in rows], "label": [int(s > 0) for _, s in rows]}, features=features)
    return prepare_splits(data, task=name, text_columns=("text",), task_type="classification").data


def vader_intensity_task(name: str = "movie_intensity", subset: str = "movie") -> Task:
    """Sentiment intensity: regression on the mean human rating in ``[-4, 4]`` (not rescaled),
    every row kept; test 20% and validation 10% of the rest, seed 0; Pearson and Spearman."""
    return Task(
        name=name,
        task_type="regression",
        label_names=(),
        text_columns=("text",),
        metric_names=("pearson", "spearman"),
        data_version=f"{SDIST}:{subset}:mean-rating:test0.2-val0.1-seed0:v1",
        source=subset,
        description=f"VADER {_DESCRIPTIONS[subset]} (Hutto & Gilbert 2014), mean sentiment rating in [-4, 4]",
        loader=lambda: _intensity_splits(name, subset),
    )


def _intensity_splits(name: str, subset: str) -> DatasetDict:
    rows = read_vader_subset(subset)
    features = Features({"text": Value("string"), "label": Value("float32")})
    data = Dataset.from_dict({"text": [t for t, _ in rows], "label": [s for _, s in rows]}, features=features)
    return prepare_splits(data, task=name, text_columns=("text",), task_type="regression").data
