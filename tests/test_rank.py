"""Rank pruning (FLOP): SVD init, hard-concrete gates, the Lagrangian, budget, compile-back, resume."""

from __future__ import annotations

import dataclasses
import gc
import json

import pytest
import torch
from transformers import Trainer

from hf_prune import PruningCallback, PruningConfig, PruningTrainer, RankConfig, available_methods, create_method
from hf_prune.checkpointing import load_method_state, save_method_state
from hf_prune.errors import InvalidConfigError
from hf_prune.factorization import FactorizedLinear
from hf_prune.measure import encoder_parameter_count
from hf_prune.methods.rank_budget import AntiWindupMultipliers
from hf_prune.methods.rank_config import RankSchedule

from .conftest import ARCHITECTURES, tiny_bert, training_args


def _ids(seed: int = 0, batch: int = 4) -> torch.Tensor:
    return torch.randint(3, 100, (batch, 12), generator=torch.Generator().manual_seed(seed))


def _loss(model, seed):
    ids = _ids(seed, batch=8)
    return model(input_ids=ids, labels=(ids == 7).any(dim=1).long()).loss


@torch.no_grad()
def _eval_logits(model, seed=123):
    model.eval()
    return model(input_ids=_ids(seed)).logits


def _attached(config=None, model=None):
    model = model if model is not None else tiny_bert()
    method = create_method(config or RankConfig())
    method.attach(model)
    return model, method


def _compiled_target_params(model, method) -> int:
    """Weights of the target layers as they stand in the compiled model (biases excluded)."""
    total = 0
    for name in method.targets:
        module = model.get_submodule(name)
        if isinstance(module, FactorizedLinear):
            total += module.up.weight.numel() + module.down.weight.numel()
        else:
            assert type(module) is torch.nn.Linear, type(module)
            total += module.weight.numel()
    return total


@torch.no_grad()
def _scramble_gates(method, seed=0):
    """Gate logits spread from closed to open: some gates 0, some in (0, 1), some exactly 1."""
    generator = torch.Generator().manual_seed(seed)
    for gates in method.gates.values():
        gates.log_alpha.copy_(torch.randn(gates.log_alpha.shape, generator=generator) * 3.0)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_svd_init_reproduces_the_pretrained_outputs(arch):
    model = ARCHITECTURES[arch]()
    before = _eval_logits(model)
    _, method = _attached(model=model)
    after = _eval_logits(model)
    assert (after - before).abs().max() <= 1e-4
    name, module = next(iter(method.targets.items()))
    in_f, out_f = module.in_features, module.out_features
    assert module.parametrizations.weight.original0.shape == (out_f, min(in_f, out_f))
    assert module.parametrizations.weight.original1.shape == (min(in_f, out_f), in_f)
    assert bool((method.gates[name].deterministic_gate() == 1.0).all())


def test_gates_and_multipliers_are_method_owned_not_model_parameters():
    model, method = _attached()
    params = {id(p) for p in model.parameters()}
    owned = [g.log_alpha for g in method.gates.values()] + [method.lambdas]
    assert all(t.requires_grad and not isinstance(t, torch.nn.Parameter) for t in owned)
    assert not any(id(t) in params for t in owned)
    keys = set(model.state_dict())
    assert not any("log_alpha" in k or "lambda" in k for k in keys)
    name = next(iter(method.targets))
    assert {f"{name}.parametrizations.weight.original0", f"{name}.parametrizations.weight.original1"} <= keys
    assert f"{name}.weight" not in dict(model.named_parameters())
    assert not hasattr(method, "penalty")  # the Lagrangian goes through step(), not the Trainer's loss


def test_lagrangian_has_gradients_on_every_gate_even_while_capped_at_dense():
    _, method = _attached(RankConfig(target_params_fraction=0.5))
    with torch.no_grad():
        method.lambdas.copy_(torch.tensor([-1.0, 1.0]))
        # Full-rank factors: every matrix's expected size is capped at dense, s_hat is exactly 0.
        assert float(method.expected_sparsity()) == pytest.approx(0.0, abs=1e-6)
    method.lagrangian(target=0.5).backward()
    for gates in method.gates.values():
        assert gates.log_alpha.grad is not None and bool((gates.log_alpha.grad != 0).all())
    assert method.lambdas.grad is not None and bool((method.lambdas.grad != 0).all())


@pytest.mark.parametrize("controller", ["anti_windup", "adam"])
def test_training_moves_expected_sparsity_toward_the_target(controller):
    config = RankConfig(
        target_params_fraction=0.5, gate_learning_rate=0.1, controller=controller, warmup_end_step=15, end_step=100
    )
    model, method = _attached(config)
    method.begin(100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    seen = []
    for step in range(1, 61):
        _loss(model, step).backward()
        optimizer.step()
        optimizer.zero_grad()
        method.step(step, optimizer)
        seen.append(method.stats())
        assert all(g.log_alpha.grad is None for g in method.gates.values())  # zeroed after each step
    assert method.schedule.begin == 10  # begin_fraction 0.1 of 100 steps: held until then
    assert all(s["lambda1"] == 0 == s["lambda2"] and s["gate_prob_mean"] == seen[0]["gate_prob_mean"] for s in seen[:9])
    # The target ramps from the full-rank factors' (negative) factored sparsity to the budget.
    assert seen[9]["scheduled_sparsity"] == pytest.approx(method.initial_factored_sparsity) and (
        method.initial_factored_sparsity < 0
    )
    assert seen[14]["scheduled_sparsity"] == pytest.approx(0.5)
    assert seen[12]["lambda1"] < 0 < seen[12]["lambda2"]  # ascent: s below the target pushes l1 down
    assert seen[-1]["expected_sparsity"] > 0.3, [round(s["expected_sparsity"], 3) for s in seen]
    assert seen[-1]["gate_prob_mean"] < seen[0]["gate_prob_mean"]


def test_anti_windup_multipliers_release_l1_before_the_gates_coast_past_the_target():
    lambdas = torch.zeros(2)
    control = AntiWindupMultipliers(step_size=0.5)
    for gap in (-0.8, -0.8, -0.8):  # far below the target and not closing: l1 integrates the gap
        control.update(lambdas, gap)
    assert lambdas.tolist() == pytest.approx([-1.2, 0.96])
    control.update(lambdas, -0.3)  # closing at 0.5 a step: predicted gap -0.3 + 10 * 0.05 > 0
    assert control.predicted_gap(-0.3) > 0 and lambdas[0] == 0.0
    assert lambdas[1] == pytest.approx(0.96 + 0.5 * 0.09)  # l2 (the proportional term) keeps growing
    for _ in range(60):  # the gates stopped just short of the target: l1 builds up again, slowly
        control.update(lambdas, -0.05)
    assert -1.5 < float(lambdas[0]) < 0.0
    fresh = AntiWindupMultipliers(step_size=0.5)
    fresh.load_state(json.loads(json.dumps(control.state())))
    assert fresh == control
    for gap in (0.1, 0.1):  # above the target: l1 changes sign at once instead of unwinding
        control.update(lambdas, gap)
    assert float(lambdas[0]) > 0


@pytest.mark.parametrize("controller", ["anti_windup", "adam"])
def test_controlled_gap_holds_the_compiled_size_once_the_ramp_is_over(controller):
    _, method = _attached(RankConfig(target_params_fraction=0.5, controller=controller))
    _scramble_gates(method)  # some matrices factored, others above their break-even rank (dense)
    with torch.no_grad():
        factored_gap = float(method.expected_factored_sparsity()) - 0.5
        capped_gap = float(method.expected_sparsity()) - 0.5
        assert capped_gap > factored_gap  # the dense cap: compiling keeps less than the factored count
        gap = float(method.controlled_gap(target=0.5))
    assert gap == pytest.approx(capped_gap if controller == "anti_windup" else factored_gap)
    with torch.no_grad():  # on the ramp (target far below the budget) the factored gap leads
        assert float(method.controlled_gap(target=-0.5)) == pytest.approx(factored_gap + 1.0)


def test_adam_controller_steps_the_multipliers_with_adam():
    model, method = _attached(RankConfig(controller="adam", warmup_end_step=2, end_step=10))
    method.begin(10)
    _loss(model, 0).backward()
    method.step(2)  # the first step with a gap (at step 1, the ramp's start, s - t is 0)
    assert method.multipliers is None and method.optimizer.param_groups[1]["lr"] == 5e-2
    # Adam's first step moves each parameter by its learning rate, whatever the gap.
    assert method.lambdas.detach().abs().tolist() == pytest.approx([5e-2, 5e-2])


def test_method_holds_the_model_weakly_and_says_when_it_is_gone():
    model, method = _attached()
    assert method.attached_model is model
    del model
    gc.collect()
    with pytest.raises(RuntimeError, match="garbage-collected"):
        _ = method.attached_model
    with pytest.raises(RuntimeError, match="never attached"):
        _ = create_method(RankConfig()).attached_model


def test_schedule_names_begin_warmup_end_and_freeze():
    assert RankConfig().resolve_schedule(600) == RankSchedule(begin=60, warmup_end=180, end=420)
    # warmup_end_step is an absolute step: begin is clamped to it, the freeze never precedes it.
    assert RankConfig(warmup_end_step=500).resolve_schedule(600) == RankSchedule(60, 500, 500)
    assert RankConfig(warmup_end_step=5, end_step=50).resolve_schedule(600) == RankSchedule(5, 5, 50)
    with pytest.raises(InvalidConfigError, match="warmup_end_step=30 is after end_step=20"):
        RankConfig(warmup_end_step=30, end_step=20)
    # Config files of older versions name the field warmup_steps (mapped when they are read).
    assert RankConfig.legacy_field_names == {"warmup_steps": "warmup_end_step"}
    assert "warmup_end_step" in {f.name for f in dataclasses.fields(RankConfig)}


def test_eval_gates_are_deterministic_training_gates_are_sampled():
    model, method = _attached()
    with torch.no_grad():
        for gates in method.gates.values():
            gates.log_alpha.fill_(0.0)
    module = next(iter(method.targets.values()))
    model.eval()
    assert torch.equal(module.weight, module.weight)
    model.train()
    assert not torch.equal(module.weight, module.weight)
    model.eval()
    gates = next(iter(method.gates.values()))
    expected = torch.sigmoid(torch.zeros(1)) * 1.2 - 0.1
    torch.testing.assert_close(gates.gate(), expected.expand_as(gates.log_alpha))


@pytest.mark.parametrize("budget_of", ["prunable", "encoder"])
def test_finalize_and_materialize_meet_the_budget_in_the_compiled_model(budget_of):
    model, method = _attached(RankConfig(target_params_fraction=0.4, budget_of=budget_of))
    total_before = sum(p.numel() for p in tiny_bert().parameters())
    encoder_before = encoder_parameter_count(tiny_bert())
    _scramble_gates(method)
    report = method.finalize()
    gated = _eval_logits(model)
    method.materialize()
    compiled = _eval_logits(model)
    assert (compiled - gated).abs().max() <= 1e-4

    forms = {type(model.get_submodule(name)).__name__ for name in method.targets}
    assert "FactorizedLinear" in forms
    assert all(model.get_submodule(name) is module for name, module in method.targets.items())
    kept = _compiled_target_params(model, method)
    if budget_of == "encoder":
        kept = encoder_parameter_count(model)
        assert report["params_before"] == encoder_before
    assert kept == report["params_after"] <= report["budget_params"]
    assert kept <= 0.4 * report["params_before"]
    assert sum(p.numel() for p in model.parameters()) == report["model_params_after"] < total_before
    assert report["model_params_before"] == total_before
    for name, row in report["per_matrix"].items():
        module = model.get_submodule(name)
        if row["form"] == "factorized":
            assert module.rank == row["rank"] and row["compiled_params"] < row["dense_params"]
    json.dumps(report)  # JSON-able
    assert (
        method.finalize() == report
        and method.phase == "compiled"
        and method.stats()["params_fraction"] == report["achieved_fraction"]
    )


def test_projection_drops_components_when_the_gates_kept_too_much():
    model, method = _attached(RankConfig(target_params_fraction=0.3))
    report = method.finalize()  # gates untouched: all open, everything above budget
    assert report["gate_fraction"] == 1.0
    assert report["projection_dropped_components"] > 0
    assert report["params_after"] <= report["budget_params"]
    gated = _eval_logits(model)
    method.materialize()
    assert (_eval_logits(model) - gated).abs().max() <= 1e-4


def test_fill_readmits_dropped_components_up_to_the_budget():
    for fill in (True, False):
        _, method = _attached(RankConfig(target_params_fraction=0.5, fill_budget=fill))
        with torch.no_grad():
            for gates in method.gates.values():
                gates.log_alpha.fill_(-2.6)  # deterministic gates all 0, yet on in ~30% of samples
        report = method.finalize()
        assert report["revived_components"] == len(method.targets)  # every matrix keeps rank >= 1
        if fill:
            assert report["fill_added_components"] > 0
            added = report["params_after"] - report["gate_fraction"] * report["params_before"]
            assert report["fill_added_fraction"] * report["params_before"] == pytest.approx(added)
            assert report["budget_params"] - report["params_after"] < 96  # less than one more component
        else:
            assert report["fill_added_components"] == 0 == report["fill_added_fraction"]
            assert report["params_after"] == report["gate_fraction"] * 16384


def _make_trainer(path, model, dataset, config, use_callback, **arg_overrides):
    args = training_args(path, **arg_overrides)
    if use_callback:
        callback = PruningCallback(config)
        return Trainer(model=model, args=args, train_dataset=dataset, callbacks=[callback]), callback.method
    trainer = PruningTrainer(model=model, args=args, train_dataset=dataset, pruning=config)
    return trainer, trainer.pruning_method


def _trainer_config():
    return RankConfig(
        target_params_fraction=0.4,
        gate_learning_rate=0.2,
        lagrangian_learning_rate=0.1,
        warmup_fraction=0.3,
        end_fraction=0.7,
    )


@pytest.mark.parametrize("use_callback", [False, True], ids=["PruningTrainer", "PruningCallback"])
def test_rank_pruning_through_the_trainer(tmp_path, dataset, use_callback):
    model = tiny_bert()
    trainer, method = _make_trainer(tmp_path, model, dataset, _trainer_config(), use_callback)
    trainer.train()
    assert method.frozen
    train_logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert train_logs and all("prune/expected_sparsity" in entry for entry in train_logs)
    # The gates closed and the multipliers rose while gating (steps 1-14), then froze.
    assert train_logs[1]["prune/gate_prob_mean"] < train_logs[0]["prune/gate_prob_mean"] < 0.99
    assert train_logs[1]["prune/lambda1"] < train_logs[0]["prune/lambda1"] < 0.0
    assert train_logs[-1]["prune/frozen"] == 1.0
    assert train_logs[-1]["prune/params_fraction"] <= 0.4
    report = method.finalize()
    assert report["params_after"] <= report["budget_params"]
    gated = _eval_logits(model)
    method.materialize()
    assert (_eval_logits(model) - gated).abs().max() <= 1e-4
    assert _compiled_target_params(model, method) == report["params_after"]


def test_resume_mid_schedule_gives_the_same_final_weights(tmp_path, dataset):
    save_args = dict(save_strategy="steps", save_steps=8, max_steps=20)
    full, full_method = _make_trainer(tmp_path / "full", tiny_bert(), dataset, _trainer_config(), False, **save_args)
    full.train()
    # Step 8 is mid-schedule (ramp to step 6, gates frozen at 14): gates, multipliers and the
    # method's Adam state must all resume.
    resumed, resumed_method = _make_trainer(
        tmp_path / "full", tiny_bert(seed=1), dataset, _trainer_config(), False, **save_args
    )
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-8"))
    assert full_method.final_report == resumed_method.final_report
    for name, module in full_method.targets.items():
        other = resumed_method.targets[name]
        for part in ("original0", "original1"):
            torch.testing.assert_close(
                getattr(module.parametrizations.weight, part), getattr(other.parametrizations.weight, part)
            )
        torch.testing.assert_close(full_method.gates[name].log_alpha, resumed_method.gates[name].log_alpha)
        assert torch.equal(full_method.keep[name], resumed_method.keep[name])
    torch.testing.assert_close(full_method.lambdas, resumed_method.lambdas)


def test_state_round_trips_through_a_checkpoint_folder(tmp_path):
    model, method = _attached(RankConfig(warmup_end_step=2, end_step=3))
    method.begin(5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(1, 5):
        _loss(model, step).backward()
        optimizer.step()
        optimizer.zero_grad()
        method.step(step, optimizer)
    save_method_state(method, tmp_path)
    _, fresh = _attached(RankConfig(warmup_end_step=2, end_step=3), model=tiny_bert(seed=3))
    load_method_state(fresh, tmp_path)
    assert fresh.frozen and fresh.final_report == method.final_report
    assert fresh.stats() == method.stats()
    fresh_state = fresh.optimizer.state_dict()["state"]
    for index, state in method.optimizer.state_dict()["state"].items():
        for key, value in state.items():
            torch.testing.assert_close(fresh_state[index][key], value)


@pytest.mark.parametrize("value", [0.0, -0.1, 1.5])
def test_budget_outside_range_is_rejected(value):
    with pytest.raises(InvalidConfigError, match=r"target_params_fraction=.*\(0\.0, 1\.0\]"):
        RankConfig(target_params_fraction=value)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"log_alpha_init": 1.0}, "log_alpha_init"),
        ({"include_embeddings": True}, "include_embeddings"),
        ({"stretch_right": 1.0}, "stretch_right"),
        ({"warmup_fraction": 0.8, "end_fraction": 0.5}, "warmup_fraction"),
        ({"gate_learning_rate": 0.0}, "gate_learning_rate"),
        ({"budget_of": "model"}, "budget_of"),
    ],
)
def test_bad_fields_name_the_field(kwargs, field):
    with pytest.raises(InvalidConfigError, match=field):
        RankConfig(**kwargs)


@pytest.mark.parametrize("budget_of, minimum", [("prunable", 0.0547), ("encoder", 0.0)])
def test_unreachable_budget_fails_before_training(tmp_path, dataset, budget_of, minimum):
    with pytest.raises(InvalidConfigError, match="unreachable") as error:
        PruningTrainer(
            model=tiny_bert(),
            args=training_args(tmp_path),
            train_dataset=dataset,
            pruning=RankConfig(target_params_fraction=0.05, budget_of=budget_of),
        )
    reported = float(str(error.value).split("target_params_fraction >= ")[1].split(",")[0])
    assert reported >= minimum and reported > 0.05
    model = tiny_bert()
    method = create_method(RankConfig(target_params_fraction=reported, budget_of=budget_of))
    method.attach(model)  # the minimum it names is reachable
    assert method.finalize()["params_after"] <= method.budget_params


def test_registered_and_round_trips_through_json(tmp_path):
    assert "rank" in available_methods()
    config = RankConfig(target_params_fraction=0.3, budget_of="encoder", warmup_end_step=10)
    config.save(tmp_path)
    assert PruningConfig.load(tmp_path) == config


def test_relocating_method_tensors_keeps_optimizer_state():
    """The bookkeeping used when the model moves to another device after attach (same device here)."""
    model, method = _attached(RankConfig(warmup_end_step=2, end_step=10))
    method.begin(10)
    _loss(model, 0).backward()
    method.step(1)
    name = next(iter(method.gates))
    old = method.gates[name].log_alpha
    exp_avg = method.optimizer.state[old]["exp_avg"].clone()
    new = method._relocate(old, torch.device("cpu"))
    method.gates[name].log_alpha = new
    assert new is not old and torch.equal(new, old)
    assert any(p is new for p in method.optimizer.param_groups[0]["params"])
    assert not any(p is old for p in method.optimizer.param_groups[0]["params"])
    torch.testing.assert_close(method.optimizer.state[new]["exp_avg"], exp_avg)
    model.train()
    _loss(model, 1).backward()
    assert new.grad is not None  # the parametrization reads the relocated tensor
    before = new.detach().clone()
    method.step(2)
    assert not torch.equal(new.detach(), before)
