"""Built-in pruning methods; each module registers its method when imported.

Example:
    >>> from hf_prune.methods import create_method
    >>> from hf_prune import RPPConfig
    >>> type(create_method(RPPConfig())).__name__
    'ReweightedProximalPruning'
"""

from __future__ import annotations

from ..config import PruningConfig
from ..errors import InvalidConfigError
from ..registry import get_method_class
from .base import ElementwiseMaskMethod, PruningMethod
from .frozen import FrozenMask, FrozenMaskConfig
from .magnitude import MagnitudeConfig, MagnitudePruning
from .movement import MovementConfig, MovementPruning
from .rank import RankConfig, RankPruning
from .rpp import ReweightedProximalPruning, RPPConfig


def create_method(config: PruningConfig) -> PruningMethod:
    """The method object for ``config`` (looked up in the registry by ``config.method``).

    Raises:
        InvalidConfigError: ``config`` is not a pruning config (a method name, a dict, ...).

    Example:
        >>> create_method("rpp")
        Traceback (most recent call last):
        ...
        hf_prune.errors.InvalidConfigError: create_method needs a pruning config, got the str 'rpp'; pass e.g. create_method(RPPConfig(target_sparsity=0.8)), or build one by name with PruningConfig.from_dict({'method': 'rpp', ...}).
    """
    if not isinstance(config, PruningConfig):
        name = config if isinstance(config, str) else (config.get("method") if isinstance(config, dict) else None)
        example = name if isinstance(name, str) else "rpp"
        raise InvalidConfigError(
            f"create_method needs a pruning config, got the {type(config).__name__} {config!r}; pass e.g. "
            f"create_method(RPPConfig(target_sparsity=0.8)), or build one by name with "
            f"PruningConfig.from_dict({{'method': {example!r}, ...}})."
        )
    return get_method_class(config.method)(config)


__all__ = [
    "ElementwiseMaskMethod",
    "FrozenMask",
    "FrozenMaskConfig",
    "MagnitudeConfig",
    "MagnitudePruning",
    "MovementConfig",
    "MovementPruning",
    "PruningMethod",
    "RPPConfig",
    "RankConfig",
    "RankPruning",
    "ReweightedProximalPruning",
    "create_method",
]
