"""Run by tests/test_multitask_sampling.py under torchrun: two CPU processes (gloo).

Each process builds the same MultitaskBatchSampler and its accelerate data loader, iterates
epoch 0 and epoch 1 (after ``set_epoch``, as Trainer does), then epoch 1 again resumed past its
first batch (``skip_first_batches``, as Trainer does on resume), and writes the global indices of
every batch it got to ``rank<i>.json``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from hf_prune.multitask.sampling import MultitaskBatchSampler, TaskMixture, prepared_train_dataloader  # noqa: E402

# Keyword arguments of MultitaskBatchSampler; the test rebuilds the single-process stream from them.
CASES: dict[str, dict[str, Any]] = {
    # 41 rows / 4 = 11 batches: an odd count, which must grow to 12 rather than wrap around.
    "homogeneous": {
        "task_sizes": {"a": 23, "b": 10, "c": 8},
        "batch_size": 4,
        "mixture": TaskMixture(sampling="temperature", temperature=2.0),
        "seed": 3,
    },
    "mixed": {
        "task_sizes": {"a": 23, "b": 10, "c": 8},
        "batch_size": 3,
        "mixture": TaskMixture(sampling="uniform", batches="mixed"),
        "seed": 4,
    },
    "one_task": {
        "task_sizes": {"a": 16, "b": 4},
        "batch_size": 4,
        "mixture": TaskMixture(weights={"a": 1.0, "b": 0.0}),
        "seed": 5,
    },
}


class IndexDataset(torch.utils.data.Dataset):
    """Every row is its own global index."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        return index


def run_case(accelerator: Any, case: dict[str, Any]) -> dict[str, Any]:
    from accelerate import skip_first_batches

    sampler = MultitaskBatchSampler(**case)
    loader = prepared_train_dataloader(IndexDataset(sampler.total_size), sampler, torch.tensor, accelerator)
    epochs = []
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        epochs.append([batch.tolist() for batch in loader])
    sampler.set_epoch(0)  # so that only the resumed loader's set_epoch can bring it back to epoch 1
    resumed_loader = skip_first_batches(loader, 1)
    resumed_loader.set_epoch(1)
    resumed = [batch.tolist() for batch in resumed_loader]
    return {"len": len(loader), "epochs": epochs, "resumed": resumed}


def main(out: str) -> None:
    from accelerate import Accelerator

    accelerator = Accelerator()
    result = {
        "world_size": accelerator.num_processes,
        "cases": {name: run_case(accelerator, case) for name, case in CASES.items()},
    }
    with open(os.path.join(out, f"rank{accelerator.process_index}.json"), "w") as handle:
        json.dump(result, handle)
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    main(sys.argv[1])
