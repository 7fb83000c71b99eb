"""Which modules of a model get pruned.

Candidates are the ``nn.Linear`` layers inside the model's encoder backbone
(``model.base_model``): attention query/key/value/output and the feed-forward in/out layers.
Classifier heads and poolers sit outside the backbone's encoder and are never candidates; the
input word embedding is one when ``include_embeddings`` is set. Only weight matrices are pruned:
never biases or LayerNorm.

Example:
    >>> from transformers import BertConfig, BertForSequenceClassification
    >>> model = BertForSequenceClassification(BertConfig(
    ...     hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    >>> names = list(find_targets(model))
    >>> names[0], len(names)
    ('bert.encoder.layer.0.attention.self.query', 6)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from .errors import NoMatchingModulesError, UnsupportedModelError

# Linear layers of the backbone that are not part of the encoder stack proper.
_NON_ENCODER_PARTS = re.compile(r"(^|\.)pooler(\.|$)")


def _backbone(model: nn.Module) -> tuple[nn.Module, str]:
    """The encoder backbone and its name prefix inside ``model``.

    For an encoder-decoder model (T5, BART) it is the encoder only (``get_encoder()``): hf_prune
    prunes encoders; the decoder stays dense.
    """
    base = getattr(model, "base_model", None)
    if not isinstance(base, nn.Module):
        raise UnsupportedModelError(
            f"{type(model).__name__} has no `base_model`; hf_prune prunes Hugging Face "
            f"transformers models (PreTrainedModel subclasses such as BertForSequenceClassification)."
        )
    get_encoder = getattr(model, "get_encoder", None)
    if getattr(getattr(model, "config", None), "is_encoder_decoder", False) and callable(get_encoder):
        encoder = get_encoder()
        if isinstance(encoder, nn.Module) and encoder is not model:
            base = encoder
    if base is model:
        return model, ""
    for name, module in model.named_modules():
        if module is base:
            return base, name + "."
    raise UnsupportedModelError(f"Could not locate the base model inside {type(model).__name__}.")


def backbone_prefix(model: nn.Module) -> str:
    """The name prefix of the pruned backbone inside ``model`` (``""`` when it is the model).

    Example:
        >>> from transformers import BertConfig, BertForSequenceClassification
        >>> backbone_prefix(BertForSequenceClassification(BertConfig(
        ...     hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)))
        'bert.'
    """
    return _backbone(model)[1]


def weight_of(module: nn.Module) -> torch.Tensor:
    """``module.weight`` typed as a tensor (a target is an ``nn.Linear`` or an embedding).

    Example:
        >>> tuple(weight_of(nn.Linear(3, 2)).shape)
        (2, 3)
    """
    return cast(torch.Tensor, module.weight)


def _inside_layer_stacks(model: nn.Module) -> set[int]:
    """Ids of the modules inside an ``nn.ModuleList`` (the repeated encoder layers)."""
    inside: set[int] = set()
    for module in model.modules():
        if isinstance(module, nn.ModuleList):
            inside.update(id(m) for m in module.modules() if m is not module)
    return inside


def candidate_modules(model: nn.Module, include_embeddings: bool = False) -> dict[str, nn.Module]:
    """Every module that could be pruned, by full name, in model order.

    When the model is its own ``base_model`` (a bare encoder, or a custom class whose head sits
    beside its layers) there is no backbone boundary to keep heads out, so only Linear layers
    inside the repeated layer stack (an ``nn.ModuleList``) are candidates.
    """
    base, prefix = _backbone(model)
    in_stack = _inside_layer_stacks(model) if base is model else None
    candidates: dict[str, nn.Module] = {}
    get_embeddings = getattr(model, "get_input_embeddings", None)
    embedding = get_embeddings() if include_embeddings and callable(get_embeddings) else None
    for name, module in base.named_modules():
        full_name = prefix + name
        is_embedding = module is embedding  # (a variable: no narrowing of `module` to the embedding's type)
        if is_embedding:
            candidates[full_name] = module
        elif isinstance(module, nn.Linear) and not _NON_ENCODER_PARTS.search(name):
            if "embedding" in name and not include_embeddings:
                # Projections of the embeddings (ELECTRA's embeddings_project, ALBERT's
                # encoder.embedding_hidden_mapping_in) count as part of the embeddings.
                continue
            if in_stack is not None and id(module) not in in_stack:
                continue  # a head (classifier, lm_head) of a model that is its own base_model
            candidates[full_name] = module
    return candidates


def _check_patterns(kind: str, patterns: Sequence[str], names: Sequence[str]) -> None:
    for pattern in patterns:
        try:
            compiled = re.compile(pattern)
        except re.error as err:
            raise NoMatchingModulesError(f"{kind} pattern {pattern!r} is not a valid regex: {err}.") from None
        if not any(compiled.search(name) for name in names):
            examples = ", ".join(names[:4])
            raise NoMatchingModulesError(
                f"{kind} pattern {pattern!r} matches none of the {len(names)} prunable modules "
                f"(e.g. {examples}); fix the pattern or remove it."
            )


def find_targets(
    model: nn.Module,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    include_embeddings: bool = False,
) -> dict[str, nn.Module]:
    """The modules to prune, by full name, after include/exclude patterns.

    Raises:
        UnsupportedModelError: the model has no encoder backbone or no prunable layer.
        NoMatchingModulesError: a pattern matches nothing, or nothing is left after filtering.
    """
    for kind, patterns in (("include", include), ("exclude", exclude)):
        if isinstance(patterns, str):
            raise NoMatchingModulesError(
                f"{kind}={patterns!r} is one string; pass a list of regular expressions, e.g. {kind}=[{patterns!r}]."
            )
    candidates = candidate_modules(model, include_embeddings)
    if not candidates:
        conv1d = any(type(m).__name__ == "Conv1D" for m in model.modules())
        detail = (
            " Its layers are transformers' Conv1D (GPT-2 style decoder-only models), which hf_prune does not prune."
            if conv1d
            else ""
        )
        raise UnsupportedModelError(
            f"{type(model).__name__} has no nn.Linear layers in its encoder; hf_prune prunes "
            f"transformer encoders built from nn.Linear (BERT, RoBERTa, DistilBERT, ELECTRA, DeBERTa, T5's "
            f"encoder, ...).{detail}"
        )
    names = list(candidates)
    _check_patterns("include", include or [], names)
    _check_patterns("exclude", exclude or [], names)
    selected = {
        name: module
        for name, module in candidates.items()
        if (not include or any(re.search(p, name) for p in include))
        and not any(re.search(p, name) for p in (exclude or []))
    }
    if not selected:
        raise NoMatchingModulesError(
            f"include={include!r} and exclude={exclude!r} leave no module to prune out of "
            f"{len(names)} candidates; loosen the patterns."
        )
    return selected


def layer_group(name: str, module: nn.Module) -> str:
    """A coarse group for logging: 'embeddings', 'attention' or 'ffn'.

    Example:
        >>> layer_group("bert.encoder.layer.0.attention.self.query", nn.Linear(2, 2))
        'attention'
    """
    if isinstance(module, nn.Embedding) or "embedding" in name:
        return "embeddings"
    if re.search(r"attention|attn|(^|\.)(q|k|v|out)_lin($|\.)", name):
        return "attention"
    return "ffn"
