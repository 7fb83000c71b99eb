"""Recipes: one YAML file = one pruning job (model, task, method, training), run end to end.

``run_recipe`` trains a dense baseline with the same budget (cached, keyed by everything that
changes it), prunes, evaluates, exports and returns the results table. Everything that can be
checked is checked when the recipe is loaded, before any training.

Example:
    >>> # recipe = Recipe.from_yaml("recipes/movie_sentiment_rpp.yaml")
    >>> # results = run_recipe(recipe)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from .cache import cache_root
from .config import PruningConfig
from .errors import InvalidConfigError

logger = logging.getLogger(__name__)

_DEFAULT_TRAINING = {
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 128,
    "learning_rate": 5e-5,
    "warmup_steps": 0.1,
    "max_steps": 600,
    "seed": 0,
    "logging_steps": 50,
    "save_strategy": "no",
    "eval_strategy": "no",
    "report_to": "none",
    "disable_tqdm": True,
}


@dataclass
class Recipe:
    """A pruning job.

    Attributes:
        model: Hub id or local folder of the pretrained encoder.
        task: Name of a task in :mod:`hf_prune.tasks`.
        pruning: Pruning config as a dict with a ``method`` key.
        training: ``TrainingArguments`` fields (merged over sensible defaults).
        max_length: Tokenizer truncation length.
        output_dir: Where the export and ``results.json`` go.
        dense_baseline: Also train (or reuse a cached) dense model with the same budget.
        export_format: Export format passed to :func:`hf_prune.save_pruned`.
        baseline_files: Result files (paths relative to the recipe file) that may hold a dense
            baseline measured with the same settings (a benchmark row with a matching
            ``settings_key``); used instead of retraining when the key matches.
    """

    model: str
    task: str
    pruning: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    max_length: int = 64
    output_dir: str = "outputs/recipe"
    dense_baseline: bool = True
    export_format: str = "dense"
    name: str = "recipe"
    baseline_files: list[str] = field(default_factory=list)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], overrides: dict[str, Any] | None = None) -> Recipe:
        """Load a recipe file; ``overrides`` maps dotted keys (``pruning.target_sparsity``) to values."""
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
        for dotted, value in (overrides or {}).items():
            node = data
            *parents, leaf = dotted.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidConfigError(f"{path}: unknown recipe key(s) {unknown}; valid keys: {sorted(known)}.")
        missing = [k for k in ("model", "task", "pruning") if k not in data]
        if missing:
            raise InvalidConfigError(f"{path}: missing required recipe key(s) {missing}.")
        recipe = cls(**data)
        base = os.path.dirname(os.path.abspath(path))
        recipe.baseline_files = [os.path.normpath(os.path.join(base, f)) for f in recipe.baseline_files]
        recipe.check()
        return recipe

    def pruning_config(self) -> PruningConfig:
        return PruningConfig.from_dict(self.pruning)

    def training_arguments(self, output_dir: str):
        from transformers import TrainingArguments

        return TrainingArguments(output_dir=output_dir, **{**_DEFAULT_TRAINING, **self.training})

    def check(self) -> None:
        """Validate everything cheap to validate, so bad input fails before training."""
        from .formats import check_format_fits
        from .registry import get_method_class
        from .tasks import TASKS, available_tasks

        if self.task not in TASKS:
            raise InvalidConfigError(f"Unknown task {self.task!r}; available tasks: {available_tasks()}.")
        config = self.pruning_config()
        try:  # a format that cannot store the method's result would only fail after training
            check_format_fits(self.export_format, get_method_class(config.method).weight_structure, config.method)
        except ValueError as err:
            raise InvalidConfigError(f"export_format in recipe {self.name!r}: {err}") from None
        try:
            self.training_arguments(self.work_dir("checkpoints"))
        except (TypeError, ValueError) as err:
            raise InvalidConfigError(f"Invalid training arguments in recipe {self.name!r}: {err}") from err

    def work_dir(self, name: str) -> str:
        """Trainer output folders live beside the export, never inside it (it is replaced whole)."""
        return os.path.join(f"{self.output_dir.rstrip(os.sep)}-work", name)

    def baseline_key(self) -> str:
        """Hash of everything a dense baseline depends on (not the pruning config)."""
        payload = {
            "model": self.model,
            "task": self.task,
            "training": {**_DEFAULT_TRAINING, **self.training},
            "max_length": self.max_length,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def run_recipe(recipe: Recipe) -> dict[str, Any]:
    """Run ``recipe``: dense baseline (cached), prune, evaluate, export; returns the results."""
    from .runner import TaskRun

    run = TaskRun(recipe.model, recipe.task, recipe.max_length)
    results: dict[str, Any] = {"recipe": recipe.name, "model": recipe.model, "task": recipe.task}
    if recipe.dense_baseline:
        results["dense"] = _dense_baseline(recipe, run)
    pruned = run.train_and_evaluate(recipe.training_arguments(recipe.work_dir("checkpoints")), recipe.pruning_config())
    report = pruned.trainer.save_pruned(recipe.output_dir, format=recipe.export_format)
    if report is None:  # not the main process: the main process exports and writes results.json
        return results
    results["pruned"] = {
        "method": recipe.pruning["method"],
        "metrics": pruned.metrics,
        "target_sparsity": report.get("target_sparsity"),
        "saved_sparsity": report["saved_sparsity"],
        "saved_model_sparsity": report["saved_model_sparsity"],
        "proximal_sparsity": report.get("proximal_sparsity"),
        "parameters": report["parameters"],
        "weight_bytes": report["weight_bytes"],
        "train_seconds": pruned.train_seconds,
    }
    with open(os.path.join(recipe.output_dir, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    return results


def _cached_baseline(recipe: Recipe, user_cache: str) -> dict[str, Any] | None:
    """A dense result with this recipe's settings key: the user cache, then ``baseline_files``."""
    key = recipe.baseline_key()
    for path in [user_cache, *recipe.baseline_files]:
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if path == user_cache:
            return {**data, "cached": True, "source": path}
        if data.get("settings_key") == key and data.get("method") == "dense":  # a benchmark row
            return {
                "metrics": {f"eval_{data['metric']}": data["value"]},
                "parameters": data["parameters"],
                "train_seconds": data.get("train_seconds"),
                "cached": True,
                "source": path,
            }
    return None


def _dense_baseline(recipe: Recipe, run) -> dict[str, Any]:
    path = os.path.join(cache_root(), "baselines", f"{recipe.baseline_key()}.json")
    cached = _cached_baseline(recipe, path)
    if cached is not None:
        logger.info("Using the dense baseline measured with the same settings in %s", cached["source"])
        return cached
    dense = run.train_and_evaluate(recipe.training_arguments(recipe.work_dir("dense_checkpoints")), None)
    result = {"metrics": dense.metrics, "train_seconds": dense.train_seconds, "parameters": dense.parameters}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    os.replace(path + ".tmp", path)
    return {**result, "cached": False}


def format_results(results: dict[str, Any]) -> str:
    """A small markdown table of a :func:`run_recipe` result."""
    pruned = results["pruned"]
    metric = next(iter(k for k in pruned["metrics"] if k.startswith("eval_") and k.endswith("accuracy")), None)
    rows = [
        "| model | accuracy | sparsity (encoder Linear, from file) | sparsity (all weights) | parameters | non-zero | bytes |",
        "|---|---|---|---|---|---|---|",
    ]
    if "dense" in results:
        dense = results["dense"]
        params = dense["parameters"]
        label = f"dense (cached: {os.path.relpath(dense['source'])})" if dense.get("cached") else "dense"
        rows.append(
            f"| {label} | {dense['metrics'][metric]:.4f} | 0 | - | {params['total']:,} | {params['nonzero']:,} | - |"
        )
    params = pruned["parameters"]
    rows.append(
        f"| {pruned['method']} @ {pruned['target_sparsity']} | {pruned['metrics'][metric]:.4f} | "
        f"{pruned['saved_sparsity']:.4f} | {pruned['saved_model_sparsity']:.4f} | {params['total']:,} | "
        f"{params['nonzero']:,} | {pruned['weight_bytes']:,} |"
    )
    return "\n".join(rows)
