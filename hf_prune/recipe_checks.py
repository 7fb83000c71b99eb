"""Checking a recipe's values as YAML reads them: types from the annotations (recipe fields and
``transformers.TrainingArguments`` fields), ranges of the common training settings, and names
that moved, so every bad value is an error naming it, what was expected and an example.

Example:
    >>> conform("64", int, "max_length")
    64
    >>> checked_training({"max_steps": 100})
    {'max_steps': 100}
    >>> checked_training({"max_steps": -5})
    Traceback (most recent call last):
    ...
    hf_prune.errors.InvalidConfigError: Invalid training arguments: training.max_steps: -5 is out of range; expected an integer > 0 (or -1 to train for num_train_epochs instead).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union

from .errors import InvalidConfigError

# Ranges of the common numeric ``TrainingArguments`` fields, checked when a recipe is loaded
# (TrainingArguments itself accepts e.g. max_steps=-5, which silently trains three epochs).
_TRAINING_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "max_steps": (lambda v: v > 0 or v == -1, "an integer > 0 (or -1 to train for num_train_epochs instead)"),
    "num_train_epochs": (lambda v: v > 0, "a number > 0"),
    "learning_rate": (lambda v: v > 0, "a number > 0, e.g. 5.0e-5"),
    "per_device_train_batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "per_device_eval_batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "gradient_accumulation_steps": (lambda v: v >= 1, "an integer >= 1"),
    "eval_accumulation_steps": (lambda v: v >= 1, "an integer >= 1"),
    # transformers 5 reads warmup_steps below 1 as a fraction of the training steps (the default 0.1)
    "warmup_steps": (lambda v: v >= 0, "a number >= 0 (below 1: a fraction of the training steps, e.g. 0.1)"),
    "warmup_ratio": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "weight_decay": (lambda v: v >= 0, "a number >= 0"),
    "max_grad_norm": (lambda v: v >= 0, "a number >= 0"),
    "logging_steps": (lambda v: v > 0, "a number > 0 (below 1: a fraction of the training steps)"),
    "save_steps": (lambda v: v > 0, "a number > 0 (below 1: a fraction of the training steps)"),
    "eval_steps": (lambda v: v > 0, "a number > 0 (below 1: a fraction of the training steps)"),
    "seed": (lambda v: v >= 0, "an integer >= 0"),
    "data_seed": (lambda v: v >= 0, "an integer >= 0"),
    "dataloader_num_workers": (lambda v: v >= 0, "an integer >= 0"),
}
# Names older transformers releases (and many tutorials) use, for a clearer hint than a close match.
_RENAMED_TRAINING_KEYS = {
    "warmup_ratio": "warmup_steps (a value below 1 is a fraction of the training steps, e.g. warmup_steps: 0.1)",
    "evaluation_strategy": "eval_strategy",
    "no_cuda": "use_cpu",
}
# TrainingArguments fields the recipe sets itself.
_RECIPE_OWNED_TRAINING_KEYS = {
    "output_dir": "set the recipe's top-level output_dir instead (checkpoints go beside it, in <output_dir>-work)",
}
FIELD_EXAMPLES = {
    "model": "sentence-transformers/all-MiniLM-L6-v2",
    "task": "movie_sentiment",
    "pruning": "{method: rpp, target_sparsity: 0.8}",
    "training": "{max_steps: 600, learning_rate: 5.0e-5}",
    "max_length": "64",
    "output_dir": "outputs/demo",
    "dense_baseline": "true",
    "export_format": "dense",
    "name": "my_recipe",
    "baseline_files": "[results/dense.json]",
    "distillation": "{teacher: dense_baseline, alpha: 0.5, temperature: 2.0}",
}


def _training_fields() -> dict[str, Any]:
    """``TrainingArguments`` field name -> its annotation (``Any`` where it is only a string)."""
    from transformers import TrainingArguments

    return {f.name: (Any if isinstance(f.type, str) else f.type) for f in dataclasses.fields(TrainingArguments)}


def checked_training(training: Mapping[Any, Any]) -> dict[str, Any]:
    """``training`` with every key a ``TrainingArguments`` field, every value of its type (number
    strings read as numbers) and the common numeric settings in range."""
    import transformers

    fields = _training_fields()
    checked: dict[str, Any] = {}
    for key, value in training.items():
        where = f"Invalid training arguments: training.{key}"
        if key in _RECIPE_OWNED_TRAINING_KEYS:
            raise InvalidConfigError(f"{where} is set by the recipe; {_RECIPE_OWNED_TRAINING_KEYS[key]}.")
        if key not in fields:
            if key in _RENAMED_TRAINING_KEYS:
                hint = f"use {_RENAMED_TRAINING_KEYS[key]}"
            else:
                close = difflib.get_close_matches(str(key), list(fields), n=3)
                hint = f"did you mean {' or '.join(map(repr, close))}?" if close else "check the spelling"
            raise InvalidConfigError(
                f"Invalid training arguments: {key!r} under training: is not a transformers.TrainingArguments "
                f"field (transformers {transformers.__version__}); {hint}"
            )
        value = conform(value, fields[key], where[len("Invalid training arguments: ") :], "Invalid training arguments")
        test, expected = _TRAINING_RANGES.get(key, (None, ""))
        if test is not None and value is not None and not test(value):
            raise InvalidConfigError(f"{where}: {value!r} is out of range; expected {expected}.")
        checked[key] = value
    return checked


def conform(value: Any, annotation: Any, name: str, prefix: str = "") -> Any:
    """``value`` if it has type ``annotation`` (a number string as the number it spells, for a
    number field: PyYAML reads ``5e-5`` as a string), else an error naming it and the type."""
    if _is_instance(value, annotation):
        return value
    if isinstance(value, str):
        number = _number_from_text(value, annotation)
        if number is not None:
            return number
    if prefix:  # a TrainingArguments field
        hint = f" (the type of transformers.TrainingArguments.{name.split('.', 1)[-1]})"
    else:
        hint = f", e.g. {name}: {FIELD_EXAMPLES[name]}" if name in FIELD_EXAMPLES else ""
    head = f"{prefix}: {name}" if prefix else name
    raise InvalidConfigError(f"{head}: {value!r} is {describe_value(value)}; expected {_expected(annotation)}{hint}.")


def _members(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation) if typing.get_origin(annotation) in (Union, types.UnionType) else (annotation,)


def _is_instance(value: Any, annotation: Any) -> bool:
    """Whether ``value`` (as YAML reads it) has type ``annotation``; annotations this does not
    know are accepted (TrainingArguments checks them when it is built)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    if origin in (Union, types.UnionType):
        return any(_is_instance(value, arg) for arg in args)
    if origin is Literal:
        return any(type(value) is type(arg) and value == arg for arg in args)
    if origin in (list, tuple, set) or annotation in (list, tuple, set):
        return isinstance(value, list) and (not args or all(_is_instance(item, args[0]) for item in value))
    if origin is dict or annotation is dict:
        return isinstance(value, dict)  # the keys and values are checked by their own reader
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return isinstance(value, annotation) or value in {member.value for member in annotation}
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _number_from_text(text: str, annotation: Any) -> int | float | None:
    """The number ``text`` spells, for an int or float field; ``None`` if it spells none."""
    members = _members(annotation)
    if int not in members and float not in members:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if int in members and number.is_integer():
        return int(number)
    return number if float in members else None


def _expected(annotation: Any) -> str:
    """``annotation`` in words: "an integer", "a number or null", "one of 'no', 'steps', 'epoch'"."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        if any(isinstance(a, type) and issubclass(a, enum.Enum) for a in args):
            args = tuple(a for a in args if a is not str)  # "an enum value or any string" is the enum
        return " or ".join(dict.fromkeys(_expected(arg) for arg in args))
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin in (list, tuple, set) or annotation in (list, tuple, set):
        return f"a list of {_expected(args[0])} values" if args else "a list"
    if origin is dict or annotation is dict:
        return "a mapping"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(repr(member.value) for member in annotation)
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return words.get(annotation, getattr(annotation, "__name__", str(annotation)))


def describe_value(value: Any) -> str:
    """What YAML made of a value, in words."""
    if value is None:
        return "null (empty)"
    words = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }
    return words.get(type(value), f"a {type(value).__name__}")
