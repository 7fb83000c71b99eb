"""Loading a Hugging Face Hub dataset that fails at once, with a useful message, when the Hub is out
of reach: ``datasets.load_dataset`` would otherwise retry for half a minute before giving up.

Offline mode (``HF_HUB_OFFLINE=1``) still loads a dataset already in the local ``datasets``
cache. With offline mode off, one quick request (no retries) first checks the Hub answers.

Example:
    >>> # data = load_hub_dataset("nyu-mll/glue", "sst2", task="sst2")
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from typing import Any

from ..errors import DataUnavailableError, InvalidConfigError

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0


def hub_offline() -> bool:
    """Whether Hub access is switched off (``HF_HUB_OFFLINE``, as huggingface_hub read it or as set now)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def check_hub_dataset(dataset_id: str, config_name: str | None = None, *, task: str) -> None:
    """Raise at once if ``dataset_id`` cannot be loaded here (offline and not cached, or the Hub
    unreachable). Offline, this loads it from the local cache to make sure it is there."""
    if hub_offline():
        load_hub_dataset(dataset_id, config_name, task=task)
    else:
        _probe(dataset_id, task)


def load_hub_dataset(dataset_id: str, config_name: str | None = None, *, task: str) -> Any:
    """``datasets.load_dataset(dataset_id, config_name)`` (a ``DatasetDict``), failing fast offline.

    Raises:
        DataUnavailableError: offline and not cached, the Hub unreachable, or no such dataset;
            the message lists the tasks that work offline.
        InvalidConfigError: ``config_name`` is not one of the dataset's configs.
    """
    from huggingface_hub import constants

    if hub_offline() and not constants.HF_HUB_OFFLINE:
        # HF_HUB_OFFLINE was set after huggingface_hub read it: load_dataset would still go online.
        raise _unavailable(task, dataset_id, "switched off (HF_HUB_OFFLINE is set)")
    if not hub_offline():
        _probe(dataset_id, task)
    from datasets import load_dataset

    try:
        return load_dataset(dataset_id, config_name)
    except ConnectionError as err:  # offline mode and nothing cached: datasets raises at once
        why = "switched off (HF_HUB_OFFLINE=1), and the dataset is not in the local datasets cache"
        raise _unavailable(task, dataset_id, why if hub_offline() else f"not reachable ({err})") from None
    except FileNotFoundError as err:  # DatasetNotFoundError and friends
        raise DataUnavailableError(
            f"Task {task!r}: cannot load the Hub dataset {dataset_id!r}: {err}. Check the dataset id."
        ) from None
    except ValueError as err:  # an unknown config name
        raise InvalidConfigError(f"Task {task!r}: cannot load the Hub dataset {dataset_id!r}: {err}") from None


def _probe(dataset_id: str, task: str) -> None:
    """One request, no retries: any HTTP answer (even 401/404) means the Hub is reachable."""
    from huggingface_hub import constants

    url = f"{constants.ENDPOINT.rstrip('/')}/api/datasets/{dataset_id}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT_S):
            pass
    except urllib.error.HTTPError:
        return  # the Hub answered; load_dataset reports a missing or gated dataset itself
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise _unavailable(task, dataset_id, f"not reachable at {constants.ENDPOINT} ({reason})") from None


def _unavailable(task: str, dataset_id: str, why: str) -> DataUnavailableError:
    from .registry import offline_tasks

    return DataUnavailableError(
        f"Task {task!r} loads {dataset_id!r} from the Hugging Face Hub, which is {why}. Tasks that work "
        f"offline: {', '.join(offline_tasks())}. Or load it once where the Hub is reachable (it is then "
        f"read from the local datasets cache with HF_HUB_OFFLINE=1), or use your own data with Task.from_files."
    )
