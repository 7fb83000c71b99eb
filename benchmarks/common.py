"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time

import torch
from transformers import TrainerCallback, TrainingArguments

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def _code_version() -> str:
    """``git describe --always --dirty`` of the checkout, read once when the benchmark starts."""
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


CODE_VERSION = _code_version()


def machine_info() -> dict:
    return {
        "code_version": CODE_VERSION,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def short_run_args(output_dir: str, batch_size: int, max_steps: int, logging_steps: int = 10_000) -> TrainingArguments:
    """TrainingArguments of the benchmarks' short runs: lr 5e-5, 10% warm-up, seed 0, no saving."""
    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=batch_size,
        max_steps=max_steps,
        learning_rate=5e-5,
        warmup_steps=0.1,
        seed=0,
        report_to="none",
        save_strategy="no",
        logging_steps=logging_steps,
        disable_tqdm=True,
    )


def write_json(name: str, payload) -> str:
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, name)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
    os.replace(path + ".tmp", path)
    return path


def write_text(name: str, text: str) -> str:
    path = os.path.join(RESULTS_DIR, name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (forward, backward, optimizer, pruning)."""

    def __init__(self, phase_of=None):
        self.times: list[tuple[float, str]] = []
        self._start = 0.0
        self._phase_of = phase_of

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        phase = self._phase_of() if self._phase_of else "all"
        self.times.append((time.perf_counter() - self._start, phase))


def median(values) -> float:
    return statistics.median(values) if values else float("nan")
