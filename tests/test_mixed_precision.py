"""Mixed precision: method-owned gradients are unscaled under an fp16 GradScaler, and bf16
autocast (what a CPU can run) trains every method to its target.

A CPU Trainer with ``fp16=True`` gets no GradScaler from Accelerate, so the scaler path is tested
by giving the Trainer's accelerator a real ``torch.amp.GradScaler("cpu")``: the loss is then scaled
in ``backward`` and the Trainer's optimizer unscales its own gradients, exactly as on a GPU.
"""

from __future__ import annotations

import pytest
import torch
from transformers import Trainer

from hf_prune import MovementConfig, PruningCallback, PruningTrainer, RankConfig, create_method
from hf_prune.methods.base import PruningMethod

from .conftest import tiny_bert, training_args

SCALE = 2.0**14

CONFIGS = {
    # soft movement adds its penalty's gradient in step(): drowned if the task gradient stays scaled
    "movement-soft": lambda: MovementConfig(
        variant="soft", target_sparsity=0.5, soft_regularization=5.0, begin_step=1, end_step=6
    ),
    "rank": lambda: RankConfig(target_params_fraction=0.5, begin_step=1, end_step=6),
}


def _owned(method: PruningMethod) -> list[torch.Tensor]:
    return [t.detach().clone() for t in method.owned_tensors()]


def _train(tmp_path, dataset, config, scaler: torch.amp.GradScaler | None, use_callback: bool):
    # No clipping: on a CPU Accelerate only unscales before clipping under fp16 autocast, which a
    # CPU does not run, so clipping would see the scaled model gradients and change the training.
    args = training_args(tmp_path, max_steps=5, learning_rate=1e-3, max_grad_norm=0.0)
    callback = PruningCallback(config)
    if use_callback:
        trainer = Trainer(model=tiny_bert(), args=args, train_dataset=dataset, callbacks=[callback])
    else:
        trainer = PruningTrainer(model=tiny_bert(), args=args, train_dataset=dataset, pruning=config)
    if scaler is not None:
        trainer.accelerator.scaler = scaler  # what Accelerate sets up for fp16 on a GPU
    trainer.train()
    return callback.method if use_callback else trainer.pruning_method


@pytest.mark.parametrize("use_callback", [False, True], ids=["PruningTrainer", "PruningCallback"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_method_owned_gradients_are_unscaled_under_a_grad_scaler(tmp_path, dataset, name, use_callback):
    method_plain = _train(tmp_path / "plain", dataset, CONFIGS[name](), None, use_callback)
    method_scaled = _train(
        tmp_path / "scaled",
        dataset,
        CONFIGS[name](),
        torch.amp.GradScaler("cpu", init_scale=SCALE, growth_interval=1),  # grows every step too
        use_callback,
    )
    for a, b in zip(_owned(method_plain), _owned(method_scaled), strict=True):
        # Equal up to Adam's epsilon acting on gradients of another size; without the unscale the
        # penalty and the task gradient are mixed at a ratio SCALE times off.
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


def test_unscale_gradients_divides_only_method_owned_gradients():
    model = tiny_bert()
    method = create_method(MovementConfig(begin_step=1, end_step=4))
    method.attach(model)
    for tensor in method.owned_tensors():
        tensor.grad = torch.full_like(tensor, SCALE)
    weight = next(model.parameters())
    weight.grad = torch.full_like(weight, SCALE)
    method.unscale_gradients(SCALE)
    assert all(bool((t.grad == 1.0).all()) for t in method.owned_tensors())
    assert bool((weight.grad == SCALE).all())  # the Trainer's scaler unscales the model's own


@pytest.mark.parametrize("name", ["movement-soft", "rank", "magnitude", "rpp"])
def test_bf16_autocast_training_reaches_the_target(tmp_path, dataset, name):
    from hf_prune import MagnitudeConfig, RPPConfig

    config = {
        "magnitude": lambda: MagnitudeConfig(target_sparsity=0.5, begin_step=1, end_step=5, prune_interval=1),
        "rpp": lambda: RPPConfig(target_sparsity=0.5, begin_step=1, end_step=5, reweight_interval=2),
        **CONFIGS,
    }[name]()
    args = training_args(tmp_path, max_steps=8, bf16=True)
    trainer = PruningTrainer(model=tiny_bert(), args=args, train_dataset=dataset, pruning=config)
    trainer.train()
    assert all(torch.isfinite(t).all() for t in trainer.pruning_method.owned_tensors())
    report = trainer.save_pruned(tmp_path / "export", format="factored" if name == "rank" else "compact")
    if name == "rank":
        assert report["achieved_fraction"] <= 0.5 + 1e-6
    else:
        assert report["saved_sparsity"] == pytest.approx(0.5, abs=1e-3)
