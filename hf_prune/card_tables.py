"""The cells of a model card's tables, and the numbers they read from an export's files.

Shared by :mod:`hf_prune.card_facts` (the card of one export) and :mod:`hf_prune.card_multitask`
(the per-task models of a multitask export). Every formatter returns a visible default
(:data:`NOT_RECORDED`, ``not set``, ...) for a value that is missing or of the wrong kind, and
:func:`_cells` makes rows that cannot break a markdown table: a card never shows an empty cell,
``None``, or a stray ``|``.

Example:
    >>> _pct(0.8), _bytes(90_881_032), _int(None), _change(100, 50)
    ('80.0%', '86.7 MiB', 'not recorded', '-50.0% (×0.5)')
    >>> _cells([["a|b", "", "line\\nbreak"]])
    [['a\\\\|b', 'not recorded', 'line break']]
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .formats import ExportFormatError

if TYPE_CHECKING:
    from .card_facts import Export

# The visible defaults of a slot whose value is not known: a card never shows an empty cell or None.
UNKNOWN = "unknown"
NOT_RECORDED = "not recorded"


def _read_json(folder: str, name: str) -> dict[str, Any] | None:
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ExportFormatError(f"{path} is not valid JSON ({err}); export the model again.") from None
    if not isinstance(data, dict):
        raise ExportFormatError(f"{path} does not hold a JSON object; export the model again.")
    return data


def _unique(items: Any) -> list[str]:
    return list(dict.fromkeys(str(item) for item in items if item))


def _rank_value(key: str, value: Any) -> str:
    if key.endswith("fraction"):
        return _pct(value)
    return _int(value) if isinstance(value, int) and not isinstance(value, bool) else _value(value)


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _rank_cell(entry: Mapping[str, Any] | None) -> str:
    if entry is None:
        return "not pruned"
    cell = f"{entry.get('rank')} / {entry.get('full_rank', UNKNOWN)}"
    return cell + " (dense)" if entry.get("form") == "dense" else cell


def _pct(value: Any, default: str = NOT_RECORDED) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        return default
    return f"{float(value):.1%}"


def _int(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, (int, float)) and not isinstance(value, bool) else NOT_RECORDED


def _bytes(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return NOT_RECORDED
    size, unit = float(value), "B"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            break
        size /= 1024
    return f"{int(value):,} B" if unit == "B" else f"{size:.1f} {unit}"


def _change(before: Any, after: Any) -> str:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (before, after))
    if not numbers or not before:
        return "not recorded"
    return f"{(after - before) / before:+.1%} (×{after / before:.3g})"


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return NOT_RECORDED
    return f"{float(value):.4g}"


def _value(value: Any) -> str:
    """A setting's value as a table cell."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(f"`{item}`" for item in value) or "none"
    if isinstance(value, Mapping):
        return f"`{json.dumps(value, sort_keys=True)}`"
    return f"`{value}`" if isinstance(value, str) else str(value)


def _join(value: str | Sequence[str]) -> str:
    return value if isinstance(value, str) else ", ".join(value)


def _cells(rows: Sequence[Sequence[Any]]) -> list[list[str]]:
    """Rows of table cells that cannot break a markdown table: no "|" or line break, never empty."""
    return [
        [str(cell).replace("|", "\\|").replace("\r", " ").replace("\n", " ").strip() or NOT_RECORDED for cell in row]
        for row in rows
    ]


# --- numbers the tables read from the export ------------------------------------------------------


def _ranks(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{module: {rank, full_rank, form, ...}}`` from a rank-pruning report; empty for others."""
    per_matrix = report.get("per_matrix")
    if not isinstance(per_matrix, Mapping):
        return {}
    return {
        str(name): dict(entry)
        for name, entry in per_matrix.items()
        if isinstance(entry, Mapping) and isinstance(entry.get("rank"), int)
    }


def _pruned_count(report: Mapping[str, Any]) -> int | str:
    names = report.get("pruned_weights") or report.get("saved_sparsity_per_matrix") or report.get("per_matrix")
    return len(names) if isinstance(names, (list, Mapping)) else UNKNOWN


def _model_sparsity(report: Mapping[str, Any], export_format: str) -> str:
    if export_format == "masks" and report.get("saved_model_sparsity") is None:
        return "not measured (the export holds no weights)"
    return _pct(report.get("saved_model_sparsity"), default="not measured")


def _matrix_sizes(export: Export, names: Sequence[str]) -> dict[str, int]:
    """Number of weights of each named matrix, from what the export records (no weights are read)."""
    sizes: dict[str, int] = {}
    for module, entry in _ranks(export.report).items():
        if isinstance(entry.get("dense_params"), int):
            sizes[f"{module}.weight"] = int(entry["dense_params"])
    for key in ("encoded_tensors", "masked_tensors"):
        entries = export.manifest.get(key)
        if not isinstance(entries, Mapping):
            continue
        for stored, entry in entries.items():
            shape = entry.get("shape") if isinstance(entry, Mapping) else None
            if isinstance(shape, list):
                # masks store backbone-relative keys (``encoder.layer.0...``); the report, full names
                for name in names:
                    if name == stored or name.endswith("." + str(stored)):
                        sizes[name] = math.prod(int(d) for d in shape)
    missing = [name for name in names if name not in sizes]
    if missing:
        sizes.update(_safetensors_sizes(export, missing))
    return sizes


def _safetensors_sizes(export: Export, names: Sequence[str]) -> dict[str, int]:
    """Shapes from the headers of a dense export's safetensors files (memory-mapped, no data read)."""
    from safetensors import SafetensorError, safe_open

    files = export.manifest.get("weights_files")
    sizes: dict[str, int] = {}
    for file in files if isinstance(files, list) else []:
        path = os.path.join(export.folder, str(file))
        if not os.path.isfile(path):
            continue
        try:
            with safe_open(path, framework="pt") as handle:
                keys = set(handle.keys())
                for name in names:
                    if name in keys:
                        sizes[name] = math.prod(handle.get_slice(name).get_shape())
        except (SafetensorError, OSError):
            continue
    return sizes


def _layer_mean(values: Sequence[float], names: Sequence[str], sizes: Mapping[str, int] | None) -> float | None:
    if not values:
        return None
    if sizes is None:
        return sum(values) / len(values)
    weights = [sizes[_weight_key(name, sizes)] for name in names]
    return sum(v * w for v, w in zip(values, weights)) / max(sum(weights), 1)


def _weight_key(name: str, sizes: Mapping[str, int]) -> str:
    """The key of ``sizes`` for a grid name (grid names drop ``.weight``)."""
    for key in (name, f"{name}.weight"):
        if key in sizes:
            return key
    return next(key for key in sizes if key.removesuffix(".weight").endswith(name))
