"""PruningCallback: pruning for a stock ``transformers.Trainer``.

The callback is thin: it hands Trainer events to the method (see ``methods/base.py``).

* ``on_init_end``: the method attaches to the model (bad patterns fail here, before training).
* ``on_train_begin``: a model the Trainer built anew (``model_init``, each hyper-parameter
  trial) gets a fresh method; the schedule learns the run length; when resuming, the method's
  state is restored from the checkpoint.
* ``on_pre_optimizer_step``: under an fp16 ``GradScaler``, method-owned gradients are unscaled.
* ``on_optimizer_step``: one method step per optimizer step (so gradient accumulation is
  handled), skipped when the optimizer skipped its step (e.g. fp16 overflow).
* ``on_log``: adds ``prune/*`` scalars to the training logs (``log_stats=True``).
* ``on_save``: writes the method's state into the checkpoint folder (``save_state_on_save=True``).
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
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .checkpointing import has_method_state, load_method_state, save_method_state
from .config import PruningConfig
from .errors import InvalidConfigError, MissingPruningStateError, UnsupportedModelError
from .loss_scaling import FIX_HINT, loss_ignores_num_items
from .methods import PruningMethod, create_method

logger = logging.getLogger(__name__)

LOG_PREFIX = "prune/"

# What ``pruning=`` may be: a config, a method object, or a function of the hyper-parameter trial
# (``None`` outside a search) returning a config, e.g. to search over target sparsities.
PruningSpec = PruningConfig | PruningMethod | Callable[[Any], PruningConfig]


class PruningCallback(TrainerCallback):
    """Runs a pruning method inside a stock ``Trainer``.

    Args:
        pruning: A pruning config (e.g. ``RPPConfig(...)``): every model the Trainer trains gets a
            fresh method from it, so ``model_init`` and ``hyperparameter_search`` work. A method
            object: it follows the one model it attaches to. A function ``trial -> config``:
            called for every new model; ``PruningTrainer`` passes the trial as ``model_init``
            gets it (an optuna ``Trial``, a dict for ray / wandb), a stock Trainer's callback the
            trial's parameters (``state.trial_params``, a dict); ``None`` outside a search.
        resume_from_checkpoint: Folder to restore pruning state from when resuming. Leave it
            ``None`` with ``PruningTrainer`` (it passes the folder) or when the checkpoint is
            ``output_dir/checkpoint-<step>`` (found automatically).
        log_stats: Add the ``prune/*`` scalars to the Trainer's logs in ``on_log``.
            ``PruningTrainer`` sets it to ``False``: it adds them before any reporting
            integration sees the logs.
        save_state_on_save: Write the method's state into each checkpoint in ``on_save``.
            ``PruningTrainer`` sets it to ``False``: it writes the state with the model, before
            the Trainer rotates or pushes the checkpoint.

    Example:
        >>> from hf_prune import MagnitudeConfig
        >>> callback = PruningCallback(lambda trial: MagnitudeConfig(target_sparsity=0.5))
        >>> callback.method is None    # built for the first model the Trainer gives it
        True
    """

    def __init__(
        self,
        pruning: PruningSpec,
        resume_from_checkpoint: str | os.PathLike[str] | None = None,
        *,
        log_stats: bool = True,
        save_state_on_save: bool = True,
    ) -> None:
        if not isinstance(pruning, (PruningConfig, PruningMethod)) and not callable(pruning):
            raise InvalidConfigError(
                f"pruning={pruning!r} is not a pruning config, a method, or a function of the trial returning a "
                f"config; pass e.g. RPPConfig(target_sparsity=0.8)."
            )
        self.pruning = pruning
        self.method: PruningMethod | None = pruning if isinstance(pruning, PruningMethod) else None
        if isinstance(pruning, PruningConfig):
            self.method = create_method(pruning)
        self.resume_from_checkpoint = resume_from_checkpoint
        # Set by PruningTrainer, which averages accumulated losses itself (hf_prune.loss_scaling).
        self.loss_scaling_checked = False
        self.log_stats = log_stats
        self.save_state_on_save = save_state_on_save
        self.added_parameters: list[str] = []  # model parameters the last attach created (rank's factors)

    # ----------------------------------------------------------------------------- the model
    def attach(self, model: nn.Module, trial: Any = None) -> PruningMethod:
        """Attach the method to ``model``; a model other than the attached one gets a fresh method.

        Called by ``on_init_end`` / ``on_train_begin``, and by ``PruningTrainer`` for every model
        ``model_init`` builds (before the optimizer, so parameters the method adds are trained).

        Raises:
            UnsupportedModelError: the callback was given a method object that is attached to
                another model (a method follows one model; pass a config instead).
        """
        method = self.method
        if method is not None and method.attached and method.attached_to(model):
            return method
        if method is not None and method.attached:
            if isinstance(self.pruning, PruningMethod):
                raise UnsupportedModelError(
                    "The Trainer is training a different model object than the one the pruning method was "
                    "attached to (model_init, or one method reused across Trainers). Pass the pruning config "
                    "instead of a method object: every model then gets a fresh method."
                )
            method = None
        if method is None:
            method = self._new_method(trial)
        before = {id(p) for p in model.parameters()}
        method.attach(model)
        self.added_parameters = [name for name, p in model.named_parameters() if id(p) not in before]
        self.method = method
        return method

    def _new_method(self, trial: Any) -> PruningMethod:
        if isinstance(self.pruning, PruningConfig):
            return create_method(self.pruning)
        if isinstance(self.pruning, PruningMethod):  # unreachable: a method object is never replaced
            return self.pruning
        config = self.pruning(trial)
        if not isinstance(config, PruningConfig):
            raise InvalidConfigError(
                f"The pruning function returned {config!r}, not a pruning config; return e.g. "
                f"RPPConfig(target_sparsity=...)."
            )
        return create_method(config)

    def _current_method(self) -> PruningMethod:
        if self.method is None:
            raise RuntimeError("PruningCallback: no model attached yet; the Trainer attaches it at on_init_end.")
        return self.method

    # ----------------------------------------------------------------------------- events
    def on_init_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        model = kwargs.get("model")
        if model is not None:
            self.attach(model)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        model = kwargs["model"]
        if args.gradient_accumulation_steps > 1 and not self.loss_scaling_checked and loss_ignores_num_items(model):
            logger.warning(
                "gradient_accumulation_steps=%d with %s: the stock Trainer sums the micro-batch losses instead "
                "of averaging them (unless its compute_loss_func normalises them, as DistillationCallback does), "
                "so the loss, the gradients and their clipping are %dx too large. To train as with one large "
                "batch, %s, or use hf_prune.PruningTrainer (which does this).",
                args.gradient_accumulation_steps,
                type(model).__name__,
                args.gradient_accumulation_steps,
                FIX_HINT,
            )
        method = self.attach(model, state.trial_params)
        _check_optimizer_trains(model, kwargs.get("optimizer"), method, self.added_parameters)
        method.begin(state.max_steps)
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
        method = self._current_method()
        load_method_state(method, folder)
        logger.info("Restored %s pruning state from %s", method.name, folder)

    def on_pre_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        # Before the optimizer step the scaler still holds the scale this step's backward used.
        scaler = getattr(kwargs.get("optimizer"), "scaler", None)
        method = self._current_method()
        if scaler is not None and scaler.is_enabled() and method.owned_tensors():
            method.unscale_gradients(float(scaler.get_scale()))

    def on_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        optimizer = kwargs.get("optimizer")
        method = self._current_method()
        if getattr(optimizer, "step_was_skipped", False):
            # The weights did not change; the schedule does not advance either.
            method.on_skipped_step()
            return
        # global_step is incremented after this event: the step just applied is global_step + 1.
        method.step(state.global_step + 1, optimizer)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        logs = kwargs.get("logs")
        if not self.log_stats or logs is None or "loss" not in logs:
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
        if self.method is None:
            return {}
        return {LOG_PREFIX + key: value for key, value in self.method.stats().items()}

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        # A stock Trainer has already rotated (save_total_limit) and pushed the checkpoint at this
        # point; PruningTrainer writes the state earlier, in save_model.
        if not args.should_save or not self.save_state_on_save:
            return
        folder = os.path.join(str(args.output_dir), f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
        if os.path.isdir(folder):
            save_method_state(self._current_method(), folder)
        else:
            logger.warning(
                "No checkpoint folder %s to save the pruning state into (hyper-parameter search runs "
                "save elsewhere); use PruningTrainer, which writes it with the model.",
                folder,
            )

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        method = self._current_method()
        if method.finished:
            # load_best_model_at_end may have brought back weights from before the pattern froze.
            method.reapply()
        else:
            logger.warning(
                "Training ended before the %s schedule finished (step %d); projecting onto the final "
                "target now so the promised sparsity holds.",
                method.name,
                state.global_step,
            )
            method.finalize()


def _check_optimizer_trains(
    model: nn.Module, optimizer: torch.optim.Optimizer | None, method: PruningMethod, added: list[str]
) -> None:
    """Refuse to train when parameters the method added to the model are not in the optimizer.

    That happens when the optimizer was built before the method attached (a stock Trainer with
    ``model_init`` and a method that re-parametrizes weights, e.g. rank pruning's factors): those
    parameters would silently never train.
    """
    if optimizer is None or not added:
        return
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    parameters = dict(model.named_parameters())
    missing = [name for name in added if name in parameters and id(parameters[name]) not in in_optimizer]
    if missing:
        raise UnsupportedModelError(
            f"{len(missing)} parameters that {method.name!r} pruning added to the model are not in the optimizer "
            f"(e.g. {missing[:3]}): it was built before the method attached, so they would never train. Use "
            f"PruningTrainer (it attaches before building the optimizer, also with model_init), or build the "
            f"model and the Trainer anew instead of passing model_init."
        )
