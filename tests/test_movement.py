"""Movement pruning: method-owned scores, straight-through gradient, schedules, Trainer, export, resume."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file
from torch.nn.utils import parametrize
from transformers import AutoModelForSequenceClassification

from hf_prune import MovementConfig, PruningConfig, save_pruned
from hf_prune.errors import CheckpointMismatchError, InvalidConfigError
from hf_prune.methods.base import approximate_keep_masks
from hf_prune.schedules import cubic_sparsity

from .common import attached, batch_loss, make_trainer, tiny_bert, train_steps


def _mask_sparsity(method, name):
    return float((method.targets[name].weight == 0).float().mean())


def test_scores_are_not_model_parameters_or_state():
    model, method = attached(MovementConfig())
    score_ids = {id(s) for s in method.scores()}
    assert len(score_ids) == len(method.targets) == 12
    assert all(s.requires_grad and not isinstance(s, torch.nn.Parameter) for s in method.scores())
    assert not score_ids & {id(p) for p in model.parameters()}
    assert not score_ids & {id(b) for b in model.buffers()}
    state = model.state_dict()
    assert not any("score" in key or "keep" in key for key in state)
    pointers = {t.data_ptr() for t in state.values()}
    assert not pointers & {s.data_ptr() for s in method.scores()}
    # The weight moved under the parametrization; nothing else was added.
    reference = tiny_bert().state_dict()
    renamed = {k.replace(".parametrizations.weight.original", ".weight") for k in state}
    assert renamed == set(reference)


def test_straight_through_gradient_is_upstream_gradient_times_weight():
    model, method = attached(MovementConfig(target_sparsity=0.5, begin_step=0, end_step=10))
    torch.manual_seed(1)
    with torch.no_grad():
        for score in method.scores():
            score.normal_()
    method.step(5)  # zero score gradients leave Adam's update at 0: only the mask changes
    name = "bert.encoder.layer.0.intermediate.dense"
    module, mask = method.targets[name], method.masks[name]
    assert 0.4 < float((~mask.keep).float().mean()) < 0.5
    raw = method.raw_weight(name)
    with parametrize.cached():  # one W' tensor, used by the forward and the autograd.grad below
        masked = module.weight
        d_masked, d_scores, d_raw = torch.autograd.grad(batch_loss(model), [masked, mask.scores, raw])
    torch.testing.assert_close(d_scores, d_masked * raw.detach())
    torch.testing.assert_close(d_raw, d_masked * mask.keep)  # pruned weights get no gradient
    assert float(d_scores[~mask.keep].abs().sum()) > 0  # but their scores still do


@pytest.mark.parametrize("distribution", ["per_matrix", "global"])
def test_hard_variant_follows_the_cubic_schedule_and_ends_exact(distribution):
    config = MovementConfig(target_sparsity=0.7, begin_step=3, end_step=9, sparsity_distribution=distribution)
    model, method = attached(config, total_steps=12)
    seen = {}

    def check(step):
        expected = cubic_sparsity(step, 0.0, 0.7, 3, 9)
        seen[step] = method.sparsity()
        assert method.sparsity() == pytest.approx(expected, abs=2e-3), step
        if distribution == "per_matrix":
            for name in method.targets:
                assert _mask_sparsity(method, name) == pytest.approx(expected, abs=2e-3), (step, name)

    train_steps(model, method, 12, on_step=check, begin=False)
    assert seen[3] == 0.0 and seen[5] > 0.0  # dense warm-up, then the ramp
    assert all(float(s.detach().abs().sum()) > 0 for s in method.scores())  # scores learned meanwhile
    assert method.frozen and method.finished
    per_matrix = method.sparsity_per_matrix()
    sizes = [method.raw_weight(n).numel() for n in method.targets]
    zeros = round(0.7 * sum(sizes)) if distribution == "global" else sum(round(0.7 * n) for n in sizes)
    assert method.sparsity() == zeros / sum(sizes)
    if distribution == "per_matrix":
        for name, module in method.targets.items():
            assert per_matrix[name] == round(0.7 * module.weight.numel()) / module.weight.numel(), name
    else:
        assert max(per_matrix.values()) - min(per_matrix.values()) > 1e-3  # ranked all together
    # Frozen: the stored weights hold the zeros, not just the mask.
    for name, pruned in method.pruned.items():
        assert bool((method.raw_weight(name)[pruned] == 0).all())


def test_soft_penalty_moves_scores_down():
    for regularization in (0.0, 1.0):
        model, method = attached(
            MovementConfig(variant="soft", begin_step=0, end_step=10, soft_regularization=regularization)
        )
        initial = torch.cat([s.detach().flatten() for s in method.scores()])
        for step in range(1, 4):  # no task loss: only the penalty acts on the scores
            method.step(step)
        scores = torch.cat([s.detach().flatten() for s in method.scores()])
        if regularization == 0.0:
            assert torch.equal(scores, initial)
        else:
            assert bool((scores < initial).all())
            assert method.stats()["penalty_lambda"] > 0


def test_soft_variant_ends_exactly_at_the_target():
    config = MovementConfig(
        variant="soft", target_sparsity=0.6, begin_step=2, end_step=8, score_learning_rate=0.1, soft_regularization=1.0
    )
    model, method = attached(config, total_steps=10)
    mid = {}
    train_steps(model, method, 10, on_step=lambda step: mid.setdefault(step, method.sparsity()), begin=False)
    assert mid[2] == 0.0 and mid[6] > 0.0  # the ramped threshold starts cutting after begin
    report = method.finalize()
    assert report["variant"] == "soft" and 0.0 <= report["soft_threshold_sparsity"] <= 1.0
    for name, module in method.targets.items():
        assert method.sparsity_per_matrix()[name] == round(0.6 * module.weight.numel()) / module.weight.numel()


CONFIGS = {
    "hard": lambda: MovementConfig(target_sparsity=0.75, begin_fraction=0.1, end_fraction=0.6),
    "soft": lambda: MovementConfig(
        variant="soft", target_sparsity=0.75, begin_fraction=0.1, end_fraction=0.6, soft_regularization=2.0
    ),
}


@pytest.mark.parametrize("use_callback", [False, True], ids=["PruningTrainer", "PruningCallback"])
@pytest.mark.parametrize("variant", sorted(CONFIGS))
def test_training_and_export(tmp_path, dataset, variant, use_callback):
    trainer, method = make_trainer(tmp_path / "run", tiny_bert(), dataset, CONFIGS[variant](), use_callback)
    trainer.train()
    assert method.frozen
    for name, sparsity in method.sparsity_per_matrix().items():
        assert sparsity == 0.75, name
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logs and all("prune/sparsity" in entry and "prune/sparsity/ffn" in entry for entry in logs)
    if variant == "hard":  # during training the stats report the mask, which tracks the schedule
        for entry in logs:
            assert entry["prune/sparsity"] == pytest.approx(entry["prune/scheduled_sparsity"], abs=2e-3)
        assert 0.0 < logs[0]["prune/sparsity"] < 0.75

    out = tmp_path / "export"
    model = trainer.model
    report = trainer.save_pruned(out) if not use_callback else save_pruned(model, out, method)
    assert not any(parametrize.is_parametrized(m) for m in method.targets.values())
    names = [f"{n}.weight" for n in method.targets]
    tensors = load_file(os.path.join(out, "model.safetensors"))
    assert not any("parametrizations" in key for key in tensors)
    for name in names:
        assert float((tensors[name] == 0).float().mean()) == 0.75, name
    assert report["saved_sparsity"] == 0.75 and report["method"] == "movement"
    if variant == "soft":
        assert "soft_threshold_sparsity" in report

    reloaded = AutoModelForSequenceClassification.from_pretrained(out)
    ids = torch.randint(3, 100, (2, 8))
    model.eval()
    reloaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, model(input_ids=ids).logits)
    # After materialize the plain weights keep their zeros through more steps.
    with torch.no_grad():
        for module in method.targets.values():
            module.weight.add_(1.0)
    method.step(21)
    assert method.sparsity() == 0.75


def _state(method):
    return {
        name: (method.raw_weight(name).detach().clone(), method.targets[name].weight.detach().clone())
        for name in method.targets
    }


def test_soft_variant_resumes_to_the_same_weights_and_mask(tmp_path, dataset):
    # The default (hard) variant's resume, through both paths, is a contract (test_contract.py).
    save_args = dict(save_strategy="steps", save_steps=8, max_steps=20)
    full, full_method = make_trainer(tmp_path, tiny_bert(), dataset, CONFIGS["soft"](), False, **save_args)
    full.train()
    expected = _state(full_method)
    # Step 8 is mid-schedule (ramp 2..12): scores, their Adam state and the mask must resume;
    # step 16 is after the freeze.
    for checkpoint in ("checkpoint-8", "checkpoint-16"):
        resumed, resumed_method = make_trainer(
            tmp_path, tiny_bert(seed=1), dataset, CONFIGS["soft"](), False, **save_args
        )
        resumed.train(resume_from_checkpoint=str(tmp_path / checkpoint))
        assert resumed_method.frozen
        for name, (raw, masked) in _state(resumed_method).items():
            assert torch.equal(masked == 0, expected[name][1] == 0), (checkpoint, name)
            torch.testing.assert_close(raw, expected[name][0])
            torch.testing.assert_close(masked, expected[name][1])


def test_resume_state_round_trips_and_refuses_another_variant():
    model, method = attached(MovementConfig(begin_step=1, end_step=10))
    train_steps(model, method, 4, begin=False)
    tensors, metadata = method.state_dict()
    assert tensors["optimizer"]  # the scores' own Adam state is part of the resume state
    json.dumps(metadata)  # the checkpoint header must hold it
    other_model, other = attached(MovementConfig(begin_step=1, end_step=10), seed=1)
    other.load_state_dict(tensors, metadata)
    for a, b in zip(method.scores(), other.scores(), strict=True):
        assert torch.equal(a, b)
    for name in method.targets:
        assert torch.equal(method.masks[name].keep, other.masks[name].keep)
    _, soft = attached(MovementConfig(variant="soft", begin_step=1, end_step=10))
    with pytest.raises(CheckpointMismatchError, match="variant"):
        soft.load_state_dict(tensors, metadata)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"variant": "medium"}, "variant"),
        ({"score_learning_rate": 0.0}, "score_learning_rate"),
        ({"score_learning_rate": -1e-2}, "score_learning_rate"),
        ({"soft_regularization": -1.0}, "soft_regularization"),
        ({"soft_threshold": float("inf")}, "soft_threshold"),
        ({"soft_threshold": float("nan")}, "soft_threshold"),
        ({"target_sparsity": 1.0}, "target_sparsity"),
    ],
)
def test_bad_config_values_name_the_field(kwargs, field):
    with pytest.raises(InvalidConfigError, match=field):
        MovementConfig(**kwargs)


def test_config_json_round_trip(tmp_path):
    config = MovementConfig(variant="soft", soft_threshold=-1.0, sparsity_distribution="global")
    config.save(tmp_path)
    assert PruningConfig.load(tmp_path) == config


def test_magnitude_score_init_ranks_like_magnitude_and_zeros_init_is_the_papers():
    _, method = attached(MovementConfig(target_sparsity=0.5))
    for name, scores in zip(method.masks, method.scores()):
        weight = method.raw_weight(name).detach().abs().flatten()
        flat = scores.detach().flatten()
        assert abs(float(flat.mean())) < 1e-5 and abs(float(flat.std()) - 1.0) < 1e-4
        assert torch.equal(torch.argsort(flat), torch.argsort(weight))  # same order as |W|
    _, method = attached(MovementConfig(target_sparsity=0.5, score_init="zeros"))
    assert all(bool((s == 0).all()) for s in method.scores())


def test_score_init_is_validated():
    with pytest.raises(InvalidConfigError, match="score_init"):
        MovementConfig(score_init="random")
    with pytest.raises(InvalidConfigError, match="score_init_scale"):
        MovementConfig(score_init_scale=-1.0)


@pytest.mark.parametrize("distribution", ["per_matrix", "global"])
def test_sampled_threshold_masks_are_within_one_percent_of_the_schedule(distribution):
    generator = torch.Generator().manual_seed(0)
    scores = {"a": torch.randn(300, 500, generator=generator), "b": torch.randn(64, 64, generator=generator) * 3}
    for sparsity in (0.1, 0.5, 0.9):
        masks = approximate_keep_masks(scores, sparsity, distribution)
        kept = sum(int(m.sum()) for m in masks.values()) / sum(s.numel() for s in scores.values())
        assert abs(kept - (1 - sparsity)) <= 0.01
        if distribution == "per_matrix":
            for name, mask in masks.items():
                assert abs(float(mask.float().mean()) - (1 - sparsity)) <= 0.01
                # what is kept is what scores highest: every kept score >= every pruned score
                assert float(scores[name][mask].min()) >= float(scores[name][~mask].max())


def test_frozen_forward_is_the_stored_weight_which_holds_the_zeros():
    model, method = attached(MovementConfig(target_sparsity=0.5, begin_step=0, end_step=2), total_steps=4)
    train_steps(model, method, 4, begin=False)
    assert method.frozen
    for name, module in method.targets.items():
        stored = method.raw_weight(name)
        assert torch.equal(module.weight, stored)
        assert abs(float((stored == 0).float().mean()) - 0.5) < 1e-3
