"""hf_prune: prune pretrained transformer encoders with the Hugging Face Trainer.

Example:
    >>> from hf_prune import RPPConfig, available_methods
    >>> available_methods()
    ['frozen', 'magnitude', 'movement', 'rank', 'rpp']
    >>> RPPConfig(target_sparsity=0.8).target_sparsity
    0.8
"""

from __future__ import annotations

from .callback import PruningCallback
from .config import PruningConfig, ScheduledSparsityConfig
from .distillation import DistillationCallback, DistillationConfig
from .export import load_pruned, read_report, save_pruned
from .hub import push_pruned
from .methods import (
    FrozenMaskConfig,
    MagnitudeConfig,
    MovementConfig,
    PruningMethod,
    RankConfig,
    RPPConfig,
    create_method,
)
from .registry import available_methods, register_method
from .targets import find_targets
from .trainer import PruningTrainer, PruningTrainerMixin

__version__ = "0.1.0"

__all__ = [
    "DistillationCallback",
    "DistillationConfig",
    "FrozenMaskConfig",
    "MagnitudeConfig",
    "MovementConfig",
    "PruningCallback",
    "PruningConfig",
    "PruningMethod",
    "PruningTrainer",
    "PruningTrainerMixin",
    "RPPConfig",
    "RankConfig",
    "ScheduledSparsityConfig",
    "available_methods",
    "create_method",
    "find_targets",
    "load_pruned",
    "push_pruned",
    "read_report",
    "register_method",
    "save_pruned",
]
