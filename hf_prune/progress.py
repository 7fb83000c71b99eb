"""A progress display for people watching a run: the Trainer's bar, and each log as one line.

The stock ``ProgressCallback`` writes every log as a Python dict of strings; a pruning run logs
a dozen ``prune/*`` scalars with each loss, which buries what a person wants to see. This one
writes ``step 150/600 (25%) | loss 0.4123 | lr 4.2e-05 | sparsity 0.310 (schedule 0.350)`` and evaluation
logs as ``eval | movie_sentiment accuracy 0.8412 | ... | average 0.7719``.

Example:
    >>> format_log({"loss": 0.41234, "learning_rate": 4.2e-05, "prune/sparsity": 0.31,
    ...             "prune/scheduled_sparsity": 0.35, "epoch": 0.2}, step=150, max_steps=600)
    'step 150/600 (25%) | loss 0.4123 | lr 4.2e-05 | sparsity 0.310 (schedule 0.350) | epoch 0.20'
    >>> format_log({"eval_movie_sentiment_accuracy": 0.84123, "eval_average": 0.77, "eval_loss": 0.5}, 600, 600)
    'eval @ step 600 | movie_sentiment_accuracy 0.8412 | average 0.7700 | loss 0.5000'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers import ProgressCallback, Trainer

# Evaluation speed figures: not what a person watching wants to read.
_SPEED_SUFFIXES = ("_runtime", "_samples_per_second", "_steps_per_second", "_model_preparation_time")


def format_log(logs: Mapping[str, Any], step: int, max_steps: int) -> str:
    """One readable line of a Trainer log (see the module example)."""
    evaluation = [key for key in logs if "_" in key and key.split("_", 1)[0] in ("eval", "test")]
    if evaluation:
        prefix = evaluation[0].split("_", 1)[0]
        parts = [f"{prefix} @ step {step}"]
        losses: list[str] = []
        for key in evaluation:
            name = key.split("_", 1)[1]
            if key.endswith(_SPEED_SUFFIXES) or not isinstance(logs[key], (int, float)):
                continue
            (losses if name.endswith("loss") else parts).append(f"{name} {logs[key]:.4f}")
        return " | ".join(parts + losses)
    share = f" ({100 * step / max_steps:.0f}%)" if max_steps else ""
    parts = [f"step {step}/{max_steps}{share}"]
    if "loss" in logs:
        parts.append(f"loss {logs['loss']:.4f}")
    if "learning_rate" in logs:
        parts.append(f"lr {logs['learning_rate']:.2g}")
    sparsity = logs.get("prune/sparsity")
    if isinstance(sparsity, (int, float)):
        scheduled = logs.get("prune/scheduled_sparsity", logs.get("prune/target_sparsity"))
        known = isinstance(scheduled, (int, float))
        parts.append(f"sparsity {sparsity:.3f}" + (f" (schedule {scheduled:.3f})" if known else ""))
    if "epoch" in logs:
        parts.append(f"epoch {logs['epoch']:.2f}")
    if "train_runtime" in logs:
        parts.append(f"trained in {logs['train_runtime']:.0f} s")
    return " | ".join(parts)


class ReadableProgressCallback(ProgressCallback):
    """The Trainer's progress bar, with logs written as :func:`format_log` lines."""

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if state.is_world_process_zero and self.training_bar is not None and logs:
            self.training_bar.write(format_log(logs, state.global_step, state.max_steps))


def use_readable_progress(trainer: Trainer) -> None:
    """Replace ``trainer``'s progress display with :class:`ReadableProgressCallback` (when it shows one).

    Example:
        >>> # trainer = PruningTrainer(...); use_readable_progress(trainer); trainer.train()
    """
    if trainer.args.disable_tqdm:
        return
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(ReadableProgressCallback())
