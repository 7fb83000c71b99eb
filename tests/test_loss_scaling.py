"""Gradient accumulation trains like one large batch with PruningTrainer (transformers sums the
micro-batch means of a stock sequence classifier: issues #37766 / #47688), and a stock Trainer +
PruningCallback says how to get the same."""

from __future__ import annotations

import logging

import pytest
import torch
from transformers import Trainer

from hf_prune import MagnitudeConfig, PruningCallback, PruningTrainer
from hf_prune.loss_scaling import loss_ignores_num_items

from .common import tiny_bert, tiny_dataset, tiny_multitask, training_args


def _no_dropout(model):
    model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def _train(tmp_path, batch: int, steps: int, pruning=None):
    model = _no_dropout(tiny_bert())
    args = training_args(
        tmp_path, max_steps=3, per_device_train_batch_size=batch, gradient_accumulation_steps=steps, logging_steps=1
    )
    trainer = PruningTrainer(model=model, args=args, train_dataset=tiny_dataset(), pruning=pruning)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, losses


@pytest.mark.parametrize("pruning", [None, MagnitudeConfig(target_sparsity=0.5, begin_step=0, end_step=2)])
def test_accumulating_2x4_trains_like_one_batch_of_8(tmp_path, pruning):
    one, one_losses = _train(tmp_path / "1x8", 8, 1, pruning)
    two, two_losses = _train(tmp_path / "2x4", 4, 2, pruning)
    assert two_losses == pytest.approx(one_losses, rel=1e-4)  # not twice as large
    for key, value in one.items():
        torch.testing.assert_close(two[key], value, rtol=1e-4, atol=1e-5, msg=key)


def test_the_models_own_setting_is_left_alone(tmp_path):
    model = tiny_bert()
    model.accepts_loss_kwargs = True  # the user says the loss is normalised: believe it
    trainer = PruningTrainer(model=model, args=training_args(tmp_path), train_dataset=tiny_dataset())
    assert trainer.model_accepts_loss_kwargs is True
    assert loss_ignores_num_items(tiny_bert())
    assert not loss_ignores_num_items(tiny_multitask())  # it says accepts_loss_kwargs=False itself


def test_a_stock_trainer_with_the_callback_warns_and_names_the_fix(tmp_path, caplog):
    args = training_args(tmp_path, max_steps=1, per_device_train_batch_size=4, gradient_accumulation_steps=2)
    callback = PruningCallback(MagnitudeConfig(target_sparsity=0.5, begin_step=0, end_step=1))
    trainer = Trainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset(), callbacks=[callback])
    with caplog.at_level(logging.WARNING, logger="hf_prune.callback"):
        trainer.train()
    assert "model.accepts_loss_kwargs = False" in caplog.text

    caplog.clear()
    model = tiny_bert()
    model.accepts_loss_kwargs = False  # the fix: no warning, and the loss is averaged
    callback = PruningCallback(MagnitudeConfig(target_sparsity=0.5, begin_step=0, end_step=1))
    trainer = Trainer(model=model, args=args, train_dataset=tiny_dataset(), callbacks=[callback])
    with caplog.at_level(logging.WARNING, logger="hf_prune.callback"):
        trainer.train()
    assert "accepts_loss_kwargs" not in caplog.text


def test_pruning_trainer_does_not_warn(tmp_path, caplog):
    args = training_args(tmp_path, max_steps=1, per_device_train_batch_size=4, gradient_accumulation_steps=2)
    trainer = PruningTrainer(
        model=tiny_bert(),
        args=args,
        train_dataset=tiny_dataset(),
        pruning=MagnitudeConfig(target_sparsity=0.5, begin_step=0, end_step=1),
    )
    with caplog.at_level(logging.WARNING, logger="hf_prune.callback"):
        trainer.train()
    assert "accepts_loss_kwargs" not in caplog.text
