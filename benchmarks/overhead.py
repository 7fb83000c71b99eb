"""Step-time overhead of pruning vs. a plain Trainer, on the real MiniLM (batch 32, seq 64).

Variants run interleaved in one process (round-robin blocks of steps, order rotated every
round) so machine noise hits all of them alike. Each block is a fresh short run whose pruning
schedule covers dense -> pruning -> frozen in the same proportions as a real run.

    python benchmarks/overhead.py [--rounds 4] [--steps 25]

Writes benchmarks/results/overhead.json and overhead.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import MODEL, StepTimer, machine_info, median, short_run_args, write_json, write_text  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

from hf_prune import MagnitudeConfig, MovementConfig, PruningTrainer, RankConfig, RPPConfig  # noqa: E402
from hf_prune.pretrained import resolve_model_path  # noqa: E402
from hf_prune.tasks import load_task  # noqa: E402

BATCH, SEQ = 32, 64
VARIANTS = {
    "trainer": lambda: None,
    "rpp": lambda: RPPConfig(target_sparsity=0.8),
    "magnitude": lambda: MagnitudeConfig(target_sparsity=0.8),
    "movement": lambda: MovementConfig(target_sparsity=0.8),
    "rank": lambda: RankConfig(target_params_fraction=0.5),
}
TARGETS = {"rpp": 1.03, "magnitude": 1.03, "movement": 1.15, "rank": 1.6}


def _timed(step, sink: list[float]):
    """``step`` wrapped to append its wall time to ``sink``."""

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return step(*args, **kwargs)
        finally:
            sink.append(time.perf_counter() - start)

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=25, help="optimizer steps per block")
    parser.add_argument("--warmup", type=int, default=2, help="steps dropped at the start of each block")
    options = parser.parse_args()
    logging.disable(logging.WARNING)

    path = resolve_model_path(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    data = load_task("movie_sentiment")["train"].select(range(BATCH * options.steps))
    data = data.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=SEQ, padding="max_length"),
        batched=True,
        remove_columns=["text"],
    )

    times: dict[str, list[tuple[float, str]]] = {name: [] for name in VARIANTS}
    method_times: dict[str, list[float]] = {name: [] for name in VARIANTS}  # inside method.step()
    names = list(VARIANTS)
    for round_index in range(options.rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
            with tempfile.TemporaryDirectory() as tmp:
                args = short_run_args(tmp, batch_size=BATCH, max_steps=options.steps)
                trainer = PruningTrainer(model=model, args=args, train_dataset=data, pruning=VARIANTS[name]())
                method = trainer.pruning_method
                timer = StepTimer(
                    phase_of=(lambda m=method: getattr(m, "phase", "frozen" if m.frozen else "pruning"))
                    if method
                    else None
                )
                trainer.add_callback(timer)
                if method is not None:
                    method.step = _timed(method.step, method_times[name])
                trainer.train()
            times[name].extend(timer.times[options.warmup :])
            print(
                f"round {round_index} {name}: median {median([t for t, _ in timer.times[options.warmup :]]):.3f}s",
                flush=True,
            )

    base = median([t for t, _ in times["trainer"]])
    methods = {}
    for name in names[1:]:
        step = median([t for t, _ in times[name]])
        phases = sorted({p for _, p in times[name]})
        methods[name] = {
            "median_step_s": step,
            "step_ratio_vs_trainer": step / base,
            "median_step_s_by_phase": {p: median([t for t, q in times[name] if q == p]) for p in phases},
            # The method's own share of a step (its step() call); the rest of the difference to the
            # Trainer is in forward/backward (parametrizations) or noise.
            "median_method_step_s": median(method_times[name]),
            "steps_timed": len(times[name]),
            "target_ratio": TARGETS[name],
            "meets_target": step / base <= TARGETS[name],
        }
    payload = {
        "model": MODEL,
        "batch_size": BATCH,
        "seq_len": SEQ,
        "rounds": options.rounds,
        "steps_per_block": options.steps,
        "trainer_median_step_s": base,
        "methods": methods,
        "machine": machine_info(),
    }
    write_json("overhead.json", payload)
    lines = [
        "| variant | median step (s) | ratio vs Trainer | target | method.step() (s) | by phase (s) |",
        "|---|---|---|---|---|---|",
        f"| Trainer | {base:.3f} | 1.000 | | | |",
    ]
    for name, row in methods.items():
        by_phase = ", ".join(f"{p} {t:.3f}" for p, t in row["median_step_s_by_phase"].items())
        lines.append(
            f"| {name} | {row['median_step_s']:.3f} | {row['step_ratio_vs_trainer']:.3f} | "
            f"<= {row['target_ratio']} | {row['median_method_step_s']:.3f} | {by_phase} |"
        )
    write_text("overhead.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
