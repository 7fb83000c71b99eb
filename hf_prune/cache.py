"""Where hf_prune keeps what it fetches or computes once (data, dense baselines).

Example:
    >>> import os
    >>> os.path.basename(cache_root()) in ("hf_prune", os.path.basename(os.environ.get("HF_PRUNE_CACHE", "")))
    True
"""

from __future__ import annotations

import os


def cache_root() -> str:
    """``$HF_PRUNE_CACHE``, else ``~/.cache/hf_prune``."""
    return os.environ.get("HF_PRUNE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "hf_prune")
