"""Finding an export: a local folder, or a Hub repo downloaded into the local cache.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> locate_export(folder, {}) == folder
    True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .common import MANIFEST_FILE_NAME, MissingExportFileError, read_manifest


def _looks_local(path: str) -> bool:
    """Whether ``path`` can only be a folder (a Hub repo id is ``name`` or ``owner/name``)."""
    return os.path.isabs(path) or path.startswith((".", "~")) or path.count("/") > 1 or os.sep in path.replace("/", "")


def locate_export(path: str | os.PathLike[str], hub: Mapping[str, Any]) -> str | None:
    """The local folder holding the export, downloading a compact/factored Hub repo; ``None``
    when ``path`` is a Hub repo that ``from_pretrained`` should load itself (a dense one)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return os.path.join(path, hub["subfolder"]) if hub.get("subfolder") else path
    if _looks_local(path):
        raise MissingExportFileError(f"No export folder at {path!r}; check the path (save_pruned writes one).")
    from huggingface_hub import hf_hub_download, snapshot_download, try_to_load_from_cache
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    subfolder = hub.get("subfolder") or ""
    download = {key: value for key, value in hub.items() if key != "subfolder"}
    try:
        manifest_file = hf_hub_download(path, MANIFEST_FILE_NAME, subfolder=subfolder or None, **download)
    except LocalEntryNotFoundError:  # offline (or unreachable), and no cached manifest
        config = f"{subfolder}/config.json" if subfolder else "config.json"
        if not isinstance(try_to_load_from_cache(path, config, cache_dir=hub.get("cache_dir")), str):
            raise MissingExportFileError(
                f"No local folder {path!r} exists, and as a Hub repo id it is not in the local cache while the "
                f"Hub cannot be reached (HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')}). Check the path, "
                f"or download the repo while online."
            ) from None
        return None  # a cached plain model: from_pretrained loads it
    except EntryNotFoundError:  # a plain Hub model without a manifest
        return None
    except (HFValidationError, RepositoryNotFoundError):
        raise MissingExportFileError(
            f"No local folder {path!r} exists, and it is not an existing Hub repo either; check the path."
        ) from None
    manifest = read_manifest(os.path.dirname(manifest_file))
    if manifest is None or manifest["format"] == "dense":
        return None
    # Only what the loader reads: the JSON files and the one weights file.
    prefix = f"{subfolder}/" if subfolder else ""
    patterns = [f"{prefix}*.json", f"{prefix}{manifest.get('weights_file')}"]
    snapshot = snapshot_download(path, allow_patterns=patterns, **download)
    return os.path.join(snapshot, subfolder) if subfolder else snapshot
