"""Method mechanics, driven directly (no Trainer): the proximal step, schedules, frozen masks."""

from __future__ import annotations

import pytest
import torch

from hf_prune import FrozenMaskConfig, MagnitudeConfig, RPPConfig, create_method
from hf_prune.methods.base import keep_topk_mask, pruned_masks_for_target

from .common import batch_loss, tiny_bert, train_steps


def test_topk_mask_is_exact_with_ties():
    scores = torch.zeros(10)
    assert int(keep_topk_mask(scores, 3).sum()) == 3
    masks = pruned_masks_for_target({"a": torch.rand(7, 5), "b": torch.rand(3, 3)}, 0.6, "global")
    zeros = sum(int(m.sum()) for m in masks.values())
    assert zeros == round(0.6 * 44)


def test_proximal_step_soft_thresholds_with_the_learning_rate():
    model = tiny_bert()
    config = RPPConfig(gamma=2.0, begin_step=0, end_step=100, gamma_control="off", plain_l1_first_round=True)
    method = create_method(config)
    method.attach(model)
    method.begin(100)
    name = next(iter(method.targets))
    weight = method.targets[name].weight
    before = weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)  # no gradients: step() leaves weights as they are
    method.step(1, optimizer)
    threshold = 0.01 * 2.0
    expected = torch.sign(before) * torch.clamp(before.abs() - threshold, min=0)
    torch.testing.assert_close(weight.detach(), expected)
    assert int((weight == 0).sum()) == int((before.abs() <= threshold).sum()) > 0


def test_reweighting_scales_the_threshold_by_inverse_magnitude():
    model = tiny_bert()
    method = create_method(
        RPPConfig(
            gamma=1.0,
            epsilon=0.1,
            reweight_interval=1,
            begin_step=0,
            end_step=100,
            gamma_control="off",
            plain_l1_first_round=False,
        )
    )
    method.attach(model)
    method.begin(100)
    name = next(iter(method.targets))
    weight = method.targets[name].weight
    before = weight.detach().clone()
    method.step(1, torch.optim.SGD(model.parameters(), lr=0.001))
    alpha = 1.0 / (before.abs() + 0.1)
    expected = torch.sign(before) * torch.clamp(before.abs() - 0.001 * alpha, min=0)
    torch.testing.assert_close(weight.detach(), expected)


def test_proximal_step_leaves_adam_moments_alone():
    """Decoupled: Adam's moments only ever see the loss gradients, never the l1 term."""
    model = tiny_bert()
    method = create_method(RPPConfig(begin_step=0, end_step=100, gamma=5.0, plain_l1_first_round=True))
    method.attach(model)
    method.begin(100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.999))
    name = next(iter(method.targets))
    weight = method.targets[name].weight
    grads, shrunk = [], []
    for step in (1, 2):
        optimizer.zero_grad()
        batch_loss(model, step).backward()
        grads.append(weight.grad.detach().clone())
        optimizer.step()
        before = weight.detach().clone()
        method.step(step, optimizer)
        shrunk.append(bool((weight != before).any()))
    assert all(shrunk), "the proximal step did not change the weights"
    expected_m = 0.9 * (0.1 * grads[0]) + 0.1 * grads[1]
    expected_v = 0.999 * (0.001 * grads[0] ** 2) + 0.001 * grads[1] ** 2
    torch.testing.assert_close(optimizer.state[weight]["exp_avg"], expected_m)
    torch.testing.assert_close(optimizer.state[weight]["exp_avg_sq"], expected_v)


def test_step_before_begin_is_a_clear_error():
    model = tiny_bert()
    for config in (RPPConfig(), MagnitudeConfig()):
        method = create_method(config)
        method.attach(model)
        with pytest.raises(RuntimeError, match="begin"):
            method.step(1, torch.optim.SGD(model.parameters(), lr=0.1))


def test_weights_missing_from_the_optimizer_are_reported():
    model = tiny_bert()
    method = create_method(RPPConfig(begin_step=0, end_step=10))
    method.attach(model)
    method.begin(10)
    with pytest.raises(ValueError, match="not in the optimizer"):
        method.step(1, torch.optim.SGD(model.classifier.parameters(), lr=0.1))


def test_adam_preconditioned_threshold_needs_adam_state():
    model = tiny_bert()
    method = create_method(RPPConfig(threshold="adam", begin_step=0, end_step=10))
    method.attach(model)
    method.begin(10)
    with pytest.raises(ValueError, match="Adam-family"):
        method.step(1, torch.optim.SGD(model.parameters(), lr=0.1))


@pytest.mark.parametrize("threshold", ["plain", "adam"])
@pytest.mark.parametrize("distribution", ["per_matrix", "global"])
def test_rpp_reaches_the_exact_target_and_freezes(threshold, distribution):
    model = tiny_bert()
    config = RPPConfig(
        target_sparsity=0.7,
        threshold=threshold,
        sparsity_distribution=distribution,
        begin_step=2,
        end_step=20,
        reweight_interval=5,
    )
    method = create_method(config)
    method.attach(model)
    train_steps(model, method, 30, weight_decay=0.1)
    assert method.frozen
    report = method.finalize()
    if distribution == "per_matrix":
        assert all(abs(s - 0.7) < 1e-3 for s in report["sparsity_per_matrix"].values())
    smallest = min(m.weight.numel() for m in method.targets.values())
    assert abs(report["sparsity"] - 0.7) <= 0.5 / smallest  # rounding to whole weights per matrix
    assert report["proximal_sparsity"] > 0.0, "the proximal path produced no zeros at all"


def test_rpp_controller_tracks_the_schedule_per_matrix():
    model = tiny_bert()
    method = create_method(RPPConfig(target_sparsity=0.6, begin_step=0, end_step=60, reweight_interval=10))
    method.attach(model)
    train_steps(model, method, 59)
    per_matrix = list(method.sparsity_per_matrix().values())
    assert min(per_matrix) > 0.3, per_matrix  # every matrix is being pruned, not just the small-weight ones


def test_magnitude_follows_the_cubic_schedule():
    model = tiny_bert()
    method = create_method(MagnitudeConfig(target_sparsity=0.8, begin_step=0, end_step=40, prune_interval=10))
    method.attach(model)
    seen = []
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    method.begin(50)
    for step in range(1, 51):
        optimizer.zero_grad()
        batch_loss(model, step).backward()
        optimizer.step()
        method.step(step, optimizer)
        seen.append(method.sparsity())
    assert seen[9] == pytest.approx(0.8 - 0.8 * 0.75**3, abs=1e-3)
    assert seen[19] == pytest.approx(0.8 - 0.8 * 0.5**3, abs=1e-3)
    assert all(s == pytest.approx(0.8, abs=1e-3) for s in seen[39:])
    assert all(b >= a - 1e-9 for a, b in zip(seen, seen[1:]))


def test_frozen_zeros_survive_weight_decay_and_momentum():
    model = tiny_bert()
    method = create_method(MagnitudeConfig(target_sparsity=0.5, begin_step=0, end_step=1))
    method.attach(model)
    train_steps(model, method, 1)
    zeros_before = {n: (m.weight == 0).clone() for n, m in method.targets.items()}
    train_steps(model, method, 20, lr=1e-2, weight_decay=0.5)
    for name, module in method.targets.items():
        assert bool((module.weight[zeros_before[name]] == 0).all())


def test_frozen_mask_method_keeps_existing_zeros():
    model = tiny_bert()
    with torch.no_grad():
        weight = model.bert.encoder.layer[0].intermediate.dense.weight
        weight[:, :10] = 0
    method = create_method(FrozenMaskConfig())
    method.attach(model)
    train_steps(model, method, 5, lr=1e-2)
    assert bool((weight[:, :10] == 0).all())
    assert method.sparsity() == pytest.approx(10 * 64 / sum(m.weight.numel() for m in method.targets.values()))
