"""Step-time cost of distillation while pruning, on the real MiniLM (batch 32, seq 64).

The same magnitude-pruning run with and without a dense teacher: distillation of the logits
(teacher run on the fly without gradients), with hidden-state matching added, and with the
teacher's logits cached per example (``cache_teacher_logits``). The cached variant trains on half
as many rows as it takes steps, so its block is two epochs: the first runs the teacher and fills
the cache (``miss`` steps), the second only reads it (``hit`` steps); a real run's share of hit
steps is ``1 - 1/epochs``. Variants run interleaved in one process (round-robin blocks of steps,
order rotated every round) so machine noise hits all of them alike, as in ``overhead.py``. The
teacher is the pretrained MiniLM with a classification head (a fine-tuned teacher costs the same
time).

    python benchmarks/distillation_overhead.py [--rounds 4] [--steps 24]

Writes benchmarks/results/distillation_overhead.json and distillation_overhead.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from common import MODEL, StepTimer, machine_info, median, short_run_args, write_json, write_text  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

from hf_prune import DistillationConfig, MagnitudeConfig, PruningTrainer  # noqa: E402
from hf_prune.pretrained import resolve_model_path  # noqa: E402
from hf_prune.tasks import get_task  # noqa: E402

BATCH, SEQ = 32, 64
# name -> DistillationConfig fields (None: no distillation); every variant prunes with magnitude.
VARIANTS: dict[str, dict[str, Any] | None] = {
    "no distillation": None,
    "distillation (logits)": {"alpha": 0.5, "temperature": 2.0},
    "distillation (logits + hidden states)": {"alpha": 0.5, "temperature": 2.0, "hidden_weight": 1.0},
    "distillation (cached logits)": {"alpha": 0.5, "temperature": 2.0, "cache_teacher_logits": True},
}
BASELINE = "no distillation"


def _timed_teacher(callback, sink: list[tuple[float, str]]):
    """The callback's teacher call wrapped to append ``(wall time, phase)`` to ``sink``; the phase is
    ``miss`` / ``hit`` with the logits cache (whether the call ran the teacher), else ``all``."""
    function = callback._teacher_outputs

    def timed(*args, **kwargs):
        misses = callback.cache.misses if callback.cache is not None else None
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            phase = "all" if misses is None else "miss" if callback.cache.misses > misses else "hit"
            sink.append((elapsed, phase))

    return timed


def _cache_phase(callback) -> Any:
    """A StepTimer phase function: ``miss`` when the step ran the teacher, ``hit`` when it only read the cache."""
    seen = {"misses": 0}

    def phase() -> str:
        misses = callback.cache.misses
        ran_teacher, seen["misses"] = misses > seen["misses"], misses
        return "miss" if ran_teacher else "hit"

    return phase


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--steps", type=int, default=24, help="optimizer steps per block (even: the cached variant's two epochs)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="steps dropped at the start of each block")
    options = parser.parse_args()
    logging.disable(logging.WARNING)

    path = resolve_model_path(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    task = get_task("movie_sentiment")
    rows = task.load()["train"].select(range(BATCH * options.steps))
    data = rows.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=SEQ, padding="max_length"),
        batched=True,
        remove_columns=["text"],
    )
    half = data.select(range(BATCH * max(1, options.steps // 2)))  # the cached variant: two epochs
    torch.manual_seed(1)
    teacher = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    times: dict[str, list[tuple[float, str]]] = {name: [] for name in VARIANTS}
    teacher_times: dict[str, list[tuple[float, str]]] = {name: [] for name in VARIANTS}  # teacher's share of a step
    names = list(VARIANTS)
    for round_index in range(options.rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            fields = VARIANTS[name]
            torch.manual_seed(0)
            model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
            distillation = None if fields is None else DistillationConfig(teacher=teacher, **fields)
            with tempfile.TemporaryDirectory() as tmp:
                args = short_run_args(tmp, batch_size=BATCH, max_steps=options.steps)
                trainer = PruningTrainer(
                    model=model,
                    args=args,
                    train_dataset=half if fields and fields.get("cache_teacher_logits") else data,
                    pruning=MagnitudeConfig(target_sparsity=0.8),
                    distillation=distillation,
                )
                callback = trainer.distillation_callback
                timer = StepTimer(
                    phase_of=_cache_phase(callback) if callback is not None and callback.cache is not None else None
                )
                trainer.add_callback(timer)
                if callback is not None:
                    callback._teacher_outputs = _timed_teacher(callback, teacher_times[name])
                trainer.train()
            times[name].extend(timer.times[options.warmup :])
            print(
                f"round {round_index} {name}: median {median([t for t, _ in timer.times[options.warmup :]]):.3f}s",
                flush=True,
            )

    base = median([t for t, _ in times[BASELINE]])
    variants = {}
    for name in names:
        step = median([t for t, _ in times[name]])
        phases = sorted({p for _, p in times[name]})
        variants[name] = {
            "median_step_s": step,
            "step_ratio_vs_no_distillation": step / base,
            "median_step_s_by_phase": {p: median([t for t, q in times[name] if q == p]) for p in phases},
            "median_teacher_s_by_phase": {
                p: median([t for t, q in teacher_times[name] if q == p])
                for p in sorted({q for _, q in teacher_times[name]})
            },
            "steps_timed": len(times[name]),
        }
    payload = {
        "model": MODEL,
        "batch_size": BATCH,
        "seq_len": SEQ,
        "pruning": "magnitude, target 0.8",
        "rounds": options.rounds,
        "steps_per_block": options.steps,
        "variants": variants,
        "machine": machine_info(),
    }
    write_json("distillation_overhead.json", payload)
    lines = [
        "| variant | median step (s) | ratio vs no distillation | teacher per step (s) | by phase (s) |",
        "|---|---|---|---|---|",
    ]
    for name, row in variants.items():
        teacher_s = ", ".join(
            f"{t:.4f}" if p == "all" else f"{p} {t:.4f}" for p, t in row["median_teacher_s_by_phase"].items()
        )
        by_phase = ", ".join(f"{p} {t:.3f}" for p, t in row["median_step_s_by_phase"].items() if p != "all")
        lines.append(
            f"| {name} | {row['median_step_s']:.3f} | {row['step_ratio_vs_no_distillation']:.3f} | {teacher_s} | "
            f"{by_phase} |"
        )
    note = (
        f"\nMagnitude pruning to 0.8 in every variant; {options.rounds} rounds x {options.steps} steps, first "
        f"{options.warmup} of each block dropped. Cached logits: `miss` steps run the teacher and fill the cache "
        f"(first epoch), `hit` steps only read it (later epochs).\n"
    )
    write_text("distillation_overhead.md", "\n".join(lines) + "\n" + note)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
