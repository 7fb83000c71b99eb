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
import difflib
import hashlib
import json
import logging
import os
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from .cache import cache_root
from .config import PruningConfig
from .errors import InvalidConfigError, RecipeNotFoundError
from .recipe_checks import FIELD_EXAMPLES, checked_training, conform, describe_value
from .recipe_distillation import (
    check_teacher,
    dense_model_dir,
    distillation_config,
    has_dense_model,
    parse_distillation,
    save_dense_model,
    uses_dense_teacher,
)

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
    "disable_tqdm": False,  # a person watching sees the progress bar, and each log as one line
}
# Training fields that change what is shown, not what is trained: not part of a baseline's key.
_DISPLAY_ONLY = ("disable_tqdm", "logging_steps", "logging_first_step", "report_to", "log_level")


@dataclass
class Recipe:
    """A pruning job.

    Field types and ranges are checked when it is built (a ``training:`` key must be a
    ``transformers.TrainingArguments`` field of the right type, and common numeric settings must
    be in range); :meth:`check` then checks what needs the registries and the file system.

    Attributes:
        model: Hub id or local folder of the pretrained encoder.
        pruning: Pruning config as a dict with a ``method`` key.
        task: One task: a name in :mod:`hf_prune.tasks`, or a mapping defining your own (see
            :mod:`hf_prune.recipe_tasks`). Give ``task`` or ``tasks``.
        tasks: A task mixture: a list of such tasks, pruned with one shared encoder and a head per
            task (:mod:`hf_prune.multitask`).
        mixture: How ``tasks`` are sampled (:class:`~hf_prune.multitask.TaskMixture` fields:
            ``sampling``, ``temperature``, ``size_cap``, ``weights``, ``batches``).
        training: ``TrainingArguments`` fields (merged over sensible defaults). Setting
            ``num_train_epochs`` without ``max_steps`` trains by epochs. A number written as
            ``5e-5`` (a string for PyYAML) is read as a number.
        max_length: Tokenizer truncation length.
        output_dir: Where the export and ``results.json`` go.
        dense_baseline: Also train (or reuse a cached) dense model with the same budget.
        export_format: Export format passed to :func:`hf_prune.save_pruned`.
        baseline_files: Result files (paths relative to the recipe file) that may hold a dense
            baseline measured with the same settings (a benchmark row with a matching
            ``settings_key``); used instead of retraining when the key matches.
        distillation: Distil a dense teacher into the pruned model: ``teacher`` (a folder, Hub id,
            or ``dense_baseline`` for the recipe's own dense baseline) and the other
            :class:`~hf_prune.DistillationConfig` fields (see :mod:`hf_prune.recipe_distillation`).

    Example:
        >>> Recipe(model="m", task="movie_sentiment", pruning={"method": "rpp"}, max_length="abc")
        Traceback (most recent call last):
        ...
        hf_prune.errors.InvalidConfigError: max_length: 'abc' is a string; expected an integer, e.g. max_length: 64.
    """

    model: str
    pruning: dict[str, Any]
    task: str | dict[str, Any] | None = None
    tasks: list[Any] | None = None
    mixture: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    max_length: int = 64
    output_dir: str = "outputs/recipe"
    dense_baseline: bool = True
    export_format: str = "dense"
    name: str = "recipe"
    baseline_files: list[str] = field(default_factory=list)
    distillation: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # An empty YAML section (``training:`` with nothing under it) is None: the default.
        if self.training is None:
            self.training = {}
        if self.baseline_files is None:
            self.baseline_files = []
        hints = typing.get_type_hints(type(self))
        for item in dataclasses.fields(self):
            value = conform(getattr(self, item.name), hints[item.name], item.name)
            setattr(self, item.name, value)
        if self.max_length < 1:
            raise InvalidConfigError(
                f"max_length: {self.max_length!r} is out of range; expected an integer >= 1, e.g. 64."
            )
        for name in ("model", "output_dir", "export_format"):
            if not getattr(self, name).strip():
                raise InvalidConfigError(f"{name} is empty; set it, e.g. {name}: {FIELD_EXAMPLES[name]}.")
        self._check_pruning_method()
        self.training = checked_training(self.training)
        self._check_tasks()
        self.distillation = parse_distillation(self.distillation)

    def _check_tasks(self) -> None:
        """Exactly one of ``task`` / ``tasks``, each entry well formed; the mixture checked."""
        from .recipe_tasks import parse_mixture, parse_task_entries

        if (self.task is None) == (self.tasks is None):
            raise InvalidConfigError(
                "give either task: <one task> (e.g. task: movie_sentiment) or tasks: <a list> (e.g. tasks: "
                "[movie_sentiment, tweets_3class, bbc_topic]) for a multitask recipe"
                + ("; not both." if self.task is not None else ".")
            )
        if self.task is not None and isinstance(self.task, str) and not self.task.strip():
            raise InvalidConfigError(f"task is empty; set it, e.g. task: {FIELD_EXAMPLES['task']}.")
        where = "tasks" if self.tasks is not None else "task"
        self.task_entries = parse_task_entries(self.tasks if self.tasks is not None else self.task, where)
        if self.mixture is not None and self.tasks is None:
            raise InvalidConfigError("mixture applies to a multitask recipe (tasks: [...]); drop it, or list tasks.")
        self.task_mixture = parse_mixture(self.mixture, [entry.name for entry in self.task_entries])

    @property
    def is_multitask(self) -> bool:
        """Whether the recipe lists ``tasks`` (one shared encoder, a head per task)."""
        return self.tasks is not None

    @property
    def task_names(self) -> list[str]:
        return [entry.name for entry in self.task_entries]

    def task_objects(self) -> list[Any]:
        """The recipe's :class:`~hf_prune.tasks.Task` objects, built once (user files are read
        and checked; a Hub task fails at once offline)."""
        from .recipe_tasks import build_tasks

        if getattr(self, "_tasks", None) is None:
            self._tasks = build_tasks(self.task_entries, getattr(self, "base_dir", os.getcwd()))
        return self._tasks

    def _check_pruning_method(self) -> None:
        keys = [key for key in self.pruning if not isinstance(key, str)]
        if keys:
            raise InvalidConfigError(
                f"pruning: key {keys[0]!r} is not a name; the keys are config fields, e.g. target_sparsity."
            )
        method = self.pruning.get("method")
        if method is None:
            from .registry import available_methods

            raise InvalidConfigError(
                f"pruning has no 'method' key; add one, e.g. pruning: {FIELD_EXAMPLES['pruning']} "
                f"(methods: {', '.join(available_methods())})."
            )
        if not isinstance(method, str):
            raise InvalidConfigError(
                f"pruning.method: {method!r} is {describe_value(method)}; expected a string, e.g. rpp."
            )

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], overrides: dict[str, Any] | None = None) -> Recipe:
        """Load a recipe file; ``overrides`` maps dotted keys (``pruning.target_sparsity``) to values.

        Everything cheap to check is checked here (:meth:`check`), so bad input fails before
        any training.

        Raises:
            RecipeNotFoundError: ``path`` is not a file.
            InvalidConfigError: the file is not a YAML mapping, or a key or value is wrong.
            DataUnavailableError: the model is neither a local folder nor loadable from the Hub.
            ExportTargetError: ``output_dir`` is a folder that an export must not replace.
        """
        data = _read_recipe_file(path)
        for dotted, value in (overrides or {}).items():
            _set_dotted(data, dotted, value)
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = [key for key in data if key not in known]
        if unknown:
            close = [m for key in unknown for m in difflib.get_close_matches(str(key), known, n=1)]
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            raise InvalidConfigError(f"{path}: unknown recipe key(s) {unknown}{hint}; valid keys: {sorted(known)}.")
        missing = [k for k in ("model", "pruning") if k not in data]
        if "task" not in data and "tasks" not in data:
            missing.insert(1, "task (or tasks)")
        if missing:
            raise InvalidConfigError(f"{path}: missing required recipe key(s) {missing}.")
        try:
            recipe = cls(**data)
        except InvalidConfigError as err:
            raise InvalidConfigError(f"{path}: {err}") from None
        base = os.path.dirname(os.path.abspath(path))
        recipe.base_dir = base  # type: ignore[attr-defined]  # task files are relative to the recipe file
        recipe.baseline_files = [os.path.normpath(os.path.join(base, f)) for f in recipe.baseline_files]
        recipe.check()
        return recipe

    def pruning_config(self) -> PruningConfig:
        return PruningConfig.from_dict(self.pruning)

    def merged_training(self) -> dict[str, Any]:
        """The recipe's ``training`` over the defaults (``num_train_epochs`` alone drops the
        default ``max_steps``, which would otherwise override it)."""
        defaults = dict(_DEFAULT_TRAINING)
        if "num_train_epochs" in self.training and "max_steps" not in self.training:
            del defaults["max_steps"]
        return {**defaults, **self.training}

    def training_arguments(self, output_dir: str):
        from transformers import TrainingArguments

        return TrainingArguments(output_dir=output_dir, **self.merged_training())

    def check(self) -> None:
        """Validate everything cheap to validate, so bad input fails before training: the task,
        the method and export format, the training arguments together, that the model can be
        loaded, and that ``output_dir`` may be written (the export is written after training)."""
        from .errors import DataUnavailableError
        from .export_folder import ExportTargetError, check_export_target
        from .formats import check_format_fits
        from .pretrained import check_model_available
        from .registry import get_method_class

        self.task_objects()  # user files read and checked; a Hub task offline fails now
        config = self.pruning_config()
        try:  # a format that cannot store the method's result would only fail after training
            check_format_fits(self.export_format, get_method_class(config.method).weight_structure, config.method)
        except ValueError as err:
            raise InvalidConfigError(f"export_format in recipe {self.name!r}: {err}") from None
        try:
            self.training_arguments(self.work_dir("checkpoints"))
        except (TypeError, ValueError) as err:
            raise InvalidConfigError(f"Invalid training arguments in recipe {self.name!r}: {err}") from err
        try:
            check_model_available(self.model)
            check_teacher(self.distillation)
        except DataUnavailableError as err:
            raise DataUnavailableError(f"recipe {self.name!r}: {err}") from None
        fix = "Change output_dir in the recipe, or pass --output-dir"
        try:
            check_export_target(self.output_dir)
        except ExportTargetError as err:
            raise ExportTargetError(f"output_dir in recipe {self.name!r}: {err} {fix}.") from None
        work = os.path.dirname(os.path.abspath(self.work_dir("checkpoints")))
        if os.path.exists(work) and not os.path.isdir(work):
            raise ExportTargetError(
                f"output_dir in recipe {self.name!r}: the Trainer's folder {work} is a file; move it. {fix}."
            )

    def work_dir(self, name: str) -> str:
        """Trainer output folders live beside the export, never inside it (it is replaced whole)."""
        return os.path.join(f"{self.output_dir.rstrip(os.sep)}-work", name)

    def baseline_key(self) -> str:
        """Hash of everything a dense baseline depends on (not the pruning config), the task's
        splits (``data_version``) included."""
        tasks = self.task_objects()
        payload: dict[str, Any] = {
            "model": self.model,
            "task": tasks[0].name,
            "data_version": tasks[0].data_version,
            "training": {k: v for k, v in self.merged_training().items() if k not in _DISPLAY_ONLY},
            "max_length": self.max_length,
        }
        if self.is_multitask:  # a single-task recipe keeps the key it always had
            payload["task"] = [task.name for task in tasks]
            payload["data_version"] = [task.data_version for task in tasks]
            payload["mixture"] = self.task_mixture.to_dict()
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _read_recipe_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping a recipe file holds, or an error naming the file (and line) and the fix."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise RecipeNotFoundError(
            f"Recipe file {os.fspath(path)!r} does not exist ({os.path.abspath(path)}); check the path "
            f"(the shipped recipes are in recipes/, e.g. recipes/movie_sentiment_rpp.yaml)."
        ) from None
    except IsADirectoryError:
        raise RecipeNotFoundError(
            f"Recipe path {os.fspath(path)!r} is a folder; pass the recipe's YAML file, e.g. recipes/<name>.yaml."
        ) from None
    except UnicodeDecodeError as err:
        raise InvalidConfigError(
            f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); save the recipe as UTF-8 YAML."
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        what = " ".join(" ".join(part for part in (err.context, err.problem) if part).split())
        raise InvalidConfigError(
            f"{where}: not valid YAML ({what}); fix the syntax there "
            f"(indentation, an unclosed bracket or quote, a missing space after ':')."
        ) from None
    except yaml.YAMLError as err:
        raise InvalidConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())}); fix the syntax.") from None
    if data is None:  # an empty file: the missing keys are named next
        return {}
    if not isinstance(data, dict):
        shown = repr(data) if len(repr(data)) <= 60 else repr(data)[:57] + "..."
        raise InvalidConfigError(
            f"{path} holds {describe_value(data)} ({shown}), not a recipe: a recipe is a YAML mapping of keys "
            f"(model:, task:, pruning:, training:, ...), e.g. recipes/movie_sentiment_rpp.yaml."
        )
    return data


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data[a][b] = value`` for ``dotted == "a.b"``, creating missing (or empty) mappings."""
    parts = dotted.split(".") if isinstance(dotted, str) else [""]
    if not all(parts):
        raise InvalidConfigError(
            f"Override key {dotted!r} is not a dotted recipe key; expected e.g. pruning.target_sparsity or max_length."
        )
    node = data
    for depth, key in enumerate(parts[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        elif not isinstance(child, dict):
            prefix = ".".join(parts[: depth + 1])
            raise InvalidConfigError(
                f"Cannot set {dotted!r}: {prefix} is {describe_value(child)} ({child!r}), not a mapping, so it has no "
                f"key {parts[depth + 1]!r}; set {prefix} itself (--set {prefix}=VALUE) or fix the key."
            )
        node = child
    node[parts[-1]] = value


def run_recipe(recipe: Recipe) -> dict[str, Any]:
    """Run ``recipe``: dense baseline (cached), prune, evaluate, export; returns the results.

    A multitask recipe (``tasks:``) trains one shared encoder with a head per task and exports it
    with one stock model per task (``<output_dir>/tasks/<name>``); its metrics are
    ``test_<task>_<metric>`` and ``test_average``.
    """
    recipe.check()  # again: the output folder or the model may have changed since it was loaded
    if recipe.is_multitask:
        return _run_multitask(recipe)
    from .runner import TaskRun

    task = recipe.task_objects()[0]
    run = TaskRun(recipe.model, task, recipe.max_length)
    results: dict[str, Any] = {"recipe": recipe.name, "model": recipe.model, "task": task.name}
    distillation = _baseline_and_distillation(recipe, run, results)
    pruned = run.train_and_evaluate(
        recipe.training_arguments(recipe.work_dir("checkpoints")), recipe.pruning_config(), distillation
    )
    card = _card_info(recipe, run, pruned.metrics, results.get("dense"))
    report = pruned.trainer.save_pruned(recipe.output_dir, format=recipe.export_format, card=card)
    if report is None:  # not the main process: the main process exports and writes results.json
        return results
    results["pruned"] = _pruned_summary(recipe, pruned, report)
    _write_results(recipe, results)
    return results


def _run_multitask(recipe: Recipe) -> dict[str, Any]:
    from .cards import CardInfo
    from .multitask import MultitaskRun
    from .multitask.results import describe_mixture, mixture_card_results, primary_metrics

    tasks = recipe.task_objects()
    run = MultitaskRun(recipe.model, tasks, recipe.max_length, recipe.task_mixture)
    results: dict[str, Any] = {
        "recipe": recipe.name,
        "model": recipe.model,
        "tasks": [task.name for task in tasks],
        "primary_metrics": primary_metrics(tasks),
        "mixture": recipe.task_mixture.to_dict(),
    }
    distillation = _baseline_and_distillation(recipe, run, results)
    pruned = run.train_and_evaluate(
        recipe.training_arguments(recipe.work_dir("checkpoints")), recipe.pruning_config(), distillation
    )
    sizes = {name: len(split) for name, split in run.split("train").items()}
    shares = recipe.task_mixture.probabilities(sizes)
    card = CardInfo(
        model_name=recipe.name,
        eval_results=mixture_card_results(
            tasks,
            pruned.metrics,
            (results.get("dense") or {}).get("metrics"),
            {name: len(split) for name, split in run.split("test").items()},
        ),
        task_mixture=shares,
        mixture_sampling=describe_mixture(recipe.task_mixture),
    )
    report = pruned.trainer.save_pruned(recipe.output_dir, format=recipe.export_format, card=card)
    if report is None:
        return results
    results["mixture_probabilities"] = shares
    results["pruned"] = {**_pruned_summary(recipe, pruned, report), "tasks": report["tasks"]}
    _write_results(recipe, results)
    return results


def _baseline_and_distillation(recipe: Recipe, run: Any, results: dict[str, Any]) -> Any:
    """The dense baseline (into ``results["dense"]`` when the recipe asks for it; trained and kept
    as the teacher for ``teacher: dense_baseline``), and the pruned run's DistillationConfig."""
    if recipe.dense_baseline or uses_dense_teacher(recipe.distillation):
        dense = _dense_baseline(recipe, run)
        if recipe.dense_baseline:
            results["dense"] = dense
    distillation = distillation_config(recipe.distillation, recipe.baseline_key())
    if distillation is not None:
        results["distillation"] = distillation.to_dict()
    return distillation


def _pruned_summary(recipe: Recipe, pruned: Any, report: dict[str, Any]) -> dict[str, Any]:
    return {
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


def _write_results(recipe: Recipe, results: dict[str, Any]) -> None:
    with open(os.path.join(recipe.output_dir, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)


def _card_info(recipe: Recipe, run: Any, metrics: dict[str, float], dense: dict[str, Any] | None) -> Any:
    """What the model card needs beyond the export: the task's test metrics (with the dense
    baseline's beside them) and the data they came from."""
    from .cards import CardInfo, TaskResult

    task = run.task
    dense_metrics = (dense or {}).get("metrics") or {}
    results = []
    for metric in task.metric_names:
        value = metrics.get(f"eval_{metric}")
        if value is None:
            continue
        dense_value = dense_metrics.get(f"eval_{metric}")
        results.append(
            TaskResult(
                task=task.name,
                dataset_type=task.source,
                dataset_name=task.description,
                metric_type=metric,
                value=float(value),
                num_examples=len(run.datasets["test"]),
                dense_value=float(dense_value) if isinstance(dense_value, (int, float)) else None,
            )
        )
    return CardInfo(model_name=recipe.name, eval_results=results)


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
        if data.get("settings_key") == key and "metrics" in data:  # a committed copy of a user-cache file
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
    # teacher: dense_baseline needs the model itself, not only its results.
    model_dir = dense_model_dir(recipe.baseline_key()) if uses_dense_teacher(recipe.distillation) else None
    cached = _cached_baseline(recipe, path)
    if cached is not None and (model_dir is None or has_dense_model(model_dir)):
        logger.info("Using the dense baseline measured with the same settings in %s", cached["source"])
        return cached
    dense = run.train_and_evaluate(recipe.training_arguments(recipe.work_dir("dense_checkpoints")), None)
    if model_dir is not None:
        save_dense_model(dense.trainer, model_dir)
    result = {
        "settings_key": recipe.baseline_key(),
        "recipe": recipe.name,
        "metrics": dense.metrics,
        "train_seconds": dense.train_seconds,
        "parameters": dense.parameters,
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    os.replace(path + ".tmp", path)
    return {**result, "cached": False}


def format_results(results: dict[str, Any]) -> str:
    """A small markdown table of a :func:`run_recipe` result (per task for a multitask recipe)."""
    if "tasks" in results:
        from .multitask.results import format_mixture_results

        return format_mixture_results(results)
    pruned = results["pruned"]
    metric = next(iter(k for k in pruned["metrics"] if k.startswith("eval_") and k.endswith("accuracy")), None)
    if metric is None:  # a task without accuracy (regression): its first metric
        from .metrics import METRICS

        metric = next(k for k in pruned["metrics"] if k.removeprefix("eval_") in METRICS)
    rows = [
        f"| model | {metric.removeprefix('eval_')} | sparsity (encoder Linear, from file) | sparsity (all weights) | parameters | non-zero | bytes |",
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
