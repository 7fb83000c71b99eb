"""Saving and restoring a method's resume state inside a Trainer checkpoint.

The state (masks, reweighting factors, gammas, schedule position) goes into one safetensors
file, ``hf_prune_state.safetensors``, with the JSON metadata in the file header. It is written
to a temporary name and renamed, so a crash never leaves a half-written state file. Tensors are
stored flat as ``group::key`` (:mod:`hf_prune.state_dicts`); the header records the layout version
(:data:`STATE_VERSION`), and a file written by a newer layout is refused instead of misread.

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

import json
import os
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
# Bumped when the layout changes so that an older hf_prune would misread the file.
# 0: written before the version was recorded (own optimizers stored as ``<group>::<index>::<field>``).
STATE_VERSION = 1


def save_method_state(method: PruningMethod, folder: str | os.PathLike[str]) -> str:
    """Write ``method``'s resume state into ``folder``; returns the file path."""
    groups, metadata = method.state_dict()
    tensors = {key: value.detach().contiguous().cpu() for key, value in flatten_state(groups).items()}
    path = os.path.join(folder, STATE_FILE_NAME)
    temporary = path + ".tmp"
    header = {_METADATA_KEY: json.dumps(metadata), _VERSION_KEY: str(STATE_VERSION)}
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


def load_method_state(method: PruningMethod, folder: str | os.PathLike[str]) -> None:
    """Restore ``method`` from a checkpoint folder written by :func:`save_method_state`."""
    path = os.path.join(folder, STATE_FILE_NAME)
    if not os.path.isfile(path):
        raise MissingPruningStateError(
            f"{folder} holds no {STATE_FILE_NAME}: it was not saved by a run with hf_prune pruning "
            f"(or the save was interrupted). Resume from a checkpoint written by PruningTrainer or a "
            f"Trainer with PruningCallback, or start a new run."
        )
    try:
        with safe_open(path, framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        metadata = json.loads(header[_METADATA_KEY])
    except (SafetensorError, KeyError, json.JSONDecodeError) as err:
        raise CheckpointMismatchError(
            f"{path} is not a readable hf_prune state file ({type(err).__name__}: {err}); the checkpoint is "
            f"damaged. Resume from another checkpoint or start a new run."
        ) from None
    version = header.get(_VERSION_KEY, "0")
    if not version.isdigit() or int(version) > STATE_VERSION:
        raise CheckpointMismatchError(
            f"{path} was written with pruning-state layout version {version!r}, newer than this hf_prune reads "
            f"({STATE_VERSION}); upgrade hf_prune (pip install -U hf_prune) to resume from it."
        )
    if int(version) == 0:
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
