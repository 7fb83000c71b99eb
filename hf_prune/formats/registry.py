"""The export formats, declared in one place: name, save, measure, load, and what each stores.

A format is a :class:`FormatSpec`, registered by the module that implements it
(:mod:`~hf_prune.formats.dense`, :mod:`~hf_prune.formats.compact`,
:mod:`~hf_prune.formats.factored`). Methods do not list formats by name: each declares the
*weight structure* its result has (``PruningMethod.weight_structure``: ``"elementwise"`` zeros,
or ``"factored"`` low-rank layers), and each format declares the structures it can store. So
adding a format (a masks-only one, say) touches only its own module, and a new factorising
method gets the ``factored`` and ``dense`` formats by declaring ``weight_structure = "factored"``.
``save_pruned``, the recipe check, the CLI and the docs all read this registry.

Example:
    >>> from hf_prune.formats import available_formats, get_format
    >>> available_formats()
    ['dense', 'compact', 'factored', 'masks']
    >>> sorted(get_format("compact").structures)
    ['elementwise']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from ..errors import HfPruneError

WeightStructure = Literal["elementwise", "factored"]

# save(model, folder, pruned weight names) -> manifest fields (weights file, checksum, layout)
SaveFunction = Callable[[nn.Module, str, Sequence[str]], dict[str, Any]]
# measure(folder, manifest, pruned weight names) -> the report's numbers, read from the file
MeasureFunction = Callable[[str, Mapping[str, Any], Sequence[str]], dict[str, Any]]
# load(folder, manifest, **kwargs) -> the model, in eval mode
LoadFunction = Callable[..., nn.Module]


class UnknownFormatError(HfPruneError, ValueError):
    """An export format name that is not registered."""


class FormatMismatchError(HfPruneError, ValueError):
    """An export format that cannot store what the pruning method produced."""


@dataclass(frozen=True)
class FormatSpec:
    """One export format.

    Args:
        name: What users pass as ``format=`` and what the manifest records.
        description: One line for ``hf-prune formats`` and the docs.
        structures: The weight structures it stores (``"elementwise"``, ``"factored"``).
        save: Writes ``config.json`` and the weights into a folder; returns manifest fields.
        measure: The report's numbers (sparsity, parameters, bytes), read back from the folder.
        load: Builds the model from the folder (checked against the manifest).
        weights_files: The weights file names it writes (the rest of an export is JSON).
        loads_without_hf_prune: How someone without hf_prune loads it, for the docs and the CLI.
        holds_weights: Whether loading gives the exported weights (``masks`` holds only the
            pattern: loading applies it to the base model's weights).

    Example:
        >>> get_format("dense").loads_without_hf_prune
        'AutoModel*.from_pretrained(path)'
    """

    name: str
    description: str
    structures: frozenset[str]
    save: SaveFunction
    measure: MeasureFunction
    load: LoadFunction
    weights_files: tuple[str, ...]
    loads_without_hf_prune: str
    holds_weights: bool = True

    def accepts(self, structure: str) -> bool:
        """Whether this format can store a model whose pruned weights have ``structure``."""
        return structure in self.structures


_FORMATS: dict[str, FormatSpec] = {}


def register_format(spec: FormatSpec) -> FormatSpec:
    """Add ``spec`` to the registry; a name can be registered only once.

    Raises:
        ValueError: another format already has this name.
    """
    existing = _FORMATS.get(spec.name)
    if existing is not None and existing != spec:
        raise ValueError(f"An export format named {spec.name!r} is already registered; choose another name.")
    _FORMATS[spec.name] = spec
    return spec


def available_formats() -> list[str]:
    """Names of every registered format, in registration order."""
    return list(_FORMATS)


def get_format(name: str) -> FormatSpec:
    """The format registered as ``name``.

    Raises:
        UnknownFormatError: no such format; the message lists the registered ones.
    """
    try:
        return _FORMATS[name]
    except (KeyError, TypeError):
        raise UnknownFormatError(f"Unknown export format {name!r}; choose one of {available_formats()}.") from None


def formats_for(structure: str) -> list[str]:
    """The formats that can store weights of ``structure``.

    Example:
        >>> formats_for("factored")
        ['dense', 'factored']
    """
    return [name for name, spec in _FORMATS.items() if spec.accepts(structure)]


def check_format_fits(name: str, structure: str, method_name: str) -> FormatSpec:
    """The spec of ``name`` if it can store ``structure``; otherwise a clear error naming the fits.

    Example:
        >>> check_format_fits("factored", "elementwise", "magnitude")
        Traceback (most recent call last):
        ...
        hf_prune.formats.registry.FormatMismatchError: format='factored' cannot store what 'magnitude' produces (elementwise weights); use one of ['dense', 'compact', 'masks'].
    """
    spec = get_format(name)
    if not spec.accepts(structure):
        raise FormatMismatchError(
            f"format={name!r} cannot store what {method_name!r} produces ({structure} weights); "
            f"use one of {formats_for(structure)}."
        )
    return spec


def weights_file_names() -> set[str]:
    """Every weights file name a registered format writes (to recognise export folders)."""
    return {file for spec in _FORMATS.values() for file in spec.weights_files}


def format_table() -> str:
    """A markdown table of the registered formats (``hf-prune formats --markdown``, the docs).

    Example:
        >>> print(format_table().splitlines()[0])
        | format | stores | for methods producing | loads without hf_prune |
    """
    lines = [
        "| format | stores | for methods producing | loads without hf_prune |",
        "|---|---|---|---|",
    ]
    for spec in _FORMATS.values():
        files = ", ".join(f"`{os.path.basename(f)}`" for f in spec.weights_files)
        structures = ", ".join(sorted(spec.structures))
        lines.append(f"| `{spec.name}` | {spec.description} ({files}) | {structures} | {spec.loads_without_hf_prune} |")
    return "\n".join(lines)
