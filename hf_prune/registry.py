"""Name -> (config class, method class), the one place methods are looked up.

Example:
    >>> from hf_prune.registry import available_methods, get_config_class
    >>> "rpp" in available_methods()
    True
    >>> get_config_class("magnitude").__name__
    'MagnitudeConfig'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import DuplicateMethodError, UnknownMethodError

if TYPE_CHECKING:
    from .config import PruningConfig
    from .methods.base import PruningMethod

_REGISTRY: dict[str, tuple[type[PruningConfig], type[PruningMethod]]] = {}


def register_method(config_class: type[PruningConfig], method_class: type[PruningMethod]) -> None:
    """Register a method under ``config_class.method``; a name can be registered only once.

    Each method module registers itself when imported (``hf_prune.methods`` imports the
    built-in ones), so nothing here imports the methods. Re-registering the same classes (a module
    reloaded with ``importlib.reload``) replaces the entry.
    """
    name = config_class.method
    if not name:
        raise ValueError(f"{config_class.__name__}.method is empty; set a class-level name.")
    if name in _REGISTRY and not _same_classes(_REGISTRY[name], (config_class, method_class)):
        raise DuplicateMethodError(
            f"A pruning method named {name!r} is already registered "
            f"({_REGISTRY[name][1].__name__}); choose another name."
        )
    _REGISTRY[name] = (config_class, method_class)


def _same_classes(old: tuple[type, type], new: tuple[type, type]) -> bool:
    return all((a.__module__, a.__qualname__) == (b.__module__, b.__qualname__) for a, b in zip(old, new))


def _lookup(name: str) -> tuple[type[PruningConfig], type[PruningMethod]]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownMethodError(
            f"Unknown pruning method {name!r}; registered methods: {available_methods()}."
        ) from None


def get_config_class(name: str) -> type[PruningConfig]:
    """The config class registered under ``name``."""
    return _lookup(name)[0]


def get_method_class(name: str) -> type[PruningMethod]:
    """The method class registered under ``name``."""
    return _lookup(name)[1]


def available_methods() -> list[str]:
    """Sorted names of every registered method."""
    return sorted(_REGISTRY)
