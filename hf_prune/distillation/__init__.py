"""Knowledge distillation from a dense teacher while pruning, for both Trainer paths.

- :class:`DistillationConfig`: the teacher (folder, Hub id or model), ``alpha``, ``temperature``,
  optional hidden-state matching; checked when built.
- :class:`DistillationCallback`: the stock ``Trainer`` path (pass it as a callback *and* as
  ``compute_loss_func``); ``PruningTrainer(distillation=...)`` wires it the same way.

Example:
    >>> from hf_prune import DistillationCallback, DistillationConfig
    >>> # distill = DistillationCallback(DistillationConfig(teacher="outputs/dense", alpha=0.5))
    >>> # Trainer(model=m, args=a, train_dataset=d, callbacks=[distill], compute_loss_func=distill)
"""

from .callback import DistillationCallback
from .config import DistillationConfig

__all__ = ["DistillationCallback", "DistillationConfig"]
