"""The ``compact`` format: each pruned matrix as its non-zero values plus a 1-bit mask.

Layout of ``model.compact.safetensors`` (safetensors, no pickle):

* ``<key>::mask``: ``uint8``, 1-D, ``ceil(numel / 8)`` bytes. Bit ``i`` of the matrix flattened
  in row-major (C) order is bit ``i % 8`` of byte ``i // 8``, least significant bit first
  (``numpy.packbits(..., bitorder="little")``); a 1 bit means the weight is non-zero. Padding
  bits in the last byte are 0.
* ``<key>::values``: 1-D, the matrix's dtype: the non-zero weights in the same row-major order.
* every other tensor of the state dict under its own key, as it is.

The manifest lists each encoded key with its shape, dtype and number of non-zeros. A matrix is
only encoded when that is smaller than storing it as is (below about 97% density in float32);
otherwise it is stored unchanged under its own key. The file is deliberately not called
``model.safetensors``: plain ``from_pretrained`` then fails clearly instead of loading garbage.

At 90% sparsity in float32 a matrix costs ``1/8 + 0.1 * 4`` bytes per weight, 0.131x its dense size.

Example:
    >>> import torch
    >>> weight = torch.tensor([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    >>> stored = encode_tensor(weight)
    >>> stored["mask"].tolist(), stored["values"].tolist()   # bits 1, 3, 8 set
    ([10, 1], [1.5, 2.0, 3.0])
    >>> torch.equal(decode_tensor(stored["mask"], stored["values"], (3, 3), "w"), weight)
    True
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..factorization import factored_modules
from .common import (
    ExportFormatError,
    build_model,
    dtype_name,
    fill_aliases,
    install_factored,
    load_strict,
    parse_dtype,
    read_checked_tensors,
    save_config,
    save_tensors,
    storage_state_dict,
)
from .measure import MASK_SUFFIX, VALUES_SUFFIX, measure_zeros
from .registry import FormatSpec, register_format
from .remote_code import write_remote_loader
from .standalone_loader import unpack_mask  # one decoder for hf_prune and the copy in exports

WEIGHTS_FILE_NAME = "model.compact.safetensors"
BIT_ORDER = "little"  # recorded in the manifest; a future layout could change it

# Bit weights 1, 2, 4, ..., 128: element j of a group of eight is bit j (least significant first).
_BIT_SHIFTS = torch.arange(8, dtype=torch.uint8)


def pack_mask(mask: torch.Tensor) -> torch.Tensor:
    """Pack a boolean tensor into ``uint8`` bytes, 8 flags a byte, least significant bit first.

    Example:
        >>> pack_mask(torch.tensor([True, False, False, True, False, False, False, False, True])).tolist()
        [9, 1]
    """
    flat = mask.flatten().to(torch.uint8)
    padded = torch.zeros(math.ceil(flat.numel() / 8) * 8, dtype=torch.uint8, device=flat.device)
    padded[: flat.numel()] = flat
    groups = padded.view(-1, 8) << _BIT_SHIFTS.to(flat.device)
    # The eight shifted bits never overlap, so a uint8 sum is an exact bitwise OR.
    return groups.sum(dim=1, dtype=torch.uint8)


def encode_tensor(weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"mask": packed bits, "values": non-zeros}`` of ``weight`` (``-0.0`` counts as zero)."""
    weight = weight.detach()
    nonzero = weight != 0
    return {"mask": pack_mask(nonzero), "values": weight[nonzero].contiguous()}


def encoded_bytes(weight: torch.Tensor) -> int:
    """Bytes :func:`encode_tensor` would store for ``weight`` (mask + values)."""
    return math.ceil(weight.numel() / 8) + int((weight != 0).sum()) * weight.element_size()


def decode_tensor(packed: torch.Tensor, values: torch.Tensor, shape: Sequence[int], where: str) -> torch.Tensor:
    """Rebuild the dense tensor, after checking mask, values and shape agree.

    Raises:
        ExportFormatError: the mask has the wrong length or dtype, has padding bits set, or its
            number of set bits differs from the number of values.
    """
    numel = math.prod(shape)
    if packed.dtype != torch.uint8 or packed.dim() != 1 or packed.numel() != math.ceil(numel / 8):
        raise ExportFormatError(
            f"{where}: the mask is {dtype_name(packed.dtype)} of shape {list(packed.shape)}, but a matrix of "
            f"shape {list(shape)} needs uint8 of shape [{math.ceil(numel / 8)}]; export the model again."
        )
    if values.dim() != 1:
        raise ExportFormatError(f"{where}: values have shape {list(values.shape)}, expected 1-D; export again.")
    flags = unpack_mask(packed, packed.numel() * 8)
    if bool(flags[numel:].any()):
        raise ExportFormatError(f"{where}: padding bits after the last weight are set; the mask is corrupted.")
    flags = flags[:numel]
    count = int(flags.sum())
    if count != values.numel():
        raise ExportFormatError(
            f"{where}: the mask marks {count} non-zero weights but {values.numel()} values are stored; the "
            f"file is corrupted or mixes exports. Export the model again."
        )
    dense = torch.zeros(numel, dtype=values.dtype, device=values.device)
    dense[flags] = values
    return dense.view(*shape)


def encode_state(
    state: Mapping[str, torch.Tensor], weight_names: Sequence[str]
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, str]]:
    """Tensors to write, the manifest's per-tensor entries, and the tied-weight aliases."""
    missing = [name for name in weight_names if name not in state]
    if missing:
        raise ValueError(
            f"format='compact' stores element-wise sparse weight matrices, but {missing[:3]} ({len(missing)}) "
            f"are not in the model's state dict (a rank-pruned layer compiled into FactorizedLinear?). Use "
            f"format='factored' for rank pruning, or format='dense'."
        )
    kept, aliases = storage_state_dict(state)
    tensors: dict[str, torch.Tensor] = {}
    entries: dict[str, Any] = {}
    names = {aliases.get(name, name) for name in weight_names}  # a tied target is encoded under its source
    for key, tensor in kept.items():
        if (
            key in names
            and tensor.is_floating_point()
            and encoded_bytes(tensor) < tensor.numel() * tensor.element_size()
        ):
            encoded = encode_tensor(tensor)
            tensors[key + MASK_SUFFIX], tensors[key + VALUES_SUFFIX] = encoded["mask"], encoded["values"]
            entries[key] = {
                "shape": list(tensor.shape),
                "dtype": dtype_name(tensor.dtype),
                "nnz": encoded["values"].numel(),
            }
        else:
            tensors[key] = tensor
    return tensors, entries, aliases


def save_compact(model: nn.Module, folder: str, weight_names: Sequence[str]) -> dict[str, Any]:
    """Write ``config.json``, the trust_remote_code loader and the model's tensors in the compact
    layout; returns the manifest fields.

    Example:
        >>> # manifest = save_compact(model, folder, ["bert.encoder.layer.0.attention.self.query.weight"])
    """
    save_config(model, folder, auto_map=write_remote_loader(model, folder))
    tensors, entries, aliases = encode_state(model.state_dict(), weight_names)
    written = save_tensors(tensors, os.path.join(folder, WEIGHTS_FILE_NAME), "compact")
    # Factored layers (if any) are listed too, so the loader rebuilds the same module structure.
    return {
        **written,
        "bit_order": BIT_ORDER,
        "encoded_tensors": entries,
        "aliases": aliases,
        "factored_modules": factored_modules(model),
    }


def decode_state(tensors: dict[str, torch.Tensor], manifest: Mapping[str, Any], path: str) -> dict[str, torch.Tensor]:
    """Replace each encoded pair in ``tensors`` (read from ``path``) by its dense matrix."""
    if manifest.get("bit_order", BIT_ORDER) != BIT_ORDER:
        raise ExportFormatError(
            f"{path}: bit order {manifest.get('bit_order')!r} is not the {BIT_ORDER!r} this hf_prune reads; "
            f"upgrade hf_prune or export the model again."
        )
    state = dict(tensors)
    for key, entry in (manifest.get("encoded_tensors") or {}).items():
        where = f"{path} entry {key!r}"
        packed, values = state.pop(key + MASK_SUFFIX, None), state.pop(key + VALUES_SUFFIX, None)
        if packed is None or values is None:
            raise ExportFormatError(f"{where}: the mask or the values are missing from the file; export again.")
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not (isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise ExportFormatError(f"{where}: the manifest gives no valid shape ({shape!r}); export again.")
        dtype = parse_dtype(entry.get("dtype"), where)
        if values.dtype != dtype or entry.get("nnz") != values.numel():
            raise ExportFormatError(
                f"{where}: the file holds {values.numel()} {dtype_name(values.dtype)} values but the manifest "
                f"expects {entry.get('nnz')} {dtype_name(dtype)}; the folder mixes exports. Export again."
            )
        state[key] = decode_tensor(packed, values, shape, where)
    stray = [key for key in state if key.endswith((MASK_SUFFIX, VALUES_SUFFIX))]
    if stray:
        raise ExportFormatError(f"{path}: encoded tensors {stray[:3]} are not in the manifest; export again.")
    return state


def read_compact_state(folder: str, manifest: Mapping[str, Any], with_aliases: bool = True) -> dict[str, torch.Tensor]:
    """The decoded state dict of a compact export, after the file checks (tied keys filled in)."""
    path = os.path.join(folder, str(manifest.get("weights_file")))
    state = decode_state(read_checked_tensors(folder, manifest), manifest, path)
    return fill_aliases(state, manifest, path) if with_aliases else state


def measure_compact(folder: str, manifest: Mapping[str, Any], weight_names: Sequence[str]) -> dict[str, Any]:
    """The report's numbers: sizes from the encoded file, sparsity from the decoded matrices."""
    stored = read_checked_tensors(folder, manifest)
    view = decode_state(dict(stored), manifest, os.path.join(folder, manifest["weights_file"]))
    return measure_zeros(stored, view, int(manifest["weights_bytes"]), manifest, weight_names)


def load_compact(folder: str, manifest: Mapping[str, Any], model_class: type | None = None, **kwargs: Any) -> nn.Module:
    """Build the model from ``config.json`` and load the decoded weights strictly (eval mode)."""
    state = read_compact_state(folder, manifest)  # before building the model: a bad file fails fast
    model = build_model(folder, manifest, model_class, **kwargs)
    install_factored(model, manifest.get("factored_modules") or {}, folder)
    return load_strict(model, state, os.path.join(folder, str(manifest["weights_file"])))


SPEC = register_format(
    FormatSpec(
        name="compact",
        description="non-zero values + a 1-bit mask per pruned matrix",
        structures=frozenset({"elementwise"}),
        save=save_compact,
        measure=measure_compact,
        load=load_compact,
        weights_files=(WEIGHTS_FILE_NAME,),
        loads_without_hf_prune="AutoModel*.from_pretrained(path, trust_remote_code=True)",
    )
)
