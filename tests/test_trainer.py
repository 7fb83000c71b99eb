"""PruningTrainer and PruningCallback specifics: logs, accumulation, skipped steps, refused resumes, errors.

Targets met, callback == trainer and resume equivalence for every method are contracts
(``tests/test_contract.py``).
"""

from __future__ import annotations

import pytest
from transformers import Trainer

from hf_prune import MagnitudeConfig, PruningCallback, PruningTrainer, RPPConfig, create_method
from hf_prune.errors import (
    CheckpointMismatchError,
    MissingPruningStateError,
    NoMatchingModulesError,
    UnsupportedModelError,
)

from .common import METHODS, make_trainer, tiny_bert, training_args

CONFIGS = {
    "rpp": lambda: RPPConfig(target_sparsity=0.75, reweight_interval=4, begin_fraction=0.1, end_fraction=0.6),
    "magnitude": lambda: MagnitudeConfig(target_sparsity=0.75, prune_interval=2, begin_fraction=0.1, end_fraction=0.6),
}


@pytest.mark.parametrize("method_name", ["magnitude", "rpp"])
def test_logs_report_the_reached_sparsity(contract_tester, method_name):
    # The shared contract run (tests/common.py); the callback path logs the same scalars
    # (test_contract.py::test_callback_path_equals_trainer_path).
    run = contract_tester.trained(METHODS[method_name], "bert")
    target = run.method.config.target_sparsity
    assert run.method.frozen
    train_logs = [entry for entry in run.trainer.state.log_history if "loss" in entry]
    assert train_logs and all("prune/sparsity" in entry for entry in train_logs)
    assert train_logs[-1]["prune/sparsity"] == pytest.approx(target, abs=1e-3)
    assert any(key.startswith("prune/sparsity/") for key in train_logs[-1])


def test_one_pruning_step_per_optimizer_step_with_accumulation(tmp_path, dataset):
    trainer, method = make_trainer(
        tmp_path,
        tiny_bert(),
        dataset,
        CONFIGS["magnitude"](),
        False,
        gradient_accumulation_steps=3,
        max_steps=6,
        per_device_train_batch_size=4,
    )
    steps_seen = []
    original = method.step
    method.step = lambda step, optimizer=None: (steps_seen.append(step), original(step, optimizer))[-1]
    trainer.train()
    assert steps_seen == [1, 2, 3, 4, 5, 6]
    assert method.sparsity() == pytest.approx(0.75, abs=1e-3)


def test_skipped_optimizer_step_does_not_advance_pruning():
    callback = PruningCallback(CONFIGS["magnitude"]())
    calls = []
    callback.method.step = lambda step, optimizer=None: calls.append(step)

    class SkippedOptimizer:
        step_was_skipped = True

    class State:
        global_step = 4

    callback.on_optimizer_step(None, State(), None, optimizer=SkippedOptimizer())
    assert calls == []
    SkippedOptimizer.step_was_skipped = False
    callback.on_optimizer_step(None, State(), None, optimizer=SkippedOptimizer())
    assert calls == [5]


def test_bad_patterns_fail_when_the_trainer_is_built(tmp_path, dataset):
    with pytest.raises(NoMatchingModulesError):
        PruningTrainer(
            model=tiny_bert(),
            args=training_args(tmp_path),
            train_dataset=dataset,
            pruning=RPPConfig(include=["decoder"]),
        )


def test_resume_with_another_method_is_refused(tmp_path, dataset):
    trainer, _ = make_trainer(
        tmp_path, tiny_bert(), dataset, CONFIGS["rpp"](), False, save_strategy="steps", save_steps=5, max_steps=5
    )
    trainer.train()
    other, _ = make_trainer(tmp_path, tiny_bert(), dataset, CONFIGS["magnitude"](), False, max_steps=10)
    with pytest.raises(CheckpointMismatchError, match="'rpp'"):
        other.train(resume_from_checkpoint=str(tmp_path / "checkpoint-5"))


def test_resume_from_a_checkpoint_without_pruning_state_is_refused(tmp_path, dataset):
    plain = Trainer(
        model=tiny_bert(),
        args=training_args(tmp_path, save_strategy="steps", save_steps=5, max_steps=5),
        train_dataset=dataset,
    )
    plain.train()
    trainer, _ = make_trainer(tmp_path, tiny_bert(), dataset, CONFIGS["rpp"](), False, max_steps=10)
    with pytest.raises(MissingPruningStateError, match="hf_prune_state"):
        trainer.train(resume_from_checkpoint=True)


def test_plain_pruning_trainer_without_config_is_a_trainer(tmp_path, dataset):
    trainer = PruningTrainer(model=tiny_bert(), args=training_args(tmp_path, max_steps=3), train_dataset=dataset)
    trainer.train()
    assert trainer.pruning_method is None
    with pytest.raises(ValueError, match="no pruning config"):
        trainer.save_pruned(tmp_path / "out")


def test_load_best_model_at_end_keeps_the_final_pattern(tmp_path, dataset):
    # Checkpoints at steps 4 and 8 are from before the pattern froze (step 12); the best one
    # comes back at the end and must be re-masked.
    args = dict(
        max_steps=20,
        save_strategy="steps",
        save_steps=4,
        eval_strategy="steps",
        eval_steps=4,
        load_best_model_at_end=True,
        metric_for_best_model="loss",
        greater_is_better=True,
    )
    trainer = PruningTrainer(
        model=tiny_bert(),
        args=training_args(tmp_path, **args),
        train_dataset=dataset,
        eval_dataset=dataset,
        pruning=CONFIGS["magnitude"](),
    )
    trainer.train()
    assert trainer.state.best_global_step < 12
    assert trainer.pruning_method.sparsity() >= 0.75 - 1e-3
    report = trainer.save_pruned(tmp_path / "export")
    assert report["saved_sparsity"] >= 0.75 - 1e-3


def test_save_pruned_refuses_to_replace_the_trainer_output_dir(tmp_path, dataset):
    trainer, _ = make_trainer(
        tmp_path, tiny_bert(), dataset, CONFIGS["magnitude"](), False, save_strategy="steps", save_steps=5, max_steps=5
    )
    trainer.train()
    with pytest.raises(FileExistsError, match="is the Trainer's output_dir"):
        trainer.save_pruned(tmp_path)
    assert (tmp_path / "checkpoint-5" / "hf_prune_state.safetensors").is_file()


def test_a_method_object_follows_only_the_model_it_was_attached_to(tmp_path, dataset):
    # A config gives every model a fresh method (model_init, searches); a method object cannot,
    # and a second Trainer with another model is refused when it is built.
    callback = PruningCallback(create_method(CONFIGS["magnitude"]()))
    Trainer(model=tiny_bert(), args=training_args(tmp_path, max_steps=2), train_dataset=dataset, callbacks=[callback])
    with pytest.raises(UnsupportedModelError, match="different model"):
        Trainer(
            model=tiny_bert(seed=3),
            args=training_args(tmp_path, max_steps=2),
            train_dataset=dataset,
            callbacks=[callback],
        )
