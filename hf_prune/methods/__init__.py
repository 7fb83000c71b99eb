"""Built-in pruning methods; each module registers its method when imported.

Example:
    >>> from hf_prune.methods import create_method
    >>> from hf_prune import RPPConfig
    >>> type(create_method(RPPConfig())).__name__
    'ReweightedProximalPruning'
"""

from __future__ import annotations

from ..config import PruningConfig
from ..registry import get_method_class
from .base import ElementwiseMaskMethod, PruningMethod
from .frozen import FrozenMask, FrozenMaskConfig
from .magnitude import MagnitudeConfig, MagnitudePruning
from .movement import MovementConfig, MovementPruning
from .rank import RankConfig, RankPruning
from .rpp import ReweightedProximalPruning, RPPConfig


def create_method(config: PruningConfig) -> PruningMethod:
    """The method object for ``config`` (looked up in the registry by ``config.method``)."""
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
