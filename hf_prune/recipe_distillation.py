"""A recipe's ``distillation:`` section: checked when the recipe loads, turned into a
:class:`~hf_prune.DistillationConfig` when the pruned model trains.

.. code-block:: yaml

    distillation:
      teacher: dense_baseline     # or a folder / an hf_prune export / a Hub id of a fine-tuned model
      alpha: 0.5
      temperature: 2.0
      hidden_weight: 0.0          # > 0 also matches hidden states (hidden_layers: auto or [0, 3, 6])

``teacher: dense_baseline`` distils from the recipe's own dense baseline (same model, task(s),
steps, data and seed, no pruning). That model is saved under the hf_prune cache beside the
baseline's result JSON, keyed by the same settings hash
(``~/.cache/hf_prune/baselines/<key>-model/``), and reused by every later run with those settings;
when only the result JSON is cached (or a committed baseline file matches), the dense model is
trained once more to have its weights.

Example:
    >>> parse_distillation({"teacher": "dense_baseline", "alpha": "0.7"})
    {'teacher': 'dense_baseline', 'alpha': 0.7}
    >>> parse_distillation({"teacher": "dense_baseline", "temprature": 2})
    Traceback (most recent call last):
    ...
    hf_prune.errors.InvalidConfigError: distillation: unknown key(s) ['temprature'] (did you mean 'temperature'?); valid keys: ['alpha', 'cache_teacher_logits', 'hidden_layers', 'hidden_weight', 'teacher', 'temperature'].
"""

from __future__ import annotations

import difflib
import logging
import os
import shutil
import typing
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from torch import nn

from .cache import cache_root
from .distillation import DistillationConfig
from .distillation.config import check_teacher_source
from .errors import InvalidConfigError
from .recipe_checks import conform, describe_value

logger = logging.getLogger(__name__)

DENSE_BASELINE = "dense_baseline"
_EXAMPLE = "{teacher: dense_baseline, alpha: 0.5, temperature: 2.0}"


def parse_distillation(section: Any) -> dict[str, Any] | None:
    """The ``distillation:`` section with its keys, types and ranges checked (nothing loaded yet);
    ``None`` when the recipe has none. Number strings (``5e-1``) become numbers."""
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise InvalidConfigError(
            f"distillation: {section!r} is {describe_value(section)}; expected a mapping, e.g. distillation: {_EXAMPLE}."
        )
    hints = typing.get_type_hints(DistillationConfig)
    known = sorted(item.name for item in fields(DistillationConfig))
    unknown = [key for key in section if key not in known]
    if unknown:
        close = [match for key in unknown for match in difflib.get_close_matches(str(key), known, n=1)]
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise InvalidConfigError(f"distillation: unknown key(s) {unknown}{hint}; valid keys: {known}.")
    teacher = section.get("teacher")
    if not isinstance(teacher, str) or not teacher.strip():
        raise InvalidConfigError(
            f"distillation.teacher: {teacher!r} is {describe_value(teacher)}; expected {DENSE_BASELINE!r} (the "
            f"recipe's dense baseline) or the folder / Hub id of a fine-tuned model, e.g. distillation: {_EXAMPLE}."
        )
    checked: dict[str, Any] = {"teacher": teacher}
    for key, value in section.items():
        if key != "teacher":
            checked[key] = conform(value, hints[key], f"distillation.{key}")
    try:  # ranges and combinations; a placeholder teacher, so that nothing is loaded or looked up
        DistillationConfig(**{**checked, "teacher": nn.Module()})
    except InvalidConfigError as err:
        raise InvalidConfigError(f"distillation: {err}") from None
    return checked


def uses_dense_teacher(section: Mapping[str, Any] | None) -> bool:
    """Whether the section distils from the recipe's dense baseline."""
    return section is not None and section.get("teacher") == DENSE_BASELINE


def check_teacher(section: Mapping[str, Any] | None) -> None:
    """A teacher given by folder or Hub id must be loadable (local checks only, nothing downloaded)."""
    if section is not None and not uses_dense_teacher(section):
        check_teacher_source(section["teacher"])


def dense_model_dir(baseline_key: str) -> str:
    """Where the dense baseline model of these settings is kept for ``teacher: dense_baseline``."""
    return os.path.join(cache_root(), "baselines", f"{baseline_key}-model")


def has_dense_model(folder: str) -> bool:
    """Whether ``folder`` holds a saved dense model (written whole, see :func:`save_dense_model`)."""
    return os.path.isfile(os.path.join(folder, "config.json"))


def save_dense_model(trainer: Any, folder: str) -> None:
    """Save the trained dense model (and tokenizer) to ``folder``, whole or not at all: written to a
    temporary folder first, then renamed, so an interrupted run never leaves half a teacher."""
    if trainer.args.should_save:
        temporary = folder + ".tmp"
        shutil.rmtree(temporary, ignore_errors=True)
        trainer.save_model(temporary)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(temporary, folder)
        logger.info("Saved the dense baseline model (distillation teacher) to %s", folder)
    trainer.accelerator.wait_for_everyone()


def distillation_config(section: Mapping[str, Any] | None, baseline_key: str) -> DistillationConfig | None:
    """The :class:`DistillationConfig` of the section (``dense_baseline`` resolved to its folder)."""
    if section is None:
        return None
    teacher = dense_model_dir(baseline_key) if uses_dense_teacher(section) else section["teacher"]
    return DistillationConfig(**{**section, "teacher": teacher})
