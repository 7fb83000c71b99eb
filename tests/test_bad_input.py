"""Bad input gets a clear error before any work, and nothing is lost: one test per case found
when hf_prune was tried as a new user would (exports, checkpoints, configs, models, paths).
Recipe and CLI cases are in test_recipe_cli_errors.py."""

from __future__ import annotations

import json
import logging
import os
import stat

import pytest
import torch
from safetensors.torch import load_file, save_file

from hf_prune import (
    FrozenMaskConfig,
    MagnitudeConfig,
    MovementConfig,
    PruningTrainer,
    RankConfig,
    RPPConfig,
    create_method,
    find_targets,
    load_pruned,
    save_pruned,
)
from hf_prune.checkpointing import STATE_FILE_NAME, load_method_state, save_method_state
from hf_prune.cli import main
from hf_prune.errors import CheckpointMismatchError, InvalidConfigError, UnsupportedModelError
from hf_prune.export_folder import ExportTargetError
from hf_prune.formats import ExportFormatError, MissingExportFileError

from .conftest import tiny_bert, training_args

MAGNITUDE = dict(target_sparsity=0.5, prune_interval=1, begin_step=1, end_step=3)


def _pruned_magnitude():
    model = tiny_bert()
    method = create_method(MagnitudeConfig(**MAGNITUDE))
    method.attach(model)
    method.begin(4)
    for step in range(1, 5):
        method.step(step)
    return model, method


def _trained(tmp_path, dataset, config, **args):
    trainer = PruningTrainer(
        model=tiny_bert(),
        args=training_args(tmp_path, **{"max_steps": 4, **args}),
        train_dataset=dataset,
        pruning=config,
    )
    trainer.train()
    return trainer


# --------------------------------------------------------------------------- exports
def test_a_corrupted_dense_export_is_refused_naming_the_file(tmp_path, capsys):
    model, method = _pruned_magnitude()
    save_pruned(model, tmp_path / "out", method)
    weights = tmp_path / "out" / "model.safetensors"
    tensors = load_file(str(weights))
    key = next(k for k in tensors if k.endswith("attention.self.query.weight"))
    zero = (tensors[key] == 0).nonzero()[0].tolist()
    tensors[key][tuple(zero)] = 2.0  # a flipped value: the same size, other bytes
    save_file(tensors, str(weights), metadata={"format": "pt"})
    with pytest.raises(ExportFormatError, match="model.safetensors does not match the SHA-256"):
        load_pruned(tmp_path / "out")
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    with pytest.raises(ExportFormatError, match="model.safetensors is 1000 bytes but the manifest recorded"):
        load_pruned(tmp_path / "out")
    assert main(["report", str(tmp_path / "out")]) == 2
    assert "truncated or corrupted" in capsys.readouterr().err


def test_load_pruned_refuses_a_movement_or_rank_checkpoint(tmp_path, dataset):
    config = MovementConfig(target_sparsity=0.5, begin_step=1, end_step=6)
    _trained(tmp_path, dataset, config, save_strategy="steps", save_steps=2)
    with pytest.raises(ExportFormatError, match="Trainer checkpoint.*save_pruned"):
        load_pruned(tmp_path / "checkpoint-2")


def test_a_folder_with_a_report_but_no_manifest_is_never_replaced(tmp_path):
    user = tmp_path / "notes"
    user.mkdir()
    (user / "pruning_report.json").write_text("{}")
    (user / "my_notes.csv").write_text("a,b\n")
    model, method = _pruned_magnitude()
    with pytest.raises(ExportTargetError, match="not an hf_prune export"):
        save_pruned(model, user, method)
    assert sorted(os.listdir(user)) == ["my_notes.csv", "pruning_report.json"]


def test_re_export_keeps_the_files_a_user_added(tmp_path):
    model, method = _pruned_magnitude()
    save_pruned(model, tmp_path / "out", method)
    (tmp_path / "out" / "NOTES.md").write_text("mine")
    save_pruned(model, tmp_path / "out", method, format="compact")
    assert (tmp_path / "out" / "NOTES.md").read_text() == "mine"
    assert "model.safetensors" not in os.listdir(tmp_path / "out")  # the old export's files are gone


def test_bad_export_paths_fail_before_anything_is_pruned(tmp_path, dataset):
    model, method = _pruned_magnitude()
    (tmp_path / "a_file").write_text("x")
    for path, message in [(None, "not a folder path"), (tmp_path / "a_file" / "out", "is a file")]:
        with pytest.raises(ExportTargetError, match=message):
            save_pruned(model, path, method)
    trainer = _trained(tmp_path / "run", dataset, MagnitudeConfig(**MAGNITUDE))
    with pytest.raises(ExportTargetError, match="the Trainer's output_dir"):
        trainer.save_pruned(tmp_path / "run")


def test_export_files_are_readable_like_the_folder(tmp_path):
    model, method = _pruned_magnitude()
    save_pruned(model, tmp_path / "out", method, format="compact")
    umask = os.umask(0)
    os.umask(umask)
    for name in os.listdir(tmp_path / "out"):
        mode = stat.S_IMODE(os.stat(tmp_path / "out" / name).st_mode)
        assert mode == 0o666 & ~umask, (name, oct(mode))


def test_a_factored_export_fine_tuned_with_its_structure_frozen_exports_factored_and_dense(tmp_path, dataset):
    trainer = _trained(tmp_path / "rank", dataset, RankConfig(target_params_fraction=0.5, begin_step=1, end_step=3))
    trainer.save_pruned(tmp_path / "factored", format="factored")
    model = load_pruned(tmp_path / "factored").train()
    frozen = PruningTrainer(
        model=model, args=training_args(tmp_path / "ft", max_steps=2), train_dataset=dataset, pruning=FrozenMaskConfig()
    )
    frozen.train()
    assert frozen.pruning_method.export_formats == ["dense", "factored"]
    factored = frozen.save_pruned(tmp_path / "again-factored", format="factored")
    frozen.save_pruned(tmp_path / "again-dense", format="dense")
    assert factored["saved_sparsity"] > 0.4
    ids = torch.randint(0, 100, (2, 12))
    a, b = load_pruned(tmp_path / "again-factored"), load_pruned(tmp_path / "again-dense")
    torch.testing.assert_close(a(input_ids=ids).logits, b(input_ids=ids).logits, atol=1e-5, rtol=1e-4)


def test_load_pruned_of_a_missing_folder_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingExportFileError, match="No local folder 'no_such_folder' exists.*not in the local cache"):
        load_pruned("no_such_folder")
    with pytest.raises(MissingExportFileError, match="No export folder"):
        load_pruned(str(tmp_path / "missing"))


def test_a_masks_export_whose_local_base_model_moved_says_where_it_was(tmp_path):
    from transformers import BertForSequenceClassification

    from hf_prune.errors import DataUnavailableError

    base = tmp_path / "my-base-model"
    tiny_bert().save_pretrained(base)
    model = BertForSequenceClassification.from_pretrained(base)
    method = create_method(MagnitudeConfig(**MAGNITUDE))
    method.attach(model)
    method.begin(4)
    for step in range(1, 5):
        method.step(step)
    save_pruned(model, tmp_path / "masks", method, format="masks")
    base.rename(tmp_path / "moved")

    # Not transformers' "Repo id must be in the form 'repo_name'" OSError: the export and its base named.
    with pytest.raises(DataUnavailableError, match="is a masks export.*my-base-model.*put that model there again"):
        load_pruned(tmp_path / "masks")
    (tmp_path / "moved").rename(base)
    assert int((load_pruned(tmp_path / "masks").bert.encoder.layer[0].attention.self.query.weight == 0).sum()) > 0


def test_save_pruned_before_training_warns_that_metrics_describe_the_dense_model(tmp_path, dataset, caplog):
    trainer = PruningTrainer(
        model=tiny_bert(), args=training_args(tmp_path / "run"), train_dataset=dataset, pruning=MagnitudeConfig()
    )
    with caplog.at_level(logging.WARNING, logger="hf_prune"):
        trainer.save_pruned(tmp_path / "out")
    assert "before any training" in caplog.text


# --------------------------------------------------------------------------- checkpoints
def _checkpoint(tmp_path, dataset, config):
    _trained(tmp_path, dataset, config, save_strategy="steps", save_steps=2)
    return tmp_path / "checkpoint-2"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: b"", "not a readable hf_prune state file"),
        (lambda data: data[: len(data) // 2], "not a readable hf_prune state file"),
        (lambda data: b"\x00" * 16 + data[16:], "not a readable hf_prune state file"),
        (lambda data: data[:-4] + bytes(b ^ 0xFF for b in data[-4:]), "corrupted"),
    ],
    ids=["empty", "truncated", "garbled", "flipped-bits"],
)
def test_a_damaged_state_file_is_refused(tmp_path, dataset, damage, message):
    folder = _checkpoint(tmp_path, dataset, RPPConfig(target_sparsity=0.5, begin_step=1, end_step=3))
    state = folder / STATE_FILE_NAME
    state.write_bytes(damage(state.read_bytes()))
    method = create_method(RPPConfig(target_sparsity=0.5, begin_step=1, end_step=3))
    method.attach(tiny_bert())
    with pytest.raises(CheckpointMismatchError, match=message):
        load_method_state(method, folder)


def test_resuming_with_other_settings_is_refused_naming_them(tmp_path, dataset):
    folder = _checkpoint(tmp_path, dataset, MagnitudeConfig(**MAGNITUDE))
    other = PruningTrainer(
        model=tiny_bert(),
        args=training_args(tmp_path, max_steps=4),
        train_dataset=dataset,
        pruning=MagnitudeConfig(**{**MAGNITUDE, "target_sparsity": 0.7}),
    )
    with pytest.raises(CheckpointMismatchError, match=r"target_sparsity: 0.5 -> 0.7"):
        other.train(resume_from_checkpoint=str(folder))


def test_resuming_a_rank_checkpoint_with_an_elementwise_method_names_both(tmp_path, dataset):
    folder = _checkpoint(tmp_path, dataset, RankConfig(target_params_fraction=0.5, begin_step=1, end_step=3))
    other = PruningTrainer(
        model=tiny_bert(), args=training_args(tmp_path, max_steps=4), train_dataset=dataset, pruning=MagnitudeConfig()
    )
    with pytest.raises(CheckpointMismatchError, match="for method 'rank', but this run uses 'magnitude'"):
        other.train(resume_from_checkpoint=str(folder))


def test_state_round_trip_still_works(tmp_path):
    model, method = _pruned_magnitude()
    save_method_state(method, tmp_path)
    load_method_state(method, tmp_path)


# --------------------------------------------------------------------------- configs
@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: RPPConfig(targt_sparsity=0.8), "'targt_sparsity': did you mean 'target_sparsity'"),
        (lambda: RankConfig(target_sparsity=0.8), "'target_sparsity'"),
        (lambda: MagnitudeConfig(sparsity_distribution="even"), r"not one of \['per_matrix', 'global'\]"),
        (lambda: create_method("rpp"), "create_method needs a pruning config, got the str 'rpp'"),
    ],
    ids=["typo", "other-method-field", "literal-choices", "method-name"],
)
def test_config_mistakes_name_the_fix(build, message):
    with pytest.raises(InvalidConfigError, match=message):
        build()


# --------------------------------------------------------------------------- models
def test_an_encoder_decoder_model_has_only_its_encoder_pruned():
    from transformers import T5Config, T5ForConditionalGeneration

    model = T5ForConditionalGeneration(
        T5Config(d_model=16, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=8, vocab_size=50)
    )
    names = list(find_targets(model))
    assert names and all(name.startswith("encoder.") for name in names)


def test_a_gpt2_model_is_refused_naming_its_conv1d_layers():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50, bos_token_id=0, eos_token_id=0))
    with pytest.raises(UnsupportedModelError, match="Conv1D"):
        find_targets(model)


def test_manifest_lists_the_files_it_wrote(tmp_path):
    model, method = _pruned_magnitude()
    save_pruned(model, tmp_path / "out", method)
    manifest = json.loads((tmp_path / "out" / "hf_prune_export.json").read_text())
    assert sorted(os.listdir(tmp_path / "out")) == manifest["files"]


# --------------------------------------------------------------------------- API used out of order
def test_methods_used_out_of_order_say_which_call_comes_first():
    from hf_prune.errors import MethodOrderError

    for config in (MagnitudeConfig(), RPPConfig(), MovementConfig(), FrozenMaskConfig()):
        method = create_method(config)
        with pytest.raises(MethodOrderError, match=r"step\(\) before attach\(model\)"):
            method.step(1)
        with pytest.raises(MethodOrderError, match=r"finalize\(\) before attach\(model\)"):
            method.finalize()
    method = create_method(MagnitudeConfig())
    method.attach(tiny_bert())
    with pytest.raises(MethodOrderError, match=r"before begin\(total_steps\)"):
        method.step(1)
    for bad in (-5, "100", 2.5):
        with pytest.raises(InvalidConfigError, match="whole number of optimizer steps"):
            method.begin(bad)


def test_save_pruned_refuses_a_method_that_did_not_prune_this_model(tmp_path):
    from hf_prune.errors import MethodOrderError

    model, method = _pruned_magnitude()
    with pytest.raises(InvalidConfigError, match="needs the pruning method"):
        save_pruned(model, tmp_path / "a", "magnitude")
    with pytest.raises(MethodOrderError, match="never attached"):
        save_pruned(model, tmp_path / "b", create_method(MagnitudeConfig()))
    with pytest.raises(MethodOrderError, match="attached to another model"):
        save_pruned(tiny_bert(seed=5), tmp_path / "c", method)
    assert not any((tmp_path / name).exists() for name in "abc")


def test_loading_and_reading_what_is_not_an_export(tmp_path):
    from hf_prune import read_report

    with pytest.raises(MissingExportFileError, match="give an export folder"):
        load_pruned(None)
    with pytest.raises(MissingExportFileError, match="not an hf_prune export"):
        read_report(tmp_path)


def test_resume_true_without_checkpoints_says_so(tmp_path, dataset):
    from hf_prune.errors import MissingPruningStateError

    trainer = PruningTrainer(
        model=tiny_bert(), args=training_args(tmp_path, max_steps=2), train_dataset=dataset, pruning=MagnitudeConfig()
    )
    with pytest.raises(MissingPruningStateError, match="holds no checkpoint"):
        trainer.train(resume_from_checkpoint=True)


def test_more_config_mistakes_name_the_fix(tmp_path):
    from hf_prune import PruningConfig
    from hf_prune.errors import NoMatchingModulesError

    with pytest.raises(InvalidConfigError, match="keyword arguments only"):
        RPPConfig(0.8)
    with pytest.raises(InvalidConfigError, match=r"field of the \['magnitude'\] methods"):
        RPPConfig(prune_interval=5)
    with pytest.raises(InvalidConfigError, match="needs a mapping"):
        PruningConfig.from_dict("rpp")
    with pytest.raises(InvalidConfigError, match="does not exist"):
        PruningConfig.load(tmp_path / "nowhere")
    with pytest.raises(NoMatchingModulesError, match=r"include='query' is one string.*\['query'\]"):
        find_targets(tiny_bert(), include="query")
    trainer = PruningTrainer(model=tiny_bert(), args=training_args(tmp_path))
    with pytest.raises(InvalidConfigError, match="no pruning config"):
        trainer.save_pruned(tmp_path / "out")


def test_rank_in_a_plain_loop_refuses_an_optimizer_built_before_attach():
    from hf_prune.errors import MethodOrderError

    model = tiny_bert()
    early = torch.optim.AdamW(model.parameters(), lr=1e-3)  # built before attach: no factors
    method = create_method(RankConfig(target_params_fraction=0.5, begin_step=1, end_step=4))
    method.attach(model)
    method.begin(5)
    with pytest.raises(MethodOrderError, match="built before method.attach"):
        method.step(1, early)
    late = torch.optim.AdamW(model.parameters(), lr=1e-3)
    method.step(1, late)  # the right order works
