"""Saving and restoring a method's resume state inside a Trainer checkpoint.

The state (masks, reweighting factors, gammas, schedule position) goes into one safetensors
file, ``hf_prune_state.safetensors``, with JSON metadata in the file header. It is written to a
temporary name and renamed, so a crash never leaves a half-written state file. Tensors are
stored flat as ``group::key`` (:mod:`hf_prune.state_dicts`). The header also records the layout
version (:data:`STATE_VERSION`; a file from a newer layout is refused instead of misread), a
SHA-256 of the tensors (a corrupted file is refused, not resumed from) and the pruning config
(resuming with another method or other settings is refused, naming what differs).

Example:
    >>> import tempfile, torch
    >>> from transformers import BertConfig, BertForSequenceClassification
    >>> from hf_prune import FrozenMaskConfig, create_method
    >>> model = BertForSequenceClassification(BertConfig(
    ...     hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    >>> method = create_method(FrozenMaskConfig()); method.attach(model)
    >>> folder = tempfile.mkdtemp()
    >>> _ = save_method_state(method, folder)
    >>> load_method_state(method, folder)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import CheckpointMismatchError, MissingPruningStateError
from .methods.base import PruningMethod
from .state_dicts import flatten_state, unflatten_state

STATE_FILE_NAME = "hf_prune_state.safetensors"
_METADATA_KEY = "hf_prune"
_VERSION_KEY = "hf_prune_state_version"
_DIGEST_KEY = "hf_prune_state_sha256"
_CONFIG_KEY = "hf_prune_config"
# Bumped when the layout changes so that an older hf_prune would misread the file.
# 0: written before the version was recorded (own optimizers stored as ``<group>::<index>::<field>``).
STATE_VERSION = 1


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in key order.

    Example:
        >>> a = tensors_digest({"x": torch.zeros(2)})
        >>> a == tensors_digest({"x": torch.zeros(2)}), a == tensors_digest({"x": torch.ones(2)})
        (True, False)
    """
    digest = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key].detach().contiguous().cpu()
        digest.update(f"{key}|{tensor.dtype}|{list(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save_method_state(method: PruningMethod, folder: str | os.PathLike[str]) -> str:
    """Write ``method``'s resume state into ``folder``; returns the file path."""
    groups, metadata = method.state_dict()
    tensors = {key: value.detach().contiguous().cpu() for key, value in flatten_state(groups).items()}
    path = os.path.join(folder, STATE_FILE_NAME)
    temporary = path + ".tmp"
    header = {
        _METADATA_KEY: json.dumps(metadata),
        _VERSION_KEY: str(STATE_VERSION),
        _DIGEST_KEY: tensors_digest(tensors),
        _CONFIG_KEY: json.dumps(method.config.to_dict(), sort_keys=True),
    }
    save_file(tensors, temporary, metadata=header)
    os.replace(temporary, path)
    return path


def has_method_state(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` (a checkpoint) holds a saved pruning state.

    Example:
        >>> has_method_state("/nonexistent")
        False
    """
    return os.path.isfile(os.path.join(folder, STATE_FILE_NAME))


def _state_path(folder: str | os.PathLike[str]) -> str:
    path = os.path.join(folder, STATE_FILE_NAME)
    if not os.path.isfile(path):
        raise MissingPruningStateError(
            f"{folder} holds no {STATE_FILE_NAME}: it was not saved by a run with hf_prune pruning "
            f"(or the save was interrupted). Resume from a checkpoint written by PruningTrainer or a "
            f"Trainer with PruningCallback, or start a new run."
        )
    return path


def _read_header(path: str) -> dict[str, str]:
    try:
        with safe_open(path, framework="pt") as handle:
            header = dict(handle.metadata() or {})
    except SafetensorError as err:
        raise CheckpointMismatchError(
            f"{path} is not a readable hf_prune state file ({err}); the checkpoint is damaged. Resume from "
            f"another checkpoint or start a new run."
        ) from None
    if _METADATA_KEY not in header:
        raise CheckpointMismatchError(
            f"{path} has no hf_prune metadata; the checkpoint is damaged. Resume from another checkpoint."
        )
    version = header.get(_VERSION_KEY, "0")
    if not version.isdigit() or int(version) > STATE_VERSION:
        raise CheckpointMismatchError(
            f"{path} was written with pruning-state layout version {version!r}, newer than this hf_prune reads "
            f"({STATE_VERSION}); upgrade hf_prune (pip install -U hf_prune) to resume from it."
        )
    return header


def check_state_matches(method: PruningMethod, folder: str | os.PathLike[str]) -> None:
    """Refuse to resume ``method`` from ``folder`` when the saved method or settings differ.

    Reads only the file header, so ``PruningTrainer`` calls it before the Trainer restores its
    optimizer (whose own error for another method's parameters would say nothing useful).

    Raises:
        MissingPruningStateError: no state file in ``folder``.
        CheckpointMismatchError: unreadable, from a newer hf_prune, or another method / config.
    """
    path = _state_path(folder)
    header = _read_header(path)
    saved_config = json.loads(header[_CONFIG_KEY]) if _CONFIG_KEY in header else None
    saved_method = json.loads(header[_METADATA_KEY]).get("method")
    if saved_method != method.name:
        raise CheckpointMismatchError(
            f"{folder} holds pruning state for method {saved_method!r}, but this run uses {method.name!r}; resume "
            f"with the same pruning config, or start a new run (a new output_dir)."
        )
    if saved_config is not None:
        current = method.config.to_dict()
        differing = sorted(key for key in set(saved_config) | set(current) if saved_config.get(key) != current.get(key))
        if differing:
            changes = ", ".join(f"{key}: {saved_config.get(key)!r} -> {current.get(key)!r}" for key in differing)
            raise CheckpointMismatchError(
                f"{folder} was written with other {method.name} settings ({changes}); a schedule cannot change "
                f"mid-run. Resume with the saved settings, or start a new run."
            )


def load_method_state(method: PruningMethod, folder: str | os.PathLike[str]) -> None:
    """Restore ``method`` from a checkpoint folder written by :func:`save_method_state`.

    Raises:
        MissingPruningStateError: no state file in ``folder``.
        CheckpointMismatchError: the file is damaged or corrupted, from a newer hf_prune, or for
            another method, other settings or other modules.
    """
    check_state_matches(method, folder)
    path = _state_path(folder)
    header = _read_header(path)
    try:
        with safe_open(path, framework="pt") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        metadata = json.loads(header[_METADATA_KEY])
    except (SafetensorError, json.JSONDecodeError) as err:
        raise CheckpointMismatchError(
            f"{path} is not a readable hf_prune state file ({type(err).__name__}: {err}); the checkpoint is "
            f"damaged. Resume from another checkpoint or start a new run."
        ) from None
    if _DIGEST_KEY in header and tensors_digest(tensors) != header[_DIGEST_KEY]:
        raise CheckpointMismatchError(
            f"{path} does not match the checksum written with it: the pruning state is corrupted. Resume from "
            f"another checkpoint or start a new run."
        )
    if int(header.get(_VERSION_KEY, "0")) == 0:
        tensors = _upgrade_from_version_0(tensors)
    method.load_state_dict(unflatten_state(tensors), metadata)


def _upgrade_from_version_0(tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Version 0 stored a method's own optimizer as ``optimizer::<i>::<field>`` (rank) or
    ``score_optim::<i>::<field>`` (movement); version 1 as ``optimizer::<i>.<field>``."""
    upgraded: dict[str, Any] = {}
    for key, tensor in tensors.items():
        parts = key.split("::")
        if len(parts) == 3 and parts[0] in ("optimizer", "score_optim"):
            key = f"optimizer::{parts[1]}.{parts[2]}"
        upgraded[key] = tensor
    return upgraded
