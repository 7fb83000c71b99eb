"""PruningTrainer: a ``transformers.Trainer`` that also takes a pruning config.

Without ``pruning`` it is a plain Trainer. With it, it adds a :class:`PruningCallback`, puts the
``prune/*`` scalars into every training log (before any reporting integration sees it), passes
the resume folder to the callback, and can save the pruned model. The loss is untouched: methods
with a penalty apply its gradient to their own tensors in ``step()``, which is what lets a stock
Trainer + callback behave identically. It overrides only public Trainer hooks.

Example:
    >>> from hf_prune import PruningTrainer, RPPConfig
    >>> # trainer = PruningTrainer(model=model, args=args, train_dataset=ds,
    >>> #                          pruning=RPPConfig(target_sparsity=0.8))
    >>> # trainer.train(); trainer.save_pruned("out/")
"""

from __future__ import annotations

import os
from typing import Any

from transformers import Trainer
from transformers.trainer_utils import get_last_checkpoint

from .callback import PruningCallback
from .checkpointing import save_method_state
from .config import PruningConfig
from .export import save_pruned
from .methods import PruningMethod


class PruningTrainer(Trainer):
    """``Trainer`` plus pruning; every Trainer argument works as usual.

    Args:
        pruning: A pruning config (``RPPConfig``, ``MagnitudeConfig``, ...) or method object;
            ``None`` gives a plain Trainer.
        *args, **kwargs: Passed to ``transformers.Trainer``.
    """

    def __init__(self, *args: Any, pruning: PruningConfig | PruningMethod | None = None, **kwargs: Any) -> None:
        self.pruning_callback = PruningCallback(pruning) if pruning is not None else None
        if self.pruning_callback is not None:
            self.pruning_callback.inject_logs = False
            self.pruning_callback.save_state_on_save = False
            kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), self.pruning_callback]
        super().__init__(*args, **kwargs)

    @property
    def pruning_method(self) -> PruningMethod | None:
        return self.pruning_callback.method if self.pruning_callback is not None else None

    def train(self, resume_from_checkpoint: str | bool | None = None, *args: Any, **kwargs: Any):
        if self.pruning_callback is not None and resume_from_checkpoint:
            folder = resume_from_checkpoint
            if folder is True:
                folder = get_last_checkpoint(self.args.output_dir)  # Trainer raises if None
            self.pruning_callback.resume_from_checkpoint = folder
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.pruning_callback is not None and "loss" in logs:
            logs.update(self.pruning_callback.prefixed_stats())
        super().log(logs, start_time)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call)
        # Inside _save_checkpoint this runs first, before rotation and Hub pushes: the
        # checkpoint is complete (weights + pruning state) by the time anything else sees it.
        if _internal_call and self.pruning_method is not None and self.args.should_save:
            save_method_state(self.pruning_method, str(output_dir or self.args.output_dir))

    def save_pruned(self, output_dir: str | os.PathLike[str], **kwargs: Any) -> dict[str, Any] | None:
        """Finalize the method and save the pruned model (see :func:`hf_prune.save_pruned`).

        Every process finalizes (the model must be identical everywhere); only the main process
        writes. Returns the pruning report (``None`` on other processes).

        Example:
            >>> # report = trainer.save_pruned("outputs/pruned", format="compact")
        """
        if self.pruning_method is None:
            raise ValueError("This PruningTrainer has no pruning config; nothing pruned to save.")
        report = None
        if self.args.should_save:
            report = save_pruned(
                self.accelerator.unwrap_model(self.model),
                output_dir,
                self.pruning_method,
                processing_class=self.processing_class,
                **kwargs,
            )
        else:
            self.pruning_method.finalize()
            self.pruning_method.materialize()
        self.accelerator.wait_for_everyone()
        return report
