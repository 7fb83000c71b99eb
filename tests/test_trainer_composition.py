"""The pruning trainer composes: a mixin over any Trainer subclass, a plain Trainer without
pruning, a fresh method per model for model_init and hyper-parameter searches, and the one
private Trainer detail it relies on, pinned."""

from __future__ import annotations

import inspect
import os

import pytest
import torch
from transformers import Trainer

from hf_prune import MagnitudeConfig, PruningCallback, PruningTrainer, RankConfig, RPPConfig
from hf_prune.errors import UnsupportedModelError
from hf_prune.trainer import PruningTrainerMixin

from .conftest import tiny_bert, training_args

MAGNITUDE = dict(target_sparsity=0.5, prune_interval=1, begin_step=1, end_step=4)


def _timing_free(logs: list[dict]) -> list[dict]:
    """Log entries without the keys that measure wall time (they differ run to run)."""
    timing = ("runtime", "per_second", "flos")
    return [{k: v for k, v in entry.items() if not any(t in k for t in timing)} for entry in logs]


# --------------------------------------------------------------------------- composition
class CountingTrainer(Trainer):
    """A user's own Trainer subclass with its own constructor argument and loss hook."""

    def __init__(self, *args, l2: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.l2, self.loss_calls = l2, 0

    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        self.loss_calls += 1
        return super().compute_loss(model, inputs, return_outputs, **kwargs)


class PruningCountingTrainer(PruningTrainerMixin, CountingTrainer):
    pass


def test_the_mixin_composes_with_another_trainer_subclass(tmp_path, dataset):
    trainer = PruningCountingTrainer(
        model=tiny_bert(),
        args=training_args(tmp_path, max_steps=6),
        train_dataset=dataset,
        pruning=MagnitudeConfig(**MAGNITUDE),
        l2=0.1,
    )
    trainer.train()
    assert trainer.loss_calls == 6 and trainer.l2 == 0.1  # the user's subclass ran
    assert trainer.pruning_method.sparsity() == pytest.approx(0.5, abs=1e-3)  # and so did pruning
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert all("prune/sparsity" in entry for entry in logs)
    report = trainer.save_pruned(tmp_path / "export")
    assert report["saved_sparsity"] == pytest.approx(0.5, abs=1e-3)


def test_pruning_trainer_signature_lists_every_trainer_argument():
    trainer_args = list(inspect.signature(Trainer).parameters)
    assert list(inspect.signature(PruningTrainer).parameters) == [*trainer_args, "pruning", "distillation"]


# --------------------------------------------------------------------------- pruning=None is a Trainer
def _run(trainer_class, path, dataset, **kwargs):
    torch.manual_seed(0)
    args = training_args(path, max_steps=6, save_strategy="steps", save_steps=3, logging_steps=2)
    trainer = trainer_class(model=tiny_bert(), args=args, train_dataset=dataset, **kwargs)
    output = trainer.train()
    trainer.save_model(str(path / "final"))
    return trainer, output


def _files(folder):
    return sorted(
        os.path.relpath(os.path.join(root, name), folder) for root, _, names in os.walk(folder) for name in names
    )


def test_pruning_trainer_without_pruning_is_indistinguishable_from_trainer(tmp_path, dataset):
    plain, plain_output = _run(Trainer, tmp_path / "plain", dataset)
    ours, our_output = _run(PruningTrainer, tmp_path / "ours", dataset, pruning=None)
    assert type(our_output) is type(plain_output)
    assert our_output.global_step == plain_output.global_step
    assert our_output.training_loss == plain_output.training_loss
    assert sorted(our_output.metrics) == sorted(plain_output.metrics)
    assert _timing_free(ours.state.log_history) == _timing_free(plain.state.log_history)
    # The same files, checkpoints included (no hf_prune_state, no extra JSON).
    assert _files(tmp_path / "ours") == _files(tmp_path / "plain")
    for name, tensor in plain.model.state_dict().items():
        assert torch.equal(ours.model.state_dict()[name], tensor), name
    assert ours.pruning_method is None and ours.pruning_callback is None
    assert [type(c) for c in ours.callback_handler.callbacks] == [type(c) for c in plain.callback_handler.callbacks]


def test_push_to_hub_uploads_the_same_folder_with_and_without_pruning_trainer(tmp_path, dataset, monkeypatch):
    """push_to_hub is not overridden: with pruning=None it saves and uploads exactly what Trainer does."""
    uploads = []

    class FakeApi:
        def upload_folder(self, **kwargs):
            uploads.append((kwargs["repo_id"], _files(kwargs["folder_path"]), kwargs["ignore_patterns"]))

    import transformers.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "hf_api", lambda: FakeApi(), raising=False)
    monkeypatch.setattr(trainer_module.Trainer, "create_model_card", lambda self, **kwargs: None)
    for cls, folder in ((Trainer, "plain"), (PruningTrainer, "ours")):
        trainer = cls(model=tiny_bert(), args=training_args(tmp_path / folder, max_steps=2), train_dataset=dataset)
        trainer.hub_model_id = "someone/tiny"  # skips init_hf_repo (no network)
        trainer.push_to_hub(blocking=True)
    assert len(uploads) == 2 and uploads[0] == uploads[1]

    def shape(function):
        return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]

    assert shape(PruningTrainer.push_to_hub) == shape(Trainer.push_to_hub)


# --------------------------------------------------------------------------- the pinned private detail
def test_checkpoints_are_saved_through_save_model_with_internal_call(tmp_path, dataset, monkeypatch):
    """PruningTrainer writes the resume state in save_model(folder, _internal_call=True), which the
    Trainer calls for every checkpoint before rotating or pushing it. If a transformers release
    changes that, this test fails (and checkpoints would lack their pruning state)."""
    assert "_internal_call" in inspect.signature(Trainer.save_model).parameters
    calls = []
    original = Trainer.save_model

    def spy(self, output_dir=None, _internal_call=False):
        calls.append((os.path.basename(str(output_dir)), _internal_call, os.path.isdir(str(output_dir))))
        return original(self, output_dir, _internal_call)

    monkeypatch.setattr(Trainer, "save_model", spy)
    args = training_args(tmp_path, max_steps=4, save_strategy="steps", save_steps=2, save_total_limit=1)
    trainer = PruningTrainer(model=tiny_bert(), args=args, train_dataset=dataset, pruning=MagnitudeConfig(**MAGNITUDE))
    trainer.train()
    assert [(name, internal) for name, internal, _ in calls] == [("checkpoint-2", True), ("checkpoint-4", True)]
    assert (tmp_path / "checkpoint-4" / "hf_prune_state.safetensors").is_file()


# --------------------------------------------------------------------------- callback modes
def test_callback_save_state_on_save_flag_controls_the_state_files(tmp_path, dataset):
    for save_state in (True, False):
        callback = PruningCallback(MagnitudeConfig(**MAGNITUDE), save_state_on_save=save_state)
        args = training_args(tmp_path / str(save_state), max_steps=4, save_strategy="steps", save_steps=2)
        Trainer(model=tiny_bert(), args=args, train_dataset=dataset, callbacks=[callback]).train()
        state_files = [f for f in _files(tmp_path / str(save_state)) if f.endswith("hf_prune_state.safetensors")]
        assert state_files == (
            ["checkpoint-2/hf_prune_state.safetensors", "checkpoint-4/hf_prune_state.safetensors"] if save_state else []
        )


def test_callback_log_stats_flag_controls_the_logs(tmp_path, dataset):
    for log_stats in (True, False):
        callback = PruningCallback(MagnitudeConfig(**MAGNITUDE), log_stats=log_stats)
        trainer = Trainer(
            model=tiny_bert(),
            args=training_args(tmp_path / str(log_stats), max_steps=4, logging_steps=2),
            train_dataset=dataset,
            callbacks=[callback],
        )
        trainer.train()
        logs = [entry for entry in trainer.state.log_history if "loss" in entry]
        assert logs and all(("prune/sparsity" in entry) == log_stats for entry in logs)


# --------------------------------------------------------------------------- model_init and searches
def _model_init():
    return tiny_bert(seed=1)


@pytest.mark.parametrize(
    "config",
    [MagnitudeConfig(**MAGNITUDE), RankConfig(target_params_fraction=0.5, begin_step=1, end_step=4)],
    ids=["magnitude", "rank"],
)
def test_model_init_gets_a_fresh_method_per_model(tmp_path, dataset, config):
    trainer = PruningTrainer(
        model_init=_model_init, args=training_args(tmp_path, max_steps=6), train_dataset=dataset, pruning=config
    )
    first_init_method = trainer.pruning_method
    trainer.train()
    first = trainer.pruning_method
    assert first is not first_init_method and first.attached_to(trainer.model)
    # rank's factors were built before the optimizer: every trainable parameter was in it
    trained = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert all(id(p) in trained for p in trainer.model.parameters() if p.requires_grad)
    assert first.finished
    trainer.train()  # a second run builds a new model and a new method
    assert trainer.pruning_method is not first and trainer.pruning_method.finished


def test_stock_trainer_with_model_init_works_for_elementwise_and_refuses_added_parameters(tmp_path, dataset):
    callback = PruningCallback(MagnitudeConfig(**MAGNITUDE))
    trainer = Trainer(
        model_init=_model_init, args=training_args(tmp_path, max_steps=6), train_dataset=dataset, callbacks=[callback]
    )
    trainer.train()
    assert callback.method.attached_to(trainer.model) and callback.method.sparsity() == pytest.approx(0.5, abs=1e-3)
    rank = PruningCallback(RankConfig(target_params_fraction=0.5, begin_step=1, end_step=4))
    trainer = Trainer(
        model_init=_model_init, args=training_args(tmp_path, max_steps=6), train_dataset=dataset, callbacks=[rank]
    )
    with pytest.raises(UnsupportedModelError, match="not in the optimizer.*PruningTrainer"):
        trainer.train()


def test_hyperparameter_search_over_the_target_sparsity(tmp_path, dataset):
    pytest.importorskip("optuna")
    targets = []

    def pruning(trial):
        target = 0.5 if trial is None else trial.suggest_categorical("target_sparsity", [0.25, 0.75])
        targets.append(target)
        return RPPConfig(target_sparsity=target, begin_step=1, end_step=4, reweight_interval=2)

    trainer = PruningTrainer(
        model_init=_model_init,
        args=training_args(tmp_path, max_steps=5, eval_strategy="no"),
        train_dataset=dataset,
        eval_dataset=dataset,
        pruning=pruning,
    )
    reached = []

    def objective(metrics):
        reached.append((trainer.pruning_method.config.target_sparsity, trainer.pruning_method.sparsity()))
        return metrics["eval_loss"]

    trainer.hyperparameter_search(
        hp_space=lambda trial: {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-2, log=True)},
        backend="optuna",
        n_trials=2,
        compute_objective=objective,
    )
    assert targets[0] == 0.5 and len(targets) == 3  # the model built in __init__, then one per trial
    assert len(reached) == 2
    for target, sparsity in reached:
        assert sparsity == pytest.approx(target, abs=1e-3)
