"""Run by tests/test_distributed.py under torchrun: two CPU processes (gloo), one tiny model.

Each process writes the zero pattern / gate state it ended with; process 0 also exports.
"""

from __future__ import annotations

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from hf_prune import MagnitudeConfig, MovementConfig, PruningConfig, PruningTrainer, RankConfig, RPPConfig  # noqa: E402
from tests.common import tiny_bert, tiny_dataset, training_args  # noqa: E402

CONFIGS = {
    "rpp": RPPConfig(target_sparsity=0.7, reweight_interval=3),
    "magnitude": MagnitudeConfig(target_sparsity=0.7, prune_interval=2),
    "movement": MovementConfig(target_sparsity=0.7),
    "rank": RankConfig(target_params_fraction=0.5),
}


def main(method: str, out: str) -> None:
    config: PruningConfig = CONFIGS[method]
    trainer = PruningTrainer(
        model=tiny_bert(),
        args=training_args(os.path.join(out, "run"), max_steps=12, per_device_train_batch_size=4),
        train_dataset=tiny_dataset(),
        pruning=config,
    )
    trainer.train()
    rank = trainer.args.process_index
    export = os.path.join(out, "export")
    report = trainer.save_pruned(export, format="factored" if method == "rank" else "dense")
    model = trainer.accelerator.unwrap_model(trainer.model)
    digest = {name: float(p.detach().double().sum()) for name, p in model.named_parameters()}
    with open(os.path.join(out, f"rank{rank}.json"), "w") as handle:
        json.dump(
            {
                "world_size": trainer.args.world_size,
                "params": digest,
                "wrote_export": report is not None,
                "saved_sparsity": (report or {}).get("saved_sparsity"),
            },
            handle,
        )


if __name__ == "__main__":
    torch.manual_seed(0)
    main(sys.argv[1], sys.argv[2])
