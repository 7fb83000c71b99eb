"""How fast the rank-pruning Lagrangian drives the gates to the budget, per learning-rate setting.

A short, cheaper run than quality_single_task (seq 32, batch 16, 300 steps: the warm-up is 90
steps, the gate freeze at step 210, so the controller has half the steps of a 600-step run) on
the real MiniLM and movie snippets, at a budget of 20% of the Linear parameters. For each
(gate lr, Lagrangian lr) it records the expected sparsity the gates reach against the target
ramp, and what finalize() had to project. Used to choose RankConfig's defaults.

    python benchmarks/rank_tuning.py [--settings 5e-2:1e-2 1e-1:1e-1 ...]

Writes benchmarks/results/rank_tuning.json and rank_tuning.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import MODEL, RESULTS_DIR, machine_info, short_run_args, write_json, write_text  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

from hf_prune import PruningTrainer, RankConfig  # noqa: E402
from hf_prune.pretrained import resolve_model_path  # noqa: E402
from hf_prune.tasks import load_task  # noqa: E402

BATCH, SEQ, STEPS, BUDGET = 16, 32, 300, 0.2


def run(path: str, data, gate_lr: float, lagrangian_lr: float) -> dict:
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    config = RankConfig(
        target_params_fraction=BUDGET, gate_learning_rate=gate_lr, lagrangian_learning_rate=lagrangian_lr
    )
    with tempfile.TemporaryDirectory() as tmp:
        args = short_run_args(tmp, batch_size=BATCH, max_steps=STEPS, logging_steps=15)
        trainer = PruningTrainer(model=model, args=args, train_dataset=data, pruning=config)
        trainer.train()
    report = trainer.pruning_method.final_report or {}
    trajectory = [
        {
            "step": e["step"],
            "loss": round(e["loss"], 4),
            "target": round(e["prune/scheduled_sparsity"], 4),
            "expected": round(e["prune/expected_sparsity"], 4),
            "lambda1": round(e["prune/lambda1"], 3),
            "lambda2": round(e["prune/lambda2"], 3),
        }
        for e in trainer.state.log_history
        if "loss" in e and "prune/expected_sparsity" in e
    ]
    frozen = [p for p in trajectory if p["step"] <= trainer.pruning_method.end_step]
    return {
        "gate_learning_rate": gate_lr,
        "lagrangian_learning_rate": lagrangian_lr,
        "expected_sparsity_at_freeze": frozen[-1]["expected"] if frozen else None,
        "final_loss": trajectory[-1]["loss"] if trajectory else None,
        "report": {k: v for k, v in report.items() if isinstance(v, (int, float, str))},
        "trajectory": trajectory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", default=["5e-2:1e-2", "1e-1:1e-1", "1e-1:5e-1"])
    parser.add_argument("--markdown-only", action="store_true", help="rewrite the .md from the JSON")
    options = parser.parse_args()
    if options.markdown_only:
        with open(os.path.join(RESULTS_DIR, "rank_tuning.json"), encoding="utf-8") as handle:
            print(write_markdown(json.load(handle)))
        return
    logging.disable(logging.WARNING)
    path = resolve_model_path(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    data = load_task("movie_sentiment")["train"].select(range(BATCH * STEPS))
    data = data.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=SEQ, padding="max_length"),
        batched=True,
        remove_columns=["text"],
    )
    rows = []
    for setting in options.settings:
        gate_lr, lagrangian_lr = (float(x) for x in setting.split(":"))
        rows.append(run(path, data, gate_lr, lagrangian_lr))
        print({k: v for k, v in rows[-1].items() if k != "trajectory"}, flush=True)
    payload = {"budget": BUDGET, "steps": STEPS, "rows": rows, "machine": machine_info()}
    write_json("rank_tuning.json", payload)
    print(write_markdown(payload))


def write_markdown(payload: dict) -> str:
    lines = [
        f"Rank pruning to {payload['budget']:.0%} of the Linear parameters, {payload['steps']} steps (batch "
        f"{BATCH}, seq {SEQ}; gates start at step 30, target reached at 90, gates frozen at 210). Trajectory, "
        "every 30 steps: expected sparsity of the compiled model (in brackets: the scheduled target of the "
        "Lagrangian, in factored-size units, which start negative).",
        "",
        f"| gate lr | Lagrangian lr | expected sparsity at freeze (target {1 - payload['budget']:.2f}) | "
        "gates' own params fraction | components the projection dropped | final loss | trajectory |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in payload["rows"]:
        path_text = " ".join(f"{p['expected']:.2f}({p['target']:.2f})" for p in row["trajectory"][::2])
        lines.append(
            f"| {row['gate_learning_rate']} | {row['lagrangian_learning_rate']} | "
            f"{row['expected_sparsity_at_freeze']} | {row['report'].get('gate_fraction', float('nan')):.3f} | "
            f"{row['report'].get('projection_dropped_components', '')} | {row['final_loss']} | {path_text} |"
        )
    text = "\n".join(lines) + "\n"
    write_text("rank_tuning.md", text)
    return text


if __name__ == "__main__":
    main()
