"""A loader for compact and factored exports that needs only torch, safetensors and transformers.

hf_prune copies this file into every compact and factored export as ``hf_prune_loader.py`` and
appends one line per supported Auto class, e.g.
``HfPruneBertForSequenceClassification = pruned_model_class(transformers.BertForSequenceClassification)``;
``config.json`` gets an ``auto_map`` naming those classes. So a user without hf_prune loads the
folder (local or on the Hub) with one call::

    AutoModelForSequenceClassification.from_pretrained(path_or_repo, trust_remote_code=True)

and gets the architecture's own class (``BertForSequenceClassification``) with the decoded
weights, rank-pruned layers as two small ``nn.Linear`` (``FactorizedLinear``). Without
``trust_remote_code`` transformers uses its own class, finds no ``model.safetensors`` and fails
with a clear error instead of loading random weights.

This module must stay self-contained: no hf_prune import, because the copy runs where hf_prune
is not installed. The checks mirror ``hf_prune.formats`` (size and SHA-256 of the weights file,
mask/values agreement, strict keys), with shorter messages.

Example:
    >>> model = FactorizedLinear(4, 3, rank=2, bias=True)
    >>> sorted(name for name, _ in model.named_parameters())
    ['down.weight', 'up.bias', 'up.weight']
    >>> unpack_mask(torch.tensor([9, 1], dtype=torch.uint8), 9).nonzero().flatten().tolist()
    [0, 3, 8]
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import torch
import transformers
from safetensors.torch import load_file
from torch import nn
from transformers.utils import cached_file

MANIFEST_FILE_NAME = "hf_prune_export.json"
# Hub download options, here and in hf_prune.load_pruned (which imports this tuple).
HUB_KWARGS = ("cache_dir", "force_download", "token", "revision", "local_files_only", "subfolder")
_MASK, _VALUES = "::mask", "::values"


class FactorizedLinear(nn.Module):
    """``x -> up(down(x))``: the compiled form of a rank-pruned ``nn.Linear`` (same keys as hf_prune's)."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool) -> None:
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.down = nn.Linear(in_features, rank, bias=False)
        self.up = nn.Linear(rank, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))


def unpack_mask(packed: torch.Tensor, numel: int) -> torch.Tensor:
    """The first ``numel`` flags of a little-endian bit-packed ``uint8`` mask, as booleans."""
    bits = (packed.view(-1, 1) >> torch.arange(8, dtype=torch.uint8, device=packed.device)) & 1
    return bits.flatten()[:numel].bool()


def _file(path: str, name: str, hub: dict[str, Any]) -> str:
    """Local path of ``name`` in the folder or Hub repo ``path`` (downloaded if needed)."""
    resolved = cached_file(path, name, **hub)
    if resolved is None:
        raise OSError(f"{path} has no {name}; copy or download the whole export folder.")
    return resolved


def _read_state(path: str, manifest: dict[str, Any], hub: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The export's state dict: file checked against the manifest, encoded matrices decoded."""
    weights = _file(path, manifest["weights_file"], hub)
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if manifest.get("weights_sha256") not in (None, digest.hexdigest()):
        raise OSError(f"{weights} does not match the SHA-256 in {MANIFEST_FILE_NAME}: download it again.")
    state = load_file(weights)
    if manifest.get("bit_order", "little") != "little":
        raise ValueError(f"{weights}: bit order {manifest.get('bit_order')!r} is not supported by this loader.")
    for key, entry in (manifest.get("encoded_tensors") or {}).items():
        packed, values = state.pop(key + _MASK, None), state.pop(key + _VALUES, None)
        numel = math.prod(entry["shape"])
        if packed is None or values is None or packed.numel() != math.ceil(numel / 8):
            raise ValueError(f"{weights}: the mask or values of {key!r} are missing or cut; the file is corrupted.")
        flags = unpack_mask(packed, numel)
        if int(flags.sum()) != values.numel():
            raise ValueError(f"{weights}: the mask and values of {key!r} disagree; the file is corrupted.")
        dense = torch.zeros(numel, dtype=values.dtype)
        dense[flags] = values
        state[key] = dense.view(*entry["shape"])
    for alias, source in (manifest.get("aliases") or {}).items():
        state[alias] = state[source]
    return state


def load_export(base_class: Any, path: str, config: Any = None, **kwargs: Any) -> nn.Module:
    """Build ``base_class`` from the folder's config, install its factored layers, load strictly."""
    hub = {key: kwargs[key] for key in HUB_KWARGS if kwargs.get(key) is not None}
    with open(_file(path, MANIFEST_FILE_NAME, hub), encoding="utf-8") as handle:
        manifest = json.load(handle)
    if manifest.get("format") not in ("compact", "factored"):
        raise ValueError(f"{path}: format {manifest.get('format')!r} is not a compact or factored export.")
    state = _read_state(path, manifest, hub)
    if config is None:
        config = transformers.AutoConfig.from_pretrained(path, **hub)
    if hasattr(config, "auto_map"):
        del config.auto_map  # the model below is the plain class; saving it must not point here
    model = base_class._from_config(config)
    for name, spec in (manifest.get("factored_modules") or {}).items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        layer = FactorizedLinear(spec["in_features"], spec["out_features"], spec["rank"], spec["bias"])
        setattr(parent, child, layer.to(dtype=next(model.parameters()).dtype))
    result = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    missing = [key for key in result.missing_keys if key not in tied]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{path}: the weights do not match {base_class.__name__} (missing {missing[:3]}, unexpected "
            f"{result.unexpected_keys[:3]}); the folder mixes exports."
        )
    model.tie_weights()
    dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
    if isinstance(dtype, str) and dtype != "auto":
        dtype = getattr(torch, dtype)
    if isinstance(dtype, torch.dtype):
        model = model.to(dtype)
    return model.eval()


def pruned_model_class(base_class: type) -> type:
    """A subclass of ``base_class`` whose ``from_pretrained`` reads an hf_prune export."""

    class HfPruneModel(base_class):
        @classmethod
        def from_pretrained(cls, pretrained_model_name_or_path: str, *model_args: Any, **kwargs: Any) -> nn.Module:
            return load_export(base_class, str(pretrained_model_name_or_path), **kwargs)

    HfPruneModel.__name__ = HfPruneModel.__qualname__ = f"HfPrune{base_class.__name__}"
    return HfPruneModel
