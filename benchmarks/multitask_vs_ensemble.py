"""One multitask-pruned encoder vs an ensemble of single-task pruned models at the same parameter
budget (Xia & Shin 2021, ../shared/METHODS.md section 2), on the offline tasks.

Settings (chosen so that the minimum set fits on 2 CPU cores in a few sessions):
    encoder all-MiniLM-L6-v2, max_length 64, batch 32, lr 5e-5, warm-up 10%, seed 0.
    K = 4 tasks: movie_sentiment (2 classes, 7.3k train), tweets_3class (3 classes, 26.8k),
    bbc_topic (5 classes, 1.5k: the small task), amazon_sentiment (2 classes, 2.1k).
    Same total optimizer steps: the multitask model trains 600 steps over the mixture
    (temperature sampling T = 2, task-homogeneous batches); each model of an ensemble trains
    600 / K = 150 steps on its task.
    Budget B = non-zero encoder Linear parameters (element-wise) or encoder Linear parameters of
    the compiled factors (rank), as a fraction of ONE encoder's Linear parameters, read from the
    saved export: B in {0.2, 0.4}. The multitask model keeps B; an ensemble's K models keep
    fractions that add up to at most B: uniform B/K each, or the best allocation found on the
    grid {B/2K, B/K, 2B/K} per task (every allocation within the budget is scored by the
    average of its tasks' test metrics; all are listed).

Every training run is cached as its own row file in benchmarks/results/multitask_vs_ensemble_rows/
(rerun to continue; --force to redo), so the experiment is split across sessions. Strategies
(multitask | ensemble_uniform | ensemble_best | universal | dense_single | dense_multitask) are
assembled from the rows that exist; missing runs are listed.

    python benchmarks/multitask_vs_ensemble.py --methods movement --budgets 0.2 0.4 [--only dense]
    python benchmarks/multitask_vs_ensemble.py --aggregate-only

Writes benchmarks/results/multitask_vs_ensemble.json, .md and .png.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import logging
import math
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import MODEL, RESULTS_DIR, machine_info  # noqa: E402
from transformers import TrainingArguments  # noqa: E402

from hf_prune import PruningConfig  # noqa: E402
from hf_prune.multitask import MultitaskRun, TaskMixture, with_task_ids  # noqa: E402
from hf_prune.runner import TaskRun  # noqa: E402
from hf_prune.tasks import get_task  # noqa: E402

TASKS = ["movie_sentiment", "tweets_3class", "bbc_topic", "amazon_sentiment"]
SMALL_TASK = "bbc_topic"
MULTITASK_STEPS = 600
SINGLE_STEPS = MULTITASK_STEPS // len(TASKS)
MIXTURE = TaskMixture(sampling="temperature", temperature=2.0)
BUDGETS = (0.2, 0.4)
MAX_LENGTH = 64
SEED = 0
ROWS_DIR = os.path.join(RESULTS_DIR, "multitask_vs_ensemble_rows")
EXPORT_FORMAT = {"rank": "factored"}
BOOTSTRAP = 200


def training_args(steps: int) -> TrainingArguments:
    return TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="mtve-"),
        max_steps=steps,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=128,
        learning_rate=5e-5,
        warmup_steps=0.1,
        seed=SEED,
        logging_steps=50,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )


def pruning_config(method: str, kept: float) -> PruningConfig:
    """``kept``: the fraction of one encoder's Linear parameters this model keeps."""
    if method == "rank":
        return PruningConfig.from_dict({"method": "rank", "target_params_fraction": kept})
    return PruningConfig.from_dict({"method": method, "target_sparsity": round(1.0 - kept, 6)})


def grid(budget: float) -> list[float]:
    """Per-task sizes searched for the best ensemble split: B/2K, B/K, 2B/K."""
    k = len(TASKS)
    return [round(budget / (2 * k), 6), round(budget / k, 6), round(2 * budget / k, 6)]


# --------------------------------------------------------------------------- runs
def _stderr(task, metric: str, predictions: np.ndarray, labels: np.ndarray) -> float:
    """Binomial for accuracy; a bootstrap over test examples otherwise (seeded)."""
    if metric == "accuracy":
        p = float((predictions.argmax(-1) == labels).mean())
        return math.sqrt(p * (1 - p) / len(labels))
    from transformers import EvalPrediction

    rng = np.random.default_rng(0)
    values = []
    for _ in range(BOOTSTRAP):
        index = rng.integers(0, len(labels), len(labels))
        values.append(
            task.compute_metrics(EvalPrediction(predictions=predictions[index], label_ids=labels[index]))[metric]
        )
    return float(np.std(values, ddof=1))


def _test_rows(trainer, tasks, datasets) -> list[dict]:
    """Per task and metric: the test value and its standard error, from the trainer's predictions."""
    rows = []
    for task in tasks:
        output = trainer.predict(datasets[task.name], metric_key_prefix="test")
        predictions = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        predictions = np.asarray(predictions)
        labels = np.asarray(output.label_ids)
        from transformers import EvalPrediction

        values = task.compute_metrics(EvalPrediction(predictions=predictions, label_ids=labels))
        for metric in task.metric_names:
            rows.append(
                {
                    "task": task.name,
                    "metric": metric,
                    "primary": metric == task.metric_names[0],
                    "value": float(values[metric]),
                    "stderr": _stderr(task, metric, predictions, labels),
                    "num_examples": int(len(labels)),
                }
            )
    return rows


def _export_size(trainer, method: str) -> dict:
    """Encoder Linear parameters kept, read from the saved export (then deleted)."""
    with tempfile.TemporaryDirectory() as work:
        report = trainer.save_pruned(os.path.join(work, "export"), format=EXPORT_FORMAT.get(method, "dense"))
    pruned = report["parameters"]["pruned_matrices"]
    kept = pruned * (1.0 - report["saved_sparsity"])
    return {
        "encoder_linear_parameters": int(pruned),
        "kept_parameters": int(round(kept)),
        "kept_fraction": kept / pruned,
        "saved_sparsity": report["saved_sparsity"],
        "sparsity_kind": report["sparsity_kind"],
        "bytes_after": report["bytes_after"],
    }


def run_single(task_name: str, method: str, kept: float | None) -> dict:
    task = get_task(task_name)
    run = TaskRun(MODEL, task, MAX_LENGTH)
    config = None if method == "dense" else pruning_config(method, kept)
    trainer = run.trainer(training_args(SINGLE_STEPS), config)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    rows = _test_rows(trainer, [task], {task.name: run.datasets["test"]})
    size = _export_size(trainer, method) if config is not None else {"kept_fraction": 1.0}
    return {"rows": rows, "size": size, "train_seconds": seconds, "steps": SINGLE_STEPS}


def run_multitask(method: str, kept: float | None) -> dict:
    tasks = [get_task(name) for name in TASKS]
    run = MultitaskRun(MODEL, tasks, MAX_LENGTH, MIXTURE)
    config = None if method == "dense" else pruning_config(method, kept)
    trainer = run.trainer(training_args(MULTITASK_STEPS), config)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    test = {name: with_task_ids(data, TASKS.index(name)) for name, data in run.split("test").items()}
    rows = _test_rows(trainer, tasks, test)
    size = _export_size(trainer, method) if config is not None else {"kept_fraction": 1.0}
    sizes = {name: len(split) for name, split in run.split("train").items()}
    return {
        "rows": rows,
        "size": size,
        "train_seconds": seconds,
        "steps": MULTITASK_STEPS,
        "mixture": MIXTURE.to_dict(),
        "mixture_probabilities": MIXTURE.probabilities(sizes),
    }


def run_id(kind: str, method: str, kept: float | None, task: str | None = None) -> str:
    size = None if kept is None else f"{kept:.4f}"
    return "_".join(part for part in (kind, method, size, task) if part)


def planned_runs(
    methods: list[str], budgets: list[float], only: str | None
) -> list[tuple[str, str, float | None, str | None]]:
    runs: list[tuple[str, str, float | None, str | None]] = []
    if only in (None, "dense"):
        runs += [("single", "dense", None, task) for task in TASKS] + [("multitask", "dense", None, None)]
    if only == "dense":
        return runs
    for method in methods:
        for budget in budgets:
            runs.append(("multitask", method, budget, None))
            if only == "multitask":
                continue
            # Uniform split first (B/K), then the rest of the grid.
            sizes = sorted(grid(budget), key=lambda size: abs(size - budget / len(TASKS)))
            runs += [("single", method, size, task) for size in sizes for task in TASKS]
    unique = []
    for run in runs:
        if run not in unique:
            unique.append(run)
    return unique


def execute(run: tuple[str, str, float | None, str | None], force: bool) -> None:
    kind, method, kept, task = run
    path = os.path.join(ROWS_DIR, run_id(kind, method, kept, task) + ".json")
    if os.path.exists(path) and not force:
        print(f"cached: {os.path.relpath(path)}", flush=True)
        return
    print(f"running {run_id(kind, method, kept, task)} ...", flush=True)
    result = run_single(task, method, kept) if kind == "single" else run_multitask(method, kept)
    result.update(kind=kind, method=method, kept=kept, task=task, seed=SEED, machine=machine_info())
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    os.replace(path + ".tmp", path)
    summary = ", ".join(f"{r['task']} {r['metric']} {r['value']:.4f}" for r in result["rows"] if r["primary"])
    print(f"  {summary} ({result['train_seconds']:.0f} s)", flush=True)


# --------------------------------------------------------------------------- aggregation
def _load_runs() -> dict[str, dict]:
    runs = {}
    for path in sorted(glob.glob(os.path.join(ROWS_DIR, "*.json"))):
        with open(path, encoding="utf-8") as handle:
            runs[os.path.basename(path)[:-5]] = json.load(handle)
    return runs


def _primary(run: dict) -> dict[str, dict]:
    return {row["task"]: row for row in run["rows"] if row["primary"]}


def aggregate() -> dict:
    runs = _load_runs()
    rows: list[dict] = []
    missing: list[str] = []

    def add(strategy: str, method: str, budget: float | None, allocation: dict | None, per_task: dict, kept: float):
        for task in TASKS:
            row = per_task[task]
            rows.append(
                {
                    "strategy": strategy,
                    "method": method,
                    "budget": budget,
                    "allocation": allocation,
                    "task": task,
                    "metric": row["metric"],
                    "value": row["value"],
                    "stderr": row["stderr"],
                    "kept_fraction_from_files": kept,
                }
            )
        average = float(np.mean([per_task[t]["value"] for t in TASKS]))
        stderr = float(math.sqrt(sum(per_task[t]["stderr"] ** 2 for t in TASKS)) / len(TASKS))
        rows.append(
            {
                "strategy": strategy,
                "method": method,
                "budget": budget,
                "allocation": allocation,
                "task": "average",
                "metric": "average of primary metrics",
                "value": average,
                "stderr": stderr,
                "kept_fraction_from_files": kept,
            }
        )

    # Dense references.
    singles = {t: runs.get(run_id("single", "dense", None, t)) for t in TASKS}
    if all(singles.values()):
        add("dense_single", "dense", None, None, {t: _primary(singles[t])[t] for t in TASKS}, float(len(TASKS)))
    else:
        missing += [run_id("single", "dense", None, t) for t, r in singles.items() if r is None]
    dense_multi = runs.get(run_id("multitask", "dense", None))
    if dense_multi:
        add("dense_multitask", "dense", None, None, _primary(dense_multi), 1.0)
    else:
        missing.append(run_id("multitask", "dense", None))

    methods = sorted({r["method"] for r in runs.values() if r["method"] != "dense"})
    budgets = sorted({r["kept"] for r in runs.values() if r["kind"] == "multitask" and r["kept"] is not None})
    for method in methods:
        for budget in budgets:
            multi = runs.get(run_id("multitask", method, budget))
            if multi:
                add("multitask", method, budget, None, _primary(multi), multi["size"]["kept_fraction"])
            else:
                missing.append(run_id("multitask", method, budget))
            # Single-task results on the grid: {(task, size): (primary row, kept from file)}.
            table = {}
            for size in grid(budget):
                for task in TASKS:
                    run = runs.get(run_id("single", method, size, task))
                    if run:
                        table[(task, size)] = (_primary(run)[task], run["size"]["kept_fraction"])
                    else:
                        missing.append(run_id("single", method, size, task))
            uniform = round(budget / len(TASKS), 6)
            if all((t, uniform) in table for t in TASKS):
                add(
                    "ensemble_uniform",
                    method,
                    budget,
                    {t: uniform for t in TASKS},
                    {t: table[(t, uniform)][0] for t in TASKS},
                    sum(table[(t, uniform)][1] for t in TASKS),
                )
            best = None
            for sizes in itertools.product(grid(budget), repeat=len(TASKS)):
                if sum(sizes) > budget + 1e-9 or not all((t, s) in table for t, s in zip(TASKS, sizes)):
                    continue
                score = np.mean([table[(t, s)][0]["value"] for t, s in zip(TASKS, sizes)])
                if best is None or score > best[0]:
                    best = (score, sizes)
            if best is not None:
                sizes = best[1]
                add(
                    "ensemble_best",
                    method,
                    budget,
                    dict(zip(TASKS, sizes)),
                    {t: table[(t, s)][0] for t, s in zip(TASKS, sizes)},
                    sum(table[(t, s)][1] for t, s in zip(TASKS, sizes)),
                )
    low_resource = _low_resource(runs, methods, budgets)
    result = {
        "settings": {
            "model": MODEL,
            "tasks": TASKS,
            "multitask_steps": MULTITASK_STEPS,
            "single_task_steps": SINGLE_STEPS,
            "mixture": MIXTURE.to_dict(),
            "max_length": MAX_LENGTH,
            "seed": SEED,
            "budget_unit": "fraction of one encoder's Linear parameters kept, read from the saved export",
        },
        "rows": rows,
        "low_resource": low_resource,
        "missing_runs": sorted(set(missing)),
        "skipped": "universal (RPP's pattern learned under a masked-LM objective) needs issue 12; not run yet",
    }
    with open(os.path.join(RESULTS_DIR, "multitask_vs_ensemble.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    with open(os.path.join(RESULTS_DIR, "multitask_vs_ensemble.md"), "w", encoding="utf-8") as handle:
        handle.write(markdown(result))
    _plot(result)
    return result


def _low_resource(runs: dict, methods: list[str], budgets: list[float]) -> list[dict]:
    """The small task alone vs in the mixture, at the same model size (the multitask budget)."""
    out = []
    for method in methods:
        for budget in budgets:
            multi = runs.get(run_id("multitask", method, budget))
            single = runs.get(run_id("single", method, round(budget, 6), SMALL_TASK))
            if multi and single:
                out.append(
                    {
                        "method": method,
                        "model_size": budget,
                        "task": SMALL_TASK,
                        "single_task": _primary(single)[SMALL_TASK]["value"],
                        "single_task_stderr": _primary(single)[SMALL_TASK]["stderr"],
                        "multitask": _primary(multi)[SMALL_TASK]["value"],
                        "multitask_stderr": _primary(multi)[SMALL_TASK]["stderr"],
                    }
                )
    return out


def markdown(result: dict) -> str:
    metric = {}
    for row in result["rows"]:
        metric.setdefault(row["task"], row["metric"])
    header = ["strategy", "method", "budget", *[f"{t} ({metric.get(t, '?')})" for t in TASKS], "average"]
    lines = [
        "# Multitask pruning vs an ensemble of single-task pruned models",
        "",
        f"MiniLM-L6, {len(TASKS)} tasks, {MULTITASK_STEPS} steps for the multitask model, {SINGLE_STEPS} per "
        f"single-task model, seed {SEED}; budget = encoder Linear parameters kept, as a fraction of one encoder, "
        "read from the saved files (an ensemble adds its models' fractions). Test split; ± one standard error.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    groups: dict[tuple, dict] = {}
    for row in result["rows"]:
        groups.setdefault((row["strategy"], row["method"], row["budget"]), {})[row["task"]] = row
    for (strategy, method, budget), per_task in groups.items():
        cells = [f"{per_task[t]['value']:.4f} ± {per_task[t]['stderr']:.3f}" for t in [*TASKS, "average"]]
        allocation = next(iter(per_task.values()))["allocation"]
        label = strategy + (f" {allocation}" if strategy == "ensemble_best" else "")
        lines.append("| " + " | ".join([label, method, "-" if budget is None else f"{budget:g}", *cells]) + " |")
    if result["low_resource"]:
        lines += ["", f"Low-resource ({SMALL_TASK}, the smallest task): alone vs in the mixture, same model size.", ""]
        lines += ["| method | model size | single-task | multitask |", "|---|---|---|---|"]
        for row in result["low_resource"]:
            lines.append(
                f"| {row['method']} | {row['model_size']:g} | {row['single_task']:.4f} ± {row['single_task_stderr']:.3f} | "
                f"{row['multitask']:.4f} ± {row['multitask_stderr']:.3f} |"
            )
    if result["missing_runs"]:
        lines += ["", f"Runs not done yet ({len(result['missing_runs'])}): " + ", ".join(result["missing_runs"])]
    lines += ["", f"Not run: {result['skipped']}.", ""]
    return "\n".join(lines)


def _plot(result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple, dict] = {}
    for row in result["rows"]:
        groups.setdefault((row["strategy"], row["method"], row["budget"]), {})[row["task"]] = row
    if not groups:
        return
    labels = [*TASKS, "average"]
    figure, axis = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(groups)
    for i, ((strategy, method, budget), per_task) in enumerate(groups.items()):
        xs = [j + i * width for j in range(len(labels))]
        values = [per_task[t]["value"] for t in labels]
        errors = [per_task[t]["stderr"] for t in labels]
        name = f"{strategy} {method}" + ("" if budget is None else f" B={budget:g}")
        axis.bar(xs, values, width, yerr=errors, label=name, capsize=2)
    axis.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))], labels)
    axis.set_ylabel("test metric (primary)")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=7, ncol=2)
    axis.set_title("multitask vs ensemble at the same parameter budget (MiniLM-L6)")
    figure.tight_layout()
    figure.savefig(os.path.join(RESULTS_DIR, "multitask_vs_ensemble.png"), dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["movement", "rank"])
    parser.add_argument("--budgets", nargs="+", type=float, default=list(BUDGETS))
    parser.add_argument("--only", choices=["dense", "multitask"], help="run only these rows")
    parser.add_argument("--force", action="store_true", help="rerun rows that are cached")
    parser.add_argument("--aggregate-only", action="store_true")
    options = parser.parse_args()
    logging.disable(logging.WARNING)
    os.makedirs(ROWS_DIR, exist_ok=True)
    if not options.aggregate_only:
        for run in planned_runs(options.methods, options.budgets, options.only):
            execute(run, options.force)
            aggregate()  # after every row: a later session continues from what is committed
    print(markdown(aggregate()))


if __name__ == "__main__":
    main()
