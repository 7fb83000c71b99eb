"""Configuration dataclasses shared by every pruning method.

A config holds only plain values (numbers, strings, lists of strings), is validated when it is
built, and round-trips through JSON, so it can be saved beside a checkpoint or an export.

Example:
    >>> from hf_prune import MagnitudeConfig, PruningConfig
    >>> cfg = MagnitudeConfig(target_sparsity=0.5)
    >>> PruningConfig.from_dict(cfg.to_dict()) == cfg
    True
"""

from __future__ import annotations

import difflib
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, Literal

from .errors import InvalidConfigError
from .registry import get_config_class

CONFIG_FILE_NAME = "hf_prune_config.json"
# Recorded in every saved config file. Bumped when a field is renamed or changes meaning; files
# without it are version 0 (hf_prune 0.1.0). A newer file is refused, never misread.
CONFIG_VERSION = 1
_VERSION_KEY = "hf_prune_config_version"


def _type_matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits ``annotation`` (the subset of typing a config uses)."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin is Literal:
        return value in typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_matches(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is list:
        (item_type,) = typing.get_args(annotation) or (Any,)
        return isinstance(value, list) and all(_type_matches(v, item_type) for v in value)
    if annotation is float:  # an int is a fine float; a bool is not a number here
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def check_range(
    name: str,
    value: float,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """Raise :class:`InvalidConfigError` unless ``low <= value <= high`` (bounds as asked).

    Example:
        >>> check_range("target_sparsity", 0.5, 0.0, 1.0, high_inclusive=False)
    """
    above_low = value >= low if low_inclusive else value > low
    below_high = value <= high if high_inclusive else value < high
    if not (above_low and below_high):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        raise InvalidConfigError(
            f"{name}={value!r} is outside its valid range {left}{low}, {high}{right}; pick a value inside that range."
        )


def describe_type(annotation: Any) -> str:
    """A readable form of a config field's annotation, listing a ``Literal``'s allowed values.

    Example:
        >>> describe_type(Literal["per_matrix", "global"])
        "one of ['per_matrix', 'global']"
        >>> describe_type(int | None)
        'int or None'
    """
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return f"one of {list(typing.get_args(annotation))}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        return f"a list of {describe_type(item)}"
    return getattr(annotation, "__name__", str(annotation))


def unknown_fields_message(config_class: type[PruningConfig], unknown: list[str]) -> str:
    """Why each of ``unknown`` is not a field of ``config_class``, and what to use instead.

    Example:
        >>> from hf_prune import MagnitudeConfig
        >>> print(unknown_fields_message(MagnitudeConfig, ["targt_sparsity"]))
        Unknown field(s) ['targt_sparsity'] for MagnitudeConfig. 'targt_sparsity': did you mean 'target_sparsity'? Valid fields: ['begin_fraction', 'begin_step', 'end_fraction', 'end_step', 'exclude', 'include', 'include_embeddings', 'initial_sparsity', 'prune_interval', 'sparsity_distribution', 'target_sparsity'].
    """
    from .registry import available_methods, get_config_class

    known = sorted(f.name for f in fields(config_class))
    hints = []
    for key in unknown:
        if key in config_class.legacy_field_names:
            hints.append(f"{key!r} is now called {config_class.legacy_field_names[key]!r}.")
        elif key in config_class.field_hints:
            hints.append(f"{key!r}: {config_class.field_hints[key]}.")
        else:
            owners = [name for name in available_methods() if key in {f.name for f in fields(get_config_class(name))}]
            close = difflib.get_close_matches(key, known, n=1)
            if owners:
                hints.append(f"{key!r} is a field of the {owners} methods' configs, not of {config_class.__name__}.")
            if close:
                hints.append(f"{key!r}: did you mean {close[0]!r}?")
    detail = (" " + " ".join(hints)) if hints else ""
    return f"Unknown field(s) {unknown} for {config_class.__name__}.{detail} Valid fields: {known}."


class _ConfigMeta(type):
    """Checks keyword names before the dataclass ``__init__`` runs, so a typo is an
    :class:`InvalidConfigError` that suggests the field instead of a bare ``TypeError``."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if is_dataclass(cls):
            names = {f.name for f in fields(cls)}
            unknown = sorted(set(kwargs) - names)
            if unknown:
                raise InvalidConfigError(unknown_fields_message(cls, unknown))
            if args:  # field order is an implementation detail: RPPConfig(0.8) would set `include`
                raise InvalidConfigError(
                    f"{cls.__name__} takes keyword arguments only, got {args!r} positionally; e.g. "
                    f"{cls.__name__}(target_sparsity=0.8)."
                )
        return super().__call__(*args, **kwargs)


@dataclass
class PruningConfig(metaclass=_ConfigMeta):
    """Fields every method shares: which modules get pruned.

    Args:
        include: Regular expressions matched (``re.search``) against module names; when given,
            only matching candidate modules are pruned. Every pattern must match something.
        exclude: Regular expressions; matching modules are not pruned. Every pattern must match.
        include_embeddings: Also prune the input word embeddings (never biases or LayerNorm).

    Example:
        >>> from hf_prune import RPPConfig
        >>> RPPConfig(exclude=["attention"]).method
        'rpp'
    """

    method: ClassVar[str] = ""
    # Old field name -> new name, for fields renamed since an earlier layout: files written
    # before the rename still load; user input with an old name gets an error naming the new one.
    legacy_field_names: ClassVar[dict[str, str]] = {}
    # Field names users reach for that this config spells otherwise: name -> what to use instead.
    field_hints: ClassVar[dict[str, str]] = {}

    include: list[str] | None = field(
        default=None, metadata={"help": "Regexes (re.search) selecting the modules to prune."}
    )
    exclude: list[str] | None = field(default=None, metadata={"help": "Regexes (re.search) of modules left dense."})
    include_embeddings: bool = field(default=False, metadata={"help": "Also prune the input word embedding matrix."})

    def __post_init__(self) -> None:
        self._check_types()
        self.validate()

    def _check_types(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):  # YAML/JSON give lists; a tuple is a harmless spelling
                value = list(value)
                setattr(self, f.name, value)
            if not _type_matches(value, hints[f.name]):
                if typing.get_origin(hints[f.name]) is Literal:
                    raise InvalidConfigError(
                        f"{type(self).__name__}.{f.name}={value!r} is not {describe_type(hints[f.name])}."
                    )
                raise InvalidConfigError(
                    f"{type(self).__name__}.{f.name}={value!r} has type {type(value).__name__}, expected "
                    f"{describe_type(hints[f.name])}."
                )

    def validate(self) -> None:
        """Check value ranges; subclasses extend it (types are checked already)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, with the method name under ``"method"``."""
        return {"method": self.method, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PruningConfig:
        """Build the config of ``data["method"]`` (or of ``cls`` when called on a subclass).

        Unknown keys raise :class:`InvalidConfigError` naming them, rather than being dropped.
        """
        if not isinstance(data, Mapping):
            raise InvalidConfigError(
                f"PruningConfig.from_dict needs a mapping such as {{'method': 'rpp', 'target_sparsity': 0.8}}, "
                f"got the {type(data).__name__} {data!r}."
            )
        data = dict(data)
        method = data.pop("method", None) or cls.method
        if not method:
            raise InvalidConfigError("The config dict has no 'method' key; add one, e.g. {'method': 'rpp', ...}.")
        config_class = get_config_class(method)
        if cls.method and config_class is not cls:
            raise InvalidConfigError(
                f"{cls.__name__}.from_dict got a config for method {method!r}; "
                f"use PruningConfig.from_dict to build any method's config."
            )
        return config_class(**data)

    def save(self, directory: str | os.PathLike[str]) -> str:
        """Write the config as JSON into ``directory`` (with the layout version); returns the path."""
        path = os.path.join(directory, CONFIG_FILE_NAME)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({_VERSION_KEY: CONFIG_VERSION, **self.to_dict()}, handle, indent=2, sort_keys=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PruningConfig:
        """Read a config saved by :meth:`save` (a directory or the JSON file itself).

        Files from older layouts are read with renamed fields mapped to their new names; a file
        from a newer hf_prune is refused.

        Example:
            >>> import json, tempfile
            >>> from hf_prune import MagnitudeConfig
            >>> folder = tempfile.mkdtemp(); _ = MagnitudeConfig(target_sparsity=0.5).save(folder)
            >>> PruningConfig.load(folder).target_sparsity
            0.5
        """
        if os.path.isdir(path):
            path = os.path.join(path, CONFIG_FILE_NAME)
        if not os.path.isfile(path):
            raise InvalidConfigError(
                f"{path} does not exist; give an export or checkpoint folder holding {CONFIG_FILE_NAME}, or the file."
            )
        with open(path, encoding="utf-8") as handle:
            try:
                data = json.load(handle)
            except json.JSONDecodeError as err:
                raise InvalidConfigError(f"{path} is not valid JSON ({err}); save the config again.") from None
        if not isinstance(data, dict):
            raise InvalidConfigError(f"{path} holds {type(data).__name__}, not a pruning config object.")
        version = data.pop(_VERSION_KEY, 0)
        if not isinstance(version, int) or version > CONFIG_VERSION:
            raise InvalidConfigError(
                f"{path} was written with config layout version {version!r}, newer than this hf_prune reads "
                f"({CONFIG_VERSION}); upgrade hf_prune (pip install -U hf_prune)."
            )
        if version < CONFIG_VERSION:
            data = _renamed_to_current(data)
        return cls.from_dict(data)


@dataclass
class ScheduledSparsityConfig(PruningConfig):
    """Fields of methods that reach a target sparsity over a schedule.

    The schedule runs between ``begin_step`` and ``end_step`` (optimizer steps). When a step is
    ``None`` it is the given fraction of the run's total optimizer steps, which the Trainer
    knows once training starts.
    """

    target_sparsity: float = field(default=0.8, metadata={"help": "Fraction of pruned weights set to zero, in [0, 1)."})
    begin_fraction: float = field(default=0.1, metadata={"help": "Schedule start as a fraction of total steps."})
    end_fraction: float = field(
        default=0.7, metadata={"help": "Schedule end (pattern frozen) as a fraction of total steps."}
    )
    begin_step: int | None = field(
        default=None, metadata={"help": "Schedule start in optimizer steps (overrides the fraction)."}
    )
    end_step: int | None = field(
        default=None, metadata={"help": "Schedule end in optimizer steps (overrides the fraction)."}
    )
    sparsity_distribution: Literal["per_matrix", "global"] = field(
        default="per_matrix",
        metadata={"help": "'per_matrix': every matrix reaches the target; 'global': the total does."},
    )

    def validate(self) -> None:
        super().validate()
        check_range("target_sparsity", self.target_sparsity, 0.0, 1.0, high_inclusive=False)
        check_range("begin_fraction", self.begin_fraction, 0.0, 1.0)
        check_range("end_fraction", self.end_fraction, 0.0, 1.0)
        if self.begin_fraction > self.end_fraction:
            raise InvalidConfigError(
                f"begin_fraction={self.begin_fraction} is after end_fraction={self.end_fraction}; "
                f"the schedule must start before it ends."
            )
        for name in ("begin_step", "end_step"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InvalidConfigError(f"{name}={value} is negative; use a step >= 0 or None.")
        if self.begin_step is not None and self.end_step is not None and self.begin_step > self.end_step:
            raise InvalidConfigError(f"begin_step={self.begin_step} is after end_step={self.end_step}.")

    def resolve_steps(self, total_steps: int) -> tuple[int, int]:
        """The schedule's (begin, end) optimizer steps for a run of ``total_steps``.

        Example:
            >>> from hf_prune import MagnitudeConfig
            >>> MagnitudeConfig().resolve_steps(600)
            (60, 420)
        """
        begin = self.begin_step if self.begin_step is not None else round(self.begin_fraction * total_steps)
        end = self.end_step if self.end_step is not None else round(self.end_fraction * total_steps)
        return begin, max(begin, end)


def _renamed_to_current(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` from an older config file, with each renamed field under its current name."""
    method = data.get("method")
    if not isinstance(method, str):
        return data
    renames = get_config_class(method).legacy_field_names
    return {renames.get(key, key): value for key, value in data.items()}
