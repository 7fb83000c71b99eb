"""Does rank pruning's Lagrangian land on its budget? The Adam controller vs the anti-windup one, per target.

Runs of the real MiniLM on the movie snippets, cheaper per step than quality_single_task (batch 16,
seq 32) but on the same 600-step schedule (gates start at step 60, the target reaches the budget at
180, gates frozen at 420): the controller's dynamics are counted in optimizer steps, and the
overshoot at 0.5 only shows with that many steps. For each (controller, target sparsity) it records
the expected sparsity of the compiled model at the freeze against the target (and its peak), the
sparsity of the deterministic gates, what finalize's projection dropped and its fill re-admitted,
and the final training loss.

    python benchmarks/rank_tuning.py                      # 6 rows (0.5, 0.8, 0.9 x 2 controllers), ~10 min each
    python benchmarks/rank_tuning.py --targets 0.8 --controllers anti_windup --force
    python benchmarks/rank_tuning.py --markdown-only      # rewrite the .md from the JSON

Each row is stored in results/rank_tuning.json as soon as it finishes, so the run can be split
(rows already there are skipped; --force reruns them). Writes rank_tuning.json and rank_tuning.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import MODEL, RESULTS_DIR, machine_info, short_run_args, write_json, write_text  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

from hf_prune import PruningTrainer, RankConfig  # noqa: E402
from hf_prune.pretrained import resolve_model_path  # noqa: E402
from hf_prune.tasks import load_task  # noqa: E402

BATCH, SEQ, LOGGING_STEPS = 16, 32, 10
JSON_NAME, MARKDOWN_NAME = "rank_tuning.json", "rank_tuning.md"
# Logged values kept per point of a row's trajectory (short names: prune/<key>).
TRAJECTORY_KEYS = {
    "target": "scheduled_sparsity",
    "expected": "expected_sparsity",
    "factored": "expected_factored_sparsity",
    "gap": "gap",
    "lambda1": "lambda1",
    "lambda2": "lambda2",
}
FINAL_LOSS_POINTS = 5  # the final loss is the mean of the last 5 logged losses (50 steps): one is noisy


def load_data(path: str, steps: int):
    """The tokenised movie-snippet training set (all of it when a run needs more than one epoch)."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    data = load_task("movie_sentiment")["train"]
    data = data.select(range(min(len(data), BATCH * steps)))
    return data.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=SEQ, padding="max_length"),
        batched=True,
        remove_columns=["text"],
    )


def run(path: str, data, controller: str, target_sparsity: float, steps: int) -> dict[str, Any]:
    """Train one row and summarise how the gates reached (or missed) the budget."""
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    config = RankConfig(target_params_fraction=round(1.0 - target_sparsity, 6), controller=controller)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        args = short_run_args(tmp, batch_size=BATCH, max_steps=steps, logging_steps=LOGGING_STEPS)
        trainer = PruningTrainer(model=model, args=args, train_dataset=data, pruning=config)
        trainer.train()
    seconds = time.perf_counter() - started
    method = trainer.pruning_method
    trajectory = _trajectory(trainer.state.log_history)
    # The gates do not move after the freeze, so the method's numbers now are those at the freeze.
    at_freeze = method.stats()
    report = method.final_report or {}
    losses = [p["loss"] for p in trajectory]
    return {
        "controller": controller,
        "target_sparsity": target_sparsity,
        "steps": steps,
        "schedule": list(method.schedule) if method.schedule else None,
        "multiplier_step_size": config.multiplier_step_size,
        "expected_sparsity_at_freeze": round(at_freeze["expected_sparsity"], 4),
        "expected_factored_sparsity_at_freeze": round(at_freeze["expected_factored_sparsity"], 4),
        "peak_expected_sparsity": max((p["expected"] for p in trajectory), default=None),
        "gate_sparsity": round(1.0 - report.get("gate_fraction", float("nan")), 4),
        "projection_dropped_components": report.get("projection_dropped_components"),
        "fill_added_components": report.get("fill_added_components"),
        "fill_added_fraction": round(report.get("fill_added_fraction", float("nan")), 4),
        "final_sparsity": round(report.get("sparsity", float("nan")), 4),
        "final_loss": round(statistics.fmean(losses[-FINAL_LOSS_POINTS:]), 4) if losses else None,
        "train_seconds": round(seconds),
        "report": {k: v for k, v in report.items() if isinstance(v, (int, float, str))},
        "trajectory": trajectory,
        "machine": machine_info(),
    }


def _trajectory(log_history: list[dict]) -> list[dict]:
    points = []
    for entry in log_history:
        if "loss" in entry and "prune/expected_sparsity" in entry:
            point = {"step": entry["step"], "loss": round(entry["loss"], 4)}
            point.update(
                {k: round(entry[f"prune/{v}"], 4) for k, v in TRAJECTORY_KEYS.items() if f"prune/{v}" in entry}
            )
            points.append(point)
    return points


def _row_key(row: dict) -> tuple[str, float, int]:
    return row["controller"], round(row["target_sparsity"], 4), row["steps"]


def load_rows() -> list[dict]:
    """Rows stored by earlier runs of this script (none when the JSON is missing or of the older layout)."""
    path = os.path.join(RESULTS_DIR, JSON_NAME)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        payload = json.load(handle)
    return [row for row in payload.get("rows", []) if "controller" in row]


def save_rows(rows: list[dict]) -> None:
    order = {"adam": 0, "anti_windup": 1}
    rows.sort(key=lambda r: (r["steps"], r["target_sparsity"], order.get(r["controller"], 2)))
    write_json(JSON_NAME, {"batch": BATCH, "seq": SEQ, "rows": rows})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", nargs="+", type=float, default=[0.5, 0.8, 0.9], help="target sparsities")
    parser.add_argument("--controllers", nargs="+", default=["adam", "anti_windup"], choices=["adam", "anti_windup"])
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps per run (schedule: 10/30/70%%)")
    parser.add_argument("--force", action="store_true", help="rerun rows that are stored already")
    parser.add_argument("--markdown-only", action="store_true", help="rewrite the .md from the JSON")
    options = parser.parse_args()
    rows = load_rows()
    if not options.markdown_only:
        logging.disable(logging.WARNING)
        path = resolve_model_path(MODEL)
        data = load_data(path, options.steps)
        for target in options.targets:
            for controller in options.controllers:
                key = (controller, round(target, 4), options.steps)
                if not options.force and any(_row_key(r) == key for r in rows):
                    print(f"stored: {key}", flush=True)
                    continue
                row = run(path, data, controller, target, options.steps)
                rows = [r for r in rows if _row_key(r) != key] + [row]
                save_rows(rows)  # after every row: a long run can be split
                print({k: v for k, v in row.items() if k not in ("trajectory", "report", "machine")}, flush=True)
    print(write_markdown(rows))


def _format(value: Any, digits: int = 3) -> str:
    return "" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def write_markdown(rows: list[dict]) -> str:
    """The summary table and every row's trajectory, written to results/rank_tuning.md."""
    lines = [
        f"Rank pruning (`RankConfig`, defaults but `controller`), real MiniLM, movie snippets, batch {BATCH}, "
        f"seq {SEQ}, lr 5e-5, seed 0. Schedule: gates train from 10% of the steps, the target reaches the "
        "budget at 30%, gates frozen at 70% (600 steps: 60, 180, 420; 300 steps: 30, 90, 210). Sparsities are of the encoder Linear parameters "
        "as compiled (each matrix `min(r (in + out), in out)`). *Expected at freeze*: what the gates' "
        "`P(z != 0)` give at the freeze (peak: the highest logged value); *gates*: the deterministic gates "
        "alone; then finalize projects down (drops components) or fills up (re-admits dropped ones at their "
        "mean gate value; in brackets the share of the budget it supplied: components re-admitted into a "
        "matrix that compiles dense anyway cost nothing) to land on the budget. Final loss: mean training "
        "loss of the last 50 steps. Train seconds are wall time on a shared 2-core machine (noisy).",
        "",
        "| controller | steps | target | expected at freeze (peak) | gates | projection dropped | "
        "fill re-admitted (params) | final | final loss | train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['controller']} | {r['steps']} | {r['target_sparsity']:.2f} | "
            f"{_format(r['expected_sparsity_at_freeze'])} ({_format(r['peak_expected_sparsity'])}) | "
            f"{_format(r['gate_sparsity'])} | {_format(r['projection_dropped_components'])} | "
            f"{_format(r['fill_added_components'])} ({_format(r['fill_added_fraction'])}) | "
            f"{_format(r['final_sparsity'])} | {_format(r['final_loss'])} | {r['train_seconds']} |"
        )
    lines += [
        "",
        "Trajectories, every 30 steps: expected sparsity of the compiled model, in brackets the scheduled "
        "target of the Lagrangian (in factored-size units, which start negative), then l1.",
        "",
    ]
    for r in rows:
        points = " ".join(
            f"{p['step']}:{p['expected']:.2f}({p['target']:.2f},{p['lambda1']:.1f})" for p in r["trajectory"][2::3]
        )
        lines.append(f"* {r['controller']} {r['target_sparsity']:.2f} ({r['steps']} steps): {points}")
    text = "\n".join(lines) + "\n"
    write_text(MARKDOWN_NAME, text)
    return text


if __name__ == "__main__":
    main()
