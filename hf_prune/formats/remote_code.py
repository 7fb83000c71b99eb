"""Make compact and factored exports load with ``AutoModel*.from_pretrained(..., trust_remote_code=True)``.

The export gets ``hf_prune_loader.py`` (a copy of :mod:`hf_prune.formats.standalone_loader`
plus one class per Auto class that builds the model's architecture) and ``config.json`` an
``auto_map`` pointing at it. Models no Auto class builds (custom architectures) get neither and
load with ``hf_prune.load_pruned`` only.

Example:
    >>> from transformers import BertConfig, BertForSequenceClassification
    >>> model = BertForSequenceClassification(BertConfig(
    ...     hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    >>> auto_classes_for(model)
    ['AutoModelForSequenceClassification']
"""

from __future__ import annotations

import os

import transformers
from torch import nn

from . import standalone_loader

LOADER_FILE_NAME = "hf_prune_loader.py"
# The Auto classes checked, in this order; each one whose mapping builds type(model) is listed.
AUTO_CLASSES = (
    "AutoModel",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoModelForQuestionAnswering",
    "AutoModelForMultipleChoice",
    "AutoModelForMaskedLM",
    "AutoModelForPreTraining",
)


def auto_classes_for(model: nn.Module) -> list[str]:
    """Names of the Auto classes that build exactly ``type(model)`` from its config."""
    config = getattr(model, "config", None)
    names = []
    for auto_name in AUTO_CLASSES:
        mapping = getattr(getattr(transformers, auto_name, None), "_model_mapping", None)
        try:
            built = mapping[type(config)] if mapping is not None else None
        except KeyError:
            continue
        if built is type(model):
            names.append(auto_name)
    return names


def write_remote_loader(model: nn.Module, folder: str) -> dict[str, str]:
    """Write ``hf_prune_loader.py`` into ``folder``; returns the ``auto_map`` for ``config.json``.

    Returns ``{}`` (and writes nothing) when no Auto class builds the model's class.
    """
    architecture = type(model).__name__
    autos = auto_classes_for(model)
    if not autos or getattr(transformers, architecture, None) is not type(model):
        return {}
    with open(standalone_loader.__file__, encoding="utf-8") as handle:
        source = handle.read()
    class_name = f"HfPrune{architecture}"
    source += (
        f"\n\n# Written by hf_prune for this export: the class config.json's auto_map names.\n"
        f"{class_name} = pruned_model_class(transformers.{architecture})\n"
    )
    with open(os.path.join(folder, LOADER_FILE_NAME), "w", encoding="utf-8") as handle:
        handle.write(source)
    module = LOADER_FILE_NAME.removesuffix(".py")
    return {auto: f"{module}.{class_name}" for auto in autos}
