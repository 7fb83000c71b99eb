"""Errors hf_prune raises on bad input.

Every error says what was wrong, the bad value, and how to fix it. Each class also inherits the
builtin exception a caller would naturally catch (``ValueError``, ``FileNotFoundError``, ...), so
``except ValueError`` keeps working.

Example:
    >>> from hf_prune import RPPConfig
    >>> from hf_prune.errors import InvalidConfigError
    >>> try:
    ...     RPPConfig(target_sparsity=1.5)
    ... except InvalidConfigError as err:
    ...     print(type(err).__mro__[2].__name__)
    ValueError
"""

from __future__ import annotations


class HfPruneError(Exception):
    """Base class of every error hf_prune raises on purpose."""


class InvalidConfigError(HfPruneError, ValueError):
    """A configuration field has a wrong type or a value outside its valid range."""


class UnknownMethodError(HfPruneError, KeyError):
    """A pruning method name that is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0]) if self.args else ""


class DuplicateMethodError(HfPruneError, ValueError):
    """A method name registered twice."""


class NoMatchingModulesError(HfPruneError, ValueError):
    """An include/exclude pattern matched no module, or nothing is left to prune."""


class UnsupportedModelError(HfPruneError, TypeError):
    """The model's architecture cannot be pruned by hf_prune."""


class MethodOrderError(HfPruneError, RuntimeError):
    """A method's hooks called out of order (``step`` before ``attach`` or ``begin``, ...)."""


class CheckpointMismatchError(HfPruneError, ValueError):
    """A checkpoint's pruning state does not belong to this method or model."""


class MissingPruningStateError(HfPruneError, FileNotFoundError):
    """Resuming from a checkpoint that holds no hf_prune state."""


class RecipeNotFoundError(HfPruneError, FileNotFoundError):
    """A recipe path that is not a readable file."""


class DataUnavailableError(HfPruneError, RuntimeError):
    """A dataset or model that cannot be fetched or found locally."""


class MissingColumnError(HfPruneError, KeyError):
    """A dataset lacks a column the task needs (text or label)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownTaskError(InvalidConfigError, KeyError):
    """A task name that is neither a named task nor registered (the message lists the known ones)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DataFileNotFoundError(HfPruneError, FileNotFoundError):
    """A data file a task reads (csv / json / parquet) that does not exist."""


class TeacherMismatchError(InvalidConfigError):
    """A distillation teacher that does not fit the student (class counts, tasks, layers, hidden size)."""


class DistillationSetupError(HfPruneError, RuntimeError):
    """Distillation wired into a Trainer incompletely (the callback without its loss, or the reverse)."""
