"""Finding an export: a local folder, or a Hub repo downloaded into the local cache.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> locate_export(folder, {}) == folder
    True
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from .common import MANIFEST_FILE_NAME, MissingExportFileError, read_manifest


def _looks_local(path: str) -> bool:
    """Whether ``path`` can only be a folder (a Hub repo id is ``name`` or ``owner/name``)."""
    return os.path.isabs(path) or path.startswith((".", "~")) or path.count("/") > 1 or os.sep in path.replace("/", "")


def locate_export(path: str | os.PathLike[str], hub: Mapping[str, Any]) -> str | None:
    """The local folder holding the export, downloading a compact/factored/masks Hub repo;
    ``None`` when ``path`` is a Hub repo that ``from_pretrained`` should load itself (a dense one,
    or a plain model).

    ``hub`` holds the download options (``revision``, ``token``, ``cache_dir``, ``subfolder``,
    ``force_download``, ``local_files_only``). The manifest and the files the loader reads come
    from one commit: the one ``revision`` pointed at when the manifest was fetched.

    Raises:
        MissingExportFileError: no such folder, repo or revision (the message names what exists).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return os.path.join(path, hub["subfolder"]) if hub.get("subfolder") else path
    if _looks_local(path):
        raise MissingExportFileError(f"No export folder at {path!r}; check the path (save_pruned writes one).")
    from huggingface_hub import hf_hub_download, snapshot_download, try_to_load_from_cache
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    subfolder = hub.get("subfolder") or ""
    download = {key: value for key, value in hub.items() if key != "subfolder"}
    try:
        manifest_file = hf_hub_download(path, MANIFEST_FILE_NAME, subfolder=subfolder or None, **download)
    except LocalEntryNotFoundError:  # offline (or unreachable), and no cached manifest
        config = f"{subfolder}/config.json" if subfolder else "config.json"
        cached = try_to_load_from_cache(path, config, cache_dir=hub.get("cache_dir"), revision=hub.get("revision"))
        if not isinstance(cached, str):
            raise MissingExportFileError(
                f"No local folder {path!r} exists, and as a Hub repo id it is not in the local cache while the "
                f"Hub cannot be reached (HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')}). Check the path, "
                f"or download the repo while online."
            ) from None
        return None  # a cached plain model: from_pretrained loads it
    except RevisionNotFoundError:
        raise MissingExportFileError(
            f"The Hub repo {path!r} has no revision {hub.get('revision')!r}{_branches(path, hub)}; pass one of "
            f"its branches, tags or commits as revision=."
        ) from None
    except GatedRepoError:
        raise MissingExportFileError(
            f"The Hub repo {path!r} is gated: accept its conditions on the Hub, then log in (hf auth login) or "
            f"pass token=."
        ) from None
    except EntryNotFoundError:  # a plain Hub model without a manifest
        return None
    except HFValidationError:
        raise MissingExportFileError(
            f"No local folder {path!r} exists, and it is not an existing Hub repo either; check the path."
        ) from None
    except RepositoryNotFoundError:
        raise MissingExportFileError(
            f"No local folder {path!r} exists, and it is not an existing Hub repo either (or a private one this "
            f"token may not read: log in with hf auth login, or pass token=); check the path or the repo id."
        ) from None
    manifest = read_manifest(os.path.dirname(manifest_file))
    if manifest is None or (manifest["format"] == "dense" and _transformers_class(manifest)):
        return None
    # Only what the loader reads: the JSON files and the weights files, from the manifest's commit.
    # (A dense export of a class transformers does not know, such as a MultitaskModel, is loaded
    # here too, as the class its manifest names.)
    prefix = f"{subfolder}/" if subfolder else ""
    weights = manifest.get("weights_files") or [manifest.get("weights_file")]
    patterns = [f"{prefix}*.json", *(f"{prefix}{name}" for name in weights if isinstance(name, str))]
    commit = _snapshot_commit(manifest_file, subfolder)
    snapshot = snapshot_download(
        path, allow_patterns=patterns, **{**download, "revision": commit or hub.get("revision")}
    )
    return os.path.join(snapshot, subfolder) if subfolder else snapshot


def _transformers_class(manifest: Mapping[str, Any]) -> bool:
    """Whether the manifest's model class comes from ``transformers`` (so ``from_pretrained``
    of the repo, through the class its ``config.json`` names, rebuilds it)."""
    module = manifest.get("model_module")
    return not isinstance(module, str) or module == "transformers" or module.startswith("transformers.")


def _snapshot_commit(file: str, subfolder: str) -> str | None:
    """The commit of a file in the Hub cache (``.../snapshots/<commit>/[subfolder/]name``), else ``None``."""
    root = os.path.dirname(file)
    for _ in [part for part in subfolder.split("/") if part]:
        root = os.path.dirname(root)
    commit = os.path.basename(root)
    in_snapshots = os.path.basename(os.path.dirname(root)) == "snapshots"
    return commit if in_snapshots and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def _branches(repo_id: str, hub: Mapping[str, Any]) -> str:
    """`` (its branches and tags: main, v1)``, or nothing when they cannot be listed."""
    from huggingface_hub import HfApi

    try:
        refs = HfApi().list_repo_refs(repo_id, token=hub.get("token"))
    except Exception:  # only a hint: the error is raised either way
        return ""
    names = [ref.name for ref in [*refs.branches, *refs.tags]]
    return f" (its branches and tags: {', '.join(names)})" if names else ""
