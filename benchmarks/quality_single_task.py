"""Accuracy vs. sparsity on the movie-snippet task: RPP, magnitude (NIP), movement and rank vs. dense.

Same model (all-MiniLM-L6-v2), data split, steps and seed for every row; sparsity is measured
from each run's saved safetensors file, not from the schedule. Each row is cached as its own
JSON under results/quality_single_task_rows/ as soon as it finishes, so the run can be split
across sessions (rows already there are skipped; --force reruns them).

    python benchmarks/quality_single_task.py                       # all rows (~10 min each, ~2.5 h on 2 cores)
    python benchmarks/quality_single_task.py --methods rpp --sparsities 0.8

Writes results/quality_single_task.json (list of rows), .md and .png.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import MODEL, RESULTS_DIR, machine_info, write_json, write_text  # noqa: E402

from hf_prune import PruningConfig  # noqa: E402
from hf_prune.recipe import Recipe  # noqa: E402
from hf_prune.runner import TaskRun  # noqa: E402

TASK = "movie_sentiment"
ROWS_DIR = os.path.join(RESULTS_DIR, "quality_single_task_rows")
RECIPE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes", "movie_sentiment_rpp.yaml"
)
# Method settings beyond the target: the recipe's RPP settings, the other methods' defaults.
METHOD_SETTINGS = {
    "rpp": None,
    "magnitude": {"method": "magnitude", "prune_interval": 10},
    "movement": {"method": "movement"},
    # The paper's zero-initialised scores (hf_prune's default before score_init="magnitude").
    "movement-init0": {"method": "movement", "score_init": "zeros"},
    "rank": {"method": "rank"},
}
# Formats whose report measures what was pruned: zeros (element-wise) or parameters removed (rank).
EXPORT_FORMAT = {"rank": "factored"}
# Logged values kept in each row's trajectory (one point per logging step), to see how a run got there.
TRAJECTORY_KEYS = (
    "loss",
    "prune/sparsity",
    "prune/scheduled_sparsity",
    "prune/expected_sparsity",
    "prune/lambda1",
)


def _pruning_dict(recipe: Recipe, method: str, sparsity: float) -> dict:
    base = dict(recipe.pruning) if METHOD_SETTINGS[method] is None else dict(METHOD_SETTINGS[method])
    if method == "rank":  # the budget that corresponds to this sparsity in parameter count
        return {**base, "target_params_fraction": round(1.0 - sparsity, 6)}
    base.setdefault("begin_fraction", recipe.pruning.get("begin_fraction", 0.1))
    base.setdefault("end_fraction", recipe.pruning.get("end_fraction", 0.7))
    return {**base, "target_sparsity": sparsity}


def run_row(run: TaskRun, recipe: Recipe, method: str, sparsity: float | None) -> dict:
    args = recipe.training_arguments(tempfile.mkdtemp(prefix="bench-"))
    config = None if method == "dense" else PruningConfig.from_dict(_pruning_dict(recipe, method, sparsity))
    outcome = run.train_and_evaluate(args, config)
    row = {
        "method": method,
        "target_sparsity": sparsity or 0.0,
        "task": TASK,
        "metric": "accuracy",
        "value": outcome.metrics["eval_accuracy"],
        "steps": args.max_steps,
        "seed": args.seed,
        "train_seconds": outcome.train_seconds,
        "settings_key": recipe.baseline_key(),
        "config": config.to_dict() if config else None,
        "trajectory": _trajectory(outcome.trainer.state.log_history),
    }
    if config is None:
        row["measured_sparsity"] = 0.0
        row["parameters"] = outcome.parameters
    else:
        with tempfile.TemporaryDirectory() as work:
            export_dir = os.path.join(work, "export")
            report = outcome.trainer.save_pruned(export_dir, format=EXPORT_FORMAT.get(method, "dense"))
        # Read back from the written file by save_pruned: zeros, or parameters removed for rank.
        row.update(
            measured_sparsity=report["saved_sparsity"],
            measured_model_sparsity=report["saved_model_sparsity"],
            sparsity_kind=report.get("sparsity_kind", "zeros"),
            proximal_sparsity=report.get("proximal_sparsity"),
            readmitted_zeros=report.get("readmitted_zeros"),
        )
    return row


def _trajectory(log_history: list[dict]) -> list[dict]:
    points = []
    for entry in log_history:
        point = {key: round(entry[key], 4) for key in TRAJECTORY_KEYS if key in entry}
        if "loss" in point:
            points.append({"step": entry["step"], **point})
    return points


def _row_path(method: str, sparsity: float | None) -> str:
    return os.path.join(ROWS_DIR, f"{method}_{sparsity or 0.0:.2f}.json")


def aggregate() -> list[dict]:
    rows = []
    for path in sorted(glob.glob(os.path.join(ROWS_DIR, "*.json"))):
        with open(path, encoding="utf-8") as handle:
            rows.append(json.load(handle))
    rows.sort(key=lambda r: (r["method"] != "dense", r["method"], r["target_sparsity"]))
    write_json("quality_single_task.json", rows)
    lines = [
        "| method | target sparsity | measured sparsity (file) | proximal-path sparsity | accuracy | train s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        prox = r.get("proximal_sparsity")
        lines.append(
            f"| {r['method']} | {r['target_sparsity']:.2f} | {r['measured_sparsity']:.4f} | "
            f"{'' if prox is None else f'{prox:.3f}'} | {r['value']:.4f} | {r['train_seconds']:.0f} |"
        )
    steps = {r["steps"] for r in rows}
    lines.append(
        f"\nmovie snippets (8,057 train / 2,015 test), {MODEL}, steps {sorted(steps)}, batch 32, "
        f"max length 64, lr 5e-5, seed 0; pruning ramp 10%-70% of steps (rank: gates train from 10%, "
        f"budget reached at 30%, gates frozen at 70%). Sparsity is read from the saved file: the fraction "
        f"of zeros in the encoder Linear weights, or for rank the fraction of their parameters the factors "
        f"remove. movement-init0: the paper's zero-initialised scores (hf_prune's default is "
        f"score_init='magnitude')."
    )
    write_text("quality_single_task.md", "\n".join(lines) + "\n")
    _plot(rows)
    return rows


def _plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for method in sorted({r["method"] for r in rows} - {"dense"}):
        points = sorted((r["measured_sparsity"], r["value"]) for r in rows if r["method"] == method)
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method)
    for r in rows:
        if r["method"] == "dense":
            axis.axhline(r["value"], color="gray", linestyle="--", label="dense")
    axis.set_xlabel("sparsity of encoder Linear weights (from saved file)")
    axis.set_ylabel("test accuracy")
    axis.set_title("movie snippets, all-MiniLM-L6-v2")
    axis.legend()
    figure.tight_layout()
    figure.savefig(os.path.join(RESULTS_DIR, "quality_single_task.png"), dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["dense", "rpp", "magnitude", "movement", "rank"])
    parser.add_argument("--sparsities", nargs="+", type=float, default=[0.5, 0.8, 0.9])
    parser.add_argument("--force", action="store_true", help="rerun rows that are cached")
    parser.add_argument("--aggregate-only", action="store_true")
    options = parser.parse_args()
    logging.disable(logging.WARNING)
    os.makedirs(ROWS_DIR, exist_ok=True)
    if not options.aggregate_only:
        recipe = Recipe.from_yaml(RECIPE)
        run = TaskRun(recipe.model, recipe.task, recipe.max_length)
        jobs = [
            (m, None) if m == "dense" else (m, s)
            for m in options.methods
            for s in ([None] if m == "dense" else options.sparsities)
        ]
        for method, sparsity in jobs:
            path = _row_path(method, sparsity)
            if os.path.exists(path) and not options.force:
                print(f"cached: {path}", flush=True)
                continue
            row = run_row(run, recipe, method, sparsity)
            row["machine"] = machine_info()
            with open(path + ".tmp", "w", encoding="utf-8") as handle:
                json.dump(row, handle, indent=2)
            os.replace(path + ".tmp", path)
            print(
                f"{method} {sparsity}: accuracy {row['value']:.4f}, sparsity {row['measured_sparsity']:.4f}", flush=True
            )
    rows = aggregate()
    print(open(os.path.join(RESULTS_DIR, "quality_single_task.md")).read())
    del rows


if __name__ == "__main__":
    main()
