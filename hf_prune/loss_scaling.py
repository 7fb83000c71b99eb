"""Gradient accumulation with sequence-classification heads: undo transformers' loss scaling bug.

The Trainer divides each micro-batch's loss by the accumulation steps, unless it believes the model
normalised the loss itself over the whole accumulated batch (``num_items_in_batch``). It believes
so of every model whose ``forward`` takes ``**kwargs`` and that sets no ``accepts_loss_kwargs``
(``Trainer.model_accepts_loss_kwargs``). Stock ``*ForSequenceClassification`` models take
``**kwargs`` but return the plain mean over their micro-batch. So with
``gradient_accumulation_steps=N`` the loss is the *sum* of N means (N times too large), as are the
gradients, the logged loss and the gradient norm that ``max_grad_norm`` clips (transformers
issues #37766 and #47688, open in 5.24).

``PruningTrainer`` corrects this for such models (their loss is then averaged as with one big
batch), and :class:`~hf_prune.PruningCallback` on a stock ``Trainer`` warns with the one-line fix:
set ``model.accepts_loss_kwargs = False`` before building the Trainer.

Example:
    >>> from transformers import BertConfig, BertForSequenceClassification
    >>> model = BertForSequenceClassification(BertConfig(hidden_size=8, num_hidden_layers=1,
    ...     num_attention_heads=2, intermediate_size=8))
    >>> loss_ignores_num_items(model)
    True
    >>> model.accepts_loss_kwargs = False   # the model says it: nothing left to correct
    >>> loss_ignores_num_items(model)
    False
"""

from __future__ import annotations

from typing import Any

from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

__all__ = ["loss_ignores_num_items", "FIX_HINT"]

FIX_HINT = "set model.accepts_loss_kwargs = False before building the Trainer (transformers issue #47688)"
_SEQUENCE_CLASSIFIERS = frozenset(MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES.values())


def loss_ignores_num_items(model: Any) -> bool:
    """Whether the Trainer would wrongly take ``model``'s loss as normalised over the accumulated
    batch: a stock sequence classifier (or a subclass, or one wrapped by PEFT) that does not say
    ``accepts_loss_kwargs`` itself."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if hasattr(inner, "accepts_loss_kwargs"):
        return False
    return any(cls.__name__ in _SEQUENCE_CLASSIFIERS for cls in type(inner).__mro__)
