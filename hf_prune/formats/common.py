"""What every export format shares: the manifest, checked file reads, and the strict load.

An export folder holds ``config.json``, one weights file and the manifest
``hf_prune_export.json``, which says how to read that file back. Reads never trust the folder:
a missing file, a checksum that disagrees with the manifest, a safetensors file that does not
parse, or keys that do not match the model built from the config each raise an error that names
the file and says what to do, so a load is complete or it fails.

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = write_manifest(folder, {"format": "compact", "model_class": "BertModel"})
    >>> read_manifest(folder)["format"]
    'compact'
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import logging
import os
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from typing import Any, cast

import torch
import transformers
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ..errors import HfPruneError
from ..factorization import FactorizedLinear, replace_module

logger = logging.getLogger(__name__)

MANIFEST_FILE_NAME = "hf_prune_export.json"
REPORT_FILE_NAME = "pruning_report.json"  # the pruning report every export holds
# Bumped when a change to the layout would make an older hf_prune misread a newer export.
# (Added fields an older reader can ignore, like ``model_module``, need no bump.)
MANIFEST_VERSION = 1
# A format name (see hf_prune.formats.registry for the registered ones).
ExportFormat = str


class ExportFormatError(HfPruneError, ValueError):
    """An export whose manifest or weights file is corrupted or does not match the model."""


class MissingExportFileError(HfPruneError, FileNotFoundError):
    """An export folder that lacks a file its format needs."""


def write_manifest(folder: str | os.PathLike[str], manifest: Mapping[str, Any]) -> str:
    """Write ``manifest`` (plus the layout version) as ``hf_prune_export.json``; returns the path.

    Example:
        >>> import tempfile
        >>> os.path.basename(write_manifest(tempfile.mkdtemp(), {"format": "dense"}))
        'hf_prune_export.json'
    """
    content = {"hf_prune_export_version": MANIFEST_VERSION, **manifest, "versions": _versions()}
    path = os.path.join(folder, MANIFEST_FILE_NAME)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2)
    return path


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of an export folder, or ``None`` when the folder has none.

    Raises:
        ExportFormatError: the manifest is not valid JSON, or was written by a newer layout.

    Example:
        >>> import tempfile
        >>> read_manifest(tempfile.mkdtemp()) is None
        True
    """
    path = os.path.join(folder, MANIFEST_FILE_NAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ExportFormatError(
            f"{path} is not valid JSON ({err}); the export is damaged, export the model again."
        ) from None
    if not isinstance(manifest, dict) or "format" not in manifest:
        raise ExportFormatError(f"{path} has no 'format' entry; the export is damaged, export the model again.")
    version = manifest.get("hf_prune_export_version", MANIFEST_VERSION)
    if not isinstance(version, int) or version > MANIFEST_VERSION:
        raise ExportFormatError(
            f"{path} uses export layout version {version!r}, newer than this hf_prune reads "
            f"({MANIFEST_VERSION}); upgrade hf_prune (pip install -U hf_prune)."
        )
    return manifest


def _versions() -> dict[str, str | None]:
    try:
        ours: str | None = importlib_metadata.version("hf_prune")
    except importlib_metadata.PackageNotFoundError:
        ours = None
    return {"hf_prune": ours, "transformers": transformers.__version__, "torch": torch.__version__}


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float16`` -> ``"float16"`` (the manifest spelling).

    Example:
        >>> dtype_name(torch.bfloat16)
        'bfloat16'
    """
    return str(dtype).removeprefix("torch.")


def parse_dtype(name: Any, where: str) -> torch.dtype:
    """The torch dtype a manifest names; ``where`` locates the entry for the error message."""
    dtype = getattr(torch, name, None) if isinstance(name, str) else None
    if not isinstance(dtype, torch.dtype):
        raise ExportFormatError(f"{where} names an unknown dtype {name!r}; export the model again.")
    return dtype


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks so big weight files need no extra memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def storage_state_dict(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``state`` without repeated tensors, plus ``{dropped key: kept key}`` for the repeats.

    Tied weights (a decoder sharing the input embedding) appear twice in a state dict with the
    same storage, and safetensors refuses shared storage, so each is written once and the
    manifest records the alias; a loader fills the alias back in before ``load_state_dict``.

    Example:
        >>> shared = torch.ones(2)
        >>> kept, aliases = storage_state_dict({"a": shared, "b": shared})
        >>> list(kept), aliases
        (['a'], {'b': 'a'})
    """
    kept: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    views: dict[tuple[Any, ...], str] = {}
    storages: set[int] = set()
    for key, tensor in state.items():
        tensor = tensor.detach()
        pointer = tensor.untyped_storage().data_ptr() if tensor.numel() else None
        view = (pointer, tensor.storage_offset(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)
        if pointer is not None and view in views:
            aliases[key] = views[view]
            continue
        if pointer is not None and pointer in storages:
            tensor = tensor.clone()  # a different view into shared storage: safetensors needs its own copy
        elif pointer is not None:
            views[view] = key
            storages.add(pointer)
        kept[key] = tensor.contiguous()
    return kept, aliases


def save_tensors(tensors: Mapping[str, torch.Tensor], path: str, export_format: str) -> dict[str, Any]:
    """Write ``tensors`` to a safetensors file; returns its manifest entry (name, bytes, sha256)."""
    # CPU copies are made one tensor at a time by safetensors; "pt" marks PyTorch tensor layout.
    save_file(dict(tensors), path, metadata={"format": "pt", "hf_prune_format": export_format})
    return {
        "weights_file": os.path.basename(path),
        "weights_bytes": os.path.getsize(path),
        "weights_sha256": file_sha256(path),
    }


def check_file(
    folder: str | os.PathLike[str], name: str, export_format: str, size: Any = None, sha256: Any = None
) -> str:
    """The path of export file ``name`` after checking it exists and has the recorded size and SHA-256.

    Raises:
        MissingExportFileError: the file is missing.
        ExportFormatError: its size or SHA-256 differs from the manifest (a truncated or corrupted copy).
    """
    path = os.path.join(folder, name)
    manifest_path = os.path.join(folder, MANIFEST_FILE_NAME)
    if not os.path.isfile(path):
        raise MissingExportFileError(
            f"{path} is missing; the {export_format} export in {folder} is incomplete. Copy the whole export "
            f"folder again (every file), or export the model again."
        )
    actual = os.path.getsize(path)
    if size is not None and actual != size:
        raise ExportFormatError(
            f"{path} is {actual} bytes but the manifest recorded {size}: the file is truncated or corrupted. "
            f"Copy it again from the original export, or export the model again."
        )
    if sha256 is not None and file_sha256(path) != sha256:
        raise ExportFormatError(
            f"{path} does not match the SHA-256 in {manifest_path}: the file is corrupted. Copy it again from "
            f"the original export, or export the model again."
        )
    return path


def read_checked_tensors(folder: str | os.PathLike[str], manifest: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Every tensor of the manifest's weights file, after checking the file is the one written.

    Raises:
        MissingExportFileError: the manifest names no weights file or the file is missing.
        ExportFormatError: the file's size or SHA-256 differs from the manifest (a truncated or
            corrupted copy), or it does not parse as safetensors.
    """
    name = manifest.get("weights_file")
    manifest_path = os.path.join(folder, MANIFEST_FILE_NAME)
    if not isinstance(name, str) or os.path.basename(name) != name:
        raise ExportFormatError(f"{manifest_path} names no valid weights file ({name!r}); export the model again.")
    path = check_file(
        folder, name, str(manifest.get("format")), manifest.get("weights_bytes"), manifest.get("weights_sha256")
    )
    try:
        with safe_open(path, framework="pt") as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}
    except SafetensorError as err:
        raise ExportFormatError(
            f"{path} is not a readable safetensors file ({err}); copy it again or export the model again."
        ) from None


def save_config(model: nn.Module, folder: str, auto_map: Mapping[str, str] | None = None) -> None:
    """Write ``config.json`` naming the model class, without touching ``model.config``.

    ``save_pretrained`` would also write ``model.safetensors``; a compact or factored folder must
    not hold one, so plain ``from_pretrained`` fails clearly instead of loading something else.
    ``auto_map`` (Auto class -> ``module.Class``) points ``trust_remote_code`` loading at the
    export's own loader (:mod:`hf_prune.formats.remote_code`).
    """
    config: Any = copy.deepcopy(cast(Any, model).config)
    config.architectures = [type(model).__name__]
    if auto_map:
        config.auto_map = dict(auto_map)
    elif hasattr(config, "auto_map"):
        del config.auto_map  # a loaded export's map would point at a file this folder lacks
    first = next(iter(model.parameters()), None)
    if first is not None:
        config.dtype = dtype_name(first.dtype)
    config.save_pretrained(folder)


def model_class_fields(model: nn.Module) -> dict[str, str]:
    """What the manifest records to rebuild ``type(model)``: its name and importable module.

    Example:
        >>> from transformers import BertConfig, BertModel
        >>> model_class_fields(BertModel(BertConfig(hidden_size=8, num_hidden_layers=1,
        ...     num_attention_heads=2, intermediate_size=8)))
        {'model_class': 'BertModel', 'model_module': 'transformers.models.bert.modeling_bert'}
    """
    cls = type(model)
    if cls.__module__ == "__main__":
        logger.warning(
            "%s is defined in __main__ (a script or notebook); the export records it, but it loads back only "
            "where that class can be imported. Define it in a module, or pass model_class= to load_pruned.",
            cls.__name__,
        )
    return {"model_class": cls.__name__, "model_module": cls.__module__}


def model_class_of(
    folder: str | os.PathLike[str], manifest: Mapping[str, Any], model_class: type | None = None
) -> type[transformers.PreTrainedModel]:
    """The model class an export was saved from.

    ``model_class`` (given by the caller) wins; otherwise the class named in the manifest is
    imported from its recorded module (``model_module``), or looked up in ``transformers`` for
    exports that predate the module field.

    Raises:
        ExportFormatError: the class cannot be imported or is not a ``PreTrainedModel``; the message
            names it and its module.
    """
    where = os.path.join(os.fspath(folder), MANIFEST_FILE_NAME)
    name, module_name = manifest.get("model_class"), manifest.get("model_module")
    cls: Any = model_class
    if cls is None and isinstance(name, str):
        cls = getattr(transformers, name, None) if not module_name else _import_class(module_name, name, where)
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
        raise ExportFormatError(
            f"{where} names model class {name!r} (module {module_name!r}), which cannot be loaded here: it is "
            f"not a transformers PreTrainedModel that this transformers {transformers.__version__} provides. "
            f"Install the package that defines it, or pass model_class=<the class> to load_pruned."
        )
    return cls


def _import_class(module_name: str, name: str, where: str) -> Any:
    """``module_name.name``, or a clear error saying how to make it importable."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        hint = (
            "it was defined in a script or notebook (__main__)"
            if module_name == "__main__"
            else f"importing {module_name!r} failed ({err})"
        )
        raise ExportFormatError(
            f"{where} names model class {name!r} from module {module_name!r}, but {hint}. Install or import "
            f"the package that defines it, or pass model_class=<the class> to load_pruned."
        ) from None
    cls = getattr(module, name, None)
    if cls is None:
        raise ExportFormatError(
            f"{where} names model class {name!r}, but module {module_name!r} has no such class (renamed or "
            f"removed?). Pass model_class=<the class> to load_pruned, or export the model again."
        )
    return cls


def build_model(
    folder: str | os.PathLike[str], manifest: Mapping[str, Any], model_class: type | None = None, **kwargs: Any
) -> nn.Module:
    """A freshly initialised model of the manifest's class, from ``config.json`` (no download).

    ``kwargs`` go to ``_from_config`` (``dtype``, ``attn_implementation``).
    """
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise MissingExportFileError(
            f"{os.path.join(folder, 'config.json')} is missing; copy the whole export folder again or "
            f"export the model again."
        )
    cls = model_class_of(folder, manifest, model_class)
    # The class's own config class: a custom model_type is not known to AutoConfig.
    config_class: Any = cls.config_class or transformers.AutoConfig
    config = config_class.from_pretrained(folder)
    if hasattr(config, "auto_map"):
        del config.auto_map  # points at the folder's trust_remote_code loader, not at this model
    # _from_config, not from_pretrained: the weights come from our own file, and nothing is fetched.
    return cls._from_config(config, **kwargs)


def fill_aliases(state: dict[str, torch.Tensor], manifest: Mapping[str, Any], path: str) -> dict[str, torch.Tensor]:
    """Put each tied weight back under every key that shares it (the manifest's ``aliases``)."""
    for alias, source in (manifest.get("aliases") or {}).items():
        if source not in state:
            raise ExportFormatError(
                f"{path}: tied weight {alias!r} points at {source!r}, which is not in the file; export the model again."
            )
        state[alias] = state[source]
    return state


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> nn.Module:
    """``load_state_dict`` that refuses any missing or unexpected key, then ties and evals.

    Missing keys are allowed only where the model ties them to another weight
    (``all_tied_weights_keys``); ``tie_weights()`` then points them at their source.
    """
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # size mismatches
        raise ExportFormatError(
            f"{where} does not fit the model built from its config.json ({err}); the folder mixes files "
            f"from different exports. Export the model again."
        ) from None
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    missing = [key for key in result.missing_keys if key not in tied]
    if missing or result.unexpected_keys:
        raise ExportFormatError(
            f"{where} does not match the model built from its config.json: missing keys "
            f"{missing[:5]} ({len(missing)}), unexpected keys {result.unexpected_keys[:5]} "
            f"({len(result.unexpected_keys)}). The folder mixes files from different exports; export the "
            f"model again."
        )
    tie_weights = getattr(model, "tie_weights", None)
    if callable(tie_weights):
        tie_weights()
    return model.eval()


def install_factored(model: nn.Module, modules: Mapping[str, Any], folder: str) -> None:
    """Swap each listed ``nn.Linear`` of a freshly built model for a FactorizedLinear of its shape."""
    where = os.path.join(folder, MANIFEST_FILE_NAME)
    if not isinstance(modules, Mapping):
        raise ExportFormatError(f"{where}: 'factored_modules' is not a mapping; export the model again.")
    for name, spec in modules.items():
        try:
            linear = model.get_submodule(name)
            in_features, out_features, rank = (int(spec[k]) for k in ("in_features", "out_features", "rank"))
            bias = bool(spec["bias"])
        except (AttributeError, KeyError, TypeError, ValueError):
            raise ExportFormatError(
                f"{where}: factored module {name!r} ({spec!r}) is not a valid entry for this model; "
                f"export the model again."
            ) from None
        if not isinstance(linear, nn.Linear) or (linear.in_features, linear.out_features) != (
            in_features,
            out_features,
        ):
            raise ExportFormatError(
                f"{where}: factored module {name!r} is {in_features}->{out_features}, but the model built from "
                f"config.json has {linear!r} there; the folder mixes exports. Export the model again."
            )
        replace_module(
            model,
            name,
            FactorizedLinear(
                in_features,
                out_features,
                rank,
                bias=bias,
                device=linear.weight.device,
                dtype=linear.weight.dtype,
            ),
        )
