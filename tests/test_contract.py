"""The contracts every registered method keeps, for every export format it declares.

Parametrized from the registries (``tests/common.py``: :data:`METHODS`, :data:`METHOD_FORMATS`,
:data:`MODELS`), so a newly registered method or format is tested without editing this file.
Contracts that only read a finished run (the saved file, loading it back, the config) share one
``PruningTrainer`` run per method x architecture; the others train their own runs on BERT.
"""

from __future__ import annotations

import pytest
import transformers

from hf_prune import available_methods, create_method, load_pruned
from hf_prune.formats import formats_for, get_format, read_manifest

from .common import (
    METHOD_FORMATS,
    METHODS,
    MODELS,
    ContractTester,
    TinyCustomForSequenceClassification,
    assert_states_equal,
    method_state,
    model_state,
)

ARCHS = list(MODELS)
# Formats that keep a factored method's layers factored (the others multiply them out).
FACTOR_FORMATS = [f for f in formats_for("factored") if f not in formats_for("elementwise")]
ELEMENTWISE_PAIRS = [(m, f) for m, f in METHOD_FORMATS if METHODS[m].structure == "elementwise"]
FACTORED_PAIRS = [(m, f) for m, f in METHOD_FORMATS if METHODS[m].structure == "factored" and f in FACTOR_FORMATS]


@pytest.fixture
def tester(contract_tester) -> ContractTester:
    """The session's tester (tests/conftest.py): its runs are shared with other test files."""
    return contract_tester


def test_the_tables_cover_every_registered_method_and_format():
    assert sorted(METHODS) == available_methods()
    for name, case in METHODS.items():
        method = create_method(case.config())
        assert case.formats == method.export_formats and case.formats, name
        assert all(get_format(fmt).accepts(method.weight_structure) for fmt in case.formats)
    assert ELEMENTWISE_PAIRS and FACTORED_PAIRS  # both structures have a contract below


# ----------------------------------------------------------------------------- the saved file
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method_name, fmt", METHOD_FORMATS)
def test_saved_file_meets_the_target(tester, method_name, fmt, arch):
    tester.check_saved_sparsity(tester.trained(METHODS[method_name], arch), fmt)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method_name, fmt", METHOD_FORMATS)
def test_export_loads_back_with_equal_outputs(tester, method_name, fmt, arch):
    tester.check_export_loads_back(tester.trained(METHODS[method_name], arch), fmt)


@pytest.mark.parametrize("method_name, fmt", METHOD_FORMATS)
def test_custom_model_class_is_recorded_and_loads_back(tester, method_name, fmt):
    # The premise: transformers cannot build this model by itself.
    assert TinyCustomForSequenceClassification.config_class.model_type not in transformers.CONFIG_MAPPING
    assert not hasattr(transformers, TinyCustomForSequenceClassification.__name__)
    folder, _ = tester.trained(METHODS[method_name], "custom").exports[fmt]
    manifest = read_manifest(folder)
    assert (manifest["model_class"], manifest["model_module"]) == (
        "TinyCustomForSequenceClassification",
        "tests.common",
    )
    assert type(load_pruned(folder)) is TinyCustomForSequenceClassification


@pytest.mark.parametrize("method_name", sorted(METHODS))
def test_config_json_round_trip(tester, method_name):
    tester.check_config_round_trip(tester.trained(METHODS[method_name], ContractTester.RESUME_ARCH))


# ----------------------------------------------------------------------------- the two Trainer paths
@pytest.mark.parametrize("method_name", sorted(METHODS))
def test_callback_path_equals_trainer_path(tester, method_name):
    case = METHODS[method_name]
    trainer_run = tester.trained(case, ContractTester.RESUME_ARCH)
    callback_run = tester.trained(case, ContractTester.RESUME_ARCH, use_callback=True)
    assert callback_run.method.finished and trainer_run.method.finished
    assert_states_equal(callback_run.model_state, trainer_run.model_state, "model weights")
    assert_states_equal(callback_run.method_state, trainer_run.method_state, "method state")
    # Both log the same prune/* scalars with every training loss.
    logs = {}
    for path, run in (("trainer", trainer_run), ("callback", callback_run)):
        entries = [e for e in run.trainer.state.log_history if "loss" in e]
        assert entries and all(any(k.startswith("prune/") for k in e) for e in entries), path
        logs[path] = [{k: v for k, v in e.items() if k.startswith("prune/")} for e in entries]
    assert logs["callback"] == logs["trainer"]


@pytest.mark.parametrize("checkpoint_step", [4, 8], ids=["mid-schedule", "after-freeze"])
@pytest.mark.parametrize("use_callback", [False, True], ids=["PruningTrainer", "PruningCallback"])
@pytest.mark.parametrize("method_name", sorted(METHODS))
def test_resume_equals_uninterrupted(tester, method_name, use_callback, checkpoint_step):
    full, trainer, method = tester.resumed(METHODS[method_name], use_callback, checkpoint_step)
    assert method.finished
    assert_states_equal(model_state(trainer.model), full.model_state, "model weights")
    assert_states_equal(method_state(method), full.method_state, "method state")


# ----------------------------------------------------------------------------- fine-tuning an export
@pytest.mark.parametrize("method_name, fmt", ELEMENTWISE_PAIRS)
def test_frozen_fine_tune_of_a_loaded_export_keeps_every_zero(tester, method_name, fmt):
    tester.check_frozen_fine_tune_keeps_zeros(tester.trained(METHODS[method_name], ContractTester.RESUME_ARCH), fmt)


@pytest.mark.parametrize("method_name, fmt", FACTORED_PAIRS)
def test_fine_tune_of_a_loaded_factored_export_keeps_its_factors(tester, method_name, fmt):
    tester.check_fine_tune_keeps_factors(tester.trained(METHODS[method_name], ContractTester.RESUME_ARCH), fmt)


@pytest.mark.parametrize(
    "method_name, fmt, out_fmt", [(m, f, out) for m, f in FACTORED_PAIRS for out in METHODS[m].formats]
)
def test_fine_tuned_factored_model_exports_again(tester, method_name, fmt, out_fmt):
    run = tester.trained(METHODS[method_name], ContractTester.RESUME_ARCH)
    tester.check_fine_tuned_factors_export_again(run, fmt, out_fmt)


# ----------------------------------------------------------------------------- multitask models
WEIGHT_PAIRS = [(m, f) for m, f in METHOD_FORMATS if get_format(f).holds_weights]


@pytest.mark.parametrize("method_name, fmt", WEIGHT_PAIRS)
def test_multitask_export_holds_a_stock_model_per_task_with_one_encoder(tester, method_name, fmt):
    tester.check_task_exports(tester.trained(METHODS[method_name], "multitask"), fmt)


@pytest.mark.parametrize("method_name", sorted(METHODS))
def test_multitask_callback_path_equals_trainer_path(tester, method_name):
    case = METHODS[method_name]
    trainer_run = tester.trained(case, "multitask")
    callback_run = tester.trained(case, "multitask", use_callback=True)
    assert callback_run.method.finished and trainer_run.method.finished
    assert_states_equal(callback_run.model_state, trainer_run.model_state, "model weights")
    assert_states_equal(callback_run.method_state, trainer_run.method_state, "method state")
    # Only the shared encoder is pruned: no target in a head.
    assert all(name.startswith("encoder.") for name in trainer_run.method.targets)
