"""Export size on disk and CPU forward latency of pruned MiniLM models vs. the dense model.

For each method and target, a short real pruning run (movie snippets, default schedule inside
``--steps`` optimizer steps) produces a model at exactly the target; bytes and latency depend
only on the pattern / ranks, not on how long the model was trained, so the short run is enough
here (accuracy is `quality_single_task`'s job). Each export is loaded back with
``hf_prune.load_pruned`` and timed against the unpruned dense model, interleaved, batch 32 x
sequence 128, 2 threads, median of ``--reps`` forward passes each.

    python benchmarks/export.py [--steps 30] [--reps 10]

Writes results/export.json (rows) and export.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from common import MODEL, machine_info, median, short_run_args, write_json, write_text  # noqa: E402

from hf_prune import MagnitudeConfig, MovementConfig, RankConfig, RPPConfig, load_pruned  # noqa: E402
from hf_prune.measure import folder_bytes  # noqa: E402
from hf_prune.runner import TaskRun  # noqa: E402

BATCH, SEQ = 32, 128
SPARSE = {"rpp": RPPConfig, "magnitude": MagnitudeConfig, "movement": MovementConfig}


def configs():
    for name, config_class in SPARSE.items():
        for sparsity in (0.5, 0.8, 0.9):
            yield name, sparsity, config_class(target_sparsity=sparsity), ("compact", "dense")
    for fraction in (0.5, 0.3):
        yield "rank", fraction, RankConfig(target_params_fraction=fraction), ("factored", "dense")


@torch.inference_mode()
def _forward_seconds(model, inputs) -> float:
    start = time.perf_counter()
    model(**inputs)
    return time.perf_counter() - start


def latency_ratio(dense, pruned, inputs, reps: int) -> tuple[float, float, float]:
    dense.eval()
    pruned.eval()
    for model in (dense, pruned):  # warm-up
        _forward_seconds(model, inputs)
    dense_times, pruned_times = [], []
    for _ in range(reps):
        dense_times.append(_forward_seconds(dense, inputs))
        pruned_times.append(_forward_seconds(pruned, inputs))
    return median(pruned_times) / median(dense_times), median(dense_times), median(pruned_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--reps", type=int, default=10)
    options = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.set_num_threads(2)

    run = TaskRun(MODEL, "movie_sentiment", max_length=64)
    dense_model = run.new_model()
    work = tempfile.mkdtemp(prefix="bench-export-")
    dense_model.save_pretrained(os.path.join(work, "dense"))
    dense_bytes = folder_bytes(os.path.join(work, "dense"))
    generator = torch.Generator().manual_seed(0)
    inputs = {
        "input_ids": torch.randint(1000, 20000, (BATCH, SEQ), generator=generator),
        "attention_mask": torch.ones(BATCH, SEQ, dtype=torch.long),
    }

    rows = []
    for method, target, config, formats in configs():
        args = short_run_args(os.path.join(work, "ckpt"), batch_size=32, max_steps=options.steps)
        trainer = run.trainer(args, config)
        trainer.train()
        for export_format in formats:
            folder = os.path.join(work, f"{method}-{target}-{export_format}")
            report = trainer.save_pruned(folder, format=export_format)
            loaded = load_pruned(folder)
            ratio, dense_s, pruned_s = latency_ratio(dense_model, loaded, inputs, options.reps)
            # rank: fraction of the target Linear weights kept, counted in the compiled model
            measured = report["achieved_fraction"] if method == "rank" else report["saved_sparsity"]
            row = {
                "method": method,
                "format": export_format,
                "target": target,
                "target_kind": "params_fraction" if method == "rank" else "sparsity",
                "measured_sparsity_or_params": measured,
                "saved_sparsity": report["saved_sparsity"],
                "sparsity_kind": report["sparsity_kind"],
                "bytes": report["bytes_after"],
                "dense_bytes": dense_bytes,
                "bytes_ratio_vs_dense": report["bytes_after"] / dense_bytes,
                "pruned_bytes": report["pruned_bytes"],
                "pruned_dense_bytes": report["pruned_dense_bytes"],
                "pruned_bytes_ratio": report["pruned_bytes"] / report["pruned_dense_bytes"],
                "parameters_before": report["parameters_before"],
                "parameters_after": report["parameters_after"],
                "latency_ratio_vs_dense": ratio,
                "dense_latency_s": dense_s,
                "pruned_latency_s": pruned_s,
            }
            rows.append(row)
            print(
                f"{method} {target} {export_format}: bytes x{row['bytes_ratio_vs_dense']:.3f}, pruned tensors "
                f"x{row['pruned_bytes_ratio']:.3f}, latency x{ratio:.3f}",
                flush=True,
            )

    write_json(
        "export.json",
        {
            "model": MODEL,
            "batch_size": BATCH,
            "seq_len": SEQ,
            "reps": options.reps,
            "training_steps": options.steps,
            "rows": rows,
            "machine": machine_info(),
            "targets": {"compact_at_0.9_pruned_bytes_ratio": "<= 0.15", "factored_30_40pct_latency_ratio": "<= 0.5"},
        },
    )
    lines = [
        "| method | format | target | measured | file bytes vs dense | pruned tensors vs dense | latency vs dense |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['format']} | {r['target']} | {r['measured_sparsity_or_params']:.3f} | "
            f"{r['bytes_ratio_vs_dense']:.3f} | {r['pruned_bytes_ratio']:.3f} | {r['latency_ratio_vs_dense']:.3f} |"
        )
    lines.append(
        f"\nMiniLM-L6 ({MODEL}); latency: batch {BATCH} x seq {SEQ}, 2 threads, median of {options.reps}, "
        f"interleaved with the dense model. 'measured' is sparsity read from the file (rank: fraction of the "
        f"encoder Linear weights kept in the compiled model)."
    )
    write_text("export.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
