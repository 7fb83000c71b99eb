"""PruningCallback: pruning for a stock ``transformers.Trainer``.

The callback is thin: it hands Trainer events to the method (see ``methods/base.py``).

* ``on_init_end``: the method attaches to the model (bad patterns fail here, before training).
* ``on_train_begin``: the schedule learns the run length; when resuming, the method's state is
  restored from the checkpoint.
* ``on_optimizer_step``: one method step per optimizer step (so gradient accumulation is
  handled), skipped when the optimizer skipped its step (e.g. fp16 overflow).
* ``on_log``: adds ``prune/*`` scalars to the training logs.
* ``on_save``: writes the method's state into the checkpoint folder.
* ``on_train_end``: finalizes a schedule the run did not finish, so the target is always met.

Example:
    >>> from hf_prune import PruningCallback, RPPConfig
    >>> callback = PruningCallback(RPPConfig(target_sparsity=0.8))
    >>> callback.method.name
    'rpp'

    then ``Trainer(model=model, args=args, train_dataset=ds, callbacks=[callback])``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .checkpointing import has_method_state, load_method_state, save_method_state
from .config import PruningConfig
from .errors import MissingPruningStateError, UnsupportedModelError
from .methods import PruningMethod, create_method

logger = logging.getLogger(__name__)

LOG_PREFIX = "prune/"


class PruningCallback(TrainerCallback):
    """Runs a pruning method inside a stock ``Trainer``.

    Args:
        pruning: A pruning config (e.g. ``RPPConfig(...)``) or a method object.
        resume_from_checkpoint: Folder to restore pruning state from when resuming. Leave it
            ``None`` with ``PruningTrainer`` (it passes the folder) or when the checkpoint is
            ``output_dir/checkpoint-<step>`` (found automatically).
    """

    def __init__(
        self,
        pruning: PruningConfig | PruningMethod,
        resume_from_checkpoint: str | os.PathLike[str] | None = None,
    ) -> None:
        self.method = pruning if isinstance(pruning, PruningMethod) else create_method(pruning)
        self.resume_from_checkpoint = resume_from_checkpoint
        # PruningTrainer turns these off: it adds the stats to logs itself, and writes the state
        # inside save_model, before the Trainer rotates or pushes the checkpoint.
        self.inject_logs = True
        self.save_state_on_save = True

    def on_init_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        model = kwargs.get("model")
        if model is not None and not self.method.attached:
            self.method.attach(model)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        model = kwargs["model"]
        if not self.method.attached:
            self.method.attach(model)
        elif not self.method.attached_to(model):
            # Trainer(model_init=...) builds a new model per train(); a method holds one model.
            raise UnsupportedModelError(
                "The Trainer is training a different model object than the one the pruning method "
                "was attached to (model_init, or one PruningCallback reused across Trainers). Create a "
                "new PruningCallback / PruningTrainer for each model; model_init is not supported."
            )
        self.method.begin(state.max_steps)
        if state.global_step > 0:
            self._restore(args, state)

    def _restore(self, args: TrainingArguments, state: TrainerState) -> None:
        folder = self.resume_from_checkpoint or os.path.join(
            str(args.output_dir), f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        )
        if not self.resume_from_checkpoint and not has_method_state(folder):
            raise MissingPruningStateError(
                f"Resuming at step {state.global_step}, but {folder} holds no hf_prune state. Pass "
                f"PruningCallback(..., resume_from_checkpoint=<checkpoint folder>) or use PruningTrainer."
            )
        load_method_state(self.method, folder)
        logger.info("Restored %s pruning state from %s", self.method.name, folder)

    def on_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        optimizer = kwargs.get("optimizer")
        if getattr(optimizer, "step_was_skipped", False):
            # The weights did not change; the schedule does not advance either.
            self.method.on_skipped_step()
            return
        # global_step is incremented after this event: the step just applied is global_step + 1.
        self.method.step(state.global_step + 1, optimizer)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        logs = kwargs.get("logs")
        if not self.inject_logs or logs is None or "loss" not in logs:
            return
        # Reporting integrations that ran before this callback miss these; PruningTrainer adds
        # them before any callback runs.
        stats = self.prefixed_stats()
        logs.update(stats)
        if state.log_history:
            state.log_history[-1].update(stats)

    def prefixed_stats(self) -> dict[str, float]:
        """The method's stats with the ``prune/`` prefix, as they appear in the logs.

        Example:
            >>> from hf_prune import MagnitudeConfig
            >>> PruningCallback(MagnitudeConfig()).prefixed_stats()["prune/scheduled_sparsity"]
            0.0
        """
        return {LOG_PREFIX + key: value for key, value in self.method.stats().items()}

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        # A stock Trainer has already rotated (save_total_limit) and pushed the checkpoint at this
        # point; PruningTrainer writes the state earlier, in save_model.
        if not args.should_save or not self.save_state_on_save:
            return
        folder = os.path.join(str(args.output_dir), f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
        if os.path.isdir(folder):
            save_method_state(self.method, folder)
        else:
            logger.warning(
                "No checkpoint folder %s to save the pruning state into (hyper-parameter search runs "
                "save elsewhere); use PruningTrainer, which writes it with the model.",
                folder,
            )

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        if self.method.finished:
            # load_best_model_at_end may have brought back weights from before the pattern froze.
            self.method.reapply()
        else:
            logger.warning(
                "Training ended before the %s schedule finished (step %d); projecting onto the final "
                "target now so the promised sparsity holds.",
                self.method.name,
                state.global_step,
            )
            self.method.finalize()
