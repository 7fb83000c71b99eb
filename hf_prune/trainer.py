"""PruningTrainer: a ``transformers.Trainer`` that also takes a pruning config.

Its behaviour lives in :class:`PruningTrainerMixin`, so it composes with any other ``Trainer``
subclass (``class MyTrainer(PruningTrainerMixin, MyOwnTrainer)``); ``PruningTrainer`` is the mixin
over the stock ``Trainer``. Without ``pruning`` it is a plain Trainer. With it, it adds a
:class:`PruningCallback`, attaches a fresh method to every model ``model_init`` builds (before
the optimizer, so hyper-parameter searches work, over sparsity targets too), puts the
``prune/*`` scalars into every training log (before any reporting integration sees it), passes
the resume folder to the callback, and can save the pruned model. The loss is untouched: methods
with a penalty apply its gradient to their own tensors in ``step()``, which is what lets a stock
Trainer + callback behave identically.

It overrides public Trainer methods only (``train``, ``log``, ``save_model``,
``call_model_init``, ``push_to_hub``). One detail it relies on: the Trainer saves each checkpoint's model
through ``save_model(checkpoint_folder, _internal_call=True)`` before rotating or pushing it;
``tests/test_trainer_composition.py`` pins that.

Example:
    >>> from hf_prune import PruningTrainer, RPPConfig
    >>> # trainer = PruningTrainer(model=model, args=args, train_dataset=ds,
    >>> #                          pruning=RPPConfig(target_sparsity=0.8))
    >>> # trainer.train(); trainer.save_pruned("out/")
    >>> # hyper-parameter search over the target: model_init + a function of the trial (the object
    >>> # model_init gets: an optuna Trial, a dict for ray / wandb, None outside a search):
    >>> # PruningTrainer(model_init=make_model, args=args, train_dataset=ds, pruning=lambda trial:
    >>> #     RPPConfig(target_sparsity=trial.suggest_float("target_sparsity", 0.5, 0.9) if trial else 0.8))
"""

from __future__ import annotations

import inspect
import logging
import os
from typing import Any

from torch import nn
from transformers import Trainer
from transformers.trainer_utils import get_last_checkpoint

from .callback import PruningCallback, PruningSpec
from .checkpointing import check_state_matches, save_method_state
from .distillation import DistillationCallback, DistillationConfig
from .errors import InvalidConfigError, MissingPruningStateError
from .export import save_pruned
from .export_folder import ExportTargetError
from .loss_scaling import loss_ignores_num_items
from .methods import PruningMethod

logger = logging.getLogger(__name__)


class PruningTrainerMixin:
    """Pruning for any ``Trainer`` subclass; put it first in the bases.

    Args:
        pruning: A pruning config (``RPPConfig``, ``MagnitudeConfig``, ...), a method object, or a
            function ``trial -> config`` (see :class:`PruningCallback`); ``None`` leaves the
            Trainer as it is.
        distillation: A :class:`~hf_prune.DistillationConfig`: distil a dense teacher into the
            model while it is pruned (a :class:`~hf_prune.DistillationCallback` that is also the
            Trainer's ``compute_loss_func``, exactly as on the stock-Trainer path). ``None``: off.
        *args, **kwargs: Passed to the Trainer.

    Example:
        >>> from transformers import Trainer
        >>> class MyTrainer(Trainer):
        ...     pass
        >>> class MyPruningTrainer(PruningTrainerMixin, MyTrainer):
        ...     pass
        >>> [cls.__name__ for cls in MyPruningTrainer.__mro__[:3]]
        ['MyPruningTrainer', 'PruningTrainerMixin', 'MyTrainer']
    """

    # Declared for type checkers; the Trainer provides these.
    args: Any
    model: Any
    accelerator: Any
    processing_class: Any
    state: Any

    def __init__(
        self,
        *args: Any,
        pruning: PruningSpec | None = None,
        distillation: DistillationConfig | None = None,
        **kwargs: Any,
    ) -> None:
        self.pruning_callback: PruningCallback | None = None
        self.distillation_callback: DistillationCallback | None = None
        if pruning is not None:
            self.pruning_callback = PruningCallback(pruning, log_stats=False, save_state_on_save=False)
            kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), self.pruning_callback]
        if distillation is not None:
            if kwargs.get("compute_loss_func") is not None:
                raise InvalidConfigError(
                    "distillation= and compute_loss_func= both set the training loss; drop compute_loss_func (the "
                    "distillation loss includes the task loss), or drop distillation."
                )
            self.distillation_callback = DistillationCallback(distillation, log_stats=False)
            kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), self.distillation_callback]
            kwargs["compute_loss_func"] = self.distillation_callback
        super().__init__(*args, **kwargs)
        self._average_accumulated_loss()

    def _average_accumulated_loss(self) -> None:
        """Average the loss over accumulated micro-batches for stock sequence classifiers, whose
        loss the Trainer would otherwise sum (see :mod:`hf_prune.loss_scaling`). A custom
        ``compute_loss_func`` (distillation's) normalises over the accumulated batch itself."""
        trainer: Any = self
        if (
            trainer.model_accepts_loss_kwargs
            and trainer.compute_loss_func is None
            and trainer.loss_is_scaled_for_ga is None
            and loss_ignores_num_items(self.accelerator.unwrap_model(self.model))
        ):
            trainer.model_accepts_loss_kwargs = False
        if self.pruning_callback is not None:
            self.pruning_callback.loss_scaling_checked = True

    @property
    def pruning_method(self) -> PruningMethod | None:
        """The method pruning the current model (``None`` without pruning)."""
        return self.pruning_callback.method if self.pruning_callback is not None else None

    def call_model_init(self, trial: Any = None) -> nn.Module:
        # A fresh method for every model model_init builds, attached before the Trainer builds the
        # optimizer, so parameters the method adds (rank pruning's factors) are trained.
        model = super().call_model_init(trial)  # type: ignore[misc]
        if self.pruning_callback is not None:
            self.pruning_callback.attach(model, trial)
        return model

    def train(self, resume_from_checkpoint: str | bool | None = None, *args: Any, **kwargs: Any) -> Any:
        if self.pruning_callback is not None and resume_from_checkpoint:
            folder = resume_from_checkpoint
            if folder is True:
                folder = get_last_checkpoint(self.args.output_dir)
                if folder is None:
                    raise MissingPruningStateError(
                        f"train(resume_from_checkpoint=True), but {self.args.output_dir} holds no checkpoint-* "
                        f"folder to resume from; pass a checkpoint folder, or train without resuming."
                    )
            if folder and self.pruning_method is not None:
                # Before the Trainer restores its optimizer: another method's parameters would make
                # torch fail with "parameter group doesn't match", which says nothing useful.
                check_state_matches(self.pruning_method, folder)
            self.pruning_callback.resume_from_checkpoint = folder
        return super().train(resume_from_checkpoint, *args, **kwargs)  # type: ignore[misc]

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if self.pruning_callback is not None and "loss" in logs:
            logs.update(self.pruning_callback.prefixed_stats())
        if self.distillation_callback is not None and "loss" in logs:
            logs.update(self.distillation_callback.prefixed_stats())
        super().log(logs, *args, **kwargs)  # type: ignore[misc]

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call)  # type: ignore[misc]
        # Inside checkpointing (the Trainer passes the checkpoint folder) this runs first, before
        # rotation and Hub pushes: the checkpoint is complete (weights + pruning state) by the time
        # anything else sees it. push_to_hub's own call (no folder) gets no resume state.
        if _internal_call and output_dir is not None and self.pruning_method is not None and self.args.should_save:
            save_method_state(self.pruning_method, str(output_dir or self.args.output_dir))

    def push_to_hub(
        self,
        commit_message: str | None = "End of training",
        blocking: bool = True,
        token: str | None = None,
        revision: str | None = None,
        private: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """``Trainer.push_to_hub`` (same arguments, same ``args.hub_*`` settings); with pruning, the
        Hub gets the pruned export and its model card, not the training checkpoint.

        The export is written to ``<output_dir>/pruned-export`` (``export_format=`` picks the format;
        default ``dense``) and pushed in one commit with :func:`hf_prune.push_pruned`; the weights
        and checkpoint files the Trainer pushed during training are deleted in that commit. Only the
        main process pushes. Returns the ``CommitInfo`` (``None`` on other processes); with
        ``blocking=False``, a ``Future`` of it at once, as ``Trainer.push_to_hub`` does (the export is
        written first; only the upload runs in the background).
        """
        if self.pruning_callback is None:
            return super().push_to_hub(  # type: ignore[misc]
                commit_message, blocking, token, revision, private, **kwargs
            )
        from .hub import push_pruned

        export_format = kwargs.pop("export_format", "dense")
        self.callback_handler.on_push_begin(self.args, self.state, self.control)  # type: ignore[attr-defined]
        folder = os.path.join(str(self.args.output_dir), "pruned-export")
        self.save_pruned(folder, format=export_format)
        if not self.args.should_save:
            return None
        repo_id = (
            getattr(self, "hub_model_id", None)
            or self.args.hub_model_id
            or os.path.basename(os.path.abspath(str(self.args.output_dir)))
        )
        return push_pruned(
            folder,
            repo_id,
            revision=revision if revision is not None else self.args.hub_revision,
            private=private if private is not None else self.args.hub_private_repo,
            token=token if token is not None else self.args.hub_token,
            commit_message=commit_message,
            delete_patterns=["*.safetensors", "*.bin", "checkpoint-*/**", "last-checkpoint/**", "runs/**"],
            run_as_future=not blocking,
        )

    def save_pruned(self, output_dir: str | os.PathLike[str], **kwargs: Any) -> dict[str, Any] | None:
        """Finalize the method and save the pruned model (see :func:`hf_prune.save_pruned`).

        Every process finalizes (the model must be identical everywhere); only the main process
        writes. Returns the pruning report (``None`` on other processes).

        Example:
            >>> # report = trainer.save_pruned("outputs/pruned", format="compact")
        """
        method = self.pruning_method
        if method is None:
            raise InvalidConfigError(
                "This trainer has no pruning config, so nothing was pruned to save; build it with pruning=... "
                "(e.g. RPPConfig(target_sparsity=0.8)), or save the dense model with save_model()."
            )
        if output_dir is not None and os.path.abspath(output_dir) == os.path.abspath(str(self.args.output_dir)):
            raise ExportTargetError(
                f"{os.path.abspath(output_dir)} is the Trainer's output_dir, where it writes checkpoints; export "
                f"into another folder, e.g. {os.path.join(str(self.args.output_dir), 'pruned')!r}."
            )
        if method.total_steps is None and not method.finished:
            logger.warning(
                "save_pruned before any training: %s prunes the weights in one shot now, with no fine-tuning to "
                "recover; metrics from an earlier evaluate() describe the model before pruning.",
                method.name,
            )
        report = None
        if self.args.should_save:
            report = save_pruned(
                self.accelerator.unwrap_model(self.model),
                output_dir,
                method,
                processing_class=self.processing_class,
                **kwargs,
            )
        else:
            method.finalize()
            method.materialize()
        self.accelerator.wait_for_everyone()
        return report


class PruningTrainer(PruningTrainerMixin, Trainer):
    """``Trainer`` plus pruning; every Trainer argument works as usual.

    Args:
        pruning: A pruning config (``RPPConfig``, ``MagnitudeConfig``, ...), a method object, or a
            function ``trial -> config``; ``None`` gives a plain Trainer.
        distillation: A :class:`~hf_prune.DistillationConfig` to distil a dense teacher while
            pruning; ``None``: off.
        *args, **kwargs: Passed to ``transformers.Trainer``.

    Example:
        >>> import inspect
        >>> list(inspect.signature(PruningTrainer).parameters)[:2], "pruning" in inspect.signature(PruningTrainer).parameters
        (['model', 'args'], True)
    """

    def __init__(
        self,
        *args: Any,
        pruning: PruningSpec | None = None,
        distillation: DistillationConfig | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, pruning=pruning, distillation=distillation, **kwargs)


def _signature_with_pruning(base: type) -> inspect.Signature:
    """``base.__init__``'s signature plus the keyword-only ``pruning`` and ``distillation`` (for help() and IDEs)."""
    signature = inspect.signature(getattr(base, "__init__"))  # noqa: B009  (mypy: no __init__ on instances)
    parameters = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    pruning = inspect.Parameter(
        "pruning", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="PruningSpec | None"
    )
    distillation = inspect.Parameter(
        "distillation", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="DistillationConfig | None"
    )
    tail = [p for p in signature.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    return signature.replace(parameters=[*parameters, pruning, distillation, *tail])


# help(PruningTrainer) and IDEs show every Trainer argument, not just *args/**kwargs.
PruningTrainer.__init__.__signature__ = _signature_with_pruning(Trainer)  # type: ignore[attr-defined]
