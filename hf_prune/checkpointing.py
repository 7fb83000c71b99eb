"""Saving and restoring a method's resume state inside a Trainer checkpoint.

The state (masks, reweighting factors, gammas, schedule position) goes into one safetensors
file, ``hf_prune_state.safetensors``, with the JSON metadata in the file header. It is written
to a temporary name and renamed, so a crash never leaves a half-written state file.

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

from safetensors.torch import load_file, save_file

from .errors import MissingPruningStateError
from .methods.base import PruningMethod

STATE_FILE_NAME = "hf_prune_state.safetensors"
_METADATA_KEY = "hf_prune"


def save_method_state(method: PruningMethod, folder: str | os.PathLike[str]) -> str:
    """Write ``method``'s resume state into ``folder``; returns the file path."""
    tensors, metadata = method.state_dict()
    tensors = {key: value.detach().contiguous().cpu() for key, value in tensors.items()}
    path = os.path.join(folder, STATE_FILE_NAME)
    temporary = path + ".tmp"
    save_file(tensors, temporary, metadata={_METADATA_KEY: json.dumps(metadata)})
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
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        metadata = json.loads(handle.metadata()[_METADATA_KEY])
    method.load_state_dict(load_file(path), metadata)
